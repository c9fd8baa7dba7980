//! What a bus is and can do, described as data: the settings form, the read modes, the
//! capabilities code outside this crate asks about instead of asking which bus it is, and the
//! bus's own conventions (dead letters, how a replayed message is addressed). The UI renders
//! its connection form and read modes from `kinds()`; replay and the API call `conventions`.

use crate::{BusError, SourceInfo};
use serde::Serialize;
use sluice_model::{Bus, Event, Outgoing};
use ts_rs::TS;

/// One bus as the UI and the CLI describe it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BusKind {
    /// The `bus` tag of its settings (`kafka`, `amqp`, `sqs`).
    pub bus: String,
    /// What a person calls it: `Kafka`, `RabbitMQ (AMQP)`.
    pub label: String,
    /// What it reads from, singular and plural: `topic`/`topics`, `queue`/`queues`.
    pub source_noun: String,
    pub sources_noun: String,
    /// The fields of `connection_add` this bus uses, in form order.
    pub fields: Vec<Field>,
    /// How its sources can be read, the default first; empty when there is one way only.
    pub read_modes: Vec<ReadMode>,
    /// What the window says above its list of sources, when the list is not the whole story
    /// (MQTT has no topic listing).
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing_note: Option<String>,
    pub capabilities: Capabilities,
}

/// A settings field: `name` is its key in `connection_add`'s arguments.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// `choice` fields: the values offered (`""` is none); empty for other kinds.
    pub choices: Vec<String>,
    /// Shown only while this other field is set (a password once SASL is chosen).
    #[ts(optional)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown_with: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// Kept in the OS keyring, never shown again.
    Secret,
    /// A secret of several lines (an HTTP endpoint's headers, one per line).
    SecretLines,
    Flag,
    File,
    Choice,
}

/// A way of reading a source; `name` is the `mode` argument of `capture_start`/`tail_start`.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ReadMode {
    pub name: String,
    pub label: String,
    /// Whether reading this way takes messages from the application's queue.
    pub takes_messages: bool,
}

/// What a bus can do, for code that must not ask which bus it is.
#[derive(Debug, Clone, Copy, Default, Serialize, TS)]
pub struct Capabilities {
    /// Sources can be read (tailed, captured); an HTTP endpoint is a replay destination only.
    pub reads: bool,
    /// Reading listens for clients that push events (a collector): the sources are whatever
    /// they name (a capture may name none), events may carry ids of the clients' own that come
    /// again on a retry, and each client waits until its events are durable, so the lake
    /// writes often.
    pub listens: bool,
    /// A read can reach the end of what a source held when it began (`--stop-at-end`); MQTT
    /// keeps no history, so its reads never end by themselves.
    pub ends: bool,
    /// A replay destination names what to send to (`CONNECTION:TOPIC`); an HTTP endpoint's
    /// target is an optional path.
    pub needs_target: bool,
    /// Messages have stable positions (offsets) to start from and to deduplicate by.
    pub positions: bool,
    /// Sources have numbered partitions that a replay can keep.
    pub partitions: bool,
    /// Messages have a key (Kafka's key, an SQS FIFO group id).
    pub keys: bool,
    /// Messages are published with a routing key.
    pub routing_keys: bool,
    /// Messages carry bus properties of their own (AMQP properties, SQS attributes).
    pub properties: bool,
    /// The broker stamps each message with the time it took it.
    pub broker_timestamps: bool,
    /// The bus confirms each message it holds (acks, publisher confirms, send responses).
    pub delivery_confirms: bool,
    /// The bus can say which sources feed a dead-letter source (SQS redrive policies).
    pub dead_letter_sources: bool,
    /// Largest message the bus accepts, when the bus itself fixes it (not a broker setting).
    #[ts(type = "number | null")]
    pub max_message_bytes: Option<u64>,
    /// Most headers a message may carry, when the bus limits it.
    pub max_headers: Option<u32>,
}

/// Where a dead-lettered or replayed event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub connection: String,
    /// Topic, exchange (`""` is RabbitMQ's default exchange) or queue.
    pub target: String,
    pub routing_key: Option<String>,
}

/// Why an event's origin could not be read from the marks its bus left.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OriginError(pub String);

/// Where a replay destination `CONNECTION:TARGET` sends, on this bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The topic, exchange or queue to look up on the connection.
    pub source: String,
    /// What the writer sends to (an AMQP queue is published through the default exchange `""`).
    pub send_to: String,
    pub routing_key: Option<String>,
}

/// A bus's own rules, the ones that used to be `if bus == ...` elsewhere.
pub trait Conventions: Sync {
    fn kind(&self) -> BusKind;

    /// The name a source is stored under, from how a person wrote it (PostgreSQL: `orders`
    /// is `public.orders`): what a capture's positions and duplicates are looked up by.
    fn source_name(&self, written: &str) -> String {
        written.to_string()
    }

    /// The origin of a dead-lettered event from the marks this bus's dead-lettering leaves, or
    /// `None` when the event carries none of them. Asked of every bus: an event may have
    /// travelled between buses. A bus without dead-lettering conventions reads none.
    fn dead_letter_origin(&self, event: &Event) -> Option<Result<Origin, OriginError>> {
        let _ = event;
        None
    }

    /// The marks `dead_letter_origin` reads, for the error when no bus found any (none by
    /// default).
    fn dead_letter_marks(&self) -> &'static str {
        ""
    }

    /// How `TARGET` of a replay destination names what to send to. `lookup` finds a source on
    /// the destination connection (`None`: it does not exist).
    fn destination(
        &self,
        target: &str,
        lookup: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        if target.is_empty() {
            let noun = self.kind().source_noun;
            return Err(BusError::Invalid(format!(
                "--to: name the {noun} to send to (CONNECTION:{})",
                noun.to_uppercase()
            )));
        }
        let info = lookup(target)?;
        Ok((
            Destination {
                source: target.to_string(),
                send_to: target.to_string(),
                routing_key: None,
            },
            info,
        ))
    }

    /// Addresses a replayed message for this bus: `source_routing_key` is the routing key the
    /// event was published with, `given` the one named in the destination. Nothing to do for
    /// a bus without keys or routing (an HTTP endpoint), or one never sent to.
    fn address(&self, msg: &mut Outgoing, source_routing_key: Option<String>, given: Option<&str>) {
        let _ = (msg, source_routing_key, given);
    }

    /// Whether this bus keeps the properties of events from `from` by itself; when it does
    /// not (the default), replay carries them in a header so a later replay to their own bus
    /// restores them.
    fn keeps_properties_of(&self, from: Bus) -> bool {
        let _ = from;
        false
    }
}

/// The conventions of `bus`.
pub fn conventions(bus: Bus) -> &'static dyn Conventions {
    match bus {
        Bus::Kafka => &crate::kafka::KafkaConventions,
        Bus::Amqp => &crate::amqp::AmqpConventions,
        Bus::Sqs => &crate::sqs::SqsConventions,
        Bus::Nats => &crate::nats::NatsConventions,
        Bus::Mqtt => &crate::mqtt::MqttConventions,
        Bus::Redis => &crate::redis::RedisConventions,
        Bus::Http => &crate::http::HttpConventions,
        Bus::Collector => &crate::collector::CollectorConventions,
        Bus::Postgres => &crate::postgres::PostgresConventions,
    }
}

/// Every bus Sluice can connect to, described.
pub fn kinds() -> Vec<BusKind> {
    Bus::ALL.iter().map(|b| conventions(*b).kind()).collect()
}

/// The capabilities of `bus`.
pub fn capabilities(bus: Bus) -> Capabilities {
    conventions(bus).kind().capabilities
}

/// Small constructors that keep each bus's field list readable.
pub(crate) fn field(name: &str, label: &str, kind: FieldKind) -> Field {
    Field {
        name: name.into(),
        label: label.into(),
        kind,
        required: false,
        placeholder: None,
        help: None,
        choices: Vec::new(),
        shown_with: None,
    }
}

impl Field {
    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub(crate) fn placeholder(mut self, p: &str) -> Self {
        self.placeholder = Some(p.into());
        self
    }
    pub(crate) fn help(mut self, h: &str) -> Self {
        self.help = Some(h.into());
        self
    }
    pub(crate) fn choices(mut self, c: &[&str]) -> Self {
        self.choices = c.iter().map(|s| s.to_string()).collect();
        self
    }
    pub(crate) fn shown_with(mut self, other: &str) -> Self {
        self.shown_with = Some(other.into());
        self
    }
}

pub(crate) fn mode(name: &str, label: &str, takes_messages: bool) -> ReadMode {
    ReadMode {
        name: name.into(),
        label: label.into(),
        takes_messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    /// The form the window renders from `kind()` must produce settings its bus reads, and
    /// every setting a bus keeps must be on its form: the two are written in different files.
    #[test]
    fn each_form_matches_its_settings() {
        for kind in kinds() {
            let mut args = serde_json::Map::new();
            args.insert("bus".into(), kind.bus.clone().into());
            let secret = |f: &&Field| matches!(f.kind, FieldKind::Secret | FieldKind::SecretLines);
            for f in kind.fields.iter().filter(|f| !secret(f)) {
                let v: serde_json::Value = match f.kind {
                    FieldKind::Flag => true.into(),
                    FieldKind::Choice => f.choices.last().cloned().unwrap_or_default().into(),
                    _ => format!("{}-value", f.name).into(),
                };
                args.insert(f.name.clone(), v);
            }
            let settings: Settings = serde_json::from_value(args.clone().into())
                .unwrap_or_else(|e| panic!("{}: {e}", kind.bus));
            assert_eq!(settings.bus().as_str(), kind.bus);
            let back = serde_json::to_value(&settings).unwrap();
            let back = back.as_object().unwrap();
            for (k, v) in &args {
                assert_eq!(back.get(k), Some(v), "{}: field {k} is not kept", kind.bus);
            }
            for k in back.keys() {
                assert!(
                    args.contains_key(k),
                    "{}: setting {k} has no form field",
                    kind.bus
                );
            }
        }
    }

    #[test]
    fn every_bus_is_described_once_in_order() {
        let names: Vec<String> = kinds().into_iter().map(|k| k.bus).collect();
        let all: Vec<&str> = Bus::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(names, all);
        for b in Bus::ALL {
            let k = conventions(b).kind();
            for m in &k.read_modes {
                assert!(!m.name.is_empty() && !m.label.is_empty(), "{b}: {m:?}");
            }
        }
    }
}
