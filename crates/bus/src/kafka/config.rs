//! Kafka connection settings and the librdkafka client config built from them. The password
//! is never printed: `Debug` redacts it, and the client config is never logged.

use crate::BusError;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(format!(
                "unknown SASL mechanism {s:?} (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub sasl: Option<Sasl>,
    pub tls: Option<Tls>,
    /// Largest message librdkafka accepts when reading (`fetch.max.bytes` and friends).
    pub max_message_bytes: Option<usize>,
}

impl KafkaConfig {
    pub(crate) fn client_config(&self) -> Result<ClientConfig, BusError> {
        if self.brokers.trim().is_empty() {
            return Err(BusError::Config("--brokers is empty".into()));
        }
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "sluice")
            .set("socket.timeout.ms", "10000")
            .set("socket.connection.setup.timeout.ms", "8000")
            .set("log_level", "0")
            // librdkafka backs off up to 10 s between reconnects by default, longer than a
            // short --broker-timeout: a broker back after a 2 s outage was not used again in time.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000");
        // rdkafka sets the level again after creating the client (to Error unless told), and
        // librdkafka then prints raw `%3|...|FAIL|` lines to stderr on every reconnect attempt.
        // Sluice reports broker trouble itself, once, in words a person can act on.
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Emerg);
        let protocol = match (&self.sasl, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(s) = &self.sasl {
            c.set("sasl.mechanism", s.mechanism.as_str())
                .set("sasl.username", &s.username)
                .set("sasl.password", &s.password);
        }
        if let Some(t) = &self.tls {
            for (key, file) in [
                ("ssl.ca.location", &t.ca_file),
                ("ssl.certificate.location", &t.cert_file),
                ("ssl.key.location", &t.key_file),
            ] {
                if let Some(f) = file {
                    if !std::path::Path::new(f).exists() {
                        return Err(BusError::Config(format!("{key}: file {f} does not exist")));
                    }
                    c.set(key, f);
                }
            }
        }
        Ok(c)
    }
}
