//! `scene_stats`: per scene, counters, uv and buyers over all events.
//!
//! ```text
//! events ─ explode (scene, Stats::of) ─ sum_locally ─────────────────────────────┐
//!        └─ explode ((scene,user), Reach) ─ threshold_total_hashed ─ map scene ──────────┴─ concat ─ count_total_hashed
//! ```
//!
//! Contract: at time t, one row per scene with events of logical time ≤ t.

use differential_dataflow::VecCollection;

use crate::model::{Scene, Time};
use crate::operators::{count_total_hashed, sum_locally, threshold_total_hashed};
use crate::platform::Platform;
use crate::sink::{Field, Schema};
use crate::stats::{event_reach, Reach, Stats};

pub fn scene_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (Scene, Stats)> {
    let reach = threshold_total_hashed(
        p.events.clone().explode(|e| Some(((e.scene, e.user), event_reach(&e)))),
        "SceneUserReach",
        |total: &Reach| Stats::reach_of(total),
    )
    .map(|(scene, _user)| scene);
    let counters = sum_locally(p.events.clone().explode(|e| Some((e.scene, Stats::of(&e)))));
    count_total_hashed(counters.concat(reach), "SceneStats")
}

pub fn schema() -> Schema<(Scene, Stats)> {
    Schema {
        name: "scene_stats",
        columns: super::counter_columns!("scene", "uv", "buyers"),
        key: 1,
        fields: |(k, s)| super::stats_fields(Field::S(*k), s),
    }
}
