//! The Kafka sink's writer: output `name` to topic `PREFIX.name` (see
//! [`kafka::sink`] for the records, the progress records and resuming).
//!
//! Key: the key columns as a JSON object. Value: in the diff envelope
//! `{"time":T,"diff":D,<columns>}`; in the upsert envelope `{"time":T,<columns>}` for an
//! upsert and no value (a tombstone) for a delete.

use std::io::{self, Write};

use kafka::sink::{OutputTopic, SinkTopics};
use platform::model::Time;

use crate::{write_json_field, Change, ChangeWriter, Field};

pub(crate) struct KafkaWriter {
    topic: OutputTopic,
    columns: &'static [&'static str],
    key: usize,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// `"time":T,"diff":D` (or `"time":T`) of the record being written.
    lead: Vec<u8>,
}

impl KafkaWriter {
    pub(crate) fn open(
        topics: &SinkTopics,
        name: &str,
        columns: &'static [&'static str],
        key: usize,
    ) -> io::Result<KafkaWriter> {
        let topic = topics.open(name).map_err(io::Error::other)?;
        Ok(KafkaWriter { topic, columns, key, key_buf: Vec::new(), value_buf: Vec::new(), lead: Vec::new() })
    }
}

/// `{"name":value,...}` of `columns` zipped with `fields`, after `lead` (`"time":1,` …).
fn object(out: &mut Vec<u8>, lead: &[u8], columns: &[&str], fields: &[Field]) -> io::Result<()> {
    out.clear();
    out.push(b'{');
    out.extend_from_slice(lead);
    for (i, (name, f)) in columns.iter().zip(fields).enumerate() {
        if i > 0 || !lead.is_empty() {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        write_json_field(out, f)?;
    }
    out.push(b'}');
    Ok(())
}

impl ChangeWriter for KafkaWriter {
    fn write(&mut self, time: Time, change: Change, fields: &[Field]) -> io::Result<()> {
        let key = self.key.min(fields.len());
        object(&mut self.key_buf, b"", &self.columns[..key], &fields[..key])?;
        self.lead.clear();
        match change {
            Change::Diff(d) => write!(self.lead, "\"time\":{time},\"diff\":{d}")?,
            Change::Upsert => write!(self.lead, "\"time\":{time}")?,
            Change::Delete => {}
        }
        let value = match change {
            Change::Delete => None,
            _ => {
                object(&mut self.value_buf, &self.lead, self.columns, fields)?;
                Some(&self.value_buf[..])
            }
        };
        self.topic.send(time, &self.key_buf, value).map_err(io::Error::other)
    }

    fn complete(&mut self, frontier: Time) -> io::Result<()> {
        self.topic.complete(frontier).map_err(io::Error::other)
    }

    /// Records leave within the producer's linger time without waiting here: a progress
    /// record follows its time's records in every partition, so a reader never takes a
    /// time as whole before it is. Delivery failures so far fail the run.
    fn flush(&mut self) -> io::Result<()> {
        self.topic.poll().map_err(io::Error::other)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.topic.flush().map_err(io::Error::other)
    }
}
