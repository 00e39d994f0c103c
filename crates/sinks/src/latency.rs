//! End-to-end epoch latency (`--latency-log FILE`): for each advance of worker 0's input
//! frontier (every line of the epochs before it has been read and handed over), the wall
//! time until every output's sink has passed that frontier (the epochs are written). Under
//! `--speed` it counts from when the frontier was due by the clock (a line `--lateness-ms`
//! past it was due), if that was earlier: a reader falling behind a live pace shows.
//!
//! Worker 0 records both ends: its own input frontier, and the frontiers of the sinks,
//! which all live on worker 0. With several workers, "read" means read by worker 0; the
//! others scan the same lines at about the same pace.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use platform::model::Time;

#[derive(Debug, Default)]
pub struct LatencyLog {
    /// Input frontiers not yet passed by every sink, with when they were reached.
    pending: VecDeque<(Time, Instant)>,
    /// Each sink's input frontier (`Time::MAX` once complete).
    sinks: Vec<Time>,
    /// `(frontier, latency)` for each input frontier every sink has passed.
    pub samples: Vec<(Time, Duration)>,
}

impl LatencyLog {
    /// A new sink to wait for; returns its index.
    pub fn add_sink(&mut self) -> usize {
        self.sinks.push(0);
        self.sinks.len() - 1
    }

    /// Worker 0's input frontier moved to `frontier`; it was due at `due` (`None`: now).
    pub fn input_at(&mut self, frontier: Time, due: Option<Instant>) {
        let now = Instant::now();
        self.pending.push_back((frontier, due.map_or(now, |d| d.min(now))));
    }

    /// Sink `sink` has written every time before `frontier`.
    pub fn sink_at(&mut self, sink: usize, frontier: Time) {
        self.sinks[sink] = frontier;
        let passed = self.sinks.iter().copied().min().unwrap_or(Time::MAX);
        while let Some(&(t, at)) = self.pending.front() {
            if t > passed {
                break;
            }
            self.pending.pop_front();
            self.samples.push((t, at.elapsed()));
        }
    }

    /// Writes `frontier_ms,latency_us` rows.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(w, "frontier_ms,latency_us")?;
        for (t, d) in &self.samples {
            writeln!(w, "{t},{}", d.as_micros())?;
        }
        w.flush()
    }
}
