//! Bus connectors behind one interface: check a connection, list what can be read, read
//! messages from a chosen position, and send messages with delivery reports.
//!
//! Every connector folder has the same shape: `config.rs` (settings, client config, secrets
//! kept out of Debug), `browse.rs` (health and listing), `source.rs` (reading), `sink.rs`
//! (sending), plus whatever mapping its bus needs (`amqp/properties.rs`). This crate must not
//! decode payloads or touch the lake, and reading must not disturb the applications being
//! inspected: Kafka partitions are assigned directly (no consumer group), RabbitMQ exchanges
//! are tapped through Sluice's own queue, and taking messages from a queue (RabbitMQ, and SQS,
//! where every read changes the queue) happens only in a mode the caller chose
//! (`ReadOptions::queue`).

pub mod amqp;
pub mod kafka;
pub mod sqs;

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
}

/// Delivery outcome counts, with the reason for each failure.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Delivery {
    pub sent: u64,
    pub failed: u64,
    pub errors: Vec<(String, String)>,
}

/// Failure reasons kept per send run; counts stay exact beyond it, so a mass failure cannot
/// exhaust memory.
pub(crate) const MAX_ERRORS: usize = 1000;

impl Delivery {
    /// Counts a failed message and keeps its reason (up to `MAX_ERRORS`).
    pub(crate) fn fail(&mut self, event_id: String, reason: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push((event_id, reason));
        }
    }
}

/// Sends messages; `send` may block while the client's queue is full.
pub trait Writer: Send {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError>;
    /// Delivery reports received so far.
    fn delivery(&self) -> Delivery;
    /// Waits for every outstanding delivery report.
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
