//! `user_stats`: per user, counters over all events and `items`, the number of
//! distinct items the user touched.
//!
//! ```text
//! events ─ explode (user, Stats::of) ──────────────────────────────┐
//! item_user_reach ─ map user, keep uv (items) ─────────────────────┴─ concat ─ count_total_hashed
//! ```
//!
//! Contract: at time t, one row per user with events of logical time ≤ t.

use differential_dataflow::VecCollection;

use crate::model::{Time, UserId};
use crate::operators::{count_total_hashed, map_diff};
use crate::platform::Platform;
use crate::sink::{Field, Schema};
use crate::stats::Stats;

pub fn user_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Stats)> {
    let counters = p.events.clone().explode(|e| Some((e.user, Stats::of(&e))));
    let items = map_diff(p.item_user_reach.clone().map(|(_item, user)| user), |r: Stats| Stats {
        uv: r.uv,
        ..Stats::default()
    });
    count_total_hashed(counters.concat(items), "UserStats")
}

pub fn schema() -> Schema<(UserId, Stats)> {
    Schema {
        name: "user_stats",
        columns: super::counter_columns!("user_id", "items"),
        key: 1,
        fields: |(k, s)| {
            let mut v = super::counter_fields(Field::U(*k), s);
            v.push(Field::I(s.uv));
            v
        },
    }
}
