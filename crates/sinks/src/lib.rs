//! Sinks: every output leaves as a change stream `time,diff,<columns>` — or, in the upsert
//! envelope, `time,op,<columns>`: per time, one record per key whose row changed, its new
//! row (`upsert`) or only its key (`delete`).
//!
//! All updates of an output are routed to the one worker that writes it (the outputs take
//! turns over the workers of process 0), which buffers them by time and writes a time only
//! once the frontier has passed it (the time is complete), rows consolidated and sorted.
//! So every file is consistent as of every time it reports, and the bytes do not depend on
//! the number of workers or processes.
//!
//! The formats sit behind one small trait, [`ChangeWriter`].

pub mod changelog;
mod kafka;
pub mod latency;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{ExchangeData, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::ProbeHandle;

use crate::latency::LatencyLog;
use platform::model::Time;
pub use platform::output::{Attach, Field, Schema};
use platform::rates::format_micro;

/// How changes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Envelope {
    /// `time,diff,<columns>`: each row that left (-1) or joined (+1) the output at `time`.
    Diff,
    /// `time,op,<columns>`: per key whose row changed at `time`, `upsert` with the new row,
    /// or `delete` with the key columns only (the rest empty) — what compacted topics,
    /// tables and caches take.
    Upsert,
}

impl Envelope {
    /// The flag value (`diff`, `upsert`).
    pub fn name(self) -> &'static str {
        match self {
            Envelope::Diff => "diff",
            Envelope::Upsert => "upsert",
        }
    }

    /// The name of the second column.
    fn column(self) -> &'static str {
        match self {
            Envelope::Diff => "diff",
            Envelope::Upsert => "op",
        }
    }
}

/// One change record: a difference, or an upsert or delete of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Diff(isize),
    Upsert,
    Delete,
}

/// Writes one time's consolidated changes (sorted by row) in `envelope`; returns the
/// number of records.
pub fn write_changes<D>(
    w: &mut dyn ChangeWriter,
    envelope: Envelope,
    time: Time,
    rows: &[(D, isize)],
    schema: &Schema<D>,
) -> io::Result<usize> {
    match envelope {
        Envelope::Diff => {
            rows.iter().try_for_each(|(row, d)| w.write(time, Change::Diff(*d), &(schema.fields)(row)))?;
            Ok(rows.len())
        }
        Envelope::Upsert => write_upserts(w, time, rows, schema),
    }
}

/// Writes one time's consolidated changes (sorted by row) in the upsert envelope: per key
/// (the first `key` fields), the row that joined (`Upsert`), or the key alone when a row
/// only left (`Delete`), in key order; returns the number of records. Every output's key
/// columns lead its row type, so sorting by row groups each key's changes.
fn write_upserts<D>(
    w: &mut dyn ChangeWriter,
    time: Time,
    rows: &[(D, isize)],
    schema: &Schema<D>,
) -> io::Result<usize> {
    let key = schema.key;
    let mut records = 0;
    // The key of the group being read, whether a row of it joined, and its delete.
    let mut group: Option<Vec<Field>> = None;
    let mut joined = false;
    let mut delete: Option<Vec<Field>> = None;
    for (row, r) in rows {
        let fields = (schema.fields)(row);
        if group.as_deref() != Some(&fields[..key]) {
            debug_assert!(
                group.as_deref().is_none_or(|g| g < &fields[..key]),
                "{}: rows not grouped by key",
                schema.name
            );
            if let Some(k) = delete.take() {
                w.write(time, Change::Delete, &k)?;
                records += 1;
            }
            group = Some(fields[..key].to_vec());
            joined = false;
        }
        if *r > 0 {
            joined = true;
            delete = None;
            w.write(time, Change::Upsert, &fields)?;
            records += 1;
        } else if !joined && delete.is_none() {
            delete = Some(fields[..key].to_vec());
        }
    }
    if let Some(k) = delete {
        w.write(time, Change::Delete, &k)?;
        records += 1;
    }
    Ok(records)
}

/// Where change streams go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SinkKind {
    /// `<out>/<name>.csv`, header `time,diff,<columns>`.
    Csv,
    /// `<out>/<name>.jsonl`, one object per change.
    Jsonl,
    /// Standard output, lines `<name>,time,diff,<columns>`.
    Stdout,
    /// Kafka topics `PREFIX.<name>` (`--sink kafka://HOST:PORT/PREFIX`).
    #[value(skip)]
    Kafka,
}

impl SinkKind {
    /// The flag value (`csv`, `jsonl`, `stdout`).
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Csv => "csv",
            SinkKind::Jsonl => "jsonl",
            SinkKind::Stdout => "stdout",
            SinkKind::Kafka => "kafka",
        }
    }

    /// The file output `name` is written to in the output directory (`None`: stdout).
    pub fn file_name(self, name: &str) -> Option<String> {
        match self {
            SinkKind::Stdout | SinkKind::Kafka => None,
            kind => Some(format!("{name}.{}", kind.name())),
        }
    }
}

/// A destination for one output's changes, written in time order.
pub trait ChangeWriter {
    /// Writes one record; `fields` may hold only the key columns (a delete).
    fn write(&mut self, time: Time, change: Change, fields: &[Field]) -> io::Result<()>;
    /// Makes what was written visible: called once complete times have been written.
    fn flush(&mut self) -> io::Result<()>;
    /// Every time before `frontier` is written (a sink that records progress says so).
    fn complete(&mut self, _frontier: Time) -> io::Result<()> {
        Ok(())
    }
    /// The output is complete: everything written must have arrived when this returns.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

struct CsvWriter {
    out: BufWriter<File>,
    columns: usize,
}
struct JsonlWriter {
    out: BufWriter<File>,
    columns: &'static [&'static str],
}
/// Lines gather in `buf` and reach standard output (a line-buffered stream: one write
/// per line if written to directly) a megabyte at a time and on `flush`.
struct StdoutWriter {
    name: &'static str,
    columns: usize,
    buf: Vec<u8>,
}

impl StdoutWriter {
    const CAPACITY: usize = 1 << 20;

    fn drain(&mut self) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)?;
        self.buf.clear();
        out.flush()
    }
}

fn write_field(w: &mut impl Write, f: &Field) -> io::Result<()> {
    let mut buf = itoa::Buffer::new();
    match f {
        Field::U(v) => w.write_all(buf.format(*v).as_bytes()),
        Field::I(v) => w.write_all(buf.format(*v).as_bytes()),
        // A 128-bit sum nearly always fits 64 bits, and formats faster as one (the sink
        // bench: writing item_stats rows 15–17 % faster in two runs).
        Field::Wide(v) => match i64::try_from(*v) {
            Ok(v) => w.write_all(buf.format(v).as_bytes()),
            Err(_) => w.write_all(buf.format(*v).as_bytes()),
        },
        Field::S(s) => w.write_all(s.as_str().as_bytes()),
        Field::Fixed(None) => Ok(()),
        Field::Fixed(Some(m)) => {
            let mut text = String::with_capacity(16);
            format_micro(*m, &mut text);
            w.write_all(text.as_bytes())
        }
        Field::Label(l) => w.write_all(l.as_bytes()),
        Field::Text(t) => w.write_all(t.as_bytes()),
    }
}

/// `time,diff` (or `time,op`) then `,field` for each of `columns` (empty past `fields`).
fn write_change(w: &mut impl Write, time: Time, change: Change, fields: &[Field], columns: usize) -> io::Result<()> {
    write_field(w, &Field::U(time))?;
    w.write_all(b",")?;
    match change {
        Change::Diff(diff) => write_field(w, &Field::I(diff as i64))?,
        Change::Upsert => w.write_all(b"upsert")?,
        Change::Delete => w.write_all(b"delete")?,
    }
    for f in fields {
        w.write_all(b",")?;
        write_field(w, f)?;
    }
    for _ in fields.len()..columns {
        w.write_all(b",")?;
    }
    w.write_all(b"\n")
}

impl ChangeWriter for CsvWriter {
    fn write(&mut self, time: Time, change: Change, fields: &[Field]) -> io::Result<()> {
        write_change(&mut self.out, time, change, fields, self.columns)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A field as a JSON value (text quoted, an empty decimal `null`).
pub(crate) fn write_json_field(w: &mut impl Write, f: &Field) -> io::Result<()> {
    match f {
        Field::S(s) => serde_json::to_writer(w, s.as_str())?,
        Field::Label(l) => serde_json::to_writer(w, l)?,
        Field::Text(t) => serde_json::to_writer(w, t)?,
        Field::Fixed(None) => w.write_all(b"null")?,
        other => write_field(w, other)?,
    }
    Ok(())
}

impl ChangeWriter for JsonlWriter {
    fn write(&mut self, time: Time, change: Change, fields: &[Field]) -> io::Result<()> {
        match change {
            Change::Diff(diff) => write!(self.out, "{{\"time\":{time},\"diff\":{diff}")?,
            Change::Upsert => write!(self.out, "{{\"time\":{time},\"op\":\"upsert\"")?,
            Change::Delete => write!(self.out, "{{\"time\":{time},\"op\":\"delete\"")?,
        }
        for (name, f) in self.columns.iter().zip(fields) {
            write!(self.out, ",\"{name}\":")?;
            write_json_field(&mut self.out, f)?;
        }
        self.out.write_all(b"}\n")
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl ChangeWriter for StdoutWriter {
    fn write(&mut self, time: Time, change: Change, fields: &[Field]) -> io::Result<()> {
        self.buf.extend_from_slice(self.name.as_bytes());
        self.buf.push(b',');
        write_change(&mut self.buf, time, change, fields, self.columns)?;
        if self.buf.len() >= Self::CAPACITY {
            self.drain()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

/// Opens the writer of one output.
pub fn open(
    kind: SinkKind,
    envelope: Envelope,
    out_dir: &Path,
    name: &'static str,
    columns: &'static [&'static str],
) -> io::Result<Box<dyn ChangeWriter>> {
    let create = || File::create(out_dir.join(kind.file_name(name).expect("a file sink")));
    Ok(match kind {
        SinkKind::Csv => {
            let mut out = BufWriter::with_capacity(1 << 20, create()?);
            writeln!(out, "time,{},{}", envelope.column(), columns.join(","))?;
            Box::new(CsvWriter { out, columns: columns.len() })
        }
        SinkKind::Jsonl => Box::new(JsonlWriter { out: BufWriter::with_capacity(1 << 20, create()?), columns }),
        SinkKind::Kafka => return Err(io::Error::other("the kafka sink is opened with its address (Sinks::kafka)")),
        SinkKind::Stdout => {
            Box::new(StdoutWriter { name, columns: columns.len(), buf: Vec::with_capacity(StdoutWriter::CAPACITY) })
        }
    })
}

/// What was written of one output.
#[derive(Clone, Debug, Default)]
pub struct OutputLog {
    /// Records written (diff rows, or upsert/delete records in the upsert envelope).
    pub rows: u64,
    /// `(time, Σ diff)` for each time the output changed, in time order.
    pub net: Vec<(Time, i64)>,
}

/// What the sinks of one process share across its worker threads: each output is written
/// by one worker of process 0, and worker 0 reports for all of them.
#[derive(Debug)]
pub struct SinkLog {
    /// Sinks whose input is complete (counted by the worker that writes each).
    pub finished: AtomicUsize,
    /// Time spent formatting and writing, in nanoseconds.
    pub write_nanos: AtomicU64,
    pub rows_written: AtomicU64,
    /// The times at which some output changed.
    pub times: Mutex<BTreeSet<Time>>,
    /// Per output: change rows written, and the net change of its row count at each time
    /// it changed — what a full re-send of every state would have cost.
    pub written: Mutex<BTreeMap<&'static str, OutputLog>>,
    /// The first write failure: the driver checks [`SinkLog::failure`] at every epoch.
    error: Mutex<Option<SinkFailure>>,
    /// A clean stop's cut-off: times at or after it are never written (they are not
    /// complete: reading stopped there). `Time::MAX` when the run read everything.
    /// Set (worker 0) before any worker's inputs close, so the frontier cannot pass
    /// it earlier.
    pub cutoff: AtomicU64,
    /// Epoch latency, when measured.
    pub latency: Option<Mutex<LatencyLog>>,
}

impl SinkLog {
    /// A log for one run of this process; `latency`: measure epoch latency.
    pub fn new(latency: bool) -> SinkLog {
        SinkLog {
            finished: AtomicUsize::new(0),
            write_nanos: AtomicU64::new(0),
            rows_written: AtomicU64::new(0),
            times: Mutex::default(),
            written: Mutex::default(),
            error: Mutex::new(None),
            cutoff: AtomicU64::new(Time::MAX),
            latency: latency.then(Mutex::default),
        }
    }

    pub fn write_time(&self) -> Duration {
        Duration::from_nanos(self.write_nanos.load(Ordering::Relaxed))
    }

    pub fn cutoff(&self) -> Time {
        self.cutoff.load(Ordering::SeqCst)
    }

    fn fail(&self, failure: SinkFailure) {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(failure);
    }

    /// The first write failure of this process's sinks, if any.
    pub fn failure(&self) -> Option<SinkFailure> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Why the sinks could not write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkFailure {
    /// A write failed: the message names the output and the path.
    Write(String),
    /// Standard output was closed by its reader (`| head`): the run ends quietly.
    Closed,
}

/// What else takes an output's complete times besides its writer (the serving store of
/// `--serve`): called on the worker that writes the output, in time order.
pub trait Observer: Send + Sync {
    /// The consolidated changes of `output` at the complete time `time`, sorted.
    fn changes(&self, output: &'static str, time: Time, rows: Vec<(Arc<[Field]>, isize)>);
    /// Every time of `output` before `frontier` is complete (and handed over).
    fn complete(&self, output: &'static str, frontier: Time);
}

/// Attaches sinks to collections; one per worker.
///
/// Every update of an output goes to the one worker that writes it: the outputs take
/// turns over the workers of process 0 (in the order they are attached, the same on every
/// worker), so formatting and writing is spread over the threads of process 0 while every
/// file is still written whole by one of them (stdout: worker 0 alone, each output's
/// lines in the same order on every run; outputs interleave in blocks of complete times,
/// in an order that depends on scheduling — split by the first column to compare runs).
#[derive(Clone)]
pub struct Sinks {
    /// This worker's index, and how many workers of process 0 write (the first ones).
    index: usize,
    writers: usize,
    pub kind: SinkKind,
    pub envelope: Envelope,
    pub out_dir: PathBuf,
    /// Probes every output, for flow control.
    pub probe: ProbeHandle<Time>,
    /// Shared with this process's other workers.
    pub log: Arc<SinkLog>,
    /// Sinks attached on this worker (every worker attaches every one).
    attached: Rc<Cell<usize>>,
    /// Takes every output's complete times too (`--serve`).
    pub observer: Option<Arc<dyn Observer>>,
    /// `--sink kafka://HOST:PORT/PREFIX`: the topics (process 0 made them).
    pub kafka: Option<::kafka::sink::SinkTopics>,
}

impl Sinks {
    /// The sinks of worker `index`, writing `kind` into `out_dir`, spread over the first
    /// `writers` workers (those of process 0), probed by `probe`.
    pub fn new(
        index: usize,
        writers: usize,
        kind: SinkKind,
        envelope: Envelope,
        out_dir: PathBuf,
        probe: ProbeHandle<Time>,
        log: Arc<SinkLog>,
    ) -> Sinks {
        Sinks {
            index,
            writers: writers.max(1),
            kind,
            envelope,
            out_dir,
            probe,
            log,
            attached: Rc::new(Cell::new(0)),
            observer: None,
            kafka: None,
        }
    }

    /// Worker 0: whether every sink, on whichever worker writes it, has seen its input
    /// complete.
    pub fn all_finished(&self) -> bool {
        self.log.finished.load(Ordering::SeqCst) >= self.attached.get()
    }

    /// The worker that writes the next sink attached.
    fn next_owner(&self) -> usize {
        let k = self.attached.get();
        self.attached.set(k + 1);
        if self.kind == SinkKind::Stdout {
            0
        } else {
            k % self.writers
        }
    }

    /// Collects every update of `collection` on worker 0 into `into`, with its time;
    /// `each` sees every update as it arrives.
    pub fn gather<'s, D: ExchangeData>(
        &self,
        collection: VecCollection<'s, Time, D>,
        name: &str,
        into: Rc<RefCell<Vec<(D, Time, isize)>>>,
        each: impl Fn(&D, isize) + 'static,
    ) {
        self.attached.set(self.attached.get() + 1);
        let log = self.log.clone();
        let counts = self.index == 0;
        let mut done = false;
        collection.inner.sink(Exchange::new(|_| 0), name, move |(input, frontier)| {
            input.for_each(|_, data| {
                data.iter().for_each(|(d, _, r)| each(d, *r));
                into.borrow_mut().extend(data.drain(..));
            });
            if frontier.is_empty() && !done && counts {
                done = true;
                log.finished.fetch_add(1, Ordering::SeqCst);
            }
        });
    }

    /// A write of output `name` failed: the first such error is the run's (with the
    /// path). Standard output closed by its reader (`| head`) ends the run quietly.
    fn write_failed(&self, name: &str, e: io::Error) {
        let path = match self.kind.file_name(name) {
            Some(file) => self.out_dir.join(file).display().to_string(),
            None if self.kind == SinkKind::Kafka => return self.log.fail(SinkFailure::Write(format!("{name}: {e}"))),
            None if e.kind() == io::ErrorKind::BrokenPipe => return self.log.fail(SinkFailure::Closed),
            None => "standard output".into(),
        };
        self.log.fail(SinkFailure::Write(format!("cannot write {name} to {path}: {e}")));
    }
}

impl Attach for Sinks {
    /// Writes `collection` as a change stream per `schema`.
    fn attach<'s, D: ExchangeData>(&self, collection: VecCollection<'s, Time, D>, schema: Schema<D>) {
        self.attach_to(collection, schema, true)
    }
}

impl Sinks {
    /// Hands `collection`'s complete times to the observer only (no file): a table the
    /// serving store keeps beside the outputs (the catalog).
    pub fn observe<'s, D: ExchangeData>(&self, collection: VecCollection<'s, Time, D>, schema: Schema<D>) {
        self.attach_to(collection, schema, false)
    }

    /// Writes `collection` per `schema` (when `file`) and hands its complete times to the
    /// observer, if any.
    fn attach_to<'s, D: ExchangeData>(&self, collection: VecCollection<'s, Time, D>, schema: Schema<D>, file: bool) {
        let owner = self.next_owner();
        let writes = self.index == owner;
        let observer = self.observer.clone().filter(|_| writes);
        let mut writer = if writes && file {
            let opened = match (&self.kafka, self.kind) {
                (Some(topics), SinkKind::Kafka) => {
                    kafka::KafkaWriter::open(topics, schema.name, schema.columns, schema.key)
                        .map(|w| Box::new(w) as Box<dyn ChangeWriter>)
                }
                _ => open(self.kind, self.envelope, &self.out_dir, schema.name, schema.columns),
            };
            match opened {
                Ok(w) => Some(w),
                Err(e) => {
                    self.write_failed(schema.name, e);
                    None
                }
            }
        } else {
            None
        };
        let this = self.clone();
        let log = self.log.clone();
        let mut pending: BTreeMap<Time, Vec<(D, isize)>> = BTreeMap::new();
        let mut done = false;
        // The frontier last handed to the observer, and to the writer.
        let mut observed: Time = 0;
        let mut progressed: Time = 0;
        let latency = log.latency.as_ref().filter(|_| writes).map(|l| l.lock().expect("latency log").add_sink());
        let collection = collection.probe_with(&self.probe);
        collection.inner.sink(Exchange::new(move |_| owner as u64), schema.name, move |(input, frontier)| {
            input.for_each(|_, data| {
                for (d, t, r) in data.drain(..) {
                    pending.entry(t).or_default().push((d, r));
                }
            });
            let mut wrote = false;
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let (time, mut rows) = entry.remove_entry();
                if time >= log.cutoff() {
                    continue;
                }
                consolidate(&mut rows);
                if file && !rows.is_empty() {
                    log.times.lock().expect("sink log").insert(time);
                    let mut written = log.written.lock().expect("sink log");
                    let output = written.entry(schema.name).or_default();
                    output.net.push((time, rows.iter().map(|(_, r)| *r as i64).sum()));
                }
                if let Some(w) = writer.as_mut() {
                    let started = Instant::now();
                    match write_changes(w.as_mut(), this.envelope, time, &rows, &schema) {
                        Ok(n) => {
                            log.rows_written.fetch_add(n as u64, Ordering::Relaxed);
                            log.written.lock().expect("sink log").entry(schema.name).or_default().rows += n as u64;
                        }
                        Err(e) => {
                            this.write_failed(schema.name, e);
                            writer = None;
                        }
                    }
                    log.write_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    wrote |= !rows.is_empty();
                }
                if let (Some(o), false) = (&observer, rows.is_empty()) {
                    o.changes(schema.name, time, rows.iter().map(|(d, r)| ((schema.fields)(d).into(), *r)).collect());
                }
            }
            let complete = frontier.frontier().first().copied().unwrap_or(Time::MAX).min(log.cutoff());
            if let (true, Some(w)) = (complete > progressed, writer.as_mut()) {
                progressed = complete;
                if let Err(e) = w.complete(complete) {
                    this.write_failed(schema.name, e);
                    writer = None;
                }
            }
            if let Some(o) = &observer {
                if complete > observed {
                    observed = complete;
                    o.complete(schema.name, complete);
                }
            }
            // Complete times reach the file now, not when a buffer happens to fill
            // (a reader of a live run sees every time as soon as it is complete).
            if let (true, Some(w)) = (wrote, writer.as_mut()) {
                if let Err(e) = w.flush() {
                    this.write_failed(schema.name, e);
                    writer = None;
                }
            }
            if let (Some(index), Some(l)) = (latency, &log.latency) {
                l.lock()
                    .expect("latency log")
                    .sink_at(index, frontier.frontier().first().copied().unwrap_or(Time::MAX));
            }
            if frontier.is_empty() && !done && writes {
                done = true;
                if let Some(Err(e)) = writer.as_mut().map(|w| w.finish()) {
                    this.write_failed(schema.name, e);
                }
                log.finished.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}
