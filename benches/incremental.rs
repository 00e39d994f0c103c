//! Question: once shopflow holds the state of N events, how long does a batch of 1, 100,
//! 1 000 or 10 000 new events — or one category move of the hottest item — take to be
//! visible in every output, and how does that compare with recomputing the same outputs
//! from scratch with a plain batch program?
//!
//! Command: `cargo bench --bench incremental`
//! (env: `SHOPFLOW_BENCH_EVENTS`, default `1000000,10000000`; `SHOPFLOW_BENCH_WORKERS`,
//! default `1,2`; `SHOPFLOW_BENCH_SETS`, default `platform,all`; epoch 1 h).
//!
//! In-process: the dataflows of `shopflow run` (platform layer, the chosen outputs, csv
//! sinks into `bench-data/`) are built on timely workers and loaded with the dataset's
//! first N − 11 101 rows (UserBehavior, cached under `bench-data/`); each batch then takes
//! the next held-out rows, at the next epoch, and is timed from insertion until every
//! output has passed that epoch (written). The batch baseline is a plain Rust program
//! (hash maps, one pass, nothing written) computing the eight platform outputs over the
//! same N − 11 101 rows; there is no batch baseline for the production cases. Results
//! print as a Markdown table and are appended to `bench-data/incremental.csv`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use shopflow::dataflows;
use shopflow::model::{CatalogRow, CategoryId, Event, ItemId, Time};
use shopflow::platform::{self, AdParams, Params};
use shopflow::sink::{SinkKind, Sinks};
use shopflow::source::{self, Format, Row, SourceKind};
use shopflow::stats::Stats;
use timely::dataflow::ProbeHandle;

use common::{dataset, env_list, History, Identity, PLATFORM_OUTPUTS};

const EPOCH_MS: u64 = 3_600_000;
const BATCHES: [usize; 4] = [1, 100, 1_000, 10_000];
const HELD_OUT: usize = 1 + 100 + 1_000 + 10_000;

fn main() {
    let sizes: Vec<u64> =
        env_list("SHOPFLOW_BENCH_EVENTS", "1000000,10000000").iter().map(|s| s.parse().expect("events")).collect();
    let workers: Vec<usize> = env_list("SHOPFLOW_BENCH_WORKERS", "1,2").iter().map(|s| s.parse().expect("w")).collect();
    let sets = env_list("SHOPFLOW_BENCH_SETS", "platform,all");
    let id = Identity::new();
    id.print();
    println!("| events | outputs | workers | load s | +1 ms | +100 ms | +1000 ms | +10000 ms | move ms | batch recompute ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut history = History::open(
        "incremental",
        "events,outputs,workers,load_s,ms_1,ms_100,ms_1000,ms_10000,ms_move,batch_recompute_ms",
    );
    for &n in &sizes {
        let rows = Arc::new(read_rows(&dataset(n)));
        let state = rows.len() - HELD_OUT;
        let started = Instant::now();
        let baseline = batch_platform_outputs(&rows[..state]);
        let batch_ms = started.elapsed().as_secs_f64() * 1000.0;
        for set in &sets {
            for &w in &workers {
                let r = incremental(rows.clone(), state, set, w);
                // load s, then ms: each batch, the move, the batch recompute (platform only).
                let mut values = vec![r.load.as_secs_f64()];
                values.extend(r.batches.iter().chain([&r.category_move]).map(|d| d.as_secs_f64() * 1000.0));
                let recompute = (set == "platform").then_some(batch_ms);
                let shown: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
                let recompute_shown = recompute.map_or("–".to_string(), |b| format!("{b:.0}"));
                println!("| {n} | {set} | {w} | {} | {recompute_shown} |", shown.join(" | "));
                let raw: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
                let recompute_raw = recompute.map_or(String::new(), |b| format!("{b:.1}"));
                history.append(&id, &format!("{n},{set},{w},{},{recompute_raw}", raw.join(",")));
            }
        }
        // Keep the baseline's result alive until here, so it cannot be optimised away.
        assert!(baseline > 0);
    }
    println!("\nappended to {}", common::bench_root().join("incremental.csv").display());
}

/// The dataset's valid rows: events with the category their row names.
fn read_rows(path: &std::path::Path) -> Vec<(Event, CategoryId)> {
    let text = std::fs::read(path).expect("dataset");
    text.split(|&b| b == b'\n')
        .filter_map(|line| match source::parse(line, SourceKind::Events(Format::UserBehavior)) {
            Ok(Row::EventWithCategory(e, c)) => Some((e, c)),
            _ => None,
        })
        .collect()
}

struct Timings {
    load: Duration,
    batches: Vec<Duration>,
    category_move: Duration,
}

fn epoch(ts: u64) -> Time {
    ts - ts % EPOCH_MS
}

/// Loads `rows[..state]` into the dataflows of `set` on `workers` workers, then times each
/// batch of held-out rows and a category move (worker 0's clock).
fn incremental(rows: Arc<Vec<(Event, CategoryId)>>, state: usize, set: &str, workers: usize) -> Timings {
    let outputs: Vec<String> = match set {
        "platform" => PLATFORM_OUTPUTS.split(',').map(String::from).collect(),
        _ => dataflows::ALL.iter().map(|s| s.to_string()).collect(),
    };
    let rules = shopflow::rules::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/recall_rules_taobao.toml"
    )))
    .expect("rules");
    let out_dir = common::bench_root().join(format!("out-incremental-{set}-w{workers}"));
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let result: Arc<Mutex<Option<Timings>>> = Arc::default();
    let result_w = result.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let probe = ProbeHandle::new();
        let sinks = Sinks::new(index == 0, SinkKind::Csv, out_dir.clone(), probe.clone());
        let params = Params {
            epoch_ms: EPOCH_MS,
            ads: AdParams { refresh_ms: 300_000, min_impressions: 100, min_pctr: 10_000, set_size: 1000 },
        };
        let dataflow = worker.next_dataflow_index();
        let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
            let (inputs, p) = platform::build(scope, params);
            let mut built = dataflows::Built::default();
            for name in &outputs {
                dataflows::attach(name, &p, &mut built, &sinks);
            }
            inputs
        });
        let mine = |i: usize| i % peers == index;
        let row =
            |category| CatalogRow { category, seller: 0, price_cents: 0, online: true, is_ad: false, ad_bid_cents: 0 };
        // Load: every event at its epoch; each item's first category at time 0.
        let started = Instant::now();
        if index == 0 {
            for r in &rules {
                inputs.rules.update_at(*r, 0, 1);
            }
        }
        let mut seen: FxHashSet<ItemId> = FxHashSet::default();
        let mut last = 0;
        for (i, (e, c)) in rows[..state].iter().enumerate() {
            last = last.max(epoch(e.ts_ms));
            if seen.insert(e.item) && e.item as usize % peers == index {
                inputs.catalog.update_at((e.item, 0, Some(row(*c))), 0, 1);
            }
            if mine(i) {
                inputs.events.update_at(*e, epoch(e.ts_ms), 1);
            }
        }
        let mut now = last + EPOCH_MS;
        let settle = |inputs: &mut platform::InputHandles, worker: &mut timely::worker::Worker, until: Time| {
            inputs.advance_to(until);
            inputs.flush();
            worker.step_while(|| probe.less_than(&until));
        };
        settle(&mut inputs, worker, now);
        let load = started.elapsed();
        // Batches of held-out rows, each at the next epoch.
        let mut batches = Vec::new();
        let mut next = state;
        for size in BATCHES {
            let started = Instant::now();
            for i in next..next + size {
                if mine(i) {
                    inputs.events.update_at(rows[i].0, now, 1);
                }
            }
            next += size;
            now += EPOCH_MS;
            settle(&mut inputs, worker, now);
            batches.push(started.elapsed());
        }
        // The hottest item moves to another category.
        let mut counts: FxHashMap<ItemId, (usize, CategoryId)> = FxHashMap::default();
        for (e, c) in &rows[..state] {
            counts.entry(e.item).or_insert((0, *c)).0 += 1;
        }
        let (&hot, &(_, category)) = counts.iter().max_by_key(|(item, (n, _))| (*n, *item)).expect("rows");
        let started = Instant::now();
        if index == 0 {
            inputs.catalog.update_at((hot, 1, Some(row(category + 1))), now, 1);
        }
        now += EPOCH_MS;
        settle(&mut inputs, worker, now);
        let category_move = started.elapsed();
        if index == 0 {
            *result_w.lock().unwrap() = Some(Timings { load, batches, category_move });
        }
        // Leave without draining the windows' future retractions (30 days of them).
        drop(inputs);
        worker.drop_dataflow(dataflow);
    })
    .expect("timely runs");
    drop(guards);
    let timings = result.lock().unwrap().take().expect("worker 0 reported");
    timings
}

/// The eight platform outputs of `rows`, from scratch, in hash maps (the catalog: each
/// item's first category). Returns the number of result rows.
fn batch_platform_outputs(rows: &[(Event, CategoryId)]) -> usize {
    let mut category: FxHashMap<ItemId, CategoryId> = FxHashMap::default();
    for (e, c) in rows {
        category.entry(e.item).or_insert(*c);
    }
    let mut item: FxHashMap<ItemId, Stats> = FxHashMap::default();
    let mut item_users: FxHashMap<(ItemId, u64), (bool, bool)> = FxHashMap::default();
    let mut cat: FxHashMap<CategoryId, Stats> = FxHashMap::default();
    let mut cat_users: FxHashMap<(CategoryId, u64), bool> = FxHashMap::default();
    let mut scene: FxHashMap<shopflow::model::Scene, Stats> = FxHashMap::default();
    let mut scene_users: FxHashMap<(shopflow::model::Scene, u64), bool> = FxHashMap::default();
    let mut user: FxHashMap<u64, Stats> = FxHashMap::default();
    let mut user_cat: FxHashMap<(u64, CategoryId), i64> = FxHashMap::default();
    let mut cat_item: FxHashMap<(CategoryId, ItemId), (i64, i64)> = FxHashMap::default();
    let mut hourly: FxHashMap<(u64, shopflow::model::Scene), Stats> = FxHashMap::default();
    for (e, _) in rows {
        let s = Stats::of(e);
        let c = category[&e.item];
        let bought = s.buys > 0;
        item.entry(e.item).or_default().plus(&s);
        let reach = item_users.entry((e.item, e.user)).or_default();
        *reach = (true, reach.1 || bought);
        cat.entry(c).or_default().plus(&s);
        *cat_users.entry((c, e.user)).or_default() |= bought;
        scene.entry(e.scene).or_default().plus(&s);
        *scene_users.entry((e.scene, e.user)).or_default() |= bought;
        user.entry(e.user).or_default().plus(&s);
        *user_cat.entry((e.user, c)).or_default() += s.score();
        let sales = cat_item.entry((c, e.item)).or_default();
        *sales = (sales.0 + s.buys, sales.1 + s.gmv_cents);
        hourly.entry((e.ts_ms - e.ts_ms % 3_600_000, e.scene)).or_default().plus(&s);
    }
    for (&(i, u), &(_, b)) in &item_users {
        let s = item.get_mut(&i).expect("item");
        s.uv += 1;
        s.buyers += b as i64;
        user.get_mut(&u).expect("user").uv += 1;
    }
    for (&(c, _), &b) in &cat_users {
        let s = cat.get_mut(&c).expect("category");
        s.uv += 1;
        s.buyers += b as i64;
    }
    for (&(sc, _), &b) in &scene_users {
        let s = scene.get_mut(&sc).expect("scene");
        s.uv += 1;
        s.buyers += b as i64;
    }
    // Top 10 items per category by (buys, gmv), top 3 categories per user by score.
    let mut by_cat: FxHashMap<CategoryId, Vec<(i64, i64, ItemId)>> = FxHashMap::default();
    for (&(c, i), &(b, g)) in &cat_item {
        if b > 0 {
            by_cat.entry(c).or_default().push((b, g, i));
        }
    }
    let mut top_items = 0;
    for v in by_cat.values_mut() {
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        top_items += v.len().min(10);
    }
    let mut by_user: FxHashMap<u64, Vec<(i64, CategoryId)>> = FxHashMap::default();
    for (&(u, c), &s) in &user_cat {
        if s > 0 {
            by_user.entry(u).or_default().push((s, c));
        }
    }
    let mut top_cats = 0;
    for v in by_user.values_mut() {
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        top_cats += v.len().min(3);
    }
    // Every item of UserBehavior data has a catalog row: `untagged` is empty.
    item.len() + cat.len() + scene.len() + user.len() + top_items + top_cats + hourly.len()
}

/// `Stats` addition for the batch baseline.
trait Plus {
    fn plus(&mut self, other: &Stats);
}

impl Plus for Stats {
    fn plus(&mut self, other: &Stats) {
        use differential_dataflow::difference::Semigroup;
        self.plus_equals(other);
    }
}
