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

impl Resume {
    /// What a partition holds, from its records in offset order: `Some(F)` a progress
    /// record, `None` a data record.
    pub fn read_back(records: impl IntoIterator<Item = Option<u64>>) -> Resume {
        records.into_iter().fold(Resume::default(), |r, record| match record {
            Some(frontier) => Resume { frontier, after: 0 },
            None => Resume { after: r.after + 1, ..r },
        })
    }
}

/// The writing state of one partition: what is still to be skipped, and the last
/// progress frontier it holds.
#[derive(Clone, Copy, Debug)]
pub struct Partition {
    resume: Resume,
    marked: u64,
}

impl Partition {
    pub fn new(resume: Resume) -> Partition {
        Partition { resume, marked: resume.frontier }
    }

    /// Whether the next record, of `time`, is to be written (not written by an earlier run).
    pub fn take(&mut self, time: u64) -> bool {
        if time < self.resume.frontier {
            return false;
        }
        if self.resume.after > 0 {
            self.resume.after -= 1;
            return false;
        }
        true
    }

    /// Whether a progress record for `frontier` is to be written now. Not while records
    /// an earlier run wrote after its last progress record are still being skipped: some
    /// may be of times at or after `frontier`, and a progress record must follow every
    /// record of earlier times and precede every later one (what the next restart counts on).
    pub fn mark(&mut self, frontier: u64) -> bool {
        if frontier > self.marked && self.resume.after == 0 {
            self.marked = frontier;
            return true;
        }
        false
    }
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
    /// Per partition: what an earlier run wrote, still to be skipped, and its progress.
    partitions: Vec<Partition>,
    /// The last progress frontier written.
    progress: u64,
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
        let partitions = resume.into_iter().map(Partition::new).collect();
        Ok(OutputTopic { url, producer, partitions, progress })
    }

    /// The topic written.
    pub fn url(&self) -> &KafkaUrl {
        &self.url
    }

    /// Writes one record of `time` (skipped if an earlier run wrote it).
    pub fn send(&mut self, time: u64, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let partition = partition_of(key, self.partitions.len());
        if !self.partitions[partition as usize].take(time) {
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
        for partition in 0..self.partitions.len() {
            if self.partitions[partition].mark(frontier) {
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
    // Per topic, per partition: its records in order (`Some(F)`: a progress record).
    let mut read: Vec<Vec<Vec<Option<u64>>>> = Vec::with_capacity(urls.len());
    for url in &urls {
        read.push(vec![Vec::new(); partition_count(&consumer, url)? as usize]);
    }
    crate::admin::scan(&urls, |t, message| {
        let records = &mut read[t][message.partition() as usize];
        if message.key() == Some(PROGRESS_KEY) {
            let url = &urls[t];
            let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())
                .map_err(|e| explain(url, "a progress record is not JSON", e))?;
            records.push(Some(
                value["progress"].as_u64().ok_or_else(|| explain(url, "a progress record", "no progress"))?,
            ));
        } else {
            records.push(None);
        }
        Ok(())
    })?;
    let resume = read.into_iter().map(|topic| topic.into_iter().map(Resume::read_back).collect());
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

#[cfg(test)]
mod tests {
    use super::{partition_of, Partition, Resume};

    /// What one partition of a topic holds.
    #[derive(Clone, Debug, PartialEq)]
    enum Entry {
        Data(usize),
        Progress(u64),
    }

    /// Runs killed at random points and restarted: the partition ends with every record
    /// of an uninterrupted run exactly once, in order, and every progress record follows
    /// all records of earlier times and precedes every later one. (Fails when a progress
    /// record may be written while an earlier run's tail is still being skipped.)
    #[test]
    fn killed_and_restarted_runs_write_each_record_once() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..2000 {
            // The records of a run: times ascending, a few per time (the same every run).
            let mut records: Vec<(u64, usize)> = Vec::new();
            for t in 0..rand(12) + 1 {
                for _ in 0..rand(4) {
                    records.push((t, records.len()));
                }
            }
            let mut topic: Vec<Entry> = Vec::new();
            let restarts = rand(4);
            for run in 0..=restarts {
                let back: Vec<Option<u64>> = topic
                    .iter()
                    .map(|e| match e {
                        Entry::Progress(f) => Some(*f),
                        Entry::Data(_) => None,
                    })
                    .collect();
                let mut p = Partition::new(Resume::read_back(back));
                // How far this run gets (the last one finishes), and where its complete
                // frontier moves (each run's own timing).
                let budget = if run == restarts { usize::MAX } else { rand(records.len() as u64 + 3) as usize };
                let mut steps = 0;
                let mut next = 0;
                let last = records.last().map_or(0, |r| r.0 + 1);
                'run: for t in 0..=last {
                    // The frontier passes t: its records, then maybe a progress record.
                    while next < records.len() && records[next].0 == t {
                        if steps == budget {
                            break 'run;
                        }
                        steps += 1;
                        if p.take(t) {
                            topic.push(Entry::Data(records[next].1));
                        }
                        next += 1;
                    }
                    let frontier = if t == last { u64::MAX } else { t + 1 };
                    if (t == last || rand(2) == 0) && p.mark(frontier) {
                        if steps == budget {
                            break 'run;
                        }
                        steps += 1;
                        topic.push(Entry::Progress(frontier));
                    }
                }
            }
            let data: Vec<usize> =
                topic.iter().filter_map(|e| if let Entry::Data(i) = e { Some(*i) } else { None }).collect();
            assert_eq!(data, (0..records.len()).collect::<Vec<_>>(), "{topic:?}");
            let time = |e: &Entry| if let Entry::Data(j) = e { Some(records[*j].0) } else { None };
            for (i, e) in topic.iter().enumerate() {
                if let Entry::Progress(f) = e {
                    assert!(topic[..i].iter().filter_map(time).all(|t| t < *f), "{topic:?}");
                    assert!(topic[i..].iter().filter_map(time).all(|t| t >= *f), "{topic:?}");
                }
            }
            assert_eq!(topic.last(), Some(&Entry::Progress(u64::MAX)));
        }
    }

    /// Partitions are FNV-1a of the key bytes: stable across runs, platforms and versions
    /// (a restart must find each key where it was).
    #[test]
    fn partitions_are_stable() {
        assert_eq!(partition_of(b"", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as i32);
        assert_eq!(partition_of(b"{\"item_id\":1}", 1), 0);
        let spread: std::collections::BTreeSet<i32> =
            (0..100).map(|i| partition_of(format!("{i}").as_bytes(), 4)).collect();
        assert_eq!(spread.len(), 4);
    }
}
