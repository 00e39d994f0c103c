//! Question: how many events per second does `shopflow run` sustain while maintaining
//! all eight outputs and writing every change stream, with 1 and 2 workers — and how
//! much memory and output-writing time does it cost?
//!
//! Command: `cargo bench --bench throughput`
//! (env: `SHOPFLOW_BENCH_EVENTS`, default 10000000; `SHOPFLOW_BENCH_WORKERS`, default
//! `1,2`; `SHOPFLOW_BENCH_EPOCH_MS`, default 3600000).
//!
//! The dataset is the UserBehavior format made by `shopflow gen` with a fixed seed
//! (9 days), cached under `bench-data/` (git-ignored). Each run is the release binary;
//! peak memory is the child's maximum resident set. Results print as a Markdown table
//! and are appended to `bench-data/throughput.csv` with machine, commit and date.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_shopflow");

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Runs `cmd` to completion; returns (success, stderr, peak RSS in KiB of that child).
/// The child is reaped with `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> (bool, String, i64) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stderr = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("read stderr");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it and reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, stderr, usage.ru_maxrss)
}

/// One line of the run summary that starts with `prefix`.
fn summary_line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr.lines().map(str::trim).find(|l| l.starts_with(prefix)).unwrap_or("")
}

fn main() {
    let events: u64 = env_or("SHOPFLOW_BENCH_EVENTS", "10000000").parse().expect("SHOPFLOW_BENCH_EVENTS");
    let epoch_ms = env_or("SHOPFLOW_BENCH_EPOCH_MS", "3600000");
    let workers: Vec<String> = env_or("SHOPFLOW_BENCH_WORKERS", "1,2").split(',').map(String::from).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data");
    let data_dir = root.join(format!("ub-{events}"));
    let data = data_dir.join("UserBehavior.csv");
    if !data.exists() {
        let status = Command::new(BIN)
            .args(["gen", "--format", "userbehavior", "--events", &events.to_string(), "--seed", "1", "--out"])
            .arg(&data_dir)
            .status()
            .expect("shopflow gen runs");
        assert!(status.success(), "shopflow gen failed");
    }

    let machine = format!("{} cores, {}", shell("nproc"), shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"));
    let commit = shell("git rev-parse --short HEAD");
    let date = shell("date -u +%Y-%m-%dT%H:%M:%SZ");
    println!("machine: {machine}\ncommit: {commit}\ndate: {date}\ndataset: {} ({events} UserBehavior rows), epoch {epoch_ms} ms\n", data.display());
    println!("| workers | wall s | events/s | peak RSS MiB | output rows | writing s |");
    println!("|---|---|---|---|---|---|");

    let csv_path = root.join("throughput.csv");
    let new_file = !csv_path.exists();
    let mut csv = OpenOptions::new().create(true).append(true).open(&csv_path).expect("results csv");
    if new_file {
        writeln!(
            csv,
            "date,commit,machine,events,epoch_ms,workers,wall_s,events_per_s,peak_rss_mib,output_rows,writing_s"
        )
        .unwrap();
    }
    for w in &workers {
        let out: PathBuf = root.join(format!("out-w{w}"));
        let started = Instant::now();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--format", "userbehavior", "--epoch-ms", &epoch_ms, "-w", w, "--events"])
            .arg(&data)
            .arg("--out")
            .arg(&out);
        let (ok, stderr, rss_kib) = run_measured(cmd);
        let wall = started.elapsed().as_secs_f64();
        assert!(ok, "{stderr}");
        let rss = rss_kib as f64 / 1024.0;
        // "outputs: 8 change stream(s) (csv) in DIR: N rows, writing took S s"
        let outputs = summary_line(&stderr, "outputs:");
        let rows: u64 =
            outputs.split(": ").nth(2).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap_or(0);
        let writing: f64 =
            outputs.rsplit("took ").next().and_then(|s| s.trim_end_matches(" s").parse().ok()).unwrap_or(f64::NAN);
        let rate = events as f64 / wall;
        println!("| {w} | {wall:.2} | {rate:.0} | {rss:.0} | {rows} | {writing:.2} |");
        writeln!(
            csv,
            "{date},{commit},\"{machine}\",{events},{epoch_ms},{w},{wall:.3},{rate:.0},{rss:.0},{rows},{writing:.3}"
        )
        .unwrap();
    }
    println!("\nappended to {}", csv_path.display());
}
