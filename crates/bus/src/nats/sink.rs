//! Publishing. To a subject a JetStream stream takes, each message waits for the stream's
//! publish ack (many in flight, then their acks), with `Nats-Msg-Id` set to the replay id so
//! a retried replay is stored once (an ack saying `duplicate` counts as sent: the stream holds
//! it). Core NATS has no acknowledgements: a published message is counted unknown ("sent,
//! not confirmed"), since a flush of the connection only proves the server read it, not that
//! anyone received it.

use super::Nats;
use crate::{BusError, Delivery, Writer};
use async_nats::jetstream::context::{
    GetStreamByNameErrorKind, PublishAckFuture, PublishError, PublishErrorKind,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use sluice_model::{Header, Outgoing};
use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Publishes awaiting their acks, a sliding window: waiting for each before the next publish
/// costs a round trip, and waiting for a whole window before the next one (as this writer
/// first did) left replay at 0.46 of a raw client (BENCHMARKS.md, "NATS, MQTT, Redis and HTTP").
const IN_FLIGHT: usize = 1_000;

/// How long one publish or a window of acks may take unless the caller sets another.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What core publishes are counted as.
pub(crate) const NOT_CONFIRMED: &str = "sent, not confirmed (core NATS has no acknowledgements)";

/// The header replay adds with a stable id per replayed event.
const REPLAY_ID: &str = "sluice-replay-id";

pub(crate) struct NatsWriter {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    /// Which stream takes each subject sent to (`None`: none, core NATS).
    bound: HashMap<String, Option<String>>,
    pending: VecDeque<(String, PublishAckFuture)>,
    /// The server's `max_payload`, read once: `server_info()` copies the whole info.
    max_payload: usize,
    /// Event ids published on core subjects, counted when flushed.
    core: Vec<String>,
    delivery: Delivery,
    timeout: Duration,
    what: String,
}

/// A JetStream context whose requests and acks wait at most `timeout`; it spawns its acker
/// task, so it is made inside the runtime.
fn context(
    rt: &tokio::runtime::Runtime,
    client: &async_nats::Client,
    timeout: Duration,
) -> async_nats::jetstream::Context {
    let _inside = rt.enter();
    async_nats::jetstream::ContextBuilder::new()
        .timeout(timeout)
        .ack_timeout(timeout)
        .build(client.clone())
}

/// Headers as NATS carries them, plus `Nats-Msg-Id` from the replay id when `dedupe`; the
/// size they take on the wire is counted with the payload against `max_payload`.
pub(crate) fn nats_headers(headers: &[Header], dedupe: bool) -> Result<(HeaderMap, usize), String> {
    let mut h = HeaderMap::new();
    let mut wire = 0usize;
    let mut replay_id = None;
    for Header { key, value } in headers {
        let name = HeaderName::from_str(key).map_err(|_| {
            format!("header {key:?} cannot be a NATS header name (printable ASCII without ':')")
        })?;
        let value = value.as_deref().unwrap_or_default();
        let text = std::str::from_utf8(value)
            .map_err(|_| format!("header {key:?} is not text: NATS headers carry UTF-8 only"))?;
        if text.contains(['\r', '\n']) {
            return Err(format!(
                "header {key:?} holds a line break, which NATS headers cannot"
            ));
        }
        if key == REPLAY_ID {
            replay_id = Some(text.to_string());
        }
        wire += key.len() + 2 + text.len() + 2;
        h.append(name, HeaderValue::from(text));
    }
    if let Some(id) = replay_id.filter(|_| dedupe) {
        if let Some(old) = h.get("Nats-Msg-Id") {
            wire -= "Nats-Msg-Id".len() + 4 + old.as_str().len();
        }
        wire += "Nats-Msg-Id".len() + 4 + id.len();
        h.insert("Nats-Msg-Id", id.as_str());
    }
    if !h.is_empty() {
        wire += "NATS/1.0\r\n".len() + 2;
    }
    Ok((h, wire))
}

/// Whether `s` can be published to: a subject without wildcards.
fn publishable(s: &str) -> bool {
    super::browse::valid_subject(s) && !s.split('.').any(|t| t == "*" || t == ">")
}

impl NatsWriter {
    pub(crate) fn open(n: &Nats) -> Result<Self, BusError> {
        let rt = super::runtime()?;
        let client = rt.block_on(n.config.connect(&n.name, super::OPEN_TIMEOUT, None))?;
        Ok(NatsWriter {
            js: context(&rt, &client, ANSWER_TIMEOUT),
            max_payload: client.server_info().max_payload,
            rt,
            client,
            bound: HashMap::new(),
            pending: VecDeque::new(),
            core: Vec::new(),
            delivery: Delivery::default(),
            timeout: ANSWER_TIMEOUT,
            what: n.what(),
        })
    }

    /// The stream that takes `subject`, if any; asked once per subject.
    fn stream_for(&mut self, subject: &str) -> Result<Option<String>, String> {
        if let Some(s) = self.bound.get(subject) {
            return Ok(s.clone());
        }
        let (js, timeout) = (&self.js, self.timeout);
        let jetstream = self.client.server_info().jetstream;
        let found = self.rt.block_on(async {
            if !jetstream {
                return Ok(None);
            }
            match tokio::time::timeout(timeout, js.stream_by_subject(subject)).await {
                Err(_) => Err(format!(
                    "no answer within {} s about which stream takes {subject:?}",
                    timeout.as_secs()
                )),
                Ok(Ok(name)) => Ok(Some(name)),
                Ok(Err(e)) if matches!(e.kind(), GetStreamByNameErrorKind::NotFound) => Ok(None),
                Ok(Err(e)) => Err(format!("asking which stream takes {subject:?}: {e}")),
            }
        })?;
        self.bound.insert(subject.to_string(), found.clone());
        Ok(found)
    }

    /// Waits up to `timeout` for the acks of what was published to streams.
    fn settle(&mut self, timeout: Duration) {
        self.settle_until(0, timeout);
    }

    /// Takes in acks, oldest first, until at most `keep` are awaited; each waits at most
    /// `timeout` from now. Once one has not come in time the server is not answering: every
    /// ack still awaited is then only looked at (waiting for each in turn would take `timeout`
    /// per message), and true is returned.
    fn settle_until(&mut self, keep: usize, timeout: Duration) -> bool {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut late = false;
        while self.pending.len() > if late { 0 } else { keep } {
            let Some((id, ack)) = self.pending.pop_front() else {
                break;
            };
            let left = if late {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            // A zero timeout still polls the ack once: one already answered counts.
            let r = self.rt.block_on(async {
                tokio::time::timeout(left, std::future::IntoFuture::into_future(ack)).await
            });
            // The client's own ack timeout (the same length) may answer first.
            late |= match &r {
                Err(_) => true,
                Ok(Err(e)) => matches!(e.kind(), PublishErrorKind::TimedOut),
                Ok(Ok(_)) => false,
            };
            self.record(id, r, timeout);
        }
        late
    }

    fn record(
        &mut self,
        id: String,
        r: Result<Result<PublishAck, PublishError>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) {
        match r {
            Ok(Ok(_ack)) => self.delivery.sent += 1,
            Ok(Err(e)) => match e.kind() {
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => self
                    .delivery
                    .unsure(id, format!("published, then no ack: {e}")),
                PublishErrorKind::StreamNotFound => self.delivery.fail(
                    id,
                    "no stream took the message (the stream is gone)".to_string(),
                ),
                _ => self
                    .delivery
                    .fail(id, format!("the stream refused the message: {e}")),
            },
            Err(_) => self.delivery.unsure(
                id,
                format!("published, then no ack within {} s", timeout.as_secs()),
            ),
        }
    }

    fn fail(&mut self, event_id: String, why: String) {
        self.delivery.fail(event_id, format!("not sent: {why}"));
    }
}

impl Writer for NatsWriter {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError> {
        let subject = msg.target.clone();
        if !publishable(&subject) {
            self.fail(
                msg.event_id,
                format!("{subject:?} is not a subject to publish to (no wildcards or spaces)"),
            );
            return Ok(());
        }
        let stream = match self.stream_for(&subject) {
            Ok(s) => s,
            Err(why) => {
                self.fail(msg.event_id, why.clone());
                return Err(BusError::Unreachable {
                    what: self.what.clone(),
                    reason: why,
                });
            }
        };
        let (headers, wire) = match nats_headers(&msg.headers, stream.is_some()) {
            Ok(h) => h,
            Err(why) => {
                self.fail(msg.event_id, why);
                return Ok(());
            }
        };
        let max = self.max_payload;
        let size = wire + msg.payload.len();
        if size > max {
            self.fail(
                msg.event_id,
                format!(
                    "the message is {size} bytes (payload and headers), over the server's \
                     max_payload of {max} bytes"
                ),
            );
            return Ok(());
        }
        let timeout = self.timeout;
        if stream.is_some() {
            let js = &self.js;
            let publish = PublishMessage::build()
                .payload(msg.payload.into())
                .headers(headers);
            let r = self.rt.block_on(async {
                tokio::time::timeout(timeout, js.send_publish(subject.clone(), publish)).await
            });
            match r {
                Ok(Ok(ack)) => {
                    self.pending.push_back((msg.event_id, ack));
                    // The oldest ack did not come within the timeout: the server stopped
                    // answering, and the replay ends here rather than wait that long again
                    // for every later message.
                    if self.pending.len() > IN_FLIGHT && self.settle_until(IN_FLIGHT, timeout) {
                        return Err(BusError::Unreachable {
                            what: self.what.clone(),
                            reason: format!("no publish ack within {} s", timeout.as_secs()),
                        });
                    }
                    Ok(())
                }
                // The client refuses before queueing anything: certainly not published.
                Ok(Err(e)) => {
                    let why = format!("publishing to {subject:?}: {e}");
                    self.fail(msg.event_id, why.clone());
                    if matches!(e.kind(), PublishErrorKind::MaxPayloadExceeded) {
                        return Ok(());
                    }
                    Err(BusError::Client(format!("{}: {why}", self.what)))
                }
                Err(_) => {
                    let why = format!("no room to publish within {} s", timeout.as_secs());
                    self.fail(msg.event_id, why.clone());
                    Err(BusError::Unreachable {
                        what: self.what.clone(),
                        reason: why,
                    })
                }
            }
        } else {
            let client = &self.client;
            let payload = msg.payload.into();
            let r = self.rt.block_on(async {
                tokio::time::timeout(
                    timeout,
                    client.publish_with_headers(subject.clone(), headers, payload),
                )
                .await
            });
            match r {
                Ok(Ok(())) => {
                    self.core.push(msg.event_id);
                    Ok(())
                }
                Ok(Err(e)) => {
                    let why = format!("publishing to {subject:?}: {e}");
                    self.fail(msg.event_id, why.clone());
                    Err(BusError::Client(format!("{}: {why}", self.what)))
                }
                Err(_) => {
                    let why = format!("no room to publish within {} s", timeout.as_secs());
                    self.fail(msg.event_id, why.clone());
                    Err(BusError::Unreachable {
                        what: self.what.clone(),
                        reason: why,
                    })
                }
            }
        }
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.js = context(&self.rt, &self.client, timeout);
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        self.settle(timeout);
        if !self.core.is_empty() {
            let client = &self.client;
            let flushed = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, client.flush()).await });
            let why = match flushed {
                Ok(Ok(())) => NOT_CONFIRMED.to_string(),
                Ok(Err(e)) => format!("{NOT_CONFIRMED}; flushing the connection failed: {e}"),
                Err(_) => format!(
                    "{NOT_CONFIRMED}; the connection was not flushed within {} s",
                    timeout.as_secs()
                ),
            };
            for id in std::mem::take(&mut self.core) {
                self.delivery.unsure(id, why.clone());
            }
        }
        Ok(self.delivery.clone())
    }
}

impl Drop for NatsWriter {
    fn drop(&mut self) {
        super::close(&self.rt, &self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &str, v: &[u8]) -> Header {
        Header {
            key: k.into(),
            value: Some(v.to_vec()),
        }
    }

    #[test]
    fn replay_id_becomes_the_message_id_on_streams_only() {
        let hs = [h("x-a", b"1"), h(REPLAY_ID, b"r1:ev")];
        let (js, wire) = nats_headers(&hs, true).unwrap();
        assert_eq!(js.get("Nats-Msg-Id").map(|v| v.as_str()), Some("r1:ev"));
        assert_eq!(wire, js_wire(&js));
        let (core, wire) = nats_headers(&hs, false).unwrap();
        assert!(core.get("Nats-Msg-Id").is_none());
        assert_eq!(wire, js_wire(&core));
        let (none, wire) = nats_headers(&[], true).unwrap();
        assert!(none.is_empty() && wire == 0);
    }

    /// The size the server counts: `NATS/1.0\r\n`, `K: V\r\n` per value, `\r\n`.
    fn js_wire(h: &HeaderMap) -> usize {
        let mut n = 12;
        for (k, vs) in h.iter() {
            for v in vs {
                n += k.to_string().len() + 4 + v.as_str().len();
            }
        }
        n
    }

    #[test]
    fn headers_nats_cannot_carry_are_refused() {
        assert!(nats_headers(&[h("bad:name", b"v")], false).is_err());
        assert!(nats_headers(&[h("k", &[0xff, 0xfe])], false).is_err());
        assert!(nats_headers(&[h("k", b"a\r\nb")], false).is_err());
        let (m, _) = nats_headers(&[h("k", b"1"), h("k", b"2")], false).unwrap();
        assert_eq!(m.get_all("k").count(), 2);
    }

    #[test]
    fn only_plain_subjects_are_publishable() {
        assert!(publishable("orders.eu"));
        assert!(!publishable("orders.>"));
        assert!(!publishable("orders.*"));
        assert!(!publishable("a b"));
    }
}
