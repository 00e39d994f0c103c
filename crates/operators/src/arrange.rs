//! Arranged state: how many updates differential's arrangements hold, read from
//! differential's own log, and how many bytes those updates take.
//!
//! Every arrangement of the platform layer and the dataflows is built with [`arrange`],
//! which records its name and the size of its `((key, value), time, diff)` update under
//! the operator identifier it is about to get. At run time each worker logs
//! differential's arrangement events (a batch added, two batches merged into one, a trace
//! dropped) into one [`ArrangedState`] per process. The run summary
//! then reports the updates held at the end of the input (and their peak), per
//! arrangement and in total. Bytes are updates × update size: an upper bound of what the
//! batches store (a batch keeps each key and value once, plus offsets, and the time and
//! diff per update). State kept by shopflow's own operators in hash maps (the grouped
//! counters, top-k, windows) is not arranged and not in this figure: it is in the peak
//! RSS.

use std::collections::BTreeMap;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

use differential_dataflow::difference::Semigroup;
use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use timely::worker::Worker;

use crate::TotalTime;

/// (worker, operator identifier) → the arrangement's name and update size, as recorded
/// by [`arrange`] (identifiers restart with each run; a run overwrites its own).
static ARRANGEMENTS: Mutex<BTreeMap<(usize, usize), (String, usize)>> = Mutex::new(BTreeMap::new());

/// `arrange_by_key_named`, recording the arrangement's name and update size.
pub fn arrange<'s, T, K, V, R>(
    c: VecCollection<'s, T, (K, V), R>,
    name: &str,
) -> Arranged<'s, TraceAgent<ValSpine<K, V, T, R>>>
where
    T: TotalTime,
    K: ExchangeData + Hashable,
    V: ExchangeData,
    R: ExchangeData + Semigroup,
{
    // The arrangement is the next operator built in this worker.
    let worker = c.inner.scope().worker();
    let key = (worker.index(), worker.peek_identifier());
    let size = size_of::<((K, V), T, R)>();
    ARRANGEMENTS.lock().expect("arrangements").insert(key, (name.to_string(), size));
    c.arrange_by_key_named(name)
}

/// The arranged updates of one process's workers (clones share them).
#[derive(Clone, Debug, Default)]
pub struct ArrangedState {
    accounts: Arc<Mutex<Accounts>>,
}

#[derive(Debug, Default)]
struct Accounts {
    /// (worker, operator) → updates held.
    held: BTreeMap<(usize, usize), isize>,
    total: isize,
    peak: isize,
}

/// Arranged updates per arrangement (summed over the process's workers, or over the
/// processes with [`StateReport::add`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateReport {
    /// `(name, updates, bytes)`, largest first.
    pub arrangements: Vec<(String, u64, u64)>,
    pub updates: u64,
    pub bytes: u64,
    /// The most updates held at once during the run.
    pub peak_updates: u64,
}

impl StateReport {
    /// Adds another process's report: updates and bytes per arrangement and in total;
    /// peaks add up too (an upper bound of the run's peak: processes peak at different
    /// moments).
    pub fn add(&mut self, other: &StateReport) {
        let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (name, n, bytes) in self.arrangements.iter().chain(&other.arrangements) {
            let entry = by_name.entry(name.clone()).or_default();
            entry.0 += n;
            entry.1 += bytes;
        }
        self.arrangements = by_name.into_iter().map(|(name, (n, bytes))| (name, n, bytes)).collect();
        self.arrangements.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        self.updates += other.updates;
        self.bytes += other.bytes;
        self.peak_updates += other.peak_updates;
    }
}

impl ArrangedState {
    /// Logs `worker`'s arrangement events from now on. Call before building the dataflows.
    pub fn record(&self, worker: &mut Worker) {
        let index = worker.index();
        let Some(mut register) = worker.log_register() else { return };
        let accounts = self.accounts.clone();
        register.insert::<DifferentialEventBuilder, _>("differential/arrange", move |_time, data| {
            let Some(events) = data.as_ref() else { return };
            let mut a = accounts.lock().expect("arranged state");
            for (_, event) in events {
                let (operator, diff) = match event {
                    DifferentialEvent::Batch(b) => (b.operator, b.length as isize),
                    DifferentialEvent::Merge(m) => match m.complete {
                        Some(merged) => (m.operator, merged as isize - (m.length1 + m.length2) as isize),
                        None => continue,
                    },
                    DifferentialEvent::Drop(d) => (d.operator, -(d.length as isize)),
                    _ => continue,
                };
                *a.held.entry((index, operator)).or_default() += diff;
                a.total += diff;
                a.peak = a.peak.max(a.total);
            }
        });
    }

    /// The updates held now.
    pub fn report(&self) -> StateReport {
        let a = self.accounts.lock().expect("arranged state");
        let known = ARRANGEMENTS.lock().expect("arrangements");
        // name → (updates, bytes), over the workers.
        let mut by_name: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (key, held) in &a.held {
            let (name, size) = known.get(key).map_or(("(unnamed)", 0), |(n, s)| (n.as_str(), *s));
            let entry = by_name.entry(name).or_default();
            entry.0 += (*held).max(0) as u64;
            entry.1 += (*held).max(0) as u64 * size as u64;
        }
        let mut arrangements: Vec<(String, u64, u64)> =
            by_name.into_iter().map(|(name, (n, bytes))| (name.to_string(), n, bytes)).collect();
        arrangements.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        StateReport {
            updates: arrangements.iter().map(|x| x.1).sum(),
            bytes: arrangements.iter().map(|x| x.2).sum(),
            arrangements,
            peak_updates: a.peak.max(0) as u64,
        }
    }
}
