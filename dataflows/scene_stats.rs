//! `scene_stats`: per scene, counters, uv and buyers over all events.
//!
//! ```text
//! events ─ explode (scene, Stats::of) ─ sum_locally ─────────────────────────────┐
//!        └─ explode ((scene,user), Reach) ─ threshold_total_hashed ─ map scene ──────────┴─ concat ─ count_total_hashed
//! ```
//!
//! Contract: at time t, one row per scene with events of logical time ≤ t.

use differential_dataflow::VecCollection;

use platform::model::{Scene, Time};
use operators::{CountTotalHashed, SumLocally, ThresholdTotalHashed};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::{event_reach, Reach, Stats};

pub fn scene_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (Scene, Stats)> {
    let reach = p.events.clone().explode(|e| Some(((e.scene, e.user), event_reach(&e)))).threshold_total_hashed("SceneUserReach", |total: &Reach| Stats::reach_of(total))
    .map(|(scene, _user)| scene);
    let counters = p.events.clone().explode(|e| Some((e.scene, Stats::of(&e)))).sum_locally();
    counters.concat(reach).count_total_hashed("SceneStats")
}

pub fn schema() -> Schema<(Scene, Stats)> {
    Schema {
        name: "scene_stats",
        columns: super::counter_columns!("scene", "uv", "buyers"),
        key: 1,
        fields: |(k, s)| super::stats_fields(Field::S(*k), s),
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per scene, every event in it, and its distinct users and buyers.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("scene_stats", shop(), T + 1000), ["home_feed,1,2,0,0,0,0,0,1,0", "search,1,2,1,0,2,2,1000,3,2"]);
    }
}
