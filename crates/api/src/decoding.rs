//! What decodes what: stored schemas, topic mappings, type detection, re-decoding what the
//! lake holds, and the decoders a capture or tail builds from them.

use crate::capture::{EventBuilder, TopicDecoders};
use crate::config::{Config, Mapping, SharedMappings};
use crate::error::{ApiError, ErrorCode, Result};
use crate::{registry, schemas, SchemaAdded, Sluice};
use serde::Serialize;
use sluice_bus::ReadOptions;
use sluice_codec::Decoder;
use sluice_lake::{RedecodeProgress, Redecoded, StoredPayload};
use sluice_model::StartFrom;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SchemaListing {
    pub message_types: Vec<String>,
    pub mappings: Vec<Mapping>,
}

impl Sluice {
    pub fn schema_add(&self, paths: &[PathBuf], includes: &[PathBuf]) -> Result<SchemaAdded> {
        schemas::add(&self.config_dir, paths, includes)
    }

    /// `schema_add` into the lake's shared store (`LAKE/_sluice/schemas`), which everyone who
    /// opens the lake loads.
    pub fn schema_add_shared(
        &self,
        paths: &[PathBuf],
        includes: &[PathBuf],
    ) -> Result<SchemaAdded> {
        schemas::add(&self.shared_dir(), paths, includes)
    }

    pub fn schema_list(&self) -> Result<SchemaListing> {
        Ok(SchemaListing {
            message_types: schemas::load(&self.schema_roots())?.message_types(),
            mappings: self.mappings()?,
        })
    }

    /// Maps a topic to a type: in the user's config, or with `shared` in the lake's
    /// `_sluice/mappings.toml` for everyone who opens it.
    pub fn schema_map(
        &self,
        connection: &str,
        topic: &str,
        value_type: &str,
        key_type: Option<&str>,
        shared: bool,
    ) -> Result<Mapping> {
        let mut cfg = self.config()?;
        let bus = cfg.connection(connection)?.settings.bus();
        // As the lake stores the source (`orders` read from PostgreSQL is `public.orders`).
        let topic = sluice_bus::conventions(bus).source_name(topic);
        let topic = topic.as_str();
        // A shared mapping is read by people who have only the shared schemas: its types
        // must be among those (or built in), not only in this user's own store.
        let roots = if shared {
            vec![self.shared_dir()]
        } else {
            self.schema_roots()
        };
        let set = schemas::load(&roots)?;
        let value_type = set
            .type_codec(value_type)
            .map_err(|e| {
                if shared {
                    ApiError::new(
                        ErrorCode::Schema,
                        format!("{e}: a shared mapping needs its type in the lake's shared schemas (sluice schema add --shared FILE)"),
                    )
                } else {
                    e.into()
                }
            })?
            .type_name()
            .to_string();
        let key_type = key_type
            .map(|k| set.type_codec(k).map(|c| c.type_name().to_string()))
            .transpose()?;
        let mapping = Mapping {
            connection: connection.into(),
            topic: topic.into(),
            value_type,
            key_type,
            shared,
        };
        if shared {
            let mut s = SharedMappings::load(&self.shared_dir())?;
            s.mappings
                .retain(|m| !(m.connection == connection && m.topic == topic));
            s.mappings.push(mapping.clone());
            s.save(&self.shared_dir())?;
            return Ok(mapping);
        }
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
        let bus = self.config()?.connection(connection)?.settings.bus();
        let topic = sluice_bus::conventions(bus).source_name(topic);
        let topic = topic.as_str();
        let topics = [topic.to_string()];
        let builder = self.event_builder(connection, &topics, usize::MAX)?;
        let d = builder.decoders.get(topic).cloned().unwrap_or_default();
        let decode = move |s: StoredPayload<'_>| {
            // A redacted event's decoding is what is left of it (its bytes may not have been
            // kept): decoding the stored bytes again could only lose it.
            if s.headers
                .iter()
                .any(|(k, _)| *k == sluice_capture::REDACTED_HEADER)
            {
                return None;
            }
            let (decoded, key_decoded) = d.decode(s.payload, !s.truncated, s.key, &s.headers);
            Some(Redecoded {
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
            })
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
        let set = schemas::load(&self.schema_roots())?;
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
            .search_stored(&filter, sample as u64, 0)?
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
            .mappings()?
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
    pub(crate) fn decoding_fingerprint(
        &self,
    ) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
        let stat = |p: PathBuf| {
            let m = std::fs::metadata(&p).ok();
            let modified = m.as_ref().and_then(|m| m.modified().ok());
            (p, modified, m.map_or(0, |m| m.len()))
        };
        let mut out = vec![
            stat(Config::path(&self.config_dir)),
            stat(SharedMappings::fingerprint_path(&self.shared_dir())),
        ];
        out.extend(
            schemas::stored_files(&self.schema_roots())
                .into_iter()
                .map(stat),
        );
        out
    }

    pub(crate) fn event_builder(
        &self,
        connection: &str,
        topics: &[String],
        max_payload_bytes: usize,
    ) -> Result<EventBuilder> {
        let cfg = self.config()?;
        let mappings = self.mappings()?;
        let mapping = |t: &str| {
            mappings
                .iter()
                .find(|m| m.connection == connection && m.topic == t)
        };
        let mut decoders = HashMap::new();
        let needs_schemas = topics.iter().any(|t| mapping(t).is_some());
        let set = if needs_schemas {
            Some(schemas::load(&self.schema_roots())?)
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
            if let (Some(m), Some(set)) = (mapping(t), &set) {
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
            bus: profile.settings.bus(),
            decoders,
            max_payload_bytes,
            decode: true,
            redact: self.capture_redactions()?,
        })
    }
}
