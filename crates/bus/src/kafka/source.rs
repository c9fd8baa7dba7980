//! Reading topics by direct partition assignment (no group join, no commits), from a start
//! position per partition, remembering each partition's end offset for `--stop-at-end`.

use super::browse::{consumer, explain, ErrorCapture};
use super::Kafka;
use crate::{BusError, Reader, Trouble};
use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_model::{Header, Message, StartFrom};
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// Leaves room under the 10 seconds a user waits at most for "unreachable".
const META_TIMEOUT: Duration = Duration::from_secs(8);
/// librdkafka retries a lost broker forever and says nothing a caller can act on, and a
/// stalled connection (open, silent) only fails after `socket.timeout.ms`. So a reader that
/// has heard nothing for this long asks the broker itself, with a short timeout.
const IDLE_PROBE: Duration = Duration::from_secs(3);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a reader that is receiving messages still checks that its topics are the ones it
/// began on: a topic deleted and created again under the same name is read on silently by
/// librdkafka, from offsets that now belong to other messages.
const ID_CHECK: Duration = Duration::from_secs(5);

/// What the reader knows of the broker between polls.
struct Contact {
    /// The last time the broker answered: a message, or a probe that succeeded.
    last: Instant,
    last_probe: Instant,
    /// Set while the broker does not answer, with the client's latest reason.
    failing: Option<String>,
    /// A probe is due now (the client reported an unknown topic or partition).
    probe_now: bool,
    /// An error that ends reading, returned by the next poll so the messages read with it
    /// are not lost.
    fatal: Option<BusError>,
}

pub(crate) struct KafkaReader {
    /// The consumer's queue, read in batches through librdkafka's C API: rdkafka's
    /// per-message `poll` cost several times what the batch call does (clock reads and
    /// locking per message), which made reading the capture's bottleneck.
    queue: *mut rd::rd_kafka_queue_t,
    /// Owns the client the queue belongs to; kept alive for as long as the queue.
    consumer: BaseConsumer<ErrorCapture>,
    /// Per partition: topic, partition, next offset to read, end offset when reading began.
    progress: Vec<(String, i32, i64, i64)>,
    contact: Contact,
    /// Each topic's id when reading began, where the broker gives ids.
    topic_ids: std::collections::HashMap<String, String>,
    last_id_check: Instant,
    /// The id check in flight, if any.
    ids_asked: Option<super::topic_id::IdRequest>,
    /// Names the connection in errors.
    what: String,
    connection: String,
}

// SAFETY: librdkafka queues and consumers may be used from any thread; the reader is used
// from one thread at a time (it is moved into the capture's polling thread).
unsafe impl Send for KafkaReader {}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // The queue reference must go before the consumer it belongs to.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}

impl KafkaReader {
    pub(crate) fn open(
        kafka: &Kafka,
        topics: &[String],
        from: StartFrom,
    ) -> Result<Self, BusError> {
        let consumer = consumer(kafka)?;
        let mut tpl = TopicPartitionList::new();
        let mut progress = Vec::new();
        for topic in topics {
            let md = consumer
                .fetch_metadata(Some(topic), META_TIMEOUT)
                .map_err(|e| explain(kafka, consumer.context(), e, META_TIMEOUT))?;
            let t = md.topics().iter().find(|t| t.name() == topic);
            let partitions: Vec<i32> = match t {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    t.partitions().iter().map(|p| p.id()).collect()
                }
                _ => {
                    return Err(BusError::UnknownSource {
                        kind: "topic",
                        name: topic.clone(),
                        connection: kafka.name.clone(),
                    });
                }
            };
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p, META_TIMEOUT)
                    .map_err(|e| explain(kafka, consumer.context(), e, META_TIMEOUT))?;
                let start = match from {
                    StartFrom::Beginning => low,
                    StartFrom::End => high,
                    StartFrom::Offset(n) => n.clamp(low, high),
                    StartFrom::Last(n) => (high - n).max(low),
                    StartFrom::Time(us) => offset_for_time(&consumer, topic, p, us / 1000)
                        .unwrap_or(high)
                        .clamp(low, high),
                    StartFrom::Entry(..) | StartFrom::LastPerSubject => {
                        return Err(BusError::Invalid(
                            "a Kafka read starts from beginning, end, an offset, -N or @TIME"
                                .into(),
                        ))
                    }
                };
                tpl.add_partition_offset(topic, p, Offset::Offset(start))
                    .map_err(|e| BusError::Client(e.to_string()))?;
                progress.push((topic.clone(), p, start, high));
            }
        }
        consumer
            .assign(&tpl)
            .map_err(|e| BusError::Client(e.to_string()))?;
        let queue = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if queue.is_null() {
            return Err(BusError::Client(
                "librdkafka returned no consumer queue".into(),
            ));
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        // A broker without DescribeTopics (or topic ids) leaves nothing to compare later.
        let topic_ids =
            super::topic_id::topic_ids(consumer.client().native_ptr(), &names, PROBE_TIMEOUT)
                .unwrap_or_else(|why| {
                    tracing::debug!("kafka: no topic ids: {why}");
                    Default::default()
                });
        let now = Instant::now();
        Ok(KafkaReader {
            queue,
            consumer,
            progress,
            topic_ids,
            last_id_check: now,
            ids_asked: None,
            contact: Contact {
                last: now,
                last_probe: now,
                failing: None,
                probe_now: false,
                fatal: None,
            },
            what: format!(
                "Kafka connection {:?} ({})",
                kafka.name, kafka.config.brokers
            ),
            connection: kafka.name.clone(),
        })
    }
}

fn offset_for_time(
    c: &BaseConsumer<ErrorCapture>,
    topic: &str,
    partition: i32,
    ms: i64,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(ms))
        .ok()?;
    let found = c.offsets_for_times(tpl, META_TIMEOUT).ok()?;
    match found.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

impl Reader for KafkaReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        if let Some(e) = self.contact.fatal.take() {
            return Err(e);
        }
        let mut batch: Vec<*mut rd::rd_kafka_message_t> =
            vec![std::ptr::null_mut(); max.clamp(1, 10_000)];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, ms, batch.as_mut_ptr(), batch.len())
        };
        if n < 0 {
            return Err(BusError::Client("reading from Kafka failed".into()));
        }
        let mut out = Vec::with_capacity(n as usize);
        let mut topic_cache: Option<(*mut rd::rd_kafka_topic_t, String)> = None;
        for &ptr in &batch[..n as usize] {
            // SAFETY: librdkafka handed us these messages; each is destroyed exactly once below.
            let m = unsafe { &*ptr };
            if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                // Broker errors arrive as messages; librdkafka retries on its own, so they
                // only say what to watch for.
                self.client_error(m.err, ptr);
                unsafe { rd::rd_kafka_message_destroy(ptr) };
                continue;
            }
            let topic = match &topic_cache {
                Some((rkt, name)) if *rkt == m.rkt => name.clone(),
                _ => {
                    let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(m.rkt)) }
                        .to_string_lossy()
                        .into_owned();
                    topic_cache = Some((m.rkt, name.clone()));
                    name
                }
            };
            if let Some(p) = self
                .progress
                .iter_mut()
                .find(|p| p.1 == m.partition && p.0 == topic)
            {
                p.2 = m.offset + 1;
            }
            let bytes = |ptr: *mut std::os::raw::c_void, len: usize| unsafe {
                std::slice::from_raw_parts(ptr as *const u8, len).to_vec()
            };
            let mut ts_type = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
            let ts = unsafe { rd::rd_kafka_message_timestamp(ptr, &mut ts_type) };
            out.push(Message {
                id: None,
                source: topic,
                partition: Some(m.partition),
                offset: Some(m.offset),
                sub_offset: None,
                key: (!m.key.is_null()).then(|| bytes(m.key, m.key_len)),
                headers: headers(ptr),
                timestamp_us: (ts >= 0).then(|| ts * 1000),
                payload: if m.payload.is_null() {
                    Vec::new()
                } else {
                    bytes(m.payload, m.len)
                },
                properties: None,
            });
            unsafe { rd::rd_kafka_message_destroy(ptr) };
        }
        let c = &mut self.contact;
        if !out.is_empty() {
            c.last = Instant::now();
            c.failing = None;
        } else if c.probe_now
            || (c.last_probe.elapsed() >= IDLE_PROBE && c.last.elapsed() >= IDLE_PROBE)
        {
            self.probe();
        }
        self.check_ids();
        Ok(out)
    }

    fn at_end(&self) -> bool {
        self.progress.iter().all(|(_, _, next, end)| next >= end)
    }

    fn trouble(&self) -> Option<Trouble> {
        let reason = self.contact.failing.as_ref()?;
        Some(Trouble {
            since: self.contact.last,
            what: self.what.clone(),
            reason: reason.clone(),
        })
    }
}

impl KafkaReader {
    /// Notes what a client error means for reading: the broker is gone (watch it), a topic
    /// may be gone (look now), or reading cannot go on.
    fn client_error(&mut self, err: rd::rd_kafka_resp_err_t, msg: *mut rd::rd_kafka_message_t) {
        use rd::rd_kafka_resp_err_t::*;
        let text = unsafe { CStr::from_ptr(rd::rd_kafka_message_errstr(msg)) }
            .to_string_lossy()
            .into_owned();
        tracing::debug!("kafka: {err:?}: {text}");
        let c = &mut self.contact;
        match err {
            RD_KAFKA_RESP_ERR__PARTITION_EOF => {}
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
            | RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
            | RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION => c.probe_now = true,
            // `auto.offset.reset=error`: the partition no longer holds the next offset
            // (truncated or compacted away, or recreated where the client notices). Reading on from wherever the client
            // resets to would give new messages the ids of old ones.
            RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET | RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE => {
                c.fatal.get_or_insert(BusError::Client(format!(
                    "{}: {text}: the topic was recreated or truncated while reading; \
                     start a new capture (`--from beginning` or `--from end`)",
                    self.what
                )));
            }
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
            | RD_KAFKA_RESP_ERR__AUTHENTICATION
            | RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED => {
                c.fatal.get_or_insert(BusError::Auth {
                    what: self.what.clone(),
                    reason: text,
                });
            }
            _ => {
                c.failing = Some(text);
            }
        }
    }

    /// Asks the broker, with a short timeout, whether it answers and still has every topic
    /// and partition at or past where reading is; sets or clears the trouble accordingly.
    fn probe(&mut self) {
        self.contact.last_probe = Instant::now();
        self.contact.probe_now = false;
        match self.check_topics() {
            Ok(()) => {
                self.contact.last = Instant::now();
                self.contact.failing = None;
            }
            Err(Probe::NoAnswer(reason)) => {
                self.contact.failing = Some(reason);
            }
            Err(Probe::Fatal(e)) => {
                self.contact.fatal.get_or_insert(e);
            }
        }
    }

    /// Asks for the topics' ids every [`ID_CHECK`] and looks for the answer on later polls
    /// without waiting, ending reading when a topic now has another id than when reading
    /// began: it was deleted and created again. No answer decides nothing (the idle probe
    /// watches the broker); a broker that gave no ids at the start gives the baseline later.
    fn check_ids(&mut self) {
        if let Some(asked) = &self.ids_asked {
            let answer = asked.answer(Duration::ZERO);
            if answer.is_none() && asked.sent.elapsed() < PROBE_TIMEOUT * 2 {
                return;
            }
            self.ids_asked = None;
            self.last_id_check = Instant::now();
            let Some(Ok(now)) = answer else {
                return;
            };
            if self.topic_ids.is_empty() {
                self.topic_ids = now;
                return;
            }
            let recreated = self
                .topic_ids
                .iter()
                .find(|(topic, id)| now.get(*topic).is_some_and(|new| new != *id));
            if let Some((topic, _)) = recreated {
                self.contact.fatal.get_or_insert(BusError::Client(format!(
                    "{}: topic {topic:?} was deleted and created again while reading (its topic \
                     id changed); the events read since then (at most a few seconds' worth) \
                     are the new topic's; start a new capture (`--from beginning` or `--from end`)",
                    self.what
                )));
            }
            return;
        }
        if self.last_id_check.elapsed() < ID_CHECK {
            return;
        }
        match super::topic_id::IdRequest::send(
            self.consumer.client().native_ptr(),
            &self.topics(),
            PROBE_TIMEOUT,
        ) {
            Ok(r) => self.ids_asked = Some(r),
            Err(why) => {
                tracing::debug!("kafka: cannot ask for topic ids: {why}");
                self.last_id_check = Instant::now();
            }
        }
    }

    /// The topics read, once each (`progress` holds their partitions side by side).
    fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.progress.iter().map(|p| p.0.as_str()).collect();
        topics.dedup();
        topics
    }

    fn check_topics(&self) -> Result<(), Probe> {
        for topic in self.topics() {
            let md = self
                .consumer
                .fetch_metadata(Some(topic), PROBE_TIMEOUT)
                .map_err(|e| Probe::NoAnswer(e.to_string()))?;
            let gone = || {
                Probe::Fatal(BusError::UnknownSource {
                    kind: "topic (deleted while reading)",
                    name: topic.to_string(),
                    connection: self.connection.clone(),
                })
            };
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .ok_or_else(gone)?;
            if t.error().is_some() || t.partitions().is_empty() {
                return Err(gone());
            }
            // Partition ids only: the high watermark cannot tell a recreated topic (tansu's
            // lags behind what consumers have read). A position a partition no longer holds
            // (truncated, compacted away) comes back as `__AUTO_OFFSET_RESET`.
            for (_, p, _, _) in self.progress.iter().filter(|p| p.0 == topic) {
                if !t.partitions().iter().any(|tp| tp.id() == *p) {
                    return Err(gone());
                }
            }
        }
        Ok(())
    }
}

enum Probe {
    NoAnswer(String),
    Fatal(BusError),
}

/// Reads headers through librdkafka directly: rdkafka's safe accessor panics on a header
/// name that is not UTF-8, and bad input must never crash a capture.
fn headers(msg: *mut rd::rd_kafka_message_t) -> Vec<Header> {
    let mut out = Vec::new();
    unsafe {
        let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        if rd::rd_kafka_message_headers(msg, &mut hdrs)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            || hdrs.is_null()
        {
            return out;
        }
        let n = rd::rd_kafka_header_cnt(hdrs);
        for i in 0..n {
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            let mut value: *const std::os::raw::c_void = std::ptr::null();
            let mut size: usize = 0;
            if rd::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size)
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                continue;
            }
            let key = if name.is_null() {
                String::new()
            } else {
                String::from_utf8_lossy(CStr::from_ptr(name).to_bytes()).into_owned()
            };
            let value = (!value.is_null())
                .then(|| std::slice::from_raw_parts(value as *const u8, size).to_vec());
            out.push(Header { key, value });
        }
    }
    out
}
