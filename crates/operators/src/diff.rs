//! Operators on differences alone: [`MapDiff`] rewrites them, [`SumLocally`] pre-sums
//! equal records on a worker before they are exchanged.

use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::{IsZero, Semigroup};
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Capability;

use crate::TotalTime;

/// Rewrites the differences of a collection, dropping those that become zero: how a
/// collection weighted by a tuple of counters is projected onto the counters one output
/// needs.
///
/// Contract: the output holds `(d, t, f(r))` for every input update `(d, t, r)` with
/// `f(r)` non-zero. `f` must be linear (`f(a + b) = f(a) + f(b)`) for the output to be a
/// function of the input collection rather than of how it is batched.
pub trait MapDiff<'s, T: TotalTime, D, R> {
    fn map_diff<R2: IsZero + Clone + 'static>(self, f: impl FnMut(R) -> R2 + 'static) -> VecCollection<'s, T, D, R2>;
}

impl<'s, T, D, R> MapDiff<'s, T, D, R> for VecCollection<'s, T, D, R>
where
    T: TotalTime,
    D: Clone + 'static,
    R: Clone + 'static,
{
    fn map_diff<R2: IsZero + Clone + 'static>(
        self,
        mut f: impl FnMut(R) -> R2 + 'static,
    ) -> VecCollection<'s, T, D, R2> {
        self.inner
            .flat_map(move |(d, t, r)| {
                let r2 = f(r);
                (!r2.is_zero()).then_some((d, t, r2))
            })
            .as_collection()
    }
}

/// Sums the differences of equal records on this worker before they are exchanged.
///
/// For keys that collapse (scene, hour × scene, category) this turns a batch of events
/// into a handful of updates with one hash probe each, sparing the exchange and the
/// arrangement's sort. Contract: the output equals the input as a collection at every
/// time; only how it is batched changes (sums that cancel are dropped).
pub trait SumLocally<'s, T: TotalTime, D, R> {
    fn sum_locally(self) -> VecCollection<'s, T, D, R>;
}

impl<'s, T, D, R> SumLocally<'s, T, D, R> for VecCollection<'s, T, D, R>
where
    T: TotalTime + Hash,
    D: ExchangeData + Hash,
    R: Semigroup + 'static,
{
    fn sum_locally(self) -> VecCollection<'s, T, D, R> {
        let mut sums: FxHashMap<(D, T), R> = FxHashMap::default();
        self.inner
            .unary(Pipeline, "SumLocally", move |_, _| {
                move |input, output| {
                    let mut least: Option<Capability<T>> = None;
                    input.for_each(|cap, data| {
                        if let Some(cap) = cap.retain_least(0) {
                            if least.as_ref().is_none_or(|l| cap.time() < l.time()) {
                                least = Some(cap);
                            }
                        }
                        for (d, t, r) in data.drain(..) {
                            match sums.entry((d, t)) {
                                Entry::Occupied(mut e) => e.get_mut().plus_equals(&r),
                                Entry::Vacant(e) => {
                                    e.insert(r);
                                }
                            }
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
}
