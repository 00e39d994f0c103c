//! What every test of the binary shares: its path, scratch directories, and waiting for a
//! run to end. Each test file declares `mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod broker;
pub mod browser;
pub mod server;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `shopflow` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shopflow");

/// A fresh, empty directory for one test: `<target tmp>/<test file>-<name>-<pid>-<n>`.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .and_then(|s| s.rsplit_once('-').map(|(name, _hash)| name.to_string()))
        .unwrap_or_else(|| "test".into());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{file}-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `shopflow run --events EVENTS --catalog CATALOG --out OUT`, to add flags to.
pub fn run_command(events: impl AsRef<OsStr>, catalog: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg("--events").arg(events).arg("--catalog").arg(catalog).arg("--out").arg(out);
    cmd
}

/// Waits for `child` to exit by itself within `limit`: its status and stderr; or, once
/// the limit is passed, kills it and returns what it had written to stderr as the error.
pub fn exit_within(mut child: Child, limit: Duration) -> Result<(ExitStatus, String), String> {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_end(&mut err);
    }
    let err = String::from_utf8_lossy(&err).into_owned();
    match status {
        Some(status) => Ok((status, err)),
        None => Err(format!("shopflow did not exit within {limit:?} (killed it); its stderr:\n{err}")),
    }
}

/// Waits for a signalled run to exit: its status and stderr; panics after `limit`.
pub fn finish(child: Child, limit: Duration) -> (ExitStatus, String) {
    exit_within(child, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// The cut-off the run summary reports after a stop.
pub fn cutoff(summary: &str) -> u64 {
    let key = "complete for every time < ";
    let at = summary.find(key).unwrap_or_else(|| panic!("no cut-off in: {summary}"));
    summary[at + key.len()..].split(' ').next().unwrap().trim().parse().unwrap()
}
