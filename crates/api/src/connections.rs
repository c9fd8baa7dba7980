//! Connections: adding (settings checked by their bus, secrets to the keyring), listing,
//! testing, removing, and opening a connector for the other commands. Nothing here knows one
//! bus from another: the settings check themselves and open their connector.

use crate::config::{self, Config, ConnectionProfile, PasswordStore};
use crate::error::{ApiError, ErrorCode, Result};
use crate::{registry, secrets, Sluice, CONNECT_TIMEOUT};
use serde::Serialize;
use sluice_bus::{Connector, Health, Settings, SourceInfo};

/// `connection add` input.
/// `connection add` input: the bus's settings (`bus` says which, its fields beside it, as in
/// `sluice_bus::BusKind::fields`), the password or secret key, and an optional Schema
/// Registry with basic auth (user and password) or a bearer token. Secrets go to the keyring.
#[derive(Clone, serde::Deserialize, Serialize, ts_rs::TS)]
pub struct ConnectionAdd {
    #[serde(default)]
    pub name: String,
    #[serde(flatten)]
    pub settings: Settings,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub registry_url: Option<String>,
    #[serde(default)]
    pub registry_username: Option<String>,
    #[serde(default)]
    pub registry_password: Option<String>,
    #[serde(default)]
    pub registry_token: Option<String>,
    #[serde(default)]
    pub replace: bool,
}

impl std::fmt::Debug for ConnectionAdd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectionAdd")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("password", &hidden(&self.password))
            .field("registry_url", &self.registry_url)
            .field("registry_username", &self.registry_username)
            .field("registry_password", &hidden(&self.registry_password))
            .field("registry_token", &hidden(&self.registry_token))
            .field("replace", &self.replace)
            .finish()
    }
}

impl ConnectionAdd {
    /// A connection named `name` with these settings and nothing else.
    pub fn new(name: &str, settings: Settings) -> Self {
        ConnectionAdd {
            name: name.into(),
            settings,
            password: None,
            registry_url: None,
            registry_username: None,
            registry_password: None,
            registry_token: None,
            replace: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ConnectionAdded {
    pub name: String,
    pub password_store: Option<PasswordStore>,
    /// Set when the password had to go into the config file.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ConnectionSummary {
    pub name: String,
    pub bus: String,
    pub brokers: String,
    pub auth: String,
    pub tls: bool,
    /// The schema registry's URL, when the connection has one.
    pub registry: Option<String>,
}

impl Sluice {
    pub fn connection_add(&self, req: ConnectionAdd) -> Result<ConnectionAdded> {
        config::validate_name(&req.name)?;
        let mut cfg = self.config()?;
        if cfg.connections.contains_key(&req.name) && !req.replace {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "connection {:?} already exists (remove it first, or pass --replace)",
                    req.name
                ),
            ));
        }
        let (settings, password) = req.settings.clone().checked(req.password.clone())?;
        let mut profile = ConnectionProfile::new(settings);
        let old = cfg.connections.get(&req.name);
        let registry_secret = registry::configure(&req, &mut profile, old)?;
        let (password_store, in_file, warning) =
            self.keep_password(&req.name, secrets::Secret::Bus, &password);
        profile.password_store = password_store;
        profile.password = in_file;
        let (store, in_file, registry_warning) =
            self.keep_password(&req.name, secrets::Secret::Registry, &registry_secret);
        if registry_secret.is_some() || profile.registry_auth.is_none() {
            profile.registry_secret_store = store;
            profile.registry_secret = in_file;
        }
        let warning = warning.or(registry_warning);
        cfg.connections.insert(req.name.clone(), profile);
        cfg.save(&self.config_dir)?;
        Ok(ConnectionAdded {
            name: req.name,
            password_store,
            warning,
        })
    }

    /// Puts a password in the keyring, or (with a warning) in the 0600 config file.
    fn keep_password(
        &self,
        name: &str,
        which: secrets::Secret,
        password: &Option<String>,
    ) -> (Option<PasswordStore>, Option<String>, Option<String>) {
        match password {
            Some(pw) => match secrets::store(name, which, pw) {
                PasswordStore::Keyring => (Some(PasswordStore::Keyring), None, None),
                PasswordStore::File => (
                    Some(PasswordStore::File),
                    Some(pw.clone()),
                    Some(format!(
                        "no OS keyring is available: the password is stored in {} (readable only by you)",
                        Config::path(&self.config_dir).display()
                    )),
                ),
            },
            None => (None, None, None),
        }
    }

    pub fn connection_list(&self) -> Result<Vec<ConnectionSummary>> {
        Ok(self
            .config()?
            .connections
            .iter()
            .map(|(name, p)| {
                let summary = p.settings.summary();
                ConnectionSummary {
                    name: name.clone(),
                    bus: p.settings.bus().as_str().to_string(),
                    brokers: summary.place,
                    auth: summary.auth,
                    tls: summary.tls,
                    registry: p.registry_url.clone(),
                }
            })
            .collect())
    }

    /// The saved settings of a connection, for its edit form (never a secret).
    pub fn connection_get(&self, name: &str) -> Result<ConnectionAdd> {
        let cfg = self.config()?;
        let p = cfg.connection(name)?;
        Ok(ConnectionAdd {
            registry_url: p.registry_url.clone(),
            registry_username: p.registry_username.clone(),
            replace: true,
            ..ConnectionAdd::new(name, p.settings.clone())
        })
    }

    pub fn connection_remove(&self, name: &str) -> Result<()> {
        let mut cfg = self.config()?;
        cfg.connection(name)?;
        cfg.connections.remove(name);
        cfg.mappings.retain(|m| m.connection != name);
        cfg.save(&self.config_dir)?;
        secrets::remove(name);
        Ok(())
    }

    /// Whether the broker answers, and the schema registry when the connection has one.
    pub fn connection_test(&self, name: &str) -> Result<Health> {
        let mut h = self.connector(name)?.check(CONNECT_TIMEOUT)?;
        let cfg = self.config()?;
        h.registry =
            registry::check(&self.config_dir, name, cfg.connection(name)?).map_err(|e| {
                ApiError::new(
                    e.code,
                    format!("{name}: the bus answered, but {}", e.message),
                )
            })?;
        Ok(h)
    }

    pub(crate) fn connector(&self, name: &str) -> Result<Box<dyn Connector>> {
        let cfg = self.config()?;
        let p = cfg.connection(name)?;
        let password = match p.password_store {
            Some(PasswordStore::File) => p.password.clone(),
            Some(PasswordStore::Keyring) => Some(secrets::load(name, secrets::Secret::Bus)?),
            None => None,
        };
        Ok(p.settings.open(name, password)?)
    }

    /// Every topic (exchange, queue), or only the named ones.
    pub fn topics(&self, name: &str, only: &[String]) -> Result<Vec<SourceInfo>> {
        let connector = self.connector(name)?;
        if only.is_empty() {
            return Ok(connector.sources(CONNECT_TIMEOUT)?);
        }
        only.iter()
            .map(|t| {
                connector.source(t, CONNECT_TIMEOUT)?.ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!("unknown topic {t:?} on {name}"),
                    )
                })
            })
            .collect()
    }
}
