//! The output directory a run owns: an exclusive lock, a manifest that tells complete
//! output from partial, and the removal of files the run owns but will not write.
//!
//! Process 0 of a run (the one that writes) takes an exclusive `flock` on `<out>/.lock`
//! (released by the kernel when the process ends, however it ends) and writes its pid
//! there; a second run into the same directory refuses to start, naming that pid. Then it
//! writes `<out>/MANIFEST.json` with status `running` and removes every output file of
//! the known outputs (`<name>.csv`, `<name>.jsonl`) it will not write, and
//! `rejected.csv`; the files it writes are truncated when opened. At the end the manifest
//! says `complete` (with the rows written per output), `stopped` (a clean stop, with its
//! cut-off), or `failed` (with the message). A run killed by SIGKILL leaves `running`.
//! The manifest is replaced atomically (written beside it, then renamed).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use platform::model::Time;
use platform::utc;
use sinks::SinkKind;

pub const MANIFEST: &str = "MANIFEST.json";
pub const LOCK: &str = ".lock";

/// What `MANIFEST.json` holds.
#[derive(Clone, Debug, Serialize)]
struct Manifest {
    /// `running`, `complete`, `stopped` or `failed`.
    status: &'static str,
    pid: u32,
    argv: Vec<String>,
    /// UTC date-times and ms since the Unix epoch.
    started: String,
    started_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_ms: Option<u64>,
    inputs: Vec<String>,
    sink: &'static str,
    outputs: Vec<String>,
    /// The files this run writes in the directory (besides the manifest).
    files: Vec<String>,
    /// Per output, the change rows written (complete or stopped runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<BTreeMap<String, u64>>,
    /// A stopped run: outputs hold every time below this and nothing at or after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cutoff_ms: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// An output directory held by this run (the lock lasts as long as the process).
#[derive(Debug)]
pub struct OutDir {
    dir: PathBuf,
    _lock: File,
    manifest: Mutex<Manifest>,
}

impl OutDir {
    /// Locks `dir` (which exists), writes the `running` manifest and removes the files
    /// this run owns but will not write. The error is one line.
    pub fn claim(dir: &Path, inputs: Vec<String>, outputs: &[String], sink: SinkKind) -> Result<OutDir, String> {
        let lock = lock(dir)?;
        let mut files: Vec<String> = outputs.iter().filter_map(|o| sink.file_name(o)).collect();
        files.push("rejected.csv".into());
        for name in dataflows::ALL {
            for stale in [SinkKind::Csv.file_name(name), SinkKind::Jsonl.file_name(name)].into_iter().flatten() {
                if !files.contains(&stale) {
                    remove(&dir.join(stale))?;
                }
            }
        }
        remove(&dir.join("rejected.csv"))?;
        let started_ms = utc::now_ms();
        let manifest = Manifest {
            status: "running",
            pid: std::process::id(),
            argv: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
            started: utc::date_time(started_ms),
            started_ms,
            ended: None,
            ended_ms: None,
            inputs,
            sink: sink.name(),
            outputs: outputs.to_vec(),
            files,
            rows: None,
            cutoff_ms: None,
            message: None,
        };
        let out = OutDir { dir: dir.to_path_buf(), _lock: lock, manifest: Mutex::new(manifest) };
        out.write()?;
        Ok(out)
    }

    /// The run wrote everything (`cutoff: None`) or stopped cleanly at `cutoff`.
    pub fn finished(&self, rows: BTreeMap<String, u64>, cutoff: Option<Time>) -> Result<(), String> {
        self.update(|m| {
            m.status = if cutoff.is_some() { "stopped" } else { "complete" };
            m.rows = Some(m.outputs.iter().map(|o| (o.clone(), rows.get(o).copied().unwrap_or(0))).collect());
            m.cutoff_ms = cutoff;
        })
    }

    /// The run failed. With `remove_outputs`, the files it had created go (they hold
    /// nothing a reader could use: a run that failed before its end wrote no complete
    /// output). Errors are ignored: the run is failing already.
    pub fn failed(&self, message: &str, remove_outputs: bool) {
        if remove_outputs {
            let files = self.manifest.lock().unwrap_or_else(|p| p.into_inner()).files.clone();
            for f in files {
                let _ = remove(&self.dir.join(f));
            }
        }
        let _ = self.update(|m| {
            m.status = "failed";
            m.message = Some(message.to_string());
        });
    }

    fn update(&self, change: impl FnOnce(&mut Manifest)) -> Result<(), String> {
        {
            let mut m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut m);
            let ended = utc::now_ms();
            m.ended_ms = Some(ended);
            m.ended = Some(utc::date_time(ended));
        }
        self.write()
    }

    /// Writes the manifest beside its place, then renames it there.
    fn write(&self) -> Result<(), String> {
        let path = self.dir.join(MANIFEST);
        let temporary = self.dir.join(format!(".{MANIFEST}.tmp"));
        let text = {
            let m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_string_pretty(&*m).expect("a manifest serializes") + "\n"
        };
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Takes the exclusive lock on `<dir>/.lock` and writes this process's pid there; when
/// another run holds it, the error names the directory and that run's pid.
fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this process owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = pid.trim();
        let pid = if pid.is_empty() { "unknown".into() } else { pid.to_string() };
        return Err(format!(
            "{} is in use by another shopflow run (pid {pid}); wait for it to end or choose another --out",
            dir.display()
        ));
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(file)
}

/// Removes a file if it is there.
fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", path.display())),
        _ => Ok(()),
    }
}
