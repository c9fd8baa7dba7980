//! Redis connection settings as `connection add` takes them and `config.toml` keeps them: the
//! URL without its password (kept apart), the ACL user, TLS files, which entry field is the
//! payload, and whether replay keeps entry ids.

use super::config::{split_password, url_user};
use super::{Redis, RedisConfig};
use crate::settings::non_empty;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis[s]://[USER@]HOST:PORT/DB`; the CLI sends it as `brokers`.
    #[serde(alias = "brokers")]
    pub url: String,
    /// ACL user (Redis 6+), when the URL names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Implied by `rediss://`, `tls_ca` or `tls_cert`.
    pub tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// The stream entry field that is the payload; default the first of `payload`, `data`,
    /// `body` an entry has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_field: Option<String>,
}

impl RedisSettings {
    fn config(&self, password: Option<String>) -> RedisConfig {
        RedisConfig {
            url: self.url.clone(),
            username: self.username.clone(),
            password,
            tls: self.tls,
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            payload_field: self.payload_field.clone(),
        }
    }
}

impl ConnectionSettings for RedisSettings {
    /// A password written in the URL moves out of it, to be kept apart; one given apart
    /// (`--password-stdin`) wins.
    fn checked(self, password: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let (url, in_url) = split_password(self.url.trim())?;
        let username = non_empty(self.username);
        if let (Some(given), Some(named)) = (&username, url_user(&url)) {
            if *given != named {
                return Err(BusError::Invalid(format!(
                    "--username {given:?} and the URL's user {named:?} differ: give one"
                )));
            }
        }
        let (tls_ca, tls_cert, tls_key) = (
            non_empty(self.tls_ca),
            non_empty(self.tls_cert),
            non_empty(self.tls_key),
        );
        for f in [&tls_ca, &tls_cert, &tls_key].into_iter().flatten() {
            if !std::path::Path::new(f).exists() {
                return Err(BusError::MissingFile(format!(
                    "TLS file {f} does not exist"
                )));
            }
        }
        if tls_cert.is_some() != tls_key.is_some() {
            return Err(BusError::Invalid(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
        let settings = RedisSettings {
            tls: self.tls || url.starts_with("rediss://") || tls_ca.is_some() || tls_cert.is_some(),
            url,
            username,
            tls_ca,
            tls_cert,
            tls_key,
            payload_field: non_empty(self.payload_field),
        };
        // The redis client's own reading of the URL (port, database number).
        settings.config(None).check_url()?;
        Ok((settings, password.or(in_url)))
    }

    fn open(&self, name: &str, password: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        Ok(Box::new(Redis {
            name: name.to_string(),
            config: self.config(password),
        }))
    }

    fn summary(&self) -> Summary {
        let c = self.config(None);
        Summary {
            place: self.url.clone(),
            auth: match c.user() {
                Some(u) => format!("user {u}"),
                None => "default user".into(),
            },
            tls: c.uses_tls(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(url: &str) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn checks_the_url_and_keeps_the_password_apart() {
        let (s, pw) = given("redis://app:pw%3A1@127.0.0.1:16379/3")
            .checked(None)
            .unwrap();
        assert_eq!(s.url, "redis://app@127.0.0.1:16379/3");
        assert_eq!(pw.as_deref(), Some("pw:1"));
        assert!(!s.tls);
        let (s, pw) = given("rediss://h:6380/0")
            .checked(Some("apart".into()))
            .unwrap();
        assert!(s.tls && pw.as_deref() == Some("apart"));
        let (_, pw) = given("redis://:inurl@h:1")
            .checked(Some("apart".into()))
            .unwrap();
        assert_eq!(
            pw.as_deref(),
            Some("apart"),
            "the password given apart wins"
        );
        for bad in [
            "h:6379",
            "http://h:1",
            "redis://h:notaport",
            "redis://h:1/notadb",
        ] {
            assert!(given(bad).checked(None).is_err(), "{bad}");
        }
        let mut s = given("redis://bob@h:1");
        s.username = Some("alice".into());
        assert!(s.checked(None).is_err(), "two different users");
        let mut s = given("redis://h:1");
        s.payload_field = Some(" ".into());
        assert_eq!(s.checked(None).unwrap().0.payload_field, None);
    }

    #[test]
    fn summary_says_user_and_tls() {
        let mut s = given("rediss://h:1");
        s.username = Some("app".into());
        let sum = s.summary();
        assert!(sum.tls && sum.auth == "user app");
    }
}
