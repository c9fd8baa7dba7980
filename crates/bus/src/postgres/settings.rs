//! PostgreSQL connection settings as `connection add postgres` takes them and `config.toml`
//! keeps them: the URL without its password (kept apart, keyring), and optionally a slot and
//! publication of the user's own to read from.
//!
//! Sluice creates (`capture --create-slot`) and drops (`--drop-slot`) only the slot and
//! publication named `sluice_CONNECTION_DATABASE`; a `slot` or `publication` named here is the user's,
//! read and never changed.

use super::{Postgres, PostgresConfig};
use crate::settings::{non_empty, ConnectionSettings, Summary};
use crate::{userinfo, BusError, Connector};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct PostgresSettings {
    /// `postgres://USER@HOST:PORT/DB`; the CLI sends it as `brokers`.
    #[serde(alias = "brokers")]
    pub url: String,
    /// A logical replication slot (pgoutput) of the user's own to read; default Sluice's
    /// `sluice_CONNECTION_DATABASE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The publication that slot reads; default Sluice's `sluice_CONNECTION_DATABASE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
}

/// A name Sluice writes into replication commands: PostgreSQL's own rule for slot names
/// (lowercase letters, digits, underscores), which leaves nothing to quote or inject.
pub(crate) fn check_name(flag: &str, name: &str) -> Result<(), BusError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(BusError::Invalid(format!(
            "--set {flag}={name:?}: 1 to 63 lowercase letters, digits and underscores"
        )));
    }
    Ok(())
}

/// Sluice's own slot and publication name for a connection to a database: slot names are
/// the whole server's, so the database is part of it (`sluice_CONNECTION_DATABASE`, in
/// PostgreSQL's characters, at most its 63).
pub(crate) fn own_name(connection: &str, database: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut n = format!("sluice_{}_{}", clean(connection), clean(database));
    n.truncate(63);
    n
}

impl ConnectionSettings for PostgresSettings {
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err(BusError::Invalid(
                "--url is required for postgres (postgres://USER@HOST:PORT/DB)".into(),
            ));
        }
        let parts = userinfo::split(url)?
            .filter(|u| u.scheme == "postgres" || u.scheme == "postgresql")
            .ok_or_else(|| {
                BusError::Invalid("--url: expected postgres://USER@HOST:PORT/DB".into())
            })?;
        if parts.user.is_none() {
            return Err(BusError::Invalid(
                "--url: name the user (postgres://USER@HOST:PORT/DB)".into(),
            ));
        }
        let secret = match (non_empty(secret), parts.password.clone()) {
            (Some(_), Some(_)) => {
                return Err(BusError::Invalid(
                    "the password is both in --url and given apart: give one of them".into(),
                ))
            }
            (given, in_url) => given.or(in_url.filter(|p| !p.is_empty())),
        };
        let s = PostgresSettings {
            url: parts.with_user(),
            slot: non_empty(self.slot),
            publication: non_empty(self.publication),
        };
        if let Some(n) = &s.slot {
            check_name("slot", n)?;
        }
        if let Some(n) = &s.publication {
            check_name("publication", n)?;
        }
        s.config(None)?;
        Ok((s, secret))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        let config = self.config(secret)?;
        Ok(Box::new(Postgres {
            name: name.to_string(),
            own: own_name(name, &config.database),
            config,
            slot: self.slot.clone(),
            publication: self.publication.clone(),
        }))
    }

    fn summary(&self) -> Summary {
        let u = userinfo::split(&self.url).ok().flatten();
        Summary {
            place: u.as_ref().map_or_else(|| self.url.clone(), |u| u.bare()),
            auth: match u.and_then(|u| u.user) {
                Some(user) => format!("user {user}"),
                None => "none".into(),
            },
            tls: false,
        }
    }
}

impl PostgresSettings {
    fn config(&self, password: Option<String>) -> Result<PostgresConfig, BusError> {
        let u = userinfo::split(&self.url)?.ok_or_else(|| {
            BusError::Invalid("--url: expected postgres://USER@HOST:PORT/DB".into())
        })?;
        let (host, port) = match u.host.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>()
                    .map_err(|_| BusError::Invalid(format!("--url: port {p:?} is not a number")))?,
            ),
            _ => (u.host.trim_matches(['[', ']']).to_string(), 5432),
        };
        if host.is_empty() {
            return Err(BusError::Invalid("--url: name the host".into()));
        }
        let path = u.rest.split(['?', '#']).next().unwrap_or("");
        let database = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
            .decode_utf8()
            .map_err(|_| BusError::Invalid("--url: the database name is not UTF-8".into()))?
            .into_owned();
        let user = u.user.clone().unwrap_or_default();
        Ok(PostgresConfig {
            host,
            port,
            database: if database.is_empty() {
                user.clone()
            } else {
                database
            },
            user,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> PostgresSettings {
        PostgresSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_password_leaves_the_url_and_the_parts_are_read() {
        let (s, pw) = settings(" postgres://ada:s%40cret@db.local:6543/shop ")
            .checked(None)
            .unwrap();
        assert_eq!(s.url, "postgres://ada@db.local:6543/shop");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let c = s.config(pw).unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.database.as_str(),
                c.user.as_str()
            ),
            ("db.local", 6543, "shop", "ada")
        );
        assert!(!format!("{c:?}").contains("s@cret"));
        let (s, _) = settings("postgresql://ada@127.0.0.1/")
            .checked(None)
            .unwrap();
        let c = s.config(None).unwrap();
        assert_eq!((c.port, c.database.as_str()), (5432, "ada"));
        assert_eq!(s.summary().place, "postgresql://127.0.0.1/");
    }

    #[test]
    fn bad_settings_name_what_to_fix() {
        for (s, says) in [
            (settings(""), "--url is required"),
            (settings("mysql://a@h/db"), "expected postgres://"),
            (settings("postgres://h/db"), "name the user"),
            (settings("postgres://a@h:x/db"), "not a number"),
            (
                PostgresSettings {
                    slot: Some("Bad-Slot".into()),
                    ..settings("postgres://a@h/db")
                },
                "--set slot",
            ),
        ] {
            let e = s.checked(None).unwrap_err().to_string();
            assert!(e.contains(says), "{e} (wanted {says})");
        }
        let e = settings("postgres://a:pw@h/db")
            .checked(Some("pw2".into()))
            .unwrap_err();
        assert!(e.to_string().contains("give one"), "{e}");
        assert_eq!(own_name("Prod DB-1", "shop"), "sluice_prod_db_1_shop");
        assert_eq!(own_name(&"x".repeat(80), "shop").len(), 63);
    }
}
