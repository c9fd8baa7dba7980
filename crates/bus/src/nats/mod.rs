//! NATS through async-nats, on a small tokio runtime of its own: core subjects and JetStream
//! streams.
//!
//! A source that names a JetStream stream is read from the stream by an ordered, ephemeral
//! consumer that acknowledges nothing and is deleted when reading ends (work-queue and
//! interest streams, where a consumer would change what the stream keeps, are read message
//! by message with direct gets, which take nothing). Any other name is a core NATS subject
//! (wildcards allowed), subscribed to: core NATS keeps nothing, so only what is published
//! while reading is seen.

mod browse;
mod config;
mod conventions;
mod settings;
mod sink;
mod source;

pub use config::{Auth, NatsConfig, Tls};
pub use conventions::NatsConventions;
pub use settings::NatsSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// A NATS connection: settings plus the name used in errors and event ids.
#[derive(Clone)]
pub struct Nats {
    pub name: String,
    pub config: NatsConfig,
}

fn runtime() -> Result<tokio::runtime::Runtime, BusError> {
    crate::runtime("nats")
}

/// How long connecting may take when opening a reader or a writer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

impl Nats {
    fn what(&self) -> String {
        format!("NATS at {} ({})", self.config.place(), self.name)
    }
}

/// Closes a client, waiting at most two seconds for what it still has to send.
fn close(rt: &tokio::runtime::Runtime, client: &async_nats::Client) {
    let _ =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), client.drain()).await });
}

impl Connector for Nats {
    fn bus(&self) -> Bus {
        Bus::Nats
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::sources(self, timeout)
    }

    fn source(&self, name: &str, timeout: Duration) -> Result<Option<SourceInfo>, BusError> {
        browse::source(self, name, timeout)
    }

    fn reader(
        &self,
        sources: &[String],
        from: StartFrom,
        _options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::NatsReader::open(self, sources, from)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::NatsWriter::open(self)?))
    }
}
