//! Redis's own rules: the settings form, its capabilities, and replay addressing: a target
//! is a stream (made by the first XADD when it does not exist) unless it is written
//! `pubsub:CHANNEL` or `shard:CHANNEL` (PUBLISH / SPUBLISH).

use super::{PUBSUB, SHARD};
use crate::kind::{field, BusKind, Capabilities, Conventions, Destination, FieldKind};
use crate::{BusError, SourceInfo};
use sluice_model::{Bus, Outgoing};

pub struct RedisConventions;

impl Conventions for RedisConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Redis.as_str().into(),
            label: "Redis".into(),
            source_noun: "stream or channel".into(),
            sources_noun: "streams and channels".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("redis://127.0.0.1:6379/0")
                    .help("redis[s]://[USER@]HOST:PORT/DB (a password given here goes to the keyring)"),
                field("username", "ACL user", FieldKind::Text)
                    .help("optional: when the URL names none (Redis 6+)"),
                field("password", "Password", FieldKind::Secret),
                field("tls", "TLS", FieldKind::Flag).help("implied by rediss://"),
                field("tls_ca", "CA certificate", FieldKind::File).shown_with("tls"),
                field("tls_cert", "Client certificate", FieldKind::File).shown_with("tls"),
                field("tls_key", "Client key", FieldKind::File).shown_with("tls"),
                field("payload_field", "Payload field", FieldKind::Text)
                    .placeholder("payload")
                    .help("the stream entry field that is the payload (default: payload, data or body, the first an entry has)"),
            ],
            read_modes: vec![],
            listing_note: None,
            capabilities: Capabilities {
                reads: true,
                listens: false,
                ends: true,
                needs_target: true,
                // Stream entry ids `MS-SEQ`; Pub/Sub messages have none.
                positions: true,
                partitions: false,
                keys: false,
                routing_keys: false,
                properties: true,
                // A stream entry id is the time Redis added it.
                broker_timestamps: true,
                delivery_confirms: true,
                dead_letter_sources: false,
                max_message_bytes: None,
                max_headers: None,
            },
        }
    }

    /// A stream that does not exist yet is a destination too: XADD makes it.
    fn destination(
        &self,
        target: &str,
        lookup: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        let info = lookup(target)?;
        let is = |k: &str| {
            info.as_ref()
                .and_then(|i| i.kind.as_deref())
                .is_some_and(|x| x.starts_with(k))
        };
        let unkeyed = target.starts_with(PUBSUB) || target.starts_with(SHARD);
        let info = if is("stream") || (unkeyed && info.is_some()) {
            info
        } else if let Some(kind) = info
            .as_ref()
            .and_then(|i| i.kind.clone())
            .filter(|k| k.contains("key (not a stream)"))
        {
            return Err(BusError::Invalid(format!(
                "{target:?} is a {kind}; replay writes to streams, or to a channel written \
                 {PUBSUB}CHANNEL"
            )));
        } else {
            Some(SourceInfo {
                name: target.to_string(),
                kind: Some("stream (new: made by the first XADD)".into()),
                ..Default::default()
            })
        };
        Ok((
            Destination {
                source: target.to_string(),
                send_to: target.to_string(),
                routing_key: None,
            },
            info,
        ))
    }

    fn address(&self, _: &mut Outgoing, _: Option<String>, _: Option<&str>) {}

    /// A stream entry keeps other buses' properties only as a field, which replay writes from
    /// the `sluice-properties` header.
    fn keeps_properties_of(&self, from: Bus) -> bool {
        from == Bus::Redis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: &str) -> Option<SourceInfo> {
        Some(SourceInfo {
            name: "x".into(),
            kind: Some(kind.into()),
            ..Default::default()
        })
    }

    #[test]
    fn a_missing_stream_is_a_destination_and_other_keys_are_not() {
        let c = RedisConventions;
        let (d, i) = c.destination("new", &mut |_| Ok(None)).unwrap();
        assert_eq!(d.send_to, "new");
        assert!(i.unwrap().kind.unwrap().starts_with("stream (new"));
        let (_, i) = c
            .destination("s", &mut |_| Ok(info("stream (first 1-0, last 2-0)")))
            .unwrap();
        assert!(i.unwrap().kind.unwrap().contains("first 1-0"));
        assert!(c
            .destination("k", &mut |_| Ok(info("string key (not a stream)")))
            .is_err());
        let (d, i) = c
            .destination("pubsub:c", &mut |_| Ok(info("channel pattern")))
            .unwrap();
        assert_eq!(
            (d.send_to.as_str(), i.unwrap().kind.as_deref()),
            ("pubsub:c", Some("channel pattern"))
        );
    }
}
