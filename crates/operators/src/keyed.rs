//! Pieces the keyed operators share: the update of an operator that reads a broadcast
//! configuration or table beside its keyed data, the configuration itself, and how a
//! key's output is replaced.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// An update of [`ReduceTotal::reduce_total_with`](crate::ReduceTotal::reduce_total_with)
/// or [`TopCounts`](crate::TopCounts): keyed data, or a configuration or table record (on
/// every worker). The configuration record is boxed: it is rare, and a recall rule is
/// larger than a data update, so unboxed every buffered update would take its size (a
/// pair update 56 bytes instead of 32, in every per-time buffer of `recall_i2i`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Keyed<K, V, R, C, LK> {
    Data(K, V, R),
    Config(Box<C>, isize),
    Table(LK, isize),
}

/// A broadcast configuration: the records with a positive accumulated count (sorted).
pub(crate) struct Config<C> {
    counts: FxHashMap<C, isize>,
    pub(crate) current: Vec<C>,
    moved: bool,
}

impl<C> Default for Config<C> {
    fn default() -> Self {
        Config { counts: FxHashMap::default(), current: Vec::new(), moved: false }
    }
}

impl<C: Ord + Hash + Clone> Config<C> {
    pub(crate) fn update(&mut self, c: C, r: isize) {
        *self.counts.entry(c).or_default() += r;
        self.moved = true;
    }

    /// Applies this time's updates; whether the configuration changed.
    pub(crate) fn settle(&mut self) -> bool {
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

/// Replaces key `k`'s last output `old` (sorted) by `fresh` (sorted here), pushing the
/// rows that left (-1) and joined (+1); `old` becomes `fresh`.
pub(crate) fn replace_output<K: Clone, O: Ord + Clone>(
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
pub(crate) fn only_in<'a, T: Ord>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = &'a T> + 'a {
    a.iter().filter(move |x| b.binary_search(x).is_err())
}

#[cfg(test)]
mod tests {
    use super::Keyed;

    /// A data update of `recall_i2i` (item pairs) is no larger with a recall rule (40
    /// bytes) as the configuration type than with none: the rule is boxed.
    #[test]
    fn a_large_configuration_does_not_grow_every_update() {
        type PairUpdate<C> = Keyed<u64, u64, isize, C, u64>;
        assert_eq!(size_of::<PairUpdate<[u32; 10]>>(), 32);
    }
}
