//! The client's config built from the settings, and connecting with it. Debug output never
//! shows the password, token or NKey seed.

use crate::BusError;
use async_nats::{ConnectErrorKind, ConnectOptions, Event};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default, PartialEq)]
pub enum Auth {
    #[default]
    None,
    User {
        user: String,
        password: String,
    },
    Token(String),
    Nkey(String),
    /// The path of a `.creds` file.
    Creds(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            Auth::User { user, .. } => write!(f, "User {{ user: {user:?}, password: <redacted> }}"),
            Auth::Token(_) => write!(f, "Token(<redacted>)"),
            Auth::Nkey(_) => write!(f, "Nkey(<redacted>)"),
            Auth::Creds(path) => write!(f, "Creds({path:?})"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NatsConfig {
    pub urls: Vec<String>,
    pub auth: Auth,
    pub tls: Option<Tls>,
}

/// Why the connection is down and since when (`None` while it is up), kept up to date by the
/// client's event callback: the client reconnects silently, so a reader asks this.
pub(crate) type Down = Arc<Mutex<Option<(Instant, String)>>>;

/// Chooses ring as the process's TLS provider, once. rustls cannot pick one by itself when
/// the build holds two (another dependency brings aws-lc), and would panic at the first TLS
/// connection; an `Err` means a provider was already chosen, which serves as well.
fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
    });
}

impl NatsConfig {
    /// The servers, for messages.
    pub(crate) fn place(&self) -> String {
        self.urls.join(",")
    }

    fn what(&self, name: &str) -> String {
        format!("NATS at {} ({name})", self.place())
    }

    /// Connects within `timeout`. `down` is told of every disconnect and reconnect after that.
    /// A server that asks for TLS gets it even without `--tls`, so the TLS provider is always
    /// chosen first.
    pub(crate) async fn connect(
        &self,
        name: &str,
        timeout: Duration,
        down: Option<Down>,
    ) -> Result<async_nats::Client, BusError> {
        let what = self.what(name);
        tls_provider();
        let mut opts = match &self.auth {
            Auth::None => ConnectOptions::new(),
            Auth::User { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::Token(t) => ConnectOptions::with_token(t.clone()),
            Auth::Nkey(seed) => ConnectOptions::with_nkey(seed.trim().to_string()),
            Auth::Creds(path) => {
                ConnectOptions::with_credentials_file(path)
                    .await
                    .map_err(|e| {
                        BusError::MissingFile(format!(
                            "credentials file {path} cannot be read: {e}"
                        ))
                    })?
            }
        };
        if let Some(tls) = &self.tls {
            opts = opts.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                opts = opts.add_root_certificates(ca.into());
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                opts = opts.add_client_certificate(cert.into(), key.into());
            }
        }
        let first_error: Arc<Mutex<Option<String>>> = Arc::default();
        let seen = first_error.clone();
        opts = opts
            .name("sluice")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            // Frequent pings notice a server that went away without closing the socket, so a
            // reader reports trouble well within a capture's broker timeout.
            .ping_interval(Duration::from_secs(5))
            .event_callback(move |event| {
                let (down, seen) = (down.clone(), seen.clone());
                async move {
                    let now = Instant::now();
                    if let Some(down) = &down {
                        if let Ok(mut d) = down.lock() {
                            match &event {
                                Event::Connected => *d = None,
                                Event::Disconnected | Event::Closed => {
                                    d.get_or_insert((now, format!("the connection is {event}")));
                                }
                                _ => {}
                            }
                        }
                    }
                    if let Event::ServerError(e) = &event {
                        if let Ok(mut s) = seen.lock() {
                            s.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            });
        let urls: Vec<async_nats::ServerAddr> = self
            .urls
            .iter()
            .map(|u| u.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| BusError::Invalid(format!("--url {:?}: {e}", self.place())))?;
        let connecting = opts.connect(urls);
        let limit = timeout + Duration::from_secs(1);
        match tokio::time::timeout(limit, connecting).await {
            Err(_) => Err(BusError::Unreachable {
                what,
                reason: format!("no answer within {} s", timeout.as_secs()),
            }),
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => {
                let server = first_error.lock().ok().and_then(|s| s.clone());
                let reason = match server {
                    Some(s) => format!("{e} ({s})"),
                    None => e.to_string(),
                };
                Err(match e.kind() {
                    ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                        BusError::Auth { what, reason }
                    }
                    _ if reason.to_ascii_lowercase().contains("authorization") => {
                        BusError::Auth { what, reason }
                    }
                    ConnectErrorKind::ServerParse => BusError::Invalid(format!("--url: {reason}")),
                    _ => BusError::Unreachable { what, reason },
                })
            }
        }
    }
}
