//! `recall_hot` (case 2): per scene and category, the items to recall because they are hot
//! right now, scored with the scene's own weights from the rules file.
//!
//! ```text
//! platform.recent_online ─ explode ((category,item), Stats) ─┐
//! rules ─────────────────────────────── (broadcast) ─────────┴─ reduce_total_with per category:
//!                                                               top n per scene with a `hot` rule
//! ```
//!
//! Contract (docs/cases-contract.md): for each scene S with a `hot` rule and each category
//! c: the online items of c, score = w.click·clicks + w.fav·favs + w.cart·carts +
//! w.buy·buys over the 1-hour window (all scenes' events), score > 0, top `top_n` by score
//! desc, item asc. An edit of S's rule recomputes every category but changes only S's rows.
//! Rows carry the score, not the rank (a reader ranks by score desc, item asc): a score
//! change then moves one row, not every row below it.

use differential_dataflow::VecCollection;

use platform::model::{CategoryId, ItemId, Scene, Time};
use operators::ReduceTotal;
use platform::Platform;
use platform::rules::{hot_rules, HotRule, Rule};
use platform::output::{Field, Schema};
use platform::stats::Stats;

use operators::rank::top_n_positive;

/// `(scene, item, score)`: a member of the scene's top-n list of a category.
pub type Hot = (Scene, ItemId, i64);

pub fn recall_hot<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Hot)> {
    let counts = p.recent_online().explode(|(item, (category, s))| Some(((category, item), s)));
    let mut ranked = Vec::new();
    counts.reduce_total_with(p.rules.clone(), "RecallHot", move |_c, items: &[(ItemId, Stats)], rules: &[Rule], out| {
            for (scene, rule) in hot_rules(rules) {
                ranked.clear();
                top_n_positive(items.iter().map(|(item, s)| (*item, score(&rule, s))), rule.top_n as usize, &mut ranked);
                out.extend(ranked.iter().map(|&(_rank, item, score)| (scene, item, score)));
            }
        })
}

/// A `hot` rule's weighted score of window counters.
pub fn score(rule: &HotRule, s: &Stats) -> i64 {
    rule.click as i64 * s.clicks + rule.fav as i64 * s.favs + rule.cart as i64 * s.carts + rule.buy as i64 * s.buys
}

/// A row in column order (the sink sorts rows within a time by it).
pub type Row = (Scene, CategoryId, ItemId, i64);

pub fn as_row((c, (scene, item, score)): (CategoryId, Hot)) -> Row {
    (scene, c, item, score)
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_hot",
        columns: &["scene", "category_id", "item_id", "score"],
        key: 3,
        fields: |(scene, c, item, score)| vec![Field::S(*scene), Field::U(*c), Field::U(*item), Field::I(*score)],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Scene `search`'s hot lists: per category, the top 2 online items by its weights over
    /// the last hour (all scenes' events).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_hot", shop(), T + 1000), ["search,10,1,22", "search,10,2,1", "search,20,3,3"]);
    }
}
