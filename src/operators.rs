//! Custom operators for totally ordered time, used by the platform layer and the
//! dataflows. Each applies updates only once their time is complete (the input
//! frontier has passed it), so arrival order and the worker that read them never
//! change the result.
//!
//! - [`map_diff`]: rewrite a collection's differences (projection of `Stats`).
//! - [`sum_locally`]: pre-aggregate equal records on a worker before the exchange.
//! - [`latest_by_priority`]: a change log to the current value per key (the catalog).
//! - [`reduce_total`]: a per-key reduction kept in hash maps: for small groups
//!   (top-k per user or category) it avoids the trace and history replay of the
//!   general `reduce`.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::{IsZero, Semigroup};
use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Capability;

use crate::model::{CatalogRow, ItemId, Time};
use crate::platform::CatalogChange;
use crate::stats::Stats;

/// Rewrites the differences of a collection (dropping those that become zero):
/// how a `Stats`-weighted collection is projected onto the counters one output needs.
pub fn map_diff<'s, D, R, R2>(
    c: VecCollection<'s, Time, D, R>,
    mut f: impl FnMut(R) -> R2 + 'static,
) -> VecCollection<'s, Time, D, R2>
where
    D: Clone + 'static,
    R: Clone + 'static,
    R2: IsZero + Clone + 'static,
{
    c.inner
        .flat_map(move |(d, t, r)| {
            let r2 = f(r);
            (!r2.is_zero()).then_some((d, t, r2))
        })
        .as_collection()
}

/// Sums the differences of equal records on this worker before they are exchanged.
///
/// For keys that collapse (scene, hour × scene, category) this turns a batch of
/// events into a handful of updates with one hash probe each, sparing the exchange
/// and the arrangement's sort. Output equals input as a collection; only how it is
/// batched changes.
pub fn sum_locally<'s, D>(c: VecCollection<'s, Time, D, Stats>) -> VecCollection<'s, Time, D, Stats>
where
    D: ExchangeData + Hash,
{
    let mut sums: FxHashMap<(D, Time), Stats> = FxHashMap::default();
    c.inner
        .unary(Pipeline, "SumLocally", move |_, _| {
            move |input, output| {
                let mut least = None;
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if least.as_ref().is_none_or(
                            |l: &timely::dataflow::operators::Capability<Time>| {
                                cap.time() < l.time()
                            },
                        ) {
                            least = Some(cap);
                        }
                    }
                    for (d, t, r) in data.drain(..) {
                        sums.entry((d, t)).or_default().plus_equals(&r);
                    }
                });
                if let Some(cap) = least {
                    let mut session = output.session(&cap);
                    for ((d, t), r) in sums.drain() {
                        if !r.is_zero() {
                            session.give((d, t, r));
                        }
                    }
                }
            }
        })
        .as_collection()
}

/// Turns a log of catalog changes into the current catalog.
///
/// Contract: at time t, item k has row r iff, among the changes for k with time ≤ t,
/// the one with the highest priority is `(k, p, Some(r))`. Output is a collection of
/// `(item, row)` with +1/-1 differences at the times the item's row changes. Changes
/// are applied only once their time is complete, so their arrival order (and which
/// worker read them) does not matter. State: one entry per item ever seen.
pub fn latest_by_priority<'s>(
    log: VecCollection<'s, Time, CatalogChange>,
) -> VecCollection<'s, Time, (ItemId, CatalogRow)> {
    let exchange =
        Exchange::new(|((item, _, _), _, _): &(CatalogChange, Time, isize)| item.hashed().into());
    log.inner
        .unary_frontier(exchange, "LatestByPriority", |_, _| {
            let mut current: FxHashMap<ItemId, (u64, Option<CatalogRow>)> = FxHashMap::default();
            let mut pending: Vec<(Time, ItemId, u64, Option<CatalogRow>)> = Vec::new();
            let mut held: Option<Capability<Time>> = None;
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    for ((item, priority, row), time, diff) in data.drain(..) {
                        // The log only ever grows; a retraction would have no meaning here.
                        debug_assert!(diff > 0);
                        pending.push((time, item, priority, row));
                    }
                });
                let Some(cap) = held.as_mut() else { return };
                let complete = |t: &Time| !frontier.less_equal(t);
                if !pending.iter().any(|(t, ..)| complete(t)) {
                    return;
                }
                pending.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
                let ready = pending.iter().take_while(|(t, ..)| complete(t)).count();
                for (time, item, priority, row) in pending.drain(..ready) {
                    let entry = current.entry(item).or_insert((priority, None));
                    if priority < entry.0 {
                        continue;
                    }
                    if entry.1 != row {
                        let at = cap.delayed(&time);
                        let mut session = output.session(&at);
                        if let Some(old) = entry.1 {
                            session.give(((item, old), time, -1isize));
                        }
                        if let Some(new) = row {
                            session.give(((item, new), time, 1isize));
                        }
                    }
                    *entry = (priority, row);
                }
                match pending.iter().map(|(t, ..)| *t).min() {
                    Some(t) => cap.downgrade(&t),
                    None => held = None,
                }
            }
        })
        .as_collection()
}

/// A per-key reduction for totally ordered time.
///
/// Contract: at every time t, for every key k whose accumulated input
/// `{(v, r) : r ≠ 0}` (over updates with time ≤ t) is non-empty, the output holds the
/// rows `(k, o)` for each `o` that `logic(k, accumulated)` pushes, with +1/-1
/// differences at the times that set changes. `logic` sees the accumulation in no
/// particular order, and must not depend on it. State: the accumulation and last
/// output of each live key; keys whose accumulation empties are dropped.
pub fn reduce_total<'s, K, V, R, O, L>(input: VecCollection<'s, Time, (K, V), R>, name: &str, mut logic: L) -> VecCollection<'s, Time, (K, O)>
where
    K: ExchangeData + Hash,
    V: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    O: ExchangeData,
    L: FnMut(&K, &[(V, R)], &mut Vec<O>) + 'static,
{
    let exchange = Exchange::new(|((k, _), _, _): &((K, V), Time, R)| k.hashed().into());
    input
        .inner
        .unary_frontier(exchange, name, move |_, _| {
            let mut state: FxHashMap<K, (FxHashMap<V, R>, Vec<O>)> = FxHashMap::default();
            let mut pending: Vec<((K, V), Time, R)> = Vec::new();
            let mut held: Option<Capability<Time>> = None;
            let mut touched: Vec<K> = Vec::new();
            let mut values: Vec<(V, R)> = Vec::new();
            let mut fresh: Vec<O> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    pending.append(data);
                });
                let Some(cap) = held.as_mut() else { return };
                if !pending.iter().any(|(_, t, _)| !frontier.less_equal(t)) {
                    return;
                }
                pending.sort_unstable_by_key(|(_, t, _)| *t);
                let ready = pending.iter().take_while(|(_, t, _)| !frontier.less_equal(t)).count();
                let mut updates = pending.drain(..ready).peekable();
                while let Some(&(_, time, _)) = updates.peek() {
                    // Apply every update of this time, then recompute the keys it touched.
                    while let Some(((k, v), _, r)) = updates.next_if(|(_, t, _)| *t == time) {
                        let (acc, _) = state.entry(k.clone()).or_default();
                        match acc.entry(v) {
                            Entry::Occupied(mut e) => e.get_mut().plus_equals(&r),
                            Entry::Vacant(e) => {
                                e.insert(r);
                            }
                        }
                        touched.push(k);
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    let at = cap.delayed(&time);
                    let mut session = output.session(&at);
                    for k in touched.drain(..) {
                        let (acc, old) = state.get_mut(&k).expect("touched key");
                        acc.retain(|_, r| !r.is_zero());
                        values.clear();
                        values.extend(acc.iter().map(|(v, r)| (v.clone(), r.clone())));
                        fresh.clear();
                        if !values.is_empty() {
                            logic(&k, &values, &mut fresh);
                        }
                        fresh.sort_unstable();
                        if *old != fresh {
                            for o in old.iter().filter(|o| fresh.binary_search(o).is_err()) {
                                session.give(((k.clone(), o.clone()), time, -1isize));
                            }
                            for o in fresh.iter().filter(|o| old.binary_search(o).is_err()) {
                                session.give(((k.clone(), o.clone()), time, 1isize));
                            }
                            std::mem::swap(old, &mut fresh);
                        }
                        if acc.is_empty() {
                            state.remove(&k);
                        }
                    }
                }
                drop(updates);
                match pending.iter().map(|(_, t, _)| *t).min() {
                    Some(t) => cap.downgrade(&t),
                    None => held = None,
                }
            }
        })
        .as_collection()
}
