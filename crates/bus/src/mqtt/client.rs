//! One connection to the broker, MQTT 3.1.1 or 5, driven by a task on the runtime: the rest
//! of this folder sees the same events whichever version the connection speaks.
//!
//! rumqttc's event loop must be polled for anything to happen (pings, acks, reconnecting), so
//! a task polls it all the time and hands on what matters; nothing cancels a poll half way.

use super::config::MqttConfig;
use crate::BusError;
use rumqttc::v5::mqttbytes::v5 as v5b;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// A message as the broker delivered it (`props` for MQTT 5 only).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub props: Option<v5b::PublishProperties>,
}

/// What the connection did, in the order it happened.
#[derive(Debug)]
pub(crate) enum Ev {
    /// CONNACK accepted; `max_packet` is the broker's maximum packet size (MQTT 5).
    Connected {
        max_packet: Option<u32>,
    },
    /// SUBACK: per filter, the granted QoS or why it was refused.
    SubAck(Vec<Result<u8, String>>),
    Message(Received),
    /// A PUBLISH was written to the network with this packet id (0 for QoS 0).
    Published(u16),
    /// PUBACK/PUBCOMP (or a PUBREC refusing it) for a packet id; `refused` says why not held.
    Acked {
        pkid: u16,
        refused: Option<String>,
    },
    /// The connection failed or was refused (`auth`: credentials or authorisation).
    Down {
        auth: bool,
        reason: String,
    },
}

/// How to publish one message, whichever version.
pub(crate) struct Publication {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
    pub props: Option<v5b::PublishProperties>,
}

#[derive(Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn lost(_: impl std::fmt::Debug) -> String {
    "the MQTT client has stopped".to_string()
}

impl Client {
    /// Subscribes to `filters` at `qos`; `retained` false asks an MQTT 5 broker not to send
    /// retained messages (3.1.1 cannot ask: the reader drops them).
    pub(crate) fn try_subscribe(
        &self,
        filters: &[String],
        qos: u8,
        retained: bool,
    ) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|f| rumqttc::SubscribeFilter::new(f.clone(), qos4(qos))),
                )
                .map_err(lost),
            Client::V5(c) => c
                .try_subscribe_many(filters.iter().map(|f| {
                    let mut filter = v5b::Filter::new(f.clone(), qos5(qos));
                    if !retained {
                        filter.retain_forward_rule = v5b::RetainForwardRule::Never;
                    }
                    filter
                }))
                .map_err(lost),
        }
    }

    pub(crate) async fn publish(&self, p: Publication) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .publish(p.topic, qos4(p.qos), p.retain, p.payload)
                .await
                .map_err(lost),
            Client::V5(c) => match p.props {
                Some(props) => c
                    .publish_with_properties(p.topic, qos5(p.qos), p.retain, p.payload, props)
                    .await
                    .map_err(lost),
                None => c
                    .publish(p.topic, qos5(p.qos), p.retain, p.payload)
                    .await
                    .map_err(lost),
            },
        }
    }

    /// The size of `p` as a PUBLISH packet on the wire (packet id included for QoS 1 and 2),
    /// measured by the client's own encoder on the packet without its payload, so a large
    /// payload is not copied to be measured (nor the properties: they are lent and taken back).
    pub(crate) fn packet_size(&self, p: &mut Publication) -> usize {
        let empty = match self {
            Client::V4(_) => {
                let mut publish = rumqttc::Publish::new(&p.topic, qos4(p.qos), Vec::new());
                publish.pkid = 1;
                publish.size()
            }
            Client::V5(_) => {
                let mut publish =
                    v5b::Publish::new(&p.topic, qos5(p.qos), Vec::new(), p.props.take());
                publish.pkid = 1;
                let size = publish.size();
                p.props = publish.properties.take();
                size
            }
        };
        with_payload(empty, p.payload.len())
    }

    fn try_disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.try_disconnect().map_err(lost),
            Client::V5(c) => c.try_disconnect().map_err(lost),
        };
    }
}

/// Bytes of the variable-length "remaining length" field for `len`.
fn len_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The size of a packet of `empty` bytes once `payload` more bytes are added: the fixed
/// header's remaining length may grow by a byte or more.
fn with_payload(empty: usize, payload: usize) -> usize {
    let rest = (1..=4)
        .map(|k| empty.saturating_sub(1 + k))
        .find(|r| 1 + len_len(*r) + r == empty)
        .unwrap_or(empty);
    let rem = rest + payload;
    1 + len_len(rem) + rem
}

/// Where the driving task sends events: within a budget of bytes for readers (a slow reader
/// slows the connection down instead of filling memory), unbounded for writers (a writer
/// blocked publishing must not stop the task that drains its publishes).
///
/// A reader's budget is bytes, not messages: a broker drops what a subscriber does not take
/// in time (mosquitto queues 1,000 per client by default, QoS 1 included), so the buffer must
/// ride out a capture's pauses (a lake file being written). 4,096 messages did not: a tap
/// lost 2 to 4 % of a 20,000/s QoS 1 feed (BENCHMARKS.md); at ~200 bytes a message the
/// budget holds seconds of such a feed, and a few large messages cannot fill memory.
enum Tx {
    Budget(mpsc::UnboundedSender<Held>, Arc<Semaphore>, u32),
    Unbounded(mpsc::UnboundedSender<Held>),
}

/// An event, with the share of the reader's budget it holds until it is received.
type Held = (Ev, Option<OwnedSemaphorePermit>);

/// What an event weighs against a reader's budget.
fn weight(ev: &Ev) -> usize {
    match ev {
        Ev::Message(r) => 64 + r.topic.len() + r.payload.len(),
        _ => 0,
    }
}

impl Tx {
    async fn send(&self, ev: Ev) -> bool {
        match self {
            Tx::Budget(t, budget, total) => {
                let w = u32::try_from(weight(&ev)).unwrap_or(u32::MAX).min(*total);
                let permit = match w {
                    0 => None,
                    w => match budget.clone().acquire_many_owned(w).await {
                        Ok(p) => Some(p),
                        Err(_) => return false,
                    },
                };
                t.send((ev, permit)).is_ok()
            }
            Tx::Unbounded(t) => t.send((ev, None)).is_ok(),
        }
    }
}

pub(crate) struct Rx(mpsc::UnboundedReceiver<Held>);

impl Rx {
    /// The next event; its share of the budget is given back as it is taken.
    pub(crate) async fn recv(&mut self) -> Option<Ev> {
        self.0.recv().await.map(|(ev, _)| ev)
    }

    pub(crate) fn try_recv(&mut self) -> Result<Ev, mpsc::error::TryRecvError> {
        self.0.try_recv().map(|(ev, _)| ev)
    }
}

/// What a reader resubscribes to after the client reconnected on its own (a clean session
/// forgets subscriptions).
#[derive(Clone)]
pub(crate) struct Resubscribe {
    pub filters: Vec<String>,
    pub qos: u8,
}

pub(crate) struct Session {
    pub client: Client,
    pub events: Rx,
    task: JoinHandle<()>,
}

/// Starts a connection. `budget`: the bytes of messages a reader's buffer holds (`None`: a
/// writer's, unbounded). With `resubscribe` the client reconnects after losing the connection (once it
/// had connected), else the task ends at the first failure.
pub(crate) fn start(
    rt: &tokio::runtime::Runtime,
    cfg: &MqttConfig,
    timeout: Duration,
    budget: Option<u32>,
    resubscribe: Option<Resubscribe>,
) -> Result<Session, BusError> {
    let (t, r) = mpsc::unbounded_channel();
    let tx = match budget {
        Some(n) => {
            let n = n.max(1);
            Tx::Budget(t, Arc::new(Semaphore::new(n as usize)), n)
        }
        None => Tx::Unbounded(t),
    };
    let events = Rx(r);
    let secs = timeout.as_secs().clamp(1, 60);
    let (client, task) = if cfg.v5 {
        let (c, el) = rumqttc::v5::AsyncClient::new(cfg.v5_options(timeout)?, 100);
        let client = Client::V5(c);
        let task = rt.spawn(drive_v5(el, client.clone(), tx, resubscribe));
        (client, task)
    } else {
        let (c, mut el) = rumqttc::AsyncClient::new(cfg.v4_options()?, 100);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_connection_timeout(secs);
        el.set_network_options(net);
        let client = Client::V4(c);
        let task = rt.spawn(drive_v4(el, client.clone(), tx, resubscribe));
        (client, task)
    };
    Ok(Session {
        client,
        events,
        task,
    })
}

/// No event came within the wait.
#[derive(Debug)]
pub(crate) struct Quiet;

impl Session {
    /// The next event, waiting at most `wait`; `Ok(None)` once the client has stopped.
    pub(crate) fn next_event(
        &mut self,
        rt: &tokio::runtime::Runtime,
        wait: Duration,
    ) -> Result<Option<Ev>, Quiet> {
        let events = &mut self.events;
        rt.block_on(async { tokio::time::timeout(wait, events.recv()).await })
            .map_err(|_| Quiet)
    }

    /// Ends the connection: a DISCONNECT when the client can still send one, then the task.
    pub(crate) fn stop(&self, rt: &tokio::runtime::Runtime) {
        self.client.try_disconnect();
        let task = &self.task;
        let _ = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), async {
                while !task.is_finished() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        });
        self.task.abort();
    }

    /// Waits for the CONNACK, keeping anything else that came first.
    pub(crate) fn connected(
        &mut self,
        rt: &tokio::runtime::Runtime,
        what: &str,
        timeout: Duration,
    ) -> Result<Option<u32>, BusError> {
        match self.next_event(rt, timeout) {
            Ok(Some(Ev::Connected { max_packet })) => Ok(max_packet),
            Ok(Some(Ev::Down { auth: true, reason })) => Err(BusError::Auth {
                what: what.to_string(),
                reason,
            }),
            Ok(Some(Ev::Down { reason, .. })) => Err(BusError::Unreachable {
                what: what.to_string(),
                reason,
            }),
            Ok(Some(other)) => Err(BusError::Client(format!(
                "{what}: expected CONNACK, got {other:?}"
            ))),
            Ok(None) => Err(BusError::Client(format!("{what}: the client stopped"))),
            Err(_) => Err(BusError::Unreachable {
                what: what.to_string(),
                reason: format!("no CONNACK within {} s", timeout.as_secs().max(1)),
            }),
        }
    }
}

/// Failures a person can act on, said plainly.
fn refused(code: &str) -> (bool, String) {
    let auth = matches!(
        code,
        "BadUserNamePassword" | "NotAuthorized" | "BadAuthenticationMethod" | "Banned"
    );
    (auth, format!("the broker refused the connection ({code})"))
}

fn down4(e: &rumqttc::ConnectionError) -> Ev {
    let (auth, reason) = match e {
        rumqttc::ConnectionError::ConnectionRefused(code) => refused(&format!("{code:?}")),
        rumqttc::ConnectionError::NetworkTimeout => (false, "no answer (connect timeout)".into()),
        e => (false, e.to_string()),
    };
    Ev::Down { auth, reason }
}

fn down5(e: &rumqttc::v5::ConnectionError) -> Ev {
    use rumqttc::v5::{ConnectionError, StateError};
    let (auth, reason) = match e {
        ConnectionError::ConnectionRefused(code)
        | ConnectionError::MqttState(StateError::ConnFail { reason: code }) => {
            refused(&format!("{code:?}"))
        }
        ConnectionError::Timeout(_) => (false, "no answer (connect timeout)".into()),
        e => (false, e.to_string()),
    };
    Ev::Down { auth, reason }
}

/// After a failure the client waits this long before connecting again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

async fn drive_v4(
    mut el: rumqttc::EventLoop,
    client: Client,
    tx: Tx,
    resubscribe: Option<Resubscribe>,
) {
    use rumqttc::{Event, Outgoing, Packet};
    let mut connected = false;
    loop {
        let ev = match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if connected {
                    if let Some(r) = &resubscribe {
                        let _ = client.try_subscribe(&r.filters, r.qos, false);
                    }
                }
                connected = true;
                Some(Ev::Connected { max_packet: None })
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Some(Ev::Message(Received {
                topic: p.topic,
                payload: p.payload.to_vec(),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
                props: None,
            })),
            Ok(Event::Incoming(Packet::SubAck(s))) => Some(Ev::SubAck(
                s.return_codes
                    .iter()
                    .map(|c| match c {
                        rumqttc::SubscribeReasonCode::Success(q) => Ok(*q as u8),
                        rumqttc::SubscribeReasonCode::Failure => Err("refused (0x80)".into()),
                    })
                    .collect(),
            )),
            Ok(Event::Incoming(Packet::PubAck(a))) => Some(Ev::Acked {
                pkid: a.pkid,
                refused: None,
            }),
            Ok(Event::Incoming(Packet::PubComp(a))) => Some(Ev::Acked {
                pkid: a.pkid,
                refused: None,
            }),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Ev::Published(pkid)),
            Ok(_) => None,
            Err(e) => {
                let down = down4(&e);
                if !tx.send(down).await || !connected || resubscribe.is_none() {
                    return;
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                None
            }
        };
        if let Some(ev) = ev {
            if !tx.send(ev).await {
                return;
            }
        }
    }
}

async fn drive_v5(
    mut el: rumqttc::v5::EventLoop,
    client: Client,
    tx: Tx,
    resubscribe: Option<Resubscribe>,
) {
    use rumqttc::v5::Event;
    use rumqttc::Outgoing;
    use v5b::Packet;
    let mut connected = false;
    loop {
        let ev = match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(c))) => {
                if connected {
                    if let Some(r) = &resubscribe {
                        let _ = client.try_subscribe(&r.filters, r.qos, false);
                    }
                }
                connected = true;
                Some(Ev::Connected {
                    max_packet: c.properties.and_then(|p| p.max_packet_size),
                })
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Some(Ev::Message(Received {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.to_vec(),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
                props: p.properties,
            })),
            Ok(Event::Incoming(Packet::SubAck(s))) => Some(Ev::SubAck(
                s.return_codes
                    .iter()
                    .map(|c| match c {
                        v5b::SubscribeReasonCode::Success(q) => Ok(*q as u8),
                        other => Err(format!("refused ({other:?})")),
                    })
                    .collect(),
            )),
            Ok(Event::Incoming(Packet::PubAck(a))) => Some(Ev::Acked {
                pkid: a.pkid,
                refused: match a.reason {
                    v5b::PubAckReason::Success | v5b::PubAckReason::NoMatchingSubscribers => None,
                    r => Some(reason_text(
                        format!("{r:?}"),
                        a.properties.and_then(|p| p.reason_string),
                    )),
                },
            }),
            Ok(Event::Incoming(Packet::PubRec(a))) => match a.reason {
                v5b::PubRecReason::Success | v5b::PubRecReason::NoMatchingSubscribers => None,
                r => Some(Ev::Acked {
                    pkid: a.pkid,
                    refused: Some(reason_text(
                        format!("{r:?}"),
                        a.properties.and_then(|p| p.reason_string),
                    )),
                }),
            },
            Ok(Event::Incoming(Packet::PubComp(a))) => Some(Ev::Acked {
                pkid: a.pkid,
                refused: None,
            }),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Ev::Published(pkid)),
            Ok(_) => None,
            Err(e) => {
                let down = down5(&e);
                if !tx.send(down).await || !connected || resubscribe.is_none() {
                    return;
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                None
            }
        };
        if let Some(ev) = ev {
            if !tx.send(ev).await {
                return;
            }
        }
    }
}

fn reason_text(code: String, reason: Option<String>) -> String {
    match reason {
        Some(r) => format!("{code}: {r}"),
        None => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sizes_match_the_encoder() {
        let (c, _el) = rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("t", "h", 1), 1);
        let client = Client::V4(c);
        let (c, _el5) =
            rumqttc::v5::AsyncClient::new(rumqttc::v5::MqttOptions::new("t", "h", 1), 1);
        let v5 = Client::V5(c);
        for n in [0, 1, 100, 127, 16_000, 16_400, 2_100_000] {
            let mut p = Publication {
                topic: "a/b".into(),
                qos: 1,
                retain: false,
                payload: vec![0; n],
                props: None,
            };
            let mut full = rumqttc::Publish::new("a/b", rumqttc::QoS::AtLeastOnce, vec![0; n]);
            full.pkid = 1;
            assert_eq!(client.packet_size(&mut p), full.size(), "payload {n}");
            let props = v5b::PublishProperties {
                content_type: Some("text/plain".into()),
                user_properties: vec![("k".into(), "v".into())],
                ..Default::default()
            };
            let mut p = Publication {
                props: Some(props.clone()),
                ..p
            };
            let mut full = v5b::Publish::new("a/b", qos5(1), vec![0; n], Some(props.clone()));
            full.pkid = 1;
            assert_eq!(v5.packet_size(&mut p), full.size(), "MQTT 5, payload {n}");
            assert_eq!(p.props, Some(props), "the properties are given back");
        }
    }
}
