//! RabbitMQ (AMQP 0-9-1) through lapin, driven on a small tokio runtime of its own so the rest
//! of Sluice stays synchronous.
//!
//! Reading never disturbs the application by default: each source is an exchange, tapped
//! through an exclusive, auto-delete queue bound with the user's binding key. Reading an
//! existing queue takes its messages and happens only when asked (`ReadOptions::queue`).

mod browse;
mod config;
mod conventions;
mod properties;
mod settings;
mod sink;
mod source;

pub use config::{split_password, AmqpConfig};
pub use conventions::AmqpConventions;
pub use settings::AmqpSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// A RabbitMQ connection: settings plus the name used in errors and event ids.
#[derive(Clone)]
pub struct Amqp {
    pub name: String,
    pub config: AmqpConfig,
}

fn runtime() -> Result<tokio::runtime::Runtime, BusError> {
    crate::runtime("amqp")
}

/// A queue's counts, if it exists. A failed passive declare closes its channel, so callers
/// ask on a channel they can lose.
async fn passive_queue(ch: &Channel, name: &str) -> lapin::Result<lapin::Queue> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), passive, FieldTable::default())
        .await
}

/// Whether an exchange exists (its kind is not checked); closes the channel when it does not.
async fn passive_exchange(ch: &Channel, name: &str) -> bool {
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Topic,
        passive,
        FieldTable::default(),
    )
    .await
    .is_ok()
}

/// Closes a connection on drop, waiting at most two seconds: closing gives back anything
/// unacknowledged and deletes a tap's queue.
fn close(rt: &tokio::runtime::Runtime, conn: &Connection) {
    let _ = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            conn.close(200, "sluice done".into()),
        )
        .await
    });
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
