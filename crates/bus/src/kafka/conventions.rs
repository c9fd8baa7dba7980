//! Kafka's own rules: the settings form, its capabilities, the dead-letter headers Kafka
//! tooling leaves, and how a replayed message is keyed.

use crate::kind::{field, BusKind, Capabilities, Conventions, FieldKind, Origin, OriginError};
use sluice_model::{Bus, Event, Outgoing};

pub struct KafkaConventions;

/// Headers naming the topic a dead-lettered record came from: Kafka Connect's and others'
/// `x-original-topic`, Spring Kafka's `kafka_dlt-original-topic`.
const ORIGINAL_TOPIC: [&str; 2] = ["x-original-topic", "kafka_dlt-original-topic"];

impl Conventions for KafkaConventions {
    fn kind(&self) -> BusKind {
        let secret_shown = "sasl_mechanism";
        BusKind {
            bus: Bus::Kafka.as_str().into(),
            label: "Kafka".into(),
            source_noun: "topic".into(),
            sources_noun: "topics".into(),
            fields: vec![
                field("brokers", "Brokers", FieldKind::Text)
                    .required()
                    .placeholder("127.0.0.1:9092")
                    .help("HOST:PORT, comma-separated"),
                field("sasl_mechanism", "SASL", FieldKind::Choice).choices(&[
                    "",
                    "PLAIN",
                    "SCRAM-SHA-256",
                    "SCRAM-SHA-512",
                ]),
                field("username", "Username", FieldKind::Text).shown_with(secret_shown),
                field("password", "Password", FieldKind::Secret).shown_with(secret_shown),
                field("tls", "TLS", FieldKind::Flag),
                field("tls_ca", "CA file", FieldKind::File)
                    .placeholder("/path/ca.pem")
                    .shown_with("tls"),
                field("tls_cert", "Client certificate", FieldKind::File).shown_with("tls"),
                field("tls_key", "Client key", FieldKind::File).shown_with("tls"),
            ],
            read_modes: Vec::new(),
            listing_note: None,
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: true,
                needs_target: true,
                positions: true,
                partitions: true,
                keys: true,
                routing_keys: false,
                properties: false,
                broker_timestamps: true,
                delivery_confirms: true,
                dead_letter_sources: false,
                // `message.max.bytes` is the broker's and the topic's setting, not Kafka's.
                max_message_bytes: None,
                max_headers: None,
            },
        }
    }

    fn dead_letter_origin(&self, event: &Event) -> Option<Result<Origin, OriginError>> {
        ORIGINAL_TOPIC.iter().find_map(|k| {
            event.header(k).map(|t| {
                Ok(Origin {
                    connection: event.connection.clone(),
                    target: t.to_string(),
                    routing_key: None,
                })
            })
        })
    }

    fn dead_letter_marks(&self) -> &'static str {
        "x-original-topic or kafka_dlt-original-topic header (Kafka)"
    }

    /// A message without a key takes the routing key it was published with, so that what one
    /// routing key addressed stays together in one partition.
    fn address(&self, msg: &mut Outgoing, source_routing_key: Option<String>, _: Option<&str>) {
        if msg.key.is_none() {
            msg.key = source_routing_key.map(String::into_bytes);
        }
    }

    fn keeps_properties_of(&self, _: Bus) -> bool {
        false
    }
}
