//! `scene_category_ctr_cvr` (case 1): CTR and CVR per scene and current category,
//! smoothed like `item_ctr_cvr` — what traffic allocation compares across scenes.
//!
//! ```text
//! events ─ explode ((item,scene), funnel) ─ arrange by item ─ join_core item_category ─┐
//! platform.prior ────────────────────────────────────────── (broadcast) ───────────────┴─ reduce_total_with per (scene, category)
//! ```
//!
//! Contract (docs/cases-contract.md): per (scene, category at t of the event's item),
//! over the events up to t of items with a catalog row at t: impressions, clicks, buys,
//! smoothed ctr and cvr with the hourly prior. History is re-attributed when an item
//! moves category (the join with the current catalog).

use differential_dataflow::VecCollection;

use crate::arranged::arrange;
use crate::model::{CategoryId, Scene, Time};
use crate::operators::reduce_total_with;
use crate::platform::Platform;
use crate::sink::{Field, Schema};
use crate::stats::Stats;

use super::item_ctr_cvr::{funnel, rate_fields, rates, Rates};

pub fn scene_category_ctr_cvr<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, ((Scene, CategoryId), Rates)> {
    let by_item = p.events.clone().explode(|e| Some(((e.item, e.scene), funnel(&Stats::of(&e)))));
    let by_item = arrange(by_item, "Arrange: SceneFunnelByItem");
    let counts = by_item.join_core(p.item_category.clone(), |_item, scene, category| Some(((*scene, *category), ())));
    reduce_total_with(counts, p.prior(), "SceneCategoryCtrCvr", |_key, counts: &[((), Stats)], prior: &[Stats], out| {
        out.push(rates(&counts[0].1, prior.last()));
    })
}

pub fn schema() -> Schema<((Scene, CategoryId), Rates)> {
    Schema {
        name: "scene_category_ctr_cvr",
        columns: &["scene", "category_id", "impressions", "clicks", "buys", "ctr", "cvr"],
        fields: |((scene, category), r)| {
            let mut v = vec![Field::S(*scene), Field::U(*category)];
            v.extend(rate_fields(r));
            v
        },
    }
}
