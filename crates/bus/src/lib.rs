//! Bus connectors behind one interface: check a connection, list what can be read, read
//! messages from a chosen position, and send messages with delivery reports.
//!
//! A bus is one folder of the same shape: `settings.rs` (what `connection add` takes and
//! `config.toml` keeps, checked), `conventions.rs` (its form, read modes, capabilities,
//! dead-letter marks and replay addressing), `config.rs` (the client's config, secrets kept
//! out of Debug), `browse.rs` (health and listing), `source.rs` (reading), `sink.rs`
//! (sending), plus whatever mapping its bus needs (`amqp/properties.rs`). Code outside this
//! crate asks `conventions(bus)` and `Settings` instead of matching on buses (see
//! docs/adding-a-bus.md). This crate must not
//! decode payloads or touch the lake, and reading must not disturb the applications being
//! inspected: Kafka partitions are assigned directly (no consumer group), RabbitMQ exchanges
//! are tapped through Sluice's own queue, and taking messages from a queue (RabbitMQ, and SQS,
//! where every read changes the queue) happens only in a mode the caller chose
//! (`ReadOptions::queue`).

pub mod amqp;
pub mod collector;
mod fresh_ids;
pub mod http;
pub mod kafka;
mod kind;
pub mod mqtt;
pub mod nats;
pub mod postgres;
pub mod redis;
mod settings;
pub mod sqs;
mod userinfo;

pub use kind::{
    capabilities, conventions, kinds, BusKind, Capabilities, Conventions, Destination, Field,
    FieldKind, Origin, OriginError, ReadMode,
};
pub use settings::{ConnectionSettings, Settings, Summary};

use sluice_model::{Bus, Message, Outgoing, StartFrom};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{what} is unreachable: {reason}")]
    Unreachable { what: String, reason: String },
    #[error("authentication failed for {what}: {reason}")]
    Auth { what: String, reason: String },
    #[error("unknown {kind} {name:?} on {connection}")]
    UnknownSource {
        kind: &'static str,
        name: String,
        connection: String,
    },
    #[error("invalid connection settings: {0}")]
    Config(String),
    /// Settings a person gave that cannot work, said in their terms (the flag to fix).
    #[error("{0}")]
    Invalid(String),
    /// A file the settings name (a TLS certificate) is not there.
    #[error("{0}")]
    MissingFile(String),
    #[error("{0}")]
    Client(String),
}

/// A runtime for an async client library (lapin, the AWS SDK) behind the blocking traits
/// below; its one worker keeps connection tasks (heartbeats, reads in flight) going while the
/// caller is between calls.
pub(crate) fn runtime(bus: &str) -> Result<tokio::runtime::Runtime, BusError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("sluice-{bus}"))
        .enable_all()
        .build()
        .map_err(|e| BusError::Client(format!("cannot start the {bus} client runtime: {e}")))
}

/// What `connection test` reports.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct Health {
    pub brokers: Vec<String>,
    pub sources: usize,
    pub latency_ms: u64,
    /// What the connection's schema registry answered, when it has one (filled in above the
    /// bus: a connector knows nothing of registries).
    pub registry: Option<String>,
}

/// A readable thing on a bus (a Kafka topic with its partitions; an AMQP exchange or queue).
#[derive(Debug, Clone, Default, serde::Serialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct SourceInfo {
    pub name: String,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
    /// What it is where a bus has several kinds: `exchange (topic)`, `queue (quorum)`...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Queues: messages ready for delivery, delivered but not acknowledged, and consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumers: Option<i64>,
    /// SQS: messages delayed, not yet visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delayed: Option<i64>,
    /// Bytes the source holds (a JetStream stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub bytes: Option<i64>,
    /// The subjects a JetStream stream takes.
    pub subjects: Vec<String>,
    /// How the source keeps messages: a JetStream stream's `limits`, `interest`, `workqueue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retention: Option<String>,
    /// The first and last positions as the bus writes them, where they are not one number per
    /// partition (a Redis stream's entry ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub first: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last: Option<String>,
    /// When its last message was seen (RFC 3339), where the bus keeps no count of its own
    /// (MQTT: during the look at `#`; a retained message shows when it was seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_seen: Option<String>,
    /// The applications' consumers of the source (JetStream consumers, Redis consumer groups)
    /// with what they have yet to read or acknowledge; Sluice is never one of them.
    pub groups: Vec<ConsumerInfo>,
    /// Something about the source a person should act on (an inactive PostgreSQL slot that
    /// holds WAL back).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub warning: Option<String>,
}

/// One of the applications' consumers of a source, as the bus reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct ConsumerInfo {
    pub name: String,
    /// Messages not yet delivered to it (JetStream) or delivered and not acknowledged (a
    /// Redis group's pending entries).
    pub pending: i64,
    /// JetStream: delivered, not yet acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_pending: Option<i64>,
    /// Redis: the group's consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumers: Option<i64>,
    /// Redis: the last entry id delivered to the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivered: Option<String>,
}

/// How to read AMQP sources (Kafka ignores it). By default each source is an exchange that
/// Sluice taps with its own exclusive, auto-delete queue, taking nothing from anyone.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Binding key for the tap queue (default `#`: everything on topic and fanout exchanges).
    pub binding_key: Option<String>,
    /// Header matches for a headers exchange (`x-match: all`).
    pub match_headers: Vec<(String, String)>,
    /// Read the sources as existing queues instead, taking their messages.
    pub queue: Option<QueueRead>,
    /// A collector: listen for HTTP here instead of at the connection's address (`HOST:PORT`,
    /// `:PORT` or `PORT`), for this read only.
    pub listen_http: Option<String>,
    /// A collector: the same for gRPC.
    pub listen_grpc: Option<String>,
    /// PostgreSQL: make Sluice's own replication slot and publication when missing.
    pub create_slot: bool,
    /// PostgreSQL: drop Sluice's own slot and publication once everything read is durable.
    pub drop_slot: bool,
    /// PostgreSQL: read the tables' rows as of the new slot's start before its changes.
    pub snapshot: bool,
}

/// Reading an application's queue takes its messages; these say what becomes of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRead {
    /// Acknowledged (deleted from the queue) once durably in the lake.
    Destructive,
    /// Given back to the queue when reading ends (marked redelivered; order may change).
    Requeue,
    /// A RabbitMQ stream queue, read by offset from the start position; takes nothing.
    Stream,
}

#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct PartitionInfo {
    pub id: i32,
    pub low: i64,
    pub high: i64,
}

impl SourceInfo {
    pub fn messages(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| (p.high - p.low).max(0))
            .sum()
    }
}

/// Reads messages. Implementations assign partitions directly; they never commit offsets.
pub trait Reader: Send {
    /// Up to `max` messages, waiting at most `timeout` for the first one.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError>;
    /// True once every partition has reached the end offset it had when reading began.
    fn at_end(&self) -> bool;
    /// The first `handled` messages `poll` returned are safely stored: a reader that takes
    /// messages from their queue may now delete them (and give the rest back).
    fn commit(&mut self, handled: u64) -> Result<(), BusError> {
        let _ = handled;
        Ok(())
    }
    /// The first `durable` messages `poll` returned are in the lake while reading goes on: a
    /// reader that takes messages may delete those now instead of holding every message of a
    /// long drain unacknowledged until the end.
    fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
        let _ = durable;
        Ok(())
    }
    /// Why the bus has stopped answering and since when, or `None` while it answers (quiet is
    /// not trouble). The caller decides how long is too long: a capture gives up after its
    /// broker timeout, keeping what it read.
    fn trouble(&self) -> Option<Trouble> {
        None
    }
    /// Where a reader that listens for clients takes their events; `None` for one that reads
    /// a bus.
    fn listening(&self) -> Option<Listening> {
        None
    }
    /// What the reader did or left that a person should know (a replication slot made, or
    /// left holding WAL), read when the capture ends.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where a reader that listens (a collector) takes events, for the person who started it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct Listening {
    /// `http://ADDR/v1/events/{source}`, with the port actually bound.
    pub http: Option<String>,
    /// `HOST:PORT` of the gRPC service.
    pub grpc: Option<String>,
    /// The bearer token clients must send, when this run drew it (a connection's own token,
    /// from the keyring, is never repeated here).
    pub token: Option<String>,
}

/// A bus that has stopped answering a reader (client libraries retry on their own, silently).
#[derive(Debug, Clone)]
pub struct Trouble {
    pub since: std::time::Instant,
    /// What is unreachable, for the error a person reads.
    pub what: String,
    pub reason: String,
}

impl Trouble {
    /// Whether the bus has not answered for at least `timeout`.
    pub fn lasted(&self, timeout: Duration) -> bool {
        self.since.elapsed() >= timeout
    }

    /// The error a person reads: `said` turns the seconds of silence into the sentence's start.
    pub fn unreachable(self, said: impl FnOnce(u64) -> String) -> BusError {
        BusError::Unreachable {
            reason: format!("{}: {}", said(self.since.elapsed().as_secs()), self.reason),
            what: self.what,
        }
    }
}

/// Delivery outcomes, each message in exactly one count: `sent` the bus confirmed holding,
/// `failed` it certainly does not hold (refused, or never sent), `unknown` it may hold (sent,
/// then no answer before the connection or the wait ended). Unknown is kept apart from failed
/// because sending those again can duplicate them. Reasons are kept per event for both.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Delivery {
    pub sent: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Event id and reason of failed messages (the first `MAX_ERRORS`).
    pub errors: Vec<(String, String)>,
    /// Event id and reason of messages whose outcome is unknown (the first `MAX_ERRORS`).
    pub unknowns: Vec<(String, String)>,
}

/// Failure reasons kept per send run; counts stay exact beyond it, so a mass failure cannot
/// exhaust memory.
pub const MAX_ERRORS: usize = 1000;

impl Delivery {
    /// Counts a message the destination certainly does not hold, and keeps its reason.
    pub fn fail(&mut self, event_id: String, reason: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push((event_id, reason));
        }
    }

    /// Counts a message that may or may not have arrived, and keeps why it is not known.
    pub fn unsure(&mut self, event_id: String, reason: String) {
        self.unknown += 1;
        if self.unknowns.len() < MAX_ERRORS {
            self.unknowns.push((event_id, reason));
        }
    }

    /// Every message counted so far, whatever its outcome.
    pub fn reported(&self) -> u64 {
        self.sent + self.failed + self.unknown
    }

    /// Adds another writer's counts and reasons (reasons still capped).
    pub fn add(&mut self, other: Delivery) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.unknown += other.unknown;
        let room = MAX_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
        let room = MAX_ERRORS.saturating_sub(self.unknowns.len());
        self.unknowns.extend(other.unknowns.into_iter().take(room));
    }
}

/// What a replay asks of its destination beyond sending: choices a person makes per replay,
/// which a bus that has no such thing ignores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// MQTT: publish retained events retained (never by default: a retained replay replaces
    /// what every later subscriber of the topic sees first).
    pub retain: bool,
    /// Redis: write each entry with its original id (into an empty stream only).
    pub keep_ids: bool,
}

/// Sends messages and counts each one's outcome in its `Delivery`. Every message given to
/// `send` ends up in exactly one count, at once or when its report comes, also when `send`
/// returns an error (the writer then cannot go on, and the caller stops).
pub trait Writer: Send {
    /// Hands one message to the bus; may block while the client's queue is full, for a
    /// bounded time.
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError>;
    /// Delivery reports received so far.
    fn delivery(&self) -> Delivery;
    /// The longest a single call to the bus may wait for an answer before the bus counts as
    /// gone. Writers that wait only in `flush` (Kafka's background producer) ignore it.
    fn set_timeout(&mut self, timeout: Duration) {
        let _ = timeout;
    }
    /// The replay's choices (`SendOptions`), before the first `send`.
    fn set_options(&mut self, options: SendOptions) {
        let _ = options;
    }
    /// Sends what the writer holds back to fill a batch (a Redis pipeline, an SQS batch), as
    /// it would send a full one (a batch that is one request waits for its answer). Replay
    /// calls it when nothing more has come for a moment, so a paced or trickling replay is
    /// not held in a half-full batch: at `--rate 20`, a pipeline of 1,000 reached Redis all
    /// at once after 50 s.
    fn send_now(&mut self) {}
    /// Waits up to `timeout` for every outstanding report. What is still unanswered then is
    /// counted too: failed when it never left Sluice, unknown when it did.
    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError>;
}

/// One configured connection to a bus.
pub trait Connector: Send + Sync {
    fn bus(&self) -> Bus;
    fn check(&self, timeout: Duration) -> Result<Health, BusError>;
    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError>;
    /// One source, or `None` when it does not exist.
    fn source(&self, name: &str, timeout: Duration) -> Result<Option<SourceInfo>, BusError>;
    fn reader(
        &self,
        sources: &[String],
        from: StartFrom,
        options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError>;
    fn writer(&self) -> Result<Box<dyn Writer>, BusError>;
    /// The sources whose dead letters go to `name` (SQS redrive policies); empty where a bus
    /// does not keep that relation.
    fn dead_letter_sources(&self, name: &str, timeout: Duration) -> Result<Vec<String>, BusError> {
        let _ = (name, timeout);
        Ok(Vec::new())
    }
}
