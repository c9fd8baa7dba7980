//! A collector's own rules: the settings form, reading that listens (sources are whatever
//! clients name), and no writing: replay to a collector through an `http` connection to its
//! URL (`http://HOST:PORT/v1/events/SOURCE` with the token as a header).

use crate::kind::{field, BusKind, Capabilities, Conventions, Destination, FieldKind};
use crate::{BusError, SourceInfo};
use sluice_model::Bus;

pub struct CollectorConventions;

impl Conventions for CollectorConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Collector.as_str().into(),
            label: "Collector (HTTP/gRPC ingest)".into(),
            source_noun: "source".into(),
            sources_noun: "sources".into(),
            fields: vec![
                field("http", "HTTP address", FieldKind::Text)
                    .placeholder(super::settings::DEFAULT_HTTP)
                    .help("POST /v1/events/{source} listens here; another interface than 127.0.0.1 only when named"),
                field("grpc", "gRPC address", FieldKind::Text)
                    .placeholder("127.0.0.1:7881")
                    .help("sluice.collector.v1.Collector (protos/sluice/collector/v1/collector.proto); empty for none"),
                field("max_body_bytes", "Largest body (bytes)", FieldKind::Text)
                    .placeholder("16777216"),
                field("password", "Token", FieldKind::Secret)
                    .help("clients send Authorization: Bearer TOKEN; left empty, each capture draws one and shows it"),
            ],
            read_modes: vec![],
            listing_note: Some(
                "A collector lists nothing: its sources are the names clients post to (/v1/events/{source}). Start a capture to listen; name no source to take them all.".into(),
            ),
            capabilities: Capabilities {
                reads: true,
                listens: true,
                broker_timestamps: true,
                ..Capabilities::default()
            },
        }
    }

    fn destination(
        &self,
        _: &str,
        _: &mut dyn FnMut(&str) -> Result<Option<SourceInfo>, BusError>,
    ) -> Result<(Destination, Option<SourceInfo>), BusError> {
        Err(BusError::Invalid(
            "a collector takes events from clients; to replay into one, add an http connection to its URL (http://HOST:PORT/v1/events/SOURCE) with --header 'Authorization: Bearer TOKEN'".into(),
        ))
    }
}
