//! An HTTP endpoint's own rules: the settings form, no reading, confirmed deliveries (a 2xx
//! answer), and destinations that need no lookup: `--to NAME` sends to the connection's URL,
//! `--to NAME:PATH` (or `NAME:?QUERY`) appends to it.

use crate::kind::{field, BusKind, Capabilities, Conventions, Destination, FieldKind};
use crate::{BusError, SourceInfo};
use sluice_model::Bus;

pub struct HttpConventions;

impl Conventions for HttpConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Http.as_str().into(),
            label: "HTTP endpoint".into(),
            source_noun: "endpoint".into(),
            sources_noun: "endpoints".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("https://example.com/events")
                    .help("each replayed event is one request to it"),
                field("method", "Method", FieldKind::Choice).choices(&["POST", "PUT", "PATCH"]),
                field("body", "Body", FieldKind::Choice)
                    .choices(&super::BodyMode::NAMES)
                    .help("raw: the payload as is, metadata in headers; or a CloudEvent 1.0"),
                field("timeout_ms", "Timeout (ms)", FieldKind::Text)
                    .placeholder("10000")
                    .help("longest wait for each step of a request"),
                field("concurrency", "Concurrency", FieldKind::Text)
                    .placeholder("8")
                    .help("requests in flight at once"),
                field(
                    "password",
                    "Headers (Name: value, one per line)",
                    FieldKind::SecretLines,
                )
                .placeholder("Authorization: Bearer ...")
                .help("sent with every request; kept in the keyring"),
            ],
            read_modes: vec![],
            listing_note: None,
            capabilities: Capabilities {
                reads: false,
                ends: false,
                needs_target: false,
                delivery_confirms: true,
                ..Capabilities::default()
            },
        }
    }

    /// Nothing to look up: an endpoint has no list of targets. The target is a path (or
    /// `?query`) appended to the connection's URL; empty sends to the URL itself.
    fn destination(
        &self,
        target: &str,
        _lookup: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        if target
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#')
        {
            return Err(BusError::Invalid(format!(
                "--to: {target:?} is not a URL path (no spaces, control characters or #)"
            )));
        }
        let info = SourceInfo {
            name: target.to_string(),
            kind: Some("endpoint".into()),
            ..SourceInfo::default()
        };
        Ok((
            Destination {
                source: target.to_string(),
                send_to: target.to_string(),
                routing_key: None,
            },
            Some(info),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_need_no_lookup() {
        let mut lookup = |_: &str| -> Result<Option<SourceInfo>, BusError> {
            panic!("an endpoint has nothing to look up")
        };
        for t in ["", "/orders", "orders/1?x=2"] {
            let (d, info) = HttpConventions.destination(t, &mut lookup).unwrap();
            assert_eq!(d.send_to, t);
            assert!(info.is_some());
        }
        assert!(HttpConventions.destination("a b", &mut lookup).is_err());
        assert!(HttpConventions
            .destination("a\r\nX: y", &mut lookup)
            .is_err());
    }

    #[test]
    fn capabilities_say_replay_only() {
        let k = HttpConventions.kind();
        assert!(!k.capabilities.reads && k.capabilities.delivery_confirms);
        assert!(!k.capabilities.keys && !k.capabilities.partitions);
        for b in Bus::ALL {
            assert!(!HttpConventions.keeps_properties_of(b));
        }
    }
}
