//! Connection profiles and topic mappings, kept in `config.toml` in the config folder.
//! Secrets live in the OS keyring (see `secrets.rs`); the file holds one only as a fallback,
//! and is always written with 0600 permissions.

use crate::error::{ApiError, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use sluice_bus::Settings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionProfile>,
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Redaction rules (`sluice redact add`), in the order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<sluice_capture::RedactRule>,
}

/// Where a connection's password is kept.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum PasswordStore {
    Keyring,
    File,
}

/// One saved connection: its bus's settings (the `bus` key says which) and where its secrets
/// are kept. Files written before settings were typed had one flat set of fields for every
/// bus; the settings types accept those field names, so such files load and are written back
/// in the new shape.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionProfile {
    #[serde(flatten)]
    pub settings: Settings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_store: Option<PasswordStore>,
    /// Only when no keyring was available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A Confluent-compatible Schema Registry for framed payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_username: Option<String>,
    /// `basic` (username and password) or `bearer` (a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_secret_store: Option<PasswordStore>,
    /// Only when no keyring was available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_secret: Option<String>,
}

impl ConnectionProfile {
    pub fn new(settings: Settings) -> Self {
        ConnectionProfile {
            settings,
            password_store: None,
            password: None,
            registry_url: None,
            registry_username: None,
            registry_auth: None,
            registry_secret_store: None,
            registry_secret: None,
        }
    }
}

impl std::fmt::Debug for ConnectionProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionProfile")
            .field("settings", &self.settings)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("registry_url", &self.registry_url)
            .field(
                "registry_secret",
                &self.registry_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// How one topic's values (and keys) decode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
pub struct Mapping {
    pub connection: String,
    pub topic: String,
    pub value_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Kept with the lake (`LAKE/_sluice/mappings.toml`) for everyone who opens it, rather
    /// than in this user's config; a mapping of the user's own for the same source wins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// The mappings kept with a lake, in `LAKE/_sluice/mappings.toml`: only mappings, never a
/// connection or anything secret, since everyone who can read the lake reads this file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SharedMappings {
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Redaction rules (`sluice redact add`), in the order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<sluice_capture::RedactRule>,
}

impl SharedMappings {
    fn path(shared_dir: &Path) -> PathBuf {
        shared_dir.join("mappings.toml")
    }

    pub(crate) fn load(shared_dir: &Path) -> Result<SharedMappings> {
        read_toml(&Self::path(shared_dir))
    }

    /// Writes atomically (aside, then renamed), readable by everyone who reads the lake.
    pub(crate) fn save(&self, shared_dir: &Path) -> Result<()> {
        let path = Self::path(shared_dir);
        let mut stored = self.clone();
        for m in &mut stored.mappings {
            m.shared = false;
        }
        let text = toml::to_string_pretty(&stored)
            .map_err(|e| ApiError::new(ErrorCode::Config, e.to_string()))?;
        write_aside(&path, text.as_bytes(), false)
    }

    pub(crate) fn fingerprint_path(shared_dir: &Path) -> PathBuf {
        Self::path(shared_dir)
    }
}

/// Writes `bytes` to `path` whole or not at all: into a temp file of its own beside it (two
/// writers never share one), fsynced, then renamed. `private` files are owner-only (0600).
pub(crate) fn write_aside(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let io = |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// A TOML file's contents, the default when it does not exist.
fn read_toml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            ApiError::new(
                ErrorCode::Config,
                format!("{}: {}", path.display(), e.to_string().trim()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(ApiError::new(
            ErrorCode::Io,
            format!("{}: {e}", path.display()),
        )),
    }
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid connection name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

impl Config {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    pub fn load(dir: &Path) -> Result<Config> {
        read_toml(&Self::path(dir))
    }

    /// Writes atomically with owner-only permissions.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| ApiError::new(ErrorCode::Config, e.to_string()))?;
        write_aside(&Self::path(dir), text.as_bytes(), true)
    }

    pub fn connection(&self, name: &str) -> Result<&ConnectionProfile> {
        self.connections.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.connections.keys().map(String::as_str).collect();
            ApiError::new(
                ErrorCode::NotFound,
                if known.is_empty() {
                    format!("unknown connection {name:?}: none configured yet (sluice connection add kafka NAME --brokers HOST:PORT)")
                } else {
                    format!("unknown connection {name:?} (known: {})", known.join(", "))
                },
            )
        })
    }

    /// The sources of a connection that have a mapping.
    pub fn mapped_sources(&self, connection: &str) -> Vec<String> {
        self.mappings
            .iter()
            .filter(|m| m.connection == connection)
            .map(|m| m.topic.clone())
            .collect()
    }

    pub fn mapping(&self, connection: &str, topic: &str) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.connection == connection && m.topic == topic)
    }
}
