//! RabbitMQ's own rules: the settings form, the read modes (tap, queue, stream), its
//! capabilities, the `x-death` header of a dead-lettered message, and publishing a replay to
//! an exchange with a routing key or to a queue through the default exchange.

use crate::kind::{
    field, mode, BusKind, Capabilities, Conventions, Destination, FieldKind, Origin, OriginError,
};
use crate::{BusError, SourceInfo};
use sluice_model::{Bus, Event, Outgoing};

pub struct AmqpConventions;

impl Conventions for AmqpConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Amqp.as_str().into(),
            label: "RabbitMQ (AMQP)".into(),
            source_noun: "exchange or queue".into(),
            sources_noun: "exchanges and queues".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("amqp://guest@127.0.0.1:5672/%2f")
                    .help("amqp[s]://USER@HOST:PORT/VHOST"),
                field("password", "Password", FieldKind::Secret),
                field("management_url", "Management API", FieldKind::Text)
                    .placeholder("http://127.0.0.1:15672")
                    .help("for listing exchanges and queues with counts"),
            ],
            read_modes: vec![
                mode("tap", "tap exchange (takes nothing)", false),
                mode("requeue", "queue: give back", true),
                mode("destructive", "queue: take (delete when captured)", true),
                mode("stream", "stream queue", false),
            ],
            listing_note: None,
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: true,
                needs_target: true,
                positions: false,
                partitions: false,
                keys: false,
                routing_keys: true,
                properties: true,
                broker_timestamps: false,
                delivery_confirms: true,
                dead_letter_sources: false,
                max_message_bytes: None,
                max_headers: None,
            },
        }
    }

    /// RabbitMQ's `x-death` header: its first entry names the exchange and routing key the
    /// message was last dead-lettered from (or the queue, through the default exchange).
    fn dead_letter_origin(&self, event: &Event) -> Option<Result<Origin, OriginError>> {
        let death = event.header("x-death")?;
        Some(x_death(death).map(|(target, routing_key)| Origin {
            connection: event.connection.clone(),
            target,
            routing_key,
        }))
    }

    fn dead_letter_marks(&self) -> &'static str {
        "x-death header (RabbitMQ)"
    }

    /// `EXCHANGE[/ROUTING_KEY]`, or a queue, published through the default exchange.
    fn destination(
        &self,
        target: &str,
        lookup: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        let (source, routing_key) = match target.split_once('/') {
            Some((x, rk)) => (x.to_string(), Some(rk.to_string())),
            None => (target.to_string(), None),
        };
        let info = lookup(&source)?;
        let queue = info
            .as_ref()
            .and_then(|i| i.kind.as_deref())
            .is_some_and(|k| k.starts_with("queue"));
        let d = if queue {
            Destination {
                send_to: String::new(),
                routing_key: Some(source.clone()),
                source,
            }
        } else {
            Destination {
                send_to: source.clone(),
                source,
                routing_key,
            }
        };
        Ok((d, info))
    }

    /// The routing key named in the destination, else the one the event was published with,
    /// else its key as text.
    fn address(&self, msg: &mut Outgoing, source_routing_key: Option<String>, given: Option<&str>) {
        msg.routing_key = given
            .map(str::to_string)
            .or(source_routing_key)
            .or_else(|| {
                msg.key
                    .as_deref()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_string)
            });
    }

    fn keeps_properties_of(&self, _: Bus) -> bool {
        true
    }
}

fn x_death(death: &str) -> Result<(String, Option<String>), OriginError> {
    let v: serde_json::Value = serde_json::from_str(death)
        .map_err(|e| OriginError(format!("the x-death header is not readable: {e}")))?;
    let first = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| OriginError("the x-death header is empty".into()))?;
    let text = |k: &str| first.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let routing_key = first
        .get("routing-keys")
        .and_then(|r| r.as_array())
        .and_then(|a| a.first())
        .and_then(|r| r.as_str())
        .map(str::to_string)
        .or_else(|| text("queue"));
    Ok((text("exchange").unwrap_or_default(), routing_key))
}
