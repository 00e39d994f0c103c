//! `item_ctr_cvr` (case 1): each item's CTR and CVR, Bayesian-smoothed towards the global
//! rates so that items with few impressions get sensible estimates.
//!
//! ```text
//! platform.item_totals ─ explode (item, (impressions, clicks, buys)) ─┐
//! platform.prior (global totals on hour boundaries) ── (broadcast) ───┴─ reduce_total_with per item
//! ```
//!
//! Contract (docs/cases-contract.md): per item with impressions, clicks or buys (all
//! events up to t): ctr = (clicks + β·C/I) / (impressions + β), cvr = (buys + β·B/C) /
//! (clicks + β) with β = 100 and (I, C, B) the global totals as of the last whole hour
//! (`rates::smoothed_ctr`, `smoothed_cvr`); six decimals, empty without a prior. The prior
//! moves once an hour, so an item without new events changes at most once an hour.

use differential_dataflow::VecCollection;

use crate::model::{ItemId, Time};
use crate::operators::reduce_total_with;
use crate::platform::Platform;
use crate::rates::{smoothed_ctr, smoothed_cvr, Micro};
use crate::sink::{Field, Schema};
use crate::stats::Stats;

/// `(impressions, clicks, buys, ctr, cvr)`.
pub type Rates = (i64, i64, i64, Option<Micro>, Option<Micro>);

pub fn item_ctr_cvr<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Rates)> {
    let counts = p.item_totals().explode(|(item, s)| Some(((item, ()), funnel(&s))));
    reduce_total_with(counts, p.prior(), "ItemCtrCvr", |_item, counts: &[((), Stats)], prior: &[Stats], out| {
        out.push(rates(&counts[0].1, prior.last()));
    })
}

/// The counters the rates use: impressions, clicks, buys.
pub fn funnel(s: &Stats) -> Stats {
    Stats { impressions: s.impressions, clicks: s.clicks, buys: s.buys, ..Stats::default() }
}

/// Counts and smoothed rates of a funnel.
pub fn rates(s: &Stats, prior: Option<&Stats>) -> Rates {
    (s.impressions, s.clicks, s.buys, smoothed_ctr(s, prior), smoothed_cvr(s, prior))
}

/// `impressions, clicks, buys, ctr, cvr`.
pub fn rate_fields(r: &Rates) -> [Field; 5] {
    [Field::I(r.0), Field::I(r.1), Field::I(r.2), Field::Fixed(r.3), Field::Fixed(r.4)]
}

pub fn schema() -> Schema<(ItemId, Rates)> {
    Schema {
        name: "item_ctr_cvr",
        columns: &["item_id", "impressions", "clicks", "buys", "ctr", "cvr"],
        fields: |(item, r)| {
            let mut v = vec![Field::U(*item)];
            v.extend(rate_fields(r));
            v
        },
    }
}
