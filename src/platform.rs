//! The platform layer ("middle platform"): inputs, the current catalog, tagging, and
//! the shared collections and arrangements every business dataflow builds on.
//!
//! ```text
//!  events ──┬───────────────────────────────────────────────────────► events (raw, per worker)
//!           └─ explode ((item,user), Stats) ─ arrange by item ─► activity_by_item ──────┐
//!                                   └─ batches, diff Reach ─ threshold_total_hashed ─► item_user_reach
//!  catalog log ─ latest_by_priority ─► catalog ─ map category ─ arrange ─► item_category ─┤ join_core
//!                                                                                        ▼
//!                                              tagged: ((category, item, user), Stats)
//! ```
//!
//! Tagging is a join with the *current* catalog: when an item moves category or is
//! deleted, the join retracts its history from the old category (and the new one gains
//! it). Only the category takes part in the join, so price or status changes cost nothing
//! downstream. Each arrangement here is built once and shared by every dataflow.

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::Scope;

use crate::model::{CatalogRow, CategoryId, Event, ItemId, Time, UserId};
use crate::operators::{latest_by_priority, map_diff, threshold_total_hashed};
use crate::source::Rejected;
use crate::stats::{Reach, Stats};

/// One catalog change: item, priority (the highest priority among the changes with
/// time ≤ t decides the item's row at t), and the row (`None`: deleted).
pub type CatalogChange = (ItemId, u64, Option<CatalogRow>);

/// Per-file run counters that travel through the dataflow to worker 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tally {
    Valid(u32),
    Late(u32),
}

/// The input sessions a worker's sources feed.
pub struct InputHandles {
    pub events: InputSession<Time, Event, isize>,
    pub catalog: InputSession<Time, CatalogChange, isize>,
    pub rejected: InputSession<Time, Rejected, isize>,
    pub tally: InputSession<Time, Tally, isize>,
}

impl InputHandles {
    pub fn advance_to(&mut self, t: Time) {
        self.events.advance_to(t);
        self.catalog.advance_to(t);
        self.rejected.advance_to(t);
        self.tally.advance_to(t);
    }

    pub fn flush(&mut self) {
        self.events.flush();
        self.catalog.flush();
        self.rejected.flush();
        self.tally.flush();
    }

    pub fn close(self) {
        self.events.close();
        self.catalog.close();
        self.rejected.close();
        self.tally.close();
    }
}

pub type ItemCategoryArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<ItemId, CategoryId, Time, isize>>>;
pub type ActivityArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<ItemId, UserId, Time, Stats>>>;

/// The shared layer every business dataflow is a function of.
pub struct Platform<'s> {
    /// Every valid event at its logical time.
    pub events: VecCollection<'s, Time, Event>,
    /// Current category of each catalogued item, arranged by item.
    pub item_category: ItemCategoryArrangement<'s>,
    /// Activity per (item, user) as `Stats` differences, arranged by item.
    pub activity_by_item: ActivityArrangement<'s>,
    /// Distinct (item, user) pairs: the difference is the change of `Stats::reach`
    /// (uv 1 once the user touched the item, buyers 1 once they bought it).
    pub item_user_reach: VecCollection<'s, Time, (ItemId, UserId), Stats>,
    /// Activity tagged with the item's current category: `((category, item, user), Stats)`.
    pub tagged: VecCollection<'s, Time, (CategoryId, ItemId, UserId), Stats>,
    /// Rows rejected by the sources.
    pub rejected: VecCollection<'s, Time, Rejected>,
    /// Run counters (valid and late rows per file) as differences.
    pub tally: VecCollection<'s, Time, Tally>,
}

/// Builds the inputs and the platform layer in `scope`.
pub fn build<'s>(scope: Scope<'s, Time>) -> (InputHandles, Platform<'s>) {
    let (events_in, events) = scope.new_collection::<Event, isize>();
    let (catalog_in, catalog_log) = scope.new_collection::<CatalogChange, isize>();
    let (rejected_in, rejected) = scope.new_collection::<Rejected, isize>();
    let (tally_in, tally) = scope.new_collection::<Tally, isize>();

    let catalog = latest_by_priority(catalog_log);
    let item_category = catalog.map(|(item, row)| (item, row.category)).arrange_by_key_named("Arrange: ItemCategory");

    let activity_by_item = events
        .clone()
        .explode(|e| Some(((e.item, e.user), Stats::of(&e))))
        .arrange_by_key_named("Arrange: ActivityByItem");
    // Reach reads the arrangement's consolidated batches, not the raw events.
    let item_user_reach = threshold_total_hashed(
        map_diff(activity_by_item.clone().as_collection(|item, user| (*item, *user)), |s: Stats| s.to_reach()),
        "ItemUserReach",
        |total: &Reach| Stats::reach_of(total),
    );
    let tagged = activity_by_item
        .clone()
        .join_core(item_category.clone(), |item, user, category| Some((*category, *item, *user)));

    let inputs = InputHandles { events: events_in, catalog: catalog_in, rejected: rejected_in, tally: tally_in };
    let platform = Platform { events, item_category, activity_by_item, item_user_reach, tagged, rejected, tally };
    (inputs, platform)
}
