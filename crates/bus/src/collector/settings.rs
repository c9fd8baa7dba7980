//! Collector settings as `connection add collector` and `sluice collect` take them and
//! `config.toml` keeps them: where to listen for HTTP and for gRPC, and the largest request
//! body. The bearer token clients must send is the connection's secret (keyring); without
//! one, each run draws a fresh token and prints it.
//!
//! Addresses are `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1), with an IP for the host:
//! an endpoint listens on the loopback interface unless another address is named.

use super::Collector;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where HTTP listens when neither endpoint is named.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7880";
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// Shorter tokens could be guessed; the ones Sluice draws are 32 hex digits.
const MIN_TOKEN: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct CollectorSettings {
    /// `HOST:PORT` for `POST /v1/events/{source}`; empty listens for no HTTP (when gRPC is
    /// named) or on 127.0.0.1:7880.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub http: String,
    /// `HOST:PORT` for the gRPC service `sluice.collector.v1.Collector`; empty: no gRPC.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub grpc: String,
    /// Largest request body (bytes) before a 413; 16 MiB when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_body_bytes: String,
}

/// An address as a person writes it, with 127.0.0.1 for a missing host.
pub(crate) fn parse_addr(flag: &str, text: &str) -> Result<SocketAddr, BusError> {
    let t = text.trim();
    let bad = |why: &str| BusError::Invalid(format!("--{flag} {t:?}: {why}"));
    if let Ok(port) = t.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        let port = port.parse().map_err(|_| bad("not a port number"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse::<SocketAddr>()
        .map_err(|_| bad("expected HOST:PORT with an IP address (127.0.0.1:7880), :PORT or PORT"))
}

impl CollectorSettings {
    /// The HTTP and gRPC addresses to listen on (at least one).
    pub(crate) fn addresses(&self) -> Result<(Option<SocketAddr>, Option<SocketAddr>), BusError> {
        let grpc = match self.grpc.trim() {
            "" => None,
            g => Some(parse_addr("grpc", g)?),
        };
        let http = match (self.http.trim(), grpc) {
            ("", Some(_)) => None,
            ("", None) => Some(parse_addr("http", DEFAULT_HTTP)?),
            (h, _) => Some(parse_addr("http", h)?),
        };
        if let (Some(h), Some(g)) = (http, grpc) {
            if h == g && h.port() != 0 {
                return Err(BusError::Invalid(format!(
                    "--http and --grpc both name {h}: give each its own port"
                )));
            }
        }
        Ok((http, grpc))
    }

    pub(crate) fn max_body(&self) -> Result<usize, BusError> {
        match self.max_body_bytes.trim() {
            "" => Ok(DEFAULT_MAX_BODY_BYTES),
            t => t.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                BusError::Invalid(format!(
                    "--set max_body_bytes={t:?}: expected a number of bytes above 0"
                ))
            }),
        }
    }
}

/// A token given by hand: printable ASCII without spaces (it travels in a header), long
/// enough not to be guessed. The error never shows it.
fn check_token(token: &str) -> Result<(), BusError> {
    if token.len() < MIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BusError::Invalid(format!(
            "the collector's token (its secret) must be at least {MIN_TOKEN} printable characters without spaces; leave it out and each run draws one"
        )));
    }
    Ok(())
}

impl ConnectionSettings for CollectorSettings {
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let secret = crate::settings::non_empty(secret).map(|t| t.trim().to_string());
        if let Some(t) = &secret {
            check_token(t)?;
        }
        let (http, grpc) = self.addresses()?;
        let s = CollectorSettings {
            http: http.map(|a| a.to_string()).unwrap_or_default(),
            grpc: grpc.map(|a| a.to_string()).unwrap_or_default(),
            max_body_bytes: self.max_body_bytes.trim().to_string(),
        };
        s.max_body()?;
        Ok((s, secret))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        let (http, grpc) = self.addresses()?;
        Ok(Box::new(Collector {
            name: name.to_string(),
            http,
            grpc,
            max_body: self.max_body()?,
            token: secret,
        }))
    }

    fn summary(&self) -> Summary {
        let (http, grpc) = self.addresses().unwrap_or((None, None));
        let mut place = Vec::new();
        if let Some(h) = http {
            place.push(format!("http://{h}/v1/events/{{source}}"));
        }
        if let Some(g) = grpc {
            place.push(format!("grpc {g}"));
        }
        Summary {
            place: place.join(", "),
            auth: "bearer token".into(),
            tls: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(http: &str, grpc: &str) -> CollectorSettings {
        CollectorSettings {
            http: http.into(),
            grpc: grpc.into(),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_default_to_loopback() {
        let (s, t) = settings("", "").checked(None).unwrap();
        assert_eq!(
            (s.http.as_str(), s.grpc.as_str(), t),
            (DEFAULT_HTTP, "", None)
        );
        let (s, _) = settings("", "9000").checked(None).unwrap();
        assert_eq!((s.http.as_str(), s.grpc.as_str()), ("", "127.0.0.1:9000"));
        let (s, _) = settings(":8000", "localhost:9000").checked(None).unwrap();
        assert_eq!(
            (s.http.as_str(), s.grpc.as_str()),
            ("127.0.0.1:8000", "127.0.0.1:9000")
        );
        let (s, _) = settings("0.0.0.0:8000", "[::1]:0").checked(None).unwrap();
        assert_eq!(
            (s.http.as_str(), s.grpc.as_str()),
            ("0.0.0.0:8000", "[::1]:0")
        );
        assert!(s
            .summary()
            .place
            .contains("http://0.0.0.0:8000/v1/events/{source}"));
    }

    #[test]
    fn bad_settings_name_the_flag_and_never_the_token() {
        for (s, says) in [
            (settings("example.com:80", ""), "--http"),
            (settings("", "99999"), "--grpc"),
            (settings("8000", "8000"), "own port"),
            (
                CollectorSettings {
                    max_body_bytes: "lots".into(),
                    ..Default::default()
                },
                "max_body_bytes",
            ),
        ] {
            let e = s.checked(None).unwrap_err().to_string();
            assert!(e.contains(says), "{e} (wanted {says})");
        }
        let e = settings("", "")
            .checked(Some("short s3cret".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16") && !e.contains("s3cret"), "{e}");
        let (_, t) = settings("", "")
            .checked(Some(" 0123456789abcdef0123 \n".into()))
            .unwrap();
        assert_eq!(t.as_deref(), Some("0123456789abcdef0123"));
    }
}
