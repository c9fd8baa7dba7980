//! MQTT's own rules: the settings form, its capabilities (no positions, keys or broker
//! timestamps; properties and, for QoS 1 and 2, delivery confirms), no dead-letter marks, and
//! replay destinations that are topic names (no wildcards).

use super::properties;
use super::settings::VERSIONS;
use crate::kind::{field, BusKind, Capabilities, Conventions, Destination, FieldKind};
use crate::{BusError, SourceInfo};
use sluice_model::{Bus, Outgoing};

pub struct MqttConventions;

impl Conventions for MqttConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Mqtt.as_str().into(),
            label: "MQTT".into(),
            source_noun: "topic filter".into(),
            sources_noun: "topics".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("mqtt://127.0.0.1:1883")
                    .help("mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"),
                field("version", "Protocol version", FieldKind::Choice)
                    .choices(&VERSIONS)
                    .help("MQTT 5 carries user properties and message properties; 3.1.1 does not"),
                field("username", "Username", FieldKind::Text),
                field("password", "Password", FieldKind::Secret).shown_with("username"),
                field("tls", "TLS", FieldKind::Flag).help("implied by mqtts://"),
                field("tls_ca", "CA certificate", FieldKind::File)
                    .help("PEM file of the CA that signed the broker's certificate"),
                field("tls_cert", "Client certificate", FieldKind::File)
                    .help("PEM file, with the key below"),
                field("tls_key", "Client key", FieldKind::File)
                    .help("PEM file (PKCS#8)"),
                field("client_id", "Client id prefix", FieldKind::Text)
                    .placeholder("sluice")
                    .help("a random suffix makes each connection's id unique"),
            ],
            read_modes: vec![],
            listing_note: Some("MQTT has no topic listing: these are the topics that held a retained message or had traffic during a one-second look at # (never $SYS/...). Any topic filter can be opened by name.".into()),
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: false,
                needs_target: true,
                positions: false,
                partitions: false,
                keys: false,
                routing_keys: false,
                properties: true,
                broker_timestamps: false,
                delivery_confirms: true,
                dead_letter_sources: false,
                // The protocol's own limit; a broker may set a lower one (MQTT 5 says which).
                max_message_bytes: Some(u64::from(super::config::PROTOCOL_MAX_PACKET)),
                max_headers: None,
            },
        }
    }

    /// `TOPIC` (it may contain `/`): a topic name, as messages cannot be published to a
    /// filter.
    fn destination(
        &self,
        target: &str,
        lookup: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        properties::check_topic(target)
            .map_err(|why| BusError::Invalid(format!("replay to MQTT topic: {why}")))?;
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

    /// An event captured through a topic filter goes back (`--to-origin`) to the topic it was
    /// published on: nothing can be published to a filter.
    fn address(&self, msg: &mut Outgoing, _: Option<String>, _: Option<&str>) {
        if !msg.target.contains(['+', '#']) {
            return;
        }
        let topic = msg
            .properties
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("topic")?.as_str().map(str::to_string));
        if let Some(topic) = topic {
            msg.target = topic;
        }
    }

    fn keeps_properties_of(&self, from: Bus) -> bool {
        from == Bus::Mqtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_read_through_a_filter_goes_back_to_its_topic() {
        let mut m = Outgoing {
            target: "plant/+/temp".into(),
            partition: None,
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: Vec::new(),
            properties: Some(r#"{"topic":"plant/7/temp","qos":1}"#.into()),
            routing_key: None,
            event_id: "e".into(),
        };
        MqttConventions.address(&mut m, None, None);
        assert_eq!(m.target, "plant/7/temp");
        let mut named = Outgoing {
            target: "plant/9/temp".into(),
            ..m.clone()
        };
        MqttConventions.address(&mut named, None, None);
        assert_eq!(named.target, "plant/9/temp");
    }
}
