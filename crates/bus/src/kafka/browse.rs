//! Health check and topic listing through metadata and watermark requests.

use super::Kafka;
use crate::{BusError, Health, PartitionInfo, SourceInfo};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers the last client-level error: librdkafka reports authentication and TLS failures
/// there, while the request itself only times out.
#[derive(Default)]
pub(crate) struct ErrorCapture {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ClientContext for ErrorCapture {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((
                error
                    .rdkafka_error_code()
                    .unwrap_or(RDKafkaErrorCode::Unknown),
                reason.to_string(),
            ));
        }
    }
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _log_message: &str) {}
}

impl ConsumerContext for ErrorCapture {}

pub(crate) fn consumer(kafka: &Kafka) -> Result<BaseConsumer<ErrorCapture>, BusError> {
    let mut cfg = kafka.config.client_config()?;
    // A random group id is required by the client but is never joined: we only assign().
    cfg.set(
        "group.id",
        format!("sluice-inspector-{}", uuid::Uuid::new_v4().simple()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false")
    .set("enable.partition.eof", "false")
    // A position the partition no longer holds is an error to report (the topic was
    // recreated or truncated), not a silent jump to its end or start.
    .set("auto.offset.reset", "error");
    if let Some(max) = kafka.config.max_message_bytes {
        let max = max.clamp(1024, 1_000_000_000).to_string();
        cfg.set("fetch.message.max.bytes", &max).set(
            "receive.message.max.bytes",
            (max.parse::<u64>().unwrap_or(0) + 1_000_000).to_string(),
        );
    }
    cfg.create_with_context(ErrorCapture::default())
        .map_err(|e| BusError::Config(e.to_string()))
}

/// Turns a request failure into what a person can act on, using the last client error.
pub(crate) fn explain(
    kafka: &Kafka,
    ctx: &ErrorCapture,
    e: KafkaError,
    timeout: Duration,
) -> BusError {
    let what = format!(
        "Kafka connection {:?} ({})",
        kafka.name, kafka.config.brokers
    );
    let last = ctx.last.lock().ok().and_then(|l| l.clone());
    if let Some((code, reason)) = &last {
        if matches!(
            code,
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed
        ) || reason.contains("SASL")
            || reason.contains("uthentication")
        {
            return BusError::Auth {
                what,
                reason: reason.clone(),
            };
        }
    }
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => BusError::Client(e.to_string()),
        _ => BusError::Unreachable {
            what,
            reason: match last {
                Some((_, reason)) => format!("no answer within {} s ({reason})", timeout.as_secs()),
                None => format!("no answer within {} s ({e})", timeout.as_secs()),
            },
        },
    }
}

pub(crate) fn check(kafka: &Kafka, timeout: Duration) -> Result<Health, BusError> {
    let start = Instant::now();
    let c = consumer(kafka)?;
    let md = c
        .fetch_metadata(None, timeout)
        .map_err(|e| explain(kafka, c.context(), e, timeout))?;
    Ok(Health {
        brokers: md
            .brokers()
            .iter()
            .map(|b| format!("{}:{}", b.host(), b.port()))
            .collect(),
        sources: md.topics().len(),
        latency_ms: start.elapsed().as_millis() as u64,
        registry: None,
    })
}

/// All topics, or just `only` (empty when it does not exist).
pub(crate) fn topics(
    kafka: &Kafka,
    timeout: Duration,
    only: Option<&str>,
) -> Result<Vec<SourceInfo>, BusError> {
    let c = consumer(kafka)?;
    let md = c
        .fetch_metadata(only, timeout)
        .map_err(|e| explain(kafka, c.context(), e, timeout))?;
    let mut out = Vec::new();
    for t in md.topics() {
        if t.error().is_some() || (only.is_some() && t.partitions().is_empty()) {
            continue;
        }
        let mut partitions = Vec::new();
        for p in t.partitions() {
            let (low, high) = c
                .fetch_watermarks(t.name(), p.id(), timeout)
                .map_err(|e| explain(kafka, c.context(), e, timeout))?;
            partitions.push(PartitionInfo {
                id: p.id(),
                low,
                high,
            });
        }
        partitions.sort_by_key(|p| p.id);
        out.push(SourceInfo {
            name: t.name().to_string(),
            internal: t.name().starts_with("__"),
            partitions,
            ..Default::default()
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
