//! Capture: reads a bus into the lake (bus -> codec -> lake, the mirror of replay's lake ->
//! bus) and ends every run with an exact account of what it read and what is durable.
//!
//! Capture keeps both cores busy with three threads: one polls the bus, one decodes into
//! events, and the lake writer's own thread encodes Parquet. It stops on the stop flag
//! (Ctrl-C, SIGTERM), a message count, a duration, the end offsets seen at the start, or a bus
//! that has not answered for the broker timeout; in every case it makes what it read durable
//! before returning. A reader that takes messages (a RabbitMQ queue read destructively, an SQS
//! drain) deletes them only once they are durable: after each flush while reading, and at the
//! end (also when the capture failed, if the last flush succeeded).
//!
//! This crate owns polling, batching, decoding messages into rows, skipping what the lake
//! already holds, flushing and acknowledging. It must not read config files, schemas from
//! disk or secrets (keyring), and knows nothing of the CLI or the UI: the caller hands it a
//! reader, the decoders and what the lake already holds, and renders progress itself.

mod error;
mod event;
mod pipeline;
mod redact;

pub use error::CaptureError;
pub use event::{is_own_replay, EventBuilder, Parts, TopicDecoders, VALUE_SCHEMA_HEADER};
pub use pipeline::run_capture;
pub use redact::{
    RedactAction, RedactAt, RedactRule, Redactions, Redactor, RuleError, REDACTED_HEADER,
};

use serde::Serialize;
use sluice_bus::ReadOptions;
use sluice_lake::FlushPolicy;
use sluice_model::StartFrom;
use std::time::Duration;

/// Default cap on stored payload bytes; larger payloads are stored cut and flagged.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// How long a bus may stop answering before a capture gives up (keeping what it read).
pub const DEFAULT_BROKER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub sources: Vec<String>,
    pub from: StartFrom,
    pub max_messages: Option<u64>,
    pub duration: Option<Duration>,
    pub stop_at_end: bool,
    pub include_replays: bool,
    pub max_payload_bytes: usize,
    /// False stores payloads as they came (encoding `undecoded`) for `schema redecode` to
    /// decode later: the fastest capture, for when keeping up with the bus matters most.
    pub decode: bool,
    pub flush: FlushPolicy,
    /// How RabbitMQ sources are read (tap by default) and SQS queues (peek or drain); Kafka
    /// ignores it.
    pub read: ReadOptions,
    /// A bus that answers nothing for this long ends the capture with an error.
    pub broker_timeout: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            sources: Vec::new(),
            from: StartFrom::End,
            max_messages: None,
            duration: None,
            stop_at_end: false,
            include_replays: false,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            decode: true,
            flush: FlushPolicy::default(),
            read: ReadOptions::default(),
            broker_timeout: DEFAULT_BROKER_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, ts_rs::TS)]
pub struct CaptureProgress {
    /// Messages taken from the bus.
    pub read: u64,
    /// Events durably in the lake (flushed and renamed into place).
    pub captured: u64,
    /// Payload bytes read.
    pub bytes: u64,
    pub decode_errors: u64,
    pub truncated: u64,
    pub skipped_replays: u64,
    /// Already in the lake from an earlier capture of the same offsets.
    pub skipped_duplicates: u64,
    pub files: u64,
    pub elapsed_ms: u64,
    /// Why the capture ended: "end", "max-messages", "duration" or "interrupted".
    pub stopped_by: Option<String>,
    /// Where a capture that listens (a collector) takes events, and the token this run drew.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub listening: Option<sluice_bus::Listening>,
    /// What the reader did or left that a person should know (a replication slot made, or
    /// left holding WAL), when the capture ended.
    pub notes: Vec<String>,
}

impl CaptureProgress {
    fn flushed(&mut self, f: sluice_lake::FlushStats) {
        self.captured += f.rows;
        self.files += f.files;
    }
}
