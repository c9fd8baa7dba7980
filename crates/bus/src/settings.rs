//! A connection's settings as one tagged enum, `bus` being the tag: what `connection add`
//! takes, what `config.toml` keeps and what opens a connector. Secrets are never part of it:
//! the caller keeps them apart (keyring) and hands them over when opening.

use crate::{amqp, collector, http, kafka, mqtt, nats, postgres, redis, sqs, BusError, Connector};
use serde::{Deserialize, Serialize};
use sluice_model::Bus;

/// A setting left empty (or only spaces) is a setting not given.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "bus", rename_all = "lowercase")]
pub enum Settings {
    Kafka(kafka::KafkaSettings),
    Amqp(amqp::AmqpSettings),
    Sqs(sqs::SqsSettings),
    Nats(nats::NatsSettings),
    Mqtt(mqtt::MqttSettings),
    Redis(redis::RedisSettings),
    Http(http::HttpSettings),
    Collector(collector::CollectorSettings),
    Postgres(postgres::PostgresSettings),
}

/// What `connection list` shows of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Where it connects: brokers, URL or endpoint.
    pub place: String,
    /// How it authenticates, in words (`SASL PLAIN as alice`, `AWS credential chain`).
    pub auth: String,
    pub tls: bool,
}

/// What every bus's settings type does; `Settings` hands each call to its variant.
pub trait ConnectionSettings: Sized {
    /// Checks and normalises settings as a person gave them, with the secret they gave
    /// (password, secret key): the settings to keep and the secret to keep apart.
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError>;
    /// A connector for the connection `name`.
    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError>;
    fn summary(&self) -> Summary;
}

impl Settings {
    pub fn bus(&self) -> Bus {
        match self {
            Settings::Kafka(_) => Bus::Kafka,
            Settings::Amqp(_) => Bus::Amqp,
            Settings::Sqs(_) => Bus::Sqs,
            Settings::Nats(_) => Bus::Nats,
            Settings::Mqtt(_) => Bus::Mqtt,
            Settings::Redis(_) => Bus::Redis,
            Settings::Http(_) => Bus::Http,
            Settings::Collector(_) => Bus::Collector,
            Settings::Postgres(_) => Bus::Postgres,
        }
    }

    pub fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        Ok(match self {
            Settings::Kafka(s) => s.checked(secret).map(|(s, p)| (Settings::Kafka(s), p))?,
            Settings::Amqp(s) => s.checked(secret).map(|(s, p)| (Settings::Amqp(s), p))?,
            Settings::Sqs(s) => s.checked(secret).map(|(s, p)| (Settings::Sqs(s), p))?,
            Settings::Nats(s) => s.checked(secret).map(|(s, p)| (Settings::Nats(s), p))?,
            Settings::Mqtt(s) => s.checked(secret).map(|(s, p)| (Settings::Mqtt(s), p))?,
            Settings::Redis(s) => s.checked(secret).map(|(s, p)| (Settings::Redis(s), p))?,
            Settings::Http(s) => s.checked(secret).map(|(s, p)| (Settings::Http(s), p))?,
            Settings::Collector(s) => s
                .checked(secret)
                .map(|(s, p)| (Settings::Collector(s), p))?,
            Settings::Postgres(s) => s.checked(secret).map(|(s, p)| (Settings::Postgres(s), p))?,
        })
    }

    pub fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        match self {
            Settings::Kafka(s) => s.open(name, secret),
            Settings::Amqp(s) => s.open(name, secret),
            Settings::Sqs(s) => s.open(name, secret),
            Settings::Nats(s) => s.open(name, secret),
            Settings::Mqtt(s) => s.open(name, secret),
            Settings::Redis(s) => s.open(name, secret),
            Settings::Http(s) => s.open(name, secret),
            Settings::Collector(s) => s.open(name, secret),
            Settings::Postgres(s) => s.open(name, secret),
        }
    }

    pub fn summary(&self) -> Summary {
        match self {
            Settings::Kafka(s) => s.summary(),
            Settings::Amqp(s) => s.summary(),
            Settings::Sqs(s) => s.summary(),
            Settings::Nats(s) => s.summary(),
            Settings::Mqtt(s) => s.summary(),
            Settings::Redis(s) => s.summary(),
            Settings::Http(s) => s.summary(),
            Settings::Collector(s) => s.summary(),
            Settings::Postgres(s) => s.summary(),
        }
    }
}
