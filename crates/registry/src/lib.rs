//! A client for Confluent-compatible Schema Registries (Confluent, Karapace, Redpanda,
//! Apicurio's ccompat API): fetches a schema by id or GUID with every schema it references,
//! and keeps each on disk so events captured earlier still decode when the registry is gone.
//!
//! It owns HTTP, authentication and the disk cache. It must not decode payloads (the codec
//! crate does, through [`SchemaSource`]) and never puts a credential in an error or a log.

use base64::Engine as _;
use sluice_codec::{
    NamedSchema, RegisteredSchema, SchemaKind, SchemaRef, SchemaSource, SourceError,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to reach a registry. `Debug` hides the secret.
#[derive(Clone, PartialEq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://localhost:8081`.
    pub url: String,
    pub auth: Option<RegistryAuth>,
}

#[derive(Clone, PartialEq)]
pub enum RegistryAuth {
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            None => "none".to_string(),
            Some(RegistryAuth::Basic { username, .. }) => format!("basic as {username}"),
            Some(RegistryAuth::Bearer(_)) => "bearer <redacted>".to_string(),
        };
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("auth", &auth)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("schema registry {url}: authentication failed (HTTP {status}); check the registry user and password or token")]
    Auth { url: String, status: u16 },
    #[error("schema registry {url}: {what} not found")]
    NotFound { url: String, what: String },
    #[error("schema registry {url}: {message}")]
    Protocol { url: String, message: String },
}

/// What `check` found.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryHealth {
    pub subjects: usize,
    pub latency_ms: u64,
}

const TIMEOUT: Duration = Duration::from_secs(10);
/// A failed fetch is not retried for every message that names the same schema.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// References nest; a cycle or an absurd depth stops here.
const MAX_REFERENCE_DEPTH: usize = 32;

pub struct Registry {
    config: RegistryConfig,
    cache_dir: PathBuf,
    agent: ureq::Agent,
    failures: Mutex<HashMap<SchemaRef, (Instant, SourceError)>>,
}

impl Registry {
    /// `cache_dir` holds this registry's schemas (one JSON file per id or GUID).
    pub fn new(config: RegistryConfig, cache_dir: PathBuf) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Registry {
            config,
            cache_dir,
            agent,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn base(&self) -> &str {
        self.config.url.trim_end_matches('/')
    }

    /// The URL as shown in messages: without any user info someone put in it.
    fn shown_url(&self) -> String {
        let u = self.base();
        match (u.find("://"), u.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &u[..s + 3], &u[at + 1..]),
            _ => u.to_string(),
        }
    }

    fn get(&self, path: &str) -> Result<serde_json::Value, RegistryError> {
        let url = format!("{}{path}", self.base());
        let mut req = self.agent.get(&url).header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        match &self.config.auth {
            Some(RegistryAuth::Basic { username, password }) => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                req = req.header("Authorization", &format!("Basic {token}"));
            }
            Some(RegistryAuth::Bearer(token)) => {
                req = req.header("Authorization", &format!("Bearer {token}"));
            }
            None => {}
        }
        let shown = self.shown_url();
        let mut resp = req.call().map_err(|e| RegistryError::Unreachable {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 => serde_json::from_str(&body).map_err(|e| RegistryError::Protocol {
                url: shown,
                message: format!("GET {path}: not JSON: {e}"),
            }),
            401 | 403 => Err(RegistryError::Auth { url: shown, status }),
            404 => Err(RegistryError::NotFound {
                url: shown,
                what: path.trim_start_matches('/').to_string(),
            }),
            _ => Err(RegistryError::Protocol {
                url: shown,
                message: format!(
                    "GET {path}: HTTP {status}: {}",
                    body.chars().take(200).collect::<String>()
                ),
            }),
        }
    }

    /// Whether the registry answers, and how many subjects it holds.
    pub fn check(&self) -> Result<RegistryHealth, RegistryError> {
        let start = Instant::now();
        let v = self.get("/subjects")?;
        Ok(RegistryHealth {
            subjects: v.as_array().map_or(0, Vec::len),
            latency_ms: start.elapsed().as_millis() as u64,
        })
    }

    fn cache_path(&self, r: SchemaRef) -> PathBuf {
        match r {
            SchemaRef::Id(id) => self.cache_dir.join(format!("id-{id}.json")),
            SchemaRef::Guid(g) => self
                .cache_dir
                .join(format!("guid-{}.json", uuid::Uuid::from_bytes(g))),
        }
    }

    /// The schema `r` names, from the disk cache or else the registry (then cached).
    pub fn fetch(&self, r: SchemaRef) -> Result<RegisteredSchema, RegistryError> {
        let path = self.cache_path(r);
        if let Some(s) = read_cached(&path) {
            return Ok(s);
        }
        let v = match r {
            SchemaRef::Id(id) => self.get(&format!("/schemas/ids/{id}"))?,
            SchemaRef::Guid(g) => {
                self.get(&format!("/schemas/guids/{}", uuid::Uuid::from_bytes(g)))?
            }
        };
        let s = self.resolve(&v, 0)?;
        write_cached(&path, &s);
        Ok(s)
    }

    /// A registry schema object (`schema`, `schemaType`, `references`) with its references
    /// fetched, flattened dependencies first.
    fn resolve(
        &self,
        v: &serde_json::Value,
        depth: usize,
    ) -> Result<RegisteredSchema, RegistryError> {
        let protocol = |message: String| RegistryError::Protocol {
            url: self.shown_url(),
            message,
        };
        if depth > MAX_REFERENCE_DEPTH {
            return Err(protocol(
                "schema references nest too deeply (a cycle?)".into(),
            ));
        }
        let schema = v
            .get("schema")
            .and_then(|s| s.as_str())
            .ok_or_else(|| protocol("response has no \"schema\"".into()))?
            .to_string();
        let kind_name = v.get("schemaType").and_then(|t| t.as_str());
        let kind = SchemaKind::parse(kind_name)
            .ok_or_else(|| protocol(format!("unsupported schemaType {kind_name:?}")))?;
        let mut references: Vec<NamedSchema> = Vec::new();
        for r in v
            .get("references")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(subject), Some(version)) = (
                r.get("name").and_then(|n| n.as_str()),
                r.get("subject").and_then(|n| n.as_str()),
                r.get("version"),
            ) else {
                return Err(protocol(format!("malformed reference {r}")));
            };
            let version = version
                .as_i64()
                .map(|v| v.to_string())
                .or_else(|| version.as_str().map(str::to_string))
                .unwrap_or_else(|| "latest".into());
            let referenced =
                self.get(&format!("/subjects/{}/versions/{version}", encode(subject)))?;
            let inner = self.resolve(&referenced, depth + 1)?;
            for dep in inner.references {
                if !references.iter().any(|x| x.name == dep.name) {
                    references.push(dep);
                }
            }
            if !references.iter().any(|x| x.name == name) {
                references.push(NamedSchema {
                    name: name.to_string(),
                    schema: inner.schema,
                });
            }
        }
        Ok(RegisteredSchema {
            kind,
            schema,
            references,
        })
    }
}

impl SchemaSource for Registry {
    /// A [`RegistryError`] (the codec sees it as a `SourceError::Failed`).
    fn schema(&self, r: SchemaRef) -> Result<RegisteredSchema, SourceError> {
        if let Some((at, e)) = self.failures.lock().ok().and_then(|f| f.get(&r).cloned()) {
            if at.elapsed() < RETRY_AFTER {
                return Err(e);
            }
        }
        self.fetch(r).map_err(|e| {
            tracing::warn!("{r}: {e}");
            let e = SourceError::failed(e);
            if let Ok(mut f) = self.failures.lock() {
                f.insert(r, (Instant::now(), e.clone()));
            }
            e
        })
    }
}

fn read_cached(path: &Path) -> Option<RegisteredSchema> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Atomically, so a reader never sees half a schema; a failed write only costs a refetch.
fn write_cached(path: &Path, s: &RegisteredSchema) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("schema"),
        std::process::id()
    ));
    if let Ok(text) = serde_json::to_vec_pretty(s) {
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Everything but URL-unreserved characters is escaped.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a subject for a URL path (subjects are often file names with slashes).
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let c = RegistryConfig {
            url: "http://user:hunter2@127.0.0.1:9".into(),
            auth: Some(RegistryAuth::Bearer("tok-secret".into())),
        };
        assert!(!format!("{c:?}").contains("tok-secret"));
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::new(c, dir.path().into());
        let e = r.fetch(SchemaRef::Id(1)).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:9") && !e.contains("hunter2"), "{e}");
        // A failure is remembered rather than retried for every message.
        let first = r.schema(SchemaRef::Id(1)).unwrap_err();
        assert_eq!(r.schema(SchemaRef::Id(1)).unwrap_err(), first);
    }

    #[test]
    fn the_disk_cache_answers_without_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::new(
            RegistryConfig {
                url: "http://127.0.0.1:9".into(),
                auth: None,
            },
            dir.path().into(),
        );
        let s = RegisteredSchema {
            kind: SchemaKind::Avro,
            schema: "\"long\"".into(),
            references: vec![],
        };
        write_cached(&r.cache_path(SchemaRef::Id(5)), &s);
        assert_eq!(r.fetch(SchemaRef::Id(5)).unwrap(), s);
        assert_eq!(encode("shop/v1/a b.proto"), "shop%2Fv1%2Fa%20b.proto");
    }
}
