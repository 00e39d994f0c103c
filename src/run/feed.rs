//! Reading one worker's share of the sources into the inputs: the source furthest
//! behind in event time first, epochs advanced as the watermarks pass them, paced, and
//! handed to the dataflow in batches (flow control: a batch waits for the outputs to catch
//! up with the previous one). A sink failure stops the run at the next hand-over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use platform::catalog::{file_row_priority, DerivedCatalog};
use platform::config_inputs::ConfigInputs;
use platform::model::{Scene, Time};
use platform::source::{Line, Rejected, Row, SourceError};
use platform::{InputHandles, Tally};
use rustc_hash::FxHashSet;
use sinks::SinkLog;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use super::driver::health;
use super::pacing::{Pacer, CLOSE_STEP, LIVE_STEP, MIN_WAIT};
use super::progress::Progress;
use super::reader::Reader;
use super::stop::Coordination;
use super::{Pace, RunConfig};
use crate::error::Error;

/// Lines a reader hands over before the driver re-checks watermarks.
const CHUNK_LINES: usize = 4096;

/// Lines of the events files read so far: the same on every worker (each scans all);
/// of a Kafka topic, the messages of this worker's partitions.
pub(super) fn events_read(readers: &[Reader]) -> u64 {
    readers.iter().filter(|r| r.is_events()).map(|r| r.data_lines()).sum()
}

/// Feeds one worker's share of the sources into the inputs.
pub(super) struct Feed<'a> {
    cfg: &'a RunConfig,
    index: usize,
    peers: usize,
    /// The catalog rows derived from UserBehavior rows (the catalog contract).
    derived: DerivedCatalog,
    valid: Vec<isize>,
    late: Vec<isize>,
    /// With rules: the scenes of the events read by this worker (each tallied once, for
    /// the warning about rules of scenes without events), and the last one seen (events
    /// come in runs of one scene: most need no set lookup).
    scenes: Option<FxHashSet<Scene>>,
    last_scene: Option<Scene>,
    new_scenes: Vec<Scene>,
    /// Paced or following: flush and step at least every `LIVE_STEP`.
    live: bool,
    /// Worker 0, `--latency-log`: input frontier advances.
    pub(super) latency: Option<Arc<SinkLog>>,
    /// Worker 0, `--serve`: the store whose metrics report the input frontier.
    pub(super) store: Option<Arc<serving::store::Store>>,
}

impl<'a> Feed<'a> {
    pub(super) fn new(cfg: &'a RunConfig, index: usize, peers: usize) -> Self {
        let n = cfg.sources.len();
        Feed {
            cfg,
            index,
            peers,
            derived: DerivedCatalog::default(),
            valid: vec![0; n],
            late: vec![0; n],
            scenes: cfg.config.rules_path.is_some().then(FxHashSet::default),
            last_scene: None,
            new_scenes: Vec::new(),
            live: cfg.pace != Pace::Unpaced || cfg.follow,
            latency: None,
            store: None,
        }
    }

    /// Reads until every file is exhausted (`None`) or a stop is requested
    /// (`Some(frontier)`: the input frontier reading stopped at). Also returns the
    /// last input frontier.
    pub(super) fn run(
        mut self,
        worker: &mut Worker,
        inputs: &mut InputHandles,
        readers: &mut [Reader],
        probe: &ProbeHandle<Time>,
        coord: &Coordination,
        progress: &mut Progress,
        mut config: Option<&mut ConfigInputs>,
    ) -> Result<(Option<Time>, Time), Error> {
        let mut frontier: Time = 0;
        let mut stepped: Time = 0;
        let mut since_step: u64 = 0;
        let (epoch_ms, lateness_ms) = (self.cfg.epoch_ms, self.cfg.lateness_ms);
        let live = self.live;
        let mut pacer = Pacer::new(self.cfg.pace);
        let mut last_step = Instant::now();
        // `--speed`: a reader whose next line is not due yet, until when.
        let mut blocked: Vec<Option<Instant>> = vec![None; readers.len()];
        for r in readers.iter_mut() {
            let follow = self.cfg.follow && r.is_events();
            r.set_follow(follow);
        }
        loop {
            if coord.stop_requested() {
                self.flush_tallies(inputs);
                inputs.flush();
                return Ok((Some(frontier), frontier));
            }
            let events_read = events_read(readers);
            progress.tick(events_read, frontier, probe);
            if let Some(config) = config.as_deref_mut() {
                config.poll(inputs, frontier);
            }
            // Read from the source that is furthest behind in event time, among those
            // with a line to read now.
            let now = Instant::now();
            let room = pacer.room(events_read, now);
            let pick = readers
                .iter()
                .enumerate()
                .filter(|(i, r)| !r.exhausted() && !r.at_eof() && blocked[*i].is_none_or(|b| b <= now))
                .min_by_key(|(_, r)| (r.progress(), r.index()))
                .map(|(i, r)| (i, r.is_events()))
                .filter(|&(_, events)| !(events && room == Some(0)));
            let Some((i, is_events)) = pick else {
                if readers.iter().all(|r| r.exhausted()) {
                    break;
                }
                // Nothing to read yet (paced, or at the end of followed files): wait
                // for the next line (at least `MIN_WAIT`, so a high rate reads in small
                // batches, not line by line), stepping. Before a longer wait, or when
                // the last one is `LIVE_STEP` ago, hand the input over and let the
                // outputs catch up.
                let now = Instant::now();
                let mut wake = now + LIVE_STEP;
                if frontier > stepped {
                    wake = wake.min(last_step + CLOSE_STEP);
                }
                if room == Some(0) {
                    wake = wake.min(pacer.next_due(events_read).unwrap_or(wake));
                }
                for b in blocked.iter().flatten() {
                    wake = wake.min(*b);
                }
                let wake = wake.max(now + MIN_WAIT);
                let closed = frontier > stepped && now - last_step >= CLOSE_STEP;
                if wake.saturating_duration_since(now) >= 5 * MIN_WAIT || now - last_step >= LIVE_STEP || closed {
                    self.sync(worker, inputs, probe, frontier, &mut stepped, coord)?;
                    since_step = 0;
                    last_step = Instant::now();
                }
                let now = Instant::now();
                if wake > now {
                    worker.step_or_park(Some(wake - now));
                }
                for r in readers.iter_mut() {
                    r.clear_eof();
                }
                continue;
            };
            blocked[i] = None;
            let max_lines = match room {
                Some(n) if is_events => (n as usize).min(CHUNK_LINES),
                _ => CHUNK_LINES,
            };
            let reader = &mut readers[i];
            let before = reader.lines_read();
            let file = reader.index();
            let mut strict_error = None;
            let mut wait_until = None;
            let mut clock = now;
            reader
                .read_chunk(
                    max_lines,
                    self.index,
                    self.peers,
                    epoch_ms,
                    lateness_ms,
                    |ts| match pacer.due_at(ts) {
                        Some(due) if due > clock => {
                            clock = Instant::now();
                            if due > clock {
                                wait_until = Some(due);
                                return false;
                            }
                            true
                        }
                        _ => true,
                    },
                    |line| match line {
                        Line::Valid { row, time, late, line } => self.accept(inputs, file, line, row, time, late),
                        Line::Rejected { line, partition, reason, raw } => {
                            if self.cfg.strict && strict_error.is_none() {
                                let path = self.cfg.sources[file as usize].path.display();
                                strict_error = Some(match partition {
                                    Some(p) => format!("{path} partition {p} offset {line}: {reason} (--strict)"),
                                    None => format!("{path}:{line}: {reason} (--strict)"),
                                });
                            }
                            let raw = String::from_utf8_lossy(raw).into_owned();
                            inputs.rejected.insert(Rejected { file, partition, line, reason, raw });
                        }
                    },
                )
                .or_else(|e| match e {
                    SourceError::Unreadable(message) => Err(Error::Input(message)),
                    SourceError::Rewritten(message) => {
                        // Stop cleanly: every complete epoch is written; then the run fails.
                        self.cfg.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message);
                        self.cfg.stop.store(true, Ordering::SeqCst);
                        Ok(())
                    }
                })?;
            if let Some(message) = strict_error {
                return Err(Error::Input(message));
            }
            blocked[i] = wait_until;
            since_step += reader.lines_read() - before;

            let open = readers.iter().filter(|r| !r.exhausted()).map(|r| r.open_epoch(lateness_ms, epoch_ms)).min();
            if let Some(open) = open {
                if open > frontier {
                    inputs.advance_to(open);
                    frontier = open;
                    if let Some(store) = &self.store {
                        store.metrics.input_at(open);
                    }
                    if let Some(log) = self.latency.as_ref().and_then(|l| l.latency.as_ref()) {
                        // Under --speed, the epochs before `open` were due once a line
                        // `lateness` past it was: a reader behind the clock counts.
                        let due = pacer.due_by_clock(open.saturating_add(lateness_ms));
                        log.lock().expect("latency log").input_at(open, due);
                    }
                }
            }
            let due = last_step.elapsed() >= LIVE_STEP || (frontier > stepped && last_step.elapsed() >= CLOSE_STEP);
            if since_step >= self.cfg.batch_lines || open.is_none() || (live && due) {
                self.sync(worker, inputs, probe, frontier, &mut stepped, coord)?;
                since_step = 0;
                last_step = Instant::now();
            }
        }
        self.flush_tallies(inputs);
        Ok((None, frontier))
    }

    /// Hands everything read to the dataflow and steps until the outputs have caught
    /// up with the frontier of the previous sync (flow control), or a stop arrives.
    /// A failure of the run ([`health`]) ends it here, at the next hand-over.
    fn sync(
        &mut self,
        worker: &mut Worker,
        inputs: &mut InputHandles,
        probe: &ProbeHandle<Time>,
        frontier: Time,
        stepped: &mut Time,
        coord: &Coordination,
    ) -> Result<(), Error> {
        self.flush_tallies(inputs);
        inputs.flush();
        let target = *stepped;
        worker.step_or_park_while(Some(LIVE_STEP), || probe.less_than(&target) && !coord.stop_requested());
        *stepped = frontier;
        health(&self.cfg.sink_log)
    }

    fn accept(&mut self, inputs: &mut InputHandles, file: u32, line: u64, row: Row, time: Time, late: bool) {
        self.valid[file as usize] += 1;
        self.late[file as usize] += late as isize;
        if let (Some(scenes), Row::Event(e) | Row::EventWithCategory(e, _)) = (&mut self.scenes, &row) {
            if self.last_scene != Some(e.scene) {
                self.last_scene = Some(e.scene);
                if scenes.insert(e.scene) {
                    self.new_scenes.push(e.scene);
                }
            }
        }
        match row {
            Row::Event(e) => inputs.events.update_at(e, time, 1),
            Row::EventWithCategory(e, category) => {
                inputs.events.update_at(e, time, 1);
                if let Some(change) = self.derived.row(e.item, category, time, file, line) {
                    inputs.catalog.update_at(change, time, 1);
                }
            }
            Row::Catalog { item, row, .. } => inputs.catalog.update_at((item, file_row_priority(line), row), time, 1),
        }
    }

    fn flush_tallies(&mut self, inputs: &mut InputHandles) {
        for scene in self.new_scenes.drain(..) {
            inputs.tally.update(Tally::Scene(scene), 1);
        }
        for (f, (valid, late)) in self.valid.iter_mut().zip(self.late.iter_mut()).enumerate() {
            if *valid != 0 {
                inputs.tally.update(Tally::Valid(f as u32), std::mem::take(valid));
            }
            if *late != 0 {
                inputs.tally.update(Tally::Late(f as u32), std::mem::take(late));
            }
        }
    }
}
