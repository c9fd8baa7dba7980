//! Sending with SendMessageBatch (10 per call): headers become message attributes, a FIFO
//! queue gets the group id (the event's SQS group, else its key) and a deduplication id from
//! the replay id, and entries a batch refuses are retried before they count as failed. A
//! request that gets no answer (timeout, connection dropped after sending) leaves its whole
//! batch unknown: SQS may have enqueued it, so it is not sent again (a standard queue would
//! hold it twice); a FIFO queue's deduplication id makes sending it again safe.

use super::browse::url_of;
use super::Sqs;
use super::MAX_ATTRIBUTES;
use crate::{BusError, Delivery, Writer};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use sluice_model::Outgoing;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const RETRIES: usize = 2;
/// Longest wait for one SendMessageBatch answer before the batch counts as unknown, unless
/// the caller sets another (`Writer::set_timeout`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Between attempts at a batch.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Less time than this left in a flush, and a batch is not sent at all.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

pub(crate) struct SqsWriter {
    rt: tokio::runtime::Runtime,
    client: Client,
    sqs: Sqs,
    urls: HashMap<String, String>,
    /// Per queue URL: (event id, entry) waiting for a full batch.
    pending: HashMap<String, Vec<Pending>>,
    delivery: Delivery,
    timeout: Duration,
    /// When requests began to fail without an answer (refused, reset, silent); cleared by an
    /// answer. Past the timeout the writer refuses more messages, so a replay ends instead
    /// of waiting out every remaining batch.
    failing_since: Option<std::time::Instant>,
}

/// An entry waiting to be sent, with the id of the event it carries.
type Pending = (String, SendMessageBatchRequestEntry);

/// Splits a sent batch's entries by the entries the service refused (entry id to the reason
/// and whether it is the sender's fault): those to send again, and the refused ones given up
/// on (a sender's fault will not change; others on the last attempt) with their reasons.
/// Accepted entries are in neither.
fn after_batch(
    entries: Vec<Pending>,
    refused: &HashMap<String, (String, bool)>,
    last_attempt: bool,
) -> (Vec<Pending>, Vec<(String, String)>) {
    let mut retry = Vec::new();
    let mut gave_up = Vec::new();
    for (id, e) in entries {
        match refused.get(e.id()) {
            Some((why, sender_fault)) if last_attempt || *sender_fault => {
                gave_up.push((id, why.clone()))
            }
            Some(_) => retry.push((id, e)),
            None => {}
        }
    }
    (retry, gave_up)
}

/// What a SendMessageBatch call that failed as a whole says about its entries.
#[derive(Debug, PartialEq)]
enum RequestFailure {
    /// SQS answered with an error, or the request never left: nothing was enqueued.
    NotSent(String),
    /// No answer: SQS may have enqueued any of them.
    NoAnswer(String),
}

fn request_failure<E>(
    e: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> RequestFailure
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
{
    use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
    let why = format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e));
    // An error SQS itself gave (a code, and not a server fault) means nothing was enqueued; an
    // answer without one (cut short, a proxy's page) or a 5xx may follow an enqueue.
    let refused_by_sqs =
        e.code().is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() < 500);
    match e {
        SdkError::ServiceError(_) if refused_by_sqs => RequestFailure::NotSent(why),
        SdkError::ConstructionFailure(_) => RequestFailure::NotSent(why),
        SdkError::DispatchFailure(_) if refused_connection(e) => RequestFailure::NotSent(why),
        _ => RequestFailure::NoAnswer(why),
    }
}

/// A connection that was never made carried no request.
fn refused_connection(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
            // An io::Error's `source` skips the error it wraps; look at that one too.
            if let Some(inner) = io.get_ref() {
                if refused_connection(inner) {
                    return true;
                }
            }
        }
        next = err.source();
    }
    false
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
            timeout: ANSWER_TIMEOUT,
            failing_since: None,
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
    /// Past `deadline` (a flush's timeout) nothing more is sent: entries never sent fail as
    /// not sent, and entries already sent without an answer stay unknown.
    fn send_batch(&mut self, url: &str, deadline: Option<Instant>) {
        let Some(mut entries) = self.pending.remove(url) else {
            return;
        };
        let fifo = url.ends_with(".fifo");
        // A FIFO batch sent again after no answer: SQS may hold it already.
        let mut unanswered: Option<String> = None;
        for attempt in 0..=RETRIES {
            if entries.is_empty() {
                break;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // Too little time for an answer to come: sending would only turn "not sent" into
            // "unknown".
            if left.is_some_and(|l| l < MIN_ATTEMPT) {
                let why = |w: &str| format!("{w} the flush ran out of time (--broker-timeout)");
                for (id, _) in std::mem::take(&mut entries) {
                    match &unanswered {
                        Some(no_answer) => self
                            .delivery
                            .unsure(id, why(&format!("{no_answer}; not sent again:"))),
                        None => self.delivery.fail(id, why("not sent:")),
                    }
                }
                break;
            }
            let (client, timeout) = (
                &self.client,
                left.map_or(self.timeout, |l| l.min(self.timeout)),
            );
            let batch: Vec<SendMessageBatchRequestEntry> =
                entries.iter().map(|(_, e)| e.clone()).collect();
            let asked = std::time::Instant::now();
            let out = self.rt.block_on(async {
                tokio::time::timeout(
                    timeout,
                    client
                        .send_message_batch()
                        .queue_url(url)
                        .set_entries(Some(batch))
                        .customize()
                        // Retried here, where an attempt that got no answer is remembered: the
                        // SDK's own retry turned "sent, no answer" into "refused" when its
                        // next attempt found the endpoint gone.
                        .config_override(
                            aws_sdk_sqs::config::Builder::default()
                                .retry_config(aws_config::retry::RetryConfig::disabled()),
                        )
                        .send(),
                )
                .await
            });
            let failure = match out {
                Ok(Ok(o)) => {
                    self.failing_since = None;
                    self.delivery.sent += o.successful().len() as u64;
                    let refused: HashMap<String, (String, bool)> = o
                        .failed()
                        .iter()
                        .map(|f| {
                            let why = format!("{}: {}", f.code(), f.message().unwrap_or(""));
                            (f.id().to_string(), (why, f.sender_fault()))
                        })
                        .collect();
                    let (retry, gave_up) = after_batch(entries, &refused, attempt == RETRIES);
                    for (id, why) in gave_up {
                        match &unanswered {
                            // An earlier attempt of this batch may have enqueued it.
                            Some(no_answer) => self
                                .delivery
                                .unsure(id, format!("{why}; before that, {no_answer}")),
                            None => self.delivery.fail(id, why),
                        }
                    }
                    entries = retry;
                    continue;
                }
                Ok(Err(e)) => request_failure(&e),
                Err(_) => RequestFailure::NoAnswer(format!(
                    "no answer from SQS within {:.1} s",
                    timeout.as_secs_f64()
                )),
            };
            if matches!(
                failure,
                RequestFailure::NoAnswer(_) | RequestFailure::NotSent(_)
            ) {
                self.failing_since.get_or_insert(asked);
            }
            if let RequestFailure::NoAnswer(why) = &failure {
                unanswered = Some(why.clone());
            }
            match failure {
                // Sending again after no answer could enqueue a standard queue's message twice.
                RequestFailure::NoAnswer(why) if !fifo || attempt == RETRIES => {
                    for (id, _) in std::mem::take(&mut entries) {
                        self.delivery.unsure(id, why.clone());
                    }
                }
                RequestFailure::NotSent(why) if attempt == RETRIES => {
                    for (id, _) in std::mem::take(&mut entries) {
                        match &unanswered {
                            Some(no_answer) => self.delivery.unsure(id, no_answer.clone()),
                            None => self.delivery.fail(id, why.clone()),
                        }
                    }
                }
                _ => std::thread::sleep(deadline.map_or(RETRY_PAUSE, |d| {
                    d.saturating_duration_since(Instant::now()).min(RETRY_PAUSE)
                })),
            }
        }
    }
}

impl SqsWriter {
    fn send_pending(&mut self, deadline: Option<Instant>) {
        let urls: Vec<String> = self.pending.keys().cloned().collect();
        for u in urls {
            self.send_batch(&u, deadline);
        }
    }
}

impl Writer for SqsWriter {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError> {
        if let Some(since) = self.failing_since.filter(|t| t.elapsed() >= self.timeout) {
            let what = format!("SQS connection {:?}", self.sqs.name);
            self.delivery
                .fail(msg.event_id, format!("not sent: {what} stopped answering"));
            return Err(BusError::Unreachable {
                what,
                reason: format!(
                    "no answer for {} s (--broker-timeout)",
                    since.elapsed().as_secs()
                ),
            });
        }
        let url = match self.url(&msg.target) {
            Ok(u) => u,
            Err(e) => {
                self.delivery.fail(msg.event_id, format!("not sent: {e}"));
                return Err(e);
            }
        };
        let fifo = msg.target.ends_with(".fifo");
        let queued = self.pending.entry(url.clone()).or_default();
        match Self::entry(&msg, queued.len(), fifo) {
            Ok(e) => queued.push((msg.event_id, e)),
            Err(why) => self.delivery.fail(msg.event_id, why),
        }
        if self.pending.get(&url).is_some_and(|p| p.len() >= 10) {
            self.send_batch(&url, None);
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn send_now(&mut self) {
        self.send_pending(None);
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        self.send_pending(Some(Instant::now() + timeout));
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
        let refused: HashMap<String, (String, bool)> = [
            (
                "1".to_string(),
                ("InternalError: try again".to_string(), false),
            ),
            (
                "2".to_string(),
                ("InvalidMessageContents: no".to_string(), true),
            ),
        ]
        .into();
        let (retry, gave_up) = after_batch((0..3).map(entry).collect(), &refused, false);
        let ids: Vec<&str> = retry.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["event-1"]);
        assert_eq!(
            gave_up,
            [(
                "event-2".to_string(),
                "InvalidMessageContents: no".to_string()
            )],
            "a sender's fault is not sent again"
        );
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

    #[test]
    fn a_refused_connection_carried_nothing_but_a_dropped_one_may_have() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let wrapped = std::io::Error::other(refused);
        assert!(refused_connection(&wrapped));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!refused_connection(&reset));
    }

    /// A real client against a port nothing listens on, and against a server that accepts the
    /// request and never answers: not sent, then unknown, and nothing retried after no answer.
    #[test]
    fn no_answer_leaves_the_batch_unknown() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let rt = crate::sqs::runtime().unwrap();
        for (port, expect_unknown) in [(closed_port, false), (silent_port, true)] {
            let conf = aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .endpoint_url(format!("http://127.0.0.1:{port}"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "k", "s", None, None, "test",
                ))
                .timeout_config(
                    aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(Duration::from_millis(500))
                        .build(),
                )
                .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
                .build();
            let client = Client::from_conf(conf);
            let e = rt
                .block_on(client.send_message_batch().queue_url("q").send())
                .unwrap_err();
            let f = request_failure(&e);
            assert_eq!(
                matches!(f, RequestFailure::NoAnswer(_)),
                expect_unknown,
                "port {port}: {f:?}"
            );
        }
    }

    /// A flush waits at most its own timeout, also when the writer's answer timeout is longer:
    /// a silent endpoint leaves the sent batch unknown, and a second queue's batch, never
    /// sent once the time is up, fails as not sent.
    #[test]
    fn flush_keeps_to_its_timeout() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let sqs = Sqs {
            name: "s".into(),
            config: crate::sqs::SqsConfig {
                region: "us-east-1".into(),
                endpoint_url: Some(format!("http://127.0.0.1:{port}")),
                access_key_id: Some("k".into()),
                secret_access_key: Some("s".into()),
                ..Default::default()
            },
        };
        let mut w = SqsWriter::open(&sqs).unwrap();
        for q in ["a", "b"] {
            w.urls
                .insert(q.into(), format!("http://127.0.0.1:{port}/1/{q}"));
        }
        for i in 0..6 {
            w.send(Outgoing {
                event_id: format!("e{i}"),
                target: if i < 3 { "a" } else { "b" }.into(),
                payload: b"x".to_vec(),
                partition: None,
                key: None,
                headers: Vec::new(),
                timestamp_us: None,
                properties: None,
                routing_key: None,
            })
            .unwrap();
        }
        let t = Instant::now();
        let d = w.flush(Duration::from_millis(700)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!((d.sent, d.unknown, d.failed), (0, 3, 3), "{d:?}");
        assert!(
            d.errors.iter().all(|(_, why)| why.starts_with("not sent")),
            "{d:?}"
        );
        drop(silent);
    }
}
