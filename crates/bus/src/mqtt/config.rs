//! The client's options built from the settings, for MQTT 3.1.1 (`rumqttc`) and 5
//! (`rumqttc::v5`). The password is kept out of Debug output.

use crate::BusError;
use rumqttc::tokio_native_tls::native_tls;
use rumqttc::{TlsConfiguration, Transport};
use std::time::Duration;

/// The largest packet the protocol can express (remaining length 268,435,455 plus its fixed
/// header): the limit when the broker names none (MQTT 3.1.1 never does).
pub(crate) const PROTOCOL_MAX_PACKET: u32 = 268_435_460;

/// Pings this often (rumqttc's MQTT 5 client allows no less): a broker that stops answering
/// is noticed after two missed pings.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// MQTT 5; else 3.1.1.
    pub v5: bool,
    /// Prefix of the client id.
    pub client_id: String,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("v5", &self.v5)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// `mqtt[s]://HOST[:PORT][/]` as host, port (1883, or 8883 with TLS) and whether it says TLS.
pub(crate) fn parse_url(url: &str) -> Result<(String, u16, bool), BusError> {
    let bad = |why: &str| {
        BusError::Invalid(format!(
            "--url {url:?}: {why} (expected mqtt://HOST:PORT or mqtts://HOST:PORT)"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        _ => return Err(bad("unknown scheme")),
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.contains('?') {
        return Err(bad("MQTT URLs have no path"));
    }
    if authority.contains('@') {
        return Err(bad("give the user with --username, the password apart"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("bad port"))?,
        None if tls => 8883,
        None => 1883,
    };
    Ok((host, port, tls))
}

fn read(path: &str) -> Result<Vec<u8>, BusError> {
    std::fs::read(path).map_err(|e| BusError::MissingFile(format!("TLS file {path}: {e}")))
}

impl MqttConfig {
    /// `HOST:PORT`, for messages.
    pub(crate) fn place(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// What errors call this connection.
    pub(crate) fn what(&self, name: &str) -> String {
        format!(
            "MQTT {} broker at {} ({name})",
            if self.v5 { "5" } else { "3.1.1" },
            self.place()
        )
    }

    /// A client id of its own for every connection, so two Sluice readers never take over
    /// each other's connection (a broker drops the older client with the same id).
    fn client_id(&self) -> String {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{}-{}", self.client_id, &suffix[..12])
    }

    fn transport(&self) -> Result<Transport, BusError> {
        if !self.tls {
            return Ok(Transport::Tcp);
        }
        let tls_err = |e: native_tls::Error| BusError::Invalid(format!("TLS setup: {e}"));
        let mut b = native_tls::TlsConnector::builder();
        if let Some(ca) = &self.tls_ca {
            let cert = native_tls::Certificate::from_pem(&read(ca)?)
                .map_err(|e| BusError::Invalid(format!("--tls-ca {ca}: {e}")))?;
            b.add_root_certificate(cert);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let id = native_tls::Identity::from_pkcs8(&read(cert)?, &read(key)?).map_err(|e| {
                BusError::Invalid(format!("--tls-cert {cert} / --tls-key {key}: {e}"))
            })?;
            b.identity(id);
        }
        let connector = b.build().map_err(tls_err)?;
        Ok(Transport::tls_with_config(
            TlsConfiguration::NativeConnector(connector),
        ))
    }

    pub(crate) fn v4_options(&self) -> Result<rumqttc::MqttOptions, BusError> {
        let mut o = rumqttc::MqttOptions::new(self.client_id(), self.host.clone(), self.port);
        o.set_keep_alive(KEEP_ALIVE)
            // A clean session: the broker keeps nothing of ours once we disconnect.
            .set_clean_session(true)
            .set_max_packet_size(PROTOCOL_MAX_PACKET as usize, PROTOCOL_MAX_PACKET as usize)
            .set_request_channel_capacity(100)
            .set_transport(self.transport()?);
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        Ok(o)
    }

    pub(crate) fn v5_options(
        &self,
        timeout: Duration,
    ) -> Result<rumqttc::v5::MqttOptions, BusError> {
        let mut o = rumqttc::v5::MqttOptions::new(self.client_id(), self.host.clone(), self.port);
        o.set_keep_alive(KEEP_ALIVE)
            // Clean start with a session expiry of 0: the session ends with the connection.
            .set_clean_start(true)
            .set_session_expiry_interval(Some(0))
            .set_max_packet_size(Some(PROTOCOL_MAX_PACKET))
            .set_request_channel_capacity(100)
            .set_connection_timeout(timeout.as_secs().max(1))
            .set_transport(self.transport()?);
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:11883").unwrap(),
            ("127.0.0.1".into(), 11883, false)
        );
        assert_eq!(
            parse_url("mqtts://b.example/").unwrap(),
            ("b.example".into(), 8883, true)
        );
        assert_eq!(
            parse_url("mqtt://[::1]").unwrap(),
            ("::1".into(), 1883, false)
        );
        assert!(parse_url("mqtt://h:0").is_err());
        assert!(parse_url("mqtt://h/path").is_err());
        assert!(parse_url("http://h").is_err());
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = MqttConfig {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>"));
    }
}
