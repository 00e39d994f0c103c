//! The per-user stage: each user's counters and distinct items, and per category the
//! user's behaviour counts — one operator keyed by user, holding what `user_stats`,
//! `user_top_categories` and the users and buyers of `category_stats` would each keep in a
//! keyed state of their own (and receive through an exchange of their own).
//!
//! ```text
//! events ─ (user, Event(behaviour, quantity, amount)) ─┐
//! item_user_reach ─ (user, Items(Δ distinct items)) ────┼─ exchange by user ─ ByUser ─┬─► totals: (user, Stats) rows
//! tagged_users ─ (user, Category(c, Δ counts)) ─────────┘  per user: counters, and    ├─► top_categories: (user, (rank, c, score)) rows
//!                                                          per category five counts   └─► category_reach: c, Δ (uv, buyers)
//! ```
//!
//! Contract, at every time t (exactly what a count of the events by user, a top-n per user
//! of its categories' scores and a threshold per (category, user) would give):
//! - `totals`: one row `(u, Stats)` per user whose counters over all its events with time
//!   ≤ t, with `uv` the number of distinct items u touched, are not all zero (a row is
//!   replaced, −1 old and +1 new, when it changes);
//! - `top_categories`: per user, up to `top` rows `(rank, c, score)`: the categories with
//!   the highest positive score (`Stats::score` of u's tagged counts in c at t), ties
//!   smaller c first, ranked from 1;
//! - `category_reach`: differences per category c whose sum up to t is `Stats::reach` of
//!   the number of users with events (uv) and with buys (buyers) on items in c at t.
//!
//! State: per user its `Stats` and, per category it touched, five counters and the last
//! ranked list — an event costs hash probes.

use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use differential_dataflow::{AsCollection, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;

use crate::counts::{Counts, CountsTable};
use crate::model::{Behavior, CategoryId, Event, ItemId, Time, UserId};
use crate::stats::Stats;
use operators::complete::by_complete_time;
use operators::rank::top_n_positive;
use operators::Route;

/// A user's top category: `(rank, category, score)`.
pub type RankedCategory = (u32, CategoryId, i64);

/// The three collections of the user stage (see the module's contract).
#[derive(Clone)]
pub struct ByUser<'s> {
    pub totals: VecCollection<'s, Time, (UserId, Stats)>,
    pub top_categories: VecCollection<'s, Time, (UserId, RankedCategory)>,
    pub category_reach: VecCollection<'s, Time, CategoryId, Stats>,
}

/// What reaches a user's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum UserChange {
    /// One of the user's events: behaviour, quantity, amount (what `Stats::of` needs).
    Event(Behavior, u32, u64),
    /// A change of the number of distinct items the user touched.
    Items(i64),
    /// A change of the user's behaviour counts on the items of a category.
    Category(CategoryId, [i64; 5]),
}

/// What leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum UserOut {
    Total(UserId, Stats),
    Top(UserId, RankedCategory),
    /// A difference of the category's (uv, buyers).
    Reach(CategoryId, i64, i64),
}

/// One user's state (boxed in the stage's map, like tagging's item states).
#[derive(Default)]
struct UserState {
    total: Stats,
    categories: CountsTable,
    top: Vec<RankedCategory>,
}

/// Builds the user stage; `top`: categories ranked per user.
pub fn by_user<'s>(
    events: VecCollection<'s, Time, Event>,
    item_user_reach: VecCollection<'s, Time, (ItemId, UserId), Stats>,
    tagged_users: VecCollection<'s, Time, (CategoryId, UserId), Stats>,
    top: usize,
) -> ByUser<'s> {
    let events =
        events.inner.map(|(e, t, r)| ((e.user, UserChange::Event(e.behavior, e.quantity, e.amount_cents)), t, r));
    let items = item_user_reach.inner.map(|((_item, user), t, s)| ((user, UserChange::Items(s.uv)), t, 1));
    let categories =
        tagged_users.inner.map(|((c, user), t, s)| ((user, UserChange::Category(c, Counts::of(&s).0)), t, 1));
    let changes = events.concat(items).concat(categories).as_collection();
    let mut users: FxHashMap<UserId, Box<UserState>> = FxHashMap::default();
    let mut ranked: Vec<RankedCategory> = Vec::new();
    let outs = by_complete_time(
        changes,
        "ByUser",
        Exchange::new(|((user, _), _, _): &((UserId, UserChange), Time, isize)| user.hashed()),
        move |_time, batch: &mut Vec<((UserId, UserChange), isize)>, out: &mut Vec<(UserOut, isize)>| {
            batch.sort_unstable_by_key(|((user, _), _)| *user);
            for run in batch.chunk_by(|((a, _), _), ((b, _), _)| a == b) {
                let user = run[0].0 .0;
                let state = users.entry(user).or_default();
                let old_total = state.total;
                let mut rescore = false;
                for &((_, change), r) in run {
                    match change {
                        UserChange::Event(behavior, quantity, amount_cents) => {
                            state.total.plus_equals(&Stats::of_action(behavior, quantity, amount_cents).multiply(&r));
                        }
                        UserChange::Items(d) => state.total.uv += d * r as i64,
                        UserChange::Category(c, counts) => {
                            let delta = Counts(counts.map(|n| n * r as i64));
                            let (before, after) = state.categories.add(c, &delta);
                            let (before, after) = (before.reach(), after.reach());
                            let (uv, buyers) = (after.uv - before.uv, after.buyers - before.buyers);
                            if uv != 0 || buyers != 0 {
                                out.push((UserOut::Reach(c, uv, buyers), 1));
                            }
                            rescore |= delta.stats().score() != 0;
                        }
                    }
                }
                if state.total != old_total {
                    if !old_total.is_zero() {
                        out.push((UserOut::Total(user, old_total), -1));
                    }
                    if !state.total.is_zero() {
                        out.push((UserOut::Total(user, state.total), 1));
                    }
                }
                if rescore {
                    ranked.clear();
                    let scores = state.categories.iter().map(|(c, counts)| (c, counts.stats().score()));
                    top_n_positive(scores, top, &mut ranked);
                    if ranked != state.top {
                        out.extend(
                            state.top.iter().filter(|o| !ranked.contains(o)).map(|o| (UserOut::Top(user, *o), -1)),
                        );
                        out.extend(
                            ranked.iter().filter(|o| !state.top.contains(o)).map(|o| (UserOut::Top(user, *o), 1)),
                        );
                        std::mem::swap(&mut state.top, &mut ranked);
                    }
                }
                if state.total.is_zero() && state.categories.is_empty() && state.top.is_empty() {
                    users.remove(&user);
                }
            }
            batch.clear();
        },
    );
    let mut parts = outs.inner.route("Route: ByUser", 3, |(o, t, r)| {
        let part = match o {
            UserOut::Total(..) => 0,
            UserOut::Top(..) => 1,
            UserOut::Reach(..) => 2,
        };
        (part, (o, t, r))
    });
    let category_reach = parts.pop().expect("three parts").map(|(o, t, _r)| match o {
        UserOut::Reach(c, uv, buyers) => (c, t, Stats { uv, buyers, ..Stats::default() }),
        _ => unreachable!("routed by kind"),
    });
    let top_categories = parts.pop().expect("three parts").map(|(o, t, r)| match o {
        UserOut::Top(user, ranked) => ((user, ranked), t, r),
        _ => unreachable!("routed by kind"),
    });
    let totals = parts.pop().expect("three parts").map(|(o, t, r)| match o {
        UserOut::Total(user, s) => ((user, s), t, r),
        _ => unreachable!("routed by kind"),
    });
    ByUser {
        totals: totals.as_collection(),
        top_categories: top_categories.as_collection(),
        category_reach: category_reach.as_collection(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use differential_dataflow::difference::{Multiply, Semigroup};
    use differential_dataflow::input::Input;
    use differential_dataflow::AsCollection;
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::ProbeHandle;

    use super::{by_user, RankedCategory};
    use crate::model::{Behavior, Event, Scene};
    use crate::stats::Stats;

    type Rows<K> = Rc<RefCell<BTreeMap<K, isize>>>;

    fn live<K: Ord + Clone>(rows: &Rows<K>) -> BTreeMap<K, isize> {
        rows.borrow().iter().filter(|(_, r)| **r != 0).map(|(k, r)| (k.clone(), *r)).collect()
    }

    /// The three collections against a plain computation from the accumulated inputs, at
    /// every time: events, distinct-item changes that come and go, and per-category counts
    /// that grow and are retracted (as an item's move retracts its history).
    #[test]
    fn by_user_matches_plain_computation() {
        for seed in 0..6u64 {
            timely::execute_directly(move |worker| {
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let totals: Rows<(u64, Stats)> = Rc::default();
                let top: Rows<(u64, RankedCategory)> = Rc::default();
                let reach: Rc<RefCell<BTreeMap<u64, Stats>>> = Rc::default();
                let probe = ProbeHandle::new();
                let (mut events_in, mut reach_in, mut tagged_in) = worker.dataflow::<u64, _, _>(|scope| {
                    let (events_in, events) = scope.new_collection::<Event, isize>();
                    let (reach_in, item_user_reach) = scope.new_collection::<(u64, u64), Stats>();
                    let (tagged_in, tagged_users) = scope.new_collection::<(u64, u64), Stats>();
                    let stage = by_user(events, item_user_reach, tagged_users, 2);
                    let (t, p, r) = (totals.clone(), top.clone(), reach.clone());
                    let rows = stage.totals.inner.inspect(move |(k, _, d)| *t.borrow_mut().entry(*k).or_default() += d);
                    rows.as_collection().probe_with(&probe);
                    let ranked = stage
                        .top_categories
                        .inner
                        .inspect(move |(k, _, d)| *p.borrow_mut().entry(*k).or_default() += d);
                    ranked.as_collection().probe_with(&probe);
                    let reached = stage
                        .category_reach
                        .inner
                        .inspect(move |(c, _, s)| r.borrow_mut().entry(*c).or_default().plus_equals(s));
                    reached.as_collection().probe_with(&probe);
                    (events_in, reach_in, tagged_in)
                });
                let behaviors = [Behavior::Impression, Behavior::Click, Behavior::Fav, Behavior::Cart, Behavior::Buy];
                let mut history: Vec<(Event, isize)> = Vec::new();
                let mut items: BTreeMap<(u64, u64), bool> = BTreeMap::new();
                let mut tagged: BTreeMap<(u64, u64), [i64; 5]> = BTreeMap::new();
                for t in 1..40u64 {
                    for _ in 0..rng.random_range(0..20) {
                        let behavior = behaviors[rng.random_range(0..5)];
                        let buy = behavior == Behavior::Buy;
                        let e = Event {
                            ts_ms: t,
                            user: rng.random_range(0..5),
                            item: 0,
                            scene: Scene::new(b"s").expect("scene"),
                            behavior,
                            quantity: if buy { rng.random_range(1..4) } else { 0 },
                            amount_cents: if buy { rng.random_range(1..1000) } else { 0 },
                        };
                        // Some twice, some taken back (a retraction).
                        let r = [1, 1, 1, 1, 1, 1, 1, 1, 2, -1][rng.random_range(0..10)];
                        history.push((e, r));
                        events_in.update(e, r);
                    }
                    for _ in 0..rng.random_range(0..6) {
                        let key = (rng.random_range(0..6u64), rng.random_range(0..5u64));
                        let present = items.entry(key).or_default();
                        *present = !*present;
                        let uv = if *present { 1 } else { -1 };
                        reach_in.update(key, Stats { uv, ..Stats::default() });
                    }
                    for _ in 0..rng.random_range(0..10) {
                        let key = (rng.random_range(0..4u64), rng.random_range(0..5u64));
                        let counts = tagged.entry(key).or_default();
                        let delta: [i64; 5] = if rng.random_bool(0.2) {
                            counts.map(|n| -n)
                        } else {
                            std::array::from_fn(|_| rng.random_range(0..2))
                        };
                        (0..5).for_each(|k| counts[k] += delta[k]);
                        let [impressions, clicks, favs, carts, buys] = delta;
                        tagged_in.update(key, Stats { impressions, clicks, favs, carts, buys, ..Stats::default() });
                    }
                    events_in.advance_to(t);
                    reach_in.advance_to(t);
                    tagged_in.advance_to(t);
                    events_in.flush();
                    reach_in.flush();
                    tagged_in.flush();
                    worker.step_while(|| probe.less_than(&t));

                    let mut want_totals: BTreeMap<u64, Stats> = BTreeMap::new();
                    for (e, r) in &history {
                        want_totals.entry(e.user).or_default().plus_equals(&Stats::of(e).multiply(r));
                    }
                    for (&(_item, user), present) in &items {
                        want_totals.entry(user).or_default().uv += *present as i64;
                    }
                    let want_totals: BTreeMap<(u64, Stats), isize> =
                        want_totals.into_iter().filter(|(_, s)| *s != Stats::default()).map(|k| (k, 1)).collect();
                    assert_eq!(live(&totals), want_totals, "totals: seed {seed}, time {t}");
                    let mut want_top: BTreeMap<(u64, RankedCategory), isize> = BTreeMap::new();
                    let mut want_reach: BTreeMap<u64, Stats> = BTreeMap::new();
                    let mut per_user: BTreeMap<u64, Vec<(i64, u64)>> = BTreeMap::new();
                    for (&(c, user), counts) in &tagged {
                        let [impressions, clicks, favs, carts, buys] = *counts;
                        let s = Stats { impressions, clicks, favs, carts, buys, ..Stats::default() };
                        want_reach.entry(c).or_default().plus_equals(&Stats::reach(s.events() != 0, buys != 0));
                        if s.score() > 0 {
                            per_user.entry(user).or_default().push((s.score(), c));
                        }
                    }
                    for (user, mut scored) in per_user {
                        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                        for (rank, (score, c)) in scored.into_iter().take(2).enumerate() {
                            want_top.insert((user, (rank as u32 + 1, c, score)), 1);
                        }
                    }
                    want_reach.retain(|_, s| *s != Stats::default());
                    let have_reach: BTreeMap<u64, Stats> =
                        reach.borrow().iter().filter(|(_, s)| **s != Stats::default()).map(|(c, s)| (*c, *s)).collect();
                    assert_eq!(live(&top), want_top, "top categories: seed {seed}, time {t}");
                    assert_eq!(have_reach, want_reach, "category reach: seed {seed}, time {t}");
                }
            });
        }
    }
}
