//! Tagging: every event attributed to its item's *current* category, and each item's
//! distinct users — one stage keyed by item, holding what a join of every event with the
//! catalog would have to arrange.
//!
//! ```text
//! events ─ (item, Event(user, Stats)) ───────┐
//!                                            ├─ exchange by item ─ TagByItem ─┬─► items: ((category, item), Stats)
//! item_category ─ (item, Category(c)) ───────┘   per item: categories,        ├─► users: ((category, user), behaviour counts)
//!                                                totals, per-user counts      ├─► reach: ((item, user), uv/buyers)
//!                                                                             └─► totals: (item, Stats) rows
//! ```
//!
//! Contract, at every time t (as collections, exactly what a join of the per-(item, user)
//! activity with the current (item, category) would give, summed):
//! - `items`: per (category c, item i), the `Stats` of all of i's events with time ≤ t if i
//!   is in c at t;
//! - `users`: per (category c, user u), the behaviour counts (impressions, clicks, favs,
//!   carts, buys; no units, GMV or reach) of u's events with time ≤ t on the items in c
//!   at t;
//! - `reach`: per (item i, user u) with an event, `Stats::reach(events ≠ 0, buys ≠ 0)` of
//!   u's events on i with time ≤ t (the `uv`, `buyers` slots);
//! - `totals`: one row `(i, Stats)` per item whose counters over all its events with time
//!   ≤ t (tagged or not), with uv and buyers the sums of `reach` over its users, are not
//!   all zero (a row is replaced, −1 old and +1 new, when it changes).
//!
//! When an item moves category (or is deleted), its totals and its users' counts are
//! retracted from the old category and added to the new one at that time. State: per item
//! its totals and categories, and per (item, user) five counters — no per-event history
//! and no arrangement, so an event costs hash probes, not a sort and merges.

use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use differential_dataflow::{AsCollection, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;

use crate::counts::{Counts, CountsTable};
use crate::model::{Behavior, CategoryId, Event, ItemId, Time, UserId};
use crate::stats::Stats;
use operators::complete::by_complete_time;
use operators::Route;

/// The three collections of the tagging stage (see the module's contract).
pub struct Tagged<'s> {
    pub items: VecCollection<'s, Time, (CategoryId, ItemId), Stats>,
    pub users: VecCollection<'s, Time, (CategoryId, UserId), Stats>,
    pub reach: VecCollection<'s, Time, (ItemId, UserId), Stats>,
    pub totals: VecCollection<'s, Time, (ItemId, Stats)>,
}

/// What reaches an item's stage: one of its events (user, behaviour, quantity, amount:
/// what `Stats::of` needs: a change is 24 bytes, where the `Stats` alone is 80), or a
/// change of its category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum ItemChange {
    Category(CategoryId),
    Event(UserId, Behavior, u32, u64),
}

/// What leaves it, with its `Stats`: a difference of the first three, a row of `Total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Tag {
    Item(CategoryId, ItemId),
    User(CategoryId, UserId),
    Reach(ItemId, UserId),
    Total(ItemId),
}

/// One item's state (boxed in the stage's map: millions of items at the full Taobao
/// shape, and a map's free slots then cost a pointer each, not a state).
#[derive(Default)]
struct ItemState {
    categories: Categories,
    total: Stats,
    /// Σ reach over the users: uv and buyers.
    reach: (i64, i64),
    users: CountsTable,
}

/// An item's categories with their multiplicity: one at a complete time, so held inline
/// (a `Vec` would allocate 64 bytes for it, per item).
#[derive(Default)]
enum Categories {
    #[default]
    None,
    One((CategoryId, isize)),
    Many(Vec<(CategoryId, isize)>),
}

impl Categories {
    fn as_slice(&self) -> &[(CategoryId, isize)] {
        match self {
            Categories::None => &[],
            Categories::One(c) => std::slice::from_ref(c),
            Categories::Many(cs) => cs,
        }
    }

    /// Category `c` gains multiplicity `r`.
    fn add(&mut self, c: CategoryId, r: isize) {
        let mut all = self.as_slice().to_vec();
        match all.iter_mut().find(|(k, _)| *k == c) {
            Some(entry) => entry.1 += r,
            None => all.push((c, r)),
        }
        all.retain(|(_, m)| *m != 0);
        *self = match all[..] {
            [] => Categories::None,
            [one] => Categories::One(one),
            _ => Categories::Many(all),
        };
    }
}

impl ItemState {
    /// The item's `totals` row: counters, uv and buyers.
    fn row(&self) -> Stats {
        let mut row = self.total;
        row.uv += self.reach.0;
        row.buyers += self.reach.1;
        row
    }
}

/// Builds the tagging stage from the events and the current `(item, category)` changes.
pub fn tag_by_item<'s>(
    events: VecCollection<'s, Time, Event>,
    item_category: VecCollection<'s, Time, (ItemId, CategoryId)>,
) -> Tagged<'s> {
    let changes = events
        .map(|e| (e.item, ItemChange::Event(e.user, e.behavior, e.quantity, e.amount_cents)))
        .concat(item_category.map(|(item, category)| (item, ItemChange::Category(category))));
    let mut items: FxHashMap<ItemId, Box<ItemState>> = FxHashMap::default();
    let mut touched: Vec<(UserId, Stats)> = Vec::new();
    let tags = by_complete_time(
        changes,
        "TagByItem",
        Exchange::new(|((item, _), _, _): &((ItemId, ItemChange), Time, isize)| item.hashed()),
        move |_time, batch, out| {
            // Per item: its category changes meet the state before this time; its events,
            // summed per user (the sort groups them), are applied after, with the
            // categories as they are after this time.
            batch.sort_unstable_by_key(|((item, change), _)| (*item, *change));
            for run in batch.chunk_by(|((a, _), _), ((b, _), _)| a == b) {
                let item = run[0].0 .0;
                let state = items.entry(item).or_default();
                let old_row = state.row();
                touched.clear();
                for &((_, change), r) in run {
                    match change {
                        ItemChange::Category(c) => {
                            move_category(state, item, c, r, out);
                        }
                        ItemChange::Event(user, behavior, quantity, amount) => {
                            let s = Stats::of_action(behavior, quantity, amount).multiply(&r);
                            match touched.last_mut() {
                                Some((u, sum)) if *u == user => sum.plus_equals(&s),
                                _ => touched.push((user, s)),
                            }
                        }
                    }
                }
                let mut item_delta = Stats::default();
                for &(user, delta) in &touched {
                    item_delta.plus_equals(&delta);
                    let counts = Counts::of(&delta);
                    let (before, after) = state.users.add(user, &counts);
                    let mut reach = after.reach();
                    reach.plus_equals(&before.reach().multiply(&-1));
                    state.reach.0 += reach.uv;
                    state.reach.1 += reach.buyers;
                    push(out, Tag::Reach(item, user), reach);
                    for &(c, m) in state.categories.as_slice() {
                        push(out, Tag::User(c, user), counts.stats().multiply(&m));
                    }
                }
                for &(c, m) in state.categories.as_slice() {
                    push(out, Tag::Item(c, item), item_delta.multiply(&m));
                }
                state.total.plus_equals(&item_delta);
                let new_row = state.row();
                if new_row != old_row {
                    if !old_row.is_zero() {
                        out.push(((Tag::Total(item), old_row), -1));
                    }
                    if !new_row.is_zero() {
                        out.push(((Tag::Total(item), new_row), 1));
                    }
                }
                if state.categories.as_slice().is_empty() && state.users.is_empty() && state.total.is_zero() {
                    items.remove(&item);
                }
            }
            batch.clear();
        },
    );
    let mut parts = tags.inner.route("Route: Tagged", 4, |((tag, s), t, r)| {
        let part = match tag {
            Tag::Item(..) => 0,
            Tag::User(..) => 1,
            Tag::Reach(..) => 2,
            Tag::Total(..) => 3,
        };
        (part, ((tag, s), t, r))
    });
    let totals = parts.pop().expect("four parts").map(|((tag, s), t, r)| match tag {
        Tag::Total(item) => ((item, s), t, r),
        _ => unreachable!("routed by tag"),
    });
    // The first three carry their difference in the record: move it into the diff.
    let mut difference = || parts.pop().expect("four parts").map(|((tag, s), t, r)| (tag, t, s.multiply(&r)));
    let reach = difference().map(|(tag, t, s)| match tag {
        Tag::Reach(item, user) => ((item, user), t, s),
        _ => unreachable!("routed by tag"),
    });
    let users = difference().map(|(tag, t, s)| match tag {
        Tag::User(c, user) => ((c, user), t, s),
        _ => unreachable!("routed by tag"),
    });
    let items = difference().map(|(tag, t, s)| match tag {
        Tag::Item(c, item) => ((c, item), t, s),
        _ => unreachable!("routed by tag"),
    });
    Tagged {
        items: items.as_collection(),
        users: users.as_collection(),
        reach: reach.as_collection(),
        totals: totals.as_collection(),
    }
}

/// Category `c` gains multiplicity `r` for the item: its totals and its users' counts so
/// far follow.
fn move_category(state: &mut ItemState, item: ItemId, c: CategoryId, r: isize, out: &mut Vec<((Tag, Stats), isize)>) {
    push(out, Tag::Item(c, item), state.total.multiply(&r));
    for (user, counts) in state.users.iter() {
        push(out, Tag::User(c, user), counts.stats().multiply(&r));
    }
    state.categories.add(c, r);
}

/// Emits a nonzero difference `s` of `tag`.
fn push(out: &mut Vec<((Tag, Stats), isize)>, tag: Tag, s: Stats) {
    if !s.is_zero() {
        out.push(((tag, s), 1));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use differential_dataflow::difference::Semigroup;
    use differential_dataflow::input::Input;
    use differential_dataflow::AsCollection;
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::ProbeHandle;

    use super::tag_by_item;
    use crate::model::{Behavior, Event, Scene};
    use crate::stats::Stats;

    type Seen<K> = Rc<RefCell<BTreeMap<K, Stats>>>;

    fn collect<K: Ord>(seen: &Seen<K>, k: K, s: &Stats) {
        seen.borrow_mut().entry(k).or_default().plus_equals(s);
    }

    fn nonzero<K: Ord + Clone>(seen: &Seen<K>) -> BTreeMap<K, Stats> {
        seen.borrow().iter().filter(|(_, s)| **s != Stats::default()).map(|(k, s)| (k.clone(), *s)).collect()
    }

    /// The four collections against a plain attribution of every event so far to its
    /// item's current category, at every time, with items moving category, leaving the
    /// catalog and coming back, and events before their item has a category.
    #[test]
    fn tag_by_item_matches_plain_attribution() {
        for seed in 0..6u64 {
            timely::execute_directly(move |worker| {
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let items: Seen<(u64, u64)> = Rc::default();
                let users: Seen<(u64, u64)> = Rc::default();
                let reach: Seen<(u64, u64)> = Rc::default();
                let totals: Rc<RefCell<BTreeMap<(u64, Stats), isize>>> = Rc::default();
                let probe = ProbeHandle::new();
                let (mut events_in, mut category_in) = worker.dataflow::<u64, _, _>(|scope| {
                    let (events_in, events) = scope.new_collection::<Event, isize>();
                    let (category_in, item_category) = scope.new_collection::<(u64, u64), isize>();
                    let tagged = tag_by_item(events, item_category);
                    let (i, u, r) = (items.clone(), users.clone(), reach.clone());
                    tagged.items.inner.inspect(move |(k, _, s)| collect(&i, *k, s)).as_collection().probe_with(&probe);
                    tagged.users.inner.inspect(move |(k, _, s)| collect(&u, *k, s)).as_collection().probe_with(&probe);
                    tagged.reach.inner.inspect(move |(k, _, s)| collect(&r, *k, s)).as_collection().probe_with(&probe);
                    let rows = totals.clone();
                    tagged
                        .totals
                        .inner
                        .inspect(move |(row, _, r)| *rows.borrow_mut().entry(*row).or_default() += r)
                        .as_collection()
                        .probe_with(&probe);
                    (events_in, category_in)
                });
                let behaviors = [Behavior::Impression, Behavior::Click, Behavior::Fav, Behavior::Cart, Behavior::Buy];
                let mut history: Vec<Event> = Vec::new();
                let mut category: BTreeMap<u64, u64> = BTreeMap::new();
                for t in 1..40u64 {
                    for _ in 0..rng.random_range(0..30) {
                        let behavior = behaviors[rng.random_range(0..5)];
                        let buy = behavior == Behavior::Buy;
                        let e = Event {
                            ts_ms: t,
                            user: rng.random_range(0..6),
                            item: rng.random_range(0..8),
                            scene: Scene::new(b"s").expect("scene"),
                            behavior,
                            quantity: if buy { rng.random_range(1..4) } else { 0 },
                            amount_cents: if buy { rng.random_range(1..1000) } else { 0 },
                        };
                        history.push(e);
                        events_in.insert(e);
                    }
                    for _ in 0..rng.random_range(0..3) {
                        let item = rng.random_range(0..8u64);
                        if let Some(old) = category.remove(&item) {
                            category_in.remove((item, old));
                        }
                        if rng.random_bool(0.7) {
                            let new = rng.random_range(0..3u64);
                            category.insert(item, new);
                            category_in.insert((item, new));
                        }
                    }
                    events_in.advance_to(t);
                    category_in.advance_to(t);
                    events_in.flush();
                    category_in.flush();
                    worker.step_while(|| probe.less_than(&t));
                    let mut want_items: BTreeMap<(u64, u64), Stats> = BTreeMap::new();
                    let mut want_users: BTreeMap<(u64, u64), Stats> = BTreeMap::new();
                    let mut per_pair: BTreeMap<(u64, u64), Stats> = BTreeMap::new();
                    for e in &history {
                        let s = Stats::of(e);
                        per_pair.entry((e.item, e.user)).or_default().plus_equals(&s);
                        if let Some(&c) = category.get(&e.item) {
                            want_items.entry((c, e.item)).or_default().plus_equals(&s);
                            want_users.entry((c, e.user)).or_default().plus_equals(&Stats::behaviors_of(e));
                        }
                    }
                    let want_reach: BTreeMap<(u64, u64), Stats> =
                        per_pair.into_iter().map(|(k, s)| (k, Stats::reach(s.events() != 0, s.buys != 0))).collect();
                    assert_eq!(nonzero(&items), want_items, "items: seed {seed}, time {t}");
                    assert_eq!(nonzero(&users), want_users, "users: seed {seed}, time {t}");
                    let mut want_totals: BTreeMap<u64, Stats> = BTreeMap::new();
                    for (&(item, _user), r) in &want_reach {
                        want_totals.entry(item).or_default().plus_equals(r);
                    }
                    for e in &history {
                        want_totals.entry(e.item).or_default().plus_equals(&Stats::of(e));
                    }
                    let want_totals: BTreeMap<(u64, Stats), isize> =
                        want_totals.into_iter().filter(|(_, s)| *s != Stats::default()).map(|k| (k, 1)).collect();
                    let have_totals: BTreeMap<(u64, Stats), isize> =
                        totals.borrow().iter().filter(|(_, r)| **r != 0).map(|(k, r)| (*k, *r)).collect();
                    assert_eq!(nonzero(&reach), want_reach, "reach: seed {seed}, time {t}");
                    assert_eq!(have_totals, want_totals, "totals: seed {seed}, time {t}");
                }
            });
        }
    }
}
