//! [`LatestByPriority`]: a change log with priorities to the current value per key.

use std::hash::Hash;

use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;

use crate::complete::by_complete_time;
use crate::TotalTime;

/// Turns a log of changes `(key, priority, Some(value) | None)` into the current value per
/// key (`None`: the key has no value, e.g. a deleted catalog row).
///
/// Contract: at time t, key k has value v iff, among the changes for k with time ≤ t, the
/// one with the highest priority is `(k, p, Some(v))`; among equal priorities the last
/// applied in the order of a time's sort (`(key, priority)`) wins, so a log should not
/// hold two different changes of one key at one priority. The output is a collection of
/// `(key, value)` with +1/−1 differences at the times the key's value changes. Changes
/// are applied only once their time is complete, so their arrival order (and which worker
/// read them) does not matter. The log's multiplicities are ignored (a change is an
/// event, not a count). State: one entry per key ever seen.
pub trait LatestByPriority<'s, T: TotalTime, K, P, V> {
    fn latest_by_priority(self, name: &str) -> VecCollection<'s, T, (K, V)>;
}

impl<'s, T, K, P, V> LatestByPriority<'s, T, K, P, V> for VecCollection<'s, T, (K, P, Option<V>)>
where
    T: TotalTime,
    K: ExchangeData + Hash + Copy,
    P: ExchangeData + Copy,
    V: ExchangeData + PartialEq,
{
    fn latest_by_priority(self, name: &str) -> VecCollection<'s, T, (K, V)> {
        let mut current: FxHashMap<K, (P, Option<V>)> = FxHashMap::default();
        by_complete_time(
            self,
            name,
            Exchange::new(|((k, _, _), _, _): &((K, P, Option<V>), T, isize)| k.hashed()),
            move |_time, changes, out| {
                // Within a time, apply in priority order: the highest wins.
                changes.sort_unstable_by(|((k1, p1, _), _), ((k2, p2, _), _)| (k1, p1).cmp(&(k2, p2)));
                for ((k, priority, value), _) in changes.drain(..) {
                    let entry = current.entry(k).or_insert((priority, None));
                    if priority < entry.0 {
                        continue;
                    }
                    if entry.1 != value {
                        out.extend(entry.1.take().map(|old| ((k, old), -1isize)));
                        out.extend(value.clone().map(|new| ((k, new), 1isize)));
                    }
                    *entry = (priority, value);
                }
                // A key changed twice in one time emits both steps; consolidate them.
                differential_dataflow::consolidation::consolidate(out);
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::LatestByPriority;
    use crate::testing::check_each_time;

    /// Against a plain replay of the log: per key the change with the highest priority up
    /// to each time, with deletes, re-inserts and changes arriving out of priority order.
    #[test]
    fn latest_by_priority_matches_a_plain_replay() {
        for seed in 0..6u64 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            let mut times: Vec<Vec<((u8, u32, Option<u8>), isize)>> = Vec::new();
            let mut next_priority = 0u32;
            for _ in 0..40 {
                let mut batch = Vec::new();
                for _ in 0..rng.random_range(0..6) {
                    // Distinct priorities, in no particular order of arrival.
                    next_priority += 1;
                    let priority = next_priority * 7919 % 10007;
                    let value = rng.random_bool(0.7).then(|| rng.random_range(0..4u8));
                    batch.push(((rng.random_range(0..5u8), priority, value), 1));
                }
                times.push(batch);
            }
            let want = {
                let times = times.clone();
                move |t: usize| {
                    let mut best: BTreeMap<u8, (u32, Option<u8>)> = BTreeMap::new();
                    for ((k, p, v), _) in times[..=t].iter().flatten() {
                        let e = best.entry(*k).or_insert((*p, *v));
                        if *p >= e.0 {
                            *e = (*p, *v);
                        }
                    }
                    best.into_iter().filter_map(|(k, (_, v))| v.map(|v| ((k, v), 1))).collect()
                }
            };
            check_each_time(&times, |log| log.latest_by_priority("Latest"), want);
        }
    }
}
