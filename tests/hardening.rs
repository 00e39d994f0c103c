//! Hardening, end to end on the real binary:
//!
//! * events read from something that is not a regular file (`--events -`, `/dev/stdin`,
//!   a named pipe) give the same output files and the same summary as the regular file;
//! * a followed file that is truncated or rewritten in place stops the run with exit
//!   code 1 and one clear message, while a rotated file (renamed, a new one created in
//!   its place) is read on;
//! * GMV sums beyond `i64::MAX` are exact and never negative;
//! * the processes of one run refuse to run when started with different settings;
//! * scene labels that are not UTF-8 are rejected rows, not a `?` scene.

mod common;
mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::{self, sleep, JoinHandle};
use std::time::{Duration, Instant};

use common::{split_csv, CATALOG_HEADER, NATIVE_HEADER, REJECTED_HEADER};
use support::{cutoff, exit_within, finish, run_command, scratch, BIN};

/// How long a run that should finish in about a second may take before it counts as hung.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// `shopflow run --events EVENTS --catalog CATALOG --out OUT <extra>`, stdout discarded,
/// stderr captured.
fn command(events: &OsStr, catalog: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = run_command(events, catalog, out);
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to its end (at most `HANG_LIMIT`); fails unless it exits with code 0.
fn run_ok(cmd: &mut Command, label: &str) -> String {
    let child = cmd.spawn().expect("the shopflow binary starts");
    let (status, err) = exit_within(child, HANG_LIMIT).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(status.code(), Some(0), "{label}: exit code; stderr:\n{err}");
    err
}

/// Every `*.csv` file of a directory, by name.
fn csv_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("csv")))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect()
}

/// The same `*.csv` files, byte for byte, in both directories (`skip`: names not compared).
fn assert_same_csv_files(expected: &Path, actual: &Path, skip: &[&str], label: &str) {
    let (mut want, mut got) = (csv_files(expected), csv_files(actual));
    for name in skip {
        want.remove(*name);
        got.remove(*name);
    }
    assert!(want.len() >= 8, "{label}: too few outputs in {}: {:?}", expected.display(), want.keys());
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>(), "{label}: the files written");
    for (name, w) in &want {
        let g = &got[name];
        if w != g {
            let (wl, gl): (Vec<&[u8]>, Vec<&[u8]>) =
                (w.split(|&b| b == b'\n').collect(), g.split(|&b| b == b'\n').collect());
            let k = wl.iter().zip(&gl).position(|(a, b)| a != b).unwrap_or(wl.len().min(gl.len()));
            panic!(
                "{label}: {name} differs from {} ({} vs {} lines); first difference at line {}: expected {:?}, found {:?}",
                expected.display(),
                wl.len(),
                gl.len(),
                k + 1,
                wl.get(k).map(|l| String::from_utf8_lossy(l)),
                gl.get(k).map(|l| String::from_utf8_lossy(l)),
            );
        }
    }
}

/// The run summary's table of files: (path, rows) per line, in the order of the table.
fn summary_rows(stderr: &str) -> Vec<(String, u64)> {
    let mut lines =
        stderr.lines().skip_while(|l| l.split_whitespace().ne(["file", "rows", "valid", "rejected", "late"]));
    assert!(lines.next().is_some(), "no file table in the run summary:\n{stderr}");
    lines
        .map_while(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let n = t.len().checked_sub(4).filter(|&n| n > 0)?;
            if !t[n..].iter().all(|x| x.parse::<u64>().is_ok()) {
                return None;
            }
            Some((t[..n].join(" "), t[n].parse().unwrap()))
        })
        .collect()
}

// =====================================================================================
// 1. Events from stdin, /dev/stdin and a named pipe
// =====================================================================================

/// `shopflow gen --events N --out DIR`: (events.csv, catalog.csv).
fn generated(dir: &Path, events: u64) -> (PathBuf, PathBuf) {
    let o = Command::new(BIN)
        .args(["gen", "--events", &events.to_string(), "--out"])
        .arg(dir)
        .output()
        .expect("the shopflow binary starts");
    assert!(o.status.success(), "shopflow gen: {}", String::from_utf8_lossy(&o.stderr));
    let (e, c) = (dir.join("events.csv"), dir.join("catalog.csv"));
    // Larger than a read buffer (8 KiB) and than a pipe's buffer (64 KiB): a lost or
    // re-read first buffer changes the result, and a writer to a pipe must wait for it.
    assert!(fs::metadata(&e).unwrap().len() > 128 << 10, "generated events file too small");
    (e, c)
}

/// Writes `bytes` into `sink` from a thread, then closes it (errors ignored: the reader
/// may have gone).
fn feed(mut sink: impl Write + Send + 'static, bytes: Arc<Vec<u8>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let _ = sink.write_all(&bytes);
    })
}

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(ok.success(), "mkfifo {} failed", path.display());
}

/// Lets a writer thread still blocked on the FIFO (opening it, or writing into it once
/// nobody reads) finish after the run ended: opens a read end and drains it.
fn release_fifo(path: &Path, writer: JoinHandle<()>) {
    if !writer.is_finished() {
        if let Ok(mut r) = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut buf = vec![0u8; 1 << 16];
            while !writer.is_finished() && Instant::now() < deadline {
                if !matches!(r.read(&mut buf), Ok(n) if n > 0) {
                    sleep(Duration::from_millis(5));
                }
            }
        }
    }
    if writer.is_finished() {
        writer.join().unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum NonRegular {
    /// `--events -`, stdin a pipe.
    Dash,
    /// `--events /dev/stdin`, stdin a pipe.
    DevStdin,
    /// `--events FIFO`, a named pipe written by another thread.
    Fifo,
}

/// With -w1 and -w2: the run reading the events through `via` exits with 0, writes the
/// same files (every *.csv, rejected.csv included) as the run reading the regular file,
/// and its summary counts the same rows for the events file.
fn same_as_the_regular_file(name: &str, via: NonRegular) {
    let dir = scratch(name);
    let (events, catalog) = generated(&dir.join("in"), 5000);
    let bytes = Arc::new(fs::read(&events).unwrap());
    for w in ["1", "2"] {
        let label = format!("{via:?} -w {w}");
        let extra = ["-w", w];
        let from_file = dir.join(format!("file-w{w}"));
        let file_err = run_ok(&mut command(events.as_os_str(), &catalog, &from_file, &extra), "regular file");
        let out = dir.join(format!("{name}-w{w}"));
        let result = match via {
            NonRegular::Dash | NonRegular::DevStdin => {
                let arg = if matches!(via, NonRegular::Dash) { "-" } else { "/dev/stdin" };
                let mut child = command(OsStr::new(arg), &catalog, &out, &extra)
                    .stdin(Stdio::piped())
                    .spawn()
                    .expect("the shopflow binary starts");
                let writer = feed(child.stdin.take().unwrap(), bytes.clone());
                let result = exit_within(child, HANG_LIMIT);
                writer.join().unwrap();
                result
            }
            NonRegular::Fifo => {
                let fifo = dir.join(format!("events-w{w}.fifo"));
                mkfifo(&fifo);
                let path = fifo.clone();
                let data = bytes.clone();
                let writer = thread::spawn(move || {
                    // Blocks until the run opens the pipe for reading.
                    if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                        feed(f, data).join().unwrap();
                    }
                });
                let child =
                    command(fifo.as_os_str(), &catalog, &out, &extra).spawn().expect("the shopflow binary starts");
                let result = exit_within(child, HANG_LIMIT);
                release_fifo(&fifo, writer);
                result
            }
        };
        let (status, err) = result.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(status.code(), Some(0), "{label}: exit code; stderr:\n{err}");
        assert_same_csv_files(&from_file, &out, &[], &label);
        let (want, got) = (summary_rows(&file_err), summary_rows(&err));
        assert_eq!(want.len(), 2, "regular file: summary table: {file_err}");
        assert_eq!(got.len(), 2, "{label}: the summary lists the events and the catalog file:\n{err}");
        assert_eq!(
            got[0].1, want[0].1,
            "{label}: rows of the events file in the summary:\n{err}\nregular file:\n{file_err}"
        );
    }
}

#[test]
fn events_from_stdin_dash_equal_the_regular_file() {
    same_as_the_regular_file("dash", NonRegular::Dash);
}

#[test]
fn events_from_dev_stdin_equal_the_regular_file() {
    same_as_the_regular_file("dev-stdin", NonRegular::DevStdin);
}

#[test]
fn events_from_a_named_pipe_equal_the_regular_file() {
    same_as_the_regular_file("fifo", NonRegular::Fifo);
}

// =====================================================================================
// 2. Following: a file truncated or rewritten in place, a rotated file
// =====================================================================================

/// Event rows `from..to`, row i at `i * step_ms`, with varied users, items (0..20),
/// scenes and behaviours.
fn rows(from: u64, to: u64, step_ms: u64) -> Vec<String> {
    (from..to)
        .map(|i| {
            let behavior = ["impression", "click", "impression", "cart", "buy", "fav", "click"][(i % 7) as usize];
            let (q, a) = if behavior == "buy" { (1 + i % 4, 150 * (1 + i % 6)) } else { (0, 0) };
            let scene = ["search", "home_feed", "detail"][(i / 3 % 3) as usize];
            format!("{},{},{},{scene},{behavior},{q},{a}", i * step_ms, i * 7 % 29, i * 11 % 20)
        })
        .collect()
}

/// A native events file's bytes: the header, then `rows`.
fn events_bytes(rows: &[String]) -> Vec<u8> {
    std::iter::once(NATIVE_HEADER)
        .chain(rows.iter().map(String::as_str))
        .flat_map(|l| [l, "\n"])
        .collect::<String>()
        .into()
}

/// A catalog of items 0..20 (four categories), all online from time 0.
fn small_catalog(dir: &Path) -> PathBuf {
    let path = dir.join("catalog.csv");
    let mut text = format!("{CATALOG_HEADER}\n");
    for item in 0..20u64 {
        text.push_str(&format!("0,upsert,{item},{},{},{},online,0,0\n", item % 4, item % 3, 100 + 10 * item));
    }
    fs::write(&path, text).unwrap();
    path
}

/// Waits until `file` (a change stream) holds a change at `time`: the run has read the
/// rows up to there.
fn wait_for_time(file: &Path, time: u64, limit: Duration) {
    let started = Instant::now();
    let prefix = format!("{time},");
    while !fs::read_to_string(file).unwrap_or_default().lines().any(|l| l.starts_with(&prefix)) {
        assert!(started.elapsed() < limit, "{} shows no change at time {time} after {limit:?}", file.display());
        sleep(Duration::from_millis(20));
    }
}

/// The follow flags of these tests (no lateness: an epoch is complete once a later one
/// has a row, so the outputs show how far the run has read).
const FOLLOW: [&str; 5] = ["--follow", "--epoch-ms", "1000", "--lateness-ms", "0"];

/// Starts a follow run on a file of 200 rows (times 0 ..= 19.9 s) and waits until it has
/// read all of them: (scratch dir, events path, catalog, out dir, the running child).
fn follow_run(name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf, Child) {
    let dir = scratch(name);
    let catalog = small_catalog(&dir);
    let events = dir.join("events.csv");
    fs::write(&events, events_bytes(&rows(0, 200, 100))).unwrap();
    let out = dir.join("out");
    let child = command(events.as_os_str(), &catalog, &out, &FOLLOW).spawn().expect("the shopflow binary starts");
    // Row 199 (19.9 s) opens epoch 19 s: epoch 18 s is then complete and written.
    wait_for_time(&out.join("item_stats.csv"), 18_000, Duration::from_secs(20));
    sleep(Duration::from_millis(300));
    (dir, events, catalog, out, child)
}

/// Overwrites the followed file in place (same inode) with a header and `new_rows`,
/// in one write; the run must stop by itself with exit code 1 and a message naming the
/// file.
fn rewritten_in_place_stops_the_run(name: &str, new_rows: Vec<String>, larger: bool) {
    let (_dir, events, _catalog, _out, child) = follow_run(name);
    let before = fs::metadata(&events).unwrap();
    let new = events_bytes(&new_rows);
    assert_eq!(new.len() as u64 > before.len(), larger, "test setup: the new content's size");
    let mut f = OpenOptions::new().write(true).truncate(true).open(&events).unwrap();
    f.write_all(&new).unwrap();
    drop(f);
    assert_eq!(fs::metadata(&events).unwrap().ino(), before.ino(), "test setup: rewritten in place");
    let (status, err) = exit_within(child, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the run goes on after its file was rewritten in place: {e}"));
    assert_eq!(status.code(), Some(1), "exit code; stderr:\n{err}");
    assert!(err.contains("truncated or rewritten"), "stderr says what happened: {err}");
    assert!(err.contains(events.to_str().unwrap()), "stderr names {}: {err}", events.display());
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn follow_stops_when_the_file_is_truncated() {
    rewritten_in_place_stops_the_run("truncated", rows(200, 250, 100), false);
}

#[test]
fn follow_stops_when_the_file_is_rewritten_larger() {
    rewritten_in_place_stops_the_run("rewritten", rows(200, 500, 100), true);
}

/// Rotation (the file renamed, a new one created under its name) is not an error: the
/// run reads on in the new file, and a stop keeps exactly what a run over the old rows
/// followed by the new ones writes below the cut-off.
#[test]
fn follow_reads_on_after_the_file_is_rotated() {
    let (dir, events, catalog, out, child) = follow_run("rotated");
    let old = rows(0, 200, 100);
    let new = rows(200, 400, 100); // 20 s ..= 39.9 s
    let far = "1000000,1,2,search,click,0,0".to_string();
    fs::rename(&events, dir.join("events.csv.1")).unwrap();
    fs::write(&events, events_bytes(&new)).unwrap();
    sleep(Duration::from_millis(500));
    // Moves the watermark past the new rows: every epoch below 1000 s becomes complete.
    OpenOptions::new().append(true).open(&events).unwrap().write_all(format!("{far}\n").as_bytes()).unwrap();
    sleep(Duration::from_millis(2000));
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    let ok = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(ok, 0, "SIGINT sent");
    let (status, err) = finish(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit code after SIGINT; stderr:\n{err}");
    let cut = cutoff(&err);
    assert!(cut > 40_000, "cut-off {cut}: the rows of the new file (up to 39.9 s) were not read; stderr:\n{err}");

    // The same rows in one file, read without --follow.
    let whole = dir.join("whole.csv");
    fs::write(&whole, events_bytes(&[old, new, vec![far]].concat())).unwrap();
    let reference = dir.join("reference");
    run_ok(&mut command(whole.as_os_str(), &catalog, &reference, &FOLLOW[1..]), "the rows in one file");
    let below = |dir: &Path| -> Vec<String> {
        let text = fs::read_to_string(dir.join("item_stats.csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().map(String::from);
        header
            .into_iter()
            .chain(lines.filter(|l| l.split(',').next().unwrap().parse::<u64>().unwrap() < cut).map(String::from))
            .collect()
    };
    let (want, got) = (below(&reference), below(&out));
    assert!(want.iter().any(|l| l.starts_with("39000,")), "test setup: the reference has the new rows below {cut}");
    if want != got {
        let k = want.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
        panic!(
            "item_stats.csv below the cut-off {cut}: {} lines, the reference {}; first difference at line {}: \
             expected {:?}, found {:?}",
            got.len(),
            want.len(),
            k + 1,
            want.get(k),
            got.get(k)
        );
    }
}

// =====================================================================================
// 3. Sums beyond i64
// =====================================================================================

/// 10,000 buys of item 1, each of 4294967295 units and 10^15 cents: GMV 10^19 cents,
/// beyond i64::MAX, exact in every output that sums GMV, and never negative on the way.
#[test]
fn gmv_beyond_i64_is_exact_and_never_negative() {
    const BUYS: u64 = 10_000;
    const GMV: i128 = 10_000_000_000_000_000_000;
    const UNITS: i128 = 42_949_672_950_000;
    // The state once every buy is in: the buys are at 0 ..= 2999.7 s, within the first
    // hour and well within the 30-day display window.
    const CHECK_AT: u64 = 3_600_000;
    let dir = scratch("gmv");
    let rows: Vec<String> =
        (0..BUYS).map(|i| format!("{},{},1,search,buy,4294967295,1000000000000000", i * 300, 1 + i % 997)).collect();
    let events = dir.join("events.csv");
    fs::write(&events, events_bytes(&rows)).unwrap();
    let catalog = dir.join("catalog.csv");
    fs::write(&catalog, format!("{CATALOG_HEADER}\n0,upsert,1,7,1,100000000,online,0,0\n")).unwrap();
    let out = dir.join("out");
    let outputs =
        ["item_stats", "scene_stats", "category_stats", "hourly_stats", "category_top_items", "item_display_stats"];
    run_ok(
        &mut command(events.as_os_str(), &catalog, &out, &["--outputs", &outputs.join(","), "-q"]),
        "10,000 large buys",
    );
    let rejected = fs::read_to_string(out.join("rejected.csv")).unwrap();
    assert_eq!(rejected, format!("{REJECTED_HEADER}\n"), "no row is rejected");

    let mut errors = Vec::new();
    for name in outputs {
        let text = fs::read_to_string(out.join(format!("{name}.csv"))).unwrap();
        let mut lines = text.lines();
        let header = split_csv(lines.next().unwrap_or(""));
        let gmv = header.iter().position(|c| c.contains("gmv")).unwrap_or_else(|| panic!("{name}: no gmv column"));
        let units = header.iter().position(|c| c.starts_with("units"));
        // Net count of each row (the columns after time and diff): at CHECK_AT, and at the end.
        let (mut at_check, mut at_end): (BTreeMap<Vec<String>, i64>, BTreeMap<Vec<String>, i64>) = Default::default();
        for line in lines {
            let f = split_csv(line);
            let (time, diff): (u64, i64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
            for col in [Some(gmv), units].into_iter().flatten() {
                match f[col].parse::<i128>() {
                    Ok(v) if v >= 0 => {}
                    _ => errors.push(format!("{name}: {} is {:?} in {line:?}", header[col], f[col])),
                }
            }
            let key = f[2..].to_vec();
            if time <= CHECK_AT {
                *at_check.entry(key.clone()).or_default() += diff;
            }
            *at_end.entry(key).or_default() += diff;
        }
        let mut states = vec![("once every buy is in", at_check)];
        if name != "item_display_stats" {
            // Cumulative outputs keep their rows to the end (the display window empties).
            states.push(("at the end", at_end));
        }
        for (when, state) in states {
            let rows: Vec<&Vec<String>> = state.iter().filter(|(_, &n)| n != 0).map(|(r, _)| r).collect();
            let [row] = rows[..] else {
                errors.push(format!("{name} {when}: expected one row, found {rows:?}"));
                continue;
            };
            // `row` lacks time and diff: column k of the file is row[k - 2].
            if row[gmv - 2].parse::<i128>().ok() != Some(GMV) {
                errors.push(format!("{name} {when}: {} is {}, expected {GMV}", header[gmv], row[gmv - 2]));
            }
            if let Some(u) = units {
                if row[u - 2].parse::<i128>().ok() != Some(UNITS) {
                    errors.push(format!("{name} {when}: {} is {}, expected {UNITS}", header[u], row[u - 2]));
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} problem(s):\n  {}",
        errors.len(),
        errors.iter().take(20).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

// =====================================================================================
// 4. Processes started with different settings
// =====================================================================================

fn two_hosts(dir: &Path) -> PathBuf {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = dir.join("hosts");
    fs::write(&path, format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port())).unwrap();
    path
}

/// Runs process 0 and process 1 of a two-process run (each with its own extra flags and
/// out dir), both to their end within 20 s: (exit code, stderr) of each.
fn two_processes(dir: &Path, label: &str, extra0: &[&str], extra1: &[&str]) -> Vec<(Option<i32>, String)> {
    let catalog = small_catalog(dir);
    let events = dir.join("events.csv");
    fs::write(&events, events_bytes(&rows(0, 300, 250))).unwrap();
    let hosts = two_hosts(dir);
    let hosts = hosts.to_str().unwrap();
    let children: Vec<Child> = [("0", extra0), ("1", extra1)]
        .into_iter()
        .map(|(p, extra)| {
            let out = dir.join(format!("{label}-p{p}"));
            let flags = [&["-n", "2", "-p", p, "-h", hosts][..], extra].concat();
            command(events.as_os_str(), &catalog, &out, &flags).spawn().expect("the shopflow binary starts")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let results: Vec<_> =
        children.into_iter().map(|c| exit_within(c, deadline.saturating_duration_since(Instant::now()))).collect();
    results
        .into_iter()
        .enumerate()
        .map(|(p, r)| {
            let (status, err) = r.unwrap_or_else(|e| panic!("{label}: process {p}: {e}"));
            (status.code(), err)
        })
        .collect()
}

#[test]
fn processes_started_with_different_settings_refuse_to_run() {
    let dir = scratch("settings");
    // Identical flags (different output directories): the run works.
    for (p, (code, err)) in
        two_processes(&dir, "same", &["--epoch-ms", "5000"], &["--epoch-ms", "5000"]).iter().enumerate()
    {
        assert_eq!(*code, Some(0), "identical flags: process {p}: stderr:\n{err}");
    }
    // Process 1 has another --epoch-ms: both stop with one line naming the flag.
    for (p, (code, err)) in two_processes(&dir, "different", &[], &["--epoch-ms", "5000"]).iter().enumerate() {
        assert_eq!(*code, Some(2), "different --epoch-ms: process {p}: exit code; stderr:\n{err}");
        // Besides timely's own connection messages (`awaiting connections …`, `worker N: …`,
        // shown without -q), one line.
        let ours: Vec<&str> =
            err.lines().filter(|l| !l.starts_with("awaiting connections") && !l.starts_with("worker ")).collect();
        assert_eq!(ours.len(), 1, "process {p}: one line on stderr, got:\n{err}");
        assert!(err.contains("started with different settings"), "process {p}: {err}");
        assert!(err.contains("--epoch-ms"), "process {p}: the line names the flag: {err}");
        assert!(!err.contains("panicked"), "process {p}: {err}");
    }
}

// =====================================================================================
// 5. Scene labels that are not UTF-8
// =====================================================================================

#[test]
fn scenes_that_are_not_utf8_are_rejected() {
    let dir = scratch("utf8");
    let catalog = small_catalog(&dir);
    let valid = rows(0, 300, 1000);
    // After valid row k (0-based), a row with scene label `byte`, at the same time as row k
    // (no later: it does not move the watermark).
    let bad: [(usize, u8); 3] = [(40, 0xff), (150, 0xfe), (260, 0xc3)];
    let mut bytes = format!("{NATIVE_HEADER}\n").into_bytes();
    let mut bad_lines = Vec::new();
    let mut line = 1u64;
    for (k, row) in valid.iter().enumerate() {
        bytes.extend_from_slice(row.as_bytes());
        bytes.push(b'\n');
        line += 1;
        if let Some(&(_, byte)) = bad.iter().find(|(at, _)| *at == k) {
            let ts = row.split(',').next().unwrap();
            bytes.extend_from_slice(format!("{ts},5,3,").as_bytes());
            bytes.push(byte);
            bytes.extend_from_slice(b",click,0,0\n");
            line += 1;
            bad_lines.push(line);
        }
    }
    let events = dir.join("events.csv");
    fs::write(&events, &bytes).unwrap();
    let clean = dir.join("clean.csv");
    fs::write(&clean, events_bytes(&valid)).unwrap();
    let out = dir.join("out");
    run_ok(&mut command(events.as_os_str(), &catalog, &out, &["-q"]), "with bad scenes");
    let clean_out = dir.join("clean-out");
    run_ok(&mut command(clean.as_os_str(), &catalog, &clean_out, &["-q"]), "valid rows only");

    // rejected.csv: exactly the three rows, each with its line and the reason.
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(out.join("rejected.csv")).unwrap();
    let records: Vec<csv::ByteRecord> = reader.byte_records().map(|r| r.unwrap()).collect();
    let shown: Vec<String> = records
        .iter()
        .map(|r| r.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(records.len(), bad_lines.len(), "rejected rows: {shown:?}; expected lines {bad_lines:?}");
    for (r, want_line) in records.iter().zip(&bad_lines) {
        let text = |i: usize| String::from_utf8_lossy(&r[i]).into_owned();
        assert_eq!(text(0), events.to_str().unwrap(), "rejected row {shown:?}");
        assert_eq!(text(1).parse::<u64>().ok(), Some(*want_line), "rejected rows {shown:?}");
        assert!(text(2).contains("scene: not valid UTF-8"), "reason of {shown:?}");
    }

    // No output has a row for those scenes; the valid rows count as without them.
    for name in ["scene_stats.csv", "hourly_stats.csv"] {
        let text = fs::read(out.join(name)).unwrap();
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines();
        let scene = split_csv(lines.next().unwrap()).iter().position(|c| c == "scene").unwrap();
        for l in lines {
            let s = &split_csv(l)[scene];
            assert!(["search", "home_feed", "detail"].contains(&s.as_str()), "{name}: a row for scene {s:?}: {l:?}");
        }
    }
    assert_same_csv_files(&clean_out, &out, &["rejected.csv"], "the valid rows with and without the bad ones");
}
