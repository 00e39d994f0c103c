//! `recall_user_signals` (case 2): per recently active user, what their recall list is
//! made from — their top categories, the items they just clicked or bought, and the items
//! they just bought. The list itself (`recall_user`) is merged by the reader
//! (`serving::recall`): at read time from these signals, `recall_hot`, `recall_i2i` and the
//! rules, as of one time.
//!
//! ```text
//! recent events ─ ((item,user), score) ─ arrange ─ join item_category ─ reduce per user: top 3 categories ─┐
//! recent clicks/buys ─ distinct (user, item) ────────────────────────────────────────────── engaged items ──┼─► (user, Signal)
//! recent buys ─ distinct (user, item) ─────────────────────────────────────────────────────── bought items ─┘
//! ```
//!
//! Contract (docs/cases-contract.md), at every time t, per user u with clicks, favs, carts or
//! buys in the 1-hour window: `category c` for each of u's top 3 categories (category at t of
//! the events' items, by Σ hot score over the window, score > 0, ties: smaller id), `engaged
//! a` for each item u clicked or bought in the window, `bought b` for each item u bought in
//! it. A user leaves once their window is empty.
//!
//! **Why signals, not lists.** A user's merged list moves whenever any hot list of their
//! top categories or any i2i list of their recent items moves — in a live stream, every
//! active user's list once per epoch (61 M of the 148 M change rows of a 10 M-event run).
//! The signals change only with the user's own events (and their items' category moves);
//! the reader merges the lists it is asked for.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use operators::arrange::arrange;
use platform::model::{Behavior, CategoryId, ItemId, Time, UserId};
use operators::{ReduceTotal, ThresholdTotalHashed};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

use operators::rank::top_n_positive;

/// Top categories per user that feed the hot candidates.
pub const TOP_CATEGORIES: usize = 3;

/// What a user's list is made from: a top category (its hot list is read), an item the user
/// clicked or bought (its i2i list is read), or an item the user bought (left out when the
/// rule says `exclude_bought`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Signal {
    // In the order of their labels: rows within a time are written sorted.
    Bought(ItemId),
    TopCategory(CategoryId),
    Engaged(ItemId),
}

impl Signal {
    /// The `signal` column.
    pub fn label(&self) -> &'static str {
        match self {
            Signal::TopCategory(_) => "category",
            Signal::Engaged(_) => "engaged",
            Signal::Bought(_) => "bought",
        }
    }

    /// The `id` column: a category id or an item id.
    pub fn id(&self) -> u64 {
        match *self {
            Signal::TopCategory(c) => c,
            Signal::Engaged(item) | Signal::Bought(item) => item,
        }
    }

    /// The signal of a `signal,id` pair as written (`None`: not a signal label).
    pub fn parse(label: &str, id: u64) -> Option<Signal> {
        match label {
            "category" => Some(Signal::TopCategory(id)),
            "engaged" => Some(Signal::Engaged(id)),
            "bought" => Some(Signal::Bought(id)),
            _ => None,
        }
    }
}

pub fn recall_user_signals<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Signal)> {
    let recent = p.recent_events();
    // The user's top categories over the window.
    let interest = recent.clone().explode(|e| Some(((e.item, e.user), Stats::of(&e).score() as isize)));
    let interest = arrange(interest, "Arrange: RecentInterestByItem")
        .join_core(p.item_category.clone(), |_item, user, category| Some((*user, *category)));
    let top_categories = interest.reduce_total("UserRecentTopCategories", |_u, input: &[(CategoryId, isize)], out| {
        top_n_positive(input.iter().map(|(c, s)| (*c, *s as i64)), TOP_CATEGORIES, out)
    });
    // The items the user recently clicked or bought (their i2i lists are read), and bought.
    let engaged = recent.clone().flat_map(|e| matches!(e.behavior, Behavior::Click | Behavior::Buy).then_some((e.user, e.item))).threshold_total_hashed("UserRecentItems", |n: &isize| (*n > 0) as isize);
    let bought = recent.flat_map(|e| (e.behavior == Behavior::Buy).then_some((e.user, e.item))).threshold_total_hashed("UserRecentBuys", |n: &isize| (*n > 0) as isize);
    top_categories
        .map(|(user, (_rank, category, _score))| (user, Signal::TopCategory(category)))
        .concat(engaged.map(|(user, item)| (user, Signal::Engaged(item))))
        .concat(bought.map(|(user, item)| (user, Signal::Bought(item))))
}

pub fn schema() -> Schema<(UserId, Signal)> {
    Schema {
        name: "recall_user_signals",
        columns: &["user_id", "signal", "id"],
        key: 3,
        fields: |(user, signal)| vec![Field::U(*user), Field::Label(signal.label()), Field::U(signal.id())],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per recently active user, what their list is merged from: top categories, engaged
    /// items, bought items.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_user_signals", shop(), T + 1000), ["7,bought,1", "7,category,10", "7,engaged,1", "8,bought,1", "8,category,10", "8,category,20", "8,engaged,1", "8,engaged,2", "9,engaged,4"]);
    }
}
