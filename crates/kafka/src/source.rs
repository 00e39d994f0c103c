//! A worker's share of an input topic: the partitions `p` with `p % peers == worker`
//! (over every worker of every process), read from their start.
//!
//! Values are lines in the source's native format (`--format`; a message equal to the
//! header line is skipped) or JSON objects with the same fields ([`ValueFormat::Json`]).
//!
//! **Time.** Each partition has its own watermark (its greatest timestamp): a row's time
//! is its epoch, or the epoch of its partition's watermark less the lateness if that is
//! later (then it counts as late) — the same rule as for a file, per partition, so the
//! times do not depend on how partitions are spread over workers. The worker's input
//! frontier is the least watermark of its partitions that can still send rows: without
//! `--follow` a partition stops at the end offset it had at start; with it, a partition
//! that sent nothing for the idle timeout stops holding the frontier back until it sends
//! again (its rows then count at the frontier at least: late if it moved past them), and
//! when all of a worker's partitions are idle its frontier moves on with the wall clock
//! from the latest row read (from the wall clock itself if none came yet: a stream's
//! rows are stamped with about the time they are sent). A worker with no partition (more workers than partitions)
//! holds nothing back; partitions added to the topic during a run are not read.
//!
//! **Errors.** A broker unreachable at start, or a topic that does not exist, fails the
//! run at once; all brokers down mid-run fails it once the broker stays unreachable for
//! [`CONNECT_TIMEOUT`](crate::CONNECT_TIMEOUT) (complete times are written, no partial one).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform::model::Time;
use platform::source::{epoch_of, parse, timestamp_field, Line, SourceError, SourceKind, TsChecks};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use rustc_hash::FxHashMap;

use crate::admin::fetched_end;
use crate::{explain, KafkaUrl, CONNECT_TIMEOUT};

/// How a message's value holds a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    /// One line of the source's native format.
    Csv,
    /// A JSON object with the format's column names as keys.
    Json,
}

/// Records that every broker went down (librdkafka then keeps reconnecting).
#[derive(Default)]
pub(crate) struct Errors {
    pub(crate) down: Mutex<Option<String>>,
}

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            *self.down.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        }
    }
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
}

impl ConsumerContext for Errors {}

/// One partition this worker reads.
struct Part {
    id: i32,
    /// The next offset to read.
    next: i64,
    /// The end offset when reading started (the first fetch response's high watermark,
    /// see [`scan`](crate::admin::scan)): without `--follow`, the partition ends there.
    end: Option<i64>,
    /// The greatest timestamp read (inside the accepted range).
    max_ts: Option<u64>,
    /// When its last message arrived (or reading started).
    last: Instant,
}

impl Part {
    fn at_end(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }
}

/// A worker's reader of one topic.
pub struct KafkaReader {
    pub index: u32,
    kind: SourceKind,
    url: KafkaUrl,
    format: ValueFormat,
    consumer: BaseConsumer<Errors>,
    parts: Vec<Part>,
    by_id: FxHashMap<i32, usize>,
    checks: TsChecks,
    idle: Duration,
    epoch_ms: u64,
    lateness_ms: u64,
    /// The input frontier this reader has allowed: no row gets an earlier time.
    floor: Time,
    /// Messages read (this worker's partitions).
    read: u64,
    line: Vec<u8>,
    /// Every partition is at its end (never set when following).
    pub exhausted: bool,
    /// Keep reading past the end offsets present at start.
    pub follow: bool,
    /// The last read found no message waiting (cleared by the caller to poll again).
    pub at_eof: bool,
}

impl KafkaReader {
    /// Connects, finds the topic's partitions and their offsets, and assigns this
    /// worker's share. The error is one line for the user.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        index: u32,
        url: &KafkaUrl,
        kind: SourceKind,
        format: ValueFormat,
        checks: TsChecks,
        (worker, peers): (usize, usize),
        (epoch_ms, lateness_ms): (u64, u64),
        idle: Duration,
    ) -> Result<KafkaReader, String> {
        let consumer: BaseConsumer<Errors> = url
            .client()
            .set("group.id", "shopflow")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A followed partition's new messages arrive within this (the latency floor).
            .set("fetch.wait.max.ms", "20")
            // librdkafka stops fetching a partition for this long once its local queue is
            // past `queued.min.messages` (default 1 s): the run empties that queue in a
            // fraction of it and then sat idle (1 M events from a topic: 4.09 → 2.08 s).
            .set("fetch.queue.backoff.ms", "10")
            .create_with_context(Errors::default())
            .map_err(|e| explain(url, "cannot create a consumer", e))?;
        let partitions = partition_count(&consumer, url)?;
        let mut parts = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for id in (0..partitions).filter(|p| *p as usize % peers == worker) {
            assignment
                .add_partition_offset(&url.name, id, Offset::Beginning)
                .map_err(|e| explain(url, "cannot assign a partition", e))?;
            parts.push(Part { id, next: 0, end: None, max_ts: None, last: Instant::now() });
        }
        if !parts.is_empty() {
            consumer.assign(&assignment).map_err(|e| explain(url, "cannot assign the partitions", e))?;
        }
        let by_id = parts.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        Ok(KafkaReader {
            index,
            kind,
            url: url.clone(),
            format,
            consumer,
            parts,
            by_id,
            checks,
            idle,
            epoch_ms,
            lateness_ms,
            floor: 0,
            read: 0,
            line: Vec::with_capacity(256),
            exhausted: false,
            follow: false,
            at_eof: false,
        })
    }

    /// Messages read by this worker.
    pub fn data_lines(&self) -> u64 {
        self.read
    }

    /// Whether this is an events topic (not the catalog).
    pub fn is_events(&self) -> bool {
        matches!(self.kind, SourceKind::Events(_))
    }

    /// The input frontier this reader allows (no later row gets an earlier time).
    pub fn open_epoch(&self) -> Time {
        self.floor
    }

    /// The least watermark of the partitions that can still send rows (0 before any).
    pub fn progress(&self) -> u64 {
        let now = Instant::now();
        self.parts.iter().filter(|p| self.holds(p, now)).map(|p| p.max_ts.unwrap_or(0)).min().unwrap_or(u64::MAX)
    }

    /// The latest epoch of any row read.
    pub fn last_epoch(&self) -> Time {
        self.parts.iter().filter_map(|p| p.max_ts).max().map_or(0, |ts| epoch_of(ts, self.epoch_ms))
    }

    /// Whether partition `p` holds the frontier back: it can still send rows, and
    /// (following) sent one within the idle timeout.
    fn holds(&self, p: &Part, now: Instant) -> bool {
        if self.follow {
            now.duration_since(p.last) < self.idle
        } else {
            !p.at_end()
        }
    }

    /// Reads up to `max_lines` messages that are waiting; calls `on_line` for each.
    /// Sets `at_eof` when none is waiting, `exhausted` when every partition is at its
    /// end (not following).
    pub fn read_chunk(&mut self, max_lines: usize, mut on_line: impl FnMut(Line<'_>)) -> Result<(), SourceError> {
        self.check_brokers()?;
        if self.parts.is_empty() {
            // More workers than partitions: this one has none, and never will.
            self.exhausted = true;
            return Ok(());
        }
        for p in self.parts.iter_mut().filter(|p| p.end.is_none()) {
            p.end = fetched_end(&self.consumer, &self.url.name, p.id);
        }
        for _ in 0..max_lines {
            if !self.follow && self.parts.iter().all(Part::at_end) {
                break;
            }
            let message = match self.consumer.poll(Duration::ZERO) {
                None => {
                    self.at_eof = true;
                    break;
                }
                Some(Err(e)) if is_transport(&e) => {
                    // Every broker went down, or a connection broke: fail only if the
                    // broker stays unreachable.
                    *self.consumer.context().down.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    self.check_brokers()?;
                    break;
                }
                Some(Err(e)) => return Err(SourceError::Unreadable(explain(&self.url, "cannot read", e))),
                Some(Ok(m)) => m,
            };
            let Some(&i) = self.by_id.get(&message.partition()) else { continue };
            let offset = message.offset();
            let part = &mut self.parts[i];
            if offset < part.next || (!self.follow && part.end.is_some_and(|end| offset >= end)) {
                continue;
            }
            part.next = offset + 1;
            part.last = Instant::now();
            self.read += 1;
            let payload = message.payload().unwrap_or_default();
            let value = match self.format {
                ValueFormat::Csv => Ok(trim_line_end(payload)),
                ValueFormat::Json => {
                    json_to_line(payload, self.kind.columns(), &mut self.line).map(|()| &self.line[..])
                }
            };
            let partition = Some(part.id as u32);
            let line = offset as u64;
            let value = match value {
                Ok(v) => v,
                Err(reason) => {
                    on_line(Line::Rejected { line, partition, reason, raw: payload });
                    continue;
                }
            };
            if self.kind.header().is_some_and(|h| h.as_bytes() == value) {
                continue;
            }
            let field = timestamp_field(value, self.kind);
            let outside = field.and_then(|t| self.checks.reject(t));
            let open = part.max_ts.map_or(0, |m| epoch_of(m.saturating_sub(self.lateness_ms), self.epoch_ms));
            let open = open.max(self.floor);
            if let (Some(ts), None) = (field, &outside) {
                part.max_ts = Some(part.max_ts.map_or(ts, |m| m.max(ts)));
            }
            if let Some(reason) = outside {
                on_line(Line::Rejected { line, partition, reason, raw: value });
                continue;
            }
            match parse(value, self.kind) {
                Ok(row) => {
                    let own = epoch_of(row.ts_ms(), self.epoch_ms);
                    on_line(Line::Valid { row, line, time: own.max(open), late: own < open });
                }
                Err(reason) => on_line(Line::Rejected { line, partition, reason, raw: value }),
            }
        }
        if !self.follow && self.parts.iter().all(Part::at_end) {
            self.exhausted = true;
        }
        // The frontier moves to the least watermark of the partitions still sending.
        let now = Instant::now();
        let least = self
            .parts
            .iter()
            .filter(|p| self.holds(p, now))
            .map(|p| p.max_ts.map_or(0, |m| epoch_of(m.saturating_sub(self.lateness_ms), self.epoch_ms)))
            .min();
        match least {
            Some(least) => self.floor = self.floor.max(least),
            // Every partition at its end: nothing holds the frontier back.
            None if !self.follow => self.floor = self.floor.max(self.last_epoch()),
            // Following, every partition idle: event time moves on with the wall clock
            // from the latest row (a live stream's clock), so outputs keep completing.
            // Without a row yet, from the wall clock itself.
            None => {
                let latest = self.parts.iter().filter_map(|p| p.max_ts).max();
                let since = self.parts.iter().map(|p| p.last).max().map(|at| now.duration_since(at));
                let clock = match (latest, since) {
                    (Some(ts), Some(since)) => ts.saturating_add(since.as_millis() as u64),
                    _ => platform::utc::now_ms(),
                };
                self.floor = self.floor.max(epoch_of(clock.saturating_sub(self.lateness_ms), self.epoch_ms));
            }
        }
        Ok(())
    }

    /// After every broker went down: fails once the broker stays unreachable for
    /// `CONNECT_TIMEOUT` (a broker closing an idle connection is not a failure).
    fn check_brokers(&mut self) -> Result<(), SourceError> {
        let down = self.consumer.context().down.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(reason) = down else { return Ok(()) };
        match self.consumer.fetch_metadata(Some(&self.url.name), CONNECT_TIMEOUT) {
            Ok(_) => Ok(()),
            Err(e) => {
                Err(SourceError::Unreadable(explain(&self.url, &format!("the broker went away mid-run ({reason})"), e)))
            }
        }
    }
}

/// A consumer error that says a connection to the broker is down (librdkafka retries).
fn is_transport(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::NetworkException
        )
    )
}

/// The number of partitions of `url`'s topic: an error if the broker cannot be reached or
/// the topic does not exist.
pub(crate) fn partition_count<C: ConsumerContext, K: Consumer<C>>(consumer: &K, url: &KafkaUrl) -> Result<i32, String> {
    let metadata = consumer
        .fetch_metadata(Some(&url.name), CONNECT_TIMEOUT)
        .map_err(|e| explain(url, "cannot reach the broker", e))?;
    let topic = metadata.topics().iter().find(|t| t.name() == url.name);
    match topic {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        _ => Err(format!(
            "{url}: topic `{}` does not exist (create it first, e.g. `shopflow kafka create {url} --partitions 4`)",
            url.name
        )),
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Writes the JSON object `value` as a line of `columns` (comma-separated names) into
/// `line`: numbers and strings as written, a missing or null field empty.
pub fn json_to_line(value: &[u8], columns: &str, line: &mut Vec<u8>) -> Result<(), String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value).map_err(|e| format!("value: not a JSON object ({e})"))?;
    line.clear();
    for (i, name) in columns.split(',').enumerate() {
        if i > 0 {
            line.push(b',');
        }
        match object.get(name) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => line.extend_from_slice(s.as_bytes()),
            Some(serde_json::Value::Number(n)) => line.extend_from_slice(n.to_string().as_bytes()),
            Some(serde_json::Value::Bool(b)) => line.extend_from_slice(if *b { b"1" } else { b"0" }),
            Some(_) => return Err(format!("value: field `{name}` is not a number or string")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::json_to_line;

    #[test]
    fn json_values_become_lines() {
        let mut line = Vec::new();
        json_to_line(
            br#"{"ts_ms":5,"user_id":1,"item_id":2,"scene":"search","behavior":"click"}"#,
            "ts_ms,user_id,item_id,scene,behavior,quantity",
            &mut line,
        )
        .unwrap();
        assert_eq!(line, b"5,1,2,search,click,");
        assert!(json_to_line(b"[1]", "a", &mut line).is_err());
        assert!(json_to_line(br#"{"a":[1]}"#, "a", &mut line).is_err());
    }
}
