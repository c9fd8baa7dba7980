//! SQS connection settings as `connection add` takes them and `config.toml` keeps them: a
//! region, and either the standard AWS credential chain (optionally a named profile) or a
//! static access key whose secret is kept apart.

use super::{Sqs, SqsConfig};
use crate::settings::non_empty;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct SqsSettings {
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_profile: Option<String>,
    /// Another SQS-compatible endpoint (LocalStack, moto, ElasticMQ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Files written before settings were typed call it `sasl_username`.
    #[serde(alias = "sasl_username", skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

impl ConnectionSettings for SqsSettings {
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        if self.region.is_empty() {
            return Err(BusError::Invalid("--region is required for sqs".into()));
        }
        let s = SqsSettings {
            region: self.region,
            aws_profile: non_empty(self.aws_profile),
            endpoint_url: non_empty(self.endpoint_url),
            access_key_id: non_empty(self.access_key_id),
        };
        if s.access_key_id.is_some() != secret.is_some() {
            return Err(BusError::Invalid(
                "static keys need both --access-key-id and the secret key (--password-stdin or SLUICE_PASSWORD)"
                    .into(),
            ));
        }
        Ok((s, secret))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        Ok(Box::new(Sqs {
            name: name.to_string(),
            config: SqsConfig {
                region: self.region.clone(),
                profile: self.aws_profile.clone(),
                endpoint_url: self.endpoint_url.clone(),
                access_key_id: self.access_key_id.clone(),
                secret_access_key: secret,
            },
        }))
    }

    fn summary(&self) -> Summary {
        Summary {
            place: self
                .endpoint_url
                .clone()
                .unwrap_or_else(|| format!("sqs.{}.amazonaws.com", self.region)),
            auth: match &self.access_key_id {
                Some(k) => format!("access key {k}"),
                None => "AWS credential chain".into(),
            },
            tls: self
                .endpoint_url
                .as_deref()
                .is_none_or(|u| u.starts_with("https://")),
        }
    }
}
