//! Exact ratios as fixed-point decimals, and the smoothed CTR/CVR estimates.
//!
//! A ratio `n / d` is carried as micro-units `round_half_up(n / d * 10^6)` in an `i128`
//! and printed with six decimals; computed with integers only, so every worker and the
//! reference agree to the last digit.

use crate::stats::Stats;

/// Prior strength of the smoothed rates: as if every item had this many extra
/// impressions (for CTR) or clicks (for CVR) at the global rate.
pub const BETA: i128 = 100;

/// Micro-units of a fixed-point ratio.
pub type Micro = i128;

/// `n / d` rounded half up to micro-units; `None` when `d` is 0. `n >= 0, d >= 0`.
#[inline]
pub fn fixed6(n: i128, d: i128) -> Option<Micro> {
    (d > 0).then(|| (2 * n * 1_000_000 + d) / (2 * d))
}

/// Smoothed CTR `(clicks + BETA * C / I) / (impressions + BETA)` with the global totals
/// `prior` (I impressions, C clicks); `None` without a prior or when I = 0.
pub fn smoothed_ctr(s: &Stats, prior: Option<&Stats>) -> Option<Micro> {
    let g = prior?;
    smoothed(s.clicks, s.impressions, g.clicks, g.impressions)
}

/// Smoothed CVR `(buys + BETA * B / C) / (clicks + BETA)`; `None` without a prior or when C = 0.
pub fn smoothed_cvr(s: &Stats, prior: Option<&Stats>) -> Option<Micro> {
    let g = prior?;
    smoothed(s.buys, s.clicks, g.buys, g.clicks)
}

/// `(hits + BETA * global_hits / global_trials) / (trials + BETA)`, exact; `None` when
/// `global_trials` is 0.
fn smoothed(hits: i64, trials: i64, global_hits: i64, global_trials: i64) -> Option<Micro> {
    let (gh, gt) = (global_hits as i128, global_trials as i128);
    if gt == 0 {
        return None;
    }
    fixed6(hits as i128 * gt + BETA * gh, (trials as i128 + BETA) * gt)
}

/// Six-decimal text of micro-units (`-` for negatives, which no output produces).
pub fn format_micro(m: Micro, out: &mut String) {
    use std::fmt::Write;
    let sign = if m < 0 { "-" } else { "" };
    let a = m.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:06}", a / 1_000_000, a % 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: Micro) -> String {
        let mut s = String::new();
        format_micro(m, &mut s);
        s
    }

    #[test]
    fn fixed_point() {
        assert_eq!(fixed6(1, 2), Some(500_000));
        assert_eq!(fixed6(1, 3), Some(333_333));
        assert_eq!(fixed6(2, 3), Some(666_667));
        assert_eq!(fixed6(1, 2_000_000), Some(1)); // 0.5 micro rounds up
        assert_eq!(fixed6(5, 0), None);
        assert_eq!(text(12_000_001), "12.000001");
        assert_eq!(text(0), "0.000000");
    }

    #[test]
    fn smoothing() {
        let prior = Stats { impressions: 1000, clicks: 50, buys: 5, ..Stats::default() };
        let item = Stats { impressions: 0, clicks: 0, ..Stats::default() };
        // No data of its own: the global rate.
        assert_eq!(smoothed_ctr(&item, Some(&prior)), Some(50_000));
        assert_eq!(smoothed_cvr(&item, Some(&prior)), Some(100_000));
        assert_eq!(smoothed_ctr(&item, None), None);
    }
}
