//! The catalog contract: which row decides an item's catalog row at a time.
//!
//! The catalog is a log of [`CatalogChange`]s `(item, priority, row)`; at time t, an item's
//! row is the one with the highest priority among its changes with time ≤ t (`None`:
//! deleted) — [`operators::LatestByPriority`] keeps it ([`crate::build`]). Two sources
//! write the log, and the priorities say which row wins:
//!
//! - **a catalog file** (native format): a later line wins, whatever the times — the
//!   priority is the line number ([`file_row_priority`]);
//! - **UserBehavior rows** carry their item's category: the first row of an item (the
//!   smallest (file, line)) names its category, an online item with no seller, price or
//!   ad fields — [`DerivedCatalog`], with priority `u64::MAX - (file, line)`.
//!
//! Only the category takes part in tagging, so price or status changes cost nothing
//! downstream.

use rustc_hash::FxHashMap;

use crate::model::{CatalogRow, CategoryId, ItemId, Time};

/// One catalog change: item, priority (the highest priority among the changes with
/// time ≤ t decides the item's row at t), and the row (`None`: deleted).
pub type CatalogChange = (ItemId, u64, Option<CatalogRow>);

/// The priority of line `line` of a catalog file: a later line wins.
pub fn file_row_priority(line: u64) -> u64 {
    line
}

/// The catalog rows one reader derives from UserBehavior rows. Per item it remembers the
/// (time, sequence) pairs it has sent, none of which dominates another: a row dominated by
/// one sent (earlier time and earlier sequence) can never decide the item's category, and
/// is not sent.
#[derive(Default)]
pub struct DerivedCatalog {
    sent: FxHashMap<ItemId, Vec<(Time, u64)>>,
}

impl DerivedCatalog {
    /// The catalog change that line `line` of events file `file` (an event of `item` in
    /// `category` at logical time `time`) implies, unless one already sent decides for it.
    pub fn row(
        &mut self,
        item: ItemId,
        category: CategoryId,
        time: Time,
        file: u32,
        line: u64,
    ) -> Option<CatalogChange> {
        let seq = ((file as u64) << 40) | line;
        let sent = self.sent.entry(item).or_default();
        if sent.iter().any(|&(t, s)| t <= time && s <= seq) {
            return None;
        }
        sent.retain(|&(t, s)| !(time <= t && seq <= s));
        sent.push((time, seq));
        let row = CatalogRow { category, seller: 0, price_cents: 0, online: true, is_ad: false, ad_bid_cents: 0 };
        Some((item, u64::MAX - seq, Some(row)))
    }
}
