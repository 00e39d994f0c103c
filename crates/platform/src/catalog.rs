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

use std::collections::hash_map::Entry;

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
    /// Per item, one of its sent pairs: nearly always the only one (rows in time order),
    /// held in the map entry itself (24 bytes an item; each reader meets most items), so
    /// the check every event makes costs one probe and no pointer chase (6 % of a
    /// worker's samples with a `Vec` per item, 10 M events).
    sent: FxHashMap<ItemId, (Time, u64)>,
    /// The other sent pairs of the items with more than one (rows out of time order).
    more: FxHashMap<ItemId, Vec<(Time, u64)>>,
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
        let dominates = |&(t, s): &(Time, u64)| t <= time && s <= seq;
        match self.sent.entry(item) {
            Entry::Vacant(entry) => {
                entry.insert((time, seq));
            }
            Entry::Occupied(mut entry) => {
                let first = *entry.get();
                let more = self.more.get(&item).map(Vec::as_slice).unwrap_or_default();
                if dominates(&first) || more.iter().any(dominates) {
                    return None;
                }
                let mut kept: Vec<(Time, u64)> = std::iter::once(first)
                    .chain(more.iter().copied())
                    .filter(|&(t, s)| !(time <= t && seq <= s))
                    .collect();
                kept.push((time, seq));
                *entry.get_mut() = kept[0];
                match kept.len() {
                    1 => drop(self.more.remove(&item)),
                    _ => drop(self.more.insert(item, kept.split_off(1))),
                }
            }
        }
        let row = CatalogRow { category, seller: 0, price_cents: 0, online: true, is_ad: false, ad_bid_cents: 0 };
        Some((item, u64::MAX - seq, Some(row)))
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::DerivedCatalog;

    /// Against the rule stated plainly: a row is sent unless a row sent before it for the
    /// same item has an earlier-or-equal time and sequence; rows out of time order, items
    /// seen many times, several files.
    #[test]
    fn sends_exactly_the_rows_no_sent_row_dominates() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut derived = DerivedCatalog::default();
        let mut sent: Vec<(u64, u64, u64)> = Vec::new();
        for line in 1..5_000u64 {
            let item = rng.random_range(0..40u64);
            let time = 1_000 * (line / 50) + if rng.random_bool(0.2) { 0 } else { 1_000 * rng.random_range(0..20u64) };
            let file = rng.random_range(0..2u32);
            let seq = ((file as u64) << 40) | line;
            let want = !sent.iter().any(|&(i, t, s)| i == item && t <= time && s <= seq);
            let got = derived.row(item, 7, time, file, line);
            assert_eq!(got.is_some(), want, "item {item} at {time}, line {line} of file {file}");
            if let Some((i, priority, row)) = got {
                assert_eq!((i, priority, row.map(|r| r.category)), (item, u64::MAX - seq, Some(7)));
                sent.push((item, time, seq));
            }
        }
    }
}
