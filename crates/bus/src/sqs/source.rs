//! Reading with several long-polling receives in flight. A peek gives every message back
//! (visibility reset) when reading ends; a drain deletes exactly the messages stored in the
//! lake and gives back the rest.

use super::browse::{name_of, url_of};
use super::Sqs;
use crate::{BusError, QueueRead, ReadOptions, Reader, Trouble};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use serde_json::{json, Map, Value};
use sluice_model::{Header, Message};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Receives kept in flight per queue.
const RECEIVERS: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Received = Result<(String, String, aws_sdk_sqs::types::Message), String>;

pub(crate) struct SqsReader {
    rt: tokio::runtime::Runtime,
    client: Client,
    rx: mpsc::Receiver<Received>,
    stop: Arc<AtomicBool>,
    /// Receivers whose last receive came back empty.
    idle: Arc<AtomicUsize>,
    receivers: usize,
    connection: String,
    mode: QueueRead,
    /// Queue URL and latest receipt handle of each message returned, in order.
    handles: Vec<(String, String)>,
    /// How many of `handles` a drain has deleted already (`acknowledge`).
    acked: usize,
    by_id: HashMap<String, usize>,
    /// When a receive last came back (empty or not): long polls answer every 2 s, so a
    /// longer silence means the endpoint is not answering (the SDK retries quietly).
    answered: Arc<Mutex<Instant>>,
    /// Set while receives fail without an answer (a slow endpoint is not a failing one).
    failing: Arc<Mutex<Option<String>>>,
    what: String,
}

fn transient<E: aws_sdk_sqs::error::ProvideErrorMetadata>(
    e: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
    match (e, e.raw_response()) {
        // The request could not even be made (settings, credentials): waiting will not help.
        (SdkError::ConstructionFailure(_), _) => false,
        (_, None) => true,
        (_, Some(r)) => r.status().as_u16() >= 500 || e.code().is_none(),
    }
}

/// A receive waits 2 s for messages; one with no answer after this has failed (the SDK's
/// default attempt timeout, 25 s, would hide a hung connection for that long).
const RECEIVE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
/// The end of a read waits this long, plus a little per message, to delete or give back what
/// it read (a healthy endpoint settles 10 messages per call in milliseconds).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

impl SqsReader {
    pub(crate) fn open(a: &Sqs, sources: &[String], opts: &ReadOptions) -> Result<Self, BusError> {
        let mode = opts
            .queue
            .filter(|m| *m != QueueRead::Stream)
            .ok_or_else(|| {
                BusError::Config(
                "reading SQS always changes the queue: choose --peek (messages are hidden while \
                 read and given back after, but their receive count rises, which can move them \
                 to a dead-letter queue) or --drain (deleted once safely in the lake)"
                    .into(),
            )
            })?;
        if sources.is_empty() {
            return Err(BusError::Config("name at least one queue".into()));
        }
        let rt = super::runtime()?;
        let stop = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel::<Received>(1000);
        let answered = Arc::new(Mutex::new(Instant::now()));
        let failing: Arc<Mutex<Option<String>>> = Arc::default();
        let client = rt.block_on(async {
            let client = a.config.client(CONNECT_TIMEOUT).await;
            let mut urls = Vec::new();
            for s in sources {
                let url = url_of(a, &client, s)
                    .await?
                    .ok_or_else(|| BusError::UnknownSource {
                        kind: "queue",
                        name: s.clone(),
                        connection: a.name.clone(),
                    })?;
                urls.push(url);
            }
            // A peek hides messages long enough for one pass not to see them twice; they are
            // made visible again when reading ends.
            let visibility = match mode {
                QueueRead::Destructive => 120,
                _ => 30,
            };
            for url in urls {
                for _ in 0..RECEIVERS {
                    let (client, url, tx) = (client.clone(), url.clone(), tx.clone());
                    let (stop, idle, answered) = (stop.clone(), idle.clone(), answered.clone());
                    let failing = failing.clone();
                    tokio::spawn(async move {
                        let name = name_of(&url);
                        let mut was_idle = false;
                        while !stop.load(Ordering::Relaxed) {
                            let out = client
                                .receive_message()
                                .queue_url(&url)
                                .max_number_of_messages(10)
                                .wait_time_seconds(2)
                                .visibility_timeout(visibility)
                                .message_system_attribute_names(MessageSystemAttributeName::All)
                                .message_attribute_names("All")
                                .customize()
                                .config_override(
                                    aws_sdk_sqs::config::Builder::default()
                                        .timeout_config(
                                            aws_config::timeout::TimeoutConfig::builder()
                                                .operation_attempt_timeout(RECEIVE_ATTEMPT_TIMEOUT)
                                                .build(),
                                        )
                                        // This loop retries, and says so through `trouble`;
                                        // the SDK's own backoff would hide a failure for longer.
                                        .retry_config(
                                            aws_config::retry::RetryConfig::standard()
                                                .with_max_attempts(1),
                                        ),
                                )
                                .send()
                                .await;
                            let msgs = match out {
                                Ok(o) => {
                                    if let Ok(mut t) = answered.lock() {
                                        *t = Instant::now();
                                    }
                                    if let Ok(mut f) = failing.lock() {
                                        *f = None;
                                    }
                                    o.messages.unwrap_or_default()
                                }
                                // No answer at all (refused, reset, timed out): the endpoint
                                // may come back, so keep asking; `trouble` reports the silence
                                // and the capture's broker timeout decides when to give up.
                                // An answer that is not the service's (no response at
                                // all, a 5xx, a proxy's HTML page) may not last either.
                                Err(e) if transient(&e) => {
                                    if let Ok(mut f) = failing.lock() {
                                        *f = Some(format!(
                                            "ReceiveMessage: {}",
                                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                                        ));
                                    }
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                    continue;
                                }
                                Err(e) => {
                                    let text =
                                        format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e));
                                    let _ = tx
                                        .send(Err(format!("receiving from {name}: {text}")))
                                        .await;
                                    return;
                                }
                            };
                            let now_idle = msgs.is_empty();
                            if now_idle != was_idle {
                                if now_idle {
                                    idle.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    idle.fetch_sub(1, Ordering::Relaxed);
                                }
                                was_idle = now_idle;
                            }
                            for m in msgs {
                                if tx.send(Ok((name.clone(), url.clone(), m))).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
            }
            Ok::<_, BusError>(client)
        })?;
        Ok(SqsReader {
            rt,
            client,
            rx,
            stop,
            idle,
            receivers: sources.len() * RECEIVERS,
            connection: a.name.clone(),
            mode,
            handles: Vec::new(),
            acked: 0,
            by_id: HashMap::new(),
            answered,
            failing,
            what: format!(
                "SQS connection {:?} ({})",
                a.name,
                a.config.endpoint_url.as_deref().unwrap_or("AWS")
            ),
        })
    }

    /// A received message as Sluice's: message attributes become headers, system attributes
    /// the properties, the FIFO group id the key, the send time the timestamp.
    fn message(&self, queue: &str, m: &aws_sdk_sqs::types::Message) -> Message {
        let mut props = Map::new();
        props.insert("queue".into(), json!(queue));
        if let Some(id) = m.message_id() {
            props.insert("message_id".into(), json!(id));
        }
        let mut sys: Vec<(&str, &str)> = m
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default();
        sys.sort();
        for (k, v) in &sys {
            props.insert((*k).to_string(), json!(v));
        }
        let attr = |k: &str| sys.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let mut attrs: Vec<_> = m
            .message_attributes()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        attrs.sort_by(|x, y| x.0.cmp(y.0));
        let mut types = Map::new();
        let headers = attrs
            .iter()
            .map(|(k, v)| {
                if v.data_type() != "String" {
                    types.insert((*k).clone(), json!(v.data_type()));
                }
                let value = match (v.string_value(), v.binary_value()) {
                    (Some(s), _) => s.as_bytes().to_vec(),
                    (None, Some(b)) => b.as_ref().to_vec(),
                    _ => Vec::new(),
                };
                Header {
                    key: (*k).clone(),
                    value: Some(value),
                }
            })
            .collect();
        if !types.is_empty() {
            props.insert("attribute_types".into(), Value::Object(types));
        }
        Message {
            id: Some(format!(
                "sqs:{}/{}/{}",
                self.connection,
                queue,
                m.message_id().unwrap_or_default()
            )),
            source: queue.to_string(),
            partition: None,
            offset: None,
            sub_offset: None,
            key: attr("MessageGroupId").map(|g| g.as_bytes().to_vec()),
            headers,
            timestamp_us: attr("SentTimestamp")
                .and_then(|t| t.parse::<i64>().ok())
                .map(|ms| ms * 1000),
            payload: m.body().unwrap_or_default().as_bytes().to_vec(),
            properties: Some(Value::Object(props).to_string()),
        }
    }

    /// Deletes (drain) the first `handled` messages not deleted yet and makes every other
    /// one visible again.
    fn settle(&mut self, handled: usize) -> Result<(), BusError> {
        let handles = std::mem::take(&mut self.handles);
        let start = self.acked.min(handles.len());
        let (delete, give_back) = match self.mode {
            QueueRead::Destructive => {
                let end = handled.clamp(start, handles.len());
                (&handles[start..end], &handles[end..])
            }
            _ => (&handles[..0], &handles[start..]),
        };
        self.settle_these(delete, give_back)
    }

    fn settle_these(
        &self,
        delete: &[(String, String)],
        give_back: &[(String, String)],
    ) -> Result<(), BusError> {
        let client = &self.client;
        let connection = &self.connection;
        let what = &self.what;
        // An endpoint that stopped answering must not hold the end of a capture for a
        // request timeout per message: what is not settled in time is said, and SQS makes
        // it visible again by itself when its visibility timeout runs out.
        let settling = async {
            for chunk in delete.chunks(10) {
                let url = &chunk[0].0;
                let entries: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, (u, _))| u == url)
                    .filter_map(|(i, (_, r))| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(r)
                            .build()
                            .ok()
                    })
                    .collect();
                let rest: Vec<_> = chunk.iter().filter(|(u, _)| u != url).collect();
                let out = client
                    .delete_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| {
                        BusError::Client(format!(
                            "deleting drained messages on {connection}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        ))
                    })?;
                if !out.failed().is_empty() || !rest.is_empty() {
                    for (u, r) in rest {
                        let _ = client
                            .delete_message()
                            .queue_url(u)
                            .receipt_handle(r)
                            .send()
                            .await;
                    }
                    if let Some(f) = out.failed().first() {
                        return Err(BusError::Client(format!(
                            "{} drained messages were not deleted: {}",
                            out.failed().len(),
                            f.message().unwrap_or(f.code())
                        )));
                    }
                }
            }
            for (url, receipt) in give_back {
                let _ = client
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
            Ok::<_, BusError>(())
        };
        // Settling for an endpoint already failing is a last try, not another long wait.
        let budget = if self.trouble().is_some() {
            Duration::from_secs(2)
        } else {
            SETTLE_TIMEOUT + Duration::from_millis(10) * (delete.len() + give_back.len()) as u32
        };
        // The timer must be made inside the runtime: outside it, tokio panics (no reactor).
        let settled = self
            .rt
            .block_on(async { tokio::time::timeout(budget, settling).await });
        settled.unwrap_or_else(|_| {
            // A settle with no answer is as much a sign of a failing endpoint as a receive
            // with none: say so at once rather than after the receives' own 8 s timeout.
            if let Ok(mut f) = self.failing.lock() {
                f.get_or_insert_with(|| {
                    format!(
                        "DeleteMessageBatch: no answer within {} s",
                        budget.as_secs()
                    )
                });
            }
            Err(BusError::Unreachable {
                what: what.clone(),
                reason: format!(
                    "messages read were not settled within {} s: drained ones not \
                     deleted stay in the queue (and are in the lake), the rest become \
                     visible again after their visibility timeout",
                    budget.as_secs()
                ),
            })
        })
    }
}

impl Reader for SqsReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let rx = &mut self.rx;
        let got: Vec<Received> = self.rt.block_on(async {
            let mut out = Vec::new();
            if let Ok(Some(first)) = tokio::time::timeout(timeout, rx.recv()).await {
                out.push(first);
                while out.len() < max {
                    match rx.try_recv() {
                        Ok(r) => out.push(r),
                        Err(_) => break,
                    }
                }
            }
            out
        });
        let mut msgs = Vec::with_capacity(got.len());
        for r in got {
            let (queue, url, m) = r.map_err(BusError::Client)?;
            let receipt = m.receipt_handle().unwrap_or_default().to_string();
            let id = m.message_id().unwrap_or_default().to_string();
            // Seen before in this run (its visibility ran out): keep the newest receipt only.
            if let Some(&i) = self.by_id.get(&id) {
                self.handles[i].1 = receipt;
                continue;
            }
            self.by_id.insert(id, self.handles.len());
            self.handles.push((url, receipt));
            msgs.push(self.message(&queue, &m));
        }
        Ok(msgs)
    }

    /// True once every receiver's last long poll came back empty.
    fn at_end(&self) -> bool {
        self.rx.is_empty() && self.idle.load(Ordering::Relaxed) >= self.receivers
    }

    fn commit(&mut self, handled: u64) -> Result<(), BusError> {
        self.stop.store(true, Ordering::Relaxed);
        self.settle(handled as usize)
    }

    /// A drain deletes what is durable as it goes: a long drain would otherwise outlast the
    /// visibility timeout (the messages would come back while being read), and a capture that
    /// fails would give back messages the lake already holds.
    fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
        let end = (durable as usize).min(self.handles.len());
        if self.mode != QueueRead::Destructive || end <= self.acked {
            return Ok(());
        }
        self.settle_these(&self.handles[self.acked..end], &[])?;
        self.acked = end;
        Ok(())
    }

    fn trouble(&self) -> Option<Trouble> {
        let reason = self.failing.lock().ok()?.clone()?;
        Some(Trouble {
            since: *self.answered.lock().ok()?,
            what: self.what.clone(),
            reason,
        })
    }
}

impl Drop for SqsReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Whatever was not settled becomes visible again rather than waiting out its timeout.
        // Not when the endpoint is already failing: the end of the capture made that last
        // try, and a second one would hold the exit for another 2 s.
        if !self.handles.is_empty() && self.trouble().is_none() {
            let _ = self.settle(0);
        }
    }
}
