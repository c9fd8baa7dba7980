//! Reading: one subscription (a clean session, its own client id) to the source filters at
//! QoS 2, so each message arrives with the QoS it was published with (the broker delivers the
//! lower of the two). Retained messages come first, flagged `retain`; `--from end` asks for
//! none of them (MQTT 5: retain handling 2; 3.1.1: they are dropped on arrival). No other
//! start position means anything to MQTT: there is no history to start from.
//!
//! The client reconnects on its own when the connection is lost, resubscribing without
//! retained messages (they were read already); what is published meanwhile is not seen, as
//! no session is kept on the broker. `trouble` reports the time without a connection.

use super::client::{self, Ev, Received, Resubscribe, Session};
use super::{properties, Mqtt};
use crate::fresh_ids::FreshIds;
use crate::{BusError, Reader, Trouble};
use sluice_model::{Message, StartFrom};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of messages buffered between the client and `poll` (client.rs says why bytes).
const BUFFER_BYTES: u32 = 64 * 1024 * 1024;
/// How long `poll` waits for more once a message is in.
const LINGER: Duration = Duration::from_millis(5);
/// The QoS subscribed with: the highest, so QoS 1 and 2 messages keep theirs.
const SUBSCRIBE_QOS: u8 = 2;

pub(crate) struct MqttReader {
    rt: tokio::runtime::Runtime,
    session: Session,
    filters: Vec<String>,
    connection: String,
    what: String,
    ready: VecDeque<Message>,
    ids: FreshIds,
    /// Retained messages are not wanted: `--from end`, or a resubscription after a reconnect.
    skip_retained: bool,
    /// Since when and why the connection is down.
    failing: Option<(Instant, String)>,
    /// Since when and why the broker refuses to subscribe us again after a reconnect.
    refused: Option<(Instant, String)>,
}

impl MqttReader {
    pub(crate) fn open(m: &Mqtt, sources: &[String], from: StartFrom) -> Result<Self, BusError> {
        if sources.is_empty() {
            return Err(BusError::Config("name at least one topic filter".into()));
        }
        for f in sources {
            properties::check_filter(f).map_err(BusError::Invalid)?;
        }
        let filters = sources.to_vec();
        let rt = super::runtime()?;
        let what = m.config.what(&m.name);
        let resubscribe = Resubscribe {
            filters: filters.clone(),
            qos: SUBSCRIBE_QOS,
        };
        let session = client::start(
            &rt,
            &m.config,
            CONNECT_TIMEOUT,
            Some(BUFFER_BYTES),
            Some(resubscribe),
        )?;
        let mut reader = MqttReader {
            rt,
            filters,
            connection: m.name.clone(),
            what,
            ready: VecDeque::new(),
            ids: FreshIds::new(),
            skip_retained: from == StartFrom::End,
            failing: None,
            refused: None,
            session,
        };
        reader.subscribe()?;
        Ok(reader)
    }

    /// Connects and subscribes, keeping messages that arrive before the SUBACK.
    fn subscribe(&mut self) -> Result<(), BusError> {
        self.session
            .connected(&self.rt, &self.what, CONNECT_TIMEOUT)?;
        self.session
            .client
            .try_subscribe(&self.filters, SUBSCRIBE_QOS, !self.skip_retained)
            .map_err(BusError::Client)?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.session.next_event(&self.rt, left) {
                Err(_) => {
                    return Err(BusError::Unreachable {
                        what: self.what.clone(),
                        reason: format!("no SUBACK within {} s", CONNECT_TIMEOUT.as_secs()),
                    })
                }
                Ok(None) => {
                    return Err(BusError::Client(format!(
                        "{}: the client stopped",
                        self.what
                    )))
                }
                Ok(Some(Ev::SubAck(codes))) => {
                    for (f, c) in self.filters.iter().zip(&codes) {
                        if let Err(why) = c {
                            return Err(BusError::Client(format!(
                                "{}: subscribing to {f:?} was {why} (not authorised for it?)",
                                self.what
                            )));
                        }
                    }
                    return Ok(());
                }
                Ok(Some(Ev::Message(r))) => self.keep(r),
                Ok(Some(Ev::Down { auth, reason })) if auth => {
                    return Err(BusError::Auth {
                        what: self.what.clone(),
                        reason,
                    })
                }
                Ok(Some(Ev::Down { reason, .. })) => {
                    return Err(BusError::Unreachable {
                        what: self.what.clone(),
                        reason,
                    })
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// The filter a topic was read through: the first that matches it.
    fn source_of(&self, topic: &str) -> String {
        self.filters
            .iter()
            .find(|f| properties::matches(f, topic))
            .unwrap_or(&self.filters[0])
            .clone()
    }

    fn keep(&mut self, r: Received) {
        if r.retain && self.skip_retained {
            return;
        }
        let source = self.source_of(&r.topic);
        self.ready.push_back(Message {
            // MQTT messages have no identity: each one read is an event of its own.
            id: Some(format!("mqtt:{}/{}", self.connection, self.ids.next())),
            source,
            partition: None,
            offset: None,
            sub_offset: None,
            key: None,
            headers: properties::headers_of(&r),
            timestamp_us: None,
            properties: Some(properties::json_of(&r)),
            payload: r.payload,
        });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Message(r) => self.keep(r),
            Ev::Connected { .. } => {
                if self.failing.take().is_some() {
                    // Resubscribed without retained messages: they were read already.
                    self.skip_retained = true;
                }
            }
            Ev::Down { reason, .. } => {
                let since = self.failing.take().map_or_else(Instant::now, |(t, _)| t);
                self.failing = Some((since, reason));
            }
            // The first SUBACK is `subscribe`'s; one here answers a resubscription after a
            // reconnect. Refused, nothing more will come: trouble, which the broker timeout
            // turns into an error, rather than a tap that waits in silence.
            Ev::SubAck(codes) => {
                let refused: Vec<String> = self
                    .filters
                    .iter()
                    .zip(&codes)
                    .filter_map(|(f, c)| c.as_ref().err().map(|why| format!("{f:?} was {why}")))
                    .collect();
                if refused.is_empty() {
                    self.refused = None;
                } else {
                    // Kept apart from connection trouble, which each reconnect clears: a
                    // link that drops more often than the broker timeout must not restart
                    // the count.
                    let since = self.refused.take().map_or_else(Instant::now, |(t, _)| t);
                    let reason = format!(
                        "after reconnecting, subscribing again to {} (not authorised any more?)",
                        refused.join(", ")
                    );
                    self.refused = Some((since, reason));
                }
            }
            Ev::Published(_) | Ev::Acked { .. } => {}
        }
    }
}

impl Reader for MqttReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let max = max.max(1);
        let deadline = Instant::now() + timeout;
        let mut closed = false;
        while self.ready.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.session.next_event(&self.rt, left) {
                Err(_) => break,
                Ok(None) => {
                    closed = true;
                    break;
                }
                Ok(Some(ev)) => self.handle(ev),
            }
            if left.is_zero() {
                break;
            }
        }
        // Once one message is in, more are waited for a moment (LINGER), so the capture gets
        // them in batches: handed over one at a time, a 20,000/s QoS 1 feed lost 2 to 4 % to
        // the broker's drops, and about 1 % with this (BENCHMARKS.md). Sleeping through the
        // moment instead of waiting for each message measured worse (5 to 11 % lost).
        let linger = (Instant::now() + LINGER).min(deadline);
        while !closed && !self.ready.is_empty() && self.ready.len() < max && Instant::now() < linger
        {
            match self.session.events.try_recv() {
                Ok(ev) => self.handle(ev),
                Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let left = linger.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.session.next_event(&self.rt, left) {
                        Ok(Some(ev)) => self.handle(ev),
                        Ok(None) => closed = true,
                        Err(_) => break,
                    }
                }
            }
        }
        if closed && self.ready.is_empty() {
            return Err(BusError::Unreachable {
                what: self.what.clone(),
                reason: self
                    .failing
                    .as_ref()
                    .map_or_else(|| "the MQTT client stopped".into(), |(_, r)| r.clone()),
            });
        }
        let n = self.ready.len().min(max);
        Ok(self.ready.drain(..n).collect())
    }

    /// Subscriptions have no end.
    fn at_end(&self) -> bool {
        false
    }

    fn trouble(&self) -> Option<Trouble> {
        let (since, reason) = self.refused.clone().or_else(|| self.failing.clone())?;
        Some(Trouble {
            since,
            what: self.what.clone(),
            reason,
        })
    }
}

impl Drop for MqttReader {
    fn drop(&mut self) {
        self.session.stop(&self.rt);
    }
}
