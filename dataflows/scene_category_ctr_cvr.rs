//! `scene_category_ctr_cvr` (case 1): the counters behind CTR and CVR per scene and
//! current category — what traffic allocation compares across scenes, smoothed by the
//! reader with `ctr_cvr_prior` like an item's counters in `item_stats`.
//!
//! ```text
//! events ─ explode ((item,scene), funnel) ─ arrange by item ─ join_core item_category ─ count_total_hashed
//! ```
//!
//! Contract (docs/cases-contract.md): per (scene, category at t of the event's item),
//! over the events up to t of items with a catalog row at t: impressions, clicks, buys
//! (rows only when not all three are 0). History is re-attributed when an item moves
//! category (the join with the current catalog).

use differential_dataflow::VecCollection;

use operators::arrange::arrange;
use platform::model::{CategoryId, Scene, Time};
use operators::CountTotalHashed;
use platform::Platform;
use platform::output::{Field, Schema};
use platform::counts::Counts;
use platform::stats::Stats;

use super::{funnel_fields, Funnel};

pub fn scene_category_ctr_cvr<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, ((Scene, CategoryId), Funnel)> {
    // Arranged with five counters as the difference (favs and carts 0: 40 bytes an
    // update, where the funnel's `Stats` took 80); events outside the funnel stay out.
    let by_item = p.events.clone().explode(|e| {
        let funnel = Counts::of(&Stats::behaviors_of(&e).funnel());
        (!funnel.is_zero()).then_some(((e.item, e.scene), funnel))
    });
    let by_item = arrange(by_item, "Arrange: SceneFunnelByItem");
    let counts = by_item.join_core(p.item_category.clone(), |_item, scene, category| Some((*scene, *category)));
    counts.count_total_hashed("SceneCategoryFunnel").flat_map(|(key, Counts([impressions, clicks, _, _, buys]))| {
        let f = (impressions, clicks, buys);
        (f != (0, 0, 0)).then_some((key, f))
    })
}

pub fn schema() -> Schema<((Scene, CategoryId), Funnel)> {
    Schema {
        name: "scene_category_ctr_cvr",
        columns: &["scene", "category_id", "impressions", "clicks", "buys"],
        key: 2,
        fields: |((scene, category), r)| {
            let mut v = vec![Field::S(*scene), Field::U(*category)];
            v.extend(funnel_fields(r));
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per scene and current category, the funnel counters (the click on item 4 has no category).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("scene_category_ctr_cvr", shop(), T + 1000), ["home_feed,10,1,2,0", "search,10,1,1,2"]);
    }
}
