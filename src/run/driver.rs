//! One worker of a run: builds the platform layer and the selected dataflows, reads its
//! share of the sources ([`super::feed`]), ends reading with the other workers
//! ([`super::stop`]), and (worker 0) collects the report.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::Instant;

use platform::config_inputs::ConfigInputs;
use platform::model::{Scene, Time};
use platform::source::Rejected;
use platform::{self, Tally};
use rustc_hash::FxHashSet;
use sinks::{SinkFailure, SinkLog, Sinks};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Input as _};
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use super::feed::{events_read, Feed};
use super::pacing::{CLOSE_STEP, LIVE_STEP};
use super::progress::Progress;
use super::reader::Reader;
use super::report::{write_rejected, FileReport, RunReport};
use super::stop::{Control, Coordination};
use super::RunConfig;
use crate::error::Error;

/// The body of one worker. Worker 0 returns the report.
pub fn worker(worker: &mut Worker, cfg: &RunConfig) -> Result<Option<RunReport>, Error> {
    let started = Instant::now();
    let index = worker.index();
    let peers = worker.peers();
    let rejected_rows: Rc<RefCell<Vec<(Rejected, Time, isize)>>> = Rc::default();
    let tallies: Rc<RefCell<Vec<(Tally, Time, isize)>>> = Rc::default();
    let probe = ProbeHandle::new();
    // The workers of process 0 write the outputs (they take turns).
    let writers = peers / cfg.processes.max(1) as usize;
    let mut sinks =
        Sinks::new(index, writers, cfg.sink, cfg.envelope, cfg.out_dir.clone(), probe.clone(), cfg.sink_log.clone());
    sinks.kafka = cfg.sink_topics.clone();
    let store = cfg.serve.as_ref().map(|s| s.store.clone());
    sinks.observer = cfg.serve.as_ref().map(|s| s.feeder.clone() as std::sync::Arc<dyn sinks::Observer>);
    // `/metrics`: rows per input file by outcome, as worker 0 gathers them.
    let count_rows = |outcome: &'static str| {
        let store = store.clone().filter(|_| index == 0);
        let files: Vec<String> = (0..cfg.sources.len() as u32 + cfg.config.bases.len() as u32)
            .map(|i| cfg.file_path(i).display().to_string())
            .collect();
        move |file: u32, n: isize| {
            if let (Some(store), Some(path)) = (&store, files.get(file as usize)) {
                store.metrics.events.with_label_values(&[path.as_str(), outcome]).inc_by(n.max(0) as u64);
            }
        }
    };
    let (count_valid, count_late, count_rejected) = (count_rows("valid"), count_rows("late"), count_rows("rejected"));

    cfg.arranged.record(worker);
    if let Some((_, profile)) = &cfg.profile {
        profile.record(worker);
    }
    let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
        let (inputs, platform) = platform::build(scope, cfg.params);
        for name in &cfg.outputs {
            dataflows::attach(name, &platform, &sinks);
        }
        if store.is_some() {
            // The store keeps the catalog too (item lookups).
            sinks.observe(platform.catalog.clone(), serving::store::catalog_schema());
        }
        sinks.gather(platform.rejected.clone(), "Rejected", rejected_rows.clone(), move |r, n| {
            count_rejected(r.file, n)
        });
        sinks.gather(platform.tally.clone(), "Tally", tallies.clone(), move |t, n| match t {
            Tally::Valid(f) => count_valid(*f, n),
            Tally::Late(f) => count_late(*f, n),
            Tally::Scene(_) => {}
        });
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
        let reader = Reader::open(i as u32, spec, &cfg.kafka, (index, peers), (cfg.epoch_ms, cfg.lateness_ms));
        readers.push(reader.map_err(Error::Input)?);
    }
    let mut progress = Progress::new(index == 0 && cfg.progress && std::io::stderr().is_terminal());
    // Worker 0 inserts the configuration (rules, bases) and, under --follow, watches it.
    let mut config = (index == 0).then(|| ConfigInputs::start(&cfg.config, cfg.epoch_ms, cfg.follow, &mut inputs));
    let mut feed = Feed::new(cfg, index, peers);
    feed.latency = (index == 0).then(|| sinks.log.clone()).filter(|log| log.latency.is_some());
    feed.store = store.clone().filter(|_| index == 0);
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
            // The latest epoch a row of this worker's sources has (every worker scans
            // every line of a file; a Kafka partition is read by one).
            let last = readers.iter().map(|r| r.last_epoch(cfg.epoch_ms)).max().unwrap_or(0);
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
    worker.step_or_park_while(Some(CLOSE_STEP), || {
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
    health(&sinks.log)?;

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
    // A Kafka source's messages were read by the workers owning its partitions.
    for (file, url) in files.iter_mut().zip(&cfg.kafka.urls) {
        if url.is_some() {
            file.lines = file.valid + file.rejected;
        }
    }
    write_rejected(cfg, &rejected).map_err(|e| {
        Error::Sink(format!("cannot write the rejected rows to {}: {e}", cfg.out_dir.join("rejected.csv").display()))
    })?;
    if let (Some(path), Some(log)) = (&cfg.latency_log, &sinks.log.latency) {
        log.lock()
            .expect("latency log")
            .write(path)
            .map_err(|e| Error::Sink(format!("cannot write {}: {e}", path.display())))?;
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

/// Whether the run can go on: checked at every hand-over of input ([`Feed`]) and at the
/// end. A failure of this process's sinks, or an operator that met negative
/// multiplicities (`operators::negative`), ends the run.
pub(super) fn health(sinks: &SinkLog) -> Result<(), Error> {
    match sinks.failure() {
        Some(SinkFailure::Write(message)) => return Err(Error::Sink(message)),
        Some(SinkFailure::Closed) => return Err(Error::ClosedPipe),
        None => {}
    }
    let negative = operators::negative::seen();
    if negative.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = negative.iter().map(|(name, n)| format!("{name} ({n})")).collect();
    Err(Error::Internal(format!(
        "negative multiplicities (retractions of what was never inserted) reached operators that rule them out: {}",
        list.join(", ")
    )))
}
