//! `--profile FILE`: how long each operator of the dataflow ran, per worker, from timely's
//! schedule log — the first place to look when a run is slower than expected.
//!
//! Written once every worker of the process has ended, as CSV
//! `worker,operator,name,address,busy_ms,schedules`: one row per operator and worker, the
//! busiest first. `busy_ms` is the time between the operator's start and stop events
//! (its own work; an operator inside a region counts inside its region's time too:
//! `address` tells the nesting); `schedules` how often it was scheduled. In a run of
//! several processes each process writes its own workers to `FILE.<process>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

/// The operators of this process's workers, by `(worker, operator id)`.
#[derive(Clone, Default)]
pub struct Profile(Arc<Mutex<BTreeMap<(usize, usize), Operator>>>);

#[derive(Default)]
struct Operator {
    name: String,
    address: Vec<usize>,
    busy: Duration,
    schedules: u64,
    /// When the running schedule started.
    started: Option<Duration>,
}

impl Profile {
    /// Records `worker`'s operators from now on.
    pub fn record(&self, worker: &mut Worker) {
        let index = worker.index();
        let Some(mut register) = worker.log_register() else { return };
        let operators = self.0.clone();
        register.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
            let Some(events) = data.as_ref() else { return };
            let mut operators = operators.lock().unwrap_or_else(|p| p.into_inner());
            for (at, event) in events {
                match event {
                    TimelyEvent::Operates(o) => {
                        let op = operators.entry((index, o.id)).or_default();
                        op.name.clone_from(&o.name);
                        op.address.clone_from(&o.addr);
                    }
                    TimelyEvent::Schedule(s) => {
                        let op = operators.entry((index, s.id)).or_default();
                        match s.start_stop {
                            StartStop::Start => op.started = Some(*at),
                            StartStop::Stop => {
                                if let Some(started) = op.started.take() {
                                    op.busy += at.saturating_sub(started);
                                    op.schedules += 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
    }

    /// Writes the profile to `path` (see the module's documentation).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let operators = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(&(usize, usize), &Operator)> = operators.iter().filter(|(_, o)| o.schedules > 0).collect();
        rows.sort_by(|(ka, a), (kb, b)| b.busy.cmp(&a.busy).then(ka.cmp(kb)));
        let mut w = csv::Writer::from_path(path)?;
        w.write_record(["worker", "operator", "name", "address", "busy_ms", "schedules"])?;
        for ((worker, id), op) in rows {
            let address = op.address.iter().map(ToString::to_string).collect::<Vec<_>>().join(".");
            let busy = format!("{:.3}", op.busy.as_secs_f64() * 1000.0);
            w.write_record([
                &worker.to_string(),
                &id.to_string(),
                &op.name,
                &address,
                &busy,
                &op.schedules.to_string(),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Where process `process` of `processes` writes the profile asked for at `path`.
pub fn path_of(path: &Path, process: u64, processes: u64) -> std::path::PathBuf {
    match processes {
        0 | 1 => path.to_path_buf(),
        _ => {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{process}"));
            name.into()
        }
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profile")
    }
}
