//! Passwords: the OS keyring when one answers, else the config file (0600) with a warning.
//! Nothing here ever logs or formats a secret.

use crate::config::PasswordStore;
use crate::error::{ApiError, ErrorCode, Result};

const SERVICE: &str = "sluice";

/// Which of a connection's secrets: the bus's own password or the schema registry's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secret {
    Bus,
    Registry,
}

fn entry(connection: &str, which: Secret) -> Option<keyring::Entry> {
    if std::env::var("SLUICE_KEYRING").is_ok_and(|v| v == "off" || v == "0") {
        return None;
    }
    let account = match which {
        Secret::Bus => format!("connection:{connection}"),
        Secret::Registry => format!("registry:{connection}"),
    };
    keyring::Entry::new(SERVICE, &account).ok()
}

/// Stores a password, preferring the keyring. Returns where it went.
pub(crate) fn store(connection: &str, which: Secret, password: &str) -> PasswordStore {
    if let Some(e) = entry(connection, which) {
        if e.set_password(password).is_ok() && e.get_password().is_ok_and(|p| p == password) {
            return PasswordStore::Keyring;
        }
    }
    PasswordStore::File
}

pub(crate) fn load(connection: &str, which: Secret) -> Result<String> {
    let e = entry(connection, which)
        .ok_or_else(|| ApiError::new(ErrorCode::Config, "the OS keyring is not available"))?;
    e.get_password().map_err(|err| {
        ApiError::new(
            ErrorCode::Config,
            format!("cannot read the password of {connection:?} from the OS keyring: {err}"),
        )
    })
}

pub(crate) fn remove(connection: &str) {
    for which in [Secret::Bus, Secret::Registry] {
        if let Some(e) = entry(connection, which) {
            let _ = e.delete_credential();
        }
    }
}
