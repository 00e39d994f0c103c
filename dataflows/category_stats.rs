//! `category_stats`: per *current* category, counters, uv and buyers over tagged events.
//!
//! ```text
//! tagged_items ((category,item), Stats) ─ map category ─ sum_locally ─────────────────┐
//! platform.by_user (per user and category: counts) ─ Δ (uv, buyers) ─ sum_locally ──┴─ concat ─ count_total_hashed
//! ```
//!
//! Contract: at time t, one row per category holding at least one catalogued item
//! with events of logical time ≤ t, counting the whole history of the items currently
//! in it. When an item moves or is deleted, its history is retracted from the old
//! category at that time (and added to the new one); uv and buyers are recounted
//! exactly (a user counts once per category however many of its items they touched).

use differential_dataflow::VecCollection;

use platform::model::{CategoryId, Time};
use operators::{CountTotalHashed, SumLocally};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

pub fn category_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Stats)> {
    let counters = p.tagged_items.clone().map(|(category, _item)| category).sum_locally();
    let reach = p.by_user().category_reach.sum_locally();
    counters.concat(reach).count_total_hashed("CategoryStats")
}

pub fn schema() -> Schema<(CategoryId, Stats)> {
    Schema {
        name: "category_stats",
        columns: super::counter_columns!("category_id", "uv", "buyers"),
        key: 1,
        fields: |(k, s)| super::stats_fields(Field::U(*k), s),
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per current category, its items' events (item 4 has none): category 10 holds items 1
    /// and 2, with two distinct users who both bought.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("category_stats", shop(), T + 1000), ["10,2,3,0,0,2,2,1000,2,2", "20,0,0,1,0,0,0,0,1,0"]);
    }
}
