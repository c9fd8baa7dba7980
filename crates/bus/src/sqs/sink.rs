//! Sending with SendMessageBatch (10 per call): headers become message attributes, a FIFO
//! queue gets the group id (the event's SQS group, else its key) and a deduplication id from
//! the replay id, and entries a batch refuses are retried before they count as failed.

use super::browse::url_of;
use super::Sqs;
use crate::{BusError, Delivery, Writer};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use sluice_model::Outgoing;
use std::collections::HashMap;
use std::time::Duration;

/// SQS's limit on message attributes.
const MAX_ATTRIBUTES: usize = 10;
const RETRIES: usize = 2;

pub(crate) struct SqsWriter {
    rt: tokio::runtime::Runtime,
    client: Client,
    sqs: Sqs,
    urls: HashMap<String, String>,
    /// Per queue URL: (event id, entry) waiting for a full batch.
    pending: HashMap<String, Vec<Pending>>,
    delivery: Delivery,
}

/// An entry waiting to be sent, with the id of the event it carries.
type Pending = (String, SendMessageBatchRequestEntry);

/// Splits a sent batch's entries by the entry ids the service refused: those to send again,
/// and (on the last attempt) the refused ones as failures with their reasons. Accepted entries
/// are in neither.
fn after_batch(
    entries: Vec<Pending>,
    refused: &HashMap<String, String>,
    last_attempt: bool,
) -> (Vec<Pending>, Vec<(String, String)>) {
    let mut retry = Vec::new();
    let mut gave_up = Vec::new();
    for (id, e) in entries {
        match refused.get(e.id()) {
            Some(why) if last_attempt => gave_up.push((id, why.clone())),
            Some(_) => retry.push((id, e)),
            None => {}
        }
    }
    (retry, gave_up)
}

impl SqsWriter {
    pub(crate) fn open(a: &Sqs) -> Result<Self, BusError> {
        let rt = super::runtime()?;
        let client = rt.block_on(a.config.client(Duration::from_secs(10)));
        Ok(SqsWriter {
            rt,
            client,
            sqs: a.clone(),
            urls: HashMap::new(),
            pending: HashMap::new(),
            delivery: Delivery::default(),
        })
    }

    fn url(&mut self, queue: &str) -> Result<String, BusError> {
        if let Some(u) = self.urls.get(queue) {
            return Ok(u.clone());
        }
        let (sqs, client) = (&self.sqs, &self.client);
        let url = self
            .rt
            .block_on(url_of(sqs, client, queue))?
            .ok_or_else(|| BusError::UnknownSource {
                kind: "queue",
                name: queue.to_string(),
                connection: sqs.name.clone(),
            })?;
        self.urls.insert(queue.to_string(), url.clone());
        Ok(url)
    }

    /// The batch entry for a message, or why SQS cannot carry it.
    fn entry(
        msg: &Outgoing,
        index: usize,
        fifo: bool,
    ) -> Result<SendMessageBatchRequestEntry, String> {
        let body = std::str::from_utf8(&msg.payload)
            .map_err(|_| "the payload is binary; SQS message bodies are text".to_string())?;
        if msg.headers.len() > MAX_ATTRIBUTES {
            return Err(format!(
                "{} headers; SQS carries at most {MAX_ATTRIBUTES} message attributes",
                msg.headers.len()
            ));
        }
        let types: serde_json::Value = msg
            .properties
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("attribute_types").cloned())
            .unwrap_or_default();
        let mut b = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(body);
        for h in &msg.headers {
            let value = h.value.clone().unwrap_or_default();
            let declared = types.get(&h.key).and_then(|t| t.as_str());
            let attr = match (std::str::from_utf8(&value), declared) {
                (Ok(text), Some(t)) if !t.starts_with("Binary") => MessageAttributeValue::builder()
                    .data_type(t)
                    .string_value(text),
                (Ok(text), None) if !text.is_empty() => MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(text),
                _ => MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(value.clone())),
            };
            b = b.message_attributes(&h.key, attr.build().map_err(|e| e.to_string())?);
        }
        if fifo {
            let group = msg
                .key
                .as_deref()
                .and_then(|k| std::str::from_utf8(k).ok())
                .filter(|k| !k.is_empty())
                .unwrap_or("sluice");
            let dedup: String = msg
                .headers
                .iter()
                .find(|h| h.key == "sluice-replay-id")
                .and_then(|h| h.value.as_deref())
                .map(|v| String::from_utf8_lossy(v).to_string())
                .unwrap_or_else(|| msg.event_id.clone())
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect();
            let dedup = if dedup.len() > 128 {
                dedup[dedup.len() - 128..].to_string()
            } else {
                dedup
            };
            b = b
                .message_group_id(group.chars().take(128).collect::<String>())
                .message_deduplication_id(dedup);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// Sends a queue's pending entries; entries the service refuses are retried, then failed.
    fn send_batch(&mut self, url: &str) {
        let Some(mut entries) = self.pending.remove(url) else {
            return;
        };
        let client = &self.client;
        for attempt in 0..=RETRIES {
            if entries.is_empty() {
                break;
            }
            let batch: Vec<SendMessageBatchRequestEntry> =
                entries.iter().map(|(_, e)| e.clone()).collect();
            let out = self.rt.block_on(
                client
                    .send_message_batch()
                    .queue_url(url)
                    .set_entries(Some(batch))
                    .send(),
            );
            match out {
                Ok(o) => {
                    self.delivery.sent += o.successful().len() as u64;
                    let refused: HashMap<String, String> = o
                        .failed()
                        .iter()
                        .map(|f| {
                            let why = format!("{}: {}", f.code(), f.message().unwrap_or(""));
                            (f.id().to_string(), why)
                        })
                        .collect();
                    let (retry, gave_up) = after_batch(entries, &refused, attempt == RETRIES);
                    for (id, why) in gave_up {
                        self.delivery.fail(id, why);
                    }
                    entries = retry;
                }
                Err(e) if attempt == RETRIES => {
                    let why = format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e));
                    for (id, _) in std::mem::take(&mut entries) {
                        self.delivery.fail(id, why.clone());
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Writer for SqsWriter {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError> {
        let url = self.url(&msg.target)?;
        let fifo = msg.target.ends_with(".fifo");
        let queued = self.pending.entry(url.clone()).or_default();
        match Self::entry(&msg, queued.len(), fifo) {
            Ok(e) => queued.push((msg.event_id, e)),
            Err(why) => self.delivery.fail(msg.event_id, why),
        }
        if self.pending.get(&url).is_some_and(|p| p.len() >= 10) {
            self.send_batch(&url);
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn flush(&mut self, _timeout: Duration) -> Result<Delivery, BusError> {
        let urls: Vec<String> = self.pending.keys().cloned().collect();
        for u in urls {
            self.send_batch(&u);
        }
        Ok(self.delivery.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> (String, SendMessageBatchRequestEntry) {
        let e = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body("x")
            .build()
            .unwrap();
        (format!("event-{i}"), e)
    }

    #[test]
    fn only_refused_entries_are_sent_again_then_failed() {
        let refused: HashMap<String, String> =
            [("1".to_string(), "InternalError: try again".to_string())].into();
        let (retry, gave_up) = after_batch((0..3).map(entry).collect(), &refused, false);
        let ids: Vec<&str> = retry.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["event-1"]);
        assert!(gave_up.is_empty());
        let (retry, gave_up) = after_batch(retry, &refused, true);
        assert!(retry.is_empty());
        assert_eq!(
            gave_up,
            [(
                "event-1".to_string(),
                "InternalError: try again".to_string()
            )]
        );
        let (retry, gave_up) = after_batch((0..3).map(entry).collect(), &HashMap::new(), true);
        assert!(
            retry.is_empty() && gave_up.is_empty(),
            "accepted entries are done"
        );
    }
}
