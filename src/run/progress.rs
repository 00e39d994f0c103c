//! The progress line on stderr.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use platform::model::Time;
use timely::dataflow::ProbeHandle;

/// The progress line appears once a run has taken this long, and refreshes this often.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The progress line on stderr (worker 0, a terminal, runs longer than a second).
pub(super) struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled, started: now, last: now, bar: None }
    }

    /// Events read, events/s, the input frontier, and how far output lags it.
    pub(super) fn tick(&mut self, events: u64, frontier: Time, probe: &ProbeHandle<Time>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now - self.last < PROGRESS_EVERY || now - self.started < PROGRESS_AFTER {
            return;
        }
        self.last = now;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner().with_elapsed(now - self.started);
            if let Ok(style) = ProgressStyle::with_template("{spinner} run [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar
        });
        let output = probe.with_frontier(|f| f.first().copied());
        let lag = output.map_or(0, |o| frontier.saturating_sub(o));
        let secs = (now - self.started).as_secs_f64();
        bar.set_message(format!(
            "{events} events read, {:.0}/s, input at {} UTC, output lag {lag} ms",
            events as f64 / secs,
            platform::utc::date_time(frontier)
        ));
        bar.tick();
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
