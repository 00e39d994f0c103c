//! `recall_hot` (case 2): per scene and category, the items to recall because they are hot
//! right now, scored with the scene's own weights from the rules file.
//!
//! ```text
//! platform.recent_online ─ explode ((category,item), Stats) ─┐
//! rules ─────────────────────────────── (broadcast) ─────────┴─ reduce_total_with per category:
//!                                                               per scene with a `hot` rule, its top n as one row
//! ```
//!
//! Contract (docs/cases-contract.md): for each scene S with a `hot` rule and each category
//! c with a hot online item: one row whose `items` column lists c's online items, score =
//! w.click·clicks + w.fav·favs + w.cart·carts + w.buy·buys over the 1-hour window (all
//! scenes' events), score > 0, top `top_n` by score desc, item asc, as space-separated
//! `item:score` ([`format_scored`]). An edit of S's rule recomputes every category but
//! changes only S's rows. One row per list, as `recall_i2i`: a list's change is one changed
//! row however many members moved (2.73 M → 0.41 M rows at 10 M events, BENCHMARKS.md), and
//! the user merge reads a category's list whole.

use differential_dataflow::VecCollection;

use platform::model::{CategoryId, ItemId, Scene, Time};
use operators::ReduceTotal;
use platform::Platform;
use platform::rules::{hot_rules, HotRule, Rule};
use platform::output::{format_scored, Field, Schema};
use platform::stats::Stats;

use operators::rank::top_n_positive;

/// `(scene, [(item, score)])`: the scene's top-n list of a category, ranked.
pub type Hot = (Scene, Vec<(ItemId, i64)>);

pub fn recall_hot<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Hot)> {
    let counts = p.recent_online().explode(|(item, (category, s))| Some(((category, item), s)));
    let mut ranked = Vec::new();
    counts.reduce_total_with(p.rules.clone(), "RecallHot", move |_c, items: &[(ItemId, Stats)], rules: &[Rule], out| {
            for (scene, rule) in hot_rules(rules) {
                ranked.clear();
                top_n_positive(items.iter().map(|(item, s)| (*item, score(&rule, s))), rule.top_n as usize, &mut ranked);
                if !ranked.is_empty() {
                    out.push((scene, ranked.iter().map(|&(_rank, item, score)| (item, score)).collect()));
                }
            }
        })
}

/// A `hot` rule's weighted score of window counters.
pub fn score(rule: &HotRule, s: &Stats) -> i64 {
    rule.click as i64 * s.clicks + rule.fav as i64 * s.favs + rule.cart as i64 * s.carts + rule.buy as i64 * s.buys
}

/// A row in column order, the list as written (the sink sorts rows within a time by it:
/// the list column as text, as a reader of the file compares it).
pub type Row = (Scene, CategoryId, String);

pub fn as_row((c, (scene, list)): (CategoryId, Hot)) -> Row {
    (scene, c, format_scored(&list))
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_hot",
        columns: &["scene", "category_id", "items"],
        key: 2,
        fields: |(scene, c, list)| vec![Field::S(*scene), Field::U(*c), Field::Text(list.clone())],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Scene `search`'s hot lists: per category, the top 2 online items by its weights over
    /// the last hour (all scenes' events).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_hot", shop(), T + 1000), ["search,10,1:22 2:1", "search,20,3:3"]);
    }
}
