//! Reading with several long-polling receives in flight. A peek gives every message back
//! (visibility reset) when reading ends; a drain deletes exactly the messages stored in the
//! lake and gives back the rest.

use super::browse::{name_of, url_of};
use super::Sqs;
use crate::{BusError, QueueRead, ReadOptions, Reader};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use serde_json::{json, Map, Value};
use sluice_model::{Header, Message};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
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
    by_id: HashMap<String, usize>,
}

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
                    let (stop, idle) = (stop.clone(), idle.clone());
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
                                .send()
                                .await;
                            let msgs = match out {
                                Ok(o) => o.messages.unwrap_or_default(),
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
            by_id: HashMap::new(),
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
            key: attr("MessageGroupId").map(|g| g.as_bytes().to_vec()),
            headers,
            timestamp_us: attr("SentTimestamp")
                .and_then(|t| t.parse::<i64>().ok())
                .map(|ms| ms * 1000),
            payload: m.body().unwrap_or_default().as_bytes().to_vec(),
            properties: Some(Value::Object(props).to_string()),
        }
    }

    /// Deletes (drain) the first `handled` messages and makes every other one visible again.
    fn settle(&mut self, handled: usize) -> Result<(), BusError> {
        let handles = std::mem::take(&mut self.handles);
        let (delete, give_back) = match self.mode {
            QueueRead::Destructive => handles.split_at(handled.min(handles.len())),
            _ => handles.split_at(0),
        };
        let client = &self.client;
        let connection = &self.connection;
        self.rt.block_on(async {
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
}

impl Drop for SqsReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Whatever was not settled becomes visible again rather than waiting out its timeout.
        if !self.handles.is_empty() {
            let _ = self.settle(0);
        }
    }
}
