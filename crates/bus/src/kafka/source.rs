//! Reading topics by direct partition assignment (no group join, no commits), from a start
//! position per partition, remembering each partition's end offset for `--stop-at-end`.

use super::browse::{consumer, explain, ErrorCapture};
use super::Kafka;
use crate::{BusError, Reader};
use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use sluice_model::{Header, Message, StartFrom};
use std::collections::HashMap;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// Leaves room under the 10 seconds a user waits at most for "unreachable".
const META_TIMEOUT: Duration = Duration::from_secs(8);

pub(crate) struct KafkaReader {
    consumer: BaseConsumer<ErrorCapture>,
    /// (topic, partition) -> (next offset to read, end offset when reading began)
    progress: HashMap<(String, i32), (i64, i64)>,
}

impl KafkaReader {
    pub(crate) fn open(
        kafka: &Kafka,
        topics: &[String],
        from: StartFrom,
    ) -> Result<Self, BusError> {
        let consumer = consumer(kafka)?;
        let mut tpl = TopicPartitionList::new();
        let mut progress = HashMap::new();
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
                };
                tpl.add_partition_offset(topic, p, Offset::Offset(start))
                    .map_err(|e| BusError::Client(e.to_string()))?;
                progress.insert((topic.clone(), p), (start, high));
            }
        }
        consumer
            .assign(&tpl)
            .map_err(|e| BusError::Client(e.to_string()))?;
        Ok(KafkaReader { consumer, progress })
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
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < max {
            let wait = if out.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    // Transient broker errors surface here; librdkafka retries on its own.
                    tracing::warn!("kafka: {e}");
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                Some(Ok(m)) => {
                    if let Some(p) = self
                        .progress
                        .get_mut(&(m.topic().to_string(), m.partition()))
                    {
                        p.0 = m.offset() + 1;
                    }
                    out.push(to_message(&m));
                }
            }
        }
        Ok(out)
    }

    fn at_end(&self) -> bool {
        self.progress.values().all(|(next, end)| next >= end)
    }
}

fn to_message(m: &BorrowedMessage<'_>) -> Message {
    Message {
        source: m.topic().to_string(),
        partition: Some(m.partition()),
        offset: Some(m.offset()),
        key: m.key().map(<[u8]>::to_vec),
        headers: headers(m),
        timestamp_us: m.timestamp().to_millis().map(|ms| ms * 1000),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

/// Reads headers through librdkafka directly: rdkafka's safe accessor panics on a header
/// name that is not UTF-8, and bad input must never crash a capture.
fn headers(m: &BorrowedMessage<'_>) -> Vec<Header> {
    let mut out = Vec::new();
    unsafe {
        let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        if rd::rd_kafka_message_headers(m.ptr(), &mut hdrs)
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
