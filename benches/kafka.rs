//! `cargo bench --bench kafka`: the Kafka source and sink against a real broker (tansu on
//! loopback, in-memory storage; found or installed as the tests do, `tests/support/broker.rs`).
//!
//! 1. **Throughput**: the same UserBehavior data (`SHOPFLOW_BENCH_KAFKA_EVENTS`, default
//!    1 000 000; produced to a topic of 4 partitions) read from the file and from the topic,
//!    the platform outputs, hourly epochs, `-w 2`, csv sink; then from the topic to output
//!    topics. Runs alternate file/topic (`SHOPFLOW_BENCH_KAFKA_RUNS`, default 3); medians.
//! 2. **End-to-end latency**: a producer paced at `SHOPFLOW_BENCH_KAFKA_RATE` events/s
//!    (default 20 000) for `SHOPFLOW_BENCH_KAFKA_SECONDS` (default 20), each event stamped
//!    with the wall clock, into a `--follow` run (1 s epochs, `--lateness-ms 0`, output
//!    topics); a consumer follows an output topic's progress records. For a progress record
//!    `F` that arrives at wall time `W`, every event before `F` was produced by wall time
//!    `F`: `W - F` is the time from the last event of the completed epochs being produced to
//!    their output being whole in the output topic. Percentiles over the records after the
//!    first 3 s.
//!
//! `SHOPFLOW_BENCH_KAFKA_PARTS` (default `throughput,latency`) picks the parts. Rows are
//! appended to `bench-data/kafka.csv`.

#[path = "../tests/support/broker.rs"]
#[allow(dead_code)]
mod broker;
mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{dataset, env_or, quantile, run_measured, History, Identity, BIN, PLATFORM_OUTPUTS};
use kafka::KafkaUrl;
use platform::utc::now_ms;

fn median(mut v: Vec<f64>) -> f64 {
    quantile(&mut v, 0.5).expect("runs")
}

fn ok(args: &[&str]) {
    let status = Command::new(BIN).args(args).stdout(Stdio::null()).status().expect("shopflow runs");
    assert!(status.success(), "shopflow {args:?} failed");
}

fn main() {
    let id = Identity::new();
    id.print();
    let events: u64 = env_or("SHOPFLOW_BENCH_KAFKA_EVENTS", "1000000").parse().expect("a number");
    let runs: usize = env_or("SHOPFLOW_BENCH_KAFKA_RUNS", "3").parse().expect("a number");
    let rate: u64 = env_or("SHOPFLOW_BENCH_KAFKA_RATE", "20000").parse().expect("a number");
    let seconds: u64 = env_or("SHOPFLOW_BENCH_KAFKA_SECONDS", "20").parse().expect("a number");
    let scratch = common::bench_root().join("kafka");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let broker = broker::Broker::start(&scratch);
    let mut history = History::open(
        "kafka",
        "part,events,runs,file_wall_s,topic_wall_s,file_events_per_s,topic_events_per_s,topic_to_topics_events_per_s,\
         produce_events_per_s,rate,p50_ms,p99_ms,max_ms,samples",
    );

    let parts = env_or("SHOPFLOW_BENCH_KAFKA_PARTS", "throughput,latency");
    let out = scratch.join("out");
    let out = out.to_str().unwrap();
    if parts.contains("throughput") {
        throughput(&broker, &id, &mut history, events, runs, out);
    }
    if parts.contains("latency") {
        latency(&broker, &id, &mut history, rate, seconds, out, &scratch);
    }
}

/// Part 1: file vs topic, and topic to topics.
fn throughput(broker: &broker::Broker, id: &Identity, history: &mut History, events: u64, runs: usize, out: &str) {
    let data = dataset(events);
    let data = data.to_str().unwrap();
    let topic = broker.url("ub");
    ok(&["kafka", "create", &topic, "--partitions", "4"]);
    let started = Instant::now();
    ok(&["kafka", "produce", &topic, data, "--format", "userbehavior"]);
    let produce_rate = events as f64 / started.elapsed().as_secs_f64();
    let base = [
        "run",
        "--format",
        "userbehavior",
        "--outputs",
        PLATFORM_OUTPUTS,
        "--epoch-ms",
        "3600000",
        "-w",
        "2",
        "--out",
        out,
    ];
    let (mut file, mut from_topic, mut to_topics) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        file.push(run_measured(&[&base[..], &["--events", data]].concat()).wall_s);
        from_topic.push(run_measured(&[&base[..], &["--events", &topic]].concat()).wall_s);
        let sink = broker.url(&format!("bench{run}"));
        to_topics.push(run_measured(&[&base[..], &["--events", &topic, "--sink", &sink]].concat()).wall_s);
    }
    let (f, t, tt) = (median(file), median(from_topic), median(to_topics));
    println!(
        "throughput: {events} UserBehavior events, platform outputs, hourly epochs, -w 2, {runs} runs each (medians)"
    );
    println!("  produce (shopflow kafka produce, 4 partitions): {produce_rate:.0} events/s");
    println!("  file  -> csv:    {f:.2} s, {:.0} events/s", events as f64 / f);
    println!("  topic -> csv:    {t:.2} s, {:.0} events/s (topic/file wall {:.2})", events as f64 / t, t / f);
    println!("  topic -> topics: {tt:.2} s, {:.0} events/s", events as f64 / tt);
    history.append(
        id,
        &format!(
            "throughput,{events},{runs},{f:.3},{t:.3},{:.0},{:.0},{:.0},{produce_rate:.0},,,,,",
            events as f64 / f,
            events as f64 / t,
            events as f64 / tt
        ),
    );
}

/// Part 2: end-to-end latency under a paced producer.
fn latency(
    broker: &broker::Broker,
    id: &Identity,
    history: &mut History,
    rate: u64,
    seconds: u64,
    out: &str,
    scratch: &std::path::Path,
) {
    let log = scratch.join("latency-log.csv");
    let live = broker.url("live");
    ok(&["kafka", "create", &live, "--partitions", "4"]);
    let prefix = broker.url("lat");
    let mut run = Command::new(BIN)
        .args(["run", "--events", &live, "--follow", "--outputs", "item_stats,user_stats,scene_stats"])
        .args(["--epoch-ms", "1000", "--lateness-ms", "0", "--kafka-idle-ms", "2000", "-w", "2", "-q"])
        .args(["--sink", &prefix, "--out", out, "--latency-log", log.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .expect("the live run starts");
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let done = done.clone();
        let url = KafkaUrl::parse(&format!("{prefix}.item_stats")).unwrap();
        std::thread::spawn(move || {
            let mut samples: Vec<(u64, u64)> = Vec::new();
            // The topic exists once the run has made it.
            let started = Instant::now();
            loop {
                let result = kafka::admin::follow(&url, |record| {
                    if let Some(r) = record.filter(|r| r.key.as_deref() == Some(kafka::sink::PROGRESS_KEY)) {
                        let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                        let frontier = value["progress"].as_u64().unwrap();
                        samples.push((frontier, now_ms()));
                    }
                    !done.load(Ordering::SeqCst)
                });
                if result.is_ok() || started.elapsed() > Duration::from_secs(30) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        })
    };
    let lines = kafka::admin::Lines::open(&KafkaUrl::parse(&live).unwrap()).expect("a producer");
    let begin = Instant::now();
    let first_ms = now_ms();
    let mut sent = 0u64;
    let mut x: u64 = 1;
    while begin.elapsed() < Duration::from_secs(seconds) {
        let due = (begin.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (user, item) = ((x >> 33) % 100_000, (x >> 13) % 50_000);
            let line =
                format!("{},{user},{item},search,{},0,0", now_ms(), if x % 10 == 0 { "click" } else { "impression" });
            lines.send(user.to_string().as_bytes(), line.as_bytes()).expect("produced");
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    lines.flush().expect("flushed");
    std::thread::sleep(Duration::from_secs(3));
    done.store(true, Ordering::SeqCst);
    let samples = follower.join().expect("the follower");
    // SIGTERM: a clean stop.
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    let _ = run.wait();
    let mut latencies: Vec<u64> = samples
        .iter()
        .filter(|(frontier, _)| *frontier >= first_ms + 3000 && *frontier != u64::MAX)
        .map(|(frontier, at)| at.saturating_sub(*frontier))
        .collect();
    println!(
        "\nlatency: paced producer {rate} events/s for {seconds} s ({sent} events), --follow run, 1 s epochs, \
         --lateness-ms 0, -w 2, Kafka sink; progress records of item_stats"
    );
    if latencies.is_empty() {
        println!("  no progress record after the first 3 s");
        return;
    }
    let mut at = |q| quantile(&mut latencies, q).expect("samples");
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    println!("  produce -> output whole: p50 {p50} ms, p99 {p99} ms, max {max} ms ({} samples)", latencies.len());
    // Inside the run: from worker 0 moving its input frontier to every output having
    // written it (--latency-log).
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut inside: Vec<u64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .filter(|(f, _)| f.parse::<u64>().is_ok_and(|f| f >= first_ms + 3000))
        .filter_map(|(_, us)| us.parse::<u64>().ok())
        .map(|us| us / 1000)
        .collect();
    if let (Some(p50), Some(p99)) = (quantile(&mut inside, 0.5), quantile(&mut inside, 0.99)) {
        println!(
            "  inside the run (input frontier moved -> outputs written): p50 {p50} ms, p99 {p99} ms ({} samples)",
            inside.len()
        );
    }
    history.append(id, &format!("latency,{sent},,,,,,,,{rate},{p50},{p99},{max},{}", latencies.len()));
}
