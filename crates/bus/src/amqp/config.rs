//! Connection settings. The URL is kept without its password, which lives apart (keyring)
//! and is put back only when connecting; Debug output never shows it.

use crate::BusError;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct AmqpConfig {
    /// `amqp[s]://USER@HOST:PORT/VHOST`, without the password.
    pub url: String,
    pub password: Option<String>,
    /// Management HTTP API, e.g. `http://HOST:15672` (default: the AMQP host on port 15672).
    pub management_url: Option<String>,
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("management_url", &self.management_url)
            .finish()
    }
}

/// A URL split into the part to store and the password to keep apart.
pub fn split_password(url: &str) -> Result<(String, Option<String>), BusError> {
    let uri: AMQPUri = url
        .parse()
        .map_err(|e: String| BusError::Config(format!("--url: {e}")))?;
    match crate::userinfo::split(url)? {
        None => Err(BusError::Config(
            "--url: expected amqp://USER@HOST:PORT/VHOST".into(),
        )),
        Some(u) if u.password.is_some() => {
            Ok((u.with_user(), Some(uri.authority.userinfo.password)))
        }
        Some(_) => Ok((url.to_string(), None)),
    }
}

impl AmqpConfig {
    pub(crate) fn uri(&self) -> Result<AMQPUri, BusError> {
        let mut uri: AMQPUri = self
            .url
            .parse()
            .map_err(|e: String| BusError::Config(format!("AMQP URL: {e}")))?;
        if let Some(p) = &self.password {
            uri.authority.userinfo.password = p.clone();
        }
        Ok(uri)
    }

    /// The user named in the URL (AMQP's default `guest` when none is).
    pub fn user(&self) -> Option<String> {
        self.uri().ok().map(|u| u.authority.userinfo.username)
    }

    /// `HOST:PORT`, for messages.
    pub(crate) fn host(&self) -> String {
        self.uri()
            .map(|u| format!("{}:{}", u.authority.host, u.authority.port))
            .unwrap_or_else(|_| self.url.clone())
    }

    pub(crate) fn vhost(&self) -> String {
        self.uri().map(|u| u.vhost).unwrap_or_else(|_| "/".into())
    }

    /// The management API base URL and credentials.
    pub(crate) fn management(&self) -> Option<(String, String, String)> {
        let uri = self.uri().ok()?;
        let base = match &self.management_url {
            Some(m) => m.trim_end_matches('/').to_string(),
            None => format!("http://{}:15672", uri.authority.host),
        };
        Some((
            base,
            uri.authority.userinfo.username,
            uri.authority.userinfo.password,
        ))
    }

    pub(crate) async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Connection, BusError> {
        let uri = self.uri()?;
        let what = format!("RabbitMQ at {} ({name})", self.host());
        let props = ConnectionProperties::default().with_connection_name("sluice".into());
        match tokio::time::timeout(timeout, Connection::connect_uri(uri, props)).await {
            Err(_) => Err(BusError::Unreachable {
                what,
                reason: format!("no answer within {} s", timeout.as_secs()),
            }),
            Ok(Err(e)) => {
                let reason = e.to_string();
                if reason.contains("ACCESS_REFUSED") || reason.contains("auth") {
                    Err(BusError::Auth { what, reason })
                } else {
                    Err(BusError::Unreachable { what, reason })
                }
            }
            Ok(Ok(c)) => Ok(c),
        }
    }
}
