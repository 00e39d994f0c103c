//! One output topic: change records keyed by the output's key columns, progress records,
//! and resuming after a restart without writing anything twice.
//!
//! **Records.** Key: a JSON object of the key columns; it picks the partition (a hash
//! of its bytes, the same on every run). Value: the record as JSON, or none (a tombstone:
//! a delete in the upsert envelope). Records of one partition are written in the order
//! the sink makes them (one idempotent producer), which is the same on every
//! run of the same input: times ascending, rows sorted within a time.
//!
//! **Progress.** When the outputs' complete frontier moves to `F`, every partition gets
//! the record key `"__progress"` (a JSON string, never a data key), value
//! `{"progress":F}`: every record of a time before `F` is in the topic before it. A
//! consumer that has read up to a progress record holds the output as of every time
//! before `F`.
//!
//! **Exactly once across restarts.** At start the sink reads each partition: its last
//! progress frontier `F` and the number `n` of records after it (written by a run that
//! stopped or crashed before its next progress record). The new run recomputes the same
//! records in the same order; per partition it skips those of times before `F` and the
//! first `n` of the rest, and writes on from there; it writes its first progress record
//! to a partition only once those `n` are skipped, so in every partition a progress record
//! follows every record of an earlier time and precedes every later one (what the next
//! restart counts on). So a run killed at any instant and
//! restarted with the same command and input ends with the topic an uninterrupted run
//! writes, record for record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::source::partition_count;
use crate::{explain, KafkaUrl, CONNECT_TIMEOUT};

/// The key of progress records.
pub const PROGRESS_KEY: &[u8] = b"\"__progress\"";

/// How long a flush waits for the broker to take every record before the run fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What a partition already holds from an earlier run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Every record of a time before this is written.
    pub frontier: u64,
    /// Records after the last progress record (of times at or after `frontier`).
    pub after: u64,
}

/// The first delivery failure.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| e.to_string());
        }
    }
}

/// The output topics of a run, made and read back before the workers start
/// ([`prepare`]); each output's writer takes what its topic holds when it opens.
#[derive(Clone, Debug)]
pub struct SinkTopics {
    pub prefix: KafkaUrl,
    resume: std::sync::Arc<Mutex<BTreeMap<String, Vec<Resume>>>>,
}

impl SinkTopics {
    /// Creates the missing topics of `outputs` and reads each back ([`prepare`]).
    pub fn prepare(prefix: &KafkaUrl, outputs: &[String], compact: bool) -> Result<SinkTopics, String> {
        let resume = prepare(prefix, outputs, compact)?;
        Ok(SinkTopics { prefix: prefix.clone(), resume: std::sync::Arc::new(Mutex::new(resume)) })
    }

    /// The writer of `output`'s topic.
    pub fn open(&self, output: &str) -> Result<OutputTopic, String> {
        let resume = self.resume.lock().unwrap_or_else(|p| p.into_inner()).remove(output);
        let resume = resume.ok_or_else(|| format!("{}: output {output} was not prepared", self.prefix))?;
        OutputTopic::open(&self.prefix, output, resume)
    }
}

/// The writer of one output topic.
pub struct OutputTopic {
    url: KafkaUrl,
    producer: BaseProducer<Deliveries>,
    /// Per partition: what an earlier run wrote, still to be skipped.
    resume: Vec<Resume>,
    /// The last progress frontier written.
    progress: u64,
    /// Per partition: the last progress frontier it holds.
    marked: Vec<u64>,
}

impl OutputTopic {
    /// Opens topic `PREFIX.output` of `prefix`, which holds `resume` from an earlier
    /// run ([`prepare`] made it and read it).
    pub fn open(prefix: &KafkaUrl, output: &str, resume: Vec<Resume>) -> Result<OutputTopic, String> {
        let url = topic_of(prefix, output);
        let producer: BaseProducer<Deliveries> = url
            .client()
            .set("acks", "all")
            // The idempotent producer: up to 5 requests in flight, yet no batch is written
            // twice or out of order, so every partition holds a prefix of the run's
            // records (what resuming needs).
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create_with_context(Deliveries::default())
            .map_err(|e| explain(&url, "cannot create a producer", e))?;
        let progress = resume.iter().map(|r| r.frontier).min().unwrap_or(0);
        let marked = resume.iter().map(|r| r.frontier).collect();
        Ok(OutputTopic { url, producer, resume, progress, marked })
    }

    /// The topic written.
    pub fn url(&self) -> &KafkaUrl {
        &self.url
    }

    /// What the topic held at start, per partition.
    pub fn resumed(&self) -> &[Resume] {
        &self.resume
    }

    /// Writes one record of `time` (skipped if an earlier run wrote it).
    pub fn send(&mut self, time: u64, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let partition = partition_of(key, self.resume.len());
        let resume = &mut self.resume[partition as usize];
        if time < resume.frontier {
            return Ok(());
        }
        if resume.after > 0 {
            resume.after -= 1;
            return Ok(());
        }
        self.produce(partition, key, value)
    }

    /// Every time before `frontier` is written: a progress record in every partition.
    pub fn complete(&mut self, frontier: u64) -> Result<(), String> {
        if frontier <= self.progress {
            return Ok(());
        }
        self.progress = frontier;
        let value = format!("{{\"progress\":{frontier}}}");
        for partition in 0..self.resume.len() {
            // Not while records an earlier run wrote after its last progress record are
            // still being skipped: some may be of times at or after `frontier`, and a
            // progress record must follow every record of earlier times and precede
            // every later one (what the next restart counts on).
            if frontier > self.marked[partition] && self.resume[partition].after == 0 {
                self.marked[partition] = frontier;
                self.produce(partition as i32, PROGRESS_KEY, Some(value.as_bytes()))?;
            }
        }
        Ok(())
    }

    /// Serves delivery reports without waiting; an error if a record was not delivered.
    pub fn poll(&mut self) -> Result<(), String> {
        self.producer.poll(Duration::ZERO);
        self.failed()
    }

    /// Waits until the broker has every record written so far.
    pub fn flush(&mut self) -> Result<(), String> {
        self.producer.flush(FLUSH_TIMEOUT).map_err(|e| explain(&self.url, "cannot deliver the records", e))?;
        self.failed()
    }

    fn failed(&self) -> Result<(), String> {
        match self.producer.context().failed.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(e) => Err(explain(&self.url, "a record was not delivered", e)),
            None => Ok(()),
        }
    }

    fn produce(&mut self, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let mut record = BaseRecord::to(&self.url.name).partition(partition).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                    self.failed()?;
                }
                Err((e, _)) => return Err(explain(&self.url, "cannot write a record", e)),
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }
}

/// The partition of a record key: FNV-1a of its bytes (stable across runs and versions).
pub fn partition_of(key: &[u8], partitions: usize) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as i32
}

/// Creates topic `url` with `partitions` partitions unless it exists.
pub fn create_topic(url: &KafkaUrl, partitions: i32, compact: bool) -> Result<(), String> {
    create_topics(std::slice::from_ref(url), partitions, compact)
}

/// Creates the topics `urls` (on one broker) that do not exist.
pub fn create_topics(urls: &[KafkaUrl], partitions: i32, compact: bool) -> Result<(), String> {
    let Some(first) = urls.first() else { return Ok(()) };
    let admin: AdminClient<_> =
        first.client().create().map_err(|e| explain(first, "cannot create an admin client", e))?;
    let topics: Vec<NewTopic<'_>> = urls
        .iter()
        .map(|url| {
            let topic = NewTopic::new(&url.name, partitions, TopicReplication::Fixed(1));
            if compact {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT)).request_timeout(Some(CONNECT_TIMEOUT));
    let results =
        block_on(admin.create_topics(&topics, &options)).map_err(|e| explain(first, "cannot create the topics", e))?;
    for (result, url) in results.into_iter().zip(urls) {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(explain(url, "cannot create the topic", code)),
        }
    }
    Ok(())
}

/// Creates the topics `PREFIX.<output>` of `outputs` that are missing (one partition;
/// compacted when `compact`) and reads what an earlier run left in each: per output, per
/// partition, its last progress frontier and the records after it. One request and one
/// scan for all of them, before the workers start.
pub fn prepare(prefix: &KafkaUrl, outputs: &[String], compact: bool) -> Result<BTreeMap<String, Vec<Resume>>, String> {
    let urls: Vec<KafkaUrl> = outputs.iter().map(|o| topic_of(prefix, o)).collect();
    create_topics(&urls, 1, compact)?;
    let consumer: BaseConsumer = prefix.client().create().map_err(|e| explain(prefix, "cannot create a client", e))?;
    let mut resume: Vec<Vec<Resume>> = Vec::with_capacity(urls.len());
    for url in &urls {
        resume.push(vec![Resume::default(); partition_count(&consumer, url)? as usize]);
    }
    crate::admin::scan(&urls, |t, message| {
        let r = &mut resume[t][message.partition() as usize];
        if message.key() == Some(PROGRESS_KEY) {
            let url = &urls[t];
            let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())
                .map_err(|e| explain(url, "a progress record is not JSON", e))?;
            r.frontier = value["progress"].as_u64().ok_or_else(|| explain(url, "a progress record", "no progress"))?;
            r.after = 0;
        } else {
            r.after += 1;
        }
        Ok(())
    })?;
    Ok(outputs.iter().cloned().zip(resume).collect())
}

/// The topic of output `name`: `PREFIX.name`.
pub fn topic_of(prefix: &KafkaUrl, name: &str) -> KafkaUrl {
    KafkaUrl { brokers: prefix.brokers.clone(), name: format!("{}.{name}", prefix.name) }
}

/// Runs an admin request to completion (the client's futures resolve from librdkafka's
/// own threads; a current-thread runtime waits for them).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime").block_on(future)
}
