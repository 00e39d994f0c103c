//! Question: under a steady input rate below the maximum (50 % and 80 % of the measured
//! unpaced throughput), how long does an epoch take from its last input line being read
//! to its outputs being written — p50, p99 and max — with 100 ms and 1 s epochs?
//!
//! Command: `cargo bench --bench latency`
//! (env: `SHOPFLOW_BENCH_LATENCY_EVENTS`, default 200000; `SHOPFLOW_BENCH_WORKERS`,
//! default `1,2`; `SHOPFLOW_BENCH_EPOCHS_MS`, default `100,1000`; `SHOPFLOW_BENCH_LOADS`,
//! default `0.5,0.8`; `SHOPFLOW_BENCH_SETS`, default `platform,all`;
//! `SHOPFLOW_BENCH_SHAPES`, default `live,sparse`; `SHOPFLOW_BENCH_LIVE_EVENTS`, default
//! 3000000; `SHOPFLOW_BENCH_LIVE_RATES`, default `50000,100000,200000,500000,1000000`).
//!
//! Two shapes of input. **live**: data whose event time advances like a live stream at a
//! given rate (`shopflow gen --days` packs the events so that each second of event time
//! holds `rate` events), replayed with `--speed 1`, so every epoch holds rate × epoch
//! events and arrives in real time (allowed lateness 1 s, as a live run would set it;
//! latency counts from when an epoch was due by the clock, so a reader falling behind
//! shows); for each rate, ascending, the epoch latency, until the
//! first rate at which p99 is not below one epoch (the highest rate before it is the
//! sustained rate the table's last column names). **sparse**: the 9-day generated data
//! (about one event per 0.78 s of event time, so nearly every event is its own epoch)
//! paced with `--rate`, which measures the per-epoch overhead:
//! for each setting, an unpaced run measures the maximum rate; then paced runs
//! (`--rate`) write `--latency-log` (one sample per advance of worker 0's input frontier:
//! from the advance — every line before it read — to every output's sink having written
//! the epochs before it). Samples after the input ends (the window expiries that follow)
//! are left out. Results print as a Markdown table and are appended to
//! `bench-data/latency.csv`.

mod common;

use common::{dataset, env_list, env_or, live_dataset, run_measured, History, Identity, PLATFORM_OUTPUTS};

fn main() {
    let shapes = env_list("SHOPFLOW_BENCH_SHAPES", "live,sparse");
    let id = Identity::new();
    id.print();
    let log = common::bench_root().join("latency-log.csv");
    let log = log.to_str().expect("utf-8 path");
    for shape in &shapes {
        match shape.as_str() {
            "live" => live(&id, log),
            "sparse" => sparse(&id, log),
            other => panic!("SHOPFLOW_BENCH_SHAPES: unknown shape {other}"),
        }
    }
}

/// One measured setting: output set, epoch, workers, and its output directory.
struct Setting {
    set: String,
    epoch: String,
    w: String,
    out: String,
}

/// Every setting of `SHOPFLOW_BENCH_SETS` × `SHOPFLOW_BENCH_EPOCHS_MS` × `SHOPFLOW_BENCH_WORKERS`.
fn settings() -> Vec<Setting> {
    let mut all = Vec::new();
    for set in env_list("SHOPFLOW_BENCH_SETS", "platform,all") {
        for epoch in env_list("SHOPFLOW_BENCH_EPOCHS_MS", "100,1000") {
            for w in env_list("SHOPFLOW_BENCH_WORKERS", "1,2") {
                let out = common::bench_root().join(format!("out-latency-{set}-w{w}"));
                let out = out.to_str().expect("utf-8 path").to_string();
                all.push(Setting { set: set.clone(), epoch: epoch.clone(), w, out });
            }
        }
    }
    all
}

/// The `run` arguments of one setting.
fn run_args<'a>(set: &str, epoch: &'a str, w: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run", "--format", "userbehavior", "--epoch-ms", epoch, "-w", w, "-q"];
    args.extend(["--events", data, "--out", out]);
    match set {
        "platform" => args.extend(["--outputs", PLATFORM_OUTPUTS]),
        "all" => args.extend(["--rules", concat!(env!("CARGO_MANIFEST_DIR"), "/data/recall_rules_taobao.toml")]),
        other => panic!("SHOPFLOW_BENCH_SETS: unknown set {other}"),
    }
    args
}

/// Live-shaped data replayed in real time, at ascending rates.
fn live(id: &Identity, log: &str) {
    let events: u64 = env_or("SHOPFLOW_BENCH_LIVE_EVENTS", "3000000").parse().expect("events");
    let rates: Vec<u64> = env_list("SHOPFLOW_BENCH_LIVE_RATES", "50000,100000,200000,500000,1000000")
        .iter()
        .map(|s| s.parse().expect("rate"))
        .collect();
    println!("\nlive shape: {events} UserBehavior rows at each rate of event time, replayed with --speed 1\n");
    println!("| outputs | epoch ms | workers | events/s | events per epoch | samples | p50 ms | p99 ms | max ms | wall s | p99 < epoch |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut history =
        History::open("latency-live", "events,outputs,epoch_ms,workers,rate,samples,p50_ms,p99_ms,max_ms,wall_s,held");
    for Setting { set, epoch, w, out } in settings() {
        let epoch_ms: f64 = epoch.parse().expect("epoch");
        for &rate in &rates {
            let data = live_dataset(events, rate);
            let data = data.to_str().expect("utf-8 path");
            let mut args = run_args(&set, &epoch, &w, data, &out);
            args.extend(["--speed", "1", "--lateness-ms", "1000", "--latency-log", log]);
            let wall = run_measured(&args).wall_s;
            let (samples, p50, p99, max) = percentiles(log, data);
            let held = p99 < epoch_ms;
            let per_epoch = rate as f64 * epoch_ms / 1000.0;
            println!(
                        "| {set} | {epoch} | {w} | {rate} | {per_epoch:.0} | {samples} | {p50:.1} | {p99:.1} | {max:.1} | {wall:.1} | {} |",
                        if held { "yes" } else { "**no**" }
                    );
            history.append(
                id,
                &format!("{events},{set},{epoch},{w},{rate},{samples},{p50:.2},{p99:.2},{max:.2},{wall:.2},{held}"),
            );
            if !held {
                break;
            }
        }
    }
    println!("\nappended to {}", common::bench_root().join("latency-live.csv").display());
}

/// The 9-day data paced at 50 % and 80 % of its unpaced rate.
fn sparse(id: &Identity, log: &str) {
    let events: u64 = env_or("SHOPFLOW_BENCH_LATENCY_EVENTS", "200000").parse().expect("events");
    let loads: Vec<f64> =
        env_list("SHOPFLOW_BENCH_LOADS", "0.5,0.8").iter().map(|s| s.parse().expect("load")).collect();
    let data = dataset(events);
    let data = data.to_str().expect("utf-8 path");
    println!("\nsparse shape: {data} ({events} UserBehavior rows)\n");
    println!("| outputs | epoch ms | workers | max events/s | load | rate | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut history =
        History::open("latency", "events,outputs,epoch_ms,workers,max_rate,load,rate,samples,p50_ms,p99_ms,max_ms");
    for Setting { set, epoch, w, out } in settings() {
        let base = run_args(&set, &epoch, &w, data, &out);
        let max_rate = events as f64 / run_measured(&base).wall_s;
        for &load in &loads {
            let rate = format!("{:.0}", max_rate * load);
            let mut args = base.clone();
            args.extend(["--rate", &rate, "--latency-log", log]);
            run_measured(&args);
            let (samples, p50, p99, max) = percentiles(log, data);
            println!(
                        "| {set} | {epoch} | {w} | {max_rate:.0} | {load} | {rate} | {samples} | {p50:.1} | {p99:.1} | {max:.1} |"
                    );
            history.append(
                id,
                &format!("{events},{set},{epoch},{w},{max_rate:.0},{load},{rate},{samples},{p50:.2},{p99:.2},{max:.2}"),
            );
        }
    }
    println!("\nappended to {}", common::bench_root().join("latency.csv").display());
}

/// `(samples, p50, p99, max)` in ms of a latency log, over the frontiers up to the input's
/// last timestamp (later ones are the window expiries after the input ended).
fn percentiles(log: &str, data: &str) -> (usize, f64, f64, f64) {
    let last_ts = std::fs::read_to_string(data)
        .expect("dataset")
        .lines()
        .filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(u64::MAX)
        .saturating_mul(1000);
    let mut v: Vec<f64> = std::fs::read_to_string(log)
        .expect("latency log")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (t, us) = l.split_once(',')?;
            (t.parse::<u64>().ok()? <= last_ts).then(|| us.parse::<f64>().ok().map(|us| us / 1000.0))?
        })
        .collect();
    let mut at = |q: f64| common::quantile(&mut v, q).unwrap_or(f64::NAN);
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    (v.len(), p50, p99, max)
}
