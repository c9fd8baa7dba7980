//! Kafka through librdkafka (rdkafka crate).

mod browse;
mod config;
mod conventions;
mod settings;
mod sink;
mod source;
mod topic_id;

pub use config::{KafkaConfig, Sasl, SaslMechanism, Tls};
pub use conventions::KafkaConventions;
pub use settings::KafkaSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// A Kafka connection: settings plus the name used in errors and event ids.
#[derive(Clone)]
pub struct Kafka {
    pub name: String,
    pub config: KafkaConfig,
}

impl Connector for Kafka {
    fn bus(&self) -> Bus {
        Bus::Kafka
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::topics(self, timeout, None)
    }

    fn source(&self, name: &str, timeout: Duration) -> Result<Option<SourceInfo>, BusError> {
        Ok(browse::topics(self, timeout, Some(name))?
            .into_iter()
            .find(|t| t.name == name))
    }

    fn reader(
        &self,
        sources: &[String],
        from: StartFrom,
        _: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::KafkaReader::open(self, sources, from)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::KafkaWriter::open(self)?))
    }
}
