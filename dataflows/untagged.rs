//! `untagged`: per item with no catalog row now, the number of its events — the events
//! the category outputs cannot see.
//!
//! ```text
//! events ─ map item (+1 each) ─────────────────────────────┐
//! tagged_items ─ map item, diff −events ───────────────────┴─ concat ─ count_total_hashed
//! ```
//!
//! Contract: at time t, one row per item that has events of logical time ≤ t and no
//! catalog row at t (never had one, or deleted). An item that gains a row disappears;
//! one that is deleted reappears with all its events.

use differential_dataflow::VecCollection;

use platform::model::{ItemId, Time};
use operators::{CountTotalHashed, MapDiff};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

pub fn untagged<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, isize)> {
    let tagged = p.tagged_items.clone().map(|(_category, item)| item).map_diff(|s: Stats| -(s.events() as isize));
    p.events.clone().map(|e| e.item).concat(tagged).count_total_hashed("Untagged")
}

pub fn schema() -> Schema<(ItemId, isize)> {
    Schema {
        name: "untagged",
        columns: &["item_id", "events"],
        key: 1,
        fields: |(k, n)| vec![Field::U(*k), Field::I(*n as i64)],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Items without a catalog row and their events: item 4.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("untagged", shop(), T + 1000), ["4,1"]);
    }
}
