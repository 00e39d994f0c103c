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
/// values it looked at; the allowed set on every worker. Ids and counts are held in 32
/// bits while every id seen fits a `u32` and every count an `i32` (a ranked entry is 8
/// bytes, not 16); the state is widened to 64 bits once, when one does not (exact either
/// way).
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
    K: ExchangeData + Hash + Copy + Into<u64> + TryFrom<u64>,
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
        let mut core: Cores<O> = Cores::Narrow(Core::default());
        let mut config = Config::default();
        // The list length of the last time: how long a key's ranked list needs to be.
        let mut n = 0usize;
        let name = name.to_string();
        // The key's top list with the operator's id type, for `emit`.
        let mut top: Vec<(K, i64)> = Vec::new();
        let mut emit = move |k: u64, list: &[(u64, i64)], config: &[C], fresh: &mut Vec<O>| {
            top.clear();
            top.extend(list.iter().map(|&(v, count)| (id_of::<K>(v), count)));
            emit(&id_of(k), &top, config, fresh);
        };
        by_complete_time_absorbing(updates, &name.clone(), Pipeline, move |step| {
            let out = match step {
                Step::Absorb(_, updates) => {
                    for (update, ()) in updates.drain(..) {
                        match update {
                            Keyed::Data(k, v, r) => core.data(k.into(), v.into(), r as i64),
                            Keyed::Config(c, r) => config.update(*c, r),
                            Keyed::Table(k, r) => core.table(k.into(), r),
                        }
                    }
                    // Counts move as the time's updates arrive, a chunk at a time: the
                    // time's updates are not all held until it completes.
                    if core.buffered() >= ABSORB_CHUNK {
                        core.add_counts(n);
                    }
                    return None;
                }
                Step::Finish(_, out) => out,
            };
            core.add_counts(n);
            let reconfigured = config.settle();
            n = limit(&config.current);
            let mut finish = Finish { n, reconfigured, config: &config.current, emit: &mut emit, out };
            let negatives = match &mut core {
                Cores::Narrow(core) => core.finish(&mut finish),
                Cores::Wide(core) => core.finish(&mut finish),
            };
            negative::report(&name, negatives);
            None
        })
    }
}

/// `id` as the operator's id type `K` (it came from one: `K` into `u64` and back).
fn id_of<K: TryFrom<u64>>(id: u64) -> K {
    K::try_from(id).unwrap_or_else(|_| unreachable!("an id held by TopCounts came from its id type"))
}

/// Pair updates [`TopCounts`] applies at once: a time's updates are applied in chunks of
/// this many as they arrive.
const ABSORB_CHUNK: usize = 1 << 20;

/// A value held in `Self` that is read and written as `W`: `narrow` fails when it does
/// not fit (never for `W` itself).
trait Narrow<W>: Copy {
    fn narrow(wide: W) -> Option<Self>;
    fn wide(self) -> W;
}

impl<N: Copy + TryFrom<W> + Into<W>, W> Narrow<W> for N {
    fn narrow(wide: W) -> Option<N> {
        N::try_from(wide).ok()
    }
    fn wide(self) -> W {
        self.into()
    }
}

/// An id as [`TopCounts`] holds it: `u32` while every id fits, else `u64`.
trait Id: Narrow<u64> + Ord + Hash + 'static {}
impl<V: Narrow<u64> + Ord + Hash + 'static> Id for V {}

/// A count as [`TopCounts`] holds it: `i32` while every count fits, else `i64`.
trait Count: Narrow<i64> + Ord + Default + 'static {}
impl<C: Narrow<i64> + Ord + Default + 'static> Count for C {}

/// An id or a count that the narrow state cannot hold: it must be widened first.
#[derive(Debug)]
struct Overflow;

/// The state of a [`TopCounts`], narrow until an id or a count does not fit.
enum Cores<O> {
    Narrow(Core<u32, i32, O>),
    Wide(Core<u64, i64, O>),
}

impl<O> Cores<O> {
    /// Buffers the pair update `(k, v, r)` for the next [`Cores::add_counts`].
    fn data(&mut self, k: u64, v: u64, r: i64) {
        if let Cores::Narrow(core) = self {
            match (u32::narrow(k), u32::narrow(v)) {
                (Some(k), Some(v)) => return core.data.push((k, v, r)),
                _ => self.widen(),
            }
        }
        if let Cores::Wide(core) = self {
            core.data.push((k, v, r));
        }
    }

    /// Adds `r` to `k`'s allowed count.
    fn table(&mut self, k: u64, r: isize) {
        if let Cores::Narrow(core) = self {
            match u32::narrow(k) {
                Some(k) => return core.table(k, r),
                None => self.widen(),
            }
        }
        if let Cores::Wide(core) = self {
            core.table(k, r);
        }
    }

    fn buffered(&self) -> usize {
        match self {
            Cores::Narrow(core) => core.data.len(),
            Cores::Wide(core) => core.data.len(),
        }
    }

    /// Applies the buffered pair updates (widening the state if a count outgrows it).
    fn add_counts(&mut self, n: usize) {
        if let Cores::Narrow(core) = self {
            if core.add_counts(n).is_ok() {
                return;
            }
            self.widen();
        }
        if let Cores::Wide(core) = self {
            core.add_counts(n).unwrap_or_else(|_| unreachable!("a 64-bit state holds every count"));
        }
    }

    fn widen(&mut self) {
        if let Cores::Narrow(core) = std::mem::replace(self, Cores::Wide(Core::default())) {
            *self = Cores::Wide(core.widen());
        }
    }
}

/// What finishing a time needs besides the state.
struct Finish<'a, K, C, O, E> {
    /// The list length.
    n: usize,
    /// Whether the configuration changed at this time (every key is recomputed).
    reconfigured: bool,
    config: &'a [C],
    /// `emit` of [`TopCounts::top_counts`], with ids as `u64`.
    emit: &'a mut E,
    out: &'a mut Vec<((K, O), isize)>,
}

/// Every id-typed part of a [`TopCounts`]' state, with ids `V` and counts `C`.
struct Core<V, C, O> {
    state: FxHashMap<V, Ranked<V, C, O>>,
    allowed: FxHashMap<V, isize>,
    readers: Readers<V, V>,
    /// Keys whose allowed count moved at the open time, with whether they were allowed.
    flipped: FxHashMap<V, bool>,
    /// Pair updates not yet applied.
    data: Vec<(V, V, i64)>,
    touched: Vec<V>,
    top: Vec<(u64, i64)>,
    looked: Vec<V>,
    fresh: Vec<O>,
    negatives: u64,
}

impl<V, C, O> Default for Core<V, C, O> {
    fn default() -> Self {
        Core {
            state: FxHashMap::default(),
            allowed: FxHashMap::default(),
            readers: Readers::default(),
            flipped: FxHashMap::default(),
            data: Vec::new(),
            touched: Vec::new(),
            top: Vec::new(),
            looked: Vec::new(),
            fresh: Vec::new(),
            negatives: 0,
        }
    }
}

impl<V: Id, C: Count, O> Core<V, C, O> {
    fn table(&mut self, k: V, r: isize) {
        let count = self.allowed.entry(k).or_default();
        self.flipped.entry(k).or_insert(*count > 0);
        *count += r;
    }

    /// Applies `data` to the keys' counts, one key at a time: its state is found once, and
    /// its counts stay in cache while its updates are applied (a large state is cache
    /// misses); the keys go to `touched`. On [`Overflow`], `data` keeps the updates not
    /// applied.
    fn add_counts(&mut self, n: usize) -> Result<(), Overflow> {
        let data = &mut self.data;
        data.sort_unstable_by(|(k1, v1, _), (k2, v2, _)| (k1, v1).cmp(&(k2, v2)));
        let mut applied = 0;
        let mut result = Ok(());
        'runs: for run in data.chunk_by(|(k1, _, _), (k2, _, _)| k1 == k2) {
            let ranked = self.state.entry(run[0].0).or_default();
            self.touched.push(run[0].0);
            for &(_, v, r) in run {
                if let Err(overflow) = ranked.add(v, r, n, &mut self.negatives) {
                    result = Err(overflow);
                    break 'runs;
                }
                applied += 1;
            }
        }
        data.drain(..applied);
        result
    }
}

impl<V: Id, C: Count, O: Ord + Clone> Core<V, C, O> {
    /// Makes the time's output: recomputes the keys touched at it, those that read a
    /// value whose allowed flag flipped, or every key when the configuration changed;
    /// returns the negative counts met.
    fn finish<K, Cfg, E>(&mut self, f: &mut Finish<'_, K, Cfg, O, E>) -> u64
    where
        K: Clone + TryFrom<u64>,
        E: FnMut(u64, &[(u64, i64)], &[Cfg], &mut Vec<O>),
    {
        for (k, was) in self.flipped.drain() {
            let now = self.allowed.get(&k).is_some_and(|r| *r > 0);
            if self.allowed.get(&k) == Some(&0) {
                self.allowed.remove(&k);
            }
            if now != was {
                self.touched.push(k);
                self.touched.extend(self.readers.of(&k).copied());
            }
        }
        if f.reconfigured {
            self.touched.clear();
            self.touched.extend(self.state.keys().copied());
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        for k in self.touched.drain(..) {
            let Some(ranked) = self.state.get_mut(&k) else { continue };
            self.top.clear();
            self.looked.clear();
            if self.allowed.contains_key(&k) {
                let allowed = &self.allowed;
                ranked.top(f.n, |v| allowed.contains_key(v), &mut self.top, &mut self.looked);
            }
            self.fresh.clear();
            if !self.top.is_empty() {
                (f.emit)(k.wide(), &self.top, f.config, &mut self.fresh);
            }
            self.looked.sort_unstable();
            self.readers.update(&k, &mut ranked.looked, &self.looked);
            replace_output(&id_of::<K>(k.wide()), &mut ranked.out, &mut self.fresh, f.out);
            if ranked.is_empty() {
                self.state.remove(&k);
            }
        }
        std::mem::take(&mut self.negatives)
    }
}

impl<O> Core<u32, i32, O> {
    /// The same state with 64-bit ids and counts.
    fn widen(self) -> Core<u64, i64, O> {
        let wide = |v: u32| u64::from(v);
        let state = self.state.into_iter().map(|(k, ranked)| (wide(k), ranked.widen())).collect();
        let allowed = self.allowed.into_iter().map(|(k, r)| (wide(k), r)).collect();
        let of = self
            .readers
            .of
            .into_iter()
            .map(|(v, keys)| {
                let mut wide_keys = SmallMap::default();
                keys.iter().for_each(|(k, ())| wide_keys.insert(wide(*k), ()));
                (wide(v), wide_keys)
            })
            .collect();
        Core {
            state,
            allowed,
            readers: Readers { of },
            flipped: self.flipped.into_iter().map(|(k, was)| (wide(k), was)).collect(),
            data: self.data.into_iter().map(|(k, v, r)| (wide(k), wide(v), r)).collect(),
            touched: self.touched.into_iter().map(wide).collect(),
            top: self.top,
            looked: Vec::new(),
            fresh: self.fresh,
            negatives: self.negatives,
        }
    }
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
struct Ranked<V, C, O> {
    best: Vec<(Reverse<C>, V)>,
    rest: Option<Box<Rest<V, C>>>,
    out: Vec<O>,
    looked: Vec<V>,
}

/// Every count of a key that has more values than its `best` keeps (or a negative count).
struct Rest<V, C> {
    counts: FxHashMap<V, C>,
    floor: Option<(Reverse<C>, V)>,
}

impl<V, C, O> Default for Ranked<V, C, O> {
    fn default() -> Self {
        Ranked { best: Vec::new(), rest: None, out: Vec::new(), looked: Vec::new() }
    }
}

impl<O> Ranked<u32, i32, O> {
    fn widen(self) -> Ranked<u64, i64, O> {
        let entry = |(Reverse(c), v): (Reverse<i32>, u32)| (Reverse(i64::from(c)), u64::from(v));
        Ranked {
            best: self.best.into_iter().map(entry).collect(),
            rest: self.rest.map(|rest| {
                Box::new(Rest {
                    counts: rest.counts.into_iter().map(|(v, c)| (u64::from(v), i64::from(c))).collect(),
                    floor: rest.floor.map(entry),
                })
            }),
            out: self.out,
            looked: self.looked.into_iter().map(u64::from).collect(),
        }
    }
}

impl<V: Id, C: Count, O> Ranked<V, C, O> {
    /// Adds `r` to `v`'s count; counts the update in `negatives` if that leaves the count
    /// below zero (the value then ranks nowhere until its count is back). `n`: the list
    /// length the key was last ranked for (`best` is kept short for it). A count `C` cannot
    /// hold is an [`Overflow`], with nothing changed.
    fn add(&mut self, v: V, r: i64, n: usize, negatives: &mut u64) -> Result<(), Overflow> {
        if self.rest.is_none() {
            let at = self.best.iter().position(|(_, w)| *w == v);
            let old = at.map_or(0, |i| self.best[i].0 .0.wide());
            let new = old + r;
            if new >= 0 {
                let count = C::narrow(new).ok_or(Overflow)?;
                match at {
                    Some(i) if new > 0 => self.reposition(i, (Reverse(count), v)),
                    Some(i) => {
                        self.best.remove(i);
                    }
                    None if new > 0 => {
                        self.insert((Reverse(count), v));
                        self.shorten(n);
                    }
                    None => {}
                }
                return Ok(());
            }
            self.spill();
        }
        let rest = self.rest.as_mut().expect("spilled");
        let count = rest.counts.entry(v).or_default();
        let old = (*count).wide();
        let new = old + r;
        let Some(narrow) = C::narrow(new) else {
            if old == 0 {
                rest.counts.remove(&v);
            }
            return Err(Overflow);
        };
        *count = narrow;
        if new == 0 {
            rest.counts.remove(&v);
        }
        if new < 0 {
            *negatives += 1;
        }
        let key = (Reverse(narrow), v);
        let ranks = new > 0 && rest.floor.is_none_or(|floor| key < floor);
        let at =
            if old > 0 { self.best.binary_search(&(Reverse(C::narrow(old).expect("held")), v)).ok() } else { None };
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
        Ok(())
    }

    /// Gives the member at `i` the rank key `key` (its value's new count) and moves it to
    /// its place: a count moves by one at a time, so only the members it passes move
    /// (removing and inserting again moved everything after either place).
    fn reposition(&mut self, i: usize, key: (Reverse<C>, V)) {
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
    fn insert(&mut self, key: (Reverse<C>, V)) {
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
    fn top(&mut self, n: usize, allowed: impl Fn(&V) -> bool, top: &mut Vec<(u64, i64)>, looked: &mut Vec<V>) {
        self.shorten(n);
        let Some(rest) = self.rest.as_mut() else {
            Self::scan_best(&self.best, n, &allowed, top, looked);
            return;
        };
        if !Self::scan_best(&self.best, n, &allowed, top, looked) && rest.floor.is_some() {
            let mut all: Vec<(Reverse<C>, V)> =
                rest.counts.iter().filter(|(_, c)| (**c).wide() > 0).map(|(v, c)| (Reverse(*c), *v)).collect();
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
        best: &[(Reverse<C>, V)],
        n: usize,
        allowed: &impl Fn(&V) -> bool,
        top: &mut Vec<(u64, i64)>,
        looked: &mut Vec<V>,
    ) -> bool {
        for &(Reverse(count), v) in best {
            if top.len() == n {
                break;
            }
            looked.push(v);
            if allowed(&v) {
                top.push((v.wide(), count.wide()));
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

    /// How the ids and counts of a run of [`check_top_counts`] grow.
    #[derive(Clone, Copy, PartialEq)]
    enum Growth {
        /// Ids and counts all fit 32 bits.
        Narrow,
        /// Values past 30 are ids above `u32::MAX`, used from time 30 on (the state is
        /// widened then, by a pair or an allowed flag).
        WideIds,
        /// From time 30 on, some updates move a count by 2^31 (widened by a count).
        BigCounts,
    }

    /// `top_counts` against a plain ranking of the accumulated counts, at every time, with
    /// counts rising and falling, values and keys leaving and joining the allowed set, and
    /// the list length changing.
    #[test]
    fn top_counts_matches_plain_ranking() {
        for seed in 0..8u64 {
            check_top_counts(seed, Growth::Narrow);
        }
    }

    /// The same with a state that starts narrow and is widened midway, by an id or by a
    /// count that 32 bits cannot hold.
    #[test]
    fn top_counts_widened_midway_matches_plain_ranking() {
        for seed in 0..4u64 {
            check_top_counts(seed, Growth::WideIds);
            check_top_counts(seed + 10, Growth::BigCounts);
        }
    }

    fn check_top_counts(seed: u64, growth: Growth) {
        timely::execute_directly(move |worker| {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            let got: Rc<RefCell<BTreeMap<(u64, (u64, i64)), isize>>> = Rc::default();
            let probe = ProbeHandle::new();
            let (mut pairs, mut allowed, mut limit) = worker.dataflow::<u64, _, _>(|scope| {
                let (pairs_in, pairs) = scope.new_collection::<(u64, u64), isize>();
                let (allowed_in, allowed) = scope.new_collection::<u64, isize>();
                let (limit_in, limit) = scope.new_collection::<usize, isize>();
                let sink = got.clone();
                pairs
                    .top_counts(
                        allowed,
                        limit,
                        "TopCounts",
                        |n: &[usize]| n.iter().copied().max().unwrap_or(0),
                        |_k, top: &[(u64, i64)], _n: &[usize], out| out.extend(top.iter().copied()),
                    )
                    .inner
                    .inspect(move |(row, _t, r)| *sink.borrow_mut().entry(*row).or_default() += r)
                    .as_collection()
                    .probe_with(&probe);
                (pairs_in, allowed_in, limit_in)
            });
            let id = |x: usize| if growth == Growth::WideIds && x >= 30 { (1u64 << 40) + x as u64 } else { x as u64 };
            let mut counts: BTreeMap<(usize, usize), isize> = BTreeMap::new();
            // Values range wider than keys: a key's values outgrow `best` (4n + 8) and
            // come back under it, so both of `Ranked`'s forms are taken.
            let mut on = [false; 40];
            let mut n = 3usize;
            limit.insert(n);
            for t in 1..60u64 {
                // Ids past 30 (wide in `WideIds`) only from time 30 on.
                let ids = if t < 30 { 30 } else { 40 };
                for _ in 0..rng.random_range(0..80) {
                    let pair = (rng.random_range(0..12usize), rng.random_range(0..ids));
                    let c = counts.entry(pair).or_default();
                    let step = if growth == Growth::BigCounts && t >= 30 && rng.random_bool(0.1) { 1 << 31 } else { 1 };
                    let r = if *c >= step && rng.random_bool(0.4) { -step } else { step };
                    *c += r;
                    pairs.update((id(pair.0), id(pair.1)), r);
                }
                for _ in 0..rng.random_range(0..6) {
                    let k = rng.random_range(0..ids);
                    on[k] = !on[k];
                    allowed.update(id(k), if on[k] { 1 } else { -1 });
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
                let mut want: BTreeMap<(u64, (u64, i64)), isize> = BTreeMap::new();
                for k in (0..12usize).filter(|k| on[*k]) {
                    let mut ranked: Vec<(i64, u64)> = counts
                        .iter()
                        .filter(|((a, b), c)| *a == k && on[*b] && **c > 0)
                        .map(|((_, b), c)| (-(*c as i64), id(*b)))
                        .collect();
                    ranked.sort();
                    for (c, b) in ranked.into_iter().take(n) {
                        want.insert((id(k), (b, -c)), 1);
                    }
                }
                let have: BTreeMap<_, _> =
                    got.borrow().iter().filter(|(_, r)| **r != 0).map(|(k, r)| (*k, *r)).collect();
                assert_eq!(have, want, "seed {seed}, time {t}");
            }
        });
    }
}
