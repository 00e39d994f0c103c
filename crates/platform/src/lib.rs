//! The platform layer ("middle platform"): inputs, the current catalog, tagging, and
//! the shared collections and arrangements every business dataflow builds on.
//!
//! ```text
//!  events ──┬───────────────────────────────────────────────────────► events (raw, per worker)
//!           └────────────────────────────┐
//!  catalog log ─ latest_by_priority ─► catalog ─ map category ─ arrange ─► item_category
//!                                                   └─ changes ──┴─ tag_by_item (keyed by item) ─┬─► tagged_items: ((category, item), Stats)
//!                                                                                                ├─► tagged_users: ((category, user), counts)
//!                                                                                                ├─► item_user_reach: ((item, user), uv/buyers)
//!                                                                                                └─► item_totals: (item, Stats) rows
//! ```
//!
//! Beside these, the platform offers shared collections that only some dataflows need,
//! built on first use and then shared (`by_user`: the user stage of [`crate::user_stage`],
//! keyed by user, over the events, `item_user_reach` and `tagged_users`; `online_category`,
//! `recent_events`, `recent_online`, `prior`), and the configuration inputs: the recall
//! rules and the batch bases.
//!
//! Tagging ([`crate::tagging`]) attributes events to the *current* catalog: when an item
//! moves category or is deleted, its history is retracted from the old category (and the
//! new one gains it). Only the category takes part, so price or status changes cost
//! nothing downstream. Each arrangement here is built once and shared by every dataflow.

pub mod base;
pub mod catalog;
pub mod config_inputs;
pub mod counts;
pub mod model;
pub mod output;
pub mod rates;
pub mod rules;
pub mod source;
pub mod spool;
pub mod stats;
pub mod tagging;
pub mod user_stage;
pub mod utc;

use std::cell::RefCell;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::Scope;

use crate::base::BaseRow;
use crate::counts::Counts;
use crate::model::{Behavior, CatalogRow, CategoryId, Event, ItemId, Time, UserId};
use crate::rates::Micro;
use crate::rules::Rule;
use crate::source::Rejected;
use crate::stats::Stats;
use crate::tagging::tag_by_item;
use crate::user_stage::{by_user, ByUser};
use operators::arrange::arrange;
use operators::windows::{expiry, HOUR_MS};
use operators::Windowed;
use operators::{CountTotalHashed, LatestByPriority, SumLocally};

/// The window of the "recent" collections (rank features, hot items, traffic, recall).
pub const RECENT_WINDOW_MS: u64 = HOUR_MS;

/// Categories ranked per user by the user stage (`user_top_categories`).
pub const USER_TOP_CATEGORIES: usize = 3;

/// The CTR/CVR prior moves on these boundaries.
pub const PRIOR_PERIOD_MS: u64 = HOUR_MS;

/// Run parameters the dataflows need.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub epoch_ms: u64,
    pub ads: AdParams,
}

/// `ads_curated` settings (`--ad-*` flags).
#[derive(Clone, Copy, Debug)]
pub struct AdParams {
    pub refresh_ms: u64,
    pub min_impressions: i64,
    pub min_pctr: Micro,
    pub set_size: usize,
}

pub use catalog::CatalogChange;

/// Per-file run counters that travel through the dataflow to worker 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tally {
    Valid(u32),
    Late(u32),
    /// Events were read in this scene (sent once per worker).
    Scene(crate::model::Scene),
}

/// The input sessions a worker's sources feed.
pub struct InputHandles {
    pub events: InputSession<Time, Event, isize>,
    pub catalog: InputSession<Time, CatalogChange, isize>,
    pub rejected: InputSession<Time, Rejected, isize>,
    pub tally: InputSession<Time, Tally, isize>,
    /// Recall rules in force.
    pub rules: InputSession<Time, Rule, isize>,
    /// Rows of the active base, and its cut-off.
    pub base: InputSession<Time, BaseRow, isize>,
    pub base_cutoff: InputSession<Time, Time, isize>,
}

impl InputHandles {
    pub fn advance_to(&mut self, t: Time) {
        self.events.advance_to(t);
        self.catalog.advance_to(t);
        self.rejected.advance_to(t);
        self.tally.advance_to(t);
        self.rules.advance_to(t);
        self.base.advance_to(t);
        self.base_cutoff.advance_to(t);
    }

    pub fn flush(&mut self) {
        self.events.flush();
        self.catalog.flush();
        self.rejected.flush();
        self.tally.flush();
        self.rules.flush();
        self.base.flush();
        self.base_cutoff.flush();
    }

    pub fn close(self) {
        self.events.close();
        self.catalog.close();
        self.rejected.close();
        self.tally.close();
        self.rules.close();
        self.base.close();
        self.base_cutoff.close();
    }
}

pub type ItemCategoryArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<ItemId, CategoryId, Time, isize>>>;
pub type CatalogArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<ItemId, CatalogRow, Time, isize>>>;

/// The current catalog: `(item, row)` records, +1/−1 as an item's row changes.
pub type Catalog<'s> = VecCollection<'s, Time, (ItemId, CatalogRow)>;

/// The shared layer every business dataflow is a function of.
pub struct Platform<'s> {
    /// Every valid event at its logical time.
    pub events: VecCollection<'s, Time, Event>,
    /// Current category of each catalogued item, arranged by item.
    pub item_category: ItemCategoryArrangement<'s>,
    /// Distinct (item, user) pairs: the difference is the change of `Stats::reach`
    /// (uv 1 once the user touched the item, buyers 1 once they bought it).
    pub item_user_reach: VecCollection<'s, Time, (ItemId, UserId), Stats>,
    /// Per item, all-time counters, uv and buyers over all events: `(item, Stats)` rows.
    pub item_totals: VecCollection<'s, Time, (ItemId, Stats)>,
    /// Each item's activity tagged with its current category: `((category, item), Stats)`.
    pub tagged_items: VecCollection<'s, Time, (CategoryId, ItemId), Stats>,
    /// Each user's activity tagged with the current categories of its items:
    /// `((category, user), Stats)` with the behaviour counts only (no units, GMV, reach).
    pub tagged_users: VecCollection<'s, Time, (CategoryId, UserId), Stats>,
    /// Rows rejected by the sources.
    pub rejected: VecCollection<'s, Time, Rejected>,
    /// Run counters (valid and late rows per file) as differences.
    pub tally: VecCollection<'s, Time, Tally>,
    /// The current catalog row of each item (not arranged: the joins read the parts they
    /// need — categories, online categories, ad rows — each arranged on its own, so a
    /// catalog of millions of items is not held whole a second time).
    pub catalog: Catalog<'s>,
    /// Recall rules in force (operator configuration as data).
    pub rules: VecCollection<'s, Time, Rule>,
    /// Rows of the active batch base, and its cut-off (one record while a base is active).
    pub base: VecCollection<'s, Time, BaseRow>,
    pub base_cutoff: VecCollection<'s, Time, Time>,
    pub params: Params,
    shared: RefCell<Shared<'s>>,
}

/// The collections built on first use.
#[derive(Default)]
struct Shared<'s> {
    online_category: Option<ItemCategoryArrangement<'s>>,
    ad_catalog: Option<CatalogArrangement<'s>>,
    recent_events: Option<VecCollection<'s, Time, Event>>,
    recent_online: Option<VecCollection<'s, Time, (ItemId, (CategoryId, Stats))>>,
    prior: Option<VecCollection<'s, Time, Stats>>,
    by_user: Option<ByUser<'s>>,
}

/// Returns the collection in `slot`, building it the first time.
fn shared<T: Clone>(slot: &mut Option<T>, build: impl FnOnce() -> T) -> T {
    slot.get_or_insert_with(build).clone()
}

impl<'s> Platform<'s> {
    /// The category of each item that is online now, arranged by item.
    pub fn online_category(&self) -> ItemCategoryArrangement<'s> {
        let build = || {
            let online = self.catalog.clone().flat_map(|(item, row)| row.online.then_some((item, row.category)));
            arrange(online, "Arrange: OnlineCategory")
        };
        shared(&mut self.shared.borrow_mut().online_category, build)
    }

    /// The catalog rows of the items that can be advertised now (online, `is_ad`, a
    /// positive bid), arranged by item.
    pub fn ad_catalog(&self) -> CatalogArrangement<'s> {
        let build = || {
            let ads = self.catalog.clone().filter(|(_, row)| row.online && row.is_ad && row.ad_bid_cents > 0);
            arrange(ads, "Arrange: AdCatalog")
        };
        shared(&mut self.shared.borrow_mut().ad_catalog, build)
    }

    /// The events in the recent window (`RECENT_WINDOW_MS`): each event also retracted
    /// when its epoch leaves the window.
    pub fn recent_events(&self) -> VecCollection<'s, Time, Event> {
        let epoch_ms = self.params.epoch_ms;
        let build = || self.events.clone().windowed(move |e: &Event| expiry(e.ts_ms, RECENT_WINDOW_MS, epoch_ms));
        shared(&mut self.shared.borrow_mut().recent_events, build)
    }

    /// Online items with their category and behaviour counters over the recent window:
    /// `(item, (category, Stats))` rows (no units, GMV, uv or buyers).
    pub fn recent_online(&self) -> VecCollection<'s, Time, (ItemId, (CategoryId, Stats))> {
        let recent = self.recent_events();
        let online = self.online_category();
        // Counted and arranged as five counters (40 bytes an update, where `Stats` is 80).
        let build = || {
            let counts =
                recent.explode(|e| Some((e.item, Counts::of_event(&e)))).count_total_hashed("RecentItemCounts");
            arrange(counts, "Arrange: RecentItemCounts")
                .join_core(online, |item, counts, category| Some((*item, (*category, counts.stats()))))
        };
        shared(&mut self.shared.borrow_mut().recent_online, build)
    }

    /// The user stage ([`crate::user_stage`]): per user its totals row and top categories
    /// (`USER_TOP_CATEGORIES`), and per category the changes of its users and buyers.
    pub fn by_user(&self) -> ByUser<'s> {
        let build = || {
            by_user(self.events.clone(), self.item_user_reach.clone(), self.tagged_users.clone(), USER_TOP_CATEGORIES)
        };
        shared(&mut self.shared.borrow_mut().by_user, build)
    }

    /// The global totals (impressions, clicks, buys of all events) on hour boundaries:
    /// the prior of the smoothed CTR/CVR. One row once there are events.
    pub fn prior(&self) -> VecCollection<'s, Time, Stats> {
        let epoch_ms = self.params.epoch_ms;
        let build = || {
            let counted = self.events.clone().explode(|e| {
                matches!(e.behavior, Behavior::Impression | Behavior::Click | Behavior::Buy)
                    .then(|| ((), Stats::behaviors_of(&e)))
            });
            let totals = counted.sum_locally().count_total_hashed("GlobalTotals").map(|((), s)| s);
            totals.on_boundaries(PRIOR_PERIOD_MS, epoch_ms)
        };
        shared(&mut self.shared.borrow_mut().prior, build)
    }
}

/// Builds the inputs and the platform layer in `scope`.
pub fn build<'s>(scope: Scope<'s, Time>, params: Params) -> (InputHandles, Platform<'s>) {
    let (events_in, events) = scope.new_collection::<Event, isize>();
    let (catalog_in, catalog_log) = scope.new_collection::<CatalogChange, isize>();
    let (rejected_in, rejected) = scope.new_collection::<Rejected, isize>();
    let (tally_in, tally) = scope.new_collection::<Tally, isize>();
    let (rules_in, rules) = scope.new_collection::<Rule, isize>();
    let (base_in, base) = scope.new_collection::<BaseRow, isize>();
    let (base_cutoff_in, base_cutoff) = scope.new_collection::<Time, isize>();

    let catalog = catalog_log.latest_by_priority("LatestByPriority");
    let item_category = arrange(catalog.clone().map(|(item, row)| (item, row.category)), "Arrange: ItemCategory");

    let tagging = tag_by_item(events.clone(), item_category.clone().as_collection(|item, c| (*item, *c)));

    let inputs = InputHandles {
        events: events_in,
        catalog: catalog_in,
        rejected: rejected_in,
        tally: tally_in,
        rules: rules_in,
        base: base_in,
        base_cutoff: base_cutoff_in,
    };
    let platform = Platform {
        events,
        item_category,
        item_user_reach: tagging.reach,
        item_totals: tagging.totals,
        tagged_items: tagging.items,
        tagged_users: tagging.users,
        rejected,
        tally,
        catalog,
        rules,
        base,
        base_cutoff,
        params,
        shared: RefCell::default(),
    };
    (inputs, platform)
}
