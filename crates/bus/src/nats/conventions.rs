//! NATS's own rules: the settings form, its capabilities, no dead-letter marks (NATS has no
//! standard dead-lettering; JetStream only sends advisories), and replay to a subject.

use super::settings::AUTH_CHOICES;
use crate::kind::{field, BusKind, Capabilities, Conventions, FieldKind};
use sluice_model::{Bus, Outgoing};

pub struct NatsConventions;

impl Conventions for NatsConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Nats.as_str().into(),
            label: "NATS".into(),
            source_noun: "stream or subject".into(),
            sources_noun: "streams and subjects".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("nats://127.0.0.1:4222")
                    .help("nats://HOST:PORT (tls:// for TLS); several separated by commas"),
                field("auth", "Authentication", FieldKind::Choice)
                    .choices(&AUTH_CHOICES)
                    .help(
                        "inferred when left out: user with a username, token with a secret alone",
                    ),
                field("username", "Username", FieldKind::Text).shown_with("auth"),
                field(
                    "password",
                    "Password, token or NKey seed",
                    FieldKind::Secret,
                )
                .shown_with("auth"),
                field("creds_file", "Credentials file", FieldKind::File)
                    .help("a .creds file (user JWT and seed), for auth creds")
                    .shown_with("auth"),
                field("tls", "TLS", FieldKind::Flag),
                field("tls_ca", "CA certificate", FieldKind::File),
                field("tls_cert", "Client certificate", FieldKind::File),
                field("tls_key", "Client key", FieldKind::File),
            ],
            // One way only: streams are read without acknowledging anything and subjects by
            // subscribing, neither of which takes messages from anyone.
            read_modes: vec![],
            listing_note: None,
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: true,
                needs_target: true,
                // JetStream sequences; core messages have none.
                positions: true,
                partitions: false,
                keys: false,
                routing_keys: false,
                properties: true,
                broker_timestamps: true,
                delivery_confirms: true,
                dead_letter_sources: false,
                // max_payload is a server setting, checked per message when sending.
                max_message_bytes: None,
                max_headers: None,
            },
        }
    }

    /// The target is the subject to publish to, as given; keys and routing keys have no place.
    /// A JetStream event sent back to its own stream (`--to CONN:STREAM`, `--to-origin`) goes
    /// to the subject it was published on: a stream's name is not one of its subjects.
    fn address(&self, msg: &mut Outgoing, _: Option<String>, _: Option<&str>) {
        // Parsed into the two fields only: this runs for every replayed event, and a JSON
        // value of the whole object took a tenth of a NATS replay's time in a profile.
        #[derive(serde::Deserialize)]
        struct Where {
            subject: Option<serde_json::Value>,
            stream: Option<serde_json::Value>,
        }
        // A key twice is an error to a struct but the last value to a JSON object.
        let parse = |p: &str| {
            // Only an object has keys (a struct would also be filled from an array).
            if !p.trim_start().starts_with('{') {
                return None;
            }
            serde_json::from_str::<Where>(p)
                .or_else(|_| serde_json::from_str(p).and_then(serde_json::from_value))
                .ok()
        };
        let Some(w) = msg.properties.as_deref().and_then(parse) else {
            return;
        };
        let Some(subject) = w.subject.as_ref().and_then(|s| s.as_str()) else {
            return;
        };
        // Nor can anything be published to a wildcard a core capture subscribed to.
        let wildcard = msg.target.split('.').any(|t| t == "*" || t == ">");
        if wildcard || w.stream.as_ref().and_then(|s| s.as_str()) == Some(msg.target.as_str()) {
            msg.target = subject.to_string();
        }
    }

    /// Properties are read-only facts of where a message was (subject, stream, sequence): NATS
    /// cannot set them, so they travel in a header whatever the source.
    fn keeps_properties_of(&self, from: Bus) -> bool {
        from == Bus::Nats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `address` parses two fields only: it must route as reading the whole JSON value would.
    #[test]
    fn addresses_read_as_the_whole_json_says() {
        let general = |target: &str, p: Option<&str>| -> String {
            let props = p.and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
            let field = |k: &str| {
                props
                    .as_ref()
                    .and_then(|p| p.get(k)?.as_str().map(str::to_string))
            };
            let Some(subject) = field("subject") else {
                return target.to_string();
            };
            let wildcard = target.split('.').any(|t| t == "*" || t == ">");
            if wildcard || field("stream").is_some_and(|s| s == target) {
                subject
            } else {
                target.to_string()
            }
        };
        for (target, p) in [
            (
                "ORDERS",
                Some(r#"{"subject":"orders.eu","stream":"ORDERS","seq":4}"#),
            ),
            (
                "other.subject",
                Some(r#"{"subject":"orders.eu","stream":"ORDERS"}"#),
            ),
            (
                "orders.>",
                Some(r#"{"subject":"orders.eu","reply":"_INBOX.1"}"#),
            ),
            ("orders.*", Some(r#"{"stream":"ORDERS"}"#)),
            ("ORDERS", Some(r#"{"subject":5,"stream":"ORDERS"}"#)),
            ("ORDERS", Some(r#"{"subject":"a.b","stream":["ORDERS"]}"#)),
            ("ORDERS", Some("not json")),
            ("ORDERS", Some(r#"["a.b","ORDERS"]"#)),
            (
                "ORDERS",
                Some(r#"{"subject":"a.b","subject":"c.d","stream":"ORDERS"}"#),
            ),
            ("ORDERS", None),
        ] {
            let mut m = out(target, p);
            NatsConventions.address(&mut m, None, None);
            assert_eq!(m.target, general(target, p), "{target} {p:?}");
        }
    }

    fn out(target: &str, properties: Option<&str>) -> Outgoing {
        Outgoing {
            target: target.into(),
            partition: None,
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: Vec::new(),
            properties: properties.map(str::to_string),
            routing_key: None,
            event_id: "e".into(),
        }
    }

    #[test]
    fn events_go_back_to_the_subject_they_were_published_on() {
        let props = r#"{"subject":"orders.eu","stream":"ORDERS","seq":7}"#;
        let mut to_stream = out("ORDERS", Some(props));
        NatsConventions.address(&mut to_stream, None, None);
        assert_eq!(to_stream.target, "orders.eu");
        let mut wildcard = out("orders.>", Some(r#"{"subject":"orders.us"}"#));
        NatsConventions.address(&mut wildcard, None, None);
        assert_eq!(wildcard.target, "orders.us");
        // A subject the person named is kept, and so is a stream name without NATS facts.
        let mut named = out("audit.in", Some(props));
        NatsConventions.address(&mut named, None, None);
        assert_eq!(named.target, "audit.in");
        let mut other = out("ORDERS", None);
        NatsConventions.address(&mut other, None, None);
        assert_eq!(other.target, "ORDERS");
    }
}
