//! Sending with librdkafka's background producer; every message's delivery report is
//! counted as sent, failed or unknown (librdkafka's own persistence status decides), and
//! failures keep the event id and the reason.

use super::Kafka;
use crate::{BusError, Delivery, Writer};
use rdkafka::bindings::{rd_kafka_message_status, rd_kafka_msg_status_t as Status};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use std::sync::Mutex;
use std::time::Duration;

/// How long librdkafka keeps trying to deliver a message (`message.timeout.ms`): a broker
/// that goes away is reported within this time, never waited on for ever.
pub(crate) const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Reports {
    delivery: Mutex<Delivery>,
}

impl ClientContext for Reports {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _log_message: &str) {}
}

/// Where a failed report goes. librdkafka knows whether a message that failed had been
/// written to a broker's socket (`rd_kafka_message_status`): a request timed out or a
/// connection dropped after sending is POSSIBLY_PERSISTED (it may be on the topic, and sending
/// it again can duplicate it), a refusal (too large, unknown topic, not authorized) or a
/// message that never left the queue is NOT_PERSISTED.
fn outcome(status: Status, e: &KafkaError) -> Outcome {
    let code = e.rdkafka_error_code();
    match status {
        Status::RD_KAFKA_MSG_STATUS_PERSISTED => Outcome::Sent,
        Status::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => {
            Outcome::Unknown(format!("{e} (sent, but the broker's answer never came)"))
        }
        Status::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => Outcome::Failed(match code {
            Some(RDKafkaErrorCode::PurgeQueue) => {
                "not sent: still queued when the wait for the broker ended".to_string()
            }
            Some(RDKafkaErrorCode::MessageTimedOut) => {
                format!("not sent: {e} before it could be sent")
            }
            _ => e.to_string(),
        }),
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    Failed(String),
    Unknown(String),
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<String>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(_) => Outcome::Sent,
            Err((e, msg)) => {
                // SAFETY: the message is valid for the duration of the callback.
                let status = unsafe { rd_kafka_message_status(msg.ptr()) };
                outcome(status, e)
            }
        };
        // A poisoned lock still holds true counts: only a panic in this function poisons it.
        let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Outcome::Sent => d.sent += 1,
            Outcome::Failed(why) => d.fail(*id, why),
            Outcome::Unknown(why) => d.unsure(*id, why),
        }
    }
}

pub(crate) struct KafkaWriter {
    producer: ThreadedProducer<Reports>,
    name: String,
    /// How long `send` waits for room in a producer queue that a gone broker keeps full.
    timeout: Duration,
}

impl KafkaWriter {
    pub(crate) fn open(kafka: &Kafka) -> Result<Self, BusError> {
        let mut cfg = kafka.config.client_config()?;
        // Idempotent: librdkafka sends again what a dropped connection left unanswered, and
        // without it a 2 s outage mid-replay stored 203 of 400 events twice (seen with
        // tests/e2e/test_faults.py); with it the broker drops the repeats.
        cfg.set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "500000")
            .set(
                "message.timeout.ms",
                MESSAGE_TIMEOUT.as_millis().to_string(),
            );
        let producer: ThreadedProducer<Reports> = cfg
            .create_with_context(Reports::default())
            .map_err(|e| BusError::Config(e.to_string()))?;
        Ok(KafkaWriter {
            producer,
            name: kafka.name.clone(),
            timeout: MESSAGE_TIMEOUT,
        })
    }
}

impl Writer for KafkaWriter {
    fn send(&mut self, msg: sluice_model::Outgoing) -> Result<(), BusError> {
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        for h in &msg.headers {
            headers = headers.insert(KHeader {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        let mut record = BaseRecord::with_opaque_to(&msg.target, Box::new(msg.event_id))
            .payload(&msg.payload)
            .headers(headers);
        if let Some(k) = &msg.key {
            record = record.key(k);
        }
        if let Some(ts) = msg.timestamp_us {
            record = record.timestamp(ts / 1000);
        }
        if let Some(p) = msg.partition {
            record = record.partition(p);
        }
        let waiting = std::time::Instant::now();
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                // Full for the whole timeout: the broker takes nothing, and waiting on would
                // only go through every remaining match as each one expires.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if waiting.elapsed() >= self.timeout =>
                {
                    let id = *r.delivery_opaque;
                    let what = format!("Kafka connection {:?}", self.name);
                    self.count(|d| d.fail(id, format!("not sent: {what} takes no messages")));
                    return Err(BusError::Unreachable {
                        what,
                        reason: format!(
                            "the producer queue stayed full for {} s (--broker-timeout)",
                            waiting.elapsed().as_secs()
                        ),
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                // A message the client refuses on its own fails alone; the next may fit.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), r)) => {
                    let id = *r.delivery_opaque;
                    self.count(|d| {
                        d.fail(
                            id,
                            "not sent: larger than the producer's message.max.bytes".into(),
                        )
                    });
                    return Ok(());
                }
                Err((e, r)) => {
                    let err = match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::UnknownPartition) => format!(
                            "partition {:?} does not exist on {}",
                            msg.partition, msg.target
                        ),
                        _ => format!("cannot send to {} on {:?}: {e}", msg.target, self.name),
                    };
                    let id = *r.delivery_opaque;
                    self.count(|d| d.fail(id, format!("not sent: {err}")));
                    return Err(BusError::Client(err));
                }
            }
        }
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn delivery(&self) -> Delivery {
        self.producer
            .context()
            .delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        if self.producer.flush(timeout).is_err() {
            // The wait is over: purging makes librdkafka report what is left, queued ones as
            // never sent and in-flight ones as possibly written, so each lands in its count.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = self.producer.flush(Duration::from_secs(5));
        }
        Ok(self.delivery())
    }
}

impl KafkaWriter {
    fn count(&self, f: impl FnOnce(&mut Delivery)) {
        f(&mut self
            .producer
            .context()
            .delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::KafkaConfig;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    use sluice_model::Outgoing;

    fn writer(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> KafkaWriter {
        KafkaWriter::open(&Kafka {
            name: "mock".into(),
            config: KafkaConfig {
                brokers: cluster.bootstrap_servers(),
                sasl: None,
                tls: None,
                max_message_bytes: None,
            },
        })
        .unwrap()
    }

    fn msg(i: usize) -> Outgoing {
        Outgoing {
            target: "t".into(),
            partition: Some(0),
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: format!("m{i}").into_bytes(),
            properties: None,
            routing_key: None,
            event_id: format!("e{i}"),
        }
    }

    #[test]
    fn a_refusal_fails_and_a_message_in_flight_at_the_deadline_is_unknown() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 1, 1).unwrap();
        let mut w = writer(&cluster);
        w.send(msg(0)).unwrap();
        let d = w.flush(Duration::from_secs(10)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (1, 0, 0));

        // The broker refuses outright: certainly not on the topic.
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
        );
        w.send(msg(1)).unwrap();
        let d = w.flush(Duration::from_secs(10)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (1, 1, 0), "{d:?}");
        assert_eq!(d.errors[0].0, "e1");

        // Sent, and the answer is slower than the wait: the broker may hold them.
        cluster
            .broker_round_trip_time(1, Duration::from_secs(20))
            .unwrap();
        for i in 2..7 {
            w.send(msg(i)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let d = w.flush(Duration::from_secs(1)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the wait is bounded"
        );
        assert_eq!((d.sent, d.failed, d.unknown), (1, 1, 5), "{d:?}");
        assert!(d.unknowns.iter().all(|(_, why)| why.contains("never came")));
    }

    #[test]
    fn messages_that_never_left_the_queue_fail_as_not_sent() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 1, 1).unwrap();
        let mut w = writer(&cluster);
        w.send(msg(0)).unwrap();
        assert_eq!(w.flush(Duration::from_secs(10)).unwrap().sent, 1);
        cluster.broker_down(1).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for i in 1..4 {
            w.send(msg(i)).unwrap();
        }
        let d = w.flush(Duration::from_secs(1)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (1, 3, 0), "{d:?}");
        assert!(
            d.errors.iter().all(|(_, why)| why.starts_with("not sent")),
            "{d:?}"
        );
    }
}
