//! [`TopCounts`]: per key, its values ranked by count among an allowed set, kept ranked
//! as counts move (the i2i neighbour lists).

use std::cmp::Reverse;
use std::hash::Hash;

use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concat, Exchange as _};

use crate::complete::{by_complete_time_absorbing, Step};
use crate::keyed::{only_in, replace_output, Config, Keyed};
use crate::negative;
use crate::small_map::SmallMap;
use crate::TotalTime;

/// Per key, its values ranked by accumulated count, kept ranked as counts change: the top
/// list among the values of an allowed set (the online items), for keys in that set.
///
/// Contract: `input` holds pairs `(k, v)` whose accumulated difference at t is their count
/// (≥ 0); `allowed` is a set every worker holds whole (records with a positive count at t);
/// `config` as in [`ReduceTotal::reduce_total_with`](crate::ReduceTotal::reduce_total_with). At every time t, for every key k in `allowed` with
/// a positive count for some allowed v: `emit(k, top, config)` with `top` the first
/// `limit(config)` allowed values by count desc, value asc, as `(v, count)`; the output
/// holds the rows it pushes, with +1/-1 differences at the times that set changes. A
/// negative count is left out of the ranking and reported to [`negative`].
///
/// Cost: an update is one hash probe and, near the top, one move in a short ranked list of
/// the key's best values; a touched key re-reads only those (up to the `limit`-th allowed
/// one), and ranks all its values again only when that list runs short of allowed ones.
/// A key is recomputed when its counts change, when the configuration changes, or when the allowed flag of the key itself or of a value its last list looked
/// at changes. State: per key, its counts, its short ranked list, last output and the
/// values it looked at; the allowed set on every worker.
pub trait TopCounts<'s, T: TotalTime, K> {
    fn top_counts<C, O, N, E>(
        self,
        allowed: VecCollection<'s, T, K>,
        config: VecCollection<'s, T, C>,
        name: &str,
        limit: N,
        emit: E,
    ) -> VecCollection<'s, T, (K, O)>
    where
        C: ExchangeData + Hash,
        O: ExchangeData,
        N: Fn(&[C]) -> usize + 'static,
        E: FnMut(&K, &[(K, i64)], &[C], &mut Vec<O>) + 'static;
}

impl<'s, T, K> TopCounts<'s, T, K> for VecCollection<'s, T, (K, K)>
where
    T: TotalTime,
    K: ExchangeData + Hash + Copy,
{
    fn top_counts<C, O, N, E>(
        self,
        allowed: VecCollection<'s, T, K>,
        config: VecCollection<'s, T, C>,
        name: &str,
        limit: N,
        mut emit: E,
    ) -> VecCollection<'s, T, (K, O)>
    where
        C: ExchangeData + Hash,
        O: ExchangeData,
        N: Fn(&[C]) -> usize + 'static,
        E: FnMut(&K, &[(K, i64)], &[C], &mut Vec<O>) + 'static,
    {
        let data = self
            .inner
            .exchange(|((k, _), _, _): &((K, K), T, isize)| k.hashed())
            .map(|((k, v), t, r)| (Keyed::Data(k, v, r), t, ()));
        let config = config.inner.broadcast().map(|(c, t, r)| (Keyed::Config(Box::new(c), r), t, ()));
        let allowed = allowed.inner.broadcast().map(|(k, t, r)| (Keyed::Table(k, r), t, ()));
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
        let mut data: Vec<(K, K, i64)> = Vec::new();
        // The list length of the last time: how long a key's ranked list needs to be.
        let mut n = 0usize;
        let name = name.to_string();
        let mut negatives = 0u64;
        by_complete_time_absorbing(updates, &name.clone(), Pipeline, move |step| {
            let out = match step {
                Step::Absorb(_, updates) => {
                    for (update, ()) in updates.drain(..) {
                        match update {
                            Keyed::Data(k, v, r) => data.push((k, v, r as i64)),
                            Keyed::Config(c, r) => config.update(*c, r),
                            Keyed::Table(k, r) => {
                                let count = allowed.entry(k).or_default();
                                flipped.entry(k).or_insert(*count > 0);
                                *count += r;
                            }
                        }
                    }
                    // Counts move as the time's updates arrive, a chunk at a time: the
                    // time's updates are not all held until it completes.
                    if data.len() >= ABSORB_CHUNK {
                        add_counts(&mut data, &mut state, &mut touched, n, &mut negatives);
                    }
                    return None;
                }
                Step::Finish(_, out) => out,
            };
            add_counts(&mut data, &mut state, &mut touched, n, &mut negatives);
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
            n = limit(&config.current);
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
                readers.update(&k, &mut ranked.looked, &looked);
                replace_output(&k, &mut ranked.out, &mut fresh, out);
                if ranked.is_empty() {
                    state.remove(&k);
                }
            }
            negative::report(&name, std::mem::take(&mut negatives));
            None
        })
    }
}

/// Pair updates [`TopCounts`] applies at once: a time's updates are applied in chunks of
/// this many as they arrive (24 bytes each).
const ABSORB_CHUNK: usize = 1 << 20;

/// Applies `data` (then empty) to the keys' counts, one key at a time: its state is found
/// once, and its counts stay in cache while its updates are applied (a large state is
/// cache misses); the keys go to `touched`.
fn add_counts<K: Hash + Eq + Ord + Copy, O>(
    data: &mut Vec<(K, K, i64)>,
    state: &mut FxHashMap<K, Ranked<K, O>>,
    touched: &mut Vec<K>,
    n: usize,
    negatives: &mut u64,
) {
    data.sort_unstable_by(|(k1, v1, _), (k2, v2, _)| (k1, v1).cmp(&(k2, v2)));
    for run in data.chunk_by(|(k1, _, _), (k2, _, _)| k1 == k2) {
        let ranked = state.entry(run[0].0).or_default();
        for &(_, v, r) in run {
            ranked.add(v, r, n, negatives);
        }
        touched.push(run[0].0);
    }
    data.clear();
}

/// The state of a key of [`TopCounts`]: its best values kept ranked, and when it has
/// more values than that, all its counts.
///
/// `best` holds values by `(count desc, value asc)`. Without `rest`, it holds every value
/// with a nonzero count, all positive: most keys (an item's few neighbours) need nothing
/// else, and an update is a scan of at most `4n + 8` entries. With `rest`, `best` holds
/// every value ranked before `rest.floor` and every value not in `best` ranks at or after
/// it (`None`: `best` holds every positive count); an update keeps that true with one
/// probe and one move in the short `best`: a value rising above the floor joins, a member
/// falling to or below it leaves. Only when `best` has too few allowed values for a list
/// are all counts ranked again.
struct Ranked<K, O> {
    best: Vec<(Reverse<i64>, K)>,
    rest: Option<Box<Rest<K>>>,
    out: Vec<O>,
    looked: Vec<K>,
}

/// Every count of a key that has more values than its `best` keeps (or a negative count).
struct Rest<K> {
    counts: FxHashMap<K, i64>,
    floor: Option<(Reverse<i64>, K)>,
}

impl<K, O> Default for Ranked<K, O> {
    fn default() -> Self {
        Ranked { best: Vec::new(), rest: None, out: Vec::new(), looked: Vec::new() }
    }
}

impl<K: Hash + Eq + Ord + Copy, O> Ranked<K, O> {
    /// Adds `r` to `v`'s count; counts the update in `negatives` if that leaves the count
    /// below zero (the value then ranks nowhere until its count is back). `n`: the list
    /// length the key was last ranked for (`best` is kept short for it).
    fn add(&mut self, v: K, r: i64, n: usize, negatives: &mut u64) {
        if self.rest.is_none() {
            let at = self.best.iter().position(|(_, w)| *w == v);
            let old = at.map_or(0, |i| self.best[i].0 .0);
            let new = old + r;
            if new >= 0 {
                match at {
                    Some(i) if new > 0 => self.reposition(i, (Reverse(new), v)),
                    Some(i) => {
                        self.best.remove(i);
                    }
                    None if new > 0 => {
                        self.insert((Reverse(new), v));
                        self.shorten(n);
                    }
                    None => {}
                }
                return;
            }
            self.spill();
        }
        let rest = self.rest.as_mut().expect("spilled");
        let count = rest.counts.entry(v).or_default();
        let old = *count;
        *count += r;
        let new = *count;
        if new == 0 {
            rest.counts.remove(&v);
        }
        if new < 0 {
            *negatives += 1;
        }
        let key = (Reverse(new), v);
        let ranks = new > 0 && rest.floor.is_none_or(|floor| key < floor);
        let at = if old > 0 { self.best.binary_search(&(Reverse(old), v)).ok() } else { None };
        match at {
            Some(i) if ranks => self.reposition(i, key),
            Some(i) => {
                self.best.remove(i);
            }
            None if ranks => {
                self.insert(key);
                self.shorten(n);
            }
            None => {}
        }
    }

    /// Gives the member at `i` the rank key `key` (its value's new count) and moves it to
    /// its place: a count moves by one at a time, so only the members it passes move
    /// (removing and inserting again moved everything after either place).
    fn reposition(&mut self, i: usize, key: (Reverse<i64>, K)) {
        let best = &mut self.best[..];
        if key < best[i] {
            let j = best[..i].partition_point(|e| *e < key);
            best[j..=i].rotate_right(1);
            best[j] = key;
        } else {
            let j = i + best[i + 1..].partition_point(|e| *e < key);
            best[i..=j].rotate_left(1);
            best[j] = key;
        }
    }

    /// Inserts `key` into `best` in rank order, growing it by half (not double: millions
    /// of keys hold a few values each).
    fn insert(&mut self, key: (Reverse<i64>, K)) {
        let i = self.best.binary_search(&key).unwrap_or_else(|i| i);
        if self.best.len() == self.best.capacity() {
            self.best.reserve_exact((self.best.len() / 2).max(1));
        }
        self.best.insert(i, key);
    }

    /// Keeps every count in `rest` from now on (with no floor yet).
    fn spill(&mut self) {
        let counts = self.best.iter().map(|&(Reverse(c), v)| (v, c)).collect();
        self.rest = Some(Box::new(Rest { counts, floor: None }));
    }

    /// Keeps `best` short for lists of `n`: past `4n + 8` members, what ranks after the
    /// first `2n` goes below a raised floor (still ranked after every member kept).
    fn shorten(&mut self, n: usize) {
        if self.best.len() > 4 * n + 8 {
            if self.rest.is_none() {
                self.spill();
            }
            let rest = self.rest.as_mut().expect("spilled");
            rest.floor = Some(self.best[2 * n]);
            self.best.truncate(2 * n);
        }
    }

    /// The first `n` allowed values as `(value, count)` into `top`, and every value looked
    /// at on the way (in rank order) into `looked`.
    fn top(&mut self, n: usize, allowed: impl Fn(&K) -> bool, top: &mut Vec<(K, i64)>, looked: &mut Vec<K>) {
        self.shorten(n);
        let Some(rest) = self.rest.as_mut() else {
            Self::scan_best(&self.best, n, &allowed, top, looked);
            return;
        };
        if !Self::scan_best(&self.best, n, &allowed, top, looked) && rest.floor.is_some() {
            let mut all: Vec<(Reverse<i64>, K)> =
                rest.counts.iter().filter(|(_, c)| **c > 0).map(|(v, c)| (Reverse(*c), *v)).collect();
            all.sort_unstable();
            let nth = all.iter().enumerate().filter(|(_, (_, v))| allowed(v)).nth(n.saturating_sub(1));
            let keep = nth.map_or(all.len(), |(i, _)| (i + 1).max(2 * n)).min(all.len());
            rest.floor = all.get(keep).copied();
            all.truncate(keep);
            self.best = all;
            top.clear();
            looked.clear();
            Self::scan_best(&self.best, n, &allowed, top, looked);
        }
        // Back to `best` alone once it holds every count again, all positive.
        if rest.floor.is_none() && rest.counts.len() == self.best.len() && self.best.len() <= 4 * n + 8 {
            self.rest = None;
        }
    }

    /// Reads `best` in rank order until `n` allowed values; whether it found them.
    fn scan_best(
        best: &[(Reverse<i64>, K)],
        n: usize,
        allowed: &impl Fn(&K) -> bool,
        top: &mut Vec<(K, i64)>,
        looked: &mut Vec<K>,
    ) -> bool {
        for &(Reverse(count), v) in best {
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

    /// No count left: nothing ranked, so nothing looked at either.
    fn is_empty(&self) -> bool {
        self.best.is_empty() && self.rest.as_ref().is_none_or(|rest| rest.counts.is_empty())
    }
}

/// Per table entry (a list, an online flag), the local keys whose last computation read it:
/// what [`TopCounts`] recomputes when that entry changes.
struct Readers<LK, K> {
    of: FxHashMap<LK, SmallMap<K, ()>>,
}

impl<LK, K> Default for Readers<LK, K> {
    fn default() -> Self {
        Readers { of: FxHashMap::default() }
    }
}

impl<LK: Hash + Eq + Ord + Clone, K: Hash + Ord + Copy> Readers<LK, K> {
    /// The keys whose last computation read `lk`.
    fn of<'a>(&'a self, lk: &LK) -> impl Iterator<Item = &'a K> + 'a {
        self.of.get(lk).into_iter().flat_map(|keys| keys.iter().map(|(k, ())| k))
    }

    /// Key `k` now reads `new` instead of `old` (both sorted); `old` becomes `new`.
    fn update(&mut self, k: &K, old: &mut Vec<LK>, new: &[LK]) {
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
            self.of.entry(lk.clone()).or_default().insert(*k, ());
        }
        // Copied, not swapped: `new` is a buffer reused for every key, and its capacity
        // (the longest list any key looked at) would stay with each of millions of keys.
        old.clear();
        old.extend_from_slice(new);
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

    use super::TopCounts;

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
                    pairs
                        .top_counts(
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
                // Values range wider than keys: a key's values outgrow `best` (4n + 8) and
                // come back under it, so both of `Ranked`'s forms are taken.
                let mut on = [false; 40];
                let mut n = 3usize;
                limit.insert(n);
                for t in 1..60u64 {
                    for _ in 0..rng.random_range(0..80) {
                        let pair = (rng.random_range(0..12u32), rng.random_range(0..40u32));
                        let c = counts.entry(pair).or_default();
                        let r = if *c > 0 && rng.random_bool(0.4) { -1 } else { 1 };
                        *c += r;
                        pairs.update(pair, r);
                    }
                    for _ in 0..rng.random_range(0..6) {
                        let k = rng.random_range(0..40usize);
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
}
