//! `ctr_cvr_prior` (case 1): the global prior of the smoothed CTR/CVR — one row.
//!
//! ```text
//! platform.prior (global impressions, clicks, buys on hour boundaries) ─ map
//! ```
//!
//! Contract (docs/cases-contract.md): at t, the impressions I, clicks C and buys B of
//! all events up to the last whole hour ≤ t, with the global ctr = C/I and cvr = B/C
//! (six decimals; empty when the denominator is 0); no row before the first hour
//! boundary with such events. A reader smooths an item's counters (its `item_stats` row) or
//! a `scene_category_ctr_cvr` row (i impressions, c clicks, b buys) with it:
//! ctr = (c + β·C/I) / (i + β), cvr = (b + β·B/C) / (c + β), β = 100, computed exactly
//! as `rates::smoothed_ctr` / `rates::smoothed_cvr` do.

use differential_dataflow::VecCollection;

use platform::model::Time;
use platform::Platform;
use platform::rates::{fixed6, Micro};
use platform::output::{Field, Schema};

use super::{funnel_fields, Funnel};

/// The global counters and their plain rates.
pub type Prior = (Funnel, Option<Micro>, Option<Micro>);

pub fn ctr_cvr_prior<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, Prior> {
    p.prior().map(|g| {
        let (i, c, b) = (g.impressions as i128, g.clicks as i128, g.buys as i128);
        ((g.impressions, g.clicks, g.buys), fixed6(c, i), fixed6(b, c))
    })
}

pub fn schema() -> Schema<Prior> {
    Schema {
        name: "ctr_cvr_prior",
        columns: &["impressions", "clicks", "buys", "ctr", "cvr"],
        key: 0,
        fields: |(f, ctr, cvr)| {
            let mut v = funnel_fields(f).to_vec();
            v.extend([Field::Fixed(*ctr), Field::Fixed(*cvr)]);
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// After the first whole hour: the global counters of every event and their rates (here
    /// more clicks than impressions: clicks without an impression count).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("ctr_cvr_prior", shop(), T + 3_600_000), ["2,4,2,2.000000,0.500000"]);
    }
}
