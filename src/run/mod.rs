//! `shopflow run`: builds the platform layer and the selected dataflows on every
//! worker, feeds each worker's share of the sources, and reports the run.
//!
//! | module | concern |
//! |---|---|
//! | [`process`] | this process: the output directory, signals, connecting to the other processes, the workers, the outcome |
//! | [`driver`] | one worker: building the dataflows, reading, ending, collecting the report |
//! | [`feed`] | reading a worker's share of the sources into the inputs, epoch by epoch |
//! | [`pacing`] | wall-clock pacing (`--rate`, `--speed`) and the live step intervals |
//! | [`stop`] | the stop protocol between workers and processes, and the settings check |
//! | [`progress`] | the progress line |
//! | [`reader`] | a worker's reader of one source: a file or a Kafka topic |
//! | [`report`] | what a run reports: per-file counts, the summary, the rejected rows |
//! | [`serve`] | `--serve`: the HTTP server beside the dataflow (process 0) |
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

mod driver;
mod feed;
mod pacing;
pub mod process;
mod profile;
pub use profile::path_of as profile_path;
mod progress;
pub mod reader;
pub mod report;
mod serve;
mod stop;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use operators::arrange::ArrangedState;
use platform::config_inputs::ConfigFiles;
use platform::source::SourceSpec;
use platform::Params;
use sinks::{Envelope, SinkKind, SinkLog};

pub use report::RunReport;

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

/// `--serve`: the address, and the store every output's complete times go to.
#[derive(Clone)]
pub struct Serve {
    pub addr: std::net::SocketAddr,
    pub store: Arc<serving::store::Store>,
    /// What the sinks hand the store's complete times to (its thread's queue).
    pub feeder: Arc<serving::store::Feeder>,
    /// Threads of the HTTP server's runtime (`--serve-threads`).
    pub threads: usize,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Serve({})", self.addr)
    }
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
    /// `--sink kafka://…`: where the output topics go.
    pub sink_kafka: Option<kafka::KafkaUrl>,
    /// Process 0 with `--sink kafka://…`: the topics, made and read back at start.
    pub sink_topics: Option<kafka::sink::SinkTopics>,
    /// Which sources are Kafka topics, and how they are read.
    pub kafka: reader::KafkaSources,
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
    /// `--profile FILE`: this process's file (FILE.<process> in a cluster), and the record
    /// of the operators' busy times written to it at the end.
    pub profile: Option<(PathBuf, profile::Profile)>,
    /// `--serve`: where, and the store the sinks feed.
    pub serve: Option<Serve>,
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
