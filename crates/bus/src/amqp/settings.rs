//! RabbitMQ connection settings as `connection add` takes them and `config.toml` keeps them:
//! the URL without its password, which is kept apart.

use super::{split_password, Amqp, AmqpConfig};
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct AmqpSettings {
    /// `amqp[s]://USER@HOST:PORT/VHOST`; files written before settings were typed call it
    /// `brokers`.
    #[serde(alias = "brokers")]
    pub url: String,
    /// The management HTTP API (default `http://HOST:15672`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_url: Option<String>,
}

impl AmqpSettings {
    fn config(&self, password: Option<String>) -> AmqpConfig {
        AmqpConfig {
            url: self.url.clone(),
            password,
            management_url: self.management_url.clone(),
        }
    }
}

impl ConnectionSettings for AmqpSettings {
    /// A password written in the URL moves out of it, to be kept apart.
    fn checked(self, password: Option<String>) -> Result<(Self, Option<String>), BusError> {
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return Err(BusError::Invalid(
                "--url: expected amqp://USER@HOST:PORT/VHOST (or amqps://)".into(),
            ));
        }
        let (url, in_url) = split_password(&self.url)?;
        let management_url = self.management_url.filter(|m| !m.is_empty());
        Ok((
            AmqpSettings {
                url,
                management_url,
            },
            password.or(in_url),
        ))
    }

    fn open(&self, name: &str, password: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        Ok(Box::new(Amqp {
            name: name.to_string(),
            config: self.config(password),
        }))
    }

    fn summary(&self) -> Summary {
        Summary {
            place: self.url.clone(),
            auth: match self.config(None).user() {
                Some(u) => format!("user {u}"),
                None => "none".into(),
            },
            tls: self.url.starts_with("amqps://"),
        }
    }
}
