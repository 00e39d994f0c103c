//! `item_stats`: per item, behaviour counters, units, GMV, uv and buyers over all
//! events (tagged or not).
//!
//! The platform's shared `item_totals`, kept by the tagging stage keyed by item:
//!
//! ```text
//! events ─ tag_by_item (per item: counters, and per user whether they touched / bought it) ─► (item, Stats) rows
//! ```
//!
//! Contract: at every time t, one row per item with any event of logical time ≤ t;
//! changes only (a row is retracted and re-inserted when its counters move).

use differential_dataflow::VecCollection;

use platform::model::{ItemId, Time};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

pub fn item_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Stats)> {
    p.item_totals.clone()
}

pub fn schema() -> Schema<(ItemId, Stats)> {
    Schema {
        name: "item_stats",
        columns: super::counter_columns!("item_id", "uv", "buyers"),
        key: 1,
        fields: |(k, s)| super::stats_fields(Field::U(*k), s),
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per item, all its events: item 1 was seen once, clicked twice (users 7 and 8),
    /// bought twice for 1000 cents by two buyers; item 4, without a catalog row, counts
    /// too.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("item_stats", shop(), T + 1000), ["1,1,2,0,0,2,2,1000,2,2", "2,1,1,0,0,0,0,0,1,0", "3,0,0,1,0,0,0,0,1,0", "4,0,1,0,0,0,0,0,1,0"]);
    }
}
