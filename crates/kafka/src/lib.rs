//! Kafka-protocol source and sink (rdkafka, with its bundled librdkafka).
//!
//! | module | concern |
//! |---|---|
//! | [`source`] | a worker's partitions of an input topic: rows in the native line format (or JSON), per-partition watermarks, an idle timeout |
//! | [`sink`] | one output topic: records keyed by the output's key columns, progress records, and resuming after a restart without writing anything twice |
//! | [`admin`] | creating topics, producing a file's lines, reading a topic (the `shopflow kafka` commands and the tests) |
//!
//! Addresses are `kafka://HOST:PORT/TOPIC` (a source) or `kafka://HOST:PORT/PREFIX` (a
//! sink: output `name` goes to topic `PREFIX.name`).

pub mod admin;
pub mod sink;
pub mod source;

use std::time::Duration;

use rdkafka::config::ClientConfig;

/// How long a client waits for the broker at start (metadata, offsets) before the run
/// fails with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `kafka://HOST:PORT/NAME` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaUrl {
    /// `HOST:PORT` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// The topic (a source) or the topic prefix (a sink).
    pub name: String,
}

impl KafkaUrl {
    /// Whether `s` names a Kafka address at all (then [`KafkaUrl::parse`] says what is wrong).
    pub fn is_kafka(s: &str) -> bool {
        s.starts_with("kafka://")
    }

    /// Parses `kafka://HOST:PORT/NAME`; the error is one line for the user.
    pub fn parse(s: &str) -> Result<KafkaUrl, String> {
        let rest =
            s.strip_prefix("kafka://").ok_or_else(|| format!("`{s}` is not a kafka://HOST:PORT/NAME address"))?;
        let (brokers, name) =
            rest.split_once('/').ok_or_else(|| format!("`{s}`: expected kafka://HOST:PORT/NAME (no /NAME)"))?;
        let (host, port) =
            brokers.rsplit_once(':').ok_or_else(|| format!("`{s}`: expected kafka://HOST:PORT/NAME (no :PORT)"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("`{s}`: expected kafka://HOST:PORT/NAME with a numeric port"));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 200 || !name.chars().all(valid) {
            return Err(format!("`{s}`: a topic name is 1-200 of [a-zA-Z0-9._-]"));
        }
        Ok(KafkaUrl { brokers: brokers.to_string(), name: name.to_string() })
    }

    /// The client settings every shopflow client starts from.
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.timeout.ms", "10000")
            // librdkafka's own log lines would interleave with shopflow's on stderr;
            // errors reach shopflow through the clients' contexts instead.
            .set("log_level", "0");
        config
    }
}

impl std::fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kafka://{}/{}", self.brokers, self.name)
    }
}

/// An error of a client, as one line for the user.
fn explain(url: &KafkaUrl, what: &str, e: impl std::fmt::Display) -> String {
    format!("{url}: {what}: {e} (is a Kafka-protocol broker listening at {}?)", url.brokers)
}

#[cfg(test)]
mod tests {
    use super::KafkaUrl;

    #[test]
    fn parses_addresses() {
        let u = KafkaUrl::parse("kafka://127.0.0.1:9092/events").unwrap();
        assert_eq!((u.brokers.as_str(), u.name.as_str()), ("127.0.0.1:9092", "events"));
        assert_eq!(u.to_string(), "kafka://127.0.0.1:9092/events");
        for bad in [
            "kafka://host/events",
            "kafka://host:x/t",
            "kafka://:1/t",
            "kafka://h:1/",
            "kafka://h:1/a/b",
            "http://h:1/t",
        ] {
            assert!(KafkaUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
