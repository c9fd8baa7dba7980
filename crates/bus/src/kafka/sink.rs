//! Sending with librdkafka's background producer; every message's delivery report is
//! counted, and failures keep the event id and the reason.

use super::Kafka;
use crate::{BusError, Delivery, Writer};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Reports {
    sent: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<(String, String)>>,
}

impl ClientContext for Reports {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, _fac: &str, _log_message: &str) {}
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<String>;

    fn delivery(&self, result: &DeliveryResult<'_>, id: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut errs) = self.errors.lock() {
                    // Keep memory bounded on a mass failure; the count stays exact.
                    if errs.len() < crate::MAX_ERRORS {
                        errs.push((*id, e.to_string()));
                    }
                }
            }
        }
    }
}

pub(crate) struct KafkaWriter {
    producer: ThreadedProducer<Reports>,
    name: String,
}

impl KafkaWriter {
    pub(crate) fn open(kafka: &Kafka) -> Result<Self, BusError> {
        let mut cfg = kafka.config.client_config()?;
        cfg.set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "500000")
            .set("message.timeout.ms", "30000");
        let producer: ThreadedProducer<Reports> = cfg
            .create_with_context(Reports::default())
            .map_err(|e| BusError::Config(e.to_string()))?;
        Ok(KafkaWriter {
            producer,
            name: kafka.name.clone(),
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
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::UnknownPartition) => BusError::Client(format!(
                            "partition {:?} does not exist on {}",
                            msg.partition, msg.target
                        )),
                        _ => BusError::Client(format!(
                            "cannot send to {} on {:?}: {e}",
                            msg.target, self.name
                        )),
                    });
                }
            }
        }
    }

    fn delivery(&self) -> Delivery {
        let r = self.producer.context();
        Delivery {
            sent: r.sent.load(Ordering::Relaxed),
            failed: r.failed.load(Ordering::Relaxed),
            errors: r.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        self.producer
            .flush(timeout)
            .map_err(|e| BusError::Client(format!("waiting for delivery reports: {e}")))?;
        Ok(self.delivery())
    }
}
