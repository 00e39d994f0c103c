//! [`ReduceTotal`]: a per-key reduction kept in hash maps, for small groups (top-k per
//! user or category): no trace, no history replay of the general `reduce`.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concat, Exchange as _};

use crate::complete::by_complete_time;
use crate::keyed::{replace_output, Config, Keyed};
use crate::negative::{self, Signed};
use crate::TotalTime;

/// A per-key reduction for totally ordered time.
///
/// Contract of `reduce_total(name, logic)`: at every time t, for every key k whose
/// accumulated input `{(v, r) : r ≠ 0}` (over updates with time ≤ t) is non-empty, the
/// output holds the rows `(k, o)` for each `o` that `logic(k, accumulated)` pushes, with
/// +1/−1 differences at the times that set changes (as differential's `reduce` with
/// outputs of multiplicity 1). `logic` sees the accumulation in no particular order, and
/// must not depend on it. Accumulations must not be negative: a negative one is left out
/// of what `logic` sees and reported to [`negative`] under `name`. State: the accumulation
/// and last output of each live key; keys whose accumulation empties are dropped.
///
/// `reduce_total_with(config, name, logic)` adds a configuration, a small collection every
/// worker sees whole: `logic(k, accumulated, config)` where `config` is the set of records
/// with a positive accumulated count at t (sorted). When the configuration changes every
/// live key is recomputed; otherwise only the keys whose input changed (rules, the CTR
/// prior, a base cut-off).
pub trait ReduceTotal<'s, T: TotalTime, K, V, R> {
    fn reduce_total<O, L>(self, name: &str, logic: L) -> VecCollection<'s, T, (K, O)>
    where
        O: ExchangeData,
        L: FnMut(&K, &[(V, R)], &mut Vec<O>) + 'static;

    fn reduce_total_with<C, O, L>(
        self,
        config: VecCollection<'s, T, C>,
        name: &str,
        logic: L,
    ) -> VecCollection<'s, T, (K, O)>
    where
        C: ExchangeData + Hash,
        O: ExchangeData,
        L: FnMut(&K, &[(V, R)], &[C], &mut Vec<O>) + 'static;
}

impl<'s, T, K, V, R> ReduceTotal<'s, T, K, V, R> for VecCollection<'s, T, (K, V), R>
where
    T: TotalTime,
    K: ExchangeData + Hash,
    V: ExchangeData + Hash,
    R: ExchangeData + Semigroup + Signed,
{
    fn reduce_total<O, L>(self, name: &str, mut logic: L) -> VecCollection<'s, T, (K, O)>
    where
        O: ExchangeData,
        L: FnMut(&K, &[(V, R)], &mut Vec<O>) + 'static,
    {
        let mut groups = Groups::new(name);
        let pact = Exchange::new(|((k, _), _, _): &((K, V), T, R)| k.hashed());
        by_complete_time(self, name, pact, move |_time, updates, out| {
            for ((k, v), r) in updates.drain(..) {
                groups.update(k, v, r);
            }
            groups.recompute(out, |k, values, fresh| logic(k, values, fresh));
        })
    }

    fn reduce_total_with<C, O, L>(
        self,
        config: VecCollection<'s, T, C>,
        name: &str,
        mut logic: L,
    ) -> VecCollection<'s, T, (K, O)>
    where
        C: ExchangeData + Hash,
        O: ExchangeData,
        L: FnMut(&K, &[(V, R)], &[C], &mut Vec<O>) + 'static,
    {
        let data = self
            .inner
            .exchange(|((k, _), _, _): &((K, V), T, R)| k.hashed())
            .map(|((k, v), t, r)| (Keyed::<K, V, R, C, ()>::Data(k, v, r), t, ()));
        let config_updates = config.inner.broadcast().map(|(c, t, r)| (Keyed::Config(Box::new(c), r), t, ()));
        let updates = data.concat(config_updates).as_collection();
        let mut groups = Groups::new(name);
        let mut config = Config::default();
        by_complete_time(updates, name, Pipeline, move |_time, updates, out| {
            for (update, ()) in updates.drain(..) {
                match update {
                    Keyed::Data(k, v, r) => groups.update(k, v, r),
                    Keyed::Config(c, r) => config.update(*c, r),
                    Keyed::Table(..) => unreachable!("no table"),
                }
            }
            if config.settle() {
                groups.touch_all();
            }
            groups.recompute(out, |k, values, fresh| logic(k, values, &config.current, fresh));
        })
    }
}

/// The state of a [`ReduceTotal`]: per key its accumulated input and its last output, and
/// the keys touched in the current time.
struct Groups<K, V, R, O> {
    name: String,
    state: FxHashMap<K, (FxHashMap<V, R>, Vec<O>)>,
    touched: Vec<K>,
    values: Vec<(V, R)>,
    fresh: Vec<O>,
}

impl<K, V, R, O> Groups<K, V, R, O>
where
    K: ExchangeData + Hash,
    V: ExchangeData + Hash,
    R: Semigroup + Signed + Clone,
    O: ExchangeData,
{
    fn new(name: &str) -> Self {
        Groups {
            name: name.to_string(),
            state: FxHashMap::default(),
            touched: Vec::new(),
            values: Vec::new(),
            fresh: Vec::new(),
        }
    }

    fn update(&mut self, k: K, v: V, r: R) {
        let (acc, _) = self.state.entry(k.clone()).or_default();
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
        self.touched.push(k);
    }

    fn touch_all(&mut self) {
        self.touched.clear();
        self.touched.extend(self.state.keys().cloned());
    }

    /// Runs `logic` for every touched key and emits the changes of its output.
    fn recompute(&mut self, out: &mut Vec<((K, O), isize)>, mut logic: impl FnMut(&K, &[(V, R)], &mut Vec<O>)) {
        let Groups { name, state, touched, values, fresh } = self;
        touched.sort_unstable();
        touched.dedup();
        let mut negatives = 0u64;
        for k in touched.drain(..) {
            let Some((acc, old)) = state.get_mut(&k) else { continue };
            values.clear();
            for (v, r) in acc.iter() {
                if r.is_negative() {
                    negatives += 1;
                } else {
                    values.push((v.clone(), r.clone()));
                }
            }
            fresh.clear();
            if !values.is_empty() {
                logic(&k, values, fresh);
            }
            replace_output(&k, old, fresh, out);
            if acc.is_empty() {
                state.remove(&k);
            }
        }
        negative::report(name, negatives);
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::ReduceTotal;
    use crate::testing::{check_against, check_each_time};

    /// Random updates of (key, value) pairs, inserted and retracted (never below zero).
    fn updates(seed: u64, keys: u8, values: u8) -> Vec<Vec<((u8, u8), isize)>> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut held = std::collections::BTreeMap::new();
        (0..40)
            .map(|_| {
                (0..rng.random_range(0..12))
                    .map(|_| {
                        let d = (rng.random_range(0..keys), rng.random_range(0..values));
                        let n: &mut isize = held.entry(d).or_default();
                        let r = if *n > 0 && rng.random_bool(0.4) { -1 } else { rng.random_range(1i64..3) as isize };
                        *n += r;
                        (d, r)
                    })
                    .collect()
            })
            .collect()
    }

    /// A top-2 by count desc, value asc: what the dataflows' rankings do.
    fn top2(values: &mut Vec<(u8, isize)>, out: &mut Vec<(u8, isize)>) {
        values.sort_by_key(|(v, r)| (-*r, *v));
        out.extend(values.iter().take(2).copied());
    }

    /// `reduce_total` equals differential's `reduce` with the same logic, at every time.
    #[test]
    fn reduce_total_matches_differentials_reduce() {
        for seed in 0..6 {
            check_against(
                &updates(seed, 6, 8),
                |c| {
                    c.reduce_total("Top2", |_k, values: &[(u8, isize)], out: &mut Vec<(u8, isize)>| {
                        top2(&mut values.to_vec(), out)
                    })
                },
                |c| {
                    c.reduce(|_k, input: &[(&u8, isize)], output: &mut Vec<((u8, isize), isize)>| {
                        let mut mine = Vec::new();
                        top2(&mut input.iter().map(|(v, r)| (**v, *r)).collect(), &mut mine);
                        output.extend(mine.into_iter().map(|o| (o, 1)));
                    })
                },
            );
        }
    }

    /// `reduce_total_with` recomputes every key when the configuration changes: the list
    /// length comes from it, and the output is the top-n with the current n.
    #[test]
    fn reduce_total_with_follows_the_configuration() {
        for seed in 0..6 {
            let times = updates(seed, 5, 8);
            // The configuration rides on the same input: value 255 carries n in the key.
            let mut with_config: Vec<Vec<((u8, u8), isize)>> = times.clone();
            let mut n_at = Vec::new();
            let mut n = 1u8;
            for (t, batch) in with_config.iter_mut().enumerate() {
                if t % 7 == 3 {
                    batch.push(((n, 255), -1));
                    n = n % 4 + 1;
                    batch.push(((n, 255), 1));
                } else if t == 0 {
                    batch.push(((n, 255), 1));
                }
                n_at.push(n);
            }
            let want = move |t: usize| {
                let mut acc: std::collections::BTreeMap<(u8, u8), isize> = Default::default();
                for ((k, v), r) in times[..=t].iter().flatten() {
                    *acc.entry((*k, *v)).or_default() += r;
                }
                let mut rows = std::collections::BTreeMap::new();
                for k in 0..5u8 {
                    let mut values: Vec<(u8, isize)> =
                        acc.iter().filter(|((a, _), r)| *a == k && **r != 0).map(|((_, v), r)| (*v, *r)).collect();
                    values.sort_by_key(|(v, r)| (-*r, *v));
                    for (v, r) in values.into_iter().take(n_at[t] as usize) {
                        rows.insert((k, (v, r)), 1);
                    }
                }
                rows
            };
            check_each_time(
                &with_config,
                |c| {
                    let config = c.clone().filter(|(_, v)| *v == 255).map(|(n, _)| n as usize);
                    c.filter(|(_, v)| *v != 255).reduce_total_with(
                        config,
                        "TopN",
                        |_k, values: &[(u8, isize)], n: &[usize], out: &mut Vec<(u8, isize)>| {
                            let mut values = values.to_vec();
                            values.sort_by_key(|(v, r)| (-*r, *v));
                            out.extend(values.into_iter().take(n.iter().copied().max().unwrap_or(0)));
                        },
                    )
                },
                want,
            );
        }
    }

    /// A negative accumulation is not handed to the logic, and is reported.
    #[test]
    fn negative_accumulations_are_reported_not_computed() {
        let times = vec![vec![((1u8, 1u8), 1)], vec![((1, 2), -1)], vec![((1, 2), 1)]];
        check_each_time(
            &times,
            |c| {
                c.reduce_total("NegativeCheck", |_k, values: &[(u8, isize)], out: &mut Vec<u8>| {
                    out.extend(values.iter().map(|(v, _)| *v))
                })
            },
            |_t| [((1u8, 1u8), 1)].into_iter().collect(),
        );
        assert!(crate::negative::seen().iter().any(|(name, n)| name == "NegativeCheck" && *n > 0));
    }
}
