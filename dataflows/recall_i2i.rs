//! `recall_i2i` (case 2): "people who engaged with this also engaged with" — per item, the
//! items most often clicked or bought by the same users within a session gap.
//!
//! ```text
//! events ─ filter click|buy ─ (user, (item, ts)) ─ windowed 24 h
//!   ─ pairs_within gap (per user, among its 20 latest: a ≠ b at most 30 min apart, once per user) ─ (a, b), diff users ─┐
//! platform.online_category ─ online items ─────────── (broadcast table) ────────────────────────┤
//! rules ──────────────────────────────────────────── (broadcast) ───────────────────────────────┴─
//!   top_counts per a (neighbours kept ranked by users; reads a's and its top neighbours' online flags): top n per scene
//! ```
//!
//! Contract (docs/cases-contract.md): users(a, b) = distinct users with a click or buy on
//! a and one on b, both among the user's 20 latest interactions in the 24-hour window, at
//! most 30 minutes apart; for each scene
//! with an `i2i` rule and each online item a: online neighbours b, top `top_n` by users
//! desc, b asc (rows carry `users`, not the rank). State is bounded by the window:
//! interactions expire after 24 h; the cap bounds what one interaction costs.
//!
//! The pair counts are never arranged: each (a, b) update is one hash-map probe and one
//! move in a's ranked set, in the operator keyed by a, which reads the online flags from a
//! table every worker holds. A touched item re-reads only its top neighbours (up to the
//! n-th online one), not all of them; an item's flag flipping recomputes only the items
//! whose last list looked at it.

use differential_dataflow::VecCollection;

use platform::model::{Behavior, ItemId, Scene, Time};
use operators::{PairsWithin, TopCounts};
use platform::Platform;
use platform::rules::{i2i_rules, Rule};
use platform::output::{Field, Schema};
use operators::Windowed;
use operators::windows::{expiry, DAY_MS, MINUTE_MS};

/// Interactions count for 24 hours.
pub const I2I_WINDOW_MS: u64 = DAY_MS;
/// Two interactions of a user co-occur when at most this far apart.
pub const I2I_GAP_MS: u64 = 30 * MINUTE_MS;
/// Only a user's latest this many interactions in the window count: exact for everyone
/// below it, and a bot-like burst costs at most this many neighbours per interaction.
pub const I2I_LATEST: usize = 20;

/// `(scene, neighbor, users)`: a member of the scene's top-n list of an item.
pub type Neighbor = (Scene, ItemId, i64);

pub fn recall_i2i<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Neighbor)> {
    let epoch_ms = p.params.epoch_ms;
    let interactions = p
        .events
        .clone()
        .flat_map(|e| matches!(e.behavior, Behavior::Click | Behavior::Buy).then_some((e.user, (e.item, e.ts_ms))));
    let interactions = interactions.windowed(move |(_, (_, ts))| expiry(*ts, I2I_WINDOW_MS, epoch_ms));
    let co_users = interactions.pairs_within(I2I_GAP_MS, I2I_LATEST, "I2iPairs");
    let online = p.online_category().as_collection(|item, _category| *item);
    co_users.top_counts(online, p.rules.clone(), "RecallI2i", // Every scene ranks the same way (users desc, b asc): rank once for the longest list.
        |rules: &[Rule]| i2i_rules(rules).map(|(_, rule)| rule.top_n as usize).max().unwrap_or(0), |_a, top: &[(ItemId, i64)], rules: &[Rule], out| {
            for (scene, rule) in i2i_rules(rules) {
                out.extend(top.iter().take(rule.top_n as usize).map(|&(b, users)| (scene, b, users)));
            }
        })
}

/// A row in column order (the sink sorts rows within a time by it).
pub type Row = (Scene, ItemId, ItemId, i64);

pub fn as_row((a, (scene, b, users)): (ItemId, Neighbor)) -> Row {
    (scene, a, b, users)
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_i2i",
        columns: &["scene", "item_id", "neighbor_id", "users"],
        key: 3,
        fields: |(scene, a, b, users)| vec![Field::S(*scene), Field::U(*a), Field::U(*b), Field::I(*users)],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Scene `search`'s i2i lists: user 8 clicked items 2 and 1 within 30 minutes, so each
    /// is the other's neighbour, with one user.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_i2i", shop(), T + 1000), ["search,1,2,1", "search,2,1,1"]);
    }
}
