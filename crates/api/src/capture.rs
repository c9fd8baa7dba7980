//! Reading a bus into events: `tail` shows them, `capture` writes them to the lake.
//!
//! Capture keeps both cores busy with three threads: one polls the bus, one decodes into
//! events, and the lake writer's own thread encodes Parquet. It stops on the stop flag
//! (Ctrl-C, SIGTERM), a message count, a duration, the end offsets seen at the start, or a bus
//! that has not answered for the broker timeout; in every case it makes what it read durable
//! before returning. A reader that takes messages (a RabbitMQ queue read destructively, an SQS
//! drain) deletes them only once they are durable: after each flush while reading, and at the
//! end (also when the capture failed, if the last flush succeeded).

use crate::error::{ApiError, ErrorCode, Result};
use serde::Serialize;
use sluice_bus::{BusError, ReadOptions, Reader};
use sluice_codec::{Decoded, Decoder};
use sluice_lake::{Covered, EventRef, FlushPolicy, Lake, LakeWriter};
use sluice_model::{event_id, now_us, Bus, Encoding, Event, Message, StartFrom};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use sluice_replay::REPLAY_ID_HEADER;

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
}

impl CaptureProgress {
    fn flushed(&mut self, f: sluice_lake::FlushStats) {
        self.captured += f.rows;
        self.files += f.files;
    }
}

/// Per-topic decoders for values and keys.
#[derive(Clone, Default)]
pub(crate) struct TopicDecoders {
    pub value: Decoder,
    pub key: Option<Decoder>,
}

/// The headers a Schema Registry serializer puts a schema id in, instead of the payload.
pub(crate) const VALUE_SCHEMA_HEADER: &str = "__value_schema_id";
const KEY_SCHEMA_HEADER: &str = "__key_schema_id";

impl TopicDecoders {
    /// The payload's decoding (`complete` is false for a payload cut at the size cap) and the
    /// key's JSON when keys are mapped or framed for a registry. Capture and re-decoding both
    /// go through here.
    pub(crate) fn decode(
        &self,
        payload: &[u8],
        complete: bool,
        key: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> (Decoded, Option<String>) {
        let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let key_header = header(KEY_SCHEMA_HEADER);
        // Keys framed for the connection's registry decode even when no key type is mapped.
        let key_decoded = match (&self.key, self.value.registry(), key) {
            (Some(kd), _, Some(k)) => kd.decode_with_header(k, true, key_header).json,
            (None, Some(r), Some(k)) => r.decode(k, key_header).and_then(|d| d.json),
            _ => None,
        };
        (
            self.value
                .decode_with_header(payload, complete, header(VALUE_SCHEMA_HEADER)),
            key_decoded,
        )
    }
}

pub(crate) struct EventBuilder {
    pub connection: String,
    pub bus: Bus,
    pub decoders: HashMap<String, TopicDecoders>,
    pub max_payload_bytes: usize,
    pub decode: bool,
}

/// What decoding one message produced, kept beside the message so a row can borrow both.
pub(crate) struct Parts {
    decoded: Decoded,
    key_decoded: Option<String>,
    size: usize,
    truncated: bool,
}

impl Parts {
    pub(crate) fn failed(&self) -> bool {
        self.decoded.error.is_some()
    }
}

impl EventBuilder {
    /// Cuts the payload at the size cap and decodes value and key.
    pub(crate) fn decode(&self, msg: &mut Message) -> Parts {
        let size = msg.payload.len();
        let truncated = size > self.max_payload_bytes;
        if truncated {
            msg.payload.truncate(self.max_payload_bytes);
        }
        if !self.decode {
            return Parts {
                decoded: Decoded {
                    encoding: Some(Encoding::Undecoded),
                    ..Decoded::default()
                },
                key_decoded: None,
                size,
                truncated,
            };
        }
        let fallback = TopicDecoders::default();
        let d = self.decoders.get(&msg.source).unwrap_or(&fallback);
        let headers: Vec<(&str, &[u8])> = msg
            .headers
            .iter()
            .filter_map(|h| Some((h.key.as_str(), h.value.as_deref()?)))
            .collect();
        let (decoded, key_decoded) =
            d.decode(&msg.payload, !truncated, msg.key.as_deref(), &headers);
        Parts {
            decoded,
            key_decoded,
            size,
            truncated,
        }
    }

    /// The row for a decoded message, borrowing from both (capture appends it to the lake
    /// without building an `Event`). `captured_at_us` is read once per polled batch: a clock
    /// read per message showed up in profiles.
    pub(crate) fn row<'a>(
        &'a self,
        msg: &'a Message,
        parts: &'a Parts,
        captured_at_us: i64,
    ) -> EventRef<'a> {
        EventRef {
            id: msg.id.as_deref(),
            bus: self.bus,
            connection: &self.connection,
            source: &msg.source,
            partition: msg.partition,
            offset: msg.offset,
            key: msg.key.as_deref(),
            key_decoded: parts.key_decoded.as_deref(),
            headers: &msg.headers,
            timestamp_us: msg.timestamp_us,
            captured_at_us,
            payload: &msg.payload,
            size: parts.size as i64,
            truncated: parts.truncated,
            schema: parts.decoded.schema.as_deref(),
            encoding: parts.decoded.encoding.unwrap_or(Encoding::Binary),
            decoded: parts.decoded.json.as_deref(),
            payload_text: parts.decoded.text.as_deref(),
            decode_error: parts.decoded.error.as_deref(),
            properties: msg.properties.as_deref(),
        }
    }

    /// An owned event, for `tail`.
    pub(crate) fn build(&self, mut msg: Message, captured_at_us: i64) -> Event {
        let parts = self.decode(&mut msg);
        let id = msg.id.take().unwrap_or_else(|| {
            event_id(
                self.bus,
                &self.connection,
                &msg.source,
                msg.partition,
                msg.offset,
            )
        });
        Event {
            id,
            bus: self.bus,
            connection: self.connection.clone(),
            source: msg.source,
            partition: msg.partition,
            offset: msg.offset,
            key: msg.key,
            key_decoded: parts.key_decoded,
            headers: msg.headers,
            timestamp_us: msg.timestamp_us,
            captured_at_us,
            payload: msg.payload,
            size: parts.size as i64,
            truncated: parts.truncated,
            schema: parts.decoded.schema,
            encoding: parts.decoded.encoding.unwrap_or(Encoding::Binary),
            decoded: parts.decoded.json,
            payload_text: parts.decoded.text,
            decode_error: parts.decoded.error,
            properties: msg.properties,
        }
    }
}

pub(crate) fn is_own_replay(msg: &Message, lake_id: &str) -> bool {
    msg.headers.iter().any(|h| {
        h.key == REPLAY_ID_HEADER
            && h.value.as_deref().is_some_and(|v| {
                v.starts_with(lake_id.as_bytes()) && v.get(lake_id.len()) == Some(&b':')
            })
    })
}

enum Batch {
    Messages(Vec<Message>),
    End,
    Failed(BusError),
}

/// How often a running capture asks whether mappings or schemas changed.
const DECODER_CHECK: Duration = Duration::from_secs(1);

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_capture(
    mut reader: Box<dyn Reader>,
    mut builder: EventBuilder,
    rebuild: &mut dyn FnMut() -> Option<EventBuilder>,
    lake: &Lake,
    covered: HashMap<String, Covered>,
    known: &std::collections::HashSet<String>,
    opts: &CaptureOptions,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&CaptureProgress),
) -> Result<CaptureProgress> {
    let start = Instant::now();
    let mut writer = LakeWriter::new(lake.clone(), opts.flush);
    let mut p = CaptureProgress::default();
    let reader_stop = AtomicBool::new(false);
    // Messages (counted as `read`) whose events are durable: the polling thread lets the
    // reader delete them from a queue while reading goes on.
    let durable = AtomicU64::new(0);
    let stop_at_end = opts.stop_at_end;
    let broker_timeout = opts.broker_timeout;
    // Per batch: events pushed to the writer and messages read once it was handled, so a
    // count of durable events maps back to the messages behind them.
    let mut checkpoints: std::collections::VecDeque<(u64, u64)> = Default::default();
    let mut pushed = 0u64;
    let (tx, rx) = sync_channel::<Batch>(32);

    let result = std::thread::scope(|s| {
        let reader_stop = &reader_stop;
        let durable = &durable;
        let polling = s.spawn(move || {
            let mut acknowledged = 0;
            let mut ack_failed: Option<Instant> = None;
            loop {
                if reader_stop.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    break;
                }
                let now_durable = durable.load(Ordering::Acquire);
                // A failed acknowledgement is tried again (once a second): the messages are
                // safe in the lake, and a bus that stays away is the broker timeout's to judge.
                let retry_due = ack_failed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if now_durable > acknowledged && retry_due {
                    match reader.acknowledge(now_durable) {
                        Ok(()) => {
                            acknowledged = now_durable;
                            ack_failed = None;
                        }
                        Err(e) => {
                            tracing::debug!("acknowledging durable messages: {e}");
                            ack_failed = Some(Instant::now());
                        }
                    }
                }
                if let Some(t) = reader.trouble().filter(|t| t.lasted(broker_timeout)) {
                    let e = t.unreachable(|s| format!("no answer for {s} s (--broker-timeout)"));
                    let _ = tx.send(Batch::Failed(e));
                    break;
                }
                if stop_at_end && reader.at_end() {
                    let _ = tx.send(Batch::End);
                    break;
                }
                match reader.poll(10_000, Duration::from_millis(100)) {
                    Ok(b) if b.is_empty() => {}
                    Ok(b) => {
                        if tx.send(Batch::Messages(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Batch::Failed(e));
                        break;
                    }
                }
            }
            reader
        });

        let mut last_report = Instant::now();
        let mut last_check = Instant::now();
        let outcome: Result<()> = loop {
            // A mapping or schema changed while capturing: decode what comes next with it.
            if last_check.elapsed() >= DECODER_CHECK {
                last_check = Instant::now();
                if let Some(b) = rebuild() {
                    builder = b;
                }
            }
            if stop.load(Ordering::Relaxed) {
                p.stopped_by = Some("interrupted".into());
                break Ok(());
            }
            if opts.duration.is_some_and(|d| start.elapsed() >= d) {
                p.stopped_by = Some("duration".into());
                break Ok(());
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Batch::Messages(batch)) => {
                    let captured_at = now_us();
                    let mut write_err = None;
                    for msg in batch {
                        if opts.max_messages.is_some_and(|m| p.read >= m) {
                            break;
                        }
                        p.read += 1;
                        p.bytes += msg.payload.len() as u64;
                        if !opts.include_replays && is_own_replay(&msg, lake.id()) {
                            p.skipped_replays += 1;
                            continue;
                        }
                        if msg.id.as_ref().is_some_and(|id| known.contains(id)) {
                            p.skipped_duplicates += 1;
                            continue;
                        }
                        if let (Some(part), Some(off)) = (msg.partition, msg.offset) {
                            if covered
                                .get(&msg.source)
                                .is_some_and(|c| c.contains(part, off))
                            {
                                p.skipped_duplicates += 1;
                                continue;
                            }
                        }
                        let mut msg = msg;
                        let parts = builder.decode(&mut msg);
                        p.decode_errors += u64::from(parts.failed());
                        p.truncated += u64::from(parts.truncated);
                        pushed += 1;
                        match writer.push_ref(&builder.row(&msg, &parts, captured_at)) {
                            Ok(Some(f)) => p.flushed(f),
                            Ok(None) => {}
                            Err(e) => {
                                write_err = Some(e);
                                break;
                            }
                        }
                    }
                    checkpoints.push_back((pushed, p.read));
                    if let Some(e) = write_err {
                        break Err(e.into());
                    }
                    if opts.max_messages.is_some_and(|m| p.read >= m) {
                        p.stopped_by = Some("max-messages".into());
                        break Ok(());
                    }
                }
                Ok(Batch::End) => {
                    p.stopped_by = Some("end".into());
                    break Ok(());
                }
                Ok(Batch::Failed(e)) => break Err(e.into()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    p.stopped_by.get_or_insert_with(|| "interrupted".into());
                    break Ok(());
                }
            }
            match writer.flush_if_due() {
                Ok(Some(f)) => p.flushed(f),
                Ok(None) => {}
                Err(e) => break Err(e.into()),
            }
            // The writer makes events durable in the order they were pushed.
            let mut upto = None;
            while checkpoints
                .front()
                .is_some_and(|&(rows, _)| rows <= p.captured)
            {
                upto = checkpoints.pop_front().map(|(_, read)| read);
            }
            if let Some(read) = upto {
                durable.store(read, Ordering::Release);
            }
            if last_report.elapsed() >= Duration::from_millis(200) {
                p.elapsed_ms = start.elapsed().as_millis() as u64;
                on_progress(&p);
                last_report = Instant::now();
            }
        };
        reader_stop.store(true, Ordering::Relaxed);
        drop(rx);
        (outcome, polling.join().ok())
    });
    let (result, mut reader) = result;

    // Whatever happened, make what was read durable before reporting.
    let flushed = writer.flush();
    if let Ok(f) = &flushed {
        p.flushed(*f);
    }
    p.elapsed_ms = start.elapsed().as_millis() as u64;
    on_progress(&p);
    // Stopped by hand while the bus was not answering: that is not a clean end either.
    let trouble = reader.as_ref().and_then(|r| r.trouble());
    let result = result.and_then(|()| match trouble {
        Some(t) if p.stopped_by.as_deref() == Some("interrupted") => Err(t
            .unreachable(|s| format!("stopped while it had not answered for {s} s"))
            .into()),
        _ => Ok(()),
    });
    // A capture that fails still says exactly what it kept.
    let kept = |e: ApiError| {
        let buffered = writer.buffered();
        ApiError::new(
            e.code,
            format!(
                "{}; captured {} events into the lake before stopping ({} read{})",
                e.message,
                p.captured,
                p.read,
                if buffered > 0 {
                    format!(", {buffered} not written")
                } else {
                    String::new()
                }
            ),
        )
    };
    if result.is_err() && flushed.is_ok() {
        // Every message read is durable now (or was skipped as already kept): a reader that
        // takes messages deletes them even though the capture failed, so a later read does
        // not find them again. Best effort: the bus may be what failed.
        if let Some(r) = reader.as_mut() {
            if let Err(e) = r.acknowledge(p.read) {
                tracing::warn!("acknowledging what was captured: {e}");
            }
        }
    }
    result.map_err(kept)?;
    flushed.map_err(|e| {
        ApiError::new(
            ErrorCode::Lake,
            format!("{e} ({} events not written)", writer.buffered()),
        )
    })?;
    // Only now, with every handled message durable, may a destructive reader delete them.
    if let Some(mut reader) = reader {
        reader.commit(p.read)?;
    }
    Ok(p)
}
