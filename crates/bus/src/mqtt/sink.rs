//! Publishing, each message with its own QoS: QoS 1 and 2 are sent once the broker
//! acknowledges them (PUBACK, PUBCOMP) and failed when an MQTT 5 broker refuses them; QoS 0
//! has no acknowledgement, so once written it is unknown ("sent, not confirmed"). A message
//! larger than the broker's maximum packet size, or that cannot be an MQTT message, fails
//! without being sent. The writer does not reconnect: once the connection is lost, what was
//! published and not acknowledged is unknown (sending it again could duplicate it) and the
//! rest is failed.

use super::client::{self, Ev, Session};
use super::config::PROTOCOL_MAX_PACKET;
use super::{properties, Mqtt};
use crate::{BusError, Delivery, SendOptions, Writer};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long handing a message to the client may block (its queue full, the broker slow)
/// before the broker counts as gone, unless the caller sets another (`Writer::set_timeout`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct MqttWriter {
    rt: tokio::runtime::Runtime,
    session: Session,
    name: String,
    v5: bool,
    /// `replay --retain`: retained events go out retained; nothing is otherwise.
    retain: bool,
    max_packet: u32,
    /// Handed to the client, not yet written: event id and QoS, in publish order (the client
    /// writes them in that order and names each by its packet id as it does).
    queued: VecDeque<(String, u8)>,
    /// Written with QoS 1 or 2, awaiting the broker's acknowledgement, by packet id.
    inflight: HashMap<u16, String>,
    delivery: Delivery,
    /// Why the connection is gone, once it is.
    down: Option<String>,
    timeout: Duration,
}

impl MqttWriter {
    pub(crate) fn open(m: &Mqtt) -> Result<Self, BusError> {
        let rt = super::runtime()?;
        let mut session = client::start(&rt, &m.config, CONNECT_TIMEOUT, None, None)?;
        let what = m.config.what(&m.name);
        let max_packet = match session.connected(&rt, &what, CONNECT_TIMEOUT) {
            Ok(max) => max.unwrap_or(PROTOCOL_MAX_PACKET),
            Err(e) => {
                session.stop(&rt);
                return Err(e);
            }
        };
        Ok(MqttWriter {
            rt,
            session,
            name: m.name.clone(),
            v5: m.config.v5,
            retain: false,
            max_packet,
            queued: VecDeque::new(),
            inflight: HashMap::new(),
            delivery: Delivery::default(),
            down: None,
            timeout: ANSWER_TIMEOUT,
        })
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Published(pkid) => {
                let Some((id, qos)) = self.queued.pop_front() else {
                    return;
                };
                if qos == 0 {
                    self.delivery
                        .unsure(id, "sent, not confirmed (QoS 0)".into());
                } else {
                    self.inflight.insert(pkid, id);
                }
            }
            Ev::Acked { pkid, refused } => {
                if let Some(id) = self.inflight.remove(&pkid) {
                    match refused {
                        None => self.delivery.sent += 1,
                        Some(why) => self
                            .delivery
                            .fail(id, format!("the broker refused it: {why}")),
                    }
                }
            }
            Ev::Down { reason, .. } => self.lost(reason),
            Ev::Connected { .. } | Ev::SubAck(_) | Ev::Message(_) => {}
        }
    }

    /// The connection is gone (or the wait ended): everything still open is counted. The
    /// first message not yet reported written may have been on its way out when it went.
    fn lost(&mut self, reason: String) {
        for (_, id) in self.inflight.drain() {
            self.delivery
                .unsure(id, format!("published, then no acknowledgement: {reason}"));
        }
        if let Some((id, _)) = self.queued.pop_front() {
            self.delivery.unsure(
                id,
                format!("may have been sent as the connection ended: {reason}"),
            );
        }
        for (id, _) in self.queued.drain(..) {
            self.delivery.fail(id, format!("not sent: {reason}"));
        }
        self.down.get_or_insert(reason);
    }

    /// Takes in what the client reported so far, without waiting.
    fn pump(&mut self) {
        while let Ok(ev) = self.session.events.try_recv() {
            self.handle(ev);
        }
    }
}

impl Writer for MqttWriter {
    fn send(&mut self, msg: sluice_model::Outgoing) -> Result<(), BusError> {
        self.pump();
        if let Some(why) = &self.down {
            let why = format!("the connection to {:?} is closed: {why}", self.name);
            self.delivery.fail(msg.event_id, format!("not sent: {why}"));
            return Err(BusError::Client(why));
        }
        if let Err(why) = properties::check_topic(&msg.target) {
            self.delivery.fail(msg.event_id, format!("not sent: {why}"));
            return Err(BusError::Invalid(why));
        }
        let id = msg.event_id.clone();
        let mut p = match properties::publication(msg, self.v5, self.retain) {
            Ok(p) => p,
            Err(why) => {
                self.delivery.fail(id, format!("not sent: {why}"));
                return Ok(());
            }
        };
        let size = self.session.client.packet_size(&mut p);
        if size > self.max_packet as usize {
            self.delivery.fail(
                id,
                format!(
                    "not sent: {size} bytes as an MQTT packet, over the broker's maximum \
                     packet size of {} bytes",
                    self.max_packet
                ),
            );
            return Ok(());
        }
        self.queued.push_back((id.clone(), p.qos));
        let (client, timeout) = (&self.session.client, self.timeout);
        let handed = self
            .rt
            .block_on(async { tokio::time::timeout(timeout, client.publish(p)).await });
        let why = match handed {
            Ok(Ok(())) => {
                self.pump();
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => format!(
                "the broker did not answer for {} s (the client could take no more messages)",
                timeout.as_secs()
            ),
        };
        // Never handed over, so never sent.
        if self.queued.back().is_some_and(|(q, _)| *q == id) {
            self.queued.pop_back();
        }
        self.delivery.fail(id, format!("not sent: {why}"));
        Err(BusError::Client(format!(
            "cannot publish on {:?}: {why}",
            self.name
        )))
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn set_options(&mut self, options: SendOptions) {
        self.retain = options.retain;
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        self.pump();
        while self.down.is_none() && !(self.queued.is_empty() && self.inflight.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.session.next_event(&self.rt, left) {
                Ok(Some(ev)) => self.handle(ev),
                Ok(None) => self.lost("the MQTT client stopped".into()),
                Err(_) => break,
            }
        }
        if self.down.is_none() && !(self.queued.is_empty() && self.inflight.is_empty()) {
            // Stop the client first so nothing more goes out after it is counted.
            self.session.stop(&self.rt);
            self.pump();
            self.lost(format!("no acknowledgement within {} s", timeout.as_secs()));
        }
        Ok(self.delivery.clone())
    }
}

impl Drop for MqttWriter {
    fn drop(&mut self) {
        self.session.stop(&self.rt);
    }
}
