//! `item_stats`: per item, behaviour counters, units, GMV, uv and buyers over all
//! events (tagged or not).
//!
//! ```text
//! events ─ explode (item, Stats::of) ─┐
//! item_user_reach ─ map item ─────────┴─ concat ─ count_total_hashed ─► (item, Stats)
//! ```
//!
//! Contract: at every time t, one row per item with any event of logical time ≤ t;
//! changes only (a row is retracted and re-inserted when its counters move).

use differential_dataflow::VecCollection;

use crate::model::{ItemId, Time};
use crate::operators::count_total_hashed;
use crate::platform::Platform;
use crate::sink::{Field, Schema};
use crate::stats::Stats;

pub fn item_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Stats)> {
    let counters = p.events.clone().explode(|e| Some((e.item, Stats::of(&e))));
    let reach = p.item_user_reach.clone().map(|(item, _user)| item);
    count_total_hashed(counters.concat(reach), "ItemStats")
}

pub fn schema() -> Schema<(ItemId, Stats)> {
    Schema {
        name: "item_stats",
        columns: super::counter_columns!("item_id", "uv", "buyers"),
        fields: |(k, s)| super::stats_fields(Field::U(*k), s),
    }
}
