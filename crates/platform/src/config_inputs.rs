//! The configuration inputs — recall rules and batch bases — as collections: loaded
//! before the run starts (so a bad file is a one-line error, exit 2), inserted by worker 0,
//! and, under `--follow`, watched: an edit is inserted at the input frontier when seen.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::base::{self, BaseFile, BaseUpdate, Bases};
use crate::model::Time;
use crate::rules::{self, Rule};
use crate::InputHandles;

/// How often followed configuration files are checked for edits.
pub const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The configuration files of a run and their content at start.
#[derive(Clone, Debug, Default)]
pub struct ConfigFiles {
    pub rules_path: Option<PathBuf>,
    pub rules: Vec<Rule>,
    /// `--base` files in flag order, with their file index in rejected.csv.
    pub bases: Vec<(PathBuf, u32, BaseFile)>,
}

impl ConfigFiles {
    /// Reads every configuration file; the error is one line.
    pub fn load(rules_path: Option<PathBuf>, base_paths: &[PathBuf], first_index: u32) -> Result<Self, String> {
        let rules = match &rules_path {
            Some(p) => rules::load(p)?,
            None => Vec::new(),
        };
        let mut bases = Vec::new();
        for (i, path) in base_paths.iter().enumerate() {
            let index = first_index + i as u32;
            let file = base::load(path, index)?;
            file.warn();
            bases.push((path.clone(), index, file));
        }
        Ok(ConfigFiles { rules_path, rules, bases })
    }
}

/// Worker 0's view of the configuration inputs: what it has inserted, and what the files
/// held when last read.
pub struct ConfigInputs {
    files: ConfigFiles,
    timeline: Bases,
    epoch_ms: u64,
    follow: bool,
    last_check: Instant,
    /// What each file was when last read (rules first if any, then the bases).
    seen: Vec<Seen>,
}

/// A file as last read: its modification stamp (checked every poll, without reading the
/// file) and a digest of its content (checked only when the stamp moved).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Seen {
    stamp: Option<(SystemTime, u64)>,
    digest: u64,
}

impl Seen {
    fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    fn digest(bytes: &[u8]) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        bytes.hash(&mut h);
        h.finish()
    }
}

impl ConfigInputs {
    /// Inserts the configuration at start: rules from time 0, the bases' timeline.
    pub fn start(files: &ConfigFiles, epoch_ms: u64, follow: bool, inputs: &mut InputHandles) -> ConfigInputs {
        for rule in &files.rules {
            inputs.rules.update_at(*rule, 0, 1);
        }
        let mut timeline = Bases::default();
        for (order, (_, _, file)) in files.bases.iter().enumerate() {
            insert_base(inputs, file, timeline.add(order, file, epoch_ms, 0));
        }
        // Under --follow, what the files are now (the content was read by `ConfigFiles::load`;
        // an edit in between shows at the first poll, as any later edit does).
        let seen = if follow {
            let paths = files.rules_path.iter().chain(files.bases.iter().map(|(p, _, _)| p));
            paths
                .map(|p| Seen { stamp: Seen::stamp(p), digest: std::fs::read(p).map_or(0, |b| Seen::digest(&b)) })
                .collect()
        } else {
            Vec::new()
        };
        ConfigInputs { files: files.clone(), timeline, epoch_ms, follow, last_check: Instant::now(), seen }
    }

    /// Under `--follow`: re-reads files that changed and inserts the differences at
    /// `frontier`. An invalid edit is reported on stderr and ignored (the previous
    /// content stays in force).
    pub fn poll(&mut self, inputs: &mut InputHandles, frontier: Time) {
        if !self.follow || self.last_check.elapsed() < WATCH_EVERY {
            return;
        }
        self.last_check = Instant::now();
        let mut slot = 0;
        if let Some(path) = self.files.rules_path.clone() {
            if let Some(bytes) = self.changed(slot, &path) {
                match rules::parse(&String::from_utf8_lossy(&bytes)) {
                    Ok(new) => {
                        for rule in &self.files.rules {
                            inputs.rules.update_at(*rule, frontier, -1);
                        }
                        for rule in &new {
                            inputs.rules.update_at(*rule, frontier, 1);
                        }
                        self.files.rules = new;
                    }
                    Err(e) => eprintln!("shopflow: rules {}: {e}; the previous rules stay in force", path.display()),
                }
            }
            slot += 1;
        }
        for order in 0..self.files.bases.len() {
            let (path, index, _) = self.files.bases[order].clone();
            if let Some(bytes) = self.changed(slot + order, &path) {
                match base::from_bytes(&path, &bytes, index) {
                    Ok(file) => {
                        file.warn();
                        let updates = self.timeline.add(order, &file, self.epoch_ms, frontier);
                        insert_base(inputs, &file, updates);
                        self.files.bases[order].2 = file;
                    }
                    Err(e) => eprintln!("shopflow: {e}; the previous base stays in force"),
                }
            }
        }
    }

    /// The file's new content if it changed since last read (and can be read). Unchanged
    /// files cost one `stat` per poll.
    fn changed(&mut self, slot: usize, path: &Path) -> Option<Vec<u8>> {
        let stamp = Seen::stamp(path);
        let seen = &mut self.seen[slot];
        if stamp.is_none() || stamp == seen.stamp {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let digest = Seen::digest(&bytes);
        seen.stamp = stamp;
        (std::mem::replace(&mut seen.digest, digest) != digest).then_some(bytes)
    }

    /// The rules in force.
    pub fn rules(&self) -> &[Rule] {
        &self.files.rules
    }

    /// Rows and valid-row counts of the base files, for the run summary.
    pub fn base_files(&self) -> impl Iterator<Item = (u32, &BaseFile)> {
        self.files.bases.iter().map(|(_, index, file)| (*index, file))
    }
}

/// Inserts a base's timeline updates and its rejected rows.
fn insert_base(inputs: &mut InputHandles, file: &BaseFile, updates: Vec<(BaseUpdate, Time, isize)>) {
    for (update, time, diff) in updates {
        match update {
            BaseUpdate::Row(row) => inputs.base.update_at(row, time, diff),
            BaseUpdate::Cutoff(c) => inputs.base_cutoff.update_at(c, time, diff),
        }
    }
    for r in &file.rejected {
        inputs.rejected.insert(r.clone());
    }
}
