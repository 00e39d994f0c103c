//! Question: how many events per second does `shopflow run` sustain — with every output
//! maintained, and with the platform outputs only — for each worker count and dataset
//! size, and what does it cost in CPU seconds, peak memory, arranged state and output rows?
//!
//! Command: `cargo bench --bench throughput`
//! (env: `SHOPFLOW_BENCH_EVENTS`, default `1000000,10000000`, dataset sizes;
//! `SHOPFLOW_BENCH_WORKERS`, default `1,2`; `SHOPFLOW_BENCH_EPOCH_MS`, default 3600000;
//! `SHOPFLOW_BENCH_SETS`, default `platform,all`: which outputs;
//! `SHOPFLOW_BENCH_DUCKDB`, default `1`: `0` skips the DuckDB yardstick).
//!
//! The yardstick: for each dataset, DuckDB (from PyPI, pinned, in a virtualenv this bench
//! creates under `bench-data/`) computes the four-aggregate slice of the platform outputs
//! in one batch over the same file (`benches/duckdb_slice.py`), and the table's last column
//! is each platform row's events/s divided by DuckDB's.
//!
//! The datasets are the UserBehavior format made by `shopflow gen` with a fixed seed
//! (9 days), cached under `bench-data/` (git-ignored); `all` uses the Taobao recall rules.
//! Each run is the release binary, reading as fast as it can and writing every change
//! stream. The arranged state (updates held by differential's arrangements when the
//! input ended, and their bytes as updates; see `src/arranged.rs`) is read from the run
//! summary. Results print as a Markdown table and are appended to
//! `bench-data/throughput.csv` with machine, commit and date.

mod common;

use common::{dataset, env_list, env_or, run_measured, History, Identity, PLATFORM_OUTPUTS};

fn main() {
    let sizes: Vec<u64> =
        env_list("SHOPFLOW_BENCH_EVENTS", "1000000,10000000").iter().map(|s| s.parse().expect("events")).collect();
    let workers = env_list("SHOPFLOW_BENCH_WORKERS", "1,2");
    let epoch_ms = env_or("SHOPFLOW_BENCH_EPOCH_MS", "3600000");
    let sets = env_list("SHOPFLOW_BENCH_SETS", "platform,all");
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/data/recall_rules_taobao.toml");
    let id = Identity::new();
    id.print();
    println!("epoch {epoch_ms} ms\n");
    println!(
        "| events | outputs | workers | wall s | events/s | CPU s | peak RSS MiB | arranged updates at end | arranged MiB | output rows | ÷ DuckDB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let duckdb = env_or("SHOPFLOW_BENCH_DUCKDB", "1") != "0";
    let mut history = History::open(
        "throughput",
        "events,epoch_ms,outputs,workers,wall_s,events_per_s,cpu_s,peak_rss_mib,output_rows,arranged_updates,arranged_mib",
    );
    for &events in &sizes {
        let data = dataset(events);
        let data = data.to_str().expect("utf-8 path");
        let yardstick = duckdb.then(|| common::duckdb_slice(data));
        if let Some(d) = &yardstick {
            println!(
                "| {events} | DuckDB {} (batch, four aggregates) | {} threads | {:.2} | {:.0} | {:.1} | {:.0} | | | | 1 |",
                d.version,
                d.threads,
                d.wall_s,
                events as f64 / d.wall_s,
                d.cpu_s,
                d.peak_rss_mib
            );
        }
        for set in &sets {
            for w in &workers {
                let out = common::bench_root().join(format!("out-{set}-w{w}"));
                let out = out.to_str().expect("utf-8 path");
                let mut args = vec!["run", "--format", "userbehavior", "--epoch-ms", &epoch_ms, "-w", w];
                args.extend(["--events", data, "--out", out]);
                match set.as_str() {
                    "platform" => args.extend(["--outputs", PLATFORM_OUTPUTS]),
                    "all" => args.extend(["--rules", rules]),
                    other => panic!("SHOPFLOW_BENCH_SETS: unknown set {other}"),
                }
                let m = run_measured(&args);
                let rows = m.rows();
                let (updates, mib) = m.arranged();
                let rate = events as f64 / m.wall_s;
                let ratio = match (&yardstick, set.as_str()) {
                    (Some(d), "platform") => format!("{:.2}", d.wall_s / m.wall_s),
                    _ => String::new(),
                };
                println!(
                    "| {events} | {set} | {w} | {:.2} | {rate:.0} | {:.1} | {:.0} | {updates} | {mib:.1} | {rows} | {ratio} |",
                    m.wall_s, m.cpu_s, m.peak_rss_mib
                );
                history.append(
                    &id,
                    &format!(
                        "{events},{epoch_ms},{set},{w},{:.3},{rate:.0},{:.2},{:.0},{rows},{updates},{mib:.1}",
                        m.wall_s, m.cpu_s, m.peak_rss_mib
                    ),
                );
            }
        }
    }
    println!("\nappended to {}", common::bench_root().join("throughput.csv").display());
}
