//! The serving store: every output of a run (and the catalog) as tables a reader can ask
//! as of one time, fed by the sinks with each output's complete times
//! ([`sinks::Observer`]).
//!
//! Consistency: a time `t` is *complete* in every table once each table's sink frontier
//! has passed it; [`Store::as_of`] is the latest time at which some table changed and
//! which is complete in every table. A reader asks every table as of that one time, so a
//! response never mixes epochs, even while later times are being applied: each table
//! keeps, per key, the rows it replaced at the last [`Store::retention`] change times
//! (the undo log), and a lookup at `t` reads the current row unless the key changed
//! after `t`, in which case it reads the row that change replaced.
//!
//! Every table has at most one row per key (the output's key columns, which lead its
//! row), so a table is a map from key to row.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use platform::model::CatalogRow;
use platform::model::{ItemId, Time};
use rustc_hash::FxHashMap;
use sinks::{Field, Observer, Schema};
use tokio::sync::broadcast;

/// An output row, in column order (shared by the table, its log and its subscribers).
pub type Row = Arc<[Field]>;

/// A row's key columns.
type Key = Arc<[Field]>;

/// One time's consolidated changes of a table (sorted by row).
pub type TimeChanges = (Time, Arc<Vec<(Row, isize)>>);

/// What a subscriber of one table receives.
#[derive(Clone, Debug)]
pub enum Update {
    /// The consolidated changes at `time` (sorted by row).
    Changes(Time, Arc<Vec<(Row, isize)>>),
    /// Every time before this one is complete in the table.
    Progress(Time),
}

/// How many updates a subscriber may fall behind before it is disconnected.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// One table: its rows by key, the recent changes, and its subscribers.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// The columns' positions in name order (how the API's JSON objects list them).
    pub by_name: Box<[usize]>,
    /// The number of key columns.
    pub key: usize,
    state: RwLock<TableState>,
    /// Every time before this is complete (applied).
    frontier: AtomicU64,
    subscribers: broadcast::Sender<Update>,
}

/// A table's rows: point lookups by hash (the sinks apply most changes to keys already
/// there), and an ordered index of the keys for prefix scans and pages.
struct TableState {
    /// The number of key columns.
    key: usize,
    rows: FxHashMap<Key, Row>,
    /// Per key changed at a retained time: `(time, the row before that change)`, in time order.
    undo: FxHashMap<Key, VecDeque<(Time, Option<Row>)>>,
    /// Every key in `rows` or `undo`, in order.
    index: BTreeSet<Key>,
    /// The changes at each retained time, in time order.
    log: VecDeque<TimeChanges>,
}

impl TableState {
    fn get(&self, key: &[Field], at: Time) -> Option<&Row> {
        if let Some(changes) = self.undo.get(key) {
            if let Some((_, before)) = changes.iter().find(|(t, _)| *t > at) {
                return before.as_ref();
            }
        }
        self.rows.get(key)
    }

    /// Takes the logged times at or before `horizon` off the log: their keys' undo
    /// entries are then dropped by [`TableState::forget`], a chunk at a time.
    fn expired(&mut self, horizon: Time) -> Vec<Arc<Vec<(Row, isize)>>> {
        let mut expired = Vec::new();
        while self.log.front().is_some_and(|(t, _)| *t <= horizon) {
            expired.push(self.log.pop_front().expect("a logged time").1);
        }
        expired
    }

    /// Drops the undo entries at or before `horizon` of the keys of `rows` (changes of an
    /// expired time): no lookup at or after `horizon` reads them.
    fn forget(&mut self, horizon: Time, rows: &[(Row, isize)]) {
        for (row, _) in rows {
            let key = &row[..self.key.min(row.len())];
            let Some(list) = self.undo.get_mut(key) else { continue };
            while list.front().is_some_and(|(t, _)| *t <= horizon) {
                list.pop_front();
            }
            if list.is_empty() {
                self.undo.remove(key);
                if !self.rows.contains_key(key) {
                    self.index.remove(key);
                }
            }
        }
    }

    /// Applies one time's changes, sorted by row (so each key's rows are adjacent), from
    /// `rows[from]` on, at most [`CHUNK`] keys of them; returns where it stopped.
    ///
    /// A lookup between two chunks reads the same as before the time: it asks as of an
    /// earlier time, and a key changed at `time` reads the row its undo entry keeps.
    fn apply(&mut self, time: Time, rows: &[(Row, isize)], from: usize) -> usize {
        let width = self.key;
        let key_of = |row: &Row| -> std::ops::Range<usize> { 0..width.min(row.len()) };
        let mut i = from;
        let mut keys = 0;
        while i < rows.len() && keys < CHUNK {
            keys += 1;
            let key = &rows[i].0[key_of(&rows[i].0)];
            // The row of the key that joined at `time`, if any (at most one per key).
            let mut joined = None;
            let mut j = i;
            while j < rows.len() && rows[j].0[key_of(&rows[j].0)] == *key {
                if rows[j].1 > 0 {
                    joined = Some(rows[j].0.clone());
                }
                j += 1;
            }
            let (key, before) = match self.rows.remove_entry(key) {
                Some((k, row)) => (k, Some(row)),
                None => {
                    let k: Key = key.into();
                    if !self.undo.contains_key(&k) {
                        self.index.insert(k.clone());
                    }
                    (k, None)
                }
            };
            if let Some(row) = joined {
                self.rows.insert(key.clone(), row);
            }
            self.undo.entry(key).or_default().push_back((time, before));
            i = j;
        }
        i
    }
}

/// The most keys one hold of a table's write lock applies or expires: a lookup waits for
/// one chunk at most, not for a whole time of changes (an hour's can be 10⁵ rows).
const CHUNK: usize = 1024;

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str], key: usize) -> Table {
        let mut by_name: Box<[usize]> = (0..columns.len()).collect();
        by_name.sort_by_key(|&i| columns[i]);
        Table {
            name,
            columns,
            by_name,
            key,
            state: RwLock::new(TableState {
                key,
                rows: FxHashMap::default(),
                undo: FxHashMap::default(),
                index: BTreeSet::new(),
                log: VecDeque::new(),
            }),
            frontier: AtomicU64::new(0),
            subscribers: broadcast::channel(SUBSCRIBER_BUFFER).0,
        }
    }

    /// Every time before this is complete.
    pub fn frontier(&self) -> Time {
        self.frontier.load(Ordering::SeqCst)
    }

    fn read(&self) -> RwLockReadGuard<'_, TableState> {
        self.state.read()
    }

    /// The row of `key` (all key columns) as of `at`.
    pub fn get(&self, key: &[Field], at: Time) -> Option<Row> {
        self.read().get(key, at).cloned()
    }

    /// Every row whose key starts with `prefix`, as of `at`, in key order (at most
    /// `limit`; after the key `after` when given: the next page).
    pub fn scan(&self, prefix: &[Field], at: Time, limit: usize, after: Option<&[Field]>) -> Vec<Row> {
        let state = self.read();
        let from = match after {
            Some(after) if after > prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        state
            .index
            .range::<[Field], _>((from, Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .filter_map(|k| state.get(k, at).cloned())
            .take(limit)
            .collect()
    }

    /// The number of rows now.
    pub fn len(&self) -> usize {
        self.read().rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latest retained time at or before `at` at which the table changed, with its
    /// changes.
    pub fn last_change(&self, at: Time) -> Option<TimeChanges> {
        self.read().log.iter().rev().find(|(t, _)| *t <= at).cloned()
    }

    /// A subscription from `since` (exclusive): the retained changes after it, the
    /// frontier they are complete up to, then a receiver of what follows. Without
    /// `since`: the rows now (as changes at the time of the table's last change).
    pub fn subscribe(&self, since: Option<Time>) -> (Vec<TimeChanges>, Time, broadcast::Receiver<Update>) {
        let state = self.read();
        // Read under the lock: every time before it is applied, so it is in the copy.
        let frontier = self.frontier();
        // Under the read lock: no change is applied between the copy and the subscription.
        let receiver = self.subscribers.subscribe();
        let past = match since {
            Some(since) => state.log.iter().filter(|(t, _)| *t > since).cloned().collect(),
            None => {
                // As of the last logged time: a time being applied is half in `rows`.
                let at = state.log.back().map(|(t, _)| *t).unwrap_or(0);
                let rows: Vec<(Row, isize)> =
                    state.index.iter().filter_map(|k| state.get(k, at)).map(|r| (r.clone(), 1)).collect();
                if rows.is_empty() {
                    Vec::new()
                } else {
                    vec![(at, Arc::new(rows))]
                }
            }
        };
        (past, frontier, receiver)
    }

    fn write(&self) -> RwLockWriteGuard<'_, TableState> {
        self.state.write()
    }

    /// Applies one complete time, [`CHUNK`] keys per hold of the write lock, then logs and
    /// sends it, then drops what no lookup after `horizon` needs, a chunk at a time.
    fn apply(&self, time: Time, rows: Vec<(Row, isize)>, horizon: Option<Time>) {
        let mut from = 0;
        while from < rows.len() {
            let mut state = self.write();
            from = state.apply(time, &rows, from);
            // Handed to the lookups waiting, if any, before the next chunk takes it again.
            RwLockWriteGuard::unlock_fair(state);
        }
        let rows = Arc::new(rows);
        let expired = {
            let mut state = self.write();
            state.log.push_back((time, rows.clone()));
            // Sent under the write lock, so a subscriber's copy and its stream do not overlap.
            let _ = self.subscribers.send(Update::Changes(time, rows));
            horizon.map(|h| (h, state.expired(h)))
        };
        let Some((horizon, expired)) = expired else { return };
        for changes in expired {
            for chunk in changes.chunks(CHUNK) {
                let mut state = self.write();
                state.forget(horizon, chunk);
                RwLockWriteGuard::unlock_fair(state);
            }
        }
    }
}

/// Every table of a run, and the times they hold.
pub struct Store {
    tables: BTreeMap<&'static str, Table>,
    /// The number of most recent change times (over all tables) lookups can ask for.
    pub retention: usize,
    /// The change times of every table, the most recent `retention + 1` of them.
    times: Mutex<BTreeSet<Time>>,
    /// Lookups are answered as of times after this (`None`: every time ever held).
    horizon: Mutex<Option<Time>>,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
}

/// The outcome of asking for a time.
#[derive(Debug, PartialEq, Eq)]
pub enum AsOf {
    /// Answer as of this time.
    At(Time),
    /// No time is complete yet.
    NotReady,
    /// The time is no longer held; the oldest one that is.
    Expired { oldest: Time },
    /// The time is not complete yet; the latest one that is.
    Future { latest: Time },
}

impl Store {
    /// A store of the tables `(name, columns, key columns)`, answering as of the last
    /// `retention` change times.
    pub fn new(
        tables: impl IntoIterator<Item = (&'static str, &'static [&'static str], usize)>,
        retention: usize,
    ) -> Store {
        Store {
            tables: tables.into_iter().map(|(n, c, k)| (n, Table::new(n, c, k))).collect(),
            retention: retention.max(1),
            times: Mutex::default(),
            horizon: Mutex::new(None),
            metrics: crate::metrics::Metrics::new(),
        }
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    /// Every time before this is complete in every table.
    pub fn complete(&self) -> Time {
        self.tables.values().map(Table::frontier).min().unwrap_or(0)
    }

    /// The latest time at which a table changed and which every table has complete.
    pub fn latest(&self) -> Option<Time> {
        let complete = self.complete();
        self.times.lock().unwrap_or_else(|p| p.into_inner()).range(..complete).next_back().copied()
    }

    /// The oldest time a lookup may ask for (`None`: nothing was dropped yet).
    pub fn oldest(&self) -> Option<Time> {
        *self.horizon.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time to answer a request for `requested` (`None`: the latest) as of.
    pub fn as_of(&self, requested: Option<Time>) -> AsOf {
        let Some(latest) = self.latest() else {
            return AsOf::NotReady;
        };
        match requested {
            None => AsOf::At(latest),
            Some(t) if t >= self.complete() => AsOf::Future { latest },
            Some(t) => match self.oldest() {
                Some(oldest) if t < oldest => AsOf::Expired { oldest },
                _ => AsOf::At(t),
            },
        }
    }
}

impl Store {
    /// Applies one complete time of `output`.
    fn apply_changes(&self, output: &'static str, time: Time, rows: Vec<(Row, isize)>) {
        let Some(table) = self.tables.get(output) else { return };
        let horizon = {
            let mut times = self.times.lock().unwrap_or_else(|p| p.into_inner());
            if times.insert(time) {
                self.metrics.epochs.inc();
            }
            let mut horizon = self.horizon.lock().unwrap_or_else(|p| p.into_inner());
            while times.len() > self.retention {
                // The oldest retained time becomes the horizon: lookups at it and after
                // it need only the changes after it.
                let oldest = times.pop_first().expect("a time");
                *horizon = Some(oldest);
            }
            *horizon
        };
        self.metrics.rows_applied(output, rows.len());
        table.apply(time, rows, horizon);
    }

    /// Every time of `output` before `frontier` is applied.
    fn apply_complete(&self, output: &'static str, frontier: Time) {
        let Some(table) = self.tables.get(output) else { return };
        if table.frontier.fetch_max(frontier, Ordering::SeqCst) < frontier {
            let _ = table.subscribers.send(Update::Progress(frontier));
        }
    }

    /// The observer the sinks hand complete times to: a bounded queue to one thread that
    /// applies them to `store` in the order they came (each output's times in order, each
    /// time before the frontier that completes it). The workers only queue; when the
    /// store falls [`FEED_BUFFER`] messages behind they wait for it, so its memory stays
    /// bounded.
    pub fn feeder(store: &Arc<Store>) -> std::io::Result<Feeder> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Message>(FEED_BUFFER);
        let store = store.clone();
        std::thread::Builder::new().name("shopflow:store".into()).spawn(move || {
            for message in rx {
                match message {
                    Message::Changes(output, time, rows) => store.apply_changes(output, time, rows),
                    Message::Complete(output, frontier) => store.apply_complete(output, frontier),
                }
            }
        })?;
        Ok(Feeder(tx))
    }
}

/// How many messages the sinks may queue ahead of the store.
pub const FEED_BUFFER: usize = 4096;

enum Message {
    Changes(&'static str, Time, Vec<(Row, isize)>),
    Complete(&'static str, Time),
}

/// Queues the sinks' complete times for the store's thread ([`Store::feeder`]).
pub struct Feeder(std::sync::mpsc::SyncSender<Message>);

impl Observer for Feeder {
    fn changes(&self, output: &'static str, time: Time, rows: Vec<(Row, isize)>) {
        let _ = self.0.send(Message::Changes(output, time, rows));
    }

    fn complete(&self, output: &'static str, frontier: Time) {
        let _ = self.0.send(Message::Complete(output, frontier));
    }
}

/// The key columns of an output given as text (one value per column), typed like the
/// output's rows (`sample`: one of them).
pub fn parse_key(table: &Table, sample: Option<&Row>, parts: &[&str]) -> Result<Row, String> {
    if parts.len() != table.key {
        return Err(format!(
            "{} has {} key column(s) ({}); got {} value(s)",
            table.name,
            table.key,
            table.columns[..table.key].join(","),
            parts.len()
        ));
    }
    parse_fields(table, sample, parts)
}

/// The first key columns of an output given as text (at most all of them).
pub fn parse_fields(table: &Table, sample: Option<&Row>, parts: &[&str]) -> Result<Row, String> {
    if parts.len() > table.key {
        return Err(format!("{}: {} values for {} key column(s)", table.name, parts.len(), table.key));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, text)| parse_field(sample.and_then(|r| r.get(i)), table.columns[i], text))
        .collect()
}

/// Every label an output's column can hold (strategies, recall sources, status).
const LABELS: [&str; 6] = ["hot", "i2i", "user", "hot+i2i", "online", "offline"];

/// A key field from text, typed like `like` (a field of the same column), or by the
/// column's name when the table is empty.
fn parse_field(like: Option<&Field>, column: &str, text: &str) -> Result<Field, String> {
    let bad = || format!("bad value {text:?} for {column}");
    Ok(match like {
        Some(Field::U(_)) => Field::U(text.parse().map_err(|_| bad())?),
        Some(Field::I(_)) => Field::I(text.parse().map_err(|_| bad())?),
        Some(Field::Wide(_)) => Field::Wide(text.parse().map_err(|_| bad())?),
        Some(Field::S(_)) => Field::S(platform::model::Scene::new(text.as_bytes()).map_err(|_| bad())?),
        Some(Field::Text(_)) => Field::Text(text.to_string()),
        Some(Field::Label(_)) => Field::Label(LABELS.iter().find(|l| **l == text).ok_or_else(bad)?),
        Some(Field::Fixed(_)) => return Err(bad()),
        None if column == "scene" => Field::S(platform::model::Scene::new(text.as_bytes()).map_err(|_| bad())?),
        None if column == "strategy" => Field::Text(text.to_string()),
        None => Field::U(text.parse().map_err(|_| bad())?),
    })
}

impl Table {
    /// A row of the table now or in its retained past: for typing keys given as text.
    pub fn sample(&self) -> Option<Row> {
        let state = self.read();
        // The first keys in order (a hash map's first entry can be a long scan when sparse).
        state
            .index
            .iter()
            .find_map(|k| state.rows.get(k).cloned().or_else(|| state.undo.get(k)?.iter().find_map(|(_, r)| r.clone())))
    }
}

/// The catalog as a table (not an output: the store keeps it for item lookups).
pub fn catalog_schema() -> Schema<(ItemId, CatalogRow)> {
    Schema {
        name: "catalog",
        columns: &["item_id", "category_id", "seller_id", "price_cents", "status", "is_ad", "ad_bid_cents"],
        key: 1,
        fields: |(item, row)| {
            vec![
                Field::U(*item),
                Field::U(row.category),
                Field::U(row.seller),
                Field::U(row.price_cents),
                Field::Label(if row.online { "online" } else { "offline" }),
                Field::U(row.is_ad as u64),
                Field::U(row.ad_bid_cents),
            ]
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: u64, value: u64) -> Row {
        vec![Field::U(key), Field::U(value)].into()
    }

    /// One time's changes moving every key of `keys` from `from` to `to` (`from` 0: new).
    fn changes(keys: u64, from: u64, to: u64) -> Vec<(Row, isize)> {
        let mut rows = Vec::new();
        for k in 0..keys {
            if from > 0 {
                rows.push((row(k, from), -1));
            }
            rows.push((row(k, to), 1));
        }
        rows.sort();
        rows
    }

    /// A time applied a chunk at a time: between chunks every lookup and a new
    /// subscription read the previous time whole; after the last, the new one.
    #[test]
    fn a_time_half_applied_reads_as_the_time_before() {
        let keys = 3 * CHUNK as u64 + 7;
        let table = Table::new("t", &["k", "v"], 1);
        table.apply(1, changes(keys, 0, 10), None);
        let second = changes(keys, 10, 20);
        let mut from = 0;
        let mut chunks = 0;
        while from < second.len() {
            from = table.write().apply(2, &second, from);
            chunks += 1;
            for k in 0..keys {
                assert_eq!(table.get(&[Field::U(k)], 1), Some(row(k, 10)), "key {k} after chunk {chunks}");
            }
            let (past, _, _) = table.subscribe(None);
            assert_eq!(past.len(), 1);
            assert_eq!(past[0].0, 1);
            assert_eq!(*past[0].1, changes(keys, 0, 10));
        }
        assert_eq!(chunks, 4, "3·CHUNK + 7 keys take four chunks");
        for k in 0..keys {
            assert_eq!(table.get(&[Field::U(k)], 2), Some(row(k, 20)));
        }
    }

    /// Expiring in chunks drops every undo entry no retained time needs, and keeps the
    /// ones it does.
    #[test]
    fn expiry_keeps_what_retained_times_read() {
        let keys = 2 * CHUNK as u64 + 1;
        let table = Table::new("t", &["k", "v"], 1);
        table.apply(1, changes(keys, 0, 10), None);
        table.apply(2, changes(keys, 10, 20), None);
        table.apply(3, changes(keys, 20, 30), Some(1));
        for k in 0..keys {
            assert_eq!(table.get(&[Field::U(k)], 2), Some(row(k, 20)));
            assert_eq!(table.get(&[Field::U(k)], 3), Some(row(k, 30)));
        }
        let state = table.read();
        assert_eq!(state.log.len(), 2);
        assert!(state.undo.values().all(|list| list.iter().all(|(t, _)| *t > 1)), "time 1's undo entries dropped");
        assert_eq!(state.undo.len() as u64, keys);
    }
}
