//! `ads_curated` (case 3): the ad-item set, refreshed every `--ad-refresh-ms` of event
//! time — online ad items that pass a quality gate, ranked by eCPM — emitted as the
//! changes between refreshes (items in, out, re-ranked), not as a full re-send.
//!
//! ```text
//! item_totals ─ arrange ─ join_core ad_catalog (online ad, bid > 0) ─ on refresh boundaries ┐
//! prior ─ on refresh boundaries ─────────────────── (broadcast) ───────────────────────────┤
//!                          reduce_total_with per shard: gate, eCPM, local top N ◄──────────┘
//!                          ─ reduce_total (one group): global top N with ranks
//! ```
//!
//! Contract (docs/cases-contract.md): on refresh boundaries; items online, `is_ad`,
//! `ad_bid_cents > 0`, all-time impressions ≥ `--ad-min-impressions`, smoothed pCTR (an item's
//! all-time counters with the prior, six decimals) ≥ `--ad-min-pctr`; eCPM = bid · pCTR · 1000 from the
//! six-decimal pCTR; top `--ad-set-size` by eCPM desc, item asc. Top-K is staged: each
//! of `SHARDS` hash shards keeps its own top N, so a refresh recomputes only the shards
//! whose items changed, and the final ranking sees at most `SHARDS × N` candidates.

use differential_dataflow::{Hashable, VecCollection};
use serde::{Deserialize, Serialize};

use operators::arrange::arrange;
use platform::model::{CategoryId, ItemId, Time};
use operators::ReduceTotal;
use platform::Platform;
use platform::rates::{smoothed_ctr, Micro};
use platform::output::{Field, Schema};
use platform::stats::Stats;
use operators::Windowed;

/// Hash shards of the first top-K stage.
pub const SHARDS: u64 = 64;

/// An ad item as the refresh sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Candidate {
    pub item: ItemId,
    pub category: CategoryId,
    pub bid_cents: u64,
    pub impressions: i64,
    pub clicks: i64,
}

/// A member of the set: ordered by eCPM descending, then item ascending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ad {
    pub neg_ecpm: Micro,
    pub item: ItemId,
    pub category: CategoryId,
    pub bid_cents: u64,
    pub pctr: Micro,
}

/// `(rank, ad)`.
pub type Ranked = (u32, Ad);

pub fn ads_curated<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, Ranked> {
    let ads = p.params.ads;
    let epoch_ms = p.params.epoch_ms;
    let totals = p.item_totals.clone().map(|(item, s)| (item, (s.impressions, s.clicks)));
    let candidates = arrange(totals, "Arrange: ItemImpressionsClicks").join_core(
        p.ad_catalog(),
        |item, (impressions, clicks), row| {
            Some(Candidate {
                item: *item,
                category: row.category,
                bid_cents: row.ad_bid_cents,
                impressions: *impressions,
                clicks: *clicks,
            })
        },
    );
    let candidates = candidates.on_boundaries(ads.refresh_ms, epoch_ms).map(|c| (c.item.hashed() % SHARDS, c));
    let prior = p.prior().on_boundaries(ads.refresh_ms, epoch_ms);
    let shard_tops = candidates.reduce_total_with(prior, "AdsShardTop", move |_shard, input, prior: &[Stats], out| {
        let mut passed: Vec<Ad> = input
            .iter()
            .filter_map(|(c, _): &(Candidate, isize)| {
                let counts = Stats { impressions: c.impressions, clicks: c.clicks, ..Stats::default() };
                let pctr = smoothed_ctr(&counts, prior.last())?;
                (c.impressions >= ads.min_impressions && pctr >= ads.min_pctr).then(|| Ad {
                    neg_ecpm: -(c.bid_cents as i128 * pctr * 1000),
                    item: c.item,
                    category: c.category,
                    bid_cents: c.bid_cents,
                    pctr,
                })
            })
            .collect();
        keep_first(&mut passed, ads.set_size);
        out.extend(passed);
    });
    let all = shard_tops.map(|(_shard, ad)| ((), ad));
    all.reduce_total("AdsTop", move |_, input: &[(Ad, isize)], out: &mut Vec<Ranked>| {
        let mut set: Vec<Ad> = input.iter().map(|(ad, _)| *ad).collect();
        keep_first(&mut set, ads.set_size);
        out.extend(set.into_iter().enumerate().map(|(rank, ad)| (rank as u32 + 1, ad)));
    })
    .map(|((), ranked)| ranked)
}

/// Sorts and keeps the first `n`.
fn keep_first(ads: &mut Vec<Ad>, n: usize) {
    if ads.len() > n {
        ads.select_nth_unstable(n);
        ads.truncate(n);
    }
    ads.sort_unstable();
}

/// A row in column order (the sink sorts rows within a time by it).
pub type Row = (u32, ItemId, CategoryId, u64, Micro, Micro);

pub fn as_row((rank, ad): Ranked) -> Row {
    (rank, ad.item, ad.category, ad.bid_cents, ad.pctr, -ad.neg_ecpm)
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "ads_curated",
        columns: &["rank", "item_id", "category_id", "bid_cents", "pctr", "ecpm"],
        key: 1,
        fields: |(rank, item, category, bid, pctr, ecpm)| {
            vec![
                Field::U(*rank as u64),
                Field::U(*item),
                Field::U(*category),
                Field::U(*bid),
                Field::Fixed(Some(*pctr)),
                Field::Fixed(Some(*ecpm)),
            ]
        },
    }
}

/// Refresh boundaries at or before `t` (counting from time 0).
fn refreshes_through(t: Time, refresh_ms: u64, epoch_ms: u64) -> u64 {
    if refresh_ms >= epoch_ms {
        // Distinct refreshes map to distinct epochs: f(kP) <= t iff kP <= floor_E(t).
        (t - t % epoch_ms) / refresh_ms + 1
    } else {
        // Every epoch start is a refresh boundary.
        t / epoch_ms + 1
    }
}

/// What re-sending the whole set at every refresh would have written, from the first
/// refresh at which the set changed to the last: `(refreshes, rows)`, given the output's
/// net row-count change at each time it changed.
pub fn full_refresh_rows(net: &[(Time, i64)], refresh_ms: u64, epoch_ms: u64) -> (u64, u64) {
    let (mut refreshes, mut rows, mut size) = (0u64, 0u64, 0i64);
    for (i, &(t, change)) in net.iter().enumerate() {
        size += change;
        // The refreshes from this change up to (not including) the next one.
        let until = net.get(i + 1).map_or(1, |&(next, _)| {
            refreshes_through(next - 1, refresh_ms, epoch_ms) - refreshes_through(t - 1, refresh_ms, epoch_ms)
        });
        refreshes += until;
        rows += until * size.max(0) as u64;
    }
    (refreshes, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_refresh_count() {
        // Refresh every 300 s, 1 s epochs: a set of 3 from 300 s, 5 from 1500 s.
        let net = [(300_000, 3), (1_500_000, 2)];
        // Refreshes 300, 600, 900, 1200 s with 3 rows, then 1500 s with 5.
        assert_eq!(full_refresh_rows(&net, 300_000, 1000), (5, 17));
        // Hourly epochs, 5-minute refresh: one refresh per epoch.
        let net = [(3_600_000, 1), (3 * 3_600_000, 1)];
        assert_eq!(full_refresh_rows(&net, 300_000, 3_600_000), (3, 4));
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// At the first refresh after the first whole hour (the prior exists): the one online ad,
    /// item 2 (bid 30 cents), passes the gate with its smoothed pCTR, ranked by eCPM = bid
    /// × pCTR × 1000.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("ads_curated", shop(), T + 3_600_000), ["1,2,10,30,1.990099,59702.970000"]);
    }
}
