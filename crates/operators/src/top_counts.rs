//! [`TopCounts`]: per key, its values ranked by count among an allowed set, kept ranked
//! as counts move (the i2i neighbour lists).

use std::cmp::Reverse;
use std::hash::Hash;

use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use rustc_hash::{FxHashMap, FxHashSet};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concat, Exchange as _};

use crate::complete::by_complete_time;
use crate::keyed::{only_in, replace_output, Config, Keyed};
use crate::negative;
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
        let config = config.inner.broadcast().map(|(c, t, r)| (Keyed::Config(c, r), t, ()));
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
        by_complete_time(updates, &name.clone(), Pipeline, move |_time, updates, out| {
            for (update, ()) in updates.drain(..) {
                match update {
                    Keyed::Data(k, v, r) => data.push((k, v, r as i64)),
                    Keyed::Config(c, r) => config.update(c, r),
                    Keyed::Table(k, r) => {
                        let count = allowed.entry(k).or_default();
                        flipped.entry(k).or_insert(*count > 0);
                        *count += r;
                    }
                }
            }
            // One key at a time: its state is found once, and its counts stay in cache
            // while its updates of this time are applied (a large state is cache misses).
            data.sort_unstable_by(|(k1, v1, _), (k2, v2, _)| (k1, v1).cmp(&(k2, v2)));
            for run in data.chunk_by(|(k1, _, _), (k2, _, _)| k1 == k2) {
                let ranked = state.entry(run[0].0).or_default();
                for &(_, v, r) in run {
                    ranked.add(v, r, n, &mut negatives);
                }
                touched.push(run[0].0);
            }
            data.clear();
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
                readers.update(&k, &mut ranked.looked, &mut looked);
                replace_output(&k, &mut ranked.out, &mut fresh, out);
                // No counts: nothing ranked, so nothing looked at either.
                if ranked.counts.is_empty() {
                    state.remove(&k);
                }
            }
            negative::report(&name, std::mem::take(&mut negatives));
        })
    }
}

/// The state of a key of [`TopCounts`]: its counts, and its best values kept ranked.
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
    /// Adds `r` to `v`'s count; counts the update in `negatives` if that leaves the count
    /// below zero (the value then ranks nowhere until its count is back). `n`: the list
    /// length the key was last ranked for (`best` is kept short for it).
    fn add(&mut self, v: K, r: i64, n: usize, negatives: &mut u64) {
        let count = self.counts.entry(v).or_default();
        let old = *count;
        *count += r;
        let new = *count;
        if new == 0 {
            self.counts.remove(&v);
        }
        if new < 0 {
            *negatives += 1;
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
            self.shorten(n);
        }
    }

    /// Keeps `best` short for lists of `n`: past `4n + 8` members, what ranks after the
    /// first `2n` goes below a raised floor (still ranked after every member kept).
    fn shorten(&mut self, n: usize) {
        if self.best.len() > 4 * n + 8 {
            self.floor = Some(self.best[2 * n]);
            self.best.truncate(2 * n);
        }
    }

    /// The first `n` allowed values as `(value, count)` into `top`, and every value looked
    /// at on the way (in rank order) into `looked`.
    fn top(&mut self, n: usize, allowed: impl Fn(&K) -> bool, top: &mut Vec<(K, i64)>, looked: &mut Vec<K>) {
        self.shorten(n);
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
/// what [`TopCounts`] recomputes when that entry changes.
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
}
