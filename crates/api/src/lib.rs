//! The command API: every action Sluice offers, as plain blocking functions over plain data,
//! called alike by the `sluice` CLI and the desktop app's thin command wrappers.
//!
//! This crate owns configuration (profiles, mappings, secrets, schema store) and wires
//! connectors, codecs, the lake and replay together. It must not print, prompt, or know about
//! terminals or windows: hosts render results and progress. Errors are `{code, message}`.

mod capture;
mod commands;
mod config;
mod edit;
mod error;
mod jobs;
mod registry;
mod render;
mod schemas;
mod secrets;

pub use capture::{CaptureOptions, CaptureProgress, DEFAULT_MAX_PAYLOAD_BYTES};
pub use commands::{typescript, Session, COMMANDS};
pub use config::{Config, ConnectionProfile, Mapping, PasswordStore};
pub use edit::{parse_edits, ReplayEdit};
pub use error::{ApiError, ErrorCode, Result};
pub use jobs::{JobInfo, JobUpdate};
pub use render::EventView;
pub use render::{event_json, headers_json};
pub use schemas::{SchemaAdded, SchemaProblem};
pub use sluice_bus::{Delivery, Health, QueueRead, ReadOptions, SourceInfo};
pub use sluice_lake::{run_if_worker, SqlLimits};
pub use sluice_lake::{FlushPolicy, RedecodeProgress, SqlResult};
pub use sluice_model::{Event, StartFrom};
pub use sluice_replay::{ReplayProgress, ReplaySummary};

use capture::{EventBuilder, TopicDecoders};
use serde::Serialize;
use sluice_bus::amqp::{Amqp, AmqpConfig};
use sluice_bus::kafka::{Kafka, KafkaConfig, Sasl, Tls};
use sluice_bus::sqs::{Sqs, SqsConfig};
use sluice_bus::Connector;
use sluice_codec::Decoder;
use sluice_lake::{Lake, Query, Redecoded, StoredPayload};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection may take to answer before we say it is unreachable (the whole
/// command stays under the promised 10 seconds).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Where Sluice keeps its configuration and its lake.
#[derive(Debug, Clone)]
pub struct Sluice {
    pub config_dir: PathBuf,
    pub lake_dir: PathBuf,
}

/// `connection add` input.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize, ts_rs::TS)]
#[serde(default)]
pub struct ConnectionAdd {
    pub name: String,
    /// `kafka` or `amqp`.
    pub bus: String,
    /// Kafka: `HOST:PORT[,..]`. AMQP: `amqp[s]://USER@HOST:PORT/VHOST` (a password in it is
    /// moved to the keyring).
    pub brokers: String,
    /// AMQP: the management HTTP API (default `http://HOST:15672`).
    pub management_url: Option<String>,
    /// SQS: region, named AWS profile, other endpoint, and a static access key id (its secret
    /// is the password).
    pub region: Option<String>,
    pub aws_profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// A Confluent-compatible Schema Registry, with basic auth (user and password) or a
    /// bearer token; the secret goes to the keyring.
    pub registry_url: Option<String>,
    pub registry_username: Option<String>,
    pub registry_password: Option<String>,
    pub registry_token: Option<String>,
    pub replace: bool,
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

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SchemaListing {
    pub message_types: Vec<String>,
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    Parquet,
}

#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// `CONNECTION:TOPIC`, `CONNECTION:EXCHANGE[/ROUTING_KEY]` or `CONNECTION:QUEUE`; unused with
    /// `to_origin`.
    pub to: String,
    /// Send each event back where it came from (dead-letter headers, or Sluice's own).
    pub to_origin: bool,
    pub rate: Option<u32>,
    pub limit: Option<u64>,
    pub keep_partition: bool,
    /// Events to send as the user edited them (`--edit`).
    pub edits: Vec<ReplayEdit>,
    /// How long to wait for a destination that stops answering (default 30 s).
    pub broker_timeout: Option<Duration>,
}

fn default_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "sluice", "sluice")
}

impl Sluice {
    /// Uses the given folders, else the platform's config and data folders.
    pub fn new(config_dir: Option<PathBuf>, lake_dir: Option<PathBuf>) -> Result<Self> {
        let dirs = default_dirs();
        let missing = || {
            ApiError::new(
                ErrorCode::Config,
                "cannot find a home folder: pass --config and --lake",
            )
        };
        let config_dir = match config_dir {
            Some(d) => d,
            None => dirs
                .as_ref()
                .ok_or_else(missing)?
                .config_dir()
                .to_path_buf(),
        };
        let lake_dir = match lake_dir {
            Some(d) => d,
            None => dirs.as_ref().ok_or_else(missing)?.data_dir().join("lake"),
        };
        Ok(Sluice {
            config_dir,
            lake_dir,
        })
    }

    fn config(&self) -> Result<Config> {
        Config::load(&self.config_dir)
    }

    fn lake(&self) -> Result<Lake> {
        Ok(Lake::open(&self.lake_dir)?)
    }

    // ---- connections -------------------------------------------------------------------

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
        let (mut profile, password) = match req.bus.as_str() {
            "kafka" => Self::kafka_profile(&req)?,
            "amqp" => Self::amqp_profile(&req)?,
            "sqs" => Self::sqs_profile(&req)?,
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("unknown bus {other:?}: use kafka, amqp or sqs"),
                ))
            }
        };
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

    /// A checked Kafka profile (password not yet stored) and its password.
    fn kafka_profile(req: &ConnectionAdd) -> Result<(ConnectionProfile, Option<String>)> {
        let mechanism = match &req.sasl_mechanism {
            Some(m) => Some(
                m.parse::<sluice_bus::kafka::SaslMechanism>()
                    .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?,
            ),
            None if req.username.is_some() => Some(sluice_bus::kafka::SaslMechanism::Plain),
            None => None,
        };
        if mechanism.is_some() && (req.username.is_none() || req.password.is_none()) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "SASL needs --username and a password (--password-stdin or SLUICE_PASSWORD)",
            ));
        }
        for f in [&req.tls_ca, &req.tls_cert, &req.tls_key]
            .into_iter()
            .flatten()
        {
            if !Path::new(f).exists() {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("TLS file {f} does not exist"),
                ));
            }
        }
        if req.brokers.split(',').any(|b| {
            b.trim()
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "--brokers {:?}: expected HOST:PORT[,HOST:PORT...]",
                    req.brokers
                ),
            ));
        }
        let profile = ConnectionProfile {
            bus: "kafka".into(),
            brokers: req.brokers.clone(),
            sasl_mechanism: mechanism.map(|m| m.as_str().to_string()),
            sasl_username: req.username.clone(),
            tls: req.tls || req.tls_ca.is_some() || req.tls_cert.is_some(),
            tls_ca: req.tls_ca.clone(),
            tls_cert: req.tls_cert.clone(),
            tls_key: req.tls_key.clone(),
            ..Default::default()
        };
        Ok((profile, req.password.clone()))
    }

    /// A checked RabbitMQ profile, its URL stripped of any password, and the password.
    fn amqp_profile(req: &ConnectionAdd) -> Result<(ConnectionProfile, Option<String>)> {
        if !(req.brokers.starts_with("amqp://") || req.brokers.starts_with("amqps://")) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "--url: expected amqp://USER@HOST:PORT/VHOST (or amqps://)",
            ));
        }
        let (url, in_url) = sluice_bus::amqp::split_password(&req.brokers)?;
        let user = AmqpConfig {
            url: url.clone(),
            ..Default::default()
        }
        .user();
        let profile = ConnectionProfile {
            bus: "amqp".into(),
            tls: url.starts_with("amqps://"),
            brokers: url,
            sasl_username: user,
            management_url: req.management_url.clone(),
            ..Default::default()
        };
        Ok((profile, req.password.clone().or(in_url)))
    }

    /// A checked SQS profile and the static secret key, if any.
    fn sqs_profile(req: &ConnectionAdd) -> Result<(ConnectionProfile, Option<String>)> {
        let Some(region) = req.region.clone().filter(|r| !r.is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "--region is required for sqs",
            ));
        };
        if req.access_key_id.is_some() != req.password.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "static keys need both --access-key-id and the secret key (--password-stdin or SLUICE_PASSWORD)",
            ));
        }
        let profile = ConnectionProfile {
            bus: "sqs".into(),
            brokers: req
                .endpoint_url
                .clone()
                .unwrap_or_else(|| format!("sqs.{region}.amazonaws.com")),
            sasl_username: req.access_key_id.clone(),
            tls: req
                .endpoint_url
                .as_deref()
                .is_none_or(|u| u.starts_with("https://")),
            region: Some(region),
            aws_profile: req.aws_profile.clone(),
            endpoint_url: req.endpoint_url.clone(),
            ..Default::default()
        };
        Ok((profile, req.password.clone()))
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

    fn bus_of(p: &ConnectionProfile) -> Result<sluice_model::Bus> {
        sluice_model::Bus::parse(&p.bus).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Config,
                format!("unknown bus {:?} in the configuration", p.bus),
            )
        })
    }

    pub fn connection_list(&self) -> Result<Vec<ConnectionSummary>> {
        Ok(self
            .config()?
            .connections
            .iter()
            .map(|(name, p)| ConnectionSummary {
                name: name.clone(),
                bus: p.bus.clone(),
                brokers: p.brokers.clone(),
                auth: match (&p.sasl_mechanism, &p.sasl_username) {
                    (Some(m), Some(u)) => format!("SASL {m} as {u}"),
                    (None, Some(u)) if p.bus == "sqs" => format!("access key {u}"),
                    (None, Some(u)) => format!("user {u}"),
                    (None, None) if p.bus == "sqs" => "AWS credential chain".into(),
                    _ => "none".into(),
                },
                tls: p.tls,
                registry: p.registry_url.clone(),
            })
            .collect())
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

    fn connector(&self, name: &str) -> Result<Box<dyn Connector>> {
        let cfg = self.config()?;
        let p = cfg.connection(name)?;
        let password = match p.password_store {
            Some(PasswordStore::File) => p.password.clone(),
            Some(PasswordStore::Keyring) => Some(secrets::load(name, secrets::Secret::Bus)?),
            None => None,
        };
        if Self::bus_of(p)? == sluice_model::Bus::Sqs {
            return Ok(Box::new(Sqs {
                name: name.to_string(),
                config: SqsConfig {
                    region: p.region.clone().unwrap_or_default(),
                    profile: p.aws_profile.clone(),
                    endpoint_url: p.endpoint_url.clone(),
                    access_key_id: p.sasl_username.clone(),
                    secret_access_key: password,
                },
            }));
        }
        if Self::bus_of(p)? == sluice_model::Bus::Amqp {
            return Ok(Box::new(Amqp {
                name: name.to_string(),
                config: AmqpConfig {
                    url: p.brokers.clone(),
                    password,
                    management_url: p.management_url.clone(),
                },
            }));
        }
        let sasl = match (&p.sasl_mechanism, &p.sasl_username) {
            (Some(m), Some(u)) => {
                let password = password.unwrap_or_default();
                Some(Sasl {
                    mechanism: m
                        .parse()
                        .map_err(|e: String| ApiError::new(ErrorCode::Config, e))?,
                    username: u.clone(),
                    password,
                })
            }
            _ => None,
        };
        let tls = p.tls.then(|| Tls {
            ca_file: p.tls_ca.clone(),
            cert_file: p.tls_cert.clone(),
            key_file: p.tls_key.clone(),
        });
        Ok(Box::new(Kafka {
            name: name.to_string(),
            config: KafkaConfig {
                brokers: p.brokers.clone(),
                sasl,
                tls,
                max_message_bytes: None,
            },
        }))
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

    // ---- schemas -----------------------------------------------------------------------

    pub fn schema_add(&self, paths: &[PathBuf], includes: &[PathBuf]) -> Result<SchemaAdded> {
        schemas::add(&self.config_dir, paths, includes)
    }

    pub fn schema_list(&self) -> Result<SchemaListing> {
        Ok(SchemaListing {
            message_types: schemas::load(&self.config_dir)?.message_types(),
            mappings: self.config()?.mappings,
        })
    }

    pub fn schema_map(
        &self,
        connection: &str,
        topic: &str,
        value_type: &str,
        key_type: Option<&str>,
    ) -> Result<Mapping> {
        let mut cfg = self.config()?;
        cfg.connection(connection)?;
        let set = schemas::load(&self.config_dir)?;
        let value_type = set.type_codec(value_type)?.type_name().to_string();
        let key_type = key_type
            .map(|k| set.type_codec(k).map(|c| c.type_name().to_string()))
            .transpose()?;
        let mapping = Mapping {
            connection: connection.into(),
            topic: topic.into(),
            value_type,
            key_type,
        };
        cfg.mappings
            .retain(|m| !(m.connection == connection && m.topic == topic));
        cfg.mappings.push(mapping.clone());
        cfg.save(&self.config_dir)?;
        Ok(mapping)
    }

    /// Re-decodes what the lake holds for `connection`/`topic` with its current mapping (or by
    /// sniffing when it has none), without reading the bus again. `progress` is told after
    /// each file and stops the work by returning false.
    pub fn redecode(
        &self,
        connection: &str,
        topic: &str,
        progress: &mut dyn FnMut(&RedecodeProgress) -> bool,
    ) -> Result<RedecodeProgress> {
        let topics = [topic.to_string()];
        let builder = self.event_builder(connection, &topics, usize::MAX)?;
        let d = builder.decoders.get(topic).cloned().unwrap_or_default();
        let decode = move |s: StoredPayload<'_>| {
            let (decoded, key_decoded) = d.decode(s.payload, !s.truncated, s.key, &s.headers);
            Redecoded {
                schema: decoded.schema,
                encoding: decoded
                    .encoding
                    .unwrap_or(sluice_model::Encoding::Binary)
                    .as_str()
                    .to_string(),
                decoded: decoded.json,
                payload_text: decoded.text,
                decode_error: decoded.error,
                key_decoded,
            }
        };
        Ok(self
            .lake()?
            .redecode(connection, topic, &decode, progress)?)
    }

    /// Scores every known message type on `sample` payloads of `connection`/`topic`: those in
    /// the lake, else the first ones read from the bus (for at most 10 seconds, writing
    /// nothing). Best candidate first.
    pub fn schema_detect(
        &self,
        connection: &str,
        topic: &str,
        sample: usize,
    ) -> Result<Vec<sluice_codec::Candidate>> {
        let set = schemas::load(&self.config_dir)?;
        if set.message_types().is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "no message types known yet: add .proto files or descriptor sets first",
            ));
        }
        let filter = format!(
            "connection = {} and source = {}",
            sluice_filter::quote(connection),
            sluice_filter::quote(topic)
        );
        let mut payloads: Vec<Vec<u8>> = self
            .search(&filter, sample as u64, 0)?
            .into_iter()
            .filter(|e| !e.truncated)
            .map(|e| e.payload)
            .collect();
        if payloads.is_empty() {
            let stop = Arc::new(AtomicBool::new(false));
            let timer = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(10));
                timer.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            self.tail(
                connection,
                topic,
                StartFrom::Beginning,
                &ReadOptions::default(),
                Some(sample as u64),
                &stop,
                &mut |e| {
                    payloads.push(e.payload.clone());
                    true
                },
            )?;
        }
        if payloads.is_empty() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no events of {connection}:{topic} in the lake or on the bus to score types against"),
            ));
        }
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        Ok(sluice_codec::detect(&set, &refs))
    }

    /// The mapped topics whose value or key type is one of `types`: what adding those types
    /// should re-decode.
    pub fn mappings_using(&self, types: &[String]) -> Result<Vec<Mapping>> {
        Ok(self
            .config()?
            .mappings
            .into_iter()
            .filter(|m| {
                types
                    .iter()
                    .any(|t| *t == m.value_type || m.key_type.as_deref() == Some(t.as_str()))
            })
            .collect())
    }

    /// Changes whenever the configuration (mappings, registries) or the schema store does:
    /// the modification times and sizes of config.toml and of every stored schema.
    fn decoding_fingerprint(&self) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
        let stat = |p: PathBuf| {
            let m = std::fs::metadata(&p).ok();
            let modified = m.as_ref().and_then(|m| m.modified().ok());
            (p, modified, m.map_or(0, |m| m.len()))
        };
        let mut out = vec![stat(Config::path(&self.config_dir))];
        if let Ok(rd) = std::fs::read_dir(self.config_dir.join("schemas")) {
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            out.extend(files.into_iter().map(stat));
        }
        out
    }

    fn event_builder(
        &self,
        connection: &str,
        topics: &[String],
        max_payload_bytes: usize,
    ) -> Result<EventBuilder> {
        let cfg = self.config()?;
        let mut decoders = HashMap::new();
        let needs_schemas = topics.iter().any(|t| cfg.mapping(connection, t).is_some());
        let set = if needs_schemas {
            Some(schemas::load(&self.config_dir)?)
        } else {
            None
        };
        let profile = cfg.connection(connection)?;
        let registry = registry::decoder(&self.config_dir, connection, profile)?;
        for t in topics {
            let mut d = TopicDecoders {
                value: Decoder::sniffing().with_registry(registry.clone()),
                key: None,
            };
            if let (Some(m), Some(set)) = (cfg.mapping(connection, t), &set) {
                d.value =
                    Decoder::typed(set.type_codec(&m.value_type)?).with_registry(registry.clone());
                if let Some(k) = &m.key_type {
                    d.key =
                        Some(Decoder::typed(set.type_codec(k)?).with_registry(registry.clone()));
                }
            }
            decoders.insert(t.clone(), d);
        }
        Ok(EventBuilder {
            connection: connection.into(),
            bus: Self::bus_of(profile)?,
            decoders,
            max_payload_bytes,
            decode: true,
        })
    }

    // ---- reading -----------------------------------------------------------------------

    /// Streams decoded events to `on_event` until `max` messages, the stop flag, or the
    /// callback returns false. Writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn tail(
        &self,
        connection: &str,
        topic: &str,
        from: StartFrom,
        read: &ReadOptions,
        max: Option<u64>,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<u64> {
        if read.queue == Some(QueueRead::Destructive) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "tail stores nothing, so it never deletes messages: use --requeue or --peek (or capture with --destructive or --drain)",
            ));
        }
        let topics = vec![topic.to_string()];
        let builder = self.event_builder(connection, &topics, DEFAULT_MAX_PAYLOAD_BYTES)?;
        let mut reader = self.connector(connection)?.reader(&topics, from, read)?;
        let mut n = 0;
        'reading: while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let batch = reader.poll(1000, Duration::from_millis(200))?;
            if let Some(t) = reader
                .trouble()
                .filter(|t| t.lasted(capture::DEFAULT_BROKER_TIMEOUT))
            {
                return Err(t.unreachable(|s| format!("no answer for {s} s")).into());
            }
            let now = sluice_model::now_us();
            for msg in batch {
                n += 1;
                if !on_event(&builder.build(msg, now)) || max.is_some_and(|m| n >= m) {
                    break 'reading;
                }
            }
        }
        // Nothing was stored: a queue read gives every message back.
        reader.commit(0)?;
        Ok(n)
    }

    pub fn capture(
        &self,
        connection: &str,
        opts: &CaptureOptions,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&CaptureProgress),
    ) -> Result<CaptureProgress> {
        if opts.sources.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "name at least one topic to capture",
            ));
        }
        let build = || -> Result<EventBuilder> {
            let b = self.event_builder(connection, &opts.sources, opts.max_payload_bytes)?;
            Ok(EventBuilder {
                decode: opts.decode,
                ..b
            })
        };
        let builder = build()?;
        let reader = self
            .connector(connection)?
            .reader(&opts.sources, opts.from, &opts.read)?;
        let lake = self.lake()?;
        let query = Query::open(&lake)?;
        let mut covered = HashMap::new();
        for t in &opts.sources {
            covered.insert(t.clone(), query.covered(connection, t)?);
        }
        // A queue's messages have no positions, but may come again: skip those already kept.
        let mut known = std::collections::HashSet::new();
        if matches!(
            opts.read.queue,
            Some(QueueRead::Destructive | QueueRead::Requeue)
        ) {
            for t in &opts.sources {
                known.extend(query.ids_without_position(connection, t)?);
            }
        }
        drop(query);
        let mut seen = self.decoding_fingerprint();
        let mut rebuild = || {
            let now = self.decoding_fingerprint();
            if now == seen {
                return None;
            }
            seen = now;
            build().ok()
        };
        capture::run_capture(
            reader,
            builder,
            &mut rebuild,
            &lake,
            covered,
            &known,
            opts,
            stop,
            on_progress,
        )
    }

    // ---- the lake ----------------------------------------------------------------------

    fn compile(filter: &str) -> Result<sluice_filter::Compiled> {
        Ok(sluice_filter::to_sql(filter, sluice_model::now_us())?)
    }

    /// Matching events, newest first.
    pub fn search(&self, filter: &str, limit: u64, skip: u64) -> Result<Vec<Event>> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.search(&c, limit, skip)?)
    }

    pub fn count(&self, filter: &str) -> Result<u64> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.count(&c)?)
    }

    /// Matches per time bucket: `(start_us, bucket_us, counts)`.
    pub fn histogram(&self, filter: &str, buckets: u32) -> Result<(i64, i64, Vec<u64>)> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.histogram(&c, buckets)?)
    }

    /// Runs in a child process (see `sluice_lake::run_if_worker`) that is killed at the
    /// timeout and cannot outgrow its memory limit: DuckDB's own limits do not reach every
    /// operator (a 10^8-element `list()` ignored a 2 GB `memory_limit` and an interrupt for 33 s).
    pub fn sql(&self, sql: &str, limits: &SqlLimits) -> Result<SqlResult> {
        Ok(Query::open(&self.lake()?)?.sql_limited(sql, limits)?)
    }

    pub fn export(&self, filter: &str, format: ExportFormat, path: &Path) -> Result<u64> {
        let c = Self::compile(filter)?;
        let query = Query::open(&self.lake()?)?;
        let io =
            |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()));
        let tmp = path.with_file_name(format!(
            ".{}.partial",
            path.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        ));
        if format == ExportFormat::Parquet {
            return Ok(query.export_parquet(&c, path)?);
        }
        // Text formats: one line or record per event, oldest first, stopping at the first
        // write error.
        let mut n = 0u64;
        let mut each =
            |write: &mut dyn FnMut(&Event) -> std::result::Result<(), String>| -> Result<()> {
                let mut failed = None;
                query.for_each_in_order(&c, None, sluice_lake::Columns::All, |e| {
                    n += 1;
                    match write(&e) {
                        Ok(()) => true,
                        Err(why) => {
                            failed = Some(why);
                            false
                        }
                    }
                })?;
                failed.map_or(Ok(()), |why| {
                    Err(ApiError::new(
                        ErrorCode::Io,
                        format!("{}: {why}", path.display()),
                    ))
                })
            };
        match format {
            ExportFormat::Jsonl => {
                use std::io::Write;
                let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
                each(&mut |e| writeln!(w, "{}", event_json(e)).map_err(|e| e.to_string()))?;
                w.into_inner()
                    .map_err(|e| io(e.into_error()))?
                    .sync_all()
                    .map_err(io)?;
            }
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_path(&tmp)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
                let cols = [
                    "id",
                    "bus",
                    "connection",
                    "source",
                    "partition",
                    "offset",
                    "timestamp",
                    "key_text",
                    "key",
                    "headers",
                    "schema",
                    "encoding",
                    "decoded",
                    "payload_text",
                    "payload",
                    "size",
                    "truncated",
                    "decode_error",
                    "properties",
                ];
                w.write_record(cols)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
                each(&mut |e| {
                    let j = event_json(e);
                    let cell = |k: &str| match &j[k] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    w.write_record(cols.iter().map(|k| cell(k)))
                        .map_err(|e| e.to_string())
                })?;
                w.flush().map_err(io)?;
            }
            ExportFormat::Parquet => unreachable!("written above"),
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(n)
    }

    // ---- replay ------------------------------------------------------------------------

    fn parse_target(to: &str) -> Result<(String, String)> {
        match to.split_once(':') {
            Some((c, t)) if !c.is_empty() && !t.is_empty() => Ok((c.to_string(), t.to_string())),
            _ => Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("--to {to:?}: expected CONNECTION:TOPIC"),
            )),
        }
    }

    /// Encodes every edit up front, so a bad one stops the replay before anything is sent.
    fn edited_payloads(
        &self,
        filter: &str,
        edits: &[ReplayEdit],
    ) -> Result<Option<sluice_replay::Edited>> {
        if edits.is_empty() {
            return Ok(None);
        }
        let mut schemas = None;
        let mut registries = HashMap::new();
        let mut load = |event: &Event| -> Result<Decoder> {
            let set = match &schemas {
                Some(s) => s,
                None => schemas.insert(schemas::load(&self.config_dir)?),
            };
            // The event's own type when it is known here (a registry's types may not be).
            let decoder = match event.schema.as_deref().map(|t| set.type_codec(t)) {
                Some(Ok(codec)) => Decoder::typed(codec),
                _ => Decoder::sniffing(),
            };
            let registry = match registries.get(&event.connection) {
                Some(r) => Option::clone(r),
                None => {
                    let cfg = self.config()?;
                    let r = registry::decoder(
                        &self.config_dir,
                        &event.connection,
                        cfg.connection(&event.connection)?,
                    )?;
                    registries.insert(event.connection.clone(), r.clone());
                    r
                }
            };
            Ok(decoder.with_registry(registry))
        };
        let mut out = HashMap::new();
        for edit in edits {
            let event = match &edit.id {
                Some(id) => {
                    let this = format!("event.id = {}", sluice_filter::quote(id));
                    let filter = if filter.trim().is_empty() {
                        this
                    } else {
                        format!("({filter}) and {this}")
                    };
                    self.search(&filter, 1, 0)?.pop().ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidInput,
                            format!("edit for event {id}: the filter does not match that event"),
                        )
                    })?
                }
                None => {
                    let mut two = self.search(filter, 2, 0)?;
                    if two.len() != 1 {
                        return Err(ApiError::new(
                            ErrorCode::InvalidInput,
                            format!(
                                "an edit without an event id needs a filter matching exactly one event; this one matches {}",
                                if two.is_empty() { "none".to_string() } else { "more".to_string() }
                            ),
                        ));
                    }
                    two.remove(0)
                }
            };
            let bytes = edit::encode(&event, &edit.decoded, &mut load)?;
            out.insert(event.id, bytes);
        }
        Ok(Some(Arc::new(out)))
    }

    fn replay_options(
        req: &ReplayRequest,
        target: String,
        to_bus: sluice_model::Bus,
        routing_key: Option<String>,
        lake: &Lake,
    ) -> sluice_replay::ReplayOptions {
        let run = uuid::Uuid::new_v4().simple().to_string();
        sluice_replay::ReplayOptions {
            target,
            to_bus,
            routing_key,
            rate: req.rate,
            limit: req.limit,
            keep_partition: req.keep_partition,
            replay_prefix: format!("{}:{}", lake.id(), &run[..12]),
            edited: None,
            broker_timeout: req
                .broker_timeout
                .unwrap_or(sluice_replay::DEFAULT_BROKER_TIMEOUT),
        }
    }

    /// What replay would send, in order, without sending.
    pub fn replay_plan(
        &self,
        filter: &str,
        req: &ReplayRequest,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<u64> {
        let c = Self::compile(filter)?;
        let lake = self.lake()?;
        if !req.to_origin {
            let (connection, _) = Self::parse_target(&req.to)?;
            self.config()?.connection(&connection)?;
        }
        let edited = self.edited_payloads(filter, &req.edits)?;
        sluice_replay::plan(&Query::open(&lake)?, &c, req.limit, |e| {
            match edited.as_ref().and_then(|m| m.get(&e.id)) {
                Some(p) => {
                    let mut e = e.clone();
                    e.payload = p.clone();
                    on_event(&e)
                }
                None => on_event(e),
            }
        })
        .map_err(replay_err)
    }

    pub fn replay(
        &self,
        filter: &str,
        req: &ReplayRequest,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&ReplayProgress),
    ) -> std::result::Result<ReplaySummary, ReplayFailure> {
        let c = Self::compile(filter)?;
        let lake = self.lake()?;
        let edited = self.edited_payloads(filter, &req.edits)?;
        if req.to_origin {
            let mut opts =
                Self::replay_options(req, String::new(), sluice_model::Bus::Kafka, None, &lake);
            opts.edited = edited;
            let mut open = |name: &str| {
                let c = self
                    .connector(name)
                    .map_err(|e| sluice_bus::BusError::Config(e.message))?;
                Ok((c.writer()?, c.bus()))
            };
            let mut finder = self.origin_finder();
            let mut fallback = |e: &Event| finder.sqs_source(e);
            return sluice_replay::replay_to_origin(
                &Query::open(&lake)?,
                &c,
                &mut open,
                &mut fallback,
                &opts,
                stop,
                on_progress,
            )
            .map_err(ReplayFailure::from);
        }
        let (connection, target) = Self::parse_target(&req.to)?;
        let connector = self.connector(&connection)?;
        let to_bus = connector.bus();
        // AMQP: `EXCHANGE[/ROUTING_KEY]`, or a queue (published through the default exchange).
        let (topic, mut routing_key) = match (to_bus, target.split_once('/')) {
            (sluice_model::Bus::Amqp, Some((x, rk))) => (x.to_string(), Some(rk.to_string())),
            _ => (target.clone(), None),
        };
        let info = connector.source(&topic, CONNECT_TIMEOUT)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("unknown topic {topic:?} on {connection} (create it first)"),
            )
        })?;
        let mut send_to = topic.clone();
        if to_bus == sluice_model::Bus::Amqp
            && info.kind.as_deref().is_some_and(|k| k.starts_with("queue"))
        {
            routing_key = Some(topic.clone());
            send_to = String::new();
        }
        let query = Query::open(&lake)?;
        if req.keep_partition && to_bus == sluice_model::Bus::Kafka {
            let max = query.sql_max_partition(&c)?;
            if max.is_some_and(|m| m as usize >= info.partitions.len()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("--keep-partition: events come from partition {} but {topic} has {} partitions", max.unwrap_or(0), info.partitions.len()),
                )
                .into());
            }
        }
        let mut opts = Self::replay_options(req, send_to, to_bus, routing_key, &lake);
        opts.edited = edited;
        let mut writer = connector.writer()?;
        sluice_replay::replay(&query, &c, writer.as_mut(), &opts, stop, on_progress)
            .map_err(ReplayFailure::from)
    }
}

/// Finds where `replay --to-origin` sends events, asking SQS (once per queue) which queue feeds
/// a dead-letter queue when the event does not say.
pub struct OriginFinder<'a> {
    sluice: &'a Sluice,
    sqs_sources: HashMap<(String, String), Option<String>>,
}

impl OriginFinder<'_> {
    /// An SQS dead-letter queue fed by exactly one queue sends back to that queue.
    fn sqs_source(&mut self, e: &Event) -> Option<sluice_replay::Origin> {
        if e.bus != sluice_model::Bus::Sqs {
            return None;
        }
        let sluice = self.sluice;
        let found = self
            .sqs_sources
            .entry((e.connection.clone(), e.source.clone()))
            .or_insert_with(|| {
                let c = sluice.connector(&e.connection).ok()?;
                match c
                    .dead_letter_sources(&e.source, CONNECT_TIMEOUT)
                    .ok()?
                    .as_slice()
                {
                    [one] => Some(one.clone()),
                    _ => None,
                }
            });
        found.clone().map(|target| sluice_replay::Origin {
            connection: e.connection.clone(),
            target,
            routing_key: None,
        })
    }

    /// `CONNECTION:TARGET[/ROUTING_KEY]`, or why the event has no known origin.
    pub fn describe(&mut self, e: &Event) -> std::result::Result<String, String> {
        let o = sluice_replay::origin(e).or_else(|why| self.sqs_source(e).ok_or(why))?;
        Ok(match o.routing_key {
            Some(rk) => format!("{}:{}/{rk}", o.connection, o.target),
            None => format!("{}:{}", o.connection, o.target),
        })
    }
}

impl Sluice {
    pub fn origin_finder(&self) -> OriginFinder<'_> {
        OriginFinder {
            sluice: self,
            sqs_sources: HashMap::new(),
        }
    }
}

/// A replay that ended in an error, with its account so far (none when it failed before
/// anything was sent), so the CLI, the app and the history report what was sent.
#[derive(Debug)]
pub struct ReplayFailure {
    pub error: ApiError,
    pub summary: Option<Box<ReplaySummary>>,
}

impl From<ApiError> for ReplayFailure {
    fn from(error: ApiError) -> Self {
        ReplayFailure {
            error,
            summary: None,
        }
    }
}

impl From<sluice_lake::LakeError> for ReplayFailure {
    fn from(e: sluice_lake::LakeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<sluice_bus::BusError> for ReplayFailure {
    fn from(e: sluice_bus::BusError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<sluice_replay::Incomplete> for ReplayFailure {
    fn from(i: sluice_replay::Incomplete) -> Self {
        ReplayFailure {
            error: replay_err(i.error),
            summary: Some(i.summary),
        }
    }
}

fn replay_err(e: sluice_replay::ReplayError) -> ApiError {
    match e {
        sluice_replay::ReplayError::Lake(l) => l.into(),
        sluice_replay::ReplayError::Bus(b) => b.into(),
    }
}
