//! `recall_user` (case 2): per recently active user and scene, the candidates to show —
//! merged from the hot items of the user's top categories and the i2i neighbours of the
//! items they just engaged with, minus what they just bought, scored by the scene's rule.
//!
//! ```text
//! recent events ─ ((item,user), score) ─ arrange ─ join item_category ─ reduce per user: top 3 categories ─┐
//! recent clicks/buys ─ distinct (user, item) ────────────────────────────────────────────── engaged items ──┤
//! recent buys ─ distinct (user, item) ─────────────────────────────────────────────────────── bought items ─┤
//! recall_hot (category → list) ∪ recall_i2i (item → list) ─ (broadcast tables) ─────────────────────────────┤
//! rules ──────────────────────────────────────────────────── (broadcast) ───────────────────────────────────┴─
//!   reduce_total_lookup per user: reads the lists of its top categories and engaged items; top k per scene
//! ```
//!
//! Contract (docs/cases-contract.md): for each scene S with a `user` rule and each user u
//! with clicks, favs, carts or buys in the 1-hour window: hot(b) from `recall_hot` of S in
//! u's top 3 categories, i2i(b) = max over u's recently clicked or bought items a of
//! users(a, b) in `recall_i2i` of S; score = hot_weight·hot(b) + i2i_weight·i2i(b) > 0;
//! bought items left out when `exclude_bought`; top `top_k` by score desc, item asc;
//! strategy `hot`, `i2i` or `hot+i2i`; rows carry the score, not the rank. A user leaves
//! once their window is empty.
//!
//! The hot and i2i lists are tables every worker holds whole, not joined to the users: a
//! list changing recomputes each user who reads it once, instead of re-sending every row
//! change to every such user (and keeping each user's candidates arranged).

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::arranged::arrange;
use crate::model::{Behavior, CategoryId, ItemId, Scene, Time, UserId};
use crate::operators::{reduce_total, reduce_total_lookup, threshold_total_hashed, Lookup};
use crate::platform::Platform;
use crate::rules::{user_rules, Rule};
use crate::sink::{Field, Schema};
use crate::stats::Stats;

use super::category_hot_items::top_by_score;
use super::recall_hot::Hot;
use super::recall_i2i::Neighbor;

/// Top categories per user that feed the hot candidates.
pub const TOP_CATEGORIES: usize = 3;

/// What a user's list is made from: a top category (its hot list is read), an item the user
/// clicked or bought (its i2i list is read), or an item the user bought (left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Signal {
    TopCategory(CategoryId),
    Engaged(ItemId),
    Bought(ItemId),
}

/// A list a user reads: the hot list of a category or the i2i list of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum List {
    Hot(CategoryId),
    I2i(ItemId),
}

/// Which strategies produced a candidate (ordered as their labels: hot, hot+i2i, i2i).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    Hot,
    Both,
    I2i,
}

/// `(scene, item, score, source)`: a member of the user's top-k list for the scene.
pub type Recall = (Scene, ItemId, i64, Source);

pub fn recall_user<'s>(
    p: &Platform<'s>,
    hot: VecCollection<'s, Time, (CategoryId, Hot)>,
    i2i: VecCollection<'s, Time, (ItemId, Neighbor)>,
) -> VecCollection<'s, Time, (UserId, Recall)> {
    let recent = p.recent_events();
    // The user's top categories over the window.
    let interest = recent.clone().explode(|e| Some(((e.item, e.user), Stats::of(&e).score() as isize)));
    let interest = arrange(interest, "Arrange: RecentInterestByItem")
        .join_core(p.item_category.clone(), |_item, user, category| Some((*user, *category)));
    let top_categories = reduce_total(interest, "UserRecentTopCategories", |_u, input: &[(CategoryId, isize)], out| {
        top_by_score(input.iter().map(|(c, s)| (*c, *s as i64)), TOP_CATEGORIES, out)
    });
    // The items the user recently clicked or bought (their i2i lists are read), and bought.
    let engaged = threshold_total_hashed(
        recent.clone().flat_map(|e| matches!(e.behavior, Behavior::Click | Behavior::Buy).then_some((e.user, e.item))),
        "UserRecentItems",
        |n: &isize| (*n > 0) as isize,
    );
    let bought = threshold_total_hashed(
        recent.flat_map(|e| (e.behavior == Behavior::Buy).then_some((e.user, e.item))),
        "UserRecentBuys",
        |n: &isize| (*n > 0) as isize,
    );
    let signals = top_categories
        .map(|(user, (_rank, category, _score))| (user, Signal::TopCategory(category)))
        .concat(engaged.map(|(user, item)| (user, Signal::Engaged(item))))
        .concat(bought.map(|(user, item)| (user, Signal::Bought(item))));
    let lists = hot.map(|(c, entry)| (List::Hot(c), entry)).concat(i2i.map(|(a, entry)| (List::I2i(a), entry)));
    reduce_total_lookup(
        signals,
        lists,
        p.rules.clone(),
        "RecallUser",
        |_user, signals: &[(Signal, isize)], lists: &Lookup<List, (Scene, ItemId, i64)>, rules: &[Rule], out| {
            for (scene, rule) in user_rules(rules) {
                // item → (hot, i2i), for this scene.
                let mut scores: Vec<(ItemId, i64, i64)> = Vec::new();
                let mut bought: Vec<ItemId> = Vec::new();
                for (signal, _) in signals {
                    let (list, hot) = match *signal {
                        Signal::TopCategory(c) => (List::Hot(c), true),
                        Signal::Engaged(a) => (List::I2i(a), false),
                        Signal::Bought(item) => {
                            if rule.exclude_bought {
                                bought.push(item);
                            }
                            continue;
                        }
                    };
                    let entries = lists.get(&list).filter(|(s, _, _)| *s == scene);
                    scores
                        .extend(entries.map(|&(_, item, score)| if hot { (item, score, 0) } else { (item, 0, score) }));
                }
                scores.sort_unstable();
                bought.sort_unstable();
                let mut merged: Vec<(ItemId, i64, i64)> = Vec::new();
                for (item, h, i) in scores {
                    match merged.last_mut() {
                        Some(last) if last.0 == item => {
                            last.1 = last.1.max(h);
                            last.2 = last.2.max(i);
                        }
                        _ => merged.push((item, h, i)),
                    }
                }
                merged.retain(|(item, _, _)| bought.binary_search(item).is_err());
                let mut ranked = Vec::new();
                let weighted =
                    merged.iter().map(|&(item, h, i)| (item, rule.hot_weight as i64 * h + rule.i2i_weight as i64 * i));
                top_by_score(weighted, rule.top_k as usize, &mut ranked);
                for (_rank, item, score) in ranked {
                    let (_, h, i) = merged[merged.binary_search_by_key(&item, |m| m.0).expect("ranked item")];
                    let source = match (h > 0, i > 0) {
                        (true, true) => Source::Both,
                        (true, false) => Source::Hot,
                        _ => Source::I2i,
                    };
                    out.push((scene, item, score, source));
                }
            }
        },
    )
}

/// A row in column order (the sink sorts rows within a time by it).
pub type Row = (Scene, UserId, ItemId, i64, Source);

pub fn as_row((user, (scene, item, score, source)): (UserId, Recall)) -> Row {
    (scene, user, item, score, source)
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_user",
        columns: &["scene", "user_id", "item_id", "score", "strategy"],
        key: 3,
        fields: |(scene, user, item, score, source)| {
            let label = match source {
                Source::Hot => "hot",
                Source::I2i => "i2i",
                Source::Both => "hot+i2i",
            };
            vec![Field::S(*scene), Field::U(*user), Field::U(*item), Field::I(*score), Field::Label(label)]
        },
    }
}
