//! Behaviour counts per counterpart, held compactly: the all-time per-(item, user) state of
//! tagging and the per-(user, category) state of the user stage, which grow with the
//! distinct pairs of the whole history (tens of millions at the full Taobao shape).
//!
//! A [`CountsTable`] maps an id to its five counts. Almost every pair holds a handful of
//! events, so the counts are kept as five bytes inline and held in full beside the table
//! only when one leaves `0..=255` (exact either way), with 32-bit ids while they fit, in a
//! [`SmallMap`] (12 bytes an id while the table is small).

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use std::hash::Hash;

use operators::small_map::SmallMap;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::model::Event;
use crate::stats::Stats;

/// Behaviour counts: impressions, clicks, favs, carts, buys. Also a difference type: the
/// behaviour counts of a collection's records in 40 bytes, where a `Stats` takes 80.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Counts(pub [i64; 5]);

impl IsZero for Counts {
    fn is_zero(&self) -> bool {
        Counts::is_zero(self)
    }
}

impl Semigroup for Counts {
    fn plus_equals(&mut self, rhs: &Self) {
        self.add(rhs);
    }
}

impl Monoid for Counts {
    fn zero() -> Self {
        Counts::default()
    }
}

impl Abelian for Counts {
    fn negate(&mut self) {
        self.0.iter_mut().for_each(|n| *n = -*n);
    }
}

impl Multiply<isize> for Counts {
    type Output = Counts;
    fn multiply(self, rhs: &isize) -> Counts {
        Counts(self.0.map(|n| n * *rhs as i64))
    }
}

impl Counts {
    /// An event's behaviour counts (one of them 1).
    pub fn of_event(e: &Event) -> Counts {
        Counts::of(&Stats::behaviors_of(e))
    }

    pub fn of(s: &Stats) -> Counts {
        Counts([s.impressions, s.clicks, s.favs, s.carts, s.buys])
    }

    pub fn add(&mut self, o: &Counts) {
        self.0.iter_mut().zip(o.0).for_each(|(a, b)| *a += b);
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 5]
    }

    pub fn stats(&self) -> Stats {
        let [impressions, clicks, favs, carts, buys] = self.0;
        Stats { impressions, clicks, favs, carts, buys, ..Stats::default() }
    }

    /// The `uv` / `buyers` contribution of a counterpart with these counts.
    pub fn reach(&self) -> Stats {
        Stats::reach(self.0.iter().sum::<i64>() != 0, self.0[4] != 0)
    }
}

/// A counterpart's counts while each fits a byte: `[0; 5]` (no counterpart has zero
/// counts) marks one whose counts are held in full beside the table.
type Small = [u8; 5];

const IN_FULL: Small = [0; 5];

fn small(c: &Counts) -> Option<Small> {
    let mut s = IN_FULL;
    for (n, c) in s.iter_mut().zip(c.0) {
        *n = u8::try_from(c).ok()?;
    }
    Some(s)
}

/// One width of a [`CountsTable`]: the small counts inline, the rest in full aside.
#[derive(Debug)]
struct Table<K> {
    small: SmallMap<K, Small>,
    in_full: Option<Box<FxHashMap<K, Counts>>>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table { small: SmallMap::default(), in_full: None }
    }
}

/// The counts of `id`, whose entry is `s`.
fn unpack<K: Hash + Eq>(in_full: &Option<Box<FxHashMap<K, Counts>>>, id: &K, s: &Small) -> Counts {
    match *s {
        IN_FULL => in_full.as_ref().and_then(|m| m.get(id)).copied().expect("held in full"),
        s => Counts(s.map(i64::from)),
    }
}

impl<K: Ord + Hash + Copy> Table<K> {
    fn add(&mut self, id: K, delta: &Counts) -> (Counts, Counts) {
        let Table { small: table, in_full } = self;
        let held = table.get_mut(&id);
        let was_in_full = held.as_deref() == Some(&IN_FULL);
        let before = held.as_deref().map(|s| unpack(in_full, &id, s)).unwrap_or_default();
        let mut after = before;
        after.add(delta);
        // The new entry (`None`: the id leaves).
        let entry = (!after.is_zero()).then(|| small(&after).unwrap_or(IN_FULL));
        match (held, entry) {
            (Some(_), None) => drop(table.remove(&id)),
            (Some(slot), Some(e)) => *slot = e,
            (None, Some(e)) => table.insert(id, e),
            (None, None) => {}
        }
        match entry {
            Some(IN_FULL) => drop(in_full.get_or_insert_with(Box::default).insert(id, after)),
            _ if was_in_full => {
                if let Some(m) = in_full.as_mut() {
                    m.remove(&id);
                }
                if in_full.as_ref().is_some_and(|m| m.is_empty()) {
                    *in_full = None;
                }
            }
            _ => {}
        }
        (before, after)
    }

    fn iter(&self) -> impl Iterator<Item = (K, Counts)> + '_ {
        self.small.iter().map(|(id, s)| (*id, unpack(&self.in_full, id, s)))
    }
}

/// Ids with their nonzero [`Counts`] (see the module's doc). While every id fits 32 bits
/// an entry is 12 bytes (a 64-bit id: 16); the first larger id widens the table, exactly.
#[derive(Debug)]
pub struct CountsTable(Width);

#[derive(Debug)]
enum Width {
    Narrow(Table<u32>),
    Wide(Table<u64>),
}

impl Default for CountsTable {
    fn default() -> Self {
        CountsTable(Width::Narrow(Table::default()))
    }
}

impl CountsTable {
    /// Adds `delta` to `id`'s counts (an id whose counts become zero leaves); returns its
    /// counts before and after.
    /// One search for an id already held whose counts stay nonzero (the common case); a
    /// second only to insert a new id or remove one.
    pub fn add(&mut self, id: u64, delta: &Counts) -> (Counts, Counts) {
        if let (Width::Narrow(narrow), Err(_)) = (&mut self.0, u32::try_from(id)) {
            let mut wide = Table::default();
            for (k, c) in narrow.iter() {
                wide.add(u64::from(k), &c);
            }
            self.0 = Width::Wide(wide);
        }
        match &mut self.0 {
            Width::Narrow(t) => t.add(id as u32, delta),
            Width::Wide(t) => t.add(id, delta),
        }
    }

    /// Every id with its counts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Counts)> + '_ {
        let (narrow, wide) = match &self.0 {
            Width::Narrow(t) => (Some(t.iter().map(|(k, c)| (u64::from(k), c))), None),
            Width::Wide(t) => (None, Some(t.iter())),
        };
        narrow.into_iter().flatten().chain(wide.into_iter().flatten())
    }

    pub fn is_empty(&self) -> bool {
        match &self.0 {
            Width::Narrow(t) => t.small.is_empty(),
            Width::Wide(t) => t.small.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use differential_dataflow::difference::Abelian;

    use super::{Counts, CountsTable, Small, Table};

    /// The table against a plain map: counts that grow past a byte and past `u16`, go
    /// negative, return to zero (the id leaves), tables that pass `SmallMap::FEW` ids, and
    /// (every other seed) ids above `u32::MAX` arriving midway, which widen the table.
    #[test]
    fn table_matches_plain_map() {
        for seed in 0..24u64 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            let ids = [4u64, 40, 200][seed as usize % 3];
            let mut table = CountsTable::default();
            let mut plain: BTreeMap<u64, Counts> = BTreeMap::new();
            for step in 0..3_000 {
                let mut id = rng.random_range(0..ids);
                if seed % 2 == 1 && step >= 1_500 && rng.random_bool(0.5) {
                    id += u64::from(u32::MAX) - 1;
                }
                let mut delta = Counts::default();
                let slot = rng.random_range(0..5);
                delta.0[slot] = match rng.random_range(0..12) {
                    0 => 70_000,
                    1 => -70_000,
                    2 => 200,
                    3 => -200,
                    4..=5 => -1,
                    _ => 1,
                };
                let want_before = plain.get(&id).copied().unwrap_or_default();
                let entry = plain.entry(id).or_default();
                entry.add(&delta);
                let want_after = *entry;
                if want_after.is_zero() {
                    plain.remove(&id);
                }
                assert_eq!(table.add(id, &delta), (want_before, want_after), "seed {seed}");
                let mut have: Vec<(u64, Counts)> = table.iter().collect();
                have.sort_by_key(|(k, _)| *k);
                let want: Vec<(u64, Counts)> = plain.iter().map(|(k, c)| (*k, *c)).collect();
                assert_eq!(have, want, "seed {seed}");
                assert_eq!(table.is_empty(), plain.is_empty());
            }
        }
    }

    /// An entry is an id and five bytes; counts outside a byte are held in full, and the
    /// side map goes when its last entry does.
    #[test]
    fn entries_are_small_and_exact_above_a_byte() {
        assert_eq!(std::mem::size_of::<(u32, Small)>(), 12);
        let mut t: Table<u32> = Table::default();
        for c in [
            Counts([255, 0, 1, 2, 3]),
            Counts([256, 0, 0, 0, 0]),
            Counts([0, -1, 0, 0, 0]),
            Counts([i64::MAX, 0, 0, 0, -i64::MAX]),
        ] {
            t.add(7, &c);
            assert_eq!(t.iter().collect::<Vec<_>>(), vec![(7, c)]);
            assert_eq!(t.in_full.is_some(), c != Counts([255, 0, 1, 2, 3]));
            let mut minus = c;
            minus.negate();
            t.add(7, &minus);
            assert!(t.small.is_empty() && t.in_full.is_none());
        }
    }
}
