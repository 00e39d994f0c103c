//! Arranged state: how many updates differential's arrangements hold, read from
//! differential's own log, and how many bytes those updates take.
//!
//! Every arrangement of the platform layer and the dataflows is built with [`arrange`],
//! which records the size of its `((key, value), time, diff)` update under its name. At
//! run time each worker logs differential's arrangement events (a batch added, two
//! batches merged into one, a trace dropped) into one [`ArrangedState`] per process, and
//! the operator names from timely's log while the dataflows are built. The run summary
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
use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use crate::model::Time;

/// The update size of each named arrangement, as recorded by [`arrange`].
static UPDATE_BYTES: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// `arrange_by_key_named`, recording the size of the arrangement's updates.
pub fn arrange<'s, K, V, R>(
    c: VecCollection<'s, Time, (K, V), R>,
    name: &str,
) -> Arranged<'s, TraceAgent<ValSpine<K, V, Time, R>>>
where
    K: ExchangeData + Hashable,
    V: ExchangeData,
    R: ExchangeData + Semigroup,
{
    UPDATE_BYTES.lock().expect("update sizes").insert(name.to_string(), size_of::<((K, V), Time, R)>());
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
    /// (worker, operator) → the arrangement's name.
    names: BTreeMap<(usize, usize), String>,
    total: isize,
    peak: isize,
}

/// Arranged updates per arrangement (summed over the process's workers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateReport {
    /// `(name, updates, bytes)`, largest first.
    pub arrangements: Vec<(String, u64, u64)>,
    pub updates: u64,
    pub bytes: u64,
    /// The most updates held at once during the run.
    pub peak_updates: u64,
}

impl ArrangedState {
    /// Logs `worker`'s arrangement events from now on, and the names of the operators
    /// that `build` creates. Call before building the dataflows.
    pub fn record<R>(&self, worker: &mut Worker, build: impl FnOnce(&mut Worker) -> R) -> R {
        let index = worker.index();
        let Some(mut register) = worker.log_register() else { return build(worker) };
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
        let accounts = self.accounts.clone();
        register.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
            let Some(events) = data.as_ref() else { return };
            let mut a = accounts.lock().expect("arranged state");
            for (_, event) in events {
                if let TimelyEvent::Operates(op) = event {
                    a.names.insert((index, op.id), op.name.clone());
                }
            }
        });
        drop(register);
        let built = build(worker);
        // Names are only needed for the operators built above: stop timely's log.
        if let Some(mut register) = worker.log_register() {
            register.flush();
            register.remove("timely");
        }
        built
    }

    /// The updates held now.
    pub fn report(&self) -> StateReport {
        let a = self.accounts.lock().expect("arranged state");
        let sizes = UPDATE_BYTES.lock().expect("update sizes");
        let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
        for (key, held) in &a.held {
            let name = a.names.get(key).map_or("(unnamed)", String::as_str);
            *by_name.entry(name).or_default() += (*held).max(0) as u64;
        }
        let mut arrangements: Vec<(String, u64, u64)> = by_name
            .into_iter()
            .map(|(name, n)| (name.to_string(), n, n * sizes.get(name).copied().unwrap_or(0) as u64))
            .collect();
        arrangements.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        StateReport {
            updates: arrangements.iter().map(|x| x.1).sum(),
            bytes: arrangements.iter().map(|x| x.2).sum(),
            arrangements,
            peak_updates: a.peak.max(0) as u64,
        }
    }
}
