//! `recall_i2i` (case 2): "people who engaged with this also engaged with" — per item, the
//! items most often clicked or bought by the same users within a session gap.
//!
//! ```text
//! events ─ filter click|buy ─ (user, (item, ts))
//!   ─ pairs_within 24 h window, gap (per user, among its 20 latest: a ≠ b at most 30 min apart, once per user) ─ (a, b) and (b, a), diff users ─┐
//! platform.online_category ─ online items ─────────── (broadcast table) ────────────────────────┤
//! rules ──────────────────────────────────────────── (broadcast) ───────────────────────────────┴─
//!   top_counts per a (neighbours kept ranked by users; reads a's and its top neighbours' online flags): per scene, a's top n as one row
//! ```
//!
//! Contract (docs/cases-contract.md): users(a, b) = distinct users with a click or buy on
//! a and one on b, both among the user's 20 latest interactions in the 24-hour window, at
//! most 30 minutes apart; for each scene
//! with an `i2i` rule and each online item a with an online neighbour: one row whose
//! `neighbors` column lists a's online neighbours b, top `top_n` by users desc, b asc, as
//! space-separated `b:users` ([`format_scored`]). State is bounded by the window: interactions expire after
//! 24 h; the cap bounds what one interaction costs.
//!
//! **Why one row per list.** When one pair's `users` moves inside a list, or a neighbour
//! enters and pushes out the last, a row per member writes two or four rows; one row per
//! list writes one changed row per item and time however many members moved (46.9 M →
//! 13.5 M rows at 10 M events, BENCHMARKS.md), and a list is what a reader fetches whole
//! (the similar-items lookup, the user merge, a cache keyed by item).
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
use platform::output::{format_scored, Field, Schema};
use operators::windows::{expiry, DAY_MS, MINUTE_MS};

/// Interactions count for 24 hours.
pub const I2I_WINDOW_MS: u64 = DAY_MS;
/// Two interactions of a user co-occur when at most this far apart.
pub const I2I_GAP_MS: u64 = 30 * MINUTE_MS;
/// Only a user's latest this many interactions in the window count: exact for everyone
/// below it, and a bot-like burst costs at most this many neighbours per interaction.
pub const I2I_LATEST: usize = 20;

/// `(scene, list)`: the scene's top-n list of an item, ranked, as written
/// ([`format_scored`]: `b:users …`). Formatted once, when the list changes: the operator
/// keeps it as its last output, so the retraction of a list that moves on is the text
/// already made, not formatted again.
pub type Neighbors = (Scene, String);

pub fn recall_i2i<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Neighbors)> {
    let epoch_ms = p.params.epoch_ms;
    let interactions = p
        .events
        .clone()
        .flat_map(|e| matches!(e.behavior, Behavior::Click | Behavior::Buy).then_some((e.user, (e.item, e.ts_ms))));
    // Each pair in both orders (a neighbour of either item); the window's expiry happens
    // inside `pairs_within`.
    let co_users =
        interactions.pairs_within(I2I_GAP_MS, I2I_LATEST, move |ts| expiry(ts, I2I_WINDOW_MS, epoch_ms), "I2iPairs");
    let online = p.online_category().as_collection(|item, _category| *item);
    // Every scene ranks the same way (users desc, b asc): rank once for the longest list.
    let longest = |rules: &[Rule]| i2i_rules(rules).map(|(_, rule)| rule.top_n as usize).max().unwrap_or(0);
    co_users.top_counts(online, p.rules.clone(), "RecallI2i", longest, |_a, top: &[(ItemId, i64)], rules: &[Rule], out| {
        out.extend(i2i_rules(rules).map(|(scene, rule)| (scene, format_scored(&top[..top.len().min(rule.top_n as usize)]))));
    })
}

/// A row in column order, the list as written (the sink sorts rows within a time by it:
/// the list column as text, as a reader of the file compares it).
pub type Row = (Scene, ItemId, String);

pub fn as_row((a, (scene, list)): (ItemId, Neighbors)) -> Row {
    (scene, a, list)
}

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_i2i",
        columns: &["scene", "item_id", "neighbors"],
        key: 2,
        fields: |(scene, a, list)| vec![Field::S(*scene), Field::U(*a), Field::Text(list.clone())],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Scene `search`'s i2i lists: user 8 clicked items 2 and 1 within 30 minutes, so each
    /// is the other's neighbour, with one user.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("recall_i2i", shop(), T + 1000), ["search,1,2:1", "search,2,1:1"]);
    }
}
