//! Event-time windows and period boundaries (README, "The production cases").
//!
//! - A window of `W` ms, rounded up to whole epochs (`W'`), holds an event from its logical
//!   time until `ep(ts) + W'`: [`Windowed::windowed`] turns each update into itself plus its own
//!   retraction at that time, so every downstream operator sees a sliding window as an
//!   ordinary collection (state stays bounded: what expires is retracted).
//! - An output *on P-boundaries* moves each change from time s to `f_P(s)`, the first epoch
//!   start at or after the next multiple of P ([`Windowed::on_boundaries`]): readers see few,
//!   consistent updates (display numbers each minute, the ad set each refresh).

use differential_dataflow::difference::Abelian;
use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::vec::Map;

/// Times of these operators: milliseconds of event time (the epoch's start).
type Time = u64;

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// The smallest multiple of `x` that is `>= t` (saturating).
#[inline]
pub fn round_up(t: u64, x: u64) -> u64 {
    t.div_ceil(x).saturating_mul(x)
}

/// `f_P(t)`: the time at which a change of time `t` shows on P-boundaries.
#[inline]
pub fn boundary(t: Time, period: u64, epoch_ms: u64) -> Time {
    round_up(round_up(t, period), epoch_ms)
}

/// When an event with timestamp `ts` leaves a window of `window_ms`: `ep(ts) + W'`.
#[inline]
pub fn expiry(ts: u64, window_ms: u64, epoch_ms: u64) -> Time {
    (ts - ts % epoch_ms).saturating_add(round_up(window_ms, epoch_ms))
}

/// Event-time windows on a collection whose time is milliseconds (`u64`).
///
/// - `windowed(expires)`: a sliding window — each update `(d, t, r)` counts from `t` until
///   `expires(&d)` (and not at all if that is not later than `t`):
///   `(d, t, r) ─► (d, t, r), (d, expires(d), -r)`. The map is linear in the updates, so
///   it commutes with everything upstream (a retraction of `d` at t2 also withdraws its
///   future expiry).
/// - `on_boundaries(period, epoch_ms)`: delays every update to its time's P-boundary
///   `f_P(t)` ([`boundary`]).
pub trait Windowed<'s, D, R> {
    fn windowed(self, expires: impl Fn(&D) -> Time + 'static) -> VecCollection<'s, Time, D, R>;
    fn on_boundaries(self, period: u64, epoch_ms: u64) -> VecCollection<'s, Time, D, R>;
}

impl<'s, D, R> Windowed<'s, D, R> for VecCollection<'s, Time, D, R>
where
    D: Clone + 'static,
    R: Abelian + 'static,
{
    fn windowed(self, expires: impl Fn(&D) -> Time + 'static) -> VecCollection<'s, Time, D, R> {
        self.inner
            .flat_map(move |(d, t, r)| {
                let end = expires(&d);
                (end > t)
                    .then(|| {
                        let mut neg = r.clone();
                        neg.negate();
                        [(d.clone(), t, r), (d, end, neg)]
                    })
                    .into_iter()
                    .flatten()
            })
            .as_collection()
    }

    fn on_boundaries(self, period: u64, epoch_ms: u64) -> VecCollection<'s, Time, D, R> {
        self.delay(move |t| boundary(*t, period, epoch_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_expiry() {
        assert_eq!(boundary(0, MINUTE_MS, 1000), 0);
        assert_eq!(boundary(1, MINUTE_MS, 1000), 60_000);
        assert_eq!(boundary(60_000, MINUTE_MS, 7), 60_004);
        assert_eq!(boundary(59_000, MINUTE_MS, HOUR_MS), HOUR_MS);
        assert_eq!(expiry(1_500, 3_000, 1000), 4_000);
        assert_eq!(expiry(1_500, 2_500, 1000), 4_000);
        assert_eq!(expiry(u64::MAX - 5, HOUR_MS, 1), u64::MAX);
    }
}
