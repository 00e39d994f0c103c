//! Question: once shopflow holds the state of N events, how long does a batch of 0 (an
//! epoch passing), 1, 100, 1 000 or 10 000 new events — or one category move of the hottest item — take to be
//! visible in every output, and how does that compare with recomputing the same outputs
//! from scratch with a plain batch program?
//!
//! Command: `cargo bench --bench incremental`
//! (env: `SHOPFLOW_BENCH_EVENTS`, default `1000000,10000000`; `SHOPFLOW_BENCH_WORKERS`,
//! default `1,2`; `SHOPFLOW_BENCH_SETS`, default `platform,all`, where a set may also be
//! output names joined by `+`, e.g. `item_rank_features+recall_i2i`, timed without a batch
//! baseline; `SHOPFLOW_BENCH_EPOCH_MS`, default 3 600 000: the epoch — issue #12's target
//! is stated for 60 000, where an epoch passing expires a minute of the windows, not an
//! hour).
//!
//! In-process: the dataflows of `shopflow run` (platform layer, the chosen outputs, csv
//! sinks into `bench-data/`) are built on timely workers and loaded with the dataset's
//! first N − 11 101 × rounds rows (UserBehavior, cached under `bench-data/`), epoch by epoch, each
//! row at its own epoch. Then five rounds (fewer when the dataset is small: at most half of
//! it is held out), each of every batch size and a category move:
//! a batch takes the next held-out rows, at the next epoch, and is timed from insertion
//! until every output has passed that epoch (written); the table shows the median of the
//! rounds. The batch baseline (`benches/batch/`) is a plain
//! Rust program (hash maps, one pass, nothing written) computing the same outputs from
//! scratch over the same rows, at the last loaded epoch: the eight platform
//! outputs for `platform`; those plus the eleven case outputs for `all` (the case part is
//! checked against the reference by `tests/cases.rs`). Results print as a Markdown table
//! and are appended to `bench-data/incremental.csv`.

use baseline as batch;
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use platform::model::{CatalogRow, CategoryId, Event, ItemId, Time};
use platform::rules::Rule;
use platform::source::{self, Format, Row, SourceKind};
use platform::{self, AdParams, Params};
use sinks::{Envelope, SinkKind, SinkLog, Sinks};
use timely::dataflow::ProbeHandle;

use common::{dataset, env_list, History, Identity, PLATFORM_OUTPUTS};

/// The epoch (`SHOPFLOW_BENCH_EPOCH_MS`).
fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| env_list("SHOPFLOW_BENCH_EPOCH_MS", "3600000")[0].parse().expect("SHOPFLOW_BENCH_EPOCH_MS"))
}
/// Batch sizes; the first, empty, batch times an epoch passing with no new events.
const BATCHES: [usize; 5] = [0, 1, 100, 1_000, 10_000];
/// Each batch size (and the category move) is timed this many times, a round of every
/// size after another; the median is reported (a single epoch's time moves with whatever
/// else the machine does in those milliseconds). A dataset too small to hold out that many
/// rounds and keep half its rows as the state gets fewer (at least one).
const ROUNDS: usize = 5;
/// The held-out rows of one round.
const ROUND_ROWS: usize = 1 + 100 + 1_000 + 10_000;

fn main() {
    let sizes: Vec<u64> =
        env_list("SHOPFLOW_BENCH_EVENTS", "1000000,10000000").iter().map(|s| s.parse().expect("events")).collect();
    let workers: Vec<usize> = env_list("SHOPFLOW_BENCH_WORKERS", "1,2").iter().map(|s| s.parse().expect("w")).collect();
    let sets = env_list("SHOPFLOW_BENCH_SETS", "platform,all");
    for name in sets.iter().filter(|s| *s != "platform" && *s != "all").flat_map(|s| s.split('+')) {
        if !dataflows::ALL.contains(&name) {
            eprintln!("SHOPFLOW_BENCH_SETS: unknown output {name:?} (known: {})", dataflows::ALL.join(", "));
            std::process::exit(2);
        }
    }
    let id = Identity::new();
    id.print();
    println!("epoch {} ms\n", epoch_ms());
    println!("| events | outputs | workers | load s | +0 ms | +1 ms | +100 ms | +1000 ms | +10000 ms | move ms | batch recompute ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut history = History::open(
        "incremental",
        "events,epoch_ms,outputs,workers,load_s,ms_0,ms_1,ms_100,ms_1000,ms_10000,ms_move,batch_recompute_ms",
    );
    for &n in &sizes {
        let rows = Arc::new(read_rows(&dataset(n)));
        let rounds = (rows.len() / 2 / ROUND_ROWS).clamp(1, ROUNDS);
        let state = rows.len().checked_sub(rounds * ROUND_ROWS).expect("a dataset larger than one round of batches");
        let (platform_ms, platform_rows) = timed(|| batch::platform(&rows[..state]));
        let (cases_ms, case_rows) =
            if sets.iter().any(|s| s == "all") { batch_cases(&rows[..state]) } else { (0.0, 0) };
        for set in &sets {
            for &w in &workers {
                let r = incremental(rows.clone(), state, rounds, set, w);
                // load s, then ms: each batch, the move; the batch recompute (platform, all).
                let mut values = vec![r.load.as_secs_f64()];
                values.extend(r.batches.iter().chain([&r.category_move]).map(|d| d.as_secs_f64() * 1000.0));
                let recompute = match set.as_str() {
                    "platform" => Some(platform_ms),
                    "all" => Some(platform_ms + cases_ms),
                    _ => None,
                };
                let shown: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
                let recompute_shown = recompute.map_or("–".to_string(), |b| format!("{b:.0}"));
                println!("| {n} | {set} | {w} | {} | {recompute_shown} |", shown.join(" | "));
                let raw: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
                let recompute_raw = recompute.map_or(String::new(), |b| format!("{b:.1}"));
                history.append(&id, &format!("{n},{},{set},{w},{},{recompute_raw}", epoch_ms(), raw.join(",")));
            }
        }
        // The baseline's results are used, so they cannot be optimised away.
        println!("(batch recompute: {platform_rows} platform rows in {platform_ms:.0} ms; {case_rows} case rows in {cases_ms:.0} ms)");
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
    ts - ts % epoch_ms()
}

/// The recall rules of the UserBehavior sample runs.
fn rules() -> Vec<Rule> {
    platform::rules::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/recall_rules_taobao.toml")))
        .expect("rules")
}

/// The documented ad flags.
fn ad_params() -> AdParams {
    AdParams { refresh_ms: 300_000, min_impressions: 100, min_pctr: 10_000, set_size: 1000 }
}

/// An item's catalog row: online in `category`, not an ad.
fn catalog_row(category: CategoryId) -> CatalogRow {
    CatalogRow { category, seller: 0, price_cents: 0, online: true, is_ad: false, ad_bid_cents: 0 }
}

/// Loads `rows[..state]` into the dataflows of `set` on `workers` workers, then times each
/// batch of held-out rows and a category move (worker 0's clock).
fn incremental(rows: Arc<Vec<(Event, CategoryId)>>, state: usize, rounds: usize, set: &str, workers: usize) -> Timings {
    let outputs: Vec<String> = match set {
        "platform" => PLATFORM_OUTPUTS.split(',').map(String::from).collect(),
        "all" => dataflows::ALL.iter().map(|s| s.to_string()).collect(),
        names => names.split('+').map(String::from).collect(),
    };
    let rules = rules();
    let out_dir = common::bench_root().join(format!("out-incremental-{set}-w{workers}"));
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let result: Arc<Mutex<Option<Timings>>> = Arc::default();
    let result_w = result.clone();
    let log = Arc::new(SinkLog::new(false));
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let probe = ProbeHandle::new();
        let sinks =
            Sinks::new(index, peers, SinkKind::Csv, Envelope::Diff, out_dir.clone(), probe.clone(), log.clone());
        let params = Params { epoch_ms: epoch_ms(), ads: ad_params() };
        let dataflow = worker.next_dataflow_index();
        let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
            let (inputs, p) = platform::build(scope, params);
            for name in &outputs {
                dataflows::attach(name, &p, &sinks);
            }
            inputs
        });
        let mine = |i: usize| i % peers == index;
        let row = catalog_row;
        let settle = |inputs: &mut platform::InputHandles, worker: &mut timely::worker::Worker, until: Time| {
            inputs.advance_to(until);
            inputs.flush();
            worker.step_while(|| probe.less_than(&until));
        };
        // Load: each item's first category at time 0, then the events epoch by epoch, each
        // at its own epoch (a replay without a lateness limit), each epoch settled before
        // the next (as `shopflow run` does; all epochs at once would hold every epoch's
        // window and recall state at the same time).
        let mut seen: FxHashSet<ItemId> = FxHashSet::default();
        let catalog: Vec<(ItemId, CategoryId)> = rows[..state]
            .iter()
            .filter(|(e, _)| seen.insert(e.item) && e.item as usize % peers == index)
            .map(|(e, c)| (e.item, *c))
            .collect();
        let mut order: Vec<(Time, usize)> =
            rows[..state].iter().enumerate().map(|(i, (e, _))| (epoch(e.ts_ms), i)).collect();
        order.sort_unstable();
        let started = Instant::now();
        if index == 0 {
            for r in &rules {
                inputs.rules.update_at(*r, 0, 1);
            }
        }
        for (item, c) in catalog {
            inputs.catalog.update_at((item, 0, Some(row(c))), 0, 1);
        }
        for at_epoch in order.chunk_by(|a, b| a.0 == b.0) {
            let t = at_epoch[0].0;
            for &(_, i) in at_epoch.iter().filter(|(_, i)| mine(*i)) {
                inputs.events.update_at(rows[i].0, t, 1);
            }
            settle(&mut inputs, worker, t + epoch_ms());
        }
        let mut now = order.last().expect("rows").0 + epoch_ms();
        drop(order);
        let load = started.elapsed();
        // Rounds of batches of held-out rows, each at the next epoch, then the hottest
        // item moving to another category.
        let mut counts: FxHashMap<ItemId, (usize, CategoryId)> = FxHashMap::default();
        for (e, c) in &rows[..state] {
            counts.entry(e.item).or_insert((0, *c)).0 += 1;
        }
        let (&hot, &(_, category)) = counts.iter().max_by_key(|(item, (n, _))| (*n, *item)).expect("rows");
        let mut batches = vec![Vec::new(); BATCHES.len()];
        let mut moves = Vec::new();
        let mut next = state;
        for round in 0..rounds {
            for (size, times) in BATCHES.iter().zip(batches.iter_mut()) {
                let started = Instant::now();
                for i in next..next + size {
                    if mine(i) {
                        inputs.events.update_at(rows[i].0, now, 1);
                    }
                }
                next += size;
                now += epoch_ms();
                settle(&mut inputs, worker, now);
                times.push(started.elapsed());
            }
            // Each move is a new version of the item's row, in a category other than its last.
            let started = Instant::now();
            if index == 0 {
                let to = category + 1 + (round as CategoryId % 2);
                inputs.catalog.update_at((hot, 1 + round as u64, Some(row(to))), now, 1);
            }
            now += epoch_ms();
            settle(&mut inputs, worker, now);
            moves.push(started.elapsed());
        }
        if index == 0 {
            let median = |mut times: Vec<Duration>| common::quantile(&mut times, 0.5).expect("a round");
            let batches = batches.into_iter().map(median).collect();
            *result_w.lock().unwrap() = Some(Timings { load, batches, category_move: median(moves) });
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

/// `f()` and the milliseconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let started = Instant::now();
    let r = f();
    (started.elapsed().as_secs_f64() * 1000.0, r)
}

/// The eleven case outputs of `rows` from scratch at the last loaded epoch, as the
/// dataflows see them (each event at its epoch, each item online in its first category,
/// no ads, the bench's rules and ad flags): milliseconds and result rows. Building the
/// inputs (events with their times, the catalog) is not timed.
fn batch_cases(rows: &[(Event, CategoryId)]) -> (f64, usize) {
    let events: Vec<(Time, Event)> = rows.iter().map(|(e, _)| (epoch(e.ts_ms), *e)).collect();
    let mut catalog: FxHashMap<ItemId, CatalogRow> = FxHashMap::default();
    for (e, c) in rows {
        catalog.entry(e.item).or_insert_with(|| catalog_row(*c));
    }
    let t = events.iter().map(|e| e.0).max().expect("rows");
    let input = batch::CaseInput {
        events: &events,
        catalog: &catalog,
        ads_catalog: &catalog,
        rules: &rules(),
        ads: ad_params(),
        epoch_ms: epoch_ms(),
        t,
    };
    let (ms, out) = timed(|| batch::cases(&input));
    (ms, out.rows())
}
