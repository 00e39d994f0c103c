"""The four-aggregate slice of the platform outputs as a one-shot DuckDB batch over a
UserBehavior file (the yardstick of `cargo bench --bench throughput`).

Usage: python duckdb_slice.py USERBEHAVIOR.csv OUT_DIR
Prints one line: `duckdb <version> threads <t> rows <n> seconds <s>` (load, four aggregates,
results written as CSV into OUT_DIR; DuckDB's default thread count, one per core). The slice, over all rows:
  1. per item: pv, fav, cart and buy events;
  2. per category: buys, buyers (distinct users with a buy), uv (distinct users);
  3. per category: the top 10 items by buys desc, item asc (buys > 0);
  4. per UTC hour of the timestamp: events by behaviour.
"""
import os
import sys
import time

import duckdb


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ub AS SELECT * FROM read_csv(?, header = false, "
        "columns = {'user_id': 'UBIGINT', 'item_id': 'UBIGINT', 'category_id': 'UBIGINT', "
        "'behavior': 'VARCHAR', 'ts': 'BIGINT'})",
        [path],
    )
    queries = {
        "item": """SELECT item_id,
                     count(*) FILTER (behavior = 'pv') AS impressions,
                     count(*) FILTER (behavior = 'fav') AS favs,
                     count(*) FILTER (behavior = 'cart') AS carts,
                     count(*) FILTER (behavior = 'buy') AS buys
                   FROM ub GROUP BY item_id""",
        "category": """SELECT category_id,
                     count(*) FILTER (behavior = 'buy') AS buys,
                     count(DISTINCT user_id) FILTER (behavior = 'buy') AS buyers,
                     count(DISTINCT user_id) AS uv
                   FROM ub GROUP BY category_id""",
        "top": """SELECT category_id, item_id, buys FROM (
                     SELECT category_id, item_id, count(*) AS buys,
                       row_number() OVER (PARTITION BY category_id ORDER BY count(*) DESC, item_id) AS rank
                     FROM ub WHERE behavior = 'buy' GROUP BY category_id, item_id)
                   WHERE rank <= 10""",
        "hourly": """SELECT ts - ts % 3600 AS hour, behavior, count(*) AS events
                   FROM ub GROUP BY ALL""",
    }
    for name, sql in queries.items():
        target = os.path.join(out, name + ".csv")
        con.execute(f"COPY ({sql}) TO '{target}' (HEADER)")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM ub").fetchone()[0]
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"duckdb {duckdb.__version__} threads {threads} rows {rows} seconds {seconds:.3f}")


if __name__ == "__main__":
    main()
