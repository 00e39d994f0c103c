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
//!   general `reduce`; [`reduce_total_with`] adds a broadcast configuration (rules,
//!   prior, base cut-off).
//! - [`pairs_within`]: per-key co-occurrence of values within a distance (i2i pairs).
//! - [`top_counts`]: per key, the top values by count among an allowed set, kept ranked
//!   as counts move (i2i lists).
//! - [`count_total_hashed`], [`threshold_total_hashed`]: `count_total` /
//!   `threshold_total` with the accumulation per key in a hash map instead of an
//!   arrangement: one probe per update instead of sorting and merging batches.
//!
//! All but the first two are built on [`by_complete_time`], which buffers updates
//! until their time is complete and hands them over one time at a time, in order.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::hash::Hash;

use differential_dataflow::difference::{Abelian, IsZero, Semigroup};
use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Capability, Concat, Exchange as _};

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
                        if least
                            .as_ref()
                            .is_none_or(|l: &timely::dataflow::operators::Capability<Time>| cap.time() < l.time())
                        {
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

/// Buffers updates (delivered by `pact`) until their time is complete, and calls
/// `apply(time, updates, output)` for each complete time in increasing order, with all of
/// that time's updates (in no particular order). What `apply` pushes is emitted at that
/// time. Pending updates are kept by time, so updates far in the future (a window's
/// retractions) cost nothing until their time comes.
pub(crate) fn by_complete_time<'s, D, R, D2, R2, P, F>(
    input: VecCollection<'s, Time, D, R>,
    name: &str,
    pact: P,
    mut apply: F,
) -> VecCollection<'s, Time, D2, R2>
where
    D: Clone + 'static,
    R: Clone + 'static,
    D2: Clone + 'static,
    R2: Clone + 'static,
    P: ParallelizationContract<Time, Vec<(D, Time, R)>>,
    F: FnMut(Time, &mut Vec<(D, R)>, &mut Vec<(D2, R2)>) + 'static,
{
    input
        .inner
        .unary_frontier(pact, name, move |_, _| {
            let mut pending: BTreeMap<Time, Vec<(D, R)>> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            let mut out: Vec<(D2, R2)> = Vec::new();
            let mut buffer: Vec<(D, R)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    // Messages mostly hold one time: one map probe per run of equal times.
                    let mut run: Option<Time> = None;
                    for (d, t, r) in data.drain(..) {
                        if run != Some(t) {
                            if let Some(rt) = run {
                                pending.entry(rt).or_default().append(&mut buffer);
                            }
                            run = Some(t);
                        }
                        buffer.push((d, r));
                    }
                    if let Some(rt) = run {
                        pending.entry(rt).or_default().append(&mut buffer);
                    }
                });
                let Some(cap) = held.as_mut() else { return };
                // All complete times' output leaves in one session at the held capability
                // (no later than any of them; each record carries its own time), not in a
                // message per time: a replay with thousands of times per step would
                // otherwise queue a mostly empty buffer per time between operators.
                let mut session = output.session(&*cap);
                while let Some(entry) = pending.first_entry() {
                    let time = *entry.key();
                    if frontier.less_equal(&time) {
                        break;
                    }
                    let mut batch = entry.remove();
                    apply(time, &mut batch, &mut out);
                    session.give_iterator(out.drain(..).map(|(d, r)| (d, time, r)));
                }
                drop(session);
                // Hold no earlier time than the pending updates need, or the output
                // frontier would lag behind the input's.
                match pending.keys().next() {
                    Some(&t) => cap.downgrade(&t),
                    None => held = None,
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
    let mut current: FxHashMap<ItemId, (u64, Option<CatalogRow>)> = FxHashMap::default();
    by_complete_time(
        log,
        "LatestByPriority",
        Exchange::new(|((item, _, _), _, _): &(CatalogChange, Time, isize)| item.hashed()),
        move |_time, changes, out| {
            // Within a time, apply in priority order: the highest wins.
            changes.sort_unstable_by_key(|((item, priority, _), _)| (*item, *priority));
            for ((item, priority, row), _) in changes.drain(..) {
                let entry = current.entry(item).or_insert((priority, None));
                if priority < entry.0 {
                    continue;
                }
                if entry.1 != row {
                    out.extend(entry.1.map(|old| ((item, old), -1isize)));
                    out.extend(row.map(|new| ((item, new), 1isize)));
                }
                *entry = (priority, row);
            }
            // An item changed twice in one time emits both steps; consolidate them.
            differential_dataflow::consolidation::consolidate(out);
        },
    )
}

/// A per-key reduction for totally ordered time.
///
/// Contract: at every time t, for every key k whose accumulated input
/// `{(v, r) : r ≠ 0}` (over updates with time ≤ t) is non-empty, the output holds the
/// rows `(k, o)` for each `o` that `logic(k, accumulated)` pushes, with +1/-1
/// differences at the times that set changes. `logic` sees the accumulation in no
/// particular order, and must not depend on it. State: the accumulation and last
/// output of each live key; keys whose accumulation empties are dropped.
pub fn reduce_total<'s, K, V, R, O, L>(
    input: VecCollection<'s, Time, (K, V), R>,
    name: &str,
    mut logic: L,
) -> VecCollection<'s, Time, (K, O)>
where
    K: ExchangeData + Hash,
    V: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    O: ExchangeData,
    L: FnMut(&K, &[(V, R)], &mut Vec<O>) + 'static,
{
    // No configuration: an empty collection.
    let none = input.inner.clone().flat_map(|_| None::<((), Time, isize)>).as_collection();
    reduce_total_with(input, none, name, move |k, values, _config: &[()], out| logic(k, values, out))
}

/// [`reduce_total`] with a configuration: a small collection every worker sees whole.
///
/// Contract: as [`reduce_total`], with `logic(k, accumulated, config)` where `config` is
/// the set of records with a positive accumulated count at t (sorted). When the
/// configuration changes, every live key is recomputed; otherwise only the keys whose
/// input changed. Used for operator rules, the CTR prior and the base cut-off.
pub fn reduce_total_with<'s, K, V, R, C, O, L>(
    input: VecCollection<'s, Time, (K, V), R>,
    config: VecCollection<'s, Time, C>,
    name: &str,
    mut logic: L,
) -> VecCollection<'s, Time, (K, O)>
where
    K: ExchangeData + Hash,
    V: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    C: ExchangeData + Hash,
    O: ExchangeData,
    L: FnMut(&K, &[(V, R)], &[C], &mut Vec<O>) + 'static,
{
    let data = input
        .inner
        .exchange(|((k, _), _, _): &((K, V), Time, R)| k.hashed())
        .map(|((k, v), t, r)| (Keyed::<K, V, R, C, (), ()>::Data(k, v, r), t, ()));
    let config = config.inner.broadcast().map(|(c, t, r)| (Keyed::Config(c, r), t, ()));
    let updates = data.concat(config).as_collection();
    // Per key: its accumulated input and its output.
    let mut state: FxHashMap<K, (FxHashMap<V, R>, Vec<O>)> = FxHashMap::default();
    let mut config = Config::default();
    let mut touched: Vec<K> = Vec::new();
    let mut values: Vec<(V, R)> = Vec::new();
    let mut fresh: Vec<O> = Vec::new();
    by_complete_time(updates, name, Pipeline, move |_time, updates, out| {
        for (update, ()) in updates.drain(..) {
            match update {
                Keyed::Data(k, v, r) => {
                    let (acc, _) = state.entry(k.clone()).or_default();
                    match acc.entry(v) {
                        Entry::Occupied(mut e) => {
                            e.get_mut().plus_equals(&r);
                            if e.get().is_zero() {
                                e.remove();
                            }
                        }
                        Entry::Vacant(e) => {
                            if !r.is_zero() {
                                e.insert(r);
                            }
                        }
                    }
                    touched.push(k);
                }
                Keyed::Config(c, r) => config.update(c, r),
                Keyed::Lookup(..) => unreachable!("no tables"),
            }
        }
        if config.settle() {
            touched.clear();
            touched.extend(state.keys().cloned());
        }
        touched.sort_unstable();
        touched.dedup();
        for k in touched.drain(..) {
            let Some((acc, old)) = state.get_mut(&k) else { continue };
            values.clear();
            values.extend(acc.iter().map(|(v, r)| (v.clone(), r.clone())));
            fresh.clear();
            if !values.is_empty() {
                logic(&k, &values, &config.current, &mut fresh);
            }
            replace_output(&k, old, &mut fresh, out);
            if acc.is_empty() {
                state.remove(&k);
            }
        }
    })
}

/// Per key, its values ranked by accumulated count, kept ranked as counts change: the top
/// list among the values of an allowed set (the online items), for keys in that set.
///
/// Contract: `input` holds pairs `(k, v)` whose accumulated difference at t is their count
/// (≥ 0); `allowed` is a set every worker holds whole (records with a positive count at t);
/// `config` as in [`reduce_total_with`]. At every time t, for every key k in `allowed` with
/// a positive count for some allowed v: `emit(k, top, config)` with `top` the first
/// `limit(config)` allowed values by count desc, value asc, as `(v, count)`; the output
/// holds the rows it pushes, with +1/-1 differences at the times that set changes.
///
/// Cost: an update is one hash probe and, near the top, one move in a short ranked list of
/// the key's best values; a touched key re-reads only those (up to the `limit`-th allowed
/// one), and ranks all its values again only when that list runs short of allowed ones.
/// A key is recomputed when its counts change, when the configuration changes, or when the allowed flag of the key itself or of a value its last list looked
/// at changes. State: per key, its counts, its short ranked list, last output and the
/// values it looked at; the allowed set on every worker.
pub fn top_counts<'s, K, C, O, N, E>(
    input: VecCollection<'s, Time, (K, K)>,
    allowed: VecCollection<'s, Time, K>,
    config: VecCollection<'s, Time, C>,
    name: &str,
    limit: N,
    mut emit: E,
) -> VecCollection<'s, Time, (K, O)>
where
    K: ExchangeData + Hash + Copy,
    C: ExchangeData + Hash,
    O: ExchangeData,
    N: Fn(&[C]) -> usize + 'static,
    E: FnMut(&K, &[(K, i64)], &[C], &mut Vec<O>) + 'static,
{
    let data = input
        .inner
        .exchange(|((k, _), _, _): &((K, K), Time, isize)| k.hashed())
        .map(|((k, v), t, r)| (Keyed::Data(k, v, r), t, ()));
    let config = config.inner.broadcast().map(|(c, t, r)| (Keyed::Config(c, r), t, ()));
    let allowed = allowed.inner.broadcast().map(|(k, t, r)| (Keyed::Lookup(k, (), r), t, ()));
    let updates = data.concat(config).concat(allowed).as_collection();
    let mut state: FxHashMap<K, Ranked<K, O>> = FxHashMap::default();
    let mut config = Config::default();
    let mut allowed: FxHashMap<K, isize> = FxHashMap::default();
    let mut readers: Readers<K, K> = Readers::default();
    let mut flipped: FxHashMap<K, bool> = FxHashMap::default();
    let mut touched: Vec<K> = Vec::new();
    let mut top: Vec<(K, i64)> = Vec::new();
    let mut looked: Vec<K> = Vec::new();
    let mut fresh: Vec<O> = Vec::new();
    by_complete_time(updates, name, Pipeline, move |_time, updates, out| {
        for (update, ()) in updates.drain(..) {
            match update {
                Keyed::Data(k, v, r) => {
                    state.entry(k).or_default().add(v, r as i64);
                    touched.push(k);
                }
                Keyed::Config(c, r) => config.update(c, r),
                Keyed::Lookup(k, (), r) => {
                    let count = allowed.entry(k).or_default();
                    flipped.entry(k).or_insert(*count > 0);
                    *count += r;
                }
            }
        }
        for (k, was) in flipped.drain() {
            let now = allowed.get(&k).is_some_and(|r| *r > 0);
            if allowed.get(&k) == Some(&0) {
                allowed.remove(&k);
            }
            if now != was {
                touched.push(k);
                touched.extend(readers.of(&k).copied());
            }
        }
        if config.settle() {
            touched.clear();
            touched.extend(state.keys().copied());
        }
        let n = limit(&config.current);
        touched.sort_unstable();
        touched.dedup();
        for k in touched.drain(..) {
            let Some(ranked) = state.get_mut(&k) else { continue };
            top.clear();
            looked.clear();
            if allowed.contains_key(&k) {
                ranked.top(n, |v| allowed.contains_key(v), &mut top, &mut looked);
            }
            fresh.clear();
            if !top.is_empty() {
                emit(&k, &top, &config.current, &mut fresh);
            }
            looked.sort_unstable();
            readers.update(&k, &mut ranked.looked, &mut looked);
            replace_output(&k, &mut ranked.out, &mut fresh, out);
            // No counts: nothing ranked, so nothing looked at either.
            if ranked.counts.is_empty() {
                state.remove(&k);
            }
        }
    })
}

/// The state of a key of [`top_counts`]: its counts, and its best values kept ranked.
///
/// `best` holds values by `(count desc, value asc)`, every one ranked before `floor`, and
/// every value not in `best` ranks at or after `floor` (`None`: `best` holds them all). An
/// update keeps that true with one probe and one move in the short `best`: a value rising
/// above the floor joins, a member falling to or below it leaves. Only when `best` has too
/// few allowed values for a list are all counts ranked again.
struct Ranked<K, O> {
    counts: FxHashMap<K, i64>,
    best: Vec<(Reverse<i64>, K)>,
    floor: Option<(Reverse<i64>, K)>,
    out: Vec<O>,
    looked: Vec<K>,
}

impl<K, O> Default for Ranked<K, O> {
    fn default() -> Self {
        Ranked { counts: FxHashMap::default(), best: Vec::new(), floor: None, out: Vec::new(), looked: Vec::new() }
    }
}

impl<K: Hash + Eq + Ord + Copy, O> Ranked<K, O> {
    fn add(&mut self, v: K, r: i64) {
        let count = self.counts.entry(v).or_default();
        let old = *count;
        *count += r;
        let new = *count;
        if new == 0 {
            self.counts.remove(&v);
        }
        if old > 0 {
            if let Ok(i) = self.best.binary_search(&(Reverse(old), v)) {
                self.best.remove(i);
            }
        }
        let key = (Reverse(new), v);
        if new > 0 && self.floor.is_none_or(|floor| key < floor) {
            let i = self.best.binary_search(&key).unwrap_or_else(|i| i);
            self.best.insert(i, key);
        }
    }

    /// The first `n` allowed values as `(value, count)` into `top`, and every value looked
    /// at on the way (in rank order) into `looked`.
    fn top(&mut self, n: usize, allowed: impl Fn(&K) -> bool, top: &mut Vec<(K, i64)>, looked: &mut Vec<K>) {
        // Keep `best` short: what is beyond twice n goes below a raised floor.
        if self.best.len() > 4 * n + 8 {
            self.floor = Some(self.best[2 * n]);
            self.best.truncate(2 * n);
        }
        if !self.scan(n, &allowed, top, looked) && self.floor.is_some() {
            let mut all: Vec<(Reverse<i64>, K)> =
                self.counts.iter().filter(|(_, c)| **c > 0).map(|(v, c)| (Reverse(*c), *v)).collect();
            all.sort_unstable();
            let nth = all.iter().enumerate().filter(|(_, (_, v))| allowed(v)).nth(n.saturating_sub(1));
            let keep = nth.map_or(all.len(), |(i, _)| (i + 1).max(2 * n)).min(all.len());
            self.floor = all.get(keep).copied();
            all.truncate(keep);
            self.best = all;
            top.clear();
            looked.clear();
            self.scan(n, &allowed, top, looked);
        }
    }

    /// Reads `best` in rank order until `n` allowed values; whether it found them.
    fn scan(&self, n: usize, allowed: &impl Fn(&K) -> bool, top: &mut Vec<(K, i64)>, looked: &mut Vec<K>) -> bool {
        for &(Reverse(count), v) in &self.best {
            if top.len() == n {
                break;
            }
            looked.push(v);
            if allowed(&v) {
                top.push((v, count));
            }
        }
        top.len() == n
    }
}

/// Per table entry (a list, an online flag), the local keys whose last computation read it:
/// what [`top_counts`] recomputes when that entry changes.
struct Readers<LK, K> {
    of: FxHashMap<LK, FxHashSet<K>>,
}

impl<LK, K> Default for Readers<LK, K> {
    fn default() -> Self {
        Readers { of: FxHashMap::default() }
    }
}

impl<LK: Hash + Eq + Ord + Clone, K: Hash + Eq + Clone> Readers<LK, K> {
    /// The keys whose last computation read `lk`.
    fn of<'a>(&'a self, lk: &LK) -> impl Iterator<Item = &'a K> + 'a {
        self.of.get(lk).into_iter().flatten()
    }

    /// Key `k` now reads `new` instead of `old` (both sorted); `old` becomes `new`.
    fn update(&mut self, k: &K, old: &mut Vec<LK>, new: &mut Vec<LK>) {
        if old == new {
            return;
        }
        for lk in only_in(old, new) {
            if let Some(keys) = self.of.get_mut(lk) {
                keys.remove(k);
                if keys.is_empty() {
                    self.of.remove(lk);
                }
            }
        }
        for lk in only_in(new, old) {
            self.of.entry(lk.clone()).or_default().insert(k.clone());
        }
        std::mem::swap(old, new);
    }
}

/// Replaces key `k`'s last output `old` (sorted) by `fresh` (sorted here), pushing the
/// rows that left (-1) and joined (+1); `old` becomes `fresh`.
fn replace_output<K: Clone, O: Ord + Clone>(
    k: &K,
    old: &mut Vec<O>,
    fresh: &mut Vec<O>,
    out: &mut Vec<((K, O), isize)>,
) {
    fresh.sort_unstable();
    if old != fresh {
        out.extend(only_in(old, fresh).map(|o| ((k.clone(), o.clone()), -1isize)));
        out.extend(only_in(fresh, old).map(|o| ((k.clone(), o.clone()), 1isize)));
        std::mem::swap(old, fresh);
    }
}

/// The elements of sorted `a` that sorted `b` lacks.
fn only_in<'a, T: Ord>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = &'a T> + 'a {
    a.iter().filter(move |x| b.binary_search(x).is_err())
}

/// An update of [`reduce_total_with`] or [`top_counts`]: keyed data, or a configuration or
/// table record (on every worker).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Keyed<K, V, R, C, LK, LV> {
    Data(K, V, R),
    Config(C, isize),
    Lookup(LK, LV, isize),
}

/// A broadcast configuration: the records with a positive accumulated count (sorted).
struct Config<C> {
    counts: FxHashMap<C, isize>,
    current: Vec<C>,
    moved: bool,
}

impl<C> Default for Config<C> {
    fn default() -> Self {
        Config { counts: FxHashMap::default(), current: Vec::new(), moved: false }
    }
}

impl<C: Ord + Hash + Clone> Config<C> {
    fn update(&mut self, c: C, r: isize) {
        *self.counts.entry(c).or_default() += r;
        self.moved = true;
    }

    /// Applies this time's updates; whether the configuration changed.
    fn settle(&mut self) -> bool {
        if !std::mem::take(&mut self.moved) {
            return false;
        }
        self.counts.retain(|_, r| *r != 0);
        let mut now: Vec<C> = self.counts.iter().filter(|(_, r)| **r > 0).map(|(c, _)| c.clone()).collect();
        now.sort_unstable();
        let changed = now != self.current;
        self.current = now;
        changed
    }
}

/// Sums the updates of each time per key into a hash map; calls `emit(key, before,
/// after, out)` for each key whose accumulation changed at that time (`None`: zero).
fn accumulate_total<'s, K, R, D2, R2, F>(
    input: VecCollection<'s, Time, K, R>,
    name: &str,
    mut emit: F,
) -> VecCollection<'s, Time, D2, R2>
where
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    D2: ExchangeData,
    R2: ExchangeData,
    F: FnMut(&K, Option<&R>, Option<&R>, &mut Vec<(D2, R2)>) + 'static,
{
    let mut state: FxHashMap<K, R> = FxHashMap::default();
    let mut before: FxHashMap<K, Option<R>> = FxHashMap::default();
    by_complete_time(input, name, Exchange::new(|(k, _, _): &(K, Time, R)| k.hashed()), move |_time, updates, out| {
        for (k, r) in updates.drain(..) {
            match state.entry(k) {
                Entry::Occupied(mut e) => {
                    if !before.contains_key(e.key()) {
                        before.insert(e.key().clone(), Some(e.get().clone()));
                    }
                    e.get_mut().plus_equals(&r);
                }
                Entry::Vacant(e) => {
                    before.entry(e.key().clone()).or_insert(None);
                    e.insert(r);
                }
            }
        }
        for (k, old) in before.drain() {
            let new = state.get(&k).filter(|r| !r.is_zero()).cloned();
            if new.is_none() {
                state.remove(&k);
            }
            let old = old.filter(|r| !r.is_zero());
            emit(&k, old.as_ref(), new.as_ref(), out);
        }
    })
}

/// `count_total` with a hash map: `(key, accumulated)` rows, +1/-1 as they change.
pub fn count_total_hashed<'s, K, R>(input: VecCollection<'s, Time, K, R>, name: &str) -> VecCollection<'s, Time, (K, R)>
where
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
{
    accumulate_total(input, name, |k, old, new, out| {
        if old != new {
            out.extend(old.map(|o| ((k.clone(), o.clone()), -1isize)));
            out.extend(new.map(|n| ((k.clone(), n.clone()), 1isize)));
        }
    })
}

/// `threshold_total` with a hash map: each key with difference
/// `thresh(after) - thresh(before)` (a zero accumulation thresholds to zero).
pub fn threshold_total_hashed<'s, K, R, R2, F>(
    input: VecCollection<'s, Time, K, R>,
    name: &str,
    mut thresh: F,
) -> VecCollection<'s, Time, K, R2>
where
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    R2: ExchangeData + Abelian,
    F: FnMut(&R) -> R2 + 'static,
{
    accumulate_total(input, name, move |k, old, new, out| {
        let mut diff = new.map(&mut thresh).unwrap_or_else(R2::zero);
        if let Some(old) = old {
            let mut neg = thresh(old);
            neg.negate();
            diff.plus_equals(&neg);
        }
        if !diff.is_zero() {
            out.push((k.clone(), diff));
        }
    })
}

/// Co-occurrence within a distance among each key's latest records: for records
/// `(key, (value, position))`, the pairs of distinct values `(a, b)` (both orders) that
/// some key holds at positions at most `gap` apart among its `latest` latest records,
/// each counted once per key.
///
/// Contract: a key's records at t are the distinct `(position, value)` with a positive
/// accumulated multiplicity (time ≤ t); only its `latest` greatest by (position, value)
/// take part. At time t, the difference of `(a, b)` accumulates to the number of keys
/// holding `a` at p and `b` at q among those, with a ≠ b and `|p − q| ≤ gap`. The input
/// must not accumulate to negative multiplicities (a windowed set of records does not).
///
/// Cost: an update touches only the key's taking-part records within `gap` of its
/// position (at most `latest`), so a key's work per record is bounded however many
/// records it has; no per-key pair counts are kept (whether a pair is still held is
/// re-checked among at most `latest` records, and only for a value the key holds twice).
/// State per key: its records in position order. A time's output is consolidated.
pub fn pairs_within<'s, K, V>(
    input: VecCollection<'s, Time, (K, (V, u64))>,
    gap: u64,
    latest: usize,
    name: &str,
) -> VecCollection<'s, Time, (V, V)>
where
    K: ExchangeData + Hash,
    V: ExchangeData + Hash + Copy,
{
    let mut state: FxHashMap<K, Recent<V>> = FxHashMap::default();
    let mut deltas: FxHashMap<(V, V), isize> = FxHashMap::default();
    let mut scratch = Scratch::default();
    by_complete_time(
        input,
        name,
        Exchange::new(|((k, _), _, _): &((K, (V, u64)), Time, isize)| k.hashed()),
        move |_time, updates, out| {
            // Net change per record, one key at a time (so no record is seen half-updated).
            updates.sort_unstable_by(|((k1, (v1, p1)), _), ((k2, (v2, p2)), _)| (k1, p1, v1).cmp(&(k2, p2, v2)));
            for run in updates.chunk_by(|((k1, _), _), ((k2, _), _)| k1 == k2) {
                let k = &run[0].0 .0;
                let recent = state.entry(k.clone()).or_default();
                for same in run.chunk_by(|(d1, _), (d2, _)| d1 == d2) {
                    let (v, pos) = same[0].0 .1;
                    let r: isize = same.iter().map(|(_, r)| r).sum();
                    if r != 0 {
                        recent.update((pos, v), r, gap, latest, &mut scratch, &mut deltas);
                    }
                }
                if recent.len == 0 {
                    state.remove(k);
                }
            }
            updates.clear();
            out.extend(deltas.drain().filter(|(_, r)| *r != 0));
        },
    )
}

/// One key's records for [`pairs_within`]: `records[position]` holds the values at that
/// position with their multiplicities, sorted by value; those at or above `cut` (the
/// least of the `latest` greatest) take part.
struct Recent<V> {
    records: BTreeMap<u64, Vec<(V, isize)>>,
    len: usize,
    cut: Option<(u64, V)>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { records: BTreeMap::new(), len: 0, cut: None }
    }
}

/// Reused buffers of [`Recent::pair_deltas`].
struct Scratch<V> {
    near: Vec<V>,
    mine: Vec<u64>,
}

impl<V> Default for Scratch<V> {
    fn default() -> Self {
        Scratch { near: Vec::new(), mine: Vec::new() }
    }
}

impl<V: Ord + Copy + Hash> Recent<V> {
    fn takes_part(&self, key: (u64, V)) -> bool {
        self.cut.is_some_and(|cut| key >= cut)
    }

    /// The records that take part, in (position, value) order.
    fn taking_part(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        let from = self.cut.map_or(0, |(p, _)| p);
        self.records
            .range(from..)
            .flat_map(|(&p, vs)| vs.iter().map(move |&(v, _)| (p, v)))
            .filter(|&key| self.takes_part(key))
    }

    fn first(&self) -> Option<(u64, V)> {
        self.records.iter().next().map(|(&p, vs)| (p, vs[0].0))
    }

    /// The least record above `key`.
    fn after(&self, (p, v): (u64, V)) -> Option<(u64, V)> {
        if let Some(&(w, _)) = self.records.get(&p).and_then(|vs| vs.iter().find(|(w, _)| *w > v)) {
            return Some((p, w));
        }
        self.records.range(p + 1..).next().map(|(&q, vs)| (q, vs[0].0))
    }

    /// The greatest record below `key`.
    fn before(&self, (p, v): (u64, V)) -> Option<(u64, V)> {
        if let Some(&(w, _)) = self.records.get(&p).and_then(|vs| vs.iter().rev().find(|(w, _)| *w < v)) {
            return Some((p, w));
        }
        self.records.range(..p).next_back().map(|(&q, vs)| (q, vs[vs.len() - 1].0))
    }

    /// Adds `r` to the multiplicity of `key`; when that makes the record appear or vanish,
    /// moves the cut and adds the resulting pair changes to `deltas`.
    fn update(
        &mut self,
        key: (u64, V),
        r: isize,
        gap: u64,
        latest: usize,
        scratch: &mut Scratch<V>,
        deltas: &mut FxHashMap<(V, V), isize>,
    ) {
        let (pos, v) = key;
        let values = self.records.entry(pos).or_default();
        let (old, new) = match values.binary_search_by(|(w, _)| w.cmp(&v)) {
            Ok(i) => {
                let old = values[i].1;
                values[i].1 += r;
                if values[i].1 <= 0 {
                    values.remove(i);
                }
                (old, old + r)
            }
            Err(i) => {
                if r > 0 {
                    values.insert(i, (v, r));
                }
                (0, r)
            }
        };
        if values.is_empty() {
            self.records.remove(&pos);
        }
        debug_assert!(new >= 0, "pairs_within: negative multiplicity");
        match (old > 0, new > 0) {
            (false, true) => {
                self.len += 1;
                if self.len <= latest {
                    // Everything takes part; the new record too.
                    self.cut = Some(self.cut.map_or(key, |c| c.min(key)));
                    self.pair_deltas(key, 1, gap, scratch, deltas);
                } else if self.cut.is_some_and(|c| key > c) {
                    // The new record takes part and pushes out the least one.
                    self.pair_deltas(key, 1, gap, scratch, deltas);
                    let out = self.cut.expect("a cut with records");
                    self.cut = self.after(out);
                    self.pair_deltas(out, -1, gap, scratch, deltas);
                }
            }
            (true, false) => {
                let took_part = self.takes_part(key);
                self.len -= 1;
                if took_part {
                    self.pair_deltas(key, -1, gap, scratch, deltas);
                    if self.len >= latest {
                        // The greatest record left out comes in.
                        let cut = self.cut.expect("a cut with records");
                        let back = self.before(cut).expect("a record left out");
                        self.cut = Some(back);
                        self.pair_deltas(back, 1, gap, scratch, deltas);
                    } else {
                        self.cut = self.first();
                    }
                }
            }
            _ => {}
        }
    }

    /// The pair changes of `x` joining (`sign` 1) or leaving (−1) the taking-part records,
    /// the others being those taking part now apart from `x`: a pair `(v, w)` with a
    /// record of w near x changes unless another record of v is near one of w.
    fn pair_deltas(
        &self,
        x: (u64, V),
        sign: isize,
        gap: u64,
        scratch: &mut Scratch<V>,
        deltas: &mut FxHashMap<(V, V), isize>,
    ) {
        let (p, v) = x;
        let Scratch { near, mine } = scratch;
        near.clear();
        for (&q, vs) in self.records.range(p.saturating_sub(gap)..=p.saturating_add(gap)) {
            near.extend(vs.iter().map(|&(w, _)| w).filter(|&w| w != v && self.takes_part((q, w))));
        }
        if near.is_empty() {
            return;
        }
        near.sort_unstable();
        near.dedup();
        mine.clear();
        mine.extend(self.taking_part().filter(|&(q, w)| w == v && q != p).map(|(q, _)| q));
        for &w in near.iter() {
            let held_elsewhere = !mine.is_empty()
                && self.taking_part().any(|(q, u)| u == w && mine.iter().any(|&m| m.abs_diff(q) <= gap));
            if !held_elsewhere {
                *deltas.entry((v, w)).or_default() += sign;
                *deltas.entry((w, v)).or_default() += sign;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use differential_dataflow::input::Input;
    use differential_dataflow::AsCollection;
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::ProbeHandle;

    use super::{pairs_within, top_counts};

    /// `top_counts` against a plain ranking of the accumulated counts, at every time, with
    /// counts rising and falling, values and keys leaving and joining the allowed set, and
    /// the list length changing.
    #[test]
    fn top_counts_matches_plain_ranking() {
        for seed in 0..8u64 {
            timely::execute_directly(move |worker| {
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let got: Rc<RefCell<BTreeMap<(u32, (u32, i64)), isize>>> = Rc::default();
                let probe = ProbeHandle::new();
                let (mut pairs, mut allowed, mut limit) = worker.dataflow::<u64, _, _>(|scope| {
                    let (pairs_in, pairs) = scope.new_collection::<(u32, u32), isize>();
                    let (allowed_in, allowed) = scope.new_collection::<u32, isize>();
                    let (limit_in, limit) = scope.new_collection::<usize, isize>();
                    let sink = got.clone();
                    top_counts(
                        pairs,
                        allowed,
                        limit,
                        "TopCounts",
                        |n: &[usize]| n.iter().copied().max().unwrap_or(0),
                        |_k, top: &[(u32, i64)], _n: &[usize], out| out.extend(top.iter().copied()),
                    )
                    .inner
                    .inspect(move |(row, _t, r)| *sink.borrow_mut().entry(*row).or_default() += r)
                    .as_collection()
                    .probe_with(&probe);
                    (pairs_in, allowed_in, limit_in)
                });
                let mut counts: BTreeMap<(u32, u32), isize> = BTreeMap::new();
                let mut on = [false; 12];
                let mut n = 3usize;
                limit.insert(n);
                for t in 1..60u64 {
                    for _ in 0..rng.random_range(0..40) {
                        let pair = (rng.random_range(0..12u32), rng.random_range(0..12u32));
                        let c = counts.entry(pair).or_default();
                        let r = if *c > 0 && rng.random_bool(0.4) { -1 } else { 1 };
                        *c += r;
                        pairs.update(pair, r);
                    }
                    for _ in 0..rng.random_range(0..3) {
                        let k = rng.random_range(0..12usize);
                        on[k] = !on[k];
                        allowed.update(k as u32, if on[k] { 1 } else { -1 });
                    }
                    if rng.random_bool(0.1) {
                        limit.remove(n);
                        n = rng.random_range(0..6);
                        limit.insert(n);
                    }
                    pairs.advance_to(t);
                    allowed.advance_to(t);
                    limit.advance_to(t);
                    pairs.flush();
                    allowed.flush();
                    limit.flush();
                    worker.step_while(|| probe.less_than(&t));
                    let mut want: BTreeMap<(u32, (u32, i64)), isize> = BTreeMap::new();
                    for k in (0..12u32).filter(|k| on[*k as usize]) {
                        let mut ranked: Vec<(i64, u32)> = counts
                            .iter()
                            .filter(|((a, b), c)| *a == k && on[*b as usize] && **c > 0)
                            .map(|((_, b), c)| (-(*c as i64), *b))
                            .collect();
                        ranked.sort();
                        for (c, b) in ranked.into_iter().take(n) {
                            want.insert((k, (b, -c)), 1);
                        }
                    }
                    let have: BTreeMap<_, _> =
                        got.borrow().iter().filter(|(_, r)| **r != 0).map(|(k, r)| (*k, *r)).collect();
                    assert_eq!(have, want, "seed {seed}, time {t}");
                }
            });
        }
    }

    /// `pairs_within` against a plain count over each key's latest records, at every time,
    /// with records coming and going (duplicates too), late positions, and keys that hold
    /// more records than take part.
    #[test]
    fn pairs_within_matches_plain_count() {
        for seed in 0..12u64 {
            let latest = 1 + seed as usize % 5;
            timely::execute_directly(move |worker| {
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let got: Rc<RefCell<BTreeMap<(u32, u32), isize>>> = Rc::default();
                let probe = ProbeHandle::new();
                let mut input = worker.dataflow::<u64, _, _>(|scope| {
                    let (input, records) = scope.new_collection::<(u8, (u32, u64)), isize>();
                    let sink = got.clone();
                    pairs_within(records, 3, latest, "PairsWithin")
                        .inner
                        .inspect(move |(pair, _t, r)| *sink.borrow_mut().entry(*pair).or_default() += r)
                        .as_collection()
                        .probe_with(&probe);
                    input
                });
                let mut held: BTreeMap<(u8, (u32, u64)), isize> = BTreeMap::new();
                for t in 1..50u64 {
                    for _ in 0..rng.random_range(0..25) {
                        let record =
                            (rng.random_range(0..4u8), (rng.random_range(0..6u32), rng.random_range(0..20u64)));
                        let n = held.entry(record).or_default();
                        let r = if *n > 0 && rng.random_bool(0.45) { -1 } else { 1 };
                        *n += r;
                        input.update(record, r);
                    }
                    input.advance_to(t);
                    input.flush();
                    worker.step_while(|| probe.less_than(&t));
                    let mut want: BTreeMap<(u32, u32), isize> = BTreeMap::new();
                    for key in 0..4u8 {
                        let mut mine: Vec<(u64, u32)> = held
                            .iter()
                            .filter(|((k, _), n)| *k == key && **n > 0)
                            .map(|((_, (v, p)), _)| (*p, *v))
                            .collect();
                        mine.sort();
                        let mine = &mine[mine.len().saturating_sub(latest)..];
                        let mut pairs: Vec<(u32, u32)> = Vec::new();
                        for &(p, a) in mine {
                            for &(q, b) in mine {
                                if a != b && p.abs_diff(q) <= 3 {
                                    pairs.push((a, b));
                                }
                            }
                        }
                        pairs.sort();
                        pairs.dedup();
                        for pair in pairs {
                            *want.entry(pair).or_default() += 1;
                        }
                    }
                    let have: BTreeMap<_, _> =
                        got.borrow().iter().filter(|(_, r)| **r != 0).map(|(k, r)| (*k, *r)).collect();
                    assert_eq!(have, want, "seed {seed}, latest {latest}, time {t}");
                }
            });
        }
    }
}
