//! `item_display_stats` (case 1): the numbers a product page shows — orders, units, GMV
//! and buyers over a sliding 30-day window — exact, changing only on whole minutes, and
//! merged with a batch base when one is loaded (`--base`).
//!
//! ```text
//! events ─ filter buy ─ windowed 30 d ─┐
//! base rows ─ windowed (cutoff + 30 d) ┴─ concat ─ on minute boundaries ─┐
//! base cut-off ─ on minute boundaries ─────────── (broadcast) ────────────┴─ reduce_total_with per item
//! ```
//!
//! Contract (docs/cases-contract.md): on 60 000 ms boundaries; per item, the buys in the
//! 30-day window (only those at or after the active base's cut-off) plus the active base's
//! row while `t < cutoff + 30 d`; items whose four numbers are all 0 have no row. The
//! state per item is its buys of the last 30 days (buys are a few percent of events).
//! Departure from a pure window, documented: a base's buyers are added as is.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use platform::model::{Behavior, ItemId, Time, UserId};
use operators::ReduceTotal;
use platform::Platform;
use platform::output::{Field, Schema};
use operators::Windowed;
use operators::windows::{expiry, DAY_MS, MINUTE_MS};

/// The display window.
pub const DISPLAY_WINDOW_MS: u64 = 30 * DAY_MS;
/// The output changes only on these boundaries.
pub const DISPLAY_PERIOD_MS: u64 = MINUTE_MS;

/// What an item's display numbers are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Part {
    Buy { ts: u64, user: UserId, units: i64, gmv_cents: i64 },
    Base { cutoff: Time, sales: i64, units: i64, gmv_cents: i64, buyers: i64 },
}

/// `(sales_30d, units_30d, gmv_30d_cents, buyers_30d)`; GMV in 128 bits (see `Stats`).
pub type Display = (i64, i64, i128, i64);

pub fn item_display_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Display)> {
    let epoch_ms = p.params.epoch_ms;
    let buys = p.events.clone().filter(|e| e.behavior == Behavior::Buy).windowed(move |e| {
        expiry(e.ts_ms, DISPLAY_WINDOW_MS, epoch_ms)
    })
    .map(|e| {
        let buy = Part::Buy { ts: e.ts_ms, user: e.user, units: e.quantity as i64, gmv_cents: e.amount_cents as i64 };
        (e.item, buy)
    });
    let base = p.base.clone().windowed(|b| b.cutoff.saturating_add(DISPLAY_WINDOW_MS)).map(|b| {
        let base =
            Part::Base { cutoff: b.cutoff, sales: b.sales, units: b.units, gmv_cents: b.gmv_cents, buyers: b.buyers };
        (b.item, base)
    });
    let parts = buys.concat(base).on_boundaries(DISPLAY_PERIOD_MS, epoch_ms);
    let cutoff = p.base_cutoff.clone().on_boundaries(DISPLAY_PERIOD_MS, epoch_ms);
    parts.reduce_total_with(cutoff, "ItemDisplayStats", |_item, parts: &[(Part, isize)], cutoff: &[Time], out| {
        let active = cutoff.last().copied();
        let (mut sales, mut units, mut gmv, mut buyers) = (0i64, 0i64, 0i128, 0i64);
        let mut users: Vec<UserId> = Vec::new();
        for (part, n) in parts {
            let n = *n as i64;
            match *part {
                Part::Buy { ts, user, units: u, gmv_cents } if active.is_none_or(|c| ts >= c) && n > 0 => {
                    sales += n;
                    units += u * n;
                    gmv += gmv_cents as i128 * n as i128;
                    users.push(user);
                }
                Part::Base { cutoff, sales: s, units: u, gmv_cents, buyers: b } if Some(cutoff) == active => {
                    sales += s * n;
                    units += u * n;
                    gmv += gmv_cents as i128 * n as i128;
                    buyers += b * n;
                }
                _ => {}
            }
        }
        users.sort_unstable();
        users.dedup();
        buyers += users.len() as i64;
        if (sales, units, gmv, buyers) != (0, 0, 0, 0) {
            out.push((sales, units, gmv, buyers));
        }
    })
}

pub fn schema() -> Schema<(ItemId, Display)> {
    Schema {
        name: "item_display_stats",
        columns: &["item_id", "sales_30d", "units_30d", "gmv_30d_cents", "buyers_30d"],
        key: 1,
        fields: |(item, (sales, units, gmv, buyers))| {
            vec![Field::U(*item), Field::I(*sales), Field::I(*units), Field::Wide(*gmv), Field::I(*buyers)]
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// On the first whole minute: per item, its sales over the last 30 days (orders, units,
    /// GMV, buyers).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("item_display_stats", shop(), T + 60_000), ["1,2,2,1000,2"]);
    }
}
