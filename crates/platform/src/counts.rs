//! Behaviour counts per counterpart, held compactly: the all-time per-(item, user) state of
//! tagging and the per-(user, category) state of the user stage, which grow with the
//! distinct pairs of the whole history (tens of millions at the full Taobao shape).
//!
//! A [`CountsTable`] maps an id to its five counts. Almost every pair holds a handful of
//! events, so the counts are kept as five `u16` inline ([`Packed`]) and boxed only when
//! one leaves `0..=u16::MAX` (exact either way), in a [`SmallMap`] (24 bytes an id while
//! the table is small).

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use operators::small_map::SmallMap;
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

/// [`Counts`] in 16 bytes: inline while every count fits a `u16`, else boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packed {
    Small([u16; 5]),
    Big(Box<Counts>),
}

impl Packed {
    pub fn pack(c: Counts) -> Packed {
        match c.0.iter().all(|n| u16::try_from(*n).is_ok()) {
            true => Packed::Small(c.0.map(|n| n as u16)),
            false => Packed::Big(Box::new(c)),
        }
    }

    pub fn unpack(&self) -> Counts {
        match self {
            Packed::Small(s) => Counts(s.map(i64::from)),
            Packed::Big(c) => **c,
        }
    }
}

/// Ids with their nonzero [`Counts`] (see the module's doc).
#[derive(Debug, Default)]
pub struct CountsTable(SmallMap<u64, Packed>);

impl CountsTable {
    /// Adds `delta` to `id`'s counts (an id whose counts become zero leaves); returns its
    /// counts before and after.
    /// One search for an id already held whose counts stay nonzero (the common case); a
    /// second only to insert a new id or remove one.
    pub fn add(&mut self, id: u64, delta: &Counts) -> (Counts, Counts) {
        let held = self.0.get_mut(&id);
        let before = held.as_deref().map(Packed::unpack).unwrap_or_default();
        let mut after = before;
        after.add(delta);
        match (held, after.is_zero()) {
            (Some(_), true) => drop(self.0.remove(&id)),
            (Some(slot), false) => *slot = Packed::pack(after),
            (None, true) => {}
            (None, false) => self.0.insert(id, Packed::pack(after)),
        }
        (before, after)
    }

    /// Every id with its counts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Counts)> + '_ {
        self.0.iter().map(|(id, p)| (*id, p.unpack()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::{Counts, CountsTable, Packed};

    /// The table against a plain map: counts that grow past `u16`, go negative, return to
    /// zero (the id leaves), and tables that pass `SmallMap::FEW` ids.
    #[test]
    fn table_matches_plain_map() {
        for seed in 0..20u64 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            let ids = [4u64, 40, 200][seed as usize % 3];
            let mut table = CountsTable::default();
            let mut plain: BTreeMap<u64, Counts> = BTreeMap::new();
            for _ in 0..3_000 {
                let id = rng.random_range(0..ids);
                let mut delta = Counts::default();
                let slot = rng.random_range(0..5);
                delta.0[slot] = match rng.random_range(0..10) {
                    0 => 70_000,
                    1 => -70_000,
                    2..=4 => -1,
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

    #[test]
    fn packed_is_inline_below_u16_and_exact_above() {
        assert_eq!(std::mem::size_of::<Packed>(), 16);
        assert!(matches!(Packed::pack(Counts([65_535, 0, 1, 2, 3])), Packed::Small(_)));
        for c in [Counts([65_536, 0, 0, 0, 0]), Counts([0, -1, 0, 0, 0]), Counts([i64::MAX, 0, 0, 0, i64::MIN])] {
            assert!(matches!(Packed::pack(c), Packed::Big(_)));
            assert_eq!(Packed::pack(c).unpack(), c);
        }
    }
}
