//! `user_stats`: per user, counters over all events and `items`, the number of
//! distinct items the user touched.
//!
//! ```text
//! events, item_user_reach ─ platform.by_user (the user stage, keyed by user) ─ totals rows
//! ```
//!
//! Contract: at time t, one row per user with events of logical time ≤ t.

use differential_dataflow::VecCollection;

use platform::model::{Time, UserId};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

pub fn user_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Stats)> {
    p.by_user().totals
}

pub fn schema() -> Schema<(UserId, Stats)> {
    Schema {
        name: "user_stats",
        columns: super::counter_columns!("user_id", "items"),
        key: 1,
        fields: |(k, s)| {
            let mut v = Vec::with_capacity(9);
            super::push_counter_fields(&mut v, Field::U(*k), s);
            v.push(Field::I(s.uv));
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per user, their events and the distinct items they touched (user 8: items 1, 2 and 3).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("user_stats", shop(), T + 1000), ["7,1,1,0,0,1,1,500,1", "8,1,2,1,0,1,1,500,3", "9,0,1,0,0,0,0,0,1"]);
    }
}
