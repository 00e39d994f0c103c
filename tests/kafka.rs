//! The Kafka source and sink against a real Kafka-protocol broker (tansu, started per
//! test on loopback; see `support/broker.rs`): topics give the outputs files give, at any
//! number of workers and processes; output topics hold the file sink's rows in both
//! envelopes; JSON values; bad rows; a broker down at start or lost mid-run; and a run
//! killed with SIGKILL and restarted writes every record exactly once.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::broker::{free_port, Broker};
use support::{scratch, BIN};

/// Lateness that makes no sample row late: times are then each row's own epoch, whatever
/// the watermark (a file's, or a partition's).
const NO_LATENESS: &str = "100000000000";

fn shopflow(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn ok(args: &[&str]) -> Output {
    let o = shopflow(args);
    assert!(o.status.success(), "shopflow {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn create(url: &str, partitions: u32) {
    ok(&["kafka", "create", url, "--partitions", &partitions.to_string()]);
}

fn produce(url: &str, file: &Path, extra: &[&str]) {
    ok(&[&["kafka", "produce", url, file.to_str().unwrap()][..], extra].concat());
}

/// The records of a topic: `(partition, offset, key, value)` as printed by `kafka read`.
fn records(url: &str) -> Vec<(u32, u64, String, String)> {
    parse_records(&ok(&["kafka", "read", url]))
}

/// The lines of a `kafka read` as records.
fn parse_records(o: &Output) -> Vec<(u32, u64, String, String)> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let mut f = l.splitn(4, '\t');
            let (p, o, k, v) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (p.parse().unwrap(), o.parse().unwrap(), k.to_string(), v.to_string())
        })
        .collect()
}

/// The data records (no progress records) as `(partition, key, value)`, in order.
fn data_records(url: &str) -> Vec<(u32, String, String)> {
    only_data(records(url))
}

fn only_data(records: Vec<(u32, u64, String, String)>) -> Vec<(u32, String, String)> {
    records.into_iter().filter(|r| r.2 != "\"__progress\"").map(|(p, _, k, v)| (p, k, v)).collect()
}

/// Every file of `dir` but the run's bookkeeping (and `rejected.csv` unless `rejected`).
fn files(dir: &Path, rejected: bool) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".csv") && (rejected || name != "rejected.csv")
        })
        .map(|p| (p.file_name().unwrap().to_str().unwrap().to_string(), fs::read_to_string(&p).unwrap()))
        .collect()
}

fn assert_same(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>, what: &str) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: files");
    for (name, text) in a {
        assert!(
            text == &b[name],
            "{what}: {name} differs ({} vs {} lines)",
            text.lines().count(),
            b[name].lines().count()
        );
    }
}

/// The fields of a flat JSON object as written (numbers as their text, strings
/// unescaped, `null` empty), in order.
fn json_fields(object: &str) -> Vec<(String, String)> {
    let body = object.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}')).expect("a JSON object");
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        let name = de.next().unwrap().unwrap();
        rest = rest[de.byte_offset()..].strip_prefix(':').unwrap();
        let value = if rest.starts_with('"') {
            let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let v = de.next().unwrap().unwrap();
            rest = &rest[de.byte_offset()..];
            v
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let v = &rest[..end];
            rest = &rest[end..];
            if v == "null" {
                String::new()
            } else {
                v.to_string()
            }
        };
        out.push((name, value));
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

/// An output topic as the csv sink writes the output: the header, then per record
/// `time,diff,<columns>` (diff envelope) or `op,<columns>` (upsert envelope: a delete is
/// a tombstone, which carries no time, so neither side keeps the time column).
fn topic_as_csv(url: &str, header: &str, upsert: bool) -> Vec<String> {
    let columns: Vec<&str> = header.split(',').skip(2).collect();
    let mut lines = Vec::new();
    for (_, key, value) in data_records(url) {
        if value == "null" {
            let key: BTreeMap<String, String> = json_fields(&key).into_iter().collect();
            let fields: Vec<String> = columns.iter().map(|c| key.get(*c).cloned().unwrap_or_default()).collect();
            lines.push(format!("delete,{}", fields.join(",")));
            continue;
        }
        let fields: BTreeMap<String, String> = json_fields(&value).into_iter().collect();
        let row: Vec<String> = columns.iter().map(|c| fields[*c].clone()).collect();
        if upsert {
            lines.push(format!("upsert,{}", row.join(",")));
        } else {
            lines.push(format!("{},{},{}", fields["time"], fields["diff"], row.join(",")));
        }
    }
    lines
}

/// The csv sink's file as [`topic_as_csv`] renders a topic.
fn file_as_records(text: &str, upsert: bool) -> Vec<String> {
    text.lines()
        .skip(1)
        .map(|l| if upsert { l.split_once(',').unwrap().1.to_string() } else { l.to_string() })
        .collect()
}

fn sample() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    (root.join("data/events.csv"), root.join("data/catalog.csv"))
}

/// A hostfile for two processes on loopback.
fn hostfile(dir: &Path) -> String {
    let path = dir.join(format!("hosts-{}", free_port()));
    fs::write(&path, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `args` as processes 0 and 1 of a two-process run; both must succeed.
fn two_processes(dir: &Path, args: &[&str]) {
    let hosts = hostfile(dir);
    let children: Vec<_> = ["0", "1"]
        .iter()
        .map(|p| {
            Command::new(BIN)
                .args(args)
                .args(["-n", "2", "-p", p, "-h", &hosts])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "two processes {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// The sample's events (4 partitions) and catalog (2) read from topics give the files'
/// outputs (with no row late: a partition's watermark is not the file's); with the
/// default lateness, the same at 1 and 2 workers and 2 processes; rejected rows name the
/// topic, partition and offset.
#[test]
fn topics_give_the_outputs_of_the_files() {
    let dir = scratch("source");
    let broker = Broker::start(&dir);
    let (events, catalog) = sample();
    let (ev, cat) = (broker.url("events"), broker.url("catalog"));
    create(&ev, 4);
    create(&cat, 2);
    produce(&ev, &events, &[]);
    produce(&cat, &catalog, &[]);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/recall_rules.toml");
    let rules = rules.to_str().unwrap();
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();

    let file = out("file");
    ok(&["run", "--events", events.to_str().unwrap(), "--catalog", catalog.to_str().unwrap(), "--rules", rules]
        .into_iter()
        .chain(["--lateness-ms", NO_LATENESS, "-w", "2", "-q", "--out", &file])
        .collect::<Vec<_>>());
    let topics = out("topics");
    let run = ["run", "--events", &ev, "--catalog", &cat, "--rules", rules, "-q"];
    ok(&[&run[..], &["--lateness-ms", NO_LATENESS, "-w", "1", "--out", &topics]].concat());
    assert_same(&files(Path::new(&file), false), &files(Path::new(&topics), false), "topics vs files");
    assert!(files(Path::new(&file), false)["item_stats.csv"].lines().count() > 1000);

    // The same rows rejected, each named by partition and offset (the file's blank
    // lines are messages too).
    let rejected = |dir: &str| -> Vec<String> {
        let text = fs::read_to_string(Path::new(dir).join("rejected.csv")).unwrap();
        let mut rows: Vec<String> =
            text.lines().skip(1).map(|l| l.splitn(3, ',').nth(2).unwrap().to_string()).collect();
        rows.sort();
        rows
    };
    assert_eq!(rejected(&file), rejected(&topics));
    let text = fs::read_to_string(Path::new(&topics).join("rejected.csv")).unwrap();
    let first = text.lines().nth(1).expect("a rejected row");
    let (at, offset) = {
        let mut f = first.splitn(3, ',');
        (f.next().unwrap().to_string(), f.next().unwrap().parse::<u64>().unwrap())
    };
    let partition: u32 = at.strip_prefix(&format!("{ev}#")).expect("topic#partition").parse().unwrap();
    let message = records(&ev).into_iter().find(|r| r.0 == partition && r.1 == offset).expect("the message");
    assert!(first.ends_with(&message.3) || first.contains(&message.3), "{first} vs {message:?}");

    // Default lateness (rows late by their partition's watermark): the same at any
    // number of workers and processes.
    let w1 = out("w1");
    ok(&[&run[..], &["-w", "1", "--out", &w1]].concat());
    let w2 = out("w2");
    ok(&[&run[..], &["-w", "3", "--out", &w2]].concat());
    let p2 = out("p2");
    two_processes(&dir, &[&run[..], &["-w", "2", "--out", &p2]].concat());
    let one = files(Path::new(&w1), true);
    assert_same(&one, &files(Path::new(&w2), true), "-w1 vs -w3");
    assert_same(&one, &files(Path::new(&p2), true), "-w1 vs two processes");
}

/// Every output topic holds the csv sink's rows, record for record, in both envelopes,
/// written by 2 workers and by two processes; each topic ends with a progress record.
#[test]
fn output_topics_hold_the_file_sinks_rows() {
    let dir = scratch("sink");
    let broker = Broker::start(&dir);
    let (events, catalog) = sample();
    let base = ["run", "--events", events.to_str().unwrap(), "--catalog", catalog.to_str().unwrap(), "-q"];
    for (envelope, upsert) in [("diff", false), ("upsert", true)] {
        let file = dir.join(format!("file-{envelope}"));
        ok(&[&base[..], &["--envelope", envelope, "-w", "2", "--out", file.to_str().unwrap()]].concat());
        let csv = files(&file, false);
        let prefix = broker.url(&format!("w2{envelope}"));
        let out = dir.join(format!("kafka-{envelope}"));
        ok(&[&base[..], &["--envelope", envelope, "-w", "2", "--sink", &prefix, "--out", out.to_str().unwrap()]]
            .concat());
        let prefix2 = broker.url(&format!("p2{envelope}"));
        let out2 = dir.join(format!("kafka2-{envelope}"));
        two_processes(
            &dir,
            &[&base[..], &["--envelope", envelope, "-w", "1", "--sink", &prefix2, "--out", out2.to_str().unwrap()]]
                .concat(),
        );
        for (name, text) in &csv {
            let output = name.strip_suffix(".csv").unwrap();
            let header = text.lines().next().unwrap();
            let want = file_as_records(text, upsert);
            for p in [&prefix, &prefix2] {
                let topic = format!("{p}.{output}");
                assert_eq!(topic_as_csv(&topic, header, upsert), want, "{topic} ({envelope})");
                let last = records(&topic).pop().expect("records");
                assert_eq!(
                    (last.2.as_str(), last.3.as_str()),
                    ("\"__progress\"", "{\"progress\":18446744073709551615}")
                );
            }
        }
        assert!(csv.len() >= 15, "{} outputs", csv.len());
    }
}

/// JSON values with the same fields are read like lines; a value that is not a JSON
/// object is rejected.
#[test]
fn json_values_are_read_like_lines() {
    let dir = scratch("json");
    let broker = Broker::start(&dir);
    let (events, catalog) = sample();
    let text = fs::read_to_string(&events).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut csv = vec![header.join(",")];
    let mut json = Vec::new();
    for line in lines.take(5000).filter(|l| l.split(',').count() == header.len() && !l.contains('"')) {
        csv.push(line.to_string());
        let object: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(line.split(','))
            .map(|(h, v)| {
                let value = v.parse::<u64>().map(serde_json::Value::from).unwrap_or_else(|_| v.into());
                (h.to_string(), value)
            })
            .collect();
        json.push(serde_json::Value::Object(object).to_string());
    }
    json.push("[\"not an object\"]".into());
    let (csv_file, json_file) = (dir.join("events.csv"), dir.join("events.jsonl"));
    fs::write(&csv_file, csv.join("\n") + "\n").unwrap();
    fs::write(&json_file, json.join("\n") + "\n").unwrap();
    let ev = broker.url("json-events");
    create(&ev, 3);
    produce(&ev, &json_file, &[]);
    let cat = catalog.to_str().unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    ok(&[
        "run",
        "--events",
        csv_file.to_str().unwrap(),
        "--catalog",
        cat,
        "--lateness-ms",
        NO_LATENESS,
        "-q",
        "--out",
        a.to_str().unwrap(),
    ]);
    let run = ["run", "--events", &ev, "--catalog", cat, "--value-format", "json", "--lateness-ms", NO_LATENESS, "-q"];
    ok(&[&run[..], &["-w", "2", "--out", b.to_str().unwrap()]].concat());
    assert_same(&files(&a, false), &files(&b, false), "json topic vs csv file");
    let rejected = fs::read_to_string(b.join("rejected.csv")).unwrap();
    assert!(rejected.contains("value: not a JSON object"), "{rejected}");
}

/// A broker that cannot be reached at start, or a topic that does not exist: one line on
/// stderr and exit code 2, for a source and for the sink.
#[test]
fn unreachable_broker_or_missing_topic_fails_clearly() {
    let dir = scratch("down");
    let (events, catalog) = sample();
    let closed = format!("kafka://127.0.0.1:{}/events", free_port());
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let check = |o: Output, needle: &str| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
    };
    check(
        shopflow(&["run", "--events", &closed, "--catalog", catalog.to_str().unwrap(), "--out", out]),
        "cannot reach",
    );
    let sink = format!("kafka://127.0.0.1:{}/out", free_port());
    check(
        shopflow(&[
            "run",
            "--events",
            events.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
            "--sink",
            &sink,
            "--out",
            out,
        ]),
        "kafka://127.0.0.1",
    );
    let broker = Broker::start(&dir);
    check(shopflow(&["run", "--events", &broker.url("nope"), "--out", out]), "does not exist");
    check(shopflow(&["run", "--events", "kafka://host/events", "--out", out]), "kafka://HOST:PORT/NAME");
}

/// A broker that goes away while a `--follow` run reads: the run fails (non-zero exit,
/// the reason on stderr) instead of waiting forever, and leaves no partial output: its
/// output files are removed and its manifest records the failure.
#[test]
fn a_broker_lost_mid_run_fails_the_run() {
    let dir = scratch("lost");
    let mut broker = Broker::start(&dir);
    let (events, catalog) = sample();
    let ev = broker.url("events");
    create(&ev, 2);
    produce(&ev, &events, &[]);
    let out = dir.join("out");
    let mut child = Command::new(BIN)
        .args(["run", "--events", &ev, "--catalog", catalog.to_str().unwrap(), "--follow", "-q"])
        .args(["--out", out.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while fs::read_to_string(out.join("item_stats.csv")).map_or(0, |t| t.lines().count()) < 100 {
        assert!(started.elapsed() < Duration::from_secs(60), "no output within a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.stop();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the run did not end within 90 s of losing its broker");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("went away") && !err.contains("panicked"), "{err}");
    // A failed run leaves no output a reader could take for a result (src/manifest.rs):
    // its files are removed and its manifest says it failed, and why.
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "failed", "{manifest}");
    assert!(manifest["message"].as_str().is_some_and(|m| m.contains("went away")), "{manifest}");
    let left: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!out.join("item_stats.csv").exists(), "outputs left behind: {left:?}");
}

/// A run killed with SIGKILL at several points and restarted with the same command ends
/// with every output topic holding exactly the records of an uninterrupted run: none
/// lost, none twice.
#[test]
fn killed_runs_resume_without_duplicates() {
    let dir = scratch("resume");
    let broker = Broker::start(&dir);
    let data = dir.join("data");
    ok(&["gen", "--events", "150000", "--seed", "3", "--out", data.to_str().unwrap()]);
    let (ev, cat) = (broker.url("events"), broker.url("catalog"));
    create(&ev, 3);
    create(&cat, 2);
    produce(&ev, &data.join("events.csv"), &[]);
    produce(&cat, &data.join("catalog.csv"), &[]);
    let run = |prefix: &str| -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--events", &ev, "--catalog", &cat, "--epoch-ms", "60000", "-w", "2", "-q"])
            .args(["--envelope", "upsert", "--sink", prefix, "--out", dir.join("out").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let reference = broker.url("ref");
    assert!(run(&reference).status().unwrap().success());
    let resumed = broker.url("resumed");
    let watched = format!("{resumed}.item_stats");
    let want = data_records(&format!("{reference}.item_stats")).len();
    // Each run is killed once it has added records to the watched topic (so at a point
    // inside its writing, whatever the machine's speed), after a further 0-150 ms.
    let mut written = Vec::new();
    for k in 0..3u64 {
        let before = written.last().copied().unwrap_or(0);
        let mut child = run(&resumed).spawn().unwrap();
        let started = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(30));
            if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(120) {
                break;
            }
            let written_now = records_if_any(&watched);
            if written_now > before {
                std::thread::sleep(Duration::from_millis(50 * k));
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        written.push(data_records(&watched).len());
    }
    eprintln!("item_stats records after each kill: {written:?} of {want}");
    assert!(
        written.iter().any(|w| *w > 0 && *w < want),
        "the kills should leave a part written: {written:?} of {want}"
    );
    assert!(run(&resumed).status().unwrap().success());
    for output in dataflows_written(&dir.join("out")) {
        let (a, b) = (data_records(&format!("{reference}.{output}")), data_records(&format!("{resumed}.{output}")));
        assert!(a == b, "{output}: {} records against {} uninterrupted", b.len(), a.len());
    }
}

/// The number of data records of a topic, 0 while it does not exist yet.
fn records_if_any(url: &str) -> usize {
    let o = shopflow(&["kafka", "read", url]);
    if !o.status.success() {
        return 0;
    }
    only_data(parse_records(&o)).len()
}

/// The outputs a run wrote (from its MANIFEST.json).
fn dataflows_written(out: &Path) -> Vec<String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("MANIFEST.json")).unwrap()).unwrap();
    let outputs = manifest["outputs"].as_array().expect("outputs in MANIFEST.json");
    outputs.iter().map(|o| o.as_str().or_else(|| o["name"].as_str()).unwrap().to_string()).collect()
}

/// Under `--follow`, partitions that never send (all rows keyed to one partition of four)
/// stop holding the outputs back after `--kafka-idle-ms`: the run writes its epochs.
#[test]
fn idle_partitions_do_not_hold_outputs_back() {
    let dir = scratch("idle");
    let broker = Broker::start(&dir);
    let (events, catalog) = sample();
    let text = fs::read_to_string(&events).unwrap();
    // One user: every row hashes to the same partition.
    let one_user: Vec<String> = text
        .lines()
        .take(3000)
        .filter(|l| l.split(',').count() == 7)
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<&str> = l.split(',').collect();
            if i > 0 && f.len() > 1 {
                f[1] = "7";
            }
            f.join(",")
        })
        .collect();
    let file = dir.join("one-user.csv");
    fs::write(&file, one_user.join("\n") + "\n").unwrap();
    let ev = broker.url("events");
    create(&ev, 4);
    produce(&ev, &file, &[]);
    let counts: BTreeMap<u32, usize> = records(&ev).iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.0).or_default() += 1;
        m
    });
    assert_eq!(counts.len(), 1, "all rows in one partition: {counts:?}");
    let out = dir.join("out");
    let mut child = Command::new(BIN)
        .args(["run", "--events", &ev, "--catalog", catalog.to_str().unwrap(), "--follow", "-q", "-w", "2"])
        .args(["--kafka-idle-ms", "500", "--outputs", "item_stats", "--out", out.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut rows = 0;
    while started.elapsed() < Duration::from_secs(60) && rows < 100 {
        rows = fs::read_to_string(out.join("item_stats.csv")).map_or(0, |t| t.lines().count());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert!(rows >= 100, "the outputs did not advance with three idle partitions: {rows} lines");
}
