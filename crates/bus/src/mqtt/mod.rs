//! MQTT 3.1.1 and 5 through rumqttc, driven on a small tokio runtime of its own.
//!
//! A source is a topic filter (`plant/+/temp`, `#`). Reading subscribes with a clean session
//! (MQTT 5: clean start, session expiry 0) under a client id of its own, so nothing is left on
//! the broker and nothing is taken from anyone: every subscriber gets its own copy, and the
//! acknowledgements QoS 1 and 2 require concern only Sluice's copy. MQTT has no topic
//! listing: `sources` reports what a short look at `#` sees (every retained topic, plus live
//! traffic).

mod browse;
mod client;
mod config;
mod conventions;
mod properties;
mod settings;
mod sink;
mod source;

pub use config::MqttConfig;
pub use conventions::MqttConventions;
pub use settings::MqttSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// An MQTT connection: its settings and the name used in errors and event ids.
#[derive(Debug, Clone)]
pub struct Mqtt {
    pub name: String,
    pub config: MqttConfig,
}

fn runtime() -> Result<tokio::runtime::Runtime, BusError> {
    crate::runtime("mqtt")
}

impl Connector for Mqtt {
    fn bus(&self) -> Bus {
        Bus::Mqtt
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::sources(self, timeout)
    }

    fn source(&self, name: &str, _timeout: Duration) -> Result<Option<SourceInfo>, BusError> {
        browse::source(name)
    }

    fn reader(
        &self,
        sources: &[String],
        from: StartFrom,
        _options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::MqttReader::open(self, sources, from)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::MqttWriter::open(self)?))
    }
}
