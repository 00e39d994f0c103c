//! The platform layer ("middle platform"): inputs, the current catalog, tagging, and
//! the shared collections and arrangements every business dataflow builds on.
//!
//! ```text
//!  events ──┬────────────────────────────────────────────────► events (raw, per worker)
//!           ├─ explode ((item,user), Stats) ─ arrange by item ─► activity_by_item ─┐
//!           └─ explode ((item,user), Stats) ─ threshold_total ─► item_user_reach    │ join_core
//!  catalog log ─ latest-by-priority (upsert) ─► catalog ─ map category ─ arrange ─► item_category
//!                                                                                  ▼
//!                                            tagged: ((category, item, user), Stats)
//! ```
//!
//! Tagging is a join with the *current* catalog: when an item moves category or is
//! deleted, the join retracts its history from the old category (and the new one gains
//! it). Only the category takes part in the join, so price or status changes cost nothing
//! downstream. Each arrangement here is built once and shared by every dataflow.

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::ThresholdTotal;
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::{AsCollection, Hashable, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Scope;

use crate::model::{CatalogRow, CategoryId, Event, ItemId, Time, UserId};
use crate::source::Rejected;
use crate::stats::{event_reach, Reach, Stats};

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

pub type ItemCategoryArrangement<'s> =
    Arranged<'s, TraceAgent<ValSpine<ItemId, CategoryId, Time, isize>>>;
pub type ActivityArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<ItemId, UserId, Time, Stats>>>;

/// The shared layer every business dataflow is a function of.
pub struct Platform<'s> {
    /// Every valid event at its logical time.
    pub events: VecCollection<'s, Time, Event>,
    /// The current catalog: one `(item, row)` per item that has a row.
    pub catalog: VecCollection<'s, Time, (ItemId, CatalogRow)>,
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
    let item_category = catalog
        .clone()
        .map(|(item, row)| (item, row.category))
        .arrange_by_key_named("Arrange: ItemCategory");

    let item_user_reach = events
        .clone()
        .explode(|e| Some(((e.item, e.user), event_reach(&e))))
        .threshold_total(|_, total: &Reach| Stats::reach_of(total));
    let activity_by_item = events
        .clone()
        .explode(|e| Some(((e.item, e.user), Stats::of(&e))))
        .arrange_by_key_named("Arrange: ActivityByItem");
    let tagged = activity_by_item
        .clone()
        .join_core(item_category.clone(), |item, user, category| {
            Some((*category, *item, *user))
        });

    let inputs = InputHandles {
        events: events_in,
        catalog: catalog_in,
        rejected: rejected_in,
        tally: tally_in,
    };
    let platform = Platform {
        events,
        catalog,
        item_category,
        activity_by_item,
        item_user_reach,
        tagged,
        rejected,
        tally,
    };
    (inputs, platform)
}

/// Turns a log of catalog changes into the current catalog.
///
/// Contract: at time t, item k has row r iff, among the changes for k with time ≤ t,
/// the one with the highest priority is `(k, p, Some(r))`. Output is a collection of
/// `(item, row)` with +1/-1 differences at the times the item's row changes. Changes
/// are applied only once their time is complete, so their arrival order (and which
/// worker read them) does not matter. State: one entry per item ever seen.
fn latest_by_priority<'s>(
    log: VecCollection<'s, Time, CatalogChange>,
) -> VecCollection<'s, Time, (ItemId, CatalogRow)> {
    let exchange =
        Exchange::new(|((item, _, _), _, _): &(CatalogChange, Time, isize)| item.hashed().into());
    log.inner
        .unary_frontier(exchange, "LatestByPriority", |_, _| {
            let mut current: FxHashMap<ItemId, (u64, Option<CatalogRow>)> = FxHashMap::default();
            let mut pending: Vec<(Time, ItemId, u64, Option<CatalogRow>)> = Vec::new();
            let mut held: Option<Capability<Time>> = None;
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    for ((item, priority, row), time, diff) in data.drain(..) {
                        // The log only ever grows; a retraction would have no meaning here.
                        debug_assert!(diff > 0);
                        pending.push((time, item, priority, row));
                    }
                });
                let Some(cap) = held.as_mut() else { return };
                let complete = |t: &Time| !frontier.less_equal(t);
                if !pending.iter().any(|(t, ..)| complete(t)) {
                    return;
                }
                pending.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
                let ready = pending.iter().take_while(|(t, ..)| complete(t)).count();
                for (time, item, priority, row) in pending.drain(..ready) {
                    let entry = current.entry(item).or_insert((priority, None));
                    if priority < entry.0 {
                        continue;
                    }
                    if entry.1 != row {
                        let at = cap.delayed(&time);
                        let mut session = output.session(&at);
                        if let Some(old) = entry.1 {
                            session.give(((item, old), time, -1isize));
                        }
                        if let Some(new) = row {
                            session.give(((item, new), time, 1isize));
                        }
                    }
                    *entry = (priority, row);
                }
                match pending.iter().map(|(t, ..)| *t).min() {
                    Some(t) => cap.downgrade(&t),
                    None => held = None,
                }
            }
        })
        .as_collection()
}
