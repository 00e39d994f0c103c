//! [`PairsWithin`]: per key, the co-occurring pairs among its latest records (the i2i
//! pairs: items engaged by one user within a session gap).

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;

use crate::complete::by_complete_time;
use crate::negative;
use crate::TotalTime;

/// Co-occurrence within a distance among each key's latest records in a sliding window:
/// for records `(key, (value, position))`, the pairs of distinct values that some key holds
/// at positions at most `gap` apart among its `latest` latest records, each counted once per
/// key, in both orders: `(a, b)` and `(b, a)` (what a consumer keyed by either value reads,
/// without a mirroring pass over every update).
///
/// Contract: a record counts from its time until `expires(position)` (an update at or
/// after that time counts not at all), as if windowed by
/// [`Windowed::windowed`](crate::Windowed::windowed). A key's records at t are the
/// distinct `(position, value)` with a positive accumulated multiplicity (updates at
/// times ≤ t) and `expires(position) > t`; only its `latest` greatest by (position, value)
/// take part. At time t, the differences of `(a, b)` and of `(b, a)` each accumulate to
/// the number of keys holding `a` at p and `b` at q among those, with a ≠ b and
/// `|p − q| ≤ gap`. `expires` must not decrease with the position. The input must not
/// accumulate to negative multiplicities: a record that does is left out and reported to
/// [`negative`].
///
/// Cost: an update touches only the key's taking-part records within `gap` of its
/// position (at most `latest`), so a key's work per record is bounded however many
/// records it has; no per-key pair counts are kept (whether a pair is still held is
/// re-checked among at most `latest` records, and only for a value the key holds twice).
/// Expiry comes from a queue of (time, key) — the key's oldest records leave at their
/// time — instead of a retraction per record sent through the dataflow and held until
/// then: a record costs one exchange and 24 bytes while it is held, plus a queue entry
/// per key and expiry time.
pub trait PairsWithin<'s, T: TotalTime, K, V> {
    fn pairs_within<E>(self, gap: u64, latest: usize, expires: E, name: &str) -> VecCollection<'s, T, (V, V)>
    where
        E: Fn(u64) -> T + 'static;
}

impl<'s, T, K, V> PairsWithin<'s, T, K, V> for VecCollection<'s, T, (K, (V, u64))>
where
    T: TotalTime,
    K: ExchangeData + Hash,
    V: ExchangeData + Hash + Copy,
{
    fn pairs_within<E>(self, gap: u64, latest: usize, expires: E, name: &str) -> VecCollection<'s, T, (V, V)>
    where
        E: Fn(u64) -> T + 'static,
    {
        let mut state: FxHashMap<K, Recent<V>> = FxHashMap::default();
        // Per expiry time, the keys holding a record that expires then.
        let mut queue: BTreeMap<T, Vec<K>> = BTreeMap::new();
        let mut deltas: FxHashMap<(V, V), isize> = FxHashMap::default();
        let mut scratch = Scratch::default();
        let mut expired: Vec<(u64, V, isize)> = Vec::new();
        let name_owned = name.to_string();
        by_complete_time(
            self,
            name,
            Exchange::new(|((k, _), _, _): &((K, (V, u64)), T, isize)| k.hashed()),
            move |time, updates, out| {
                let mut negatives = 0u64;
                // What expires by now leaves first: each key's oldest records.
                while let Some(entry) = queue.first_entry() {
                    if entry.key() > time {
                        break;
                    }
                    let mut keys = entry.remove();
                    keys.sort_unstable();
                    keys.dedup();
                    for k in keys {
                        let Some(recent) = state.get_mut(&k) else { continue };
                        expired.clear();
                        expired.extend(recent.records.iter().take_while(|(p, _, _)| expires(*p) <= *time).copied());
                        for &(pos, v, m) in &expired {
                            negatives += recent.update((pos, v), -m, gap, latest, &mut scratch, &mut deltas);
                        }
                        if recent.records.is_empty() {
                            state.remove(&k);
                        }
                    }
                }
                // Net change per record, one key at a time (so no record is seen
                // half-updated); an update of a record already expired counts not at all.
                updates.retain(|((_, (_, pos)), _)| expires(*pos) > *time);
                updates.sort_unstable_by(|((k1, (v1, p1)), _), ((k2, (v2, p2)), _)| (k1, p1, v1).cmp(&(k2, p2, v2)));
                for run in updates.chunk_by(|((k1, _), _), ((k2, _), _)| k1 == k2) {
                    let k = &run[0].0 .0;
                    let recent = state.entry(k.clone()).or_default();
                    for same in run.chunk_by(|(d1, _), (d2, _)| d1 == d2) {
                        let (v, pos) = same[0].0 .1;
                        let r: isize = same.iter().map(|(_, r)| r).sum();
                        if r != 0 {
                            let held = recent.records.len();
                            negatives += recent.update((pos, v), r, gap, latest, &mut scratch, &mut deltas);
                            if recent.records.len() > held {
                                let keys = queue.entry(expires(pos)).or_default();
                                if keys.last() != Some(k) {
                                    keys.push(k.clone());
                                }
                            }
                        }
                    }
                    if recent.records.is_empty() {
                        state.remove(k);
                    }
                }
                updates.clear();
                negative::report(&name_owned, std::mem::take(&mut negatives));
                for ((a, b), r) in deltas.drain().filter(|(_, r)| *r != 0) {
                    out.push(((a, b), r));
                    out.push(((b, a), r));
                }
                queue.keys().next().cloned()
            },
        )
    }
}

/// One key's records for [`PairsWithin`]: `(position, value, multiplicity)`, all
/// positive, sorted by (position, value), in a ring buffer (records mostly arrive at the
/// back and expire at the front, so either end moves nothing; 24 bytes a record); those at
/// or above `cut` (the least of the `latest` greatest) take part.
struct Recent<V> {
    records: VecDeque<(u64, V, isize)>,
    cut: Option<(u64, V)>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent { records: VecDeque::new(), cut: None }
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
    /// The index of the first record at or after `key` (`after`: after it).
    fn index(&self, key: (u64, V), after: bool) -> usize {
        self.records.partition_point(|&(p, v, _)| if after { (p, v) <= key } else { (p, v) < key })
    }

    fn key(&self, i: usize) -> Option<(u64, V)> {
        self.records.get(i).map(|&(p, v, _)| (p, v))
    }

    fn takes_part(&self, key: (u64, V)) -> bool {
        self.cut.is_some_and(|cut| key >= cut)
    }

    /// The records that take part, in (position, value) order.
    fn taking_part(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        let from = self.cut.map_or(self.records.len(), |cut| self.index(cut, false));
        self.records.range(from..).map(|&(p, v, _)| (p, v))
    }

    /// Adds `r` to the multiplicity of `key`; when that makes the record appear or vanish,
    /// moves the cut and adds the resulting pair changes to `deltas`. Returns 1 if the
    /// multiplicity is now negative (the record then takes no part), else 0.
    fn update(
        &mut self,
        key: (u64, V),
        r: isize,
        gap: u64,
        latest: usize,
        scratch: &mut Scratch<V>,
        deltas: &mut FxHashMap<(V, V), isize>,
    ) -> u64 {
        let at = self.index(key, false);
        let (old, new) = match self.records.get_mut(at) {
            Some(record) if (record.0, record.1) == key => {
                let old = record.2;
                record.2 += r;
                if record.2 <= 0 {
                    self.records.remove(at);
                }
                (old, old + r)
            }
            _ => {
                if r > 0 {
                    self.records.insert(at, (key.0, key.1, r));
                }
                (0, r)
            }
        };
        let len = self.records.len();
        match (old > 0, new > 0) {
            (false, true) => {
                if len <= latest {
                    // Everything takes part; the new record too.
                    self.cut = Some(self.cut.map_or(key, |c| c.min(key)));
                    self.pair_deltas(key, 1, gap, scratch, deltas);
                } else if self.cut.is_some_and(|c| key > c) {
                    // The new record takes part and pushes out the least one.
                    self.pair_deltas(key, 1, gap, scratch, deltas);
                    let out = self.cut.expect("a cut with records");
                    self.cut = self.key(self.index(out, true));
                    self.pair_deltas(out, -1, gap, scratch, deltas);
                }
            }
            (true, false) if self.takes_part(key) => {
                self.pair_deltas(key, -1, gap, scratch, deltas);
                if len >= latest {
                    // The greatest record left out comes in.
                    let cut = self.cut.expect("a cut with records");
                    let back = self.key(self.index(cut, false) - 1).expect("a record left out");
                    self.cut = Some(back);
                    self.pair_deltas(back, 1, gap, scratch, deltas);
                } else {
                    self.cut = self.key(0);
                }
            }
            _ => {}
        }
        u64::from(new < 0)
    }

    /// The pair changes of `x` joining (`sign` 1) or leaving (−1) the taking-part records,
    /// the others being those taking part now apart from `x`: a pair `{v, w}` with a
    /// record of w near x changes unless another record of v is near one of w. Each pair
    /// is added once, as `(less, greater)`.
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
        let from = self.records.partition_point(|&(q, _, _)| q < p.saturating_sub(gap));
        near.extend(
            self.records
                .range(from..)
                .take_while(|&&(q, _, _)| q <= p.saturating_add(gap))
                .filter(|&&(q, w, _)| w != v && self.takes_part((q, w)))
                .map(|&(_, w, _)| w),
        );
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
                *deltas.entry((v.min(w), v.max(w))).or_default() += sign;
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

    use super::PairsWithin;

    /// `pairs_within` against a plain count over each key's latest records, at every time,
    /// with records coming and going (duplicates too), late positions, keys that hold
    /// more records than take part, and (even seeds) records expiring 25 after their
    /// position, updates after that counting not at all.
    #[test]
    fn pairs_within_matches_plain_count() {
        for seed in 0..16u64 {
            let latest = 1 + seed as usize % 5;
            let expires = move |p: u64| if seed % 2 == 0 { p + 25 } else { u64::MAX };
            timely::execute_directly(move |worker| {
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let got: Rc<RefCell<BTreeMap<(u32, u32), isize>>> = Rc::default();
                let probe = ProbeHandle::new();
                let mut input = worker.dataflow::<u64, _, _>(|scope| {
                    let (input, records) = scope.new_collection::<(u8, (u32, u64)), isize>();
                    let sink = got.clone();
                    records
                        .pairs_within(3, latest, expires, "PairsWithin")
                        .inner
                        .inspect(move |(pair, _t, r)| *sink.borrow_mut().entry(*pair).or_default() += r)
                        .as_collection()
                        .probe_with(&probe);
                    input
                });
                let mut held: BTreeMap<(u8, (u32, u64)), isize> = BTreeMap::new();
                // What counts: the updates before the record's expiry.
                let mut counted: BTreeMap<(u8, (u32, u64)), isize> = BTreeMap::new();
                for t in 1..50u64 {
                    let now = t - 1;
                    for _ in 0..rng.random_range(0..25) {
                        let record =
                            (rng.random_range(0..4u8), (rng.random_range(0..6u32), rng.random_range(0..20u64)));
                        let n = held.entry(record).or_default();
                        let r = if *n > 0 && rng.random_bool(0.45) { -1 } else { 1 };
                        *n += r;
                        if now < expires(record.1 .1) {
                            *counted.entry(record).or_default() += r;
                        }
                        input.update(record, r);
                    }
                    input.advance_to(t);
                    input.flush();
                    worker.step_while(|| probe.less_than(&t));
                    let mut want: BTreeMap<(u32, u32), isize> = BTreeMap::new();
                    for key in 0..4u8 {
                        let mut mine: Vec<(u64, u32)> = counted
                            .iter()
                            .filter(|((k, (_, p)), n)| *k == key && **n > 0 && expires(*p) > now)
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
