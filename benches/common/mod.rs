//! What the benchmark binaries share: the cached dataset, running the release binary with
//! its resource usage, the run's identity (machine, commit, date), and the CSV history.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const BIN: &str = env!("CARGO_BIN_EXE_shopflow");

/// The 8 platform outputs (everything but the three production cases).
pub const PLATFORM_OUTPUTS: &str =
    "item_stats,category_stats,scene_stats,user_stats,category_top_items,user_top_categories,hourly_stats,untagged";

/// The `q` quantile (0 ≤ q ≤ 1) of `values`, sorted here: the value at rank
/// round((n − 1) · q), so the median of an odd count is its middle value. `None` when empty.
pub fn quantile<T: Copy + PartialOrd>(values: &mut [T], q: f64) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable values"));
    values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied()
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A comma-separated list from the environment.
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    env_or(name, default).split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn bench_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data")
}

/// The UserBehavior dataset of `events` rows (`shopflow gen`, seed 1, 9 days), generated
/// once and cached under `bench-data/` (git-ignored).
pub fn dataset(events: u64) -> PathBuf {
    let dir = bench_root().join(format!("ub-{events}"));
    let data = dir.join("UserBehavior.csv");
    if !data.exists() {
        let status = Command::new(BIN)
            .args(["gen", "--format", "userbehavior", "--events", &events.to_string(), "--seed", "1", "--out"])
            .arg(&dir)
            .status()
            .expect("shopflow gen runs");
        assert!(status.success(), "shopflow gen failed");
    }
    data
}

/// A UserBehavior dataset of `events` rows whose event time advances at `rate` events per
/// second of event time (`shopflow gen --days`, seed 1: whole-second timestamps, so a
/// second holds `rate` events), cached under `bench-data/`. Replayed with `--speed 1` it is
/// what a live stream at that rate looks like.
pub fn live_dataset(events: u64, rate: u64) -> PathBuf {
    let dir = bench_root().join(format!("ub-live-{events}-{rate}"));
    let data = dir.join("UserBehavior.csv");
    if !data.exists() {
        let days = format!("{:.9}", events as f64 / rate as f64 / 86_400.0);
        let status = Command::new(BIN)
            .args(["gen", "--format", "userbehavior", "--events", &events.to_string(), "--seed", "1", "--days", &days])
            .arg("--out")
            .arg(&dir)
            .status()
            .expect("shopflow gen runs");
        assert!(status.success(), "shopflow gen --days {days} failed");
    }
    data
}

/// Who, where, when: printed in the header and written in every CSV row.
pub struct Identity {
    pub machine: String,
    pub commit: String,
    pub date: String,
}

impl Identity {
    pub fn new() -> Identity {
        Identity {
            machine: format!(
                "{} cores, {}",
                shell("nproc"),
                shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
            ),
            commit: shell("git rev-parse --short HEAD"),
            date: shell("date -u +%Y-%m-%dT%H:%M:%SZ"),
        }
    }

    pub fn print(&self) {
        println!("machine: {}\ncommit: {}\ndate: {}\n", self.machine, self.commit, self.date);
    }
}

/// Appends rows to `bench-data/<name>.csv` (header written when the file is new).
pub struct History(std::fs::File);

impl History {
    pub fn open(name: &str, header: &str) -> History {
        let path = bench_root().join(format!("{name}.csv"));
        std::fs::create_dir_all(bench_root()).expect("bench-data");
        let header_line = format!("date,commit,machine,{header}");
        // A history with other columns is kept aside under a numbered name.
        let old_header = std::fs::read_to_string(&path).ok().and_then(|t| t.lines().next().map(String::from));
        if old_header.is_some_and(|h| h != header_line) {
            let aside = (1..).map(|k| bench_root().join(format!("{name}.{k}.csv"))).find(|p| !p.exists()).unwrap();
            std::fs::rename(&path, &aside).expect("history kept aside");
            eprintln!("{} has other columns: kept as {}", path.display(), aside.display());
        }
        let new_file = !path.exists();
        let mut f = OpenOptions::new().create(true).append(true).open(&path).expect("results csv");
        if new_file {
            writeln!(f, "{header_line}").unwrap();
        }
        History(f)
    }

    pub fn append(&mut self, id: &Identity, row: &str) {
        writeln!(self.0, "{},{},\"{}\",{row}", id.date, id.commit, id.machine).unwrap();
    }
}

/// A finished run of the binary.
pub struct Measured {
    pub stderr: String,
    pub wall_s: f64,
    /// User + system CPU seconds of the child.
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
}

impl Measured {
    /// One line of the run summary that starts with `prefix`.
    pub fn summary_line(&self, prefix: &str) -> &str {
        self.stderr.lines().map(str::trim).find(|l| l.starts_with(prefix)).unwrap_or("")
    }

    /// Arranged updates and MiB at the end of the input ("arranged state at end of input:
    /// N updates in A arrangements, M MiB as …").
    pub fn arranged(&self) -> (u64, f64) {
        let line = self.summary_line("arranged state at end of input:");
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |after: &str| words.iter().position(|w| *w == after).and_then(|i| words.get(i.checked_sub(1)?));
        let updates = number("updates").and_then(|w| w.parse().ok()).unwrap_or(0);
        let mib = number("MiB").and_then(|w| w.parse().ok()).unwrap_or(0.0);
        (updates, mib)
    }

    /// Change rows written ("outputs: … in DIR: N rows, writing took S s").
    pub fn rows(&self) -> u64 {
        let line = self.summary_line("outputs:");
        line.split(": ").nth(2).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// Runs `shopflow` with `args` to completion and measures it; panics if it fails.
pub fn run_measured(args: &[&str]) -> Measured {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    measure(cmd).1
}

/// Runs `cmd` to completion (stdout piped, returned; stderr kept in `Measured`) and measures
/// its wall time, CPU and peak memory; panics if it fails. The child is reaped with
/// `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command) -> (String, Measured) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the measured command");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    child.stdout.take().expect("piped").read_to_string(&mut stdout).expect("read stdout");
    stderr.push_str(&reader.join().expect("stderr reader"));
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it and reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let wall_s = started.elapsed().as_secs_f64();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed:\n{stderr}");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let m = Measured {
        stderr,
        wall_s,
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
    };
    (stdout, m)
}

/// The DuckDB release the yardstick runs (PyPI).
pub const DUCKDB: &str = "duckdb==2.0.1";

/// A one-shot DuckDB batch of the four-aggregate slice over one file.
pub struct Yardstick {
    pub version: String,
    pub threads: String,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
}

/// Runs `benches/duckdb_slice.py` on `data` with [`DUCKDB`], installed into a virtualenv
/// under `bench-data/` (git-ignored) the first time.
pub fn duckdb_slice(data: &str) -> Yardstick {
    let venv = bench_root().join("duckdb-venv");
    let python = venv.join("bin/python");
    let installed = venv.join(format!("{DUCKDB}.installed"));
    if !installed.exists() {
        let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
        assert!(ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)), "python3 -m venv {venv:?} failed");
        assert!(
            ok(Command::new(&python).args(["-m", "pip", "install", "--quiet", DUCKDB])),
            "pip install {DUCKDB} into {venv:?} failed"
        );
        std::fs::write(&installed, "").expect("mark the virtualenv");
    }
    let mut cmd = Command::new(&python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb_slice.py"))
        .arg(data)
        .arg(bench_root().join("out-duckdb"));
    let (stdout, m) = measure(cmd);
    // `duckdb <version> threads <t> rows <n> seconds <s>`
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert!(words.len() == 8 && words[0] == "duckdb", "unexpected yardstick output: {stdout}");
    Yardstick {
        version: words[1].to_string(),
        threads: words[3].to_string(),
        wall_s: m.wall_s,
        cpu_s: m.cpu_s,
        peak_rss_mib: m.peak_rss_mib,
    }
}
