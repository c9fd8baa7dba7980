//! Kafka connection settings as `connection add` takes them and `config.toml` keeps them.

use super::{Kafka, KafkaConfig, Sasl, SaslMechanism, Tls};
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct KafkaSettings {
    /// `HOST:PORT[,HOST:PORT...]`
    pub brokers: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (PLAIN when only a username is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<String>,
    /// Files written before settings were typed call it `sasl_username`.
    #[serde(alias = "sasl_username", skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Implied by `tls_ca` or `tls_cert`.
    pub tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

impl KafkaSettings {
    fn mechanism(&self) -> Result<Option<SaslMechanism>, BusError> {
        match self.sasl_mechanism.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => m.parse().map(Some).map_err(BusError::Invalid),
            None if self.username.is_some() => Ok(Some(SaslMechanism::Plain)),
            None => Ok(None),
        }
    }
}

impl ConnectionSettings for KafkaSettings {
    fn checked(self, password: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let mechanism = self.mechanism()?;
        if mechanism.is_some() && (self.username.is_none() || password.is_none()) {
            return Err(BusError::Invalid(
                "SASL needs --username and a password (--password-stdin or SLUICE_PASSWORD)".into(),
            ));
        }
        for f in [&self.tls_ca, &self.tls_cert, &self.tls_key]
            .into_iter()
            .flatten()
        {
            if !std::path::Path::new(f).exists() {
                return Err(BusError::MissingFile(format!(
                    "TLS file {f} does not exist"
                )));
            }
        }
        if self.brokers.split(',').any(|b| {
            b.trim()
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(BusError::Invalid(format!(
                "--brokers {:?}: expected HOST:PORT[,HOST:PORT...]",
                self.brokers
            )));
        }
        let settings = KafkaSettings {
            sasl_mechanism: mechanism.map(|m| m.as_str().to_string()),
            tls: self.tls || self.tls_ca.is_some() || self.tls_cert.is_some(),
            ..self
        };
        Ok((settings, password))
    }

    fn open(&self, name: &str, password: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        let sasl = match (self.mechanism()?, &self.username) {
            (Some(mechanism), Some(u)) => Some(Sasl {
                mechanism,
                username: u.clone(),
                password: password.unwrap_or_default(),
            }),
            _ => None,
        };
        let tls = self.tls.then(|| Tls {
            ca_file: self.tls_ca.clone(),
            cert_file: self.tls_cert.clone(),
            key_file: self.tls_key.clone(),
        });
        Ok(Box::new(Kafka {
            name: name.to_string(),
            config: KafkaConfig {
                brokers: self.brokers.clone(),
                sasl,
                tls,
                max_message_bytes: None,
            },
        }))
    }

    fn summary(&self) -> Summary {
        Summary {
            place: self.brokers.clone(),
            auth: match (&self.sasl_mechanism, &self.username) {
                (Some(m), Some(u)) => format!("SASL {m} as {u}"),
                (None, Some(u)) => format!("user {u}"),
                _ => "none".into(),
            },
            tls: self.tls,
        }
    }
}
