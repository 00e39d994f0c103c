//! Wall-clock pacing of the input (`--rate`, `--speed`) and how often a live run hands
//! its input over.

use std::time::{Duration, Instant};

use super::Pace;

/// When paced or following: flush and step at least this often, and poll a followed
/// file at its end this often.
pub(super) const LIVE_STEP: Duration = Duration::from_millis(50);

/// When paced or following and an epoch has closed: hand it over (flush and step) no later
/// than this after the previous hand-over — the floor of a live epoch's latency, and a
/// bound on how often a live run steps for closed epochs.
pub(super) const CLOSE_STEP: Duration = Duration::from_millis(2);

/// The shortest wait for a paced line.
pub(super) const MIN_WAIT: Duration = Duration::from_millis(1);

/// Wall-clock pacing of the input.
pub(super) struct Pacer {
    pace: Pace,
    started: Instant,
    /// `--speed`: the first timestamp seen and when.
    base: Option<(u64, Instant)>,
}

impl Pacer {
    pub(super) fn new(pace: Pace) -> Pacer {
        Pacer { pace, started: Instant::now(), base: None }
    }

    /// `--rate`: how many more event lines may be read now (`None`: no limit).
    pub(super) fn room(&self, events_read: u64, now: Instant) -> Option<u64> {
        match self.pace {
            Pace::Rate(rate) => {
                let due = ((now - self.started).as_secs_f64() * rate).floor() as u64 + 1;
                Some(due.saturating_sub(events_read))
            }
            _ => None,
        }
    }

    /// `--rate`: when event line number `events_read` (0-based) is due.
    pub(super) fn next_due(&self, events_read: u64) -> Option<Instant> {
        match self.pace {
            Pace::Rate(rate) => Some(later(self.started, events_read as f64 / rate)),
            _ => None,
        }
    }

    /// `--speed`: when a line with this timestamp is due (`None`: now).
    pub(super) fn due_at(&mut self, ts: Option<u64>) -> Option<Instant> {
        let Pace::Speed(_) = self.pace else {
            return None;
        };
        let ts = ts?;
        let (ts0, _) = *self.base.get_or_insert_with(|| (ts, Instant::now()));
        (ts > ts0).then(|| self.due_by_clock(ts)).flatten()
    }

    /// `--speed`: when a line with timestamp `ts` is due, once the first line set the clock.
    pub(super) fn due_by_clock(&self, ts: u64) -> Option<Instant> {
        let (Pace::Speed(speed), Some((ts0, wall0))) = (self.pace, self.base) else {
            return None;
        };
        Some(later(wall0, ts.saturating_sub(ts0) as f64 / 1000.0 / speed))
    }
}

/// `at + secs`, saturating far in the future.
pub(super) fn later(at: Instant, secs: f64) -> Instant {
    let far = Duration::from_secs(1 << 32);
    Duration::try_from_secs_f64(secs).ok().and_then(|d| at.checked_add(d.min(far))).unwrap_or(at + far)
}
