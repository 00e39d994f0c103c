//! Paced replay, following files, and clean stops, end to end on the real binary:
//! `--rate` and `--speed` keep to the wall clock (generous bounds: tests, not
//! benchmarks), `--follow` picks up appended lines and ends on SIGINT, and a stop keeps
//! exactly the complete epochs (checked against the sequential reference of
//! tests/common), with rejected.csv and the run summary still written. A run killed with
//! SIGKILL and started again writes the same files as an uninterrupted one; a killed
//! process of a two-process run stops the other with one line and exit code 1.

mod common;
mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{compare_outputs, parse_change_stream, Format, Reference, RunSpec, NATIVE_HEADER, OUTPUTS};
use support::{cutoff, finish, run_command, scratch, BIN};

const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";
/// A whole number of seconds, so epochs of 1000 ms start at T0.
const T0: u64 = 1_700_000_000_000;

/// Event rows `from..to`, row i at `T0 + i * step_ms` (a few slightly out of order),
/// pseudo-random users, items, scenes and behaviours.
fn event_rows(from: u64, to: u64, step_ms: u64) -> Vec<String> {
    (from..to)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
            let behavior = ["impression", "impression", "click", "fav", "cart", "buy"][(h % 6) as usize];
            let (q, a) = if behavior == "buy" { (1 + h % 3, 100 * (1 + h % 7)) } else { (0, 0) };
            let scene = ["search", "home_feed", "detail"][(h / 7 % 3) as usize];
            let back = if i % 13 == 5 { step_ms.min(400) } else { 0 };
            let ts = T0 + i * step_ms - back;
            format!("{ts},{},{},{scene},{behavior},{q},{a}", h / 11 % 40, h / 13 % 35)
        })
        .collect()
}

/// A catalog of items 0..30 with a few later moves and a delete.
fn catalog(dir: &Path) -> PathBuf {
    let mut lines = vec![CATALOG_HEADER.to_string()];
    for item in 0..30u64 {
        lines.push(format!("{T0},upsert,{item},{},{},{},online,0,0", item % 4, item % 5, 100 + item));
    }
    lines.push(format!("{},upsert,3,7,1,99,online,1,20", T0 + 5_500));
    lines.push(format!("{},delete,4,,,,,,", T0 + 12_200));
    lines.push(format!("{},upsert,5,2,1,99,offline,0,0", T0 + 30_100));
    write_lines(&dir.join("catalog.csv"), &lines)
}

fn write_lines(path: &Path, lines: &[String]) -> PathBuf {
    fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    path.to_path_buf()
}

fn events_file(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let mut lines = vec![NATIVE_HEADER.to_string()];
    lines.extend(rows.iter().cloned());
    write_lines(&dir.join(name), &lines)
}

fn run_args(events: &Path, catalog: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = run_command(events, catalog, out);
    cmd.args(["--epoch-ms", "1000", "--lateness-ms", "0"]).args(extra);
    cmd
}

fn timed(mut cmd: Command) -> (Output, Duration) {
    let started = Instant::now();
    let out = cmd.output().expect("binary runs");
    (out, started.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill runs");
    assert!(ok.success(), "kill {sig} failed");
}

/// Every output holds exactly the reference state at every time below `cutoff`, and
/// nothing at or after it.
fn check_prefix(spec: &RunSpec, out: &Path, cutoff: u64) {
    for (name, cols) in OUTPUTS {
        let stream = parse_change_stream(&out.join(format!("{name}.csv")), cols).unwrap();
        if let Some(c) = stream.iter().find(|c| c.0 >= cutoff) {
            panic!("{name}: change at time {} at or after the cut-off {cutoff}", c.0);
        }
    }
    let full = Reference::compute(spec);
    let k = full.times.partition_point(|&t| t < cutoff);
    let prefix = Reference {
        times: full.times[..k].to_vec(),
        states: full.states[..k].to_vec(),
        rejected: full.rejected.clone(),
        counts: full.counts.clone(),
    };
    assert!(k > 0, "the cut-off {cutoff} leaves no time to check");
    if let Err(e) = compare_outputs(&prefix, out) {
        panic!("outputs below the cut-off {cutoff} differ from the reference:\n  {e}");
    }
}

fn spec(events: &Path, catalog: &Path) -> RunSpec {
    RunSpec {
        format: Format::Native,
        events: vec![events.to_path_buf()],
        catalog: Some(catalog.to_path_buf()),
        epoch_ms: 1000,
        lateness_ms: 0,
        omit_time_flags: false,
        extra_args: Vec::new(),
    }
}

fn assert_within(label: &str, wall: Duration, expected: f64) {
    let secs = wall.as_secs_f64();
    assert!(
        secs >= 0.95 * expected && secs <= 1.3 * expected,
        "{label}: took {secs:.2} s, expected about {expected:.2} s (0.95x to 1.3x)"
    );
}

#[test]
fn rate_paces_event_rows() {
    let dir = scratch("rate");
    let cat = catalog(&dir);
    let events = events_file(&dir, "events.csv", &event_rows(0, 6000, 7));
    let (o, wall) = timed(run_args(&events, &cat, &dir.join("paced"), &["--rate", "2000", "-w", "2", "-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // 6000 rows at 2000 rows/s: the last row is due after 2.9995 s.
    assert_within("--rate 2000 over 6000 rows", wall, 3.0);
    // Pacing does not change results.
    let o = run_args(&events, &cat, &dir.join("fast"), &["-q"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for (name, _) in OUTPUTS {
        let file = format!("{name}.csv");
        assert!(
            fs::read(dir.join("paced").join(&file)).unwrap() == fs::read(dir.join("fast").join(&file)).unwrap(),
            "{file}: paced and unpaced runs differ"
        );
    }
}

#[test]
fn speed_replays_event_time() {
    let dir = scratch("speed");
    let cat = catalog(&dir);
    // 3000 rows 10 ms apart: 29.99 s of event time, 3.0 s at --speed 10.
    let events = events_file(&dir, "events.csv", &event_rows(0, 3000, 10));
    let (o, wall) = timed(run_args(&events, &cat, &dir.join("out"), &["--speed", "10", "-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_within("--speed 10 over 29.99 s of event time", wall, 3.0);
    check_prefix(&spec(&events, &cat), &dir.join("out"), u64::MAX);
}

#[test]
fn follow_reads_appended_lines_until_sigint() {
    let dir = scratch("follow");
    let cat = catalog(&dir);
    let out = dir.join("out");
    // Rows 0..200 (T0 .. T0 + 19.9 s) and a malformed row; then appended while the
    // run follows the file: rows 200..400 (up to T0 + 39.9 s) and a partial line.
    let mut first = event_rows(0, 200, 100);
    first.insert(50, format!("{},1,2,search,like,0,0", T0 + 5_000));
    let events = events_file(&dir, "events.csv", &first);
    let child = run_args(&events, &cat, &out, &["--follow", "-w", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(800));
    let appended = event_rows(200, 400, 100);
    let mut f = OpenOptions::new().append(true).open(&events).unwrap();
    for chunk in appended.chunks(50) {
        f.write_all(chunk.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes()).unwrap();
        f.flush().unwrap();
        sleep(Duration::from_millis(150));
    }
    // A line still being written: no newline yet, so it must not be read.
    let partial = format!("{},3,4,search,cl", T0 + 45_000);
    f.write_all(partial.as_bytes()).unwrap();
    f.flush().unwrap();
    sleep(Duration::from_millis(1200));
    signal(&child, "-INT");
    let (status, err) = finish(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit code after SIGINT; stderr: {err}");
    assert!(err.contains("shopflow run:"), "the summary is printed: {err}");

    // With no lateness the frontier is the epoch of the last complete line, row 399
    // at T0 + 39.9 s: epochs up to T0 + 38 s are complete, T0 + 39 s is not.
    let cut = cutoff(&err);
    assert_eq!(cut, T0 + 39_000, "cut-off; stderr: {err}");
    let mut complete = first.clone();
    complete.extend(appended);
    let reference_input = events_file(&dir, "complete.csv", &complete);
    check_prefix(&spec(&reference_input, &cat), &out, cut);
    // The appended rows count: item_stats changed after the first batch's last epoch.
    let items = parse_change_stream(&out.join("item_stats.csv"), OUTPUTS[0].1).unwrap();
    assert!(items.iter().any(|c| c.0 >= T0 + 20_000), "appended rows have no effect");

    let rejected = fs::read_to_string(out.join("rejected.csv")).unwrap();
    assert!(rejected.contains("behavior: unknown `like`"), "rejected.csv: {rejected}");
    assert!(!rejected.contains(",cl"), "the partial line was read: {rejected}");
    assert!(err.contains(" 401 "), "the summary counts the 401 complete data rows: {err}");
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("MANIFEST.json")).unwrap_or_default()).unwrap_or_default()
}

/// A second run into the directory of a running one refuses to start (one line naming
/// the directory and the running one's pid, exit 2) and leaves its files alone; the
/// running one, stopped by SIGINT, says `stopped` with its cut-off in the manifest.
#[test]
fn a_second_run_into_a_busy_directory_refuses_and_a_stop_is_recorded() {
    let dir = scratch("busy");
    let cat = catalog(&dir);
    let out = dir.join("out");
    let events = events_file(&dir, "events.csv", &event_rows(0, 200, 100));
    let child =
        run_args(&events, &cat, &out, &["--follow"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while manifest(&out)["status"] != "running" || !out.join("item_stats.csv").exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no running manifest in {}", out.display());
        sleep(Duration::from_millis(20));
    }
    assert_eq!(manifest(&out)["pid"], child.id());
    let second = run_args(&events, &cat, &out, &["-q"]).output().unwrap();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(out.to_str().unwrap()) && err.contains(&format!("pid {}", child.id())), "{err}");
    assert_eq!(manifest(&out)["status"], "running", "the second run left the first one's manifest alone");
    sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let (status, err) = finish(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{err}");
    let m = manifest(&out);
    assert_eq!(m["status"], "stopped", "{m}");
    assert_eq!(m["cutoff_ms"].as_u64(), Some(cutoff(&err)), "{m}");
    assert!(m["rows"]["item_stats"].as_u64().unwrap() > 0, "{m}");
}

#[test]
fn sigterm_without_follow_keeps_the_complete_epochs() {
    let dir = scratch("stop");
    let cat = catalog(&dir);
    // 8000 rows at 2000 rows/s would take 4 s; stop after about 1.5 s.
    let events = events_file(&dir, "events.csv", &event_rows(0, 8000, 9));
    let out = dir.join("out");
    let child = run_args(&events, &cat, &out, &["--rate", "2000", "-w", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(1500));
    signal(&child, "-TERM");
    let (status, err) = finish(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit code after SIGTERM; stderr: {err}");
    let cut = cutoff(&err);
    // Stopped early: well before the last epoch (row 7999 at T0 + 71.991 s).
    assert!(cut > T0 && cut < T0 + 60_000, "cut-off {cut}; stderr: {err}");
    check_prefix(&spec(&events, &cat), &out, cut);
    assert!(out.join("rejected.csv").exists());
}

#[test]
fn rate_and_speed_conflict() {
    let o = Command::new(BIN).args(["run", "--rate", "100", "--speed", "60"]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("--rate") && err.contains("--speed"), "{err}");
    let o = Command::new(BIN).args(["run", "--rate", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Two processes follow the same file; SIGINT to process 1 alone stops both, and
/// process 0's files are a consistent prefix (every time below the cut-off, nothing after).
#[test]
fn sigint_to_one_process_stops_the_cluster_at_a_consistent_prefix() {
    let dir = scratch("cluster-stop");
    let cat = catalog(&dir);
    let out = dir.join("out");
    let first = event_rows(0, 300, 100);
    let events = events_file(&dir, "events.csv", &first);
    let hostfile = two_hosts(&dir);
    let spawn = |process: &str| {
        run_args(&events, &cat, &out, &["--follow", "-w", "1", "-n", "2", "-p", process, "-h", &hostfile])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let p1 = spawn("1");
    let p0 = spawn("0");
    // Signal once process 0 has written rows (both processes are reading), not after a
    // fixed sleep: on a loaded machine connecting can take longer than any sleep.
    let started = std::time::Instant::now();
    let written = || fs::read_to_string(out.join("item_stats.csv")).is_ok_and(|t| t.lines().count() > 1);
    while !written() && started.elapsed() < Duration::from_secs(20) {
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));
    signal(&p1, "-INT");
    let (s1, e1) = finish(p1, Duration::from_secs(20));
    let (s0, e0) = finish(p0, Duration::from_secs(20));
    assert_eq!(s1.code(), Some(0), "process 1: {e1}");
    assert_eq!(s0.code(), Some(0), "process 0: {e0}");
    // Rows 0..300 end at T0 + 29.9 s: with no lateness, epochs below T0 + 29 s are complete.
    let cut = cutoff(&e0);
    assert_eq!(cut, T0 + 29_000, "cut-off; stderr: {e0}");
    check_prefix(&spec(&events, &cat), &out, cut);
}

/// The same files, byte for byte, in both directories (and no other files; the lock and
/// the manifest name their run and are not compared).
fn assert_same_files(expected: &Path, actual: &Path) {
    let names = |dir: &Path| {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock" && n != "MANIFEST.json")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(expected), names(actual), "the files written");
    for name in names(expected) {
        assert!(
            fs::read(expected.join(&name)).unwrap() == fs::read(actual.join(&name)).unwrap(),
            "{name}: the run started again differs from the uninterrupted run"
        );
    }
}

/// A scratch directory with a catalog and 8000 event rows over 72 s (with a malformed
/// row, so rejected.csv is not empty), and an uninterrupted run's files in `whole/`.
/// Returns the directory, the events and the catalog.
fn run_whole(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let cat = catalog(&dir);
    let mut rows = event_rows(0, 8000, 9);
    rows.insert(100, format!("{},1,2,search,like,0,0", T0 + 1_000));
    let events = events_file(&dir, "events.csv", &rows);
    let o = run_args(&events, &cat, &dir.join("whole"), &["-q"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, events, cat)
}

/// A host file for two processes on free local ports.
fn two_hosts(dir: &Path) -> String {
    let ports: Vec<u16> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let hosts = write_lines(&dir.join("hosts"), &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>());
    hosts.to_str().unwrap().to_string()
}

/// DESIGN.md, faults: a run killed at any instant (SIGKILL: nothing is flushed) and
/// started again with the same command ends with output files equal to those of an
/// uninterrupted run. Killed at several instants, from the start to late in the run.
#[test]
fn a_killed_run_started_again_writes_the_same_files() {
    let (dir, events, cat) = run_whole("kill");
    let out = dir.join("out");
    // 8001 rows at 8000 rows/s: about 1 s per run.
    let command = || run_args(&events, &cat, &out, &["--rate", "8000", "-w", "2", "-q"]);
    for after_ms in [50, 400, 850] {
        let child = command().stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        sleep(Duration::from_millis(after_ms));
        signal(&child, "-KILL");
        let (status, err) = finish(child, Duration::from_secs(20));
        assert!(!status.success(), "killed after {after_ms} ms, the run had already ended: {err}");
        let o = command().output().unwrap();
        assert!(o.status.success(), "started again: {}", stderr(&o));
        assert_same_files(&dir.join("whole"), &out);
    }
}

/// A process of a two-process run is killed: the other stops with one line on stderr
/// (no panic, no trace) and exit code 1; both started again with the same command write
/// the same files as an uninterrupted run. Each process is the victim once.
#[test]
fn losing_a_process_stops_the_other_and_a_restart_rewrites_the_outputs() {
    let (dir, events, cat) = run_whole("lose-process");
    let out = dir.join("out");
    let hostfile = two_hosts(&dir);
    // 8001 rows at 4000 rows/s: about 2 s per run.
    let spawn = |process: &str| {
        run_args(&events, &cat, &out, &["--rate", "4000", "-w", "2", "-q", "-n", "2", "-p", process, "-h", &hostfile])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for victim in [1, 0] {
        let _ = fs::remove_dir_all(&out);
        let mut ps = vec![spawn("0"), spawn("1")];
        // Process 0 creates its output files once the processes are connected (a process
        // whose peer never comes up keeps waiting for it, as timely does); kill mid-run.
        let started = Instant::now();
        while !out.join("item_stats.csv").exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "the processes did not connect");
            sleep(Duration::from_millis(10));
        }
        sleep(Duration::from_millis(500));
        let survivor = ps.remove(1 - victim);
        let killed = ps.remove(0);
        signal(&killed, "-KILL");
        let _ = finish(killed, Duration::from_secs(20));
        let (status, err) = finish(survivor, Duration::from_secs(20));
        assert_eq!(status.code(), Some(1), "process {} after process {victim} was killed: {err}", 1 - victim);
        let ours: Vec<&str> = err.lines().filter(|l| !l.starts_with("worker ") && !l.starts_with("awaiting")).collect();
        assert_eq!(ours.len(), 1, "one line on stderr: {err}");
        assert!(ours[0].starts_with("shopflow: error: lost the connection to another process"), "{err}");

        let (p0, p1) = (spawn("0"), spawn("1"));
        let (s1, e1) = finish(p1, Duration::from_secs(60));
        let (s0, e0) = finish(p0, Duration::from_secs(60));
        assert!(s0.success() && s1.success(), "started again: {e0}\n{e1}");
        assert_same_files(&dir.join("whole"), &out);
    }
}
