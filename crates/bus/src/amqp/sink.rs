//! Publishing with publisher confirms and `mandatory`, so every message is reported: confirmed,
//! refused by the broker, or returned as unroutable (no queue bound for its routing key).

use super::{properties, Amqp};
use crate::{BusError, Delivery, Writer};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection, PublisherConfirm};
use std::time::Duration;

/// Confirms awaited together: waiting for each before the next publish would cost a round
/// trip per message.
const IN_FLIGHT: usize = 2_000;

pub(crate) struct AmqpWriter {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    channel: Channel,
    pending: Vec<(String, PublisherConfirm)>,
    delivery: Delivery,
    name: String,
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
        })
    }

    fn settle(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let results = self.rt.block_on(async {
            let mut out = Vec::with_capacity(pending.len());
            for (id, confirm) in pending {
                out.push((id, confirm.await));
            }
            out
        });
        for (id, r) in results {
            let failure = match r {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => None,
                Ok(Confirmation::Ack(Some(returned))) => Some(format!(
                    "unroutable: no queue is bound for routing key {:?} on exchange {:?} ({})",
                    returned.delivery.routing_key.as_str(),
                    returned.delivery.exchange.as_str(),
                    returned.reply_text.as_str()
                )),
                Ok(Confirmation::Nack(_)) => Some("the broker refused the message (nack)".into()),
                Err(e) => Some(e.to_string()),
            };
            match failure {
                None => self.delivery.sent += 1,
                Some(reason) => self.delivery.fail(id, reason),
            }
        }
    }
}

impl Writer for AmqpWriter {
    fn send(&mut self, msg: sluice_model::Outgoing) -> Result<(), BusError> {
        let props =
            properties::to_publish(msg.properties.as_deref(), &msg.headers, msg.timestamp_us);
        let routing_key = msg.routing_key.clone().unwrap_or_default();
        let channel = &self.channel;
        let confirm = self
            .rt
            .block_on(async {
                channel
                    .basic_publish(
                        msg.target.as_str().into(),
                        routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &msg.payload,
                        props,
                    )
                    .await
            })
            .map_err(|e| {
                BusError::Client(format!(
                    "cannot publish to exchange {:?} on {:?}: {e}",
                    msg.target, self.name
                ))
            })?;
        self.pending.push((msg.event_id, confirm));
        if self.pending.len() >= IN_FLIGHT {
            self.settle();
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn flush(&mut self, _timeout: Duration) -> Result<Delivery, BusError> {
        self.settle();
        Ok(self.delivery.clone())
    }
}

impl Drop for AmqpWriter {
    fn drop(&mut self) {
        super::close(&self.rt, &self.conn);
    }
}
