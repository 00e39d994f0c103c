//! What a user (and the tests) do beside a run: create a topic, produce a file's lines to
//! it, read a topic back (`shopflow kafka create | produce | read`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::sink::partition_of;
use crate::source::partition_count;
use crate::{explain, KafkaUrl, CONNECT_TIMEOUT};

pub use crate::sink::create_topic;

/// A producer of lines to one topic: each keyed, sent to the partition its key hashes to.
pub struct Lines {
    url: KafkaUrl,
    producer: ThreadedProducer<DefaultProducerContext>,
    partitions: usize,
}

impl Lines {
    pub fn open(url: &KafkaUrl) -> Result<Lines, String> {
        let consumer: BaseConsumer = url.client().create().map_err(|e| explain(url, "cannot create a client", e))?;
        let partitions = partition_count(&consumer, url)? as usize;
        let producer = url
            .client()
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .map_err(|e| explain(url, "cannot create a producer", e))?;
        Ok(Lines { url: url.clone(), producer, partitions })
    }

    /// Queues one message (waiting while the client's queue is full).
    pub fn send(&self, key: &[u8], line: &[u8]) -> Result<(), String> {
        let mut record =
            BaseRecord::to(&self.url.name).partition(partition_of(key, self.partitions)).key(key).payload(line);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(explain(&self.url, "cannot produce", e)),
            }
        }
    }

    /// Waits until the broker has every message.
    pub fn flush(&self) -> Result<(), String> {
        self.producer.flush(Duration::from_secs(60)).map_err(|e| explain(&self.url, "cannot deliver the messages", e))
    }
}

/// Produces every line of `path` but a header line (`header`, if the file starts with
/// it) as one message, keyed by its column `key` (of `columns`, comma-separated; a line
/// that is a JSON object by that field) and sent to the partition that key hashes to, so
/// one key's lines stay in order. Returns the number of messages.
pub fn produce_file(
    url: &KafkaUrl,
    path: &Path,
    header: Option<&str>,
    columns: &str,
    key: &str,
) -> Result<u64, String> {
    let field = columns.split(',').position(|c| c == key).ok_or_else(|| format!("`{key}` is not one of {columns}"))?;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let lines = Lines::open(url)?;
    let mut sent = 0u64;
    let mut json_key: String;
    for (i, line) in BufReader::with_capacity(1 << 20, file).split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if i == 0 && header.is_some_and(|h| h.as_bytes() == line) {
            continue;
        }
        let k: &[u8] = if line.first() == Some(&b'{') {
            json_key = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get(key).map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_string)))
                .unwrap_or_default();
            json_key.as_bytes()
        } else {
            line.split(|b| *b == b',').nth(field).unwrap_or_default()
        };
        lines.send(k, line)?;
        sent += 1;
    }
    lines.flush()?;
    Ok(sent)
}

/// Calls `each` with every record of `url`'s topic from its start, and then with each
/// new one as it arrives (`None` after 100 ms without one), until `each` returns false.
pub fn follow(url: &KafkaUrl, mut each: impl FnMut(Option<&Record>) -> bool) -> Result<(), String> {
    let consumer: BaseConsumer = url
        .client()
        .set("group.id", "shopflow-follow")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(|e| explain(url, "cannot create a consumer", e))?;
    let partitions = partition_count(&consumer, url)?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(&url.name, p, Offset::Beginning).map_err(|e| explain(url, "assign", e))?;
    }
    consumer.assign(&assignment).map_err(|e| explain(url, "cannot assign the partitions", e))?;
    loop {
        let going = match consumer.poll(Duration::from_millis(100)) {
            None => each(None),
            Some(Err(e)) => return Err(explain(url, "cannot read the topic", e)),
            Some(Ok(m)) => each(Some(&Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            })),
        };
        if !going {
            return Ok(());
        }
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Every record of `url`'s topic up to its end offsets now, partition by partition.
pub fn read_topic(url: &KafkaUrl) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    scan(std::slice::from_ref(url), |_, m| {
        records.push(Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
        });
        Ok(())
    })?;
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Calls `each(topic, record)` with every record of the topics `urls` (on one broker)
/// up to the end offsets of their partitions now (each partition in offset order);
/// `topic` is the index in `urls`.
///
/// The end offsets are the high watermarks of the first fetch responses (librdkafka
/// keeps them), not asked for with ListOffsets: a broker tested here answers that with
/// the base offset of the last batch plus one, not the end of the partition.
pub(crate) fn scan(
    urls: &[KafkaUrl],
    mut each: impl FnMut(usize, &BorrowedMessage<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let Some(first) = urls.first() else { return Ok(()) };
    let consumer: BaseConsumer = first
        .client()
        .set("group.id", "shopflow-scan")
        .set("enable.auto.commit", "false")
        // An empty partition's fetch answers after this wait.
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|e| explain(first, "cannot create a consumer", e))?;
    let mut assignment = TopicPartitionList::new();
    // Per (topic, partition): the next offset, and the end once a fetch response said it.
    let mut parts: Vec<Vec<(i64, Option<i64>)>> = Vec::with_capacity(urls.len());
    for url in urls {
        let partitions = partition_count(&consumer, url)?;
        for p in 0..partitions {
            assignment.add_partition_offset(&url.name, p, Offset::Beginning).map_err(|e| explain(url, "assign", e))?;
        }
        parts.push(vec![(0, None); partitions as usize]);
    }
    consumer.assign(&assignment).map_err(|e| explain(first, "cannot assign the partitions", e))?;
    let mut quiet_since = std::time::Instant::now();
    loop {
        for (url, topic) in urls.iter().zip(parts.iter_mut()) {
            for (p, (_, end)) in topic.iter_mut().enumerate().filter(|(_, (_, end))| end.is_none()) {
                *end = fetched_end(&consumer, &url.name, p as i32);
            }
        }
        if parts.iter().flatten().all(|(next, end)| end.is_some_and(|e| *next >= e)) {
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(10)) {
            None if quiet_since.elapsed() > CONNECT_TIMEOUT => {
                return Err(explain(
                    first,
                    "cannot read the topics back",
                    "no record and no end offset within the timeout",
                ))
            }
            None => {}
            Some(Err(e)) => return Err(explain(first, "cannot read the topics back", e)),
            Some(Ok(m)) => {
                quiet_since = std::time::Instant::now();
                let Some(t) = urls.iter().position(|u| u.name == m.topic()) else { continue };
                let part = &mut parts[t][m.partition() as usize];
                if part.1.is_none_or(|end| m.offset() < end) {
                    part.0 = m.offset() + 1;
                    each(t, &m)?;
                }
            }
        }
    }
}

/// The end offset of a partition from the last fetch response, once there was one.
pub(crate) fn fetched_end<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: librdkafka's cached-watermark query (rdkafka does not wrap it): the client
    // pointer is live for `consumer`'s lifetime, the topic a NUL-terminated string that
    // outlives the call, and the out-parameters are valid `i64`s it only writes.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Writes `records` as lines `partition<TAB>offset<TAB>key<TAB>value` (a missing key or
/// value as `null`: a tombstone).
pub fn write_records(out: &mut impl Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        write!(out, "{}\t{}\t", r.partition, r.offset)?;
        out.write_all(r.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\t")?;
        out.write_all(r.value.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
