//! MQTT connection settings as `connection add` takes them and `config.toml` keeps them: the
//! broker URL (without a password), the user, TLS files, the protocol version and a client id
//! prefix. The password is kept apart.

use super::config::{parse_url, MqttConfig};
use super::Mqtt;
use crate::settings::non_empty;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

/// Protocol versions as `--set version=...` names them, the default first.
pub(crate) const VERSIONS: [&str; 2] = ["5", "3.1.1"];

/// The client id prefix when none is set; a random suffix makes every connection's id unique.
pub(crate) const DEFAULT_CLIENT_ID: &str = "sluice";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct MqttSettings {
    /// `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (TLS).
    #[serde(alias = "brokers")]
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Implied by `mqtts://`, `tls_ca` or `tls_cert`.
    pub tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// `5` (default) or `3.1.1`.
    pub version: String,
    /// Prefix of the client id (a random suffix is added per connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            url: String::new(),
            username: None,
            tls: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            version: VERSIONS[0].into(),
            client_id: None,
        }
    }
}

/// `5`, `5.0`, `v5` are 5; `3.1.1`, `3`, `4` (the protocol level byte), `311` are 3.1.1.
pub(crate) fn normal_version(v: &str) -> Result<&'static str, BusError> {
    match v.trim().trim_start_matches(['v', 'V']) {
        "" | "5" | "5.0" => Ok("5"),
        "3.1.1" | "3" | "311" | "4" => Ok("3.1.1"),
        other => Err(BusError::Invalid(format!(
            "--set version={other}: expected 5 or 3.1.1"
        ))),
    }
}

impl MqttSettings {
    fn config(&self, password: Option<String>) -> Result<MqttConfig, BusError> {
        let (host, port, tls_scheme) = parse_url(&self.url)?;
        Ok(MqttConfig {
            host,
            port,
            tls: self.tls || tls_scheme || self.tls_ca.is_some() || self.tls_cert.is_some(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            username: self.username.clone(),
            password,
            v5: normal_version(&self.version)? == "5",
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.into()),
        })
    }
}

impl ConnectionSettings for MqttSettings {
    /// A user or password written in the URL moves out of it (the password to be kept apart).
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let given = self.url.trim();
        let (url, url_user, url_password) = match crate::userinfo::split(given)? {
            Some(u) => (u.bare(), u.user, u.password),
            None => (given.to_string(), None, None),
        };
        let (_, _, tls_scheme) = parse_url(&url)?;
        let username = non_empty(self.username).or(url_user);
        let password = secret.or(url_password);
        if password.is_some() && username.is_none() {
            return Err(BusError::Invalid(
                "a password needs --username (MQTT sends a password only with a user name)".into(),
            ));
        }
        let (tls_ca, tls_cert, tls_key) = (
            non_empty(self.tls_ca),
            non_empty(self.tls_cert),
            non_empty(self.tls_key),
        );
        if tls_key.is_some() != tls_cert.is_some() {
            return Err(BusError::Invalid(
                "a client certificate needs both --tls-cert and --tls-key (PEM files)".into(),
            ));
        }
        for f in [&tls_ca, &tls_cert, &tls_key].into_iter().flatten() {
            if !std::path::Path::new(f).exists() {
                return Err(BusError::MissingFile(format!(
                    "TLS file {f} does not exist"
                )));
            }
        }
        let client_id = non_empty(self.client_id);
        if let Some(c) = &client_id {
            if c.len() > 64 || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                return Err(BusError::Invalid(format!(
                    "--set client_id={c:?}: expected a short prefix without spaces \
                     (a random suffix is added)"
                )));
            }
        }
        let tls = self.tls || tls_scheme || tls_ca.is_some() || tls_cert.is_some();
        let settings = MqttSettings {
            url,
            username,
            tls,
            tls_ca,
            tls_cert,
            tls_key,
            version: normal_version(&self.version)?.to_string(),
            client_id,
        };
        Ok((settings, password))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        Ok(Box::new(Mqtt {
            name: name.to_string(),
            config: self.config(secret)?,
        }))
    }

    fn summary(&self) -> Summary {
        let tls_scheme = parse_url(&self.url).map(|(_, _, t)| t).unwrap_or(false);
        Summary {
            place: format!("{} (MQTT {})", self.url, self.version),
            auth: match (&self.username, &self.tls_cert) {
                (Some(u), Some(_)) => format!("user {u}, client certificate"),
                (Some(u), None) => format!("user {u}"),
                (None, Some(_)) => "client certificate".into(),
                (None, None) => "none".into(),
            },
            tls: self.tls || tls_scheme || self.tls_ca.is_some() || self.tls_cert.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(url: &str) -> MqttSettings {
        MqttSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn credentials_move_out_of_the_url() {
        let (s, pw) = given("mqtt://alice:s3cret@broker:1884")
            .checked(None)
            .unwrap();
        assert_eq!(s.url, "mqtt://broker:1884");
        assert_eq!(s.username.as_deref(), Some("alice"));
        assert_eq!(pw.as_deref(), Some("s3cret"));
        assert!(!format!("{s:?}").contains("s3cret"));
        // The secret given apart wins over one in the URL.
        let (_, pw) = given("mqtt://alice:old@broker")
            .checked(Some("new".into()))
            .unwrap();
        assert_eq!(pw.as_deref(), Some("new"));
    }

    #[test]
    fn versions_are_normalised_and_checked() {
        for (v, want) in [("5", "5"), ("v5", "5"), ("3.1.1", "3.1.1"), ("4", "3.1.1")] {
            let s = MqttSettings {
                version: v.into(),
                ..given("mqtt://h:1883")
            };
            assert_eq!(s.checked(None).unwrap().0.version, want);
        }
        let s = MqttSettings {
            version: "3.1".into(),
            ..given("mqtt://h:1883")
        };
        assert!(matches!(s.checked(None), Err(BusError::Invalid(m)) if m.contains("version")));
    }

    #[test]
    fn bad_settings_name_the_flag_to_fix() {
        assert!(
            matches!(given("amqp://h").checked(None), Err(BusError::Invalid(m)) if m.contains("--url"))
        );
        assert!(matches!(
            given("mqtt://h:99999").checked(None),
            Err(BusError::Invalid(_))
        ));
        assert!(matches!(
            given("mqtt://h").checked(Some("pw".into())),
            Err(BusError::Invalid(m)) if m.contains("--username")
        ));
        let s = MqttSettings {
            tls_ca: Some("/no/such/ca.pem".into()),
            ..given("mqtts://h")
        };
        assert!(matches!(s.checked(None), Err(BusError::MissingFile(_))));
        let s = MqttSettings {
            tls_cert: Some("/etc/hostname".into()),
            ..given("mqtts://h")
        };
        assert!(matches!(s.checked(None), Err(BusError::Invalid(m)) if m.contains("--tls-key")));
    }

    #[test]
    fn tls_is_implied_by_the_scheme() {
        let (s, _) = given("mqtts://h").checked(None).unwrap();
        assert!(s.tls && s.summary().tls);
        let (s, _) = given("mqtt://h").checked(None).unwrap();
        assert!(!s.tls);
    }
}
