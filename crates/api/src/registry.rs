//! A connection's Schema Registry: its settings in the profile (the secret in the keyring),
//! the client built from them, and the on-disk schema cache under `CONFIG/registry/NAME/`.

use crate::config::{ConnectionProfile, PasswordStore};
use crate::error::{ApiError, ErrorCode, Result};
use crate::secrets::{self, Secret};
use crate::ConnectionAdd;
use sluice_codec::RegistryDecoder;
use sluice_registry::{Registry, RegistryAuth, RegistryConfig, RegistryError};
use std::path::Path;
use std::sync::Arc;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::Unreachable { .. } => ErrorCode::Unreachable,
            RegistryError::Auth { .. } => ErrorCode::AuthFailed,
            RegistryError::NotFound { .. } => ErrorCode::NotFound,
            RegistryError::Protocol { .. } => ErrorCode::Schema,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Checks the registry options of `connection add` and sets them on the profile. Returns the
/// secret (password or token) still to be stored. Replacing a connection (the app's edit form)
/// without a new secret keeps the old one when the registry and user are unchanged.
pub(crate) fn configure(
    req: &ConnectionAdd,
    profile: &mut ConnectionProfile,
    old: Option<&ConnectionProfile>,
) -> Result<Option<String>> {
    let invalid = |m: &str| Err(ApiError::new(ErrorCode::InvalidInput, m));
    let Some(url) = req.registry_url.as_deref().filter(|u| !u.trim().is_empty()) else {
        if req.registry_username.is_some()
            || req.registry_password.is_some()
            || req.registry_token.is_some()
        {
            return invalid("registry credentials need --registry URL");
        }
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return invalid("--registry must be an http:// or https:// URL");
    }
    if url
        .split("://")
        .nth(1)
        .is_some_and(|rest| rest.split('/').next().unwrap_or("").contains('@'))
    {
        return invalid("put registry credentials in --registry-user and SLUICE_REGISTRY_PASSWORD, not in the URL");
    }
    profile.registry_url = Some(url.trim_end_matches('/').to_string());
    if let Some(o) = old.filter(|o| {
        req.registry_password.is_none()
            && req.registry_token.is_none()
            && o.registry_url == profile.registry_url
            && o.registry_username == req.registry_username
            && o.registry_secret_store.is_some()
    }) {
        profile.registry_username = o.registry_username.clone();
        profile.registry_auth = o.registry_auth.clone();
        profile.registry_secret_store = o.registry_secret_store;
        profile.registry_secret = o.registry_secret.clone();
        return Ok(None);
    }
    match (&req.registry_username, &req.registry_password, &req.registry_token) {
        (Some(_), _, Some(_)) => invalid("use either a registry user and password or a token, not both"),
        (Some(u), Some(p), None) => {
            profile.registry_username = Some(u.clone());
            profile.registry_auth = Some("basic".into());
            Ok(Some(p.clone()))
        }
        (Some(_), None, None) => invalid("--registry-user needs a password (--registry-password-stdin or SLUICE_REGISTRY_PASSWORD)"),
        (None, Some(_), None) => invalid("a registry password needs --registry-user"),
        (None, _, Some(t)) => {
            profile.registry_auth = Some("bearer".into());
            Ok(Some(t.clone()))
        }
        (None, None, None) => Ok(None),
    }
}

/// The client for `name`'s registry, or `None` when it has none.
pub(crate) fn client(
    config_dir: &Path,
    name: &str,
    p: &ConnectionProfile,
) -> Result<Option<Registry>> {
    let Some(url) = &p.registry_url else {
        return Ok(None);
    };
    let secret = match p.registry_secret_store {
        Some(PasswordStore::File) => p.registry_secret.clone(),
        Some(PasswordStore::Keyring) => Some(secrets::load(name, Secret::Registry)?),
        None => None,
    };
    let auth = match (p.registry_auth.as_deref(), secret) {
        (Some("basic"), Some(password)) => Some(RegistryAuth::Basic {
            username: p.registry_username.clone().unwrap_or_default(),
            password,
        }),
        (Some("bearer"), Some(token)) => Some(RegistryAuth::Bearer(token)),
        _ => None,
    };
    Ok(Some(Registry::new(
        RegistryConfig {
            url: url.clone(),
            auth,
        },
        config_dir.join("registry").join(name),
    )))
}

/// A decoder for `name`'s framed payloads, or `None` when it has no registry.
pub(crate) fn decoder(
    config_dir: &Path,
    name: &str,
    p: &ConnectionProfile,
) -> Result<Option<Arc<RegistryDecoder>>> {
    Ok(client(config_dir, name, p)?.map(|r| Arc::new(RegistryDecoder::new(Arc::new(r)))))
}

/// What `connection test` says about the registry.
pub(crate) fn check(
    config_dir: &Path,
    name: &str,
    p: &ConnectionProfile,
) -> Result<Option<String>> {
    let Some(r) = client(config_dir, name, p)? else {
        return Ok(None);
    };
    let h = r.check()?;
    Ok(Some(format!(
        "schema registry {} answered in {} ms, {} subject(s)",
        p.registry_url.as_deref().unwrap_or_default(),
        h.latency_ms,
        h.subjects
    )))
}
