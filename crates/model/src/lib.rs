//! The vocabulary every other Sluice crate speaks: a message as read from a bus, an event as
//! stored in the lake, where reading starts, and the stable identity of a bus position.
//!
//! This crate owns plain data only. It must not do I/O, know any bus client library, or depend
//! on DuckDB, Parquet or the codecs: connectors, the lake and the UI all build on it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of message bus a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Kafka,
    Amqp,
    Sqs,
    Nats,
    Mqtt,
    Redis,
    /// An HTTP endpoint: a replay destination only.
    Http,
    /// Sluice's own HTTP and gRPC endpoints that services push events to: a source only.
    Collector,
    /// PostgreSQL's changes through logical replication: a source only.
    Postgres,
}

impl Bus {
    /// Every bus, in the order the UI offers them.
    pub const ALL: [Bus; 9] = [
        Bus::Kafka,
        Bus::Amqp,
        Bus::Sqs,
        Bus::Nats,
        Bus::Mqtt,
        Bus::Redis,
        Bus::Http,
        Bus::Collector,
        Bus::Postgres,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bus::Kafka => "kafka",
            Bus::Amqp => "amqp",
            Bus::Sqs => "sqs",
            Bus::Nats => "nats",
            Bus::Mqtt => "mqtt",
            Bus::Redis => "redis",
            Bus::Http => "http",
            Bus::Collector => "collector",
            Bus::Postgres => "postgres",
        }
    }

    pub fn parse(s: &str) -> Option<Bus> {
        Bus::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header as the bus carries it: values are bytes and may be absent (Kafka allows null),
/// keys may repeat, and order matters for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// A message exactly as read from a bus, before any decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event id, when the bus position cannot give one (an AMQP tap has no offsets);
    /// `None` derives it from source, partition and offset (`event_id`).
    pub id: Option<String>,
    pub source: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// The second part of a position that is two numbers (a Redis stream entry id `MS-SEQ`
    /// is `offset` MS, `sub_offset` SEQ); `None` where one number is the position.
    pub sub_offset: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Broker (or producer) time in microseconds since the Unix epoch.
    pub timestamp_us: Option<i64>,
    pub payload: Vec<u8>,
    /// What else the bus says about the message, as a JSON object: for AMQP the exchange,
    /// routing key, redelivered flag and message properties. `None` for Kafka.
    pub properties: Option<String>,
}

/// A message to send to a bus: what replay hands to a connector.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub target: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp_us: Option<i64>,
    pub payload: Vec<u8>,
    /// The source's properties (see `Message::properties`), for buses that can carry them.
    pub properties: Option<String>,
    /// AMQP routing key to publish with; other buses ignore it.
    pub routing_key: Option<String>,
    /// Correlates a delivery report with the event it came from.
    pub event_id: String,
}

/// How a payload (or key) was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Protobuf,
    Json,
    Text,
    Binary,
    Avro,
    /// Protobuf wire format without a known type, shown as a field-number tree.
    #[serde(rename = "protobuf_raw")]
    ProtobufRaw,
    MsgPack,
    Cbor,
    /// Layers around another encoding: `decoded` shows what they held.
    Gzip,
    Zstd,
    Snappy,
    Base64,
    /// Captured with decoding off (`capture --no-decode`): nothing was tried yet, so
    /// `schema redecode` decodes it later.
    Undecoded,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
            Encoding::Text => "text",
            Encoding::Binary => "binary",
            Encoding::Avro => "avro",
            Encoding::ProtobufRaw => "protobuf_raw",
            Encoding::MsgPack => "msgpack",
            Encoding::Cbor => "cbor",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Snappy => "snappy",
            Encoding::Base64 => "base64",
            Encoding::Undecoded => "undecoded",
        }
    }

    pub fn parse(s: &str) -> Encoding {
        [
            Encoding::Protobuf,
            Encoding::Json,
            Encoding::Text,
            Encoding::Avro,
            Encoding::ProtobufRaw,
            Encoding::MsgPack,
            Encoding::Cbor,
            Encoding::Gzip,
            Encoding::Zstd,
            Encoding::Snappy,
            Encoding::Base64,
            Encoding::Undecoded,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
        .unwrap_or(Encoding::Binary)
    }
}

/// One captured event: a row of the lake.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub bus: Bus,
    pub connection: String,
    pub source: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// See `Message::sub_offset`.
    pub sub_offset: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub key_decoded: Option<String>,
    pub headers: Vec<Header>,
    pub timestamp_us: Option<i64>,
    pub captured_at_us: i64,
    /// Raw payload bytes, possibly cut at the size cap (see `truncated`).
    pub payload: Vec<u8>,
    /// The payload's size on the bus, before any truncation.
    pub size: i64,
    pub truncated: bool,
    pub schema: Option<String>,
    pub encoding: Encoding,
    /// Decoded payload as JSON text (protobuf or JSON payloads).
    pub decoded: Option<String>,
    /// The payload as text when it is valid UTF-8 but not JSON.
    pub payload_text: Option<String>,
    pub decode_error: Option<String>,
    /// Bus properties as a JSON object (see `Message::properties`).
    pub properties: Option<String>,
}

impl Event {
    /// The first header named `key`, when it has a UTF-8 value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The bus position an event came from, as carried in the `sluice-source` replay header.
/// A two-part position (`sub_offset`) is written `OFFSET-SUB`, as Redis writes its ids.
pub fn position(
    connection: &str,
    source: &str,
    partition: Option<i32>,
    offset: Option<i64>,
    sub_offset: Option<i64>,
) -> String {
    use std::fmt::Write;
    // Written into one buffer: this runs for every replayed event.
    let mut s = String::with_capacity(connection.len() + source.len() + 32);
    s.push_str(connection);
    s.push('/');
    s.push_str(source);
    s.push('/');
    if let Some(p) = partition {
        let _ = write!(s, "{p}");
    }
    s.push('/');
    match (offset, sub_offset) {
        (Some(o), Some(sub)) => {
            let _ = write!(s, "{o}-{sub}");
        }
        (Some(o), None) => {
            let _ = write!(s, "{o}");
        }
        _ => {}
    }
    s
}

/// An offset as a person reads it: `42`, or `1700000000000-3` for a two-part position.
pub fn offset_text(offset: Option<i64>, sub_offset: Option<i64>) -> String {
    match (offset, sub_offset) {
        (Some(o), Some(s)) => format!("{o}-{s}"),
        (Some(o), None) => o.to_string(),
        _ => String::new(),
    }
}

/// A stable event id for a bus position: capturing the same range twice yields the same ids.
pub fn event_id(
    bus: Bus,
    connection: &str,
    source: &str,
    partition: Option<i32>,
    offset: Option<i64>,
    sub_offset: Option<i64>,
) -> String {
    format!(
        "{}:{}",
        bus.as_str(),
        position(connection, source, partition, offset, sub_offset)
    )
}

/// Where a read starts, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Beginning,
    End,
    Offset(i64),
    /// The first message at or after this time (microseconds since the epoch).
    Time(i64),
    /// The last N messages of each partition.
    Last(i64),
    /// A two-part position `OFFSET-SUB` (a Redis stream entry id): that entry and after.
    Entry(i64, i64),
    /// The last message of each subject (NATS JetStream `last-per-subject`).
    LastPerSubject,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid start position {input:?}: {reason} (use beginning, end, last, last-per-subject, OFFSET, MS-SEQ, @RFC3339 or -N)"
)]
pub struct StartFromError {
    pub input: String,
    pub reason: String,
}

impl std::str::FromStr for StartFrom {
    type Err = StartFromError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| StartFromError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        match s {
            "beginning" | "earliest" | "start" => Ok(StartFrom::Beginning),
            "end" | "latest" => Ok(StartFrom::End),
            // The last message of each partition (a RabbitMQ stream's last chunk).
            "last" => Ok(StartFrom::Last(1)),
            "last-per-subject" => Ok(StartFrom::LastPerSubject),
            _ if s.starts_with('@') => chrono::DateTime::parse_from_rfc3339(&s[1..])
                .map(|t| StartFrom::Time(t.timestamp_micros()))
                .map_err(|e| err(&format!("not an RFC 3339 time: {e}"))),
            _ if s.starts_with('-') => match s[1..].parse::<i64>() {
                Ok(n) if n > 0 => Ok(StartFrom::Last(n)),
                _ => Err(err("-N needs a positive whole number")),
            },
            _ => match s.split_once('-') {
                Some((ms, seq)) => match (ms.parse::<i64>(), seq.parse::<i64>()) {
                    (Ok(ms), Ok(seq)) if ms >= 0 && seq >= 0 => Ok(StartFrom::Entry(ms, seq)),
                    _ => Err(err("MS-SEQ needs two whole numbers")),
                },
                None => match s.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(StartFrom::Offset(n)),
                    _ => Err(err("not a known position")),
                },
            },
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn format_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_positions() {
        assert_eq!("beginning".parse(), Ok(StartFrom::Beginning));
        assert_eq!("end".parse(), Ok(StartFrom::End));
        assert_eq!("42".parse(), Ok(StartFrom::Offset(42)));
        assert_eq!("-10".parse(), Ok(StartFrom::Last(10)));
        assert_eq!("1700-3".parse(), Ok(StartFrom::Entry(1700, 3)));
        assert_eq!("last-per-subject".parse(), Ok(StartFrom::LastPerSubject));
        assert!("1700-x".parse::<StartFrom>().is_err());
        assert_eq!(
            "@2026-11-20T10:00:00Z".parse(),
            Ok(StartFrom::Time(1_795_168_800_000_000))
        );
        assert!("-0".parse::<StartFrom>().is_err());
        assert!("@yesterday".parse::<StartFrom>().is_err());
        assert!("soon".parse::<StartFrom>().is_err());
    }

    #[test]
    fn ids_are_stable_per_position() {
        assert_eq!(
            event_id(Bus::Kafka, "local", "orders", Some(2), Some(7), None),
            "kafka:local/orders/2/7"
        );
        assert_eq!(
            event_id(Bus::Redis, "r", "orders", None, Some(1700), Some(3)),
            "redis:r/orders//1700-3"
        );
    }

    #[test]
    fn positions_read_as_their_parts_say() {
        for (p, o, sub) in [
            (Some(2), Some(7), None),
            (None, Some(1700), Some(3)),
            (None, None, None),
            (Some(-1), Some(i64::MIN), Some(i64::MAX)),
        ] {
            let part = p.map(|p: i32| p.to_string()).unwrap_or_default();
            assert_eq!(
                position("c", "s.x", p, o, sub),
                format!("c/s.x/{part}/{}", offset_text(o, sub))
            );
        }
    }
}
