//! `shopflow run`: builds the platform layer and the selected dataflows on every
//! worker, feeds each worker's share of the sources, and reports the run.
//!
//! The logical epoch (what outputs report) and the physical batch (how many lines are
//! read between worker steps) are separate knobs: `--epoch-ms` and `--batch-lines`.
//!
//! Replay: input may be paced against the wall clock (`--rate`, `--speed`), files may be
//! followed as they grow (`--follow`), and a run can be stopped cleanly (Ctrl-C,
//! SIGTERM). A clean stop keeps a consistent prefix: every worker stops reading and
//! stops advancing its inputs, and tells every other worker (a small control dataflow,
//! so this works across processes too) the input frontier it stopped at, or that it
//! had read everything. Once worker 0 knows all of them, the cut-off is their minimum;
//! the sinks write every time below it and drop the rest; only then do inputs close.
//! Times below the cut-off are complete: every worker had advanced past them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Input as _};
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

use operators::arrange::{ArrangedState, StateReport};
use platform::config_inputs::{ConfigFiles, ConfigInputs};
use platform::model::{CatalogRow, ItemId, Scene, Time};
use platform::source::{Line, Rejected, Row, SourceError, SourceReader, SourceSpec};
use platform::{self, InputHandles, Params, Tally};
use sinks::{Envelope, OutputLog, SinkKind, SinkLog, Sinks};

/// Lines a reader hands over before the driver re-checks watermarks.
const CHUNK_LINES: usize = 4096;

/// When paced or following: flush and step at least this often, and poll a followed
/// file at its end this often.
const LIVE_STEP: Duration = Duration::from_millis(50);

/// When paced or following and an epoch has closed: hand it over (flush and step) no later
/// than this after the previous hand-over — the floor of a live epoch's latency, and a
/// bound on how often a live run steps for closed epochs.
const CLOSE_STEP: Duration = Duration::from_millis(2);

/// The shortest wait for a paced line.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// The progress line appears once a run has taken this long, and refreshes this often.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How input is paced against the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as possible.
    Unpaced,
    /// Event rows (lines of the events files, all of them, not per worker) per second.
    Rate(f64),
    /// Event time runs this many times faster than real time: a line with timestamp
    /// `ts` is not read before `start + (ts - first_ts) / speed`.
    Speed(f64),
}

/// Everything a worker needs to run; shared by all workers.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Events files first, then the catalog file if any.
    pub sources: Vec<SourceSpec>,
    pub out_dir: PathBuf,
    pub epoch_ms: u64,
    pub lateness_ms: u64,
    pub outputs: Vec<String>,
    pub sink: SinkKind,
    pub envelope: Envelope,
    pub strict: bool,
    pub batch_lines: u64,
    pub pace: Pace,
    /// Follow the events files as they grow; the run ends only on a stop request.
    pub follow: bool,
    /// Show a progress line (worker 0, only when stderr is a terminal).
    pub progress: bool,
    /// Set by Ctrl-C / SIGTERM (or a test): stop reading, keep complete epochs.
    pub stop: Arc<AtomicBool>,
    /// Why a source broke mid-run (a followed file rewritten in place): the run stops
    /// as on a stop request, then fails with this message.
    pub failure: Arc<std::sync::Mutex<Option<String>>>,
    /// Recall rules and batch bases (configuration inputs), as read at start.
    pub config: ConfigFiles,
    /// What the dataflows need to know of the run.
    pub params: Params,
    /// Write each input frontier's end-to-end latency here (worker 0).
    pub latency_log: Option<PathBuf>,
    /// The arranged updates of this process's workers (shared by them).
    pub arranged: ArrangedState,
    /// What this process's sinks share: counts, errors, the cut-off, epoch latency.
    pub sink_log: Arc<SinkLog>,
    /// This process's index (`-p`).
    pub process: u64,
    /// Said on stderr at the end of a run that did not fail (process 0).
    pub warnings: Vec<String>,
    /// The number of processes of the run (`-n`).
    pub processes: u64,
    /// The settings that decide the results, as `(flag, value)`: every process of a
    /// run must have the same (checked at start).
    pub settings: Vec<(String, String)>,
}

impl RunConfig {
    /// The path of file number `index`: the sources, then the base files.
    pub fn file_path(&self, index: u32) -> PathBuf {
        match self.sources.get(index as usize) {
            Some(spec) => spec.path.clone(),
            None => {
                self.config.bases.iter().find(|(_, i, _)| *i == index).map(|(p, _, _)| p.clone()).unwrap_or_default()
            }
        }
    }
}

/// What worker 0 reports at the end of a run.
#[derive(Debug)]
pub struct RunReport {
    pub files: Vec<FileReport>,
    /// Distinct times at which some output changed.
    pub epochs: u64,
    pub first_epoch: Option<Time>,
    pub last_epoch: Option<Time>,
    pub wall: Duration,
    pub write_time: Duration,
    pub rows_written: u64,
    /// Per output: rows written and net row-count changes by time.
    pub written: BTreeMap<&'static str, OutputLog>,
    pub workers: usize,
    /// Reading stopped early (a stop request): outputs hold every time below this
    /// cut-off and nothing at or after it.
    pub stopped_at: Option<Time>,
    /// Arranged state of every process when the input ended (every epoch before the
    /// last one processed), and the sum of their peaks.
    pub arranged: StateReport,
}

#[derive(Debug, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub lines: u64,
    pub valid: u64,
    pub rejected: u64,
    pub late: u64,
}

/// A run that could not complete: the message is one line for the user.
#[derive(Debug)]
pub struct RunError(pub String);

/// The body of one worker. Worker 0 returns the report.
pub fn worker(worker: &mut Worker, cfg: &RunConfig) -> Result<Option<RunReport>, RunError> {
    let started = Instant::now();
    let index = worker.index();
    let peers = worker.peers();
    let rejected_rows: Rc<RefCell<Vec<(Rejected, Time, isize)>>> = Rc::default();
    let tallies: Rc<RefCell<Vec<(Tally, Time, isize)>>> = Rc::default();
    let probe = ProbeHandle::new();
    // The workers of process 0 write the outputs (they take turns).
    let writers = peers / cfg.processes.max(1) as usize;
    let sinks =
        Sinks::new(index, writers, cfg.sink, cfg.envelope, cfg.out_dir.clone(), probe.clone(), cfg.sink_log.clone());

    cfg.arranged.record(worker);
    let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
        let (inputs, platform) = platform::build(scope, cfg.params);
        for name in &cfg.outputs {
            dataflows::attach(name, &platform, &sinks);
        }
        sinks.gather(platform.rejected.clone(), "Rejected", rejected_rows.clone());
        sinks.gather(platform.tally.clone(), "Tally", tallies.clone());
        inputs
    });

    let log: Rc<RefCell<Vec<Control>>> = Rc::default();
    let handle = worker.dataflow::<Time, _, _>(|scope| {
        let (handle, stream) = scope.new_input::<Control>();
        let log = log.clone();
        stream.broadcast().sink(Pipeline, "Control", move |(input, _frontier)| {
            input.for_each(|_, data| log.borrow_mut().extend(data.drain(..)));
        });
        handle
    });
    let mut coord = Coordination { flag: cfg.stop.clone(), log, handle: Some(handle), peers };
    coord.agree_on_settings(worker, cfg)?;

    let mut readers = Vec::with_capacity(cfg.sources.len());
    for (i, spec) in cfg.sources.iter().enumerate() {
        readers.push(SourceReader::open(i as u32, spec).map_err(RunError)?);
    }
    let mut progress = Progress::new(index == 0 && cfg.progress && std::io::stderr().is_terminal());
    // Worker 0 inserts the configuration (rules, bases) and, under --follow, watches it.
    let mut config = (index == 0).then(|| ConfigInputs::start(&cfg.config, cfg.epoch_ms, cfg.follow, &mut inputs));
    let mut feed = Feed::new(cfg, index, peers);
    feed.latency = (index == 0).then(|| sinks.log.clone()).filter(|log| log.latency.is_some());
    let (stopped_at, frontier) =
        feed.run(worker, &mut inputs, &mut readers, &probe, &coord, &mut progress, config.as_mut())?;
    let events_read = events_read(&readers);

    // End of reading: tell every worker where this one stopped (or that it read all).
    coord.send(Control::Ended { worker: index as u64, stopped_at });
    // The first worker of each other process sends its process's arranged state at the
    // end of the input to worker 0 (over the control input, so it stays open until then).
    let leader = index != 0 && index % (peers / cfg.processes.max(1) as usize).max(1) == 0;
    if index != 0 && !leader {
        coord.close();
    }
    if stopped_at.is_some() {
        // Keep the inputs open at the frontier they stopped at until worker 0 has set
        // the sinks' cut-off: until then no sink can see a time at or past it complete.
        if index == 0 {
            worker.step_or_park_while(Some(LIVE_STEP), || coord.all_ended().is_none());
            coord.decide(&sinks);
        } else {
            worker.step_or_park_while(Some(LIVE_STEP), || !coord.closed());
        }
    }
    // The arranged state at the end of the input: once every epoch with rows is processed
    // (closing the inputs completes the dataflow, which drops it). A complete read moves
    // the inputs just past the last such epoch first (no more rows will come; later times,
    // such as window expiries, wait for the close); a stopped one stays at its cut-off.
    let processed = match stopped_at {
        None => {
            // Every worker scanned every line: the latest epoch any row can have.
            let last = readers.iter().map(|r| r.open_epoch(0, cfg.epoch_ms)).max().unwrap_or(0);
            let past = last.max(frontier) + 1;
            inputs.advance_to(past);
            inputs.flush();
            past
        }
        Some(_) => frontier,
    };
    if index == 0 || leader {
        worker.step_or_park_while(Some(LIVE_STEP), || probe.less_than(&processed));
    }
    let mut arranged = cfg.arranged.report();
    if leader {
        coord.send(Control::Arranged { process: cfg.process, report: arranged.clone() });
        coord.close();
    }
    inputs.close();

    if index != 0 {
        return Ok(None);
    }
    worker.step_while(|| {
        // Worker 0 read everything itself: another worker may still have stopped early.
        if coord.handle.is_some() && coord.all_ended().is_some() {
            coord.decide(&sinks);
        }
        progress.tick(events_read, frontier, &probe);
        !sinks.all_finished() || coord.handle.is_some() || coord.arranged_reports() + 1 < cfg.processes as usize
    });
    for other in coord.arranged_elsewhere() {
        arranged.add(&other);
    }
    progress.finish();
    if let Some(e) = sinks.log.error.lock().expect("sink log").clone() {
        return Err(RunError(e));
    }

    let mut files: Vec<FileReport> = cfg
        .sources
        .iter()
        .zip(&readers)
        .map(|(spec, r)| FileReport { path: spec.path.clone(), lines: r.data_lines(), ..FileReport::default() })
        .collect();
    for (index, base) in config.iter().flat_map(|c| c.base_files()) {
        files.push(FileReport {
            path: cfg.file_path(index),
            lines: base.lines.saturating_sub(1),
            valid: base.rows.len() as u64,
            ..FileReport::default()
        });
    }
    for (tally, _, n) in tallies.borrow().iter() {
        match *tally {
            Tally::Valid(f) => files[f as usize].valid += *n as u64,
            Tally::Late(f) => files[f as usize].late += *n as u64,
            Tally::Scene(_) => {}
        }
    }
    // Rules for scenes no event was read in: their recall outputs stay empty.
    if let (Some(config), Some(path)) = (&config, &cfg.config.rules_path) {
        let seen: FxHashSet<Scene> = tallies
            .borrow()
            .iter()
            .filter_map(|(t, _, _)| if let Tally::Scene(s) = t { Some(*s) } else { None })
            .collect();
        let mut idle: Vec<Scene> = config.rules().iter().map(|r| r.scene).filter(|s| !seen.contains(s)).collect();
        idle.dedup();
        for scene in idle {
            eprintln!(
                "shopflow: warning: rules {}: scene `{}` had no events in this run: its recall outputs are empty",
                path.display(),
                scene.as_str()
            );
        }
    }
    let mut rejected: Vec<Rejected> = rejected_rows.borrow_mut().drain(..).map(|(r, _, _)| r).collect();
    rejected.sort();
    for r in &rejected {
        files[r.file as usize].rejected += 1;
    }
    write_rejected(cfg, &rejected).map_err(|e| {
        RunError(format!("cannot write the rejected rows to {}: {e}", cfg.out_dir.join("rejected.csv").display()))
    })?;
    if let (Some(path), Some(log)) = (&cfg.latency_log, &sinks.log.latency) {
        log.lock()
            .expect("latency log")
            .write(path)
            .map_err(|e| RunError(format!("cannot write {}: {e}", path.display())))?;
    }

    let written = std::mem::take(&mut *sinks.log.written.lock().expect("sink log"));
    let times = sinks.log.times.lock().expect("sink log");
    let (epochs, first_epoch, last_epoch) = (times.len() as u64, times.first().copied(), times.last().copied());
    drop(times);
    Ok(Some(RunReport {
        files,
        epochs,
        first_epoch,
        last_epoch,
        wall: started.elapsed(),
        write_time: sinks.log.write_time(),
        rows_written: sinks.log.rows_written.load(std::sync::atomic::Ordering::Relaxed),
        written,
        workers: peers,
        stopped_at: Some(sinks.log.cutoff()).filter(|&c| c != Time::MAX),
        arranged,
    }))
}

/// Lines of the events files read so far: the same on every worker (each scans all).
fn events_read(readers: &[SourceReader]) -> u64 {
    readers.iter().filter(|r| r.is_events()).map(|r| r.data_lines()).sum()
}

/// Set when the processes of a run disagree on their settings: each stops with that
/// message, and a peer's exit that follows is not a lost connection.
pub static SETTINGS_MISMATCH: AtomicBool = AtomicBool::new(false);

/// Messages between workers about the start and the end of reading (broadcast to every
/// worker).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Control {
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
struct Coordination {
    /// The process's stop request (signal handler).
    flag: Arc<AtomicBool>,
    /// Every control message received, in arrival order.
    log: Rc<RefCell<Vec<Control>>>,
    /// This worker's control input; `None` once closed.
    handle: Option<InputHandleVec<Time, Control>>,
    peers: usize,
}

impl Coordination {
    /// Every worker tells every other its settings; a worker whose settings differ from
    /// another's (processes started with different flags) fails the run before reading.
    fn agree_on_settings(&mut self, worker: &mut Worker, cfg: &RunConfig) -> Result<(), RunError> {
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
                    return Err(RunError(format!(
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
    fn stop_requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
            || self.log.borrow().iter().any(|c| matches!(c, Control::Ended { stopped_at: Some(_), .. }))
    }

    fn send(&mut self, message: Control) {
        if let Some(h) = self.handle.as_mut() {
            h.send(message);
            h.flush();
        }
    }

    fn close(&mut self) {
        self.handle = None;
    }

    /// Once every worker has ended its reading: the cut-off (`Time::MAX` when none
    /// stopped early).
    fn all_ended(&self) -> Option<Time> {
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
    fn arranged_reports(&self) -> usize {
        self.log.borrow().iter().filter(|c| matches!(c, Control::Arranged { .. })).count()
    }

    /// The arranged state reports of the other processes received so far.
    fn arranged_elsewhere(&self) -> Vec<StateReport> {
        let log = self.log.borrow();
        log.iter()
            .filter_map(|c| if let Control::Arranged { report, .. } = c { Some(report.clone()) } else { None })
            .collect()
    }

    fn closed(&self) -> bool {
        self.log.borrow().iter().any(|c| matches!(c, Control::Close { .. }))
    }

    /// Worker 0, once every worker has ended: sets the sinks' cut-off, lets stopped
    /// workers close, and closes its control input.
    fn decide(&mut self, sinks: &Sinks) {
        let cutoff = self.all_ended().expect("every worker has ended");
        sinks.log.cutoff.store(cutoff, std::sync::atomic::Ordering::SeqCst);
        self.send(Control::Close { cutoff });
        self.close();
    }
}

/// The progress line on stderr (worker 0, a terminal, runs longer than a second).
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled, started: now, last: now, bar: None }
    }

    /// Events read, events/s, the input frontier, and how far output lags it.
    fn tick(&mut self, events: u64, frontier: Time, probe: &ProbeHandle<Time>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now - self.last < PROGRESS_EVERY || now - self.started < PROGRESS_AFTER {
            return;
        }
        self.last = now;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner().with_elapsed(now - self.started);
            if let Ok(style) = ProgressStyle::with_template("{spinner} run [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar
        });
        let output = probe.with_frontier(|f| f.first().copied());
        let lag = output.map_or(0, |o| frontier.saturating_sub(o));
        let secs = (now - self.started).as_secs_f64();
        bar.set_message(format!(
            "{events} events read, {:.0}/s, input at {} UTC, output lag {lag} ms",
            events as f64 / secs,
            platform::utc::date_time(frontier)
        ));
        bar.tick();
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Wall-clock pacing of the input.
struct Pacer {
    pace: Pace,
    started: Instant,
    /// `--speed`: the first timestamp seen and when.
    base: Option<(u64, Instant)>,
}

impl Pacer {
    fn new(pace: Pace) -> Pacer {
        Pacer { pace, started: Instant::now(), base: None }
    }

    /// `--rate`: how many more event lines may be read now (`None`: no limit).
    fn room(&self, events_read: u64, now: Instant) -> Option<u64> {
        match self.pace {
            Pace::Rate(rate) => {
                let due = ((now - self.started).as_secs_f64() * rate).floor() as u64 + 1;
                Some(due.saturating_sub(events_read))
            }
            _ => None,
        }
    }

    /// `--rate`: when event line number `events_read` (0-based) is due.
    fn next_due(&self, events_read: u64) -> Option<Instant> {
        match self.pace {
            Pace::Rate(rate) => Some(later(self.started, events_read as f64 / rate)),
            _ => None,
        }
    }

    /// `--speed`: when a line with this timestamp is due (`None`: now).
    fn due_at(&mut self, ts: Option<u64>) -> Option<Instant> {
        let Pace::Speed(_) = self.pace else {
            return None;
        };
        let ts = ts?;
        let (ts0, _) = *self.base.get_or_insert_with(|| (ts, Instant::now()));
        (ts > ts0).then(|| self.due_by_clock(ts)).flatten()
    }

    /// `--speed`: when a line with timestamp `ts` is due, once the first line set the clock.
    fn due_by_clock(&self, ts: u64) -> Option<Instant> {
        let (Pace::Speed(speed), Some((ts0, wall0))) = (self.pace, self.base) else {
            return None;
        };
        Some(later(wall0, ts.saturating_sub(ts0) as f64 / 1000.0 / speed))
    }
}

/// `at + secs`, saturating far in the future.
fn later(at: Instant, secs: f64) -> Instant {
    let far = Duration::from_secs(1 << 32);
    Duration::try_from_secs_f64(secs).ok().and_then(|d| at.checked_add(d.min(far))).unwrap_or(at + far)
}

fn write_rejected(cfg: &RunConfig, rejected: &[Rejected]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(cfg.out_dir.join("rejected.csv"))?;
    w.write_record(["file", "line", "reason", "raw"])?;
    for r in rejected {
        let path = cfg.file_path(r.file).display().to_string();
        w.write_record([path.as_str(), &r.line.to_string(), &r.reason, &r.raw])?;
    }
    w.flush()
}

/// Feeds one worker's share of the sources into the inputs.
struct Feed<'a> {
    cfg: &'a RunConfig,
    index: usize,
    peers: usize,
    /// UserBehavior catalog rows this worker has sent, per item: (time, sequence)
    /// pairs none of which dominates another. A row dominated by one sent (earlier
    /// time and earlier sequence) can never decide the item's category.
    derived_sent: FxHashMap<ItemId, Vec<(Time, u64)>>,
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
    latency: Option<Arc<SinkLog>>,
}

impl<'a> Feed<'a> {
    fn new(cfg: &'a RunConfig, index: usize, peers: usize) -> Self {
        let n = cfg.sources.len();
        Feed {
            cfg,
            index,
            peers,
            derived_sent: FxHashMap::default(),
            valid: vec![0; n],
            late: vec![0; n],
            scenes: cfg.config.rules_path.is_some().then(FxHashSet::default),
            last_scene: None,
            new_scenes: Vec::new(),
            live: cfg.pace != Pace::Unpaced || cfg.follow,
            latency: None,
        }
    }

    /// Reads until every file is exhausted (`None`) or a stop is requested
    /// (`Some(frontier)`: the input frontier reading stopped at). Also returns the
    /// last input frontier.
    fn run(
        mut self,
        worker: &mut Worker,
        inputs: &mut InputHandles,
        readers: &mut [SourceReader],
        probe: &ProbeHandle<Time>,
        coord: &Coordination,
        progress: &mut Progress,
        mut config: Option<&mut ConfigInputs>,
    ) -> Result<(Option<Time>, Time), RunError> {
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
            r.follow = self.cfg.follow && r.is_events();
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
                .filter(|(i, r)| !r.exhausted && !r.at_eof && blocked[*i].is_none_or(|b| b <= now))
                .min_by_key(|(_, r)| (r.progress(), r.index))
                .map(|(i, r)| (i, r.is_events()))
                .filter(|&(_, events)| !(events && room == Some(0)));
            let Some((i, is_events)) = pick else {
                if readers.iter().all(|r| r.exhausted) {
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
                    self.sync(worker, inputs, probe, frontier, &mut stepped, coord);
                    since_step = 0;
                    last_step = Instant::now();
                }
                let now = Instant::now();
                if wake > now {
                    worker.step_or_park(Some(wake - now));
                }
                for r in readers.iter_mut() {
                    r.at_eof = false;
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
            let file = reader.index;
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
                        Line::Rejected { line, reason, raw } => {
                            if self.cfg.strict && strict_error.is_none() {
                                let path = self.cfg.sources[file as usize].path.display();
                                strict_error = Some(format!("{path}:{line}: {reason} (--strict)"));
                            }
                            let raw = String::from_utf8_lossy(raw).into_owned();
                            inputs.rejected.insert(Rejected { file, line, reason, raw });
                        }
                    },
                )
                .or_else(|e| match e {
                    SourceError::Unreadable(message) => Err(RunError(message)),
                    SourceError::Rewritten(message) => {
                        // Stop cleanly: every complete epoch is written; then the run fails.
                        self.cfg.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message);
                        self.cfg.stop.store(true, Ordering::SeqCst);
                        Ok(())
                    }
                })?;
            if let Some(message) = strict_error {
                return Err(RunError(message));
            }
            blocked[i] = wait_until;
            since_step += reader.lines_read() - before;

            let open = readers.iter().filter(|r| !r.exhausted).map(|r| r.open_epoch(lateness_ms, epoch_ms)).min();
            if let Some(open) = open {
                if open > frontier {
                    inputs.advance_to(open);
                    frontier = open;
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
                self.sync(worker, inputs, probe, frontier, &mut stepped, coord);
                since_step = 0;
                last_step = Instant::now();
            }
        }
        self.flush_tallies(inputs);
        Ok((None, frontier))
    }

    /// Hands everything read to the dataflow and steps until the outputs have caught
    /// up with the frontier of the previous sync (flow control), or a stop arrives.
    fn sync(
        &mut self,
        worker: &mut Worker,
        inputs: &mut InputHandles,
        probe: &ProbeHandle<Time>,
        frontier: Time,
        stepped: &mut Time,
        coord: &Coordination,
    ) {
        self.flush_tallies(inputs);
        inputs.flush();
        let target = *stepped;
        worker.step_while(|| probe.less_than(&target) && !coord.stop_requested());
        *stepped = frontier;
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
                // The first row of an item (smallest file, line) names its category.
                let seq = ((file as u64) << 40) | line;
                let sent = self.derived_sent.entry(e.item).or_default();
                if !sent.iter().any(|&(t, s)| t <= time && s <= seq) {
                    sent.retain(|&(t, s)| !(time <= t && seq <= s));
                    sent.push((time, seq));
                    let row =
                        CatalogRow { category, seller: 0, price_cents: 0, online: true, is_ad: false, ad_bid_cents: 0 };
                    inputs.catalog.update_at((e.item, u64::MAX - seq, Some(row)), time, 1);
                }
            }
            // A later line of the catalog file wins.
            Row::Catalog { item, row, .. } => inputs.catalog.update_at((item, line, row), time, 1),
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
