//! RabbitMQ (AMQP 0-9-1) through lapin, driven on a small tokio runtime of its own so the rest
//! of Sluice stays synchronous.
//!
//! Reading never disturbs the application by default: each source is an exchange, tapped
//! through an exclusive, auto-delete queue bound with the user's binding key. Reading an
//! existing queue takes its messages and happens only when asked (`ReadOptions::queue`).

mod browse;
mod config;
mod properties;
mod sink;
mod source;

pub use config::{split_password, AmqpConfig};

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// A RabbitMQ connection: settings plus the name used in errors and event ids.
#[derive(Clone)]
pub struct Amqp {
    pub name: String,
    pub config: AmqpConfig,
}

/// A runtime for lapin's connection tasks; one worker keeps heartbeats and reads going while
/// the caller is between calls.
fn runtime() -> Result<tokio::runtime::Runtime, BusError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sluice-amqp")
        .enable_all()
        .build()
        .map_err(|e| BusError::Client(format!("cannot start the AMQP runtime: {e}")))
}

impl Connector for Amqp {
    fn bus(&self) -> Bus {
        Bus::Amqp
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
        options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::AmqpReader::open(
            self, sources, from, options,
        )?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::AmqpWriter::open(self)?))
    }
}
