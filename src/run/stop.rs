//! The stop protocol: every worker tells every other (over a small control dataflow, so
//! across processes too) its settings at start and where it stopped reading at the end;
//! worker 0 sets the sinks' cut-off from those.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use operators::arrange::StateReport;
use platform::model::Time;
use serde::{Deserialize, Serialize};
use sinks::Sinks;
use timely::dataflow::InputHandleVec;
use timely::worker::Worker;

use super::pacing::LIVE_STEP;
use super::RunConfig;
use crate::error::Error;

/// Set when the processes of a run disagree on their settings: each stops with that
/// message, and a peer's exit that follows is not a lost connection.
pub static SETTINGS_MISMATCH: AtomicBool = AtomicBool::new(false);

/// Messages between workers about the start and the end of reading (broadcast to every
/// worker).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Control {
    /// A worker's settings, sent at start.
    Hello { worker: u64, process: u64, settings: Vec<(String, String)> },
    /// A worker stopped reading: at input frontier `Some(t)` on a stop request, or
    /// `None` having read every line.
    Ended { worker: u64, stopped_at: Option<Time> },
    /// Worker 0 has set the sinks' cut-off: stopped workers may close their inputs.
    Close { cutoff: Time },
    /// The first worker of process `process` (not 0): its process's arranged state at
    /// the end of the input, for the run summary's totals.
    Arranged { process: u64, report: StateReport },
}

/// One worker's view of the stop protocol.
pub(super) struct Coordination {
    /// The process's stop request (signal handler).
    pub(super) flag: Arc<AtomicBool>,
    /// Every control message received, in arrival order.
    pub(super) log: Rc<RefCell<Vec<Control>>>,
    /// This worker's control input; `None` once closed.
    pub(super) handle: Option<InputHandleVec<Time, Control>>,
    pub(super) peers: usize,
}

impl Coordination {
    /// Every worker tells every other its settings; a worker whose settings differ from
    /// another's (processes started with different flags) fails the run before reading.
    pub(super) fn agree_on_settings(&mut self, worker: &mut Worker, cfg: &RunConfig) -> Result<(), Error> {
        if self.peers == 1 {
            return Ok(());
        }
        let index = worker.index() as u64;
        self.send(Control::Hello { worker: index, process: cfg.process, settings: cfg.settings.clone() });
        let hellos = |log: &[Control]| log.iter().filter(|c| matches!(c, Control::Hello { .. })).count();
        worker.step_or_park_while(Some(LIVE_STEP), || {
            hellos(&self.log.borrow()) < self.peers && !self.flag.load(Ordering::Relaxed)
        });
        let log = self.log.borrow();
        for c in log.iter() {
            let Control::Hello { process, settings, .. } = c else { continue };
            let theirs: BTreeMap<&str, &str> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            for (flag, ours) in &cfg.settings {
                let their = theirs.get(flag.as_str()).copied().unwrap_or("(not set)");
                if their != ours {
                    SETTINGS_MISMATCH.store(true, Ordering::SeqCst);
                    // Let the peers read this worker's settings before it goes away.
                    std::thread::sleep(Duration::from_millis(500));
                    return Err(Error::Usage(format!(
                        "the processes of this run were started with different settings: {flag} is {their} in \
                         process {process} and {ours} in process {}; start every process with the same flags",
                        cfg.process
                    )));
                }
            }
        }
        Ok(())
    }

    /// A stop was requested here, or some worker (of any process) stopped early.
    pub(super) fn stop_requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
            || self.log.borrow().iter().any(|c| matches!(c, Control::Ended { stopped_at: Some(_), .. }))
    }

    pub(super) fn send(&mut self, message: Control) {
        if let Some(h) = self.handle.as_mut() {
            h.send(message);
            h.flush();
        }
    }

    pub(super) fn close(&mut self) {
        self.handle = None;
    }

    /// Once every worker has ended its reading: the cut-off (`Time::MAX` when none
    /// stopped early).
    pub(super) fn all_ended(&self) -> Option<Time> {
        let log = self.log.borrow();
        let mut seen = vec![false; self.peers];
        let mut cutoff = Time::MAX;
        for c in log.iter() {
            if let Control::Ended { worker, stopped_at } = *c {
                seen[worker as usize] = true;
                cutoff = cutoff.min(stopped_at.unwrap_or(Time::MAX));
            }
        }
        seen.iter().all(|&s| s).then_some(cutoff)
    }

    /// How many other processes have sent their arranged state.
    pub(super) fn arranged_reports(&self) -> usize {
        self.log.borrow().iter().filter(|c| matches!(c, Control::Arranged { .. })).count()
    }

    /// The arranged state reports of the other processes received so far.
    pub(super) fn arranged_elsewhere(&self) -> Vec<StateReport> {
        let log = self.log.borrow();
        log.iter()
            .filter_map(|c| if let Control::Arranged { report, .. } = c { Some(report.clone()) } else { None })
            .collect()
    }

    pub(super) fn closed(&self) -> bool {
        self.log.borrow().iter().any(|c| matches!(c, Control::Close { .. }))
    }

    /// Worker 0, once every worker has ended: sets the sinks' cut-off, lets stopped
    /// workers close, and closes its control input.
    pub(super) fn decide(&mut self, sinks: &Sinks) {
        let cutoff = self.all_ended().expect("every worker has ended");
        sinks.log.cutoff.store(cutoff, std::sync::atomic::Ordering::SeqCst);
        self.send(Control::Close { cutoff });
        self.close();
    }
}
