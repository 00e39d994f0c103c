//! `Stats`: the counters every aggregate keeps, carried in the *difference* of a
//! collection (a commutative group), so sums are maintained by differential's
//! consolidation instead of being recomputed per group.
//!
//! An event contributes `Stats::of(event)`; a distinct (key, user) pair contributes
//! `Stats::reach(..)` to the `uv` / `buyers` slots. `count_total` over a key then
//! yields one row per key whose value is the accumulated `Stats`.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use serde::{Deserialize, Serialize};

use crate::model::{Behavior, Event};

/// What decides whether a user counts in `uv` / `buyers` of a key: (events, buys).
/// A small difference for the per-(key, user) arrangements of `threshold_total`.
pub type Reach = (isize, isize);

/// The [`Reach`] contribution of one event.
#[inline]
pub fn event_reach(e: &Event) -> Reach {
    (1, (e.behavior == Behavior::Buy) as isize)
}

/// Accumulable counters of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stats {
    pub impressions: i64,
    pub clicks: i64,
    pub favs: i64,
    pub carts: i64,
    pub buys: i64,
    /// Σ quantity of buys.
    pub units: i64,
    /// Σ amount_cents of buys (the price paid). 128 bits: an order may carry up to
    /// 10^15 cents, so 64 bits would wrap after 9,224 such orders on one key; 128 bits
    /// hold more than 2^64 of them.
    pub gmv_cents: i128,
    /// Distinct counterparts with any behaviour (users of an item, items of a user, …).
    pub uv: i64,
    /// Distinct counterparts with a buy.
    pub buyers: i64,
}

/// A group's counters are negative when any counter is: more retracted than was added.
impl operators::Signed for Stats {
    fn is_negative(&self) -> bool {
        let s = self;
        [s.impressions, s.clicks, s.favs, s.carts, s.buys, s.units, s.uv, s.buyers].iter().any(|c| *c < 0)
            || s.gmv_cents < 0
    }
}

impl Stats {
    /// The contribution of one event.
    #[inline]
    pub fn of(e: &Event) -> Stats {
        Stats::of_action(e.behavior, e.quantity, e.amount_cents)
    }

    /// [`Stats::of`] an event with this behaviour, quantity and amount.
    #[inline]
    pub fn of_action(behavior: Behavior, quantity: u32, amount_cents: u64) -> Stats {
        let mut s = Stats::default();
        match behavior {
            Behavior::Impression => s.impressions = 1,
            Behavior::Click => s.clicks = 1,
            Behavior::Fav => s.favs = 1,
            Behavior::Cart => s.carts = 1,
            Behavior::Buy => {
                s.buys = 1;
                s.units = quantity as i64;
                s.gmv_cents = amount_cents as i128;
            }
        }
        s
    }

    /// The behaviour counters of one event only (no units, no GMV): for outputs whose rows
    /// show counts, so a row changes exactly when a shown count does.
    #[inline]
    pub fn behaviors_of(e: &Event) -> Stats {
        Stats { units: 0, gmv_cents: 0, ..Stats::of(e) }
    }

    /// The contribution of one distinct counterpart: `uv` 1, `buyers` 1 if it bought.
    #[inline]
    pub fn reach(any: bool, bought: bool) -> Stats {
        Stats { uv: any as i64, buyers: bought as i64, ..Stats::default() }
    }

    /// Reach flags of an accumulated per-(key, user) total: present, and bought.
    #[inline]
    pub fn reach_of(total: &Reach) -> Stats {
        Stats::reach(total.0 != 0, total.1 != 0)
    }

    /// The counters the CTR/CVR use: impressions, clicks, buys (the rest zero).
    #[inline]
    pub fn funnel(&self) -> Stats {
        Stats { impressions: self.impressions, clicks: self.clicks, buys: self.buys, ..Stats::default() }
    }

    /// Number of events of any behaviour.
    #[inline]
    pub fn events(&self) -> i64 {
        self.impressions + self.clicks + self.favs + self.carts + self.buys
    }

    /// Interest score: 1·click + 3·fav + 5·cart + 10·buy.
    #[inline]
    pub fn score(&self) -> i64 {
        self.clicks + 3 * self.favs + 5 * self.carts + 10 * self.buys
    }

    /// Applies `f` to each 64-bit counter with its counterpart in `o`, and `g` to the GMV.
    #[inline]
    fn zip(&mut self, o: &Stats, f: impl Fn(&mut i64, i64), g: impl Fn(&mut i128, i128)) {
        f(&mut self.impressions, o.impressions);
        f(&mut self.clicks, o.clicks);
        f(&mut self.favs, o.favs);
        f(&mut self.carts, o.carts);
        f(&mut self.buys, o.buys);
        f(&mut self.units, o.units);
        g(&mut self.gmv_cents, o.gmv_cents);
        f(&mut self.uv, o.uv);
        f(&mut self.buyers, o.buyers);
    }
}

impl IsZero for Stats {
    #[inline]
    fn is_zero(&self) -> bool {
        *self == Stats::default()
    }
}

impl Semigroup for Stats {
    #[inline]
    fn plus_equals(&mut self, rhs: &Self) {
        self.zip(rhs, |a, b| *a += b, |a, b| *a += b);
    }
}

impl Monoid for Stats {
    fn zero() -> Self {
        Stats::default()
    }
}

impl Abelian for Stats {
    #[inline]
    fn negate(&mut self) {
        let zero = Stats::default();
        self.zip(&zero, |a, _| *a = -*a, |a, _| *a = -*a);
    }
}

impl Multiply<isize> for Stats {
    type Output = Stats;
    #[inline]
    fn multiply(mut self, rhs: &isize) -> Stats {
        let k = *rhs as i64;
        let zero = Stats::default();
        self.zip(&zero, |a, _| *a *= k, |a, _| *a *= k as i128);
        self
    }
}
