//! PostgreSQL change data: a table's inserts, updates, deletes and truncates read through
//! logical replication (pgoutput), one event per change, typed JSON (`types.rs`) with the
//! operation, table, new row, old key or row, transaction id, commit time and LSN.
//!
//! `source.rs` reads (slot and publication checked or made, the stream, confirmed
//! positions), `events.rs` turns changes and snapshot rows into events, `pgoutput.rs` decodes
//! the protocol, `browse.rs` lists tables, publications and slots, `sql.rs` connects. Sluice never touches a slot or publication it did not make (`settings.rs`). Queries
//! go through tokio-postgres, the change stream through pgwire-replication (tokio-postgres
//! has no replication protocol); neither uses TLS yet.

mod browse;
mod config;
mod conventions;
mod events;
mod pgoutput;
mod settings;
mod source;
mod sql;
mod types;

pub use config::PostgresConfig;
pub use conventions::PostgresConventions;
pub use settings::PostgresSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

pub struct Postgres {
    pub name: String,
    pub config: PostgresConfig,
    /// Sluice's own slot and publication name, `sluice_CONNECTION_DATABASE`.
    own: String,
    /// The user's own slot and publication, when the settings name them.
    slot: Option<String>,
    publication: Option<String>,
}

impl Connector for Postgres {
    fn bus(&self) -> Bus {
        Bus::Postgres
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, _: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::sources(self, None)
    }

    fn source(&self, name: &str, _: Duration) -> Result<Option<SourceInfo>, BusError> {
        Ok(browse::sources(self, Some(name))?.into_iter().next())
    }

    /// The replication slot keeps its own position: `from` is not used (a new slot starts
    /// now, or at its snapshot with `--snapshot`).
    fn reader(
        &self,
        sources: &[String],
        _: StartFrom,
        options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::open(self, sources, options)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Err(BusError::Invalid(
            "replaying into PostgreSQL is not built yet: a PostgreSQL connection is a source of changes".into(),
        ))
    }
}
