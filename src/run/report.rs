//! What a run reports: per-file counts, the arranged state, the outputs written; the
//! one-screen summary; the rejected rows file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use operators::arrange::StateReport;
use platform::model::Time;
use platform::source::{Rejected, SourceKind};
use sinks::OutputLog;

use super::RunConfig;

/// What worker 0 reports at the end of a run.
#[derive(Debug)]
pub struct RunReport {
    pub files: Vec<FileReport>,
    /// Distinct times at which some output changed.
    pub epochs: u64,
    pub first_epoch: Option<Time>,
    pub last_epoch: Option<Time>,
    pub wall: Duration,
    pub write_time: Duration,
    pub rows_written: u64,
    /// Per output: rows written and net row-count changes by time.
    pub written: BTreeMap<&'static str, OutputLog>,
    pub workers: usize,
    /// Reading stopped early (a stop request): outputs hold every time below this
    /// cut-off and nothing at or after it.
    pub stopped_at: Option<Time>,
    /// Arranged state of every process when the input ended (every epoch before the
    /// last one processed), and the sum of their peaks.
    pub arranged: StateReport,
}

#[derive(Debug, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub lines: u64,
    pub valid: u64,
    pub rejected: u64,
    pub late: u64,
}

/// The one-screen run summary.
pub fn summary(cfg: &RunConfig, r: &RunReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "shopflow run: {} worker(s), epoch {} ms, lateness {} ms",
        r.workers, cfg.epoch_ms, cfg.lateness_ms
    );
    let width = r.files.iter().map(|f| f.path.display().to_string().len()).max().unwrap_or(4).max(4);
    let _ = writeln!(s, "  {:<width$} {:>12} {:>12} {:>10} {:>10}", "file", "rows", "valid", "rejected", "late");
    for f in &r.files {
        let _ = writeln!(
            s,
            "  {:<width$} {:>12} {:>12} {:>10} {:>10}",
            f.path.display(),
            f.lines,
            f.valid,
            f.rejected,
            f.late
        );
    }
    let events: u64 = cfg
        .sources
        .iter()
        .zip(&r.files)
        .filter(|(s, _)| matches!(s.kind, SourceKind::Events(_)))
        .map(|(_, f)| f.valid)
        .sum();
    let rejected: u64 = r.files.iter().map(|f| f.rejected).sum();
    let span = match (r.first_epoch, r.last_epoch) {
        (Some(a), Some(b)) => format!(", from {a} to {b} ms"),
        _ => String::new(),
    };
    let _ = writeln!(s, "  epochs with changes: {}{span}", r.epochs);
    if let Some(cutoff) = r.stopped_at {
        let _ = writeln!(
            s,
            "  stopped early: outputs are complete for every time < {cutoff} ms; later epochs were not written"
        );
    }
    let _ = writeln!(
        s,
        "  outputs: {} change stream(s) ({}, {} envelope) in {}: {} rows, writing took {:.2} s",
        cfg.outputs.len(),
        cfg.sink.name(),
        cfg.envelope.name(),
        match &cfg.sink_kafka {
            Some(prefix) => format!("topics {prefix}.<output>"),
            None => cfg.out_dir.display().to_string(),
        },
        r.rows_written,
        r.write_time.as_secs_f64()
    );
    if let Some(log) = r.written.get("ads_curated") {
        let (refreshes, full) =
            dataflows::ads_curated::full_refresh_rows(&log.net, cfg.params.ads.refresh_ms, cfg.params.epoch_ms);
        let _ = writeln!(
            s,
            "  ads_curated: {refreshes} refreshes; a full re-send at each would write {full} rows, changes written: {} ({:.1} %)",
            log.rows,
            100.0 * log.rows as f64 / full.max(1) as f64
        );
    }
    let a = &r.arranged;
    let largest: Vec<String> = a
        .arrangements
        .iter()
        .take(3)
        .map(|(name, n, _)| format!("{} {n}", name.trim_start_matches("Arrange: ")))
        .collect();
    let peak = match cfg.processes {
        1 => String::new(),
        n => format!(" (the sum of the {n} processes' peaks)"),
    };
    let _ = writeln!(
        s,
        "  arranged state at end of input: {} updates in {} arrangements, {:.1} MiB as (key, value, time, diff) updates; peak {} updates{peak}; largest: {}",
        a.updates,
        a.arrangements.len(),
        a.bytes as f64 / (1 << 20) as f64,
        a.peak_updates,
        if largest.is_empty() { "-".to_string() } else { largest.join(", ") }
    );
    let _ = writeln!(s, "  rejected rows: {rejected} (see {})", cfg.out_dir.join("rejected.csv").display());
    let secs = r.wall.as_secs_f64();
    let _ = writeln!(s, "  wall time: {secs:.2} s, {:.0} events/s", events as f64 / secs.max(1e-9));
    s
}

pub(super) fn write_rejected(cfg: &RunConfig, rejected: &[Rejected]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(cfg.out_dir.join("rejected.csv"))?;
    w.write_record(["file", "line", "reason", "raw"])?;
    for r in rejected {
        let mut path = cfg.file_path(r.file).display().to_string();
        if let Some(p) = r.partition {
            // A Kafka source: `line` is the offset in this partition.
            path = format!("{path}#{p}");
        }
        w.write_record([path.as_str(), &r.line.to_string(), &r.reason, &r.raw])?;
    }
    w.flush()
}
