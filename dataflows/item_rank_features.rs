//! `item_rank_features` (case 1): features for search ranking over the last hour, every
//! epoch — behaviour counts, raw CTR and the hot score — for online items.
//!
//! ```text
//! platform.recent_online (1-h window counts ⋈ online items) ─ map ─► (item, Stats)
//! ```
//!
//! Contract (docs/cases-contract.md): per item online at t with an event in the 1-hour
//! window: impressions, clicks, favs, carts, buys in the window; ctr_1h = clicks /
//! impressions (six decimals; empty without impressions); hot_score =
//! clicks + 3·favs + 5·carts + 10·buys (`Stats::score`). Works with any epoch (100 ms
//! epochs included): the window retracts what leaves it, epoch by epoch.

use differential_dataflow::VecCollection;

use platform::model::{ItemId, Time};
use platform::Platform;
use platform::rates::fixed6;
use platform::output::{Field, Schema};
use platform::stats::Stats;

pub fn item_rank_features<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Stats)> {
    p.recent_online().map(|(item, (_category, counts))| (item, counts))
}

pub fn schema() -> Schema<(ItemId, Stats)> {
    Schema {
        name: "item_rank_features",
        columns: &["item_id", "impressions_1h", "clicks_1h", "favs_1h", "carts_1h", "buys_1h", "ctr_1h", "hot_score"],
        key: 1,
        fields: |(item, s)| {
            let mut v = vec![Field::U(*item)];
            v.extend(super::behavior_fields(s));
            v.push(Field::Fixed(fixed6(s.clicks as i128, s.impressions as i128)));
            v.push(Field::I(s.score()));
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per online item, its last hour's counters, CTR (empty without impressions) and hot
    /// score (item 1: 2 clicks + 10 × 2 buys = 22).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("item_rank_features", shop(), T + 1000), ["1,1,2,0,0,2,2.000000,22", "2,1,1,0,0,0,1.000000,1", "3,0,0,1,0,0,,3"]);
    }
}
