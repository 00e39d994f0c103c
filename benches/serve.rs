//! Question: how many lookups per second does `--serve` answer, at what p50/p99 latency,
//! with 1, 8 and 64 concurrent keep-alive clients (single `GET /v1/items/{id}` and
//! `POST /v1/items:batch` of 100 ids) while a replay ingests at full speed — and how much
//! does that load slow the ingest?
//!
//! Command: `cargo bench --bench serve`
//! (env: `SHOPFLOW_BENCH_SERVE_EVENTS`, default 3000000, the UserBehavior dataset;
//! `SHOPFLOW_BENCH_WORKERS`, default 2).
//!
//! Runs of the release binary over the same dataset, every output, hourly epochs,
//! `--serve 127.0.0.1:0`: one without load, then one per load phase, then one more without
//! load (the ingest ratio is taken against the mean of the two: the machine's speed drifts
//! over a bench), the load driven by
//! `wrk` (Debian's package, installed by `.ci/run`) from the moment the server is ready
//! for as long as the quiet run took after it was ready (at least 10 s), with random item ids of the dataset. The ingest
//! rate of a run is its events over its wall time from start to the end of the input. The
//! server's own `/metrics` tells how many lookups answered 200 (early in a replay some ids
//! are not seen yet: 404, lookups all the same) and how long they took in the handler
//! ("server p99": the bucket of its latency histogram holding the 99th percentile; the
//! client's p99 adds the network and the wait for a CPU). Results print as a Markdown table and are
//! appended to `bench-data/serve.csv`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{dataset, env_or, History, Identity, BIN};

/// One load phase: what is asked, by how many clients.
struct Phase {
    batch: bool,
    clients: u32,
}

const PHASES: [Phase; 5] = [
    Phase { batch: false, clients: 1 },
    Phase { batch: false, clients: 8 },
    Phase { batch: false, clients: 64 },
    Phase { batch: true, clients: 1 },
    Phase { batch: true, clients: 8 },
];

/// Ids per batch request.
const BATCH: usize = 100;

struct Serving {
    child: Child,
    base: String,
    /// The run's stderr lines, each with when it was read.
    lines: mpsc::Receiver<(Instant, String)>,
    agent: ureq::Agent,
    started: Instant,
}

impl Serving {
    fn start(data: &str, workers: &str, out: &str) -> Serving {
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/data/recall_rules_taobao.toml");
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args(["run", "--format", "userbehavior", "--epoch-ms", "3600000", "-w", workers, "-q"])
            .args(["--events", data, "--out", out, "--rules", rules, "--serve", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shopflow runs");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        let (_, first) = lines.recv_timeout(Duration::from_secs(60)).expect("the serving line");
        let base =
            first.strip_prefix("shopflow: serving ").unwrap_or_else(|| panic!("unexpected: {first}")).to_string();
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let s = Serving { child, base, lines, agent, started };
        while s.status("/readyz") != 200 {
            assert!(started.elapsed() < Duration::from_secs(600), "never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn status(&self, path: &str) -> u16 {
        self.agent.get(format!("{}{path}", self.base)).call().map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// What the server's `/metrics` says of `route` so far.
    fn counted(&self, route: &str) -> Counted {
        let text = self
            .agent
            .get(format!("{}/metrics", self.base))
            .call()
            .expect("metrics")
            .body_mut()
            .read_to_string()
            .unwrap();
        let value = |l: &str| -> f64 { l.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0) };
        let ok = format!("shopflow_http_requests_total{{route=\"{route}\",status=\"200\"}}");
        let bucket = format!("shopflow_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"");
        Counted {
            answered: text.lines().find(|l| l.starts_with(&ok)).map(value).unwrap_or(0.0),
            buckets: text
                .lines()
                .filter_map(|l| {
                    let le = l.strip_prefix(&bucket)?.split('"').next()?;
                    Some((le.parse().unwrap_or(f64::INFINITY), value(l)))
                })
                .collect(),
        }
    }

    /// Seconds from the start until the input ended (waits for it; the time is when the
    /// run said so, not when this is asked: a load may outlast a fast replay).
    fn wait_input_end(&self) -> f64 {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(3600)) {
                Ok((at, line)) if line.contains("the run is complete") => return (at - self.started).as_secs_f64(),
                Ok(_) => {}
                Err(_) => panic!("the run did not complete"),
            }
        }
    }

    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The server's own count of a route: requests answered 200, and its latency histogram
/// (cumulative counts per upper bound in seconds: the time in the handler, from the request
/// read to the response made; what the client sees adds the network and the scheduler).
struct Counted {
    answered: f64,
    buckets: Vec<(f64, f64)>,
}

impl Counted {
    /// The upper bound (ms) of the bucket holding the 99th percentile of the requests
    /// counted between `before` and `self`.
    fn p99_ms(&self, before: &Counted) -> f64 {
        let delta = |le: f64, n: f64| n - before.buckets.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, m)| *m);
        let total = self.buckets.last().map_or(0.0, |&(le, n)| delta(le, n));
        let bound = self.buckets.iter().find(|&&(le, n)| delta(le, n) >= 0.99 * total).map_or(f64::NAN, |(le, _)| *le);
        bound * 1000.0
    }
}

/// wrk's results: requests/s, p50 and p99 in ms.
struct Load {
    requests_per_s: f64,
    /// Requests sent in all.
    total: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `wrk` on `base` for `seconds` with `phase`'s clients; ids drawn from `ids`.
fn wrk(base: &str, phase: &Phase, seconds: u64, script: &std::path::Path) -> Load {
    let threads = phase.clients.min(2).to_string();
    let out = Command::new("wrk")
        .args(["-t", &threads, "-c", &phase.clients.to_string(), "-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("{base}/"))
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let ms = |label: &str| {
        let line = text.lines().map(str::trim).find(|l| l.starts_with(label)).unwrap_or("");
        let value = line.split_whitespace().nth(1).unwrap_or("0");
        let (n, unit) = value.split_at(value.find(|c: char| c.is_alphabetic()).unwrap_or(value.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    // "N requests in S s, B read"
    let total = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
        eprintln!("wrk: {}", line.trim());
    }
    Load { requests_per_s: rps, total, p50_ms: ms("50%"), p99_ms: ms("99%") }
}

/// A wrk script asking for random ids of `ids`, singly or in batches.
fn script(dir: &std::path::Path, ids: &[u64], batch: bool) -> std::path::PathBuf {
    let path = dir.join(if batch { "batch.lua" } else { "single.lua" });
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut f = std::fs::File::create(&path).expect("wrk script");
    writeln!(f, "local ids = {{{}}}", list.join(",")).unwrap();
    if batch {
        writeln!(
            f,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             request = function()\n  local t = {{}}\n  for i = 1, {BATCH} do t[i] = ids[math.random(#ids)] end\n  \
             return wrk.format(\"POST\", \"/v1/items:batch\", nil, '{{\"ids\":[' .. table.concat(t, \",\") .. ']}}')\nend"
        )
        .unwrap();
    } else {
        writeln!(
            f,
            "request = function()\n  return wrk.format(\"GET\", \"/v1/items/\" .. ids[math.random(#ids)])\nend"
        )
        .unwrap();
    }
    path
}

fn main() {
    let events: u64 = env_or("SHOPFLOW_BENCH_SERVE_EVENTS", "3000000").parse().expect("events");
    let workers = env_or("SHOPFLOW_BENCH_WORKERS", "2");
    let id = Identity::new();
    id.print();
    let data = dataset(events);
    let data = data.to_str().expect("utf-8 path");
    let root = common::bench_root();
    let out = root.join("out-serve");
    let out = out.to_str().expect("utf-8 path");

    // Item ids of the dataset (the first column of its rows is the user, the second the item).
    let ids: Vec<u64> = {
        let text = std::fs::read_to_string(data).expect("the dataset");
        let mut ids: Vec<u64> = text.lines().take(200_000).filter_map(|l| l.split(',').nth(1)?.parse().ok()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(20_000);
        ids
    };
    let single = script(&root, &ids, false);
    let batch = script(&root, &ids, true);

    // Without load: the replay's time to the end of its input, and to readiness.
    let quiet = || {
        let quiet = Serving::start(data, &workers, out);
        let ready_s = quiet.started.elapsed().as_secs_f64();
        let quiet_s = quiet.wait_input_end();
        quiet.stop();
        (ready_s, quiet_s)
    };
    let (ready_s, first_s) = quiet();
    // At least 10 s (a replay that is ready late still gets a load worth measuring).
    let seconds = (first_s - ready_s).max(10.0).round() as u64;
    let mut loaded_runs = Vec::new();
    for phase in &PHASES {
        let loaded = Serving::start(data, &workers, out);
        let route = if phase.batch { "/v1/items:batch" } else { "/v1/items/{id}" };
        let before = loaded.counted(route);
        let load = wrk(&loaded.base, phase, seconds, if phase.batch { &batch } else { &single });
        let after = loaded.counted(route);
        let ok = (after.answered - before.answered) / load.total.max(1.0);
        let server_p99 = after.p99_ms(&before);
        let wall = loaded.wait_input_end();
        loaded.stop();
        loaded_runs.push((phase, load, ok, server_p99, events as f64 / wall));
    }
    // Without load again, after the loaded runs: the machine's speed drifts over the bench,
    // so the ingest ratio is taken against the mean of the quiet runs before and after.
    let (_, last_s) = quiet();
    let quiet_rate = events as f64 / ((first_s + last_s) / 2.0);
    println!(
        "{events} UserBehavior events, every output, -w{workers}, hourly epochs; load for {seconds} s from ready; \
         without load: {first_s:.1} s before the loaded runs, {last_s:.1} s after (mean {quiet_rate:.0} events/s)\n"
    );
    println!(
        "| requests | clients | lookups/s | answered 200 | requests/s | p50 ms | p99 ms | server p99 ms ≤ | ingest events/s with load | ratio to without |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut history = History::open(
        "serve",
        "events,workers,request,clients,lookups_per_s,answered_200,requests_per_s,p50_ms,p99_ms,server_p99_ms,ingest_loaded,ingest_quiet",
    );
    for (phase, load, ok, server_p99, rate) in loaded_runs {
        let per = if phase.batch { BATCH as f64 } else { 1.0 };
        let kind = if phase.batch { format!("batch of {BATCH}") } else { "single".to_string() };
        println!(
            "| {kind} | {} | {:.0} | {:.0} % | {:.0} | {:.2} | {:.2} | {server_p99} | {rate:.0} | {:.2} |",
            phase.clients,
            load.requests_per_s * per,
            ok * 100.0,
            load.requests_per_s,
            load.p50_ms,
            load.p99_ms,
            rate / quiet_rate,
        );
        history.append(
            &id,
            &format!(
                "{events},{workers},{kind},{},{:.0},{:.3},{:.0},{:.3},{:.3},{server_p99},{rate:.0},{quiet_rate:.0}",
                phase.clients,
                load.requests_per_s * per,
                ok,
                load.requests_per_s,
                load.p50_ms,
                load.p99_ms,
            ),
        );
    }
}
