//! A worker's reader of one source: a file (every worker scans it, each keeps its
//! segments) or a Kafka topic (each worker reads its partitions).

use std::time::Duration;

use kafka::source::{KafkaReader, ValueFormat};
use kafka::KafkaUrl;
use platform::model::Time;
use platform::source::{Line, SourceError, SourceReader, SourceSpec};

/// Where Kafka sources are, and how they are read.
#[derive(Clone, Debug)]
pub struct KafkaSources {
    /// Per source (in the order of `RunConfig::sources`): its topic, if it is one.
    pub urls: Vec<Option<KafkaUrl>>,
    pub format: ValueFormat,
    /// A followed partition that sent nothing for this long stops holding outputs back.
    pub idle: Duration,
}

pub(super) enum Reader {
    File(SourceReader),
    Kafka(KafkaReader),
}

impl Reader {
    /// Opens source `index` for worker `worker` of `peers` (every worker of every process).
    pub(super) fn open(
        index: u32,
        spec: &SourceSpec,
        kafka: &KafkaSources,
        (worker, peers): (usize, usize),
        (epoch_ms, lateness_ms): (u64, u64),
    ) -> Result<Reader, String> {
        match kafka.urls.get(index as usize).cloned().flatten() {
            Some(url) => KafkaReader::open(
                index,
                &url,
                spec.kind,
                kafka.format,
                spec.checks,
                (worker, peers),
                (epoch_ms, lateness_ms),
                kafka.idle,
            )
            .map(Reader::Kafka),
            None => SourceReader::open(index, spec).map(Reader::File),
        }
    }

    pub(super) fn index(&self) -> u32 {
        match self {
            Reader::File(r) => r.index,
            Reader::Kafka(r) => r.index,
        }
    }

    pub(super) fn exhausted(&self) -> bool {
        match self {
            Reader::File(r) => r.exhausted,
            Reader::Kafka(r) => r.exhausted,
        }
    }

    pub(super) fn at_eof(&self) -> bool {
        match self {
            Reader::File(r) => r.at_eof,
            Reader::Kafka(r) => r.at_eof,
        }
    }

    /// Poll again after a wait.
    pub(super) fn clear_eof(&mut self) {
        match self {
            Reader::File(r) => r.at_eof = false,
            Reader::Kafka(r) => r.at_eof = false,
        }
    }

    pub(super) fn set_follow(&mut self, follow: bool) {
        match self {
            Reader::File(r) => r.follow = follow,
            Reader::Kafka(r) => r.follow = follow,
        }
    }

    /// How far in event time this reader is (the least behind is read last).
    pub(super) fn progress(&self) -> u64 {
        match self {
            Reader::File(r) => r.progress(),
            Reader::Kafka(r) => r.progress(),
        }
    }

    pub(super) fn is_events(&self) -> bool {
        match self {
            Reader::File(r) => r.is_events(),
            Reader::Kafka(r) => r.is_events(),
        }
    }

    /// Lines (messages) read so far, for the physical batch.
    pub(super) fn lines_read(&self) -> u64 {
        match self {
            Reader::File(r) => r.lines_read(),
            Reader::Kafka(r) => r.data_lines(),
        }
    }

    /// Rows read so far: of the whole file (every worker scans it), or of this worker's
    /// partitions.
    pub(super) fn data_lines(&self) -> u64 {
        match self {
            Reader::File(r) => r.data_lines(),
            Reader::Kafka(r) => r.data_lines(),
        }
    }

    /// No later row of this source gets a time before this.
    pub(super) fn open_epoch(&self, lateness_ms: u64, epoch_ms: u64) -> Time {
        match self {
            Reader::File(r) => r.open_epoch(lateness_ms, epoch_ms),
            Reader::Kafka(r) => r.open_epoch(),
        }
    }

    /// The latest epoch of a row read.
    pub(super) fn last_epoch(&self, epoch_ms: u64) -> Time {
        match self {
            Reader::File(r) => r.open_epoch(0, epoch_ms),
            Reader::Kafka(r) => r.last_epoch(),
        }
    }

    /// Reads up to `max_lines` lines (see [`SourceReader::read_chunk`]; a Kafka source is
    /// not paced: `due` is not asked).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_chunk(
        &mut self,
        max_lines: usize,
        worker: usize,
        peers: usize,
        epoch_ms: u64,
        lateness_ms: u64,
        due: impl FnMut(Option<u64>) -> bool,
        on_line: impl FnMut(Line<'_>),
    ) -> Result<(), SourceError> {
        match self {
            Reader::File(r) => r.read_chunk(max_lines, worker, peers, epoch_ms, lateness_ms, due, on_line),
            Reader::Kafka(r) => r.read_chunk(max_lines, on_line),
        }
    }
}
