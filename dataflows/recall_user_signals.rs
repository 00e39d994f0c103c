//! `recall_user_signals` (case 2): per recently active user, what their recall list is
//! made from — their top categories, the items they just clicked or bought, and the items
//! they just bought. The list itself (`recall_user`) is merged by the reader
//! (`serving::recall`): at read time from these signals, `recall_hot`, `recall_i2i` and the
//! rules, as of one time.
//!
//! ```text
//! recent events ─ ((item,user), score) ─ arrange ─ join item_category ─ (user, Category(c)), diff score ─┐
//! recent clicks/buys ─────────────────────────────────────────────────── (user, Engaged(a)), diff count ──┼─ reduce per user ─► (user, Signals)
//! recent buys ────────────────────────────────────────────────────────── (user, Bought(b)), diff count ───┘
//! ```
//!
//! Contract (docs/cases-contract.md), at every time t, one row per user u with clicks, favs,
//! carts or buys in the 1-hour window: `categories`, u's top 3 categories (category at t of
//! the events' items, by Σ hot score over the window, score > 0, ties: smaller id) in rank
//! order; `engaged`, the items u clicked or bought in the window; `bought`, the items u
//! bought in it (both ascending). Each column is a space-separated list of ids (empty when
//! none). A user leaves once their window is empty.
//!
//! **Why signals, not lists.** A user's merged list moves whenever any hot list of their
//! top categories or any i2i list of their recent items moves — in a live stream, every
//! active user's list once per epoch (61 M of the 148 M change rows of a 10 M-event run).
//! The signals change only with the user's own events (and their items' category moves);
//! the reader merges the lists it is asked for.
//!
//! **Why one row per user.** A click changes the user's engaged set: as a row per signal
//! that is a row in and, an hour later, a row out per item; as one row per user it is one
//! changed row per user and time whatever moved (25.3 M → 3.1 M rows at 10 M events,
//! BENCHMARKS.md) — and a user's signals are what a reader fetches together.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use operators::arrange::arrange;
use operators::rank::top_n_positive;
use operators::ReduceTotal;
use platform::model::{Behavior, CategoryId, ItemId, Time, UserId};
use platform::output::{format_ids, parse_ids, Field, Schema};
use platform::stats::Stats;
use platform::Platform;

/// Top categories per user that feed the hot candidates.
pub const TOP_CATEGORIES: usize = 3;

/// What a user's list is made from: a top category (its hot list is read), an item the user
/// clicked or bought (its i2i list is read), or an item the user bought (left out when the
/// rule says `exclude_bought`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Signal {
    Bought(ItemId),
    TopCategory(CategoryId),
    Engaged(ItemId),
}

/// A user's signals: the row of `recall_user_signals`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Signals {
    /// Top categories, in rank order.
    pub categories: Vec<CategoryId>,
    /// Items clicked or bought in the window, ascending.
    pub engaged: Vec<ItemId>,
    /// Items bought in the window, ascending.
    pub bought: Vec<ItemId>,
}

impl Signals {
    /// Every signal, one per id.
    pub fn iter(&self) -> impl Iterator<Item = Signal> + '_ {
        let categories = self.categories.iter().map(|&c| Signal::TopCategory(c));
        let engaged = self.engaged.iter().map(|&a| Signal::Engaged(a));
        categories.chain(engaged).chain(self.bought.iter().map(|&b| Signal::Bought(b)))
    }

    /// The signals of a row's `categories, engaged, bought` columns as written (`None`: a
    /// column is not a list of ids).
    pub fn parse(categories: &str, engaged: &str, bought: &str) -> Option<Signals> {
        Some(Signals { categories: parse_ids(categories)?, engaged: parse_ids(engaged)?, bought: parse_ids(bought)? })
    }
}

/// One part of a user's window, accumulated by its difference: a category's score, an
/// item's clicks and buys, an item's buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Part {
    Category(CategoryId),
    Engaged(ItemId),
    Bought(ItemId),
}

pub fn recall_user_signals<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Signals)> {
    let recent = p.recent_events();
    // The score per (user, current category of the item).
    let interest = recent.clone().explode(|e| Some(((e.item, e.user), Stats::of(&e).score() as isize)));
    let interest = arrange(interest, "Arrange: RecentInterestByItem")
        .join_core(p.item_category.clone(), |_item, user, category| Some((*user, Part::Category(*category))));
    let items = recent.flat_map(|e| {
        let engaged = matches!(e.behavior, Behavior::Click | Behavior::Buy).then_some((e.user, Part::Engaged(e.item)));
        let bought = (e.behavior == Behavior::Buy).then_some((e.user, Part::Bought(e.item)));
        engaged.into_iter().chain(bought)
    });
    interest.concat(items).reduce_total("UserSignals", |_u, parts: &[(Part, isize)], out| {
        let mut signals = Signals::default();
        let mut scores = Vec::new();
        for &(part, n) in parts {
            match part {
                Part::Category(c) => scores.push((c, n as i64)),
                Part::Engaged(a) if n > 0 => signals.engaged.push(a),
                Part::Bought(b) if n > 0 => signals.bought.push(b),
                _ => {}
            }
        }
        let mut top = Vec::new();
        top_n_positive(scores.into_iter(), TOP_CATEGORIES, &mut top);
        signals.categories = top.into_iter().map(|(_rank, c, _score)| c).collect();
        signals.engaged.sort_unstable();
        signals.bought.sort_unstable();
        if signals != Signals::default() {
            out.push(signals);
        }
    })
}

/// A row in column order, the lists as written (the sink sorts rows within a time by it:
/// the list columns as text, as a reader of the file compares them).
pub type Row = (UserId, String, String, String);

pub fn as_row((user, s): (UserId, Signals)) -> Row {
    (user, format_ids(&s.categories), format_ids(&s.engaged), format_ids(&s.bought))
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_user_signals",
        columns: &["user_id", "categories", "engaged", "bought"],
        key: 1,
        fields: |(user, categories, engaged, bought)| {
            vec![Field::U(*user), Field::Text(categories.clone()), Field::Text(engaged.clone()), Field::Text(bought.clone())]
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per recently active user, what their list is merged from: top categories, engaged
    /// items, bought items.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_user_signals", shop(), T + 1000), ["7,10,1,1", "8,10 20,1 2,1", "9,,4,"]);
    }
}
