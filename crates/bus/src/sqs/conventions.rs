//! SQS's own rules: the settings form, peek and drain, its capabilities, the attribute SQS
//! leaves on a dead-lettered message, and which properties it keeps.

use crate::kind::{
    field, mode, BusKind, Capabilities, Conventions, FieldKind, Origin, OriginError,
};
use sluice_model::{Bus, Event, Outgoing};

pub struct SqsConventions;

impl Conventions for SqsConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Sqs.as_str().into(),
            label: "Amazon SQS".into(),
            source_noun: "queue".into(),
            sources_noun: "queues".into(),
            fields: vec![
                field("region", "Region", FieldKind::Text)
                    .required()
                    .placeholder("eu-west-1"),
                field("aws_profile", "AWS profile", FieldKind::Text)
                    .help("optional: a named profile"),
                field("endpoint_url", "Endpoint URL", FieldKind::Text)
                    .help("optional: another endpoint (LocalStack, moto)"),
                field("access_key_id", "Access key id", FieldKind::Text)
                    .help("optional: static credentials"),
                field("password", "Secret access key", FieldKind::Secret)
                    .shown_with("access_key_id"),
            ],
            read_modes: vec![
                mode("requeue", "peek (give back)", true),
                mode("destructive", "drain (delete when captured)", true),
            ],
            listing_note: None,
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: true,
                needs_target: true,
                positions: false,
                partitions: false,
                // A FIFO queue's message group id.
                keys: true,
                routing_keys: false,
                properties: true,
                broker_timestamps: true,
                delivery_confirms: true,
                dead_letter_sources: true,
                max_message_bytes: None,
                max_headers: Some(super::MAX_ATTRIBUTES as u32),
            },
        }
    }

    /// SQS marks a message it moved to a dead-letter queue with the queue it came from.
    fn dead_letter_origin(&self, event: &Event) -> Option<Result<Origin, OriginError>> {
        let p: serde_json::Value = serde_json::from_str(event.properties.as_deref()?).ok()?;
        let arn = p.get("DeadLetterQueueSourceArn")?.as_str()?;
        Some(Ok(Origin {
            connection: event.connection.clone(),
            target: arn.rsplit(':').next().unwrap_or(arn).to_string(),
            routing_key: None,
        }))
    }

    fn dead_letter_marks(&self) -> &'static str {
        "DeadLetterQueueSourceArn attribute (SQS)"
    }

    fn address(&self, _: &mut Outgoing, _: Option<String>, _: Option<&str>) {}

    /// SQS holds its own attributes, not others' properties.
    fn keeps_properties_of(&self, from: Bus) -> bool {
        from == Bus::Sqs
    }
}
