//! NATS connection settings as `connection add` takes them and `config.toml` keeps them: the
//! server URL(s), how to authenticate and TLS. The one secret (password, token or NKey seed)
//! is kept apart; a credentials file is named by its path only.

use super::config::{Auth, NatsConfig, Tls};
use super::Nats;
use crate::settings::non_empty;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Serialize};

/// The ways to authenticate, as `--set auth=...` names them.
pub(crate) const AUTH_CHOICES: [&str; 5] = ["none", "user", "token", "nkey", "creds"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct NatsSettings {
    /// `nats://HOST:PORT[,nats://HOST:PORT...]` (`tls://` for TLS).
    #[serde(alias = "brokers")]
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `none`, `user`, `token`, `nkey` or `creds`; inferred when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// A `.creds` file (user JWT and NKey seed) for `auth = creds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_file: Option<String>,
    /// Implied by `tls_ca`, `tls_cert` or a `tls://` URL.
    pub tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

/// Checks one server address: `[nats|tls|ws|wss://]HOST:PORT`.
fn check_url(u: &str) -> Result<(), String> {
    let rest = match u.split_once("://") {
        Some((s, r)) if ["nats", "tls", "ws", "wss"].contains(&s) => r,
        Some((s, _)) => return Err(format!("unknown scheme {s:?} (use nats:// or tls://)")),
        None => u,
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(()),
        None if !host_port.is_empty() => Ok(()),
        _ => Err("expected nats://HOST:PORT".into()),
    }
}

impl NatsSettings {
    /// The chosen way to authenticate, or the one the other settings imply.
    fn auth_choice(&self, has_secret: bool) -> &str {
        match self.auth.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => a,
            None if self.creds_file.is_some() => "creds",
            None if self.username.is_some() => "user",
            None if has_secret => "token",
            None => "none",
        }
    }

    fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    pub(crate) fn config(&self, secret: Option<String>) -> NatsConfig {
        let auth = match (self.auth_choice(secret.is_some()), secret) {
            ("user", pass) => Auth::User {
                user: self.username.clone().unwrap_or_default(),
                password: pass.unwrap_or_default(),
            },
            ("token", Some(t)) => Auth::Token(t),
            ("nkey", Some(seed)) => Auth::Nkey(seed),
            ("creds", _) => Auth::Creds(self.creds_file.clone().unwrap_or_default()),
            _ => Auth::None,
        };
        NatsConfig {
            urls: self.urls(),
            auth,
            tls: self.tls.then(|| Tls {
                ca_file: self.tls_ca.clone(),
                cert_file: self.tls_cert.clone(),
                key_file: self.tls_key.clone(),
            }),
        }
    }
}

impl ConnectionSettings for NatsSettings {
    /// A password or token written in the URL moves out of it, to be kept apart.
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let mut urls = Vec::new();
        let mut username = non_empty(self.username);
        let mut secret = secret.filter(|s| !s.is_empty());
        for u in self.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            // async-nats reads `HOST:PORT` as `nats://HOST:PORT`; so does the split, or a
            // secret in `USER:PASS@HOST` would stay in the URL.
            let full = if u.contains("://") {
                u.to_string()
            } else {
                format!("nats://{u}")
            };
            let (u, user, pass) = match crate::userinfo::split(&full)? {
                Some(i) => match (i.user.clone(), i.password.clone()) {
                    (user, Some(p)) => (i.bare(), user, Some(p)),
                    // A lone userinfo is a token (`nats://TOKEN@HOST`): a secret as well.
                    (Some(token), None) => (i.bare(), None, Some(token)),
                    (None, None) => (i.bare(), None, None),
                },
                None => (u.to_string(), None, None),
            };
            check_url(&u).map_err(|e| BusError::Invalid(format!("--url {u:?}: {e}")))?;
            username = username.or(user);
            secret = secret.or(pass);
            urls.push(u);
        }
        if urls.is_empty() {
            return Err(BusError::Invalid(
                "--url is required for nats (nats://HOST:PORT)".into(),
            ));
        }
        let mut s = NatsSettings {
            url: urls.join(","),
            username,
            auth: non_empty(self.auth).map(|a| a.to_ascii_lowercase()),
            creds_file: non_empty(self.creds_file),
            tls: self.tls,
            tls_ca: non_empty(self.tls_ca),
            tls_cert: non_empty(self.tls_cert),
            tls_key: non_empty(self.tls_key),
        };
        let auth = s.auth_choice(secret.is_some()).to_string();
        if !AUTH_CHOICES.contains(&auth.as_str()) {
            return Err(BusError::Invalid(format!(
                "--set auth={auth}: expected one of {}",
                AUTH_CHOICES.join(", ")
            )));
        }
        let need_secret = |what: &str| {
            BusError::Invalid(format!(
                "auth {auth} needs {what} (--password-stdin or SLUICE_PASSWORD)"
            ))
        };
        match auth.as_str() {
            "user" if s.username.is_none() => {
                return Err(BusError::Invalid("auth user needs --username".into()))
            }
            "user" if secret.is_none() => return Err(need_secret("a password")),
            "token" if secret.is_none() => return Err(need_secret("the token")),
            "nkey" => match &secret {
                None => return Err(need_secret("the NKey seed (SU...)")),
                Some(seed) if !seed.trim().starts_with('S') => {
                    return Err(BusError::Invalid(
                        "auth nkey: the secret must be an NKey seed (it starts with S)".into(),
                    ))
                }
                Some(_) => {}
            },
            "creds" => match &s.creds_file {
                None => {
                    return Err(BusError::Invalid(
                        "auth creds needs --set creds_file=PATH".into(),
                    ))
                }
                Some(f) if !std::path::Path::new(f).exists() => {
                    return Err(BusError::MissingFile(format!(
                        "credentials file {f} does not exist"
                    )))
                }
                Some(_) => {}
            },
            "none" if secret.is_some() => {
                return Err(BusError::Invalid(
                    "a secret was given but auth is none: choose --set auth=user|token|nkey".into(),
                ))
            }
            _ => {}
        }
        // Only the chosen way's inputs are kept: a stale secret must not ride along.
        if auth != "creds" && s.creds_file.is_some() {
            return Err(BusError::Invalid(format!(
                "creds_file is for auth creds, not {auth}"
            )));
        }
        if auth == "creds" {
            secret = None;
        }
        for f in [&s.tls_ca, &s.tls_cert, &s.tls_key].into_iter().flatten() {
            if !std::path::Path::new(f).exists() {
                return Err(BusError::MissingFile(format!(
                    "TLS file {f} does not exist"
                )));
            }
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err(BusError::Invalid(
                "a client certificate needs both --tls-cert and --tls-key".into(),
            ));
        }
        s.tls = s.tls
            || s.tls_ca.is_some()
            || s.tls_cert.is_some()
            || urls
                .iter()
                .any(|u| u.starts_with("tls://") || u.starts_with("wss://"));
        s.auth = Some(auth);
        Ok((s, secret))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        Ok(Box::new(Nats {
            name: name.to_string(),
            config: self.config(secret),
        }))
    }

    fn summary(&self) -> Summary {
        Summary {
            place: self.url.clone(),
            auth: match self.auth_choice(false) {
                "user" => format!("user {}", self.username.as_deref().unwrap_or("?")),
                "token" => "token".into(),
                "nkey" => "NKey".into(),
                "creds" => format!(
                    "credentials file {}",
                    self.creds_file.as_deref().unwrap_or("?")
                ),
                _ => "none".into(),
            },
            tls: self.tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(url: &str) -> NatsSettings {
        NatsSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn auth_is_inferred_and_checked() {
        let (a, secret) = s("nats://127.0.0.1:4222").checked(None).unwrap();
        assert_eq!(a.auth.as_deref(), Some("none"));
        assert_eq!(secret, None);
        let (t, secret) = s("nats://h:4222").checked(Some("tok".into())).unwrap();
        assert_eq!(
            (t.auth.as_deref(), secret.as_deref()),
            (Some("token"), Some("tok"))
        );
        let mut u = s("nats://h:4222");
        u.username = Some("alice".into());
        assert!(matches!(u.clone().checked(None), Err(BusError::Invalid(_))));
        let (u, _) = u.checked(Some("pw".into())).unwrap();
        assert_eq!(u.summary().auth, "user alice");
        let mut n = s("nats://h:4222");
        n.auth = Some("nkey".into());
        assert!(n.clone().checked(Some("not-a-seed".into())).is_err());
        assert!(n.checked(Some("SUAAAA".into())).is_ok());
        let mut c = s("nats://h:4222");
        c.auth = Some("creds".into());
        assert!(c.clone().checked(None).is_err());
        c.creds_file = Some("/no/such/file.creds".into());
        assert!(matches!(c.checked(None), Err(BusError::MissingFile(_))));
        let mut bad = s("nats://h:4222");
        bad.auth = Some("kerberos".into());
        assert!(bad.checked(None).is_err());
    }

    #[test]
    fn password_in_the_url_moves_out() {
        let (a, secret) = s("nats://bob:s3cret@127.0.0.1:4222").checked(None).unwrap();
        assert_eq!(a.url, "nats://127.0.0.1:4222");
        assert_eq!(a.username.as_deref(), Some("bob"));
        assert_eq!(secret.as_deref(), Some("s3cret"));
        assert!(!format!("{a:?}").contains("s3cret"));
        let (t, secret) = s("nats://tok@127.0.0.1:4222").checked(None).unwrap();
        assert_eq!(
            (t.auth.as_deref(), secret.as_deref()),
            (Some("token"), Some("tok"))
        );
        // Without a scheme too (async-nats reads one in): the secret never stays in the URL.
        let (b, secret) = s("bob:s3cret@127.0.0.1:4222").checked(None).unwrap();
        assert_eq!(
            (b.url.as_str(), secret.as_deref()),
            ("nats://127.0.0.1:4222", Some("s3cret"))
        );
    }

    #[test]
    fn urls_and_tls() {
        assert!(s("").checked(None).is_err());
        assert!(s("http://h:80").checked(None).is_err());
        assert!(s("nats://h:notaport").checked(None).is_err());
        let (a, _) = s("tls://h:4222, nats://g:4223").checked(None).unwrap();
        assert!(a.tls);
        assert_eq!(a.config(None).urls, vec!["tls://h:4222", "nats://g:4223"]);
        let mut k = s("nats://h:4222");
        k.tls_ca = Some("/no/ca.pem".into());
        assert!(matches!(k.checked(None), Err(BusError::MissingFile(_))));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let mut u = s("nats://h:4222");
        u.username = Some("alice".into());
        let cfg = u.config(Some("hunter2".into()));
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let cfg = s("nats://h:4222").config(Some("SUSEED".into()));
        assert!(!format!("{cfg:?}").contains("SUSEED"));
    }
}
