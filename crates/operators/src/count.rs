//! [`CountTotalHashed`] and [`ThresholdTotalHashed`]: differential's `count_total` and
//! `threshold_total` with the accumulation per key in a hash map instead of an
//! arrangement — one probe per update instead of sorting and merging batches.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::{Abelian, Semigroup};
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;

use crate::complete::{by_complete_time_absorbing, Step};
use crate::TotalTime;

/// `count_total` with a hash map.
///
/// Contract (as differential's `count_total`): at every time, the output holds one row
/// `(k, acc)` per key whose accumulated difference `acc` is non-zero, with +1/−1
/// differences at the times `acc` changes. State: the non-zero accumulations.
pub trait CountTotalHashed<'s, T: TotalTime, K, R> {
    fn count_total_hashed(self, name: &str) -> VecCollection<'s, T, (K, R)>;
}

impl<'s, T, K, R> CountTotalHashed<'s, T, K, R> for VecCollection<'s, T, K, R>
where
    T: TotalTime,
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
{
    fn count_total_hashed(self, name: &str) -> VecCollection<'s, T, (K, R)> {
        accumulate_total(self, name, |k, old, new, out| {
            if old != new {
                out.extend(old.map(|o| ((k.clone(), o.clone()), -1isize)));
                out.extend(new.map(|n| ((k.clone(), n.clone()), 1isize)));
            }
        })
    }
}

/// `threshold_total` with a hash map.
///
/// Contract (as differential's `threshold_total`): at every time, each key with a
/// non-zero accumulation `acc` is in the output with difference `thresh(acc)` (a zero
/// accumulation thresholds to zero: the key is absent). State: the non-zero accumulations.
pub trait ThresholdTotalHashed<'s, T: TotalTime, K, R> {
    fn threshold_total_hashed<R2, F>(self, name: &str, thresh: F) -> VecCollection<'s, T, K, R2>
    where
        R2: ExchangeData + Abelian,
        F: FnMut(&R) -> R2 + 'static;
}

impl<'s, T, K, R> ThresholdTotalHashed<'s, T, K, R> for VecCollection<'s, T, K, R>
where
    T: TotalTime,
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
{
    fn threshold_total_hashed<R2, F>(self, name: &str, mut thresh: F) -> VecCollection<'s, T, K, R2>
    where
        R2: ExchangeData + Abelian,
        F: FnMut(&R) -> R2 + 'static,
    {
        accumulate_total(self, name, move |k, old, new, out| {
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
}

/// Sums the updates of each time per key into a hash map as they arrive (a time's updates
/// are not held until it completes: only the keys it touched, with their accumulation
/// before it); calls `emit(key, before, after, out)` for each key whose accumulation
/// changed at that time (`None`: zero).
fn accumulate_total<'s, T, K, R, D2, R2, F>(
    input: VecCollection<'s, T, K, R>,
    name: &str,
    mut emit: F,
) -> VecCollection<'s, T, D2, R2>
where
    T: TotalTime,
    K: ExchangeData + Hash,
    R: ExchangeData + Semigroup,
    D2: ExchangeData,
    R2: ExchangeData,
    F: FnMut(&K, Option<&R>, Option<&R>, &mut Vec<(D2, R2)>) + 'static,
{
    let mut state: FxHashMap<K, R> = FxHashMap::default();
    // The keys the open time touched, with their accumulation before it.
    let mut before: FxHashMap<K, Option<R>> = FxHashMap::default();
    let pact = Exchange::new(|(k, _, _): &(K, T, R)| k.hashed());
    by_complete_time_absorbing(input, name, pact, move |step| {
        match step {
            Step::Absorb(_, updates) => {
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
            }
            Step::Finish(_, out) => {
                for (k, old) in before.drain() {
                    let new = state.get(&k).filter(|r| !r.is_zero()).cloned();
                    if new.is_none() {
                        state.remove(&k);
                    }
                    let old = old.filter(|r| !r.is_zero());
                    emit(&k, old.as_ref(), new.as_ref(), out);
                }
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use differential_dataflow::operators::{CountTotal, ThresholdTotal};
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::{CountTotalHashed, ThresholdTotalHashed};
    use crate::testing::check_against;

    /// Random updates of a few keys, with retractions that cross zero (counts are
    /// differences here, not multiplicities: negative accumulations are legal).
    fn updates(seed: u64) -> Vec<Vec<(u8, isize)>> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        (0..40)
            .map(|_| {
                (0..rng.random_range(0..15))
                    .map(|_| (rng.random_range(0..7u8), rng.random_range(-2i64..4) as isize))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn count_total_hashed_matches_count_total() {
        for seed in 0..8 {
            check_against(&updates(seed), |c| c.count_total_hashed("Counted"), |c| c.count_total());
        }
    }

    #[test]
    fn threshold_total_hashed_matches_threshold_total() {
        for seed in 0..8 {
            // A distinct over positive counts, and a clamp that keeps the sign.
            check_against(
                &updates(seed),
                |c| c.threshold_total_hashed("Distinct", |r: &isize| if *r > 0 { 1isize } else { 0 }),
                |c| c.threshold_total(|_k, r: &isize| if *r > 0 { 1isize } else { 0 }),
            );
            check_against(
                &updates(seed + 100),
                |c| c.threshold_total_hashed("Clamp", |r: &isize| (*r).clamp(-2, 2)),
                |c| c.threshold_total(|_k, r: &isize| (*r).clamp(-2, 2)),
            );
        }
    }
}
