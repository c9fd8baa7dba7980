//! Connection settings: a region, and credentials from the standard AWS chain (environment,
//! profiles, SSO, instance metadata) or static keys whose secret lives in the keyring.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct SqsConfig {
    pub region: String,
    pub profile: Option<String>,
    /// Another SQS-compatible endpoint (LocalStack, moto, ElasticMQ).
    pub endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for SqsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConfig")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("endpoint_url", &self.endpoint_url)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SqsConfig {
    /// Where requests go, for messages.
    pub(crate) fn place(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("sqs.{}.amazonaws.com", self.region))
    }

    pub(crate) async fn client(&self, timeout: Duration) -> aws_sdk_sqs::Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    // Long polls wait up to a few seconds on the server.
                    .operation_attempt_timeout(timeout.max(Duration::from_secs(25)))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &self.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        if let (Some(k), Some(s)) = (&self.access_key_id, &self.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                k, s, None, None, "sluice",
            ));
        }
        aws_sdk_sqs::Client::new(&loader.load().await)
    }
}
