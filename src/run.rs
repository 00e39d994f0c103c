//! `shopflow run`: builds the platform layer and the selected dataflows on every
//! worker, feeds each worker's share of the sources, and reports the run.
//!
//! The logical epoch (what outputs report) and the physical batch (how many lines are
//! read between worker steps) are separate knobs: `--epoch-ms` and `--batch-lines`.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::dataflows;
use crate::model::{CatalogRow, ItemId, Time};
use crate::platform::{self, InputHandles, Tally};
use crate::sink::{SinkKind, Sinks};
use crate::source::{Line, Rejected, Row, SourceReader, SourceSpec};

/// Lines a reader hands over before the driver re-checks watermarks.
const CHUNK_LINES: usize = 4096;

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
    pub strict: bool,
    pub batch_lines: u64,
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
    pub workers: usize,
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
    let sinks = Sinks {
        writes: index == 0,
        kind: cfg.sink,
        out_dir: cfg.out_dir.clone(),
        probe: probe.clone(),
        finished: Rc::new(Cell::new(0)),
        attached: Rc::new(Cell::new(0)),
        write_time: Rc::new(Cell::new(Duration::ZERO)),
        rows_written: Rc::new(Cell::new(0)),
        times: Rc::default(),
        error: Rc::new(RefCell::new(None)),
    };

    let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
        let (inputs, platform) = platform::build(scope);
        for name in &cfg.outputs {
            dataflows::attach(name, &platform, &sinks);
        }
        sinks.gather(platform.rejected.clone(), "Rejected", rejected_rows.clone());
        sinks.gather(platform.tally.clone(), "Tally", tallies.clone());
        inputs
    });

    let mut readers = Vec::with_capacity(cfg.sources.len());
    for (i, spec) in cfg.sources.iter().enumerate() {
        readers.push(SourceReader::open(i as u32, spec).map_err(RunError)?);
    }
    let feed = Feed::new(cfg, index, peers);
    feed.run(worker, &mut inputs, &mut readers, &probe)?;
    inputs.close();

    if index != 0 {
        return Ok(None);
    }
    worker.step_while(|| sinks.finished.get() < sinks.attached.get());
    if let Some(e) = sinks.error.borrow().clone() {
        return Err(RunError(e));
    }

    let mut files: Vec<FileReport> = cfg
        .sources
        .iter()
        .zip(&readers)
        .map(|(spec, r)| FileReport {
            path: spec.path.clone(),
            lines: r.data_lines(),
            ..FileReport::default()
        })
        .collect();
    for (tally, _, n) in tallies.borrow().iter() {
        match *tally {
            Tally::Valid(f) => files[f as usize].valid += *n as u64,
            Tally::Late(f) => files[f as usize].late += *n as u64,
        }
    }
    let mut rejected: Vec<Rejected> = rejected_rows
        .borrow_mut()
        .drain(..)
        .map(|(r, _, _)| r)
        .collect();
    rejected.sort();
    for r in &rejected {
        files[r.file as usize].rejected += 1;
    }
    write_rejected(cfg, &rejected)
        .map_err(|e| RunError(format!("cannot write rejected rows: {e}")))?;

    let times = sinks.times.borrow();
    let (epochs, first_epoch, last_epoch) = (
        times.len() as u64,
        times.first().copied(),
        times.last().copied(),
    );
    drop(times);
    Ok(Some(RunReport {
        files,
        epochs,
        first_epoch,
        last_epoch,
        wall: started.elapsed(),
        write_time: sinks.write_time.get(),
        rows_written: sinks.rows_written.get(),
        workers: peers,
    }))
}

fn write_rejected(cfg: &RunConfig, rejected: &[Rejected]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(cfg.out_dir.join("rejected.csv"))?;
    w.write_record(["file", "line", "reason", "raw"])?;
    for r in rejected {
        let path = cfg.sources[r.file as usize].path.display().to_string();
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
        }
    }

    fn run(
        mut self,
        worker: &mut Worker,
        inputs: &mut InputHandles,
        readers: &mut [SourceReader],
        probe: &ProbeHandle<Time>,
    ) -> Result<(), RunError> {
        let mut frontier: Time = 0;
        let mut stepped: Time = 0;
        let mut since_step: u64 = 0;
        let (epoch_ms, lateness_ms) = (self.cfg.epoch_ms, self.cfg.lateness_ms);
        loop {
            // Read from the source that is furthest behind in event time.
            let Some(reader) = readers
                .iter_mut()
                .filter(|r| !r.exhausted)
                .min_by_key(|r| (r.progress(), r.index))
            else {
                break;
            };
            let before = reader.lines_read();
            let file = reader.index;
            let mut strict_error = None;
            reader
                .read_chunk(
                    CHUNK_LINES,
                    self.index,
                    self.peers,
                    epoch_ms,
                    lateness_ms,
                    |line| match line {
                        Line::Valid {
                            row,
                            time,
                            late,
                            line,
                        } => self.accept(inputs, file, line, row, time, late),
                        Line::Rejected { line, reason, raw } => {
                            if self.cfg.strict && strict_error.is_none() {
                                let path = self.cfg.sources[file as usize].path.display();
                                strict_error = Some(format!("{path}:{line}: {reason} (--strict)"));
                            }
                            let raw = String::from_utf8_lossy(raw).into_owned();
                            inputs.rejected.insert(Rejected {
                                file,
                                line,
                                reason,
                                raw,
                            });
                        }
                    },
                )
                .map_err(|e| {
                    RunError(format!(
                        "cannot read {}: {e}",
                        self.cfg.sources[file as usize].path.display()
                    ))
                })?;
            if let Some(message) = strict_error {
                return Err(RunError(message));
            }
            since_step += reader.lines_read() - before;

            let open = readers
                .iter()
                .filter(|r| !r.exhausted)
                .map(|r| r.open_epoch(lateness_ms, epoch_ms))
                .min();
            if let Some(open) = open {
                if open > frontier {
                    inputs.advance_to(open);
                    frontier = open;
                }
            }
            if since_step >= self.cfg.batch_lines || open.is_none() {
                self.flush_tallies(inputs);
                inputs.flush();
                worker.step_while(|| probe.less_than(&stepped));
                stepped = frontier;
                since_step = 0;
            }
        }
        self.flush_tallies(inputs);
        Ok(())
    }

    fn accept(
        &mut self,
        inputs: &mut InputHandles,
        file: u32,
        line: u64,
        row: Row,
        time: Time,
        late: bool,
    ) {
        self.valid[file as usize] += 1;
        self.late[file as usize] += late as isize;
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
                    let row = CatalogRow {
                        category,
                        seller: 0,
                        price_cents: 0,
                        online: true,
                        is_ad: false,
                        ad_bid_cents: 0,
                    };
                    inputs
                        .catalog
                        .update_at((e.item, u64::MAX - seq, Some(row)), time, 1);
                }
            }
            // A later line of the catalog file wins.
            Row::Catalog { item, row, .. } => inputs.catalog.update_at((item, line, row), time, 1),
        }
    }

    fn flush_tallies(&mut self, inputs: &mut InputHandles) {
        for (f, (valid, late)) in self.valid.iter_mut().zip(self.late.iter_mut()).enumerate() {
            if *valid != 0 {
                inputs
                    .tally
                    .update(Tally::Valid(f as u32), std::mem::take(valid));
            }
            if *late != 0 {
                inputs
                    .tally
                    .update(Tally::Late(f as u32), std::mem::take(late));
            }
        }
    }
}
