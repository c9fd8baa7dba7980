//! PostgreSQL's own rules: the settings form, reading changes (never writing: replay into a
//! table is not built, and `writer` says so), tables named as `schema.table`.

use crate::kind::{field, mode, BusKind, Capabilities, Conventions, FieldKind};
use sluice_model::Bus;

pub struct PostgresConventions;

impl Conventions for PostgresConventions {
    fn kind(&self) -> BusKind {
        BusKind {
            bus: Bus::Postgres.as_str().into(),
            label: "PostgreSQL (change data)".into(),
            source_noun: "table".into(),
            sources_noun: "tables".into(),
            fields: vec![
                field("url", "URL", FieldKind::Text)
                    .required()
                    .placeholder("postgres://USER@HOST:5432/DB")
                    .help("a user with the REPLICATION attribute; the server needs wal_level = logical"),
                field("password", "Password", FieldKind::Secret),
                field("slot", "Replication slot", FieldKind::Text)
                    .placeholder("sluice_NAME_DB")
                    .help("a pgoutput slot of your own to read (never changed); empty: Sluice's own, made with --create-slot"),
                field("publication", "Publication", FieldKind::Text)
                    .placeholder("sluice_NAME_DB")
                    .help("the publication that slot reads; empty: Sluice's own"),
            ],
            // The window's way to say `--create-slot` and `--snapshot`; none takes anything
            // from anyone (a slot is Sluice's own reading position).
            read_modes: vec![
                mode("slot", "from the slot's position", false),
                mode("create-slot", "make Sluice's slot if missing", false),
                mode("snapshot", "new slot, table rows first", false),
            ],
            listing_note: Some(
                "Tables are read through logical replication: capture them with --create-slot the first time (Sluice makes its own slot and publication, sluice_NAME_DB), --snapshot to read their rows first.".into(),
            ),
            capabilities: Capabilities {
                reads: true,
                positions: true,
                broker_timestamps: true,
                keys: true,
                ..Capabilities::default()
            },
        }
    }

    fn source_name(&self, written: &str) -> String {
        super::sql::qualified(written)
    }
}
