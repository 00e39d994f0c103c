//! [`SmallMap`]: a map for the millions of small per-key tables of a large state (an
//! item's users, a user's categories, the readers of a list entry).
//!
//! A hash map has a minimum of buckets and a trailing control group: one entry costs
//! ~200 bytes, and most of these tables hold a handful. A `SmallMap` is a sorted vector
//! grown by half (one entry: its own size), and a hash map past [`SmallMap::FEW`] entries
//! (and stays one), so a popular key's table still costs a probe, not a shift.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// See the module's doc.
#[derive(Debug)]
pub enum SmallMap<K, V> {
    /// Sorted by key.
    Few(Vec<(K, V)>),
    Many(FxHashMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Ord + Hash + Copy, V> SmallMap<K, V> {
    /// Past this many entries the map is a hash map.
    pub const FEW: usize = 32;

    pub fn get(&self, k: &K) -> Option<&V> {
        match self {
            SmallMap::Few(few) => few.binary_search_by(|(x, _)| x.cmp(k)).ok().map(|i| &few[i].1),
            SmallMap::Many(many) => many.get(k),
        }
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self {
            SmallMap::Few(few) => few.binary_search_by(|(x, _)| x.cmp(k)).ok().map(|i| &mut few[i].1),
            SmallMap::Many(many) => many.get_mut(k),
        }
    }

    /// Sets `k`'s value.
    pub fn insert(&mut self, k: K, v: V) {
        match self {
            SmallMap::Few(few) => match few.binary_search_by(|(x, _)| x.cmp(&k)) {
                Ok(i) => few[i].1 = v,
                Err(_) if few.len() == Self::FEW => {
                    let mut many: FxHashMap<K, V> = few.drain(..).collect();
                    many.insert(k, v);
                    *self = SmallMap::Many(many);
                }
                Err(i) => {
                    // Grow by half, not double: most tables keep a few entries for good.
                    if few.len() == few.capacity() {
                        few.reserve_exact((few.len() / 2).max(1));
                    }
                    few.insert(i, (k, v));
                }
            },
            SmallMap::Many(many) => {
                many.insert(k, v);
            }
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        match self {
            SmallMap::Few(few) => few.binary_search_by(|(x, _)| x.cmp(k)).ok().map(|i| few.remove(i).1),
            SmallMap::Many(many) => many.remove(k),
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let (few, many) = match self {
            SmallMap::Few(few) => (Some(few.iter().map(|(k, v)| (k, v))), None),
            SmallMap::Many(many) => (None, Some(many.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    pub fn len(&self) -> usize {
        match self {
            SmallMap::Few(few) => few.len(),
            SmallMap::Many(many) => many.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::SmallMap;

    /// Against a `BTreeMap`, through inserts, overwrites and removes, in tables that stay
    /// small and tables that pass [`SmallMap::FEW`] entries.
    #[test]
    fn small_map_matches_btree_map() {
        for seed in 0..12u64 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            let keys = [5u32, 40, 300][seed as usize % 3];
            let mut map: SmallMap<u32, u64> = SmallMap::default();
            let mut plain: BTreeMap<u32, u64> = BTreeMap::new();
            for step in 0..4_000u64 {
                let k = rng.random_range(0..keys);
                if rng.random_bool(0.4) {
                    assert_eq!(map.remove(&k), plain.remove(&k), "seed {seed}");
                } else {
                    map.insert(k, step);
                    plain.insert(k, step);
                }
                let probe = rng.random_range(0..keys);
                assert_eq!(map.get(&probe), plain.get(&probe), "seed {seed}");
                if let (Some(v), Some(w)) = (map.get_mut(&probe), plain.get_mut(&probe)) {
                    *v += 1;
                    *w += 1;
                }
                assert_eq!(map.get_mut(&probe).is_some(), plain.contains_key(&probe), "seed {seed}");
                let mut have: Vec<(u32, u64)> = map.iter().map(|(k, v)| (*k, *v)).collect();
                have.sort();
                assert_eq!(have, plain.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), "seed {seed}");
                assert_eq!(map.len(), plain.len());
            }
        }
    }
}
