//! `scene_traffic` (case 1): each scene's share of the last hour's impressions, clicks and
//! GMV — the input of traffic allocation.
//!
//! ```text
//! platform.recent_events ─ explode ((), scene), Stats ─ sum_locally ─ reduce_total (one group): shares
//! ```
//!
//! Contract (docs/cases-contract.md): per scene with an event in the 1-hour window:
//! impressions, clicks and buy amount_cents in the window over the same sums of all
//! scenes, as fixed-point decimals with six decimals (rounded half up), empty when the
//! total is 0. Scenes are few: the whole window's scene totals form one group.

use differential_dataflow::VecCollection;

use platform::model::{Scene, Time};
use operators::{ReduceTotal, SumLocally};
use platform::Platform;
use platform::rates::{fixed6, Micro};
use platform::output::{Field, Schema};
use platform::stats::Stats;

/// `(scene, impressions_share, clicks_share, gmv_share)`.
pub type Shares = (Scene, Option<Micro>, Option<Micro>, Option<Micro>);

pub fn scene_traffic<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, Shares> {
    let by_scene = p.recent_events().explode(|e| Some((((), e.scene), Stats::of(&e)))).sum_locally();
    by_scene.reduce_total("SceneTraffic", |_, scenes: &[(Scene, Stats)], out: &mut Vec<Shares>| {
        let mut total = Stats::default();
        for (_, s) in scenes {
            total.impressions += s.impressions;
            total.clicks += s.clicks;
            total.gmv_cents += s.gmv_cents;
        }
        let share = |part: i64, whole: i64| fixed6(part as i128, whole as i128);
        for (scene, s) in scenes {
            out.push((
                *scene,
                share(s.impressions, total.impressions),
                share(s.clicks, total.clicks),
                fixed6(s.gmv_cents, total.gmv_cents),
            ));
        }
    })
    .map(|((), shares)| shares)
}

pub fn schema() -> Schema<Shares> {
    Schema {
        name: "scene_traffic",
        columns: &["scene", "impressions_share", "clicks_share", "gmv_share"],
        key: 1,
        fields: |(scene, i, c, g)| vec![Field::S(*scene), Field::Fixed(*i), Field::Fixed(*c), Field::Fixed(*g)],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Each scene's share of the last hour's impressions, clicks and GMV.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("scene_traffic", shop(), T + 1000), ["home_feed,0.500000,0.500000,0.000000", "search,0.500000,0.500000,1.000000"]);
    }
}
