//! Publishing with publisher confirms and `mandatory`, so every message is reported: confirmed
//! (sent), refused by the broker or returned as unroutable (no queue bound for its routing key)
//! (failed), or published and then left without a confirm when the connection went or the wait
//! ended (unknown: the broker may have routed it). A message never published is failed.

use super::{properties, Amqp};
use crate::{BusError, Delivery, Writer};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection, PublisherConfirm};
use std::time::{Duration, Instant};

/// Confirms awaited together: waiting for each before the next publish would cost a round
/// trip per message.
const IN_FLIGHT: usize = 2_000;

/// How long a publish or a window of confirms may take before the broker counts as gone,
/// unless the caller sets another (`Writer::set_timeout`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct AmqpWriter {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    channel: Channel,
    pending: Vec<(String, PublisherConfirm)>,
    delivery: Delivery,
    name: String,
    timeout: Duration,
}

impl AmqpWriter {
    pub(crate) fn open(a: &Amqp) -> Result<Self, BusError> {
        let rt = super::runtime()?;
        let (conn, channel) = rt.block_on(async {
            let conn = a.config.connect(&a.name, Duration::from_secs(10)).await?;
            let channel = conn
                .create_channel()
                .await
                .map_err(|e| BusError::Client(e.to_string()))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| BusError::Client(format!("enabling publisher confirms: {e}")))?;
            Ok::<_, BusError>((conn, channel))
        })?;
        Ok(AmqpWriter {
            rt,
            conn,
            channel,
            pending: Vec::new(),
            delivery: Delivery::default(),
            name: a.name.clone(),
            timeout: ANSWER_TIMEOUT,
        })
    }

    /// Waits up to `timeout` for the confirms of what was published.
    fn settle(&mut self, timeout: Duration) {
        let pending = std::mem::take(&mut self.pending);
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let results = self.rt.block_on(async {
            let mut out = Vec::with_capacity(pending.len());
            for (id, confirm) in pending {
                let left = deadline.saturating_duration_since(Instant::now());
                out.push((id, tokio::time::timeout(left, confirm).await));
            }
            out
        });
        for (id, r) in results {
            match outcome(r, timeout) {
                Outcome::Sent => self.delivery.sent += 1,
                Outcome::Failed(why) => self.delivery.fail(id, why),
                Outcome::Unknown(why) => self.delivery.unsure(id, why),
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    Failed(String),
    Unknown(String),
}

/// A confirm's meaning. An error instead of a confirm (the connection or channel closed) leaves
/// the message's fate unknown: RabbitMQ may have routed it before the connection went.
fn outcome(
    r: Result<lapin::Result<Confirmation>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Outcome {
    match r {
        Ok(Ok(Confirmation::Ack(None))) | Ok(Ok(Confirmation::NotRequested)) => Outcome::Sent,
        Ok(Ok(Confirmation::Ack(Some(returned)))) => Outcome::Failed(format!(
            "unroutable: no queue is bound for routing key {:?} on exchange {:?} ({})",
            returned.delivery.routing_key.as_str(),
            returned.delivery.exchange.as_str(),
            returned.reply_text.as_str()
        )),
        Ok(Ok(Confirmation::Nack(_))) => {
            Outcome::Failed("the broker refused the message (nack)".into())
        }
        Ok(Err(e)) => Outcome::Unknown(format!("published, then no confirm: {e}")),
        Err(_) => Outcome::Unknown(format!(
            "published, then no confirm within {} s",
            timeout.as_secs()
        )),
    }
}

impl Writer for AmqpWriter {
    fn send(&mut self, msg: sluice_model::Outgoing) -> Result<(), BusError> {
        let props =
            properties::to_publish(msg.properties.as_deref(), &msg.headers, msg.timestamp_us);
        let routing_key = msg.routing_key.clone().unwrap_or_default();
        if !self.channel.status().connected() {
            let why = format!("the connection to {:?} is closed", self.name);
            self.delivery.fail(msg.event_id, format!("not sent: {why}"));
            return Err(BusError::Client(why));
        }
        let (channel, timeout) = (&self.channel, self.timeout);
        let published = self.rt.block_on(async {
            tokio::time::timeout(
                timeout,
                channel.basic_publish(
                    msg.target.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &msg.payload,
                    props,
                ),
            )
            .await
        });
        let err = match published {
            Ok(Ok(confirm)) => {
                self.pending.push((msg.event_id, confirm));
                if self.pending.len() >= IN_FLIGHT {
                    self.settle(self.timeout);
                }
                return Ok(());
            }
            // Refused before any frame was queued: certainly not published.
            Ok(Err(e)) if matches!(e.kind(), lapin::ErrorKind::InvalidChannelState(..)) => {
                let why = format!("the channel to {:?} is closed: {e}", self.name);
                self.delivery.fail(msg.event_id, format!("not sent: {why}"));
                return Err(BusError::Client(why));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", self.timeout.as_secs()),
        };
        // The channel was open, so some of the message's frames may have reached the broker.
        self.delivery
            .unsure(msg.event_id, format!("publishing failed part way: {err}"));
        Err(BusError::Client(format!(
            "cannot publish to exchange {:?} on {:?}: {err}",
            msg.target, self.name
        )))
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        self.settle(timeout);
        Ok(self.delivery.clone())
    }
}

impl Drop for AmqpWriter {
    fn drop(&mut self) {
        super::close(&self.rt, &self.conn);
    }
}
