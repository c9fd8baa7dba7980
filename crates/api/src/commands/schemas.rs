//! Schemas: adding and dropping them, mapping topics to types, guessing types, and the
//! re-decoding of what the lake holds that follows each of these.

use super::app::NoArgs;
use super::Session;
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobCtx, JobWork};
use crate::{Mapping, RedecodeProgress, SchemaAdded, SchemaListing};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// A file dropped on the window: its path relative to what was dropped, and its bytes.
#[derive(Debug, Deserialize, TS)]
pub struct DroppedFile {
    pub path: String,
    pub base64: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct SchemaDropArgs {
    pub files: Vec<DroppedFile>,
}

#[derive(Debug, Deserialize, TS)]
pub struct SchemaMapArgs {
    pub connection: String,
    pub topic: String,
    pub value_type: String,
    #[serde(default)]
    pub key_type: Option<String>,
    /// Keep the mapping with the lake, for everyone who opens it.
    #[serde(default)]
    #[ts(optional)]
    pub shared: Option<bool>,
}

/// One connection's topic, exchange or queue.
#[derive(Debug, Deserialize, TS)]
pub struct SourceArgs {
    pub connection: String,
    pub topic: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct SchemaDetectArgs {
    pub connection: String,
    pub topic: String,
    /// Payloads to score the types on (200 when not given).
    #[serde(default)]
    #[ts(optional)]
    pub sample: Option<usize>,
}

/// A new mapping and the job re-decoding what the lake already holds of that topic.
#[derive(Debug, Serialize, TS)]
pub struct MappingSet {
    pub mapping: Mapping,
    pub redecode_job: u64,
}

/// A re-decode of one topic's stored events, not yet running.
pub type RedecodeWork = JobWork<Result<RedecodeProgress>, RedecodeProgress>;

/// Schemas added, and the re-decodes they call for (topics mapped to a type the files define,
/// which may have changed), not yet started: a window starts them, the CLI runs them.
pub struct SchemasAdded {
    pub added: SchemaAdded,
    pub redecodes: Vec<RedecodeWork>,
}

const DETECT_SAMPLE: usize = 200;

/// A dropped file's path, kept inside the folder it is written to.
fn safe_relative(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir => {}
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("{path}: dropped file paths must be relative"),
                ))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "a dropped file has no name",
        ));
    }
    Ok(out)
}

impl Session {
    pub fn schema_list(&self, _: NoArgs) -> Result<SchemaListing> {
        self.sluice().schema_list()
    }

    /// Adds .proto files, folders and descriptor sets from this machine (`sluice schema add`;
    /// a window drops files instead, see `schema_drop`), with the re-decodes that follow.
    pub fn schema_add(&self, paths: &[PathBuf], includes: &[PathBuf]) -> Result<SchemasAdded> {
        self.schema_add_to(paths, includes, false)
    }

    /// `schema_add`, into the lake's shared store when `shared`.
    pub fn schema_add_to(
        &self,
        paths: &[PathBuf],
        includes: &[PathBuf],
        shared: bool,
    ) -> Result<SchemasAdded> {
        let sluice = self.sluice();
        let added = if shared {
            sluice.schema_add_shared(paths, includes)?
        } else {
            sluice.schema_add(paths, includes)?
        };
        let redecodes = sluice
            .mappings_using(&added.defined_types)?
            .into_iter()
            .map(|m| {
                self.redecode_job(SourceArgs {
                    connection: m.connection,
                    topic: m.topic,
                })
            })
            .collect();
        Ok(SchemasAdded { added, redecodes })
    }

    /// Compiles dropped .proto files (imports resolved among them, relative to the dropped
    /// folder) and descriptor sets, as `schema add` does for paths, and starts the re-decodes.
    pub fn schema_drop(&self, a: SchemaDropArgs) -> Result<SchemaAdded> {
        let dir = tempfile::tempdir()
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("temporary folder: {e}")))?;
        for f in &a.files {
            let rel = safe_relative(&f.path)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&f.base64)
                .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("{}: {e}", f.path)))?;
            let path = dir.path().join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
            }
            std::fs::write(&path, bytes)
                .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", f.path)))?;
        }
        if a.files.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "nothing was dropped",
            ));
        }
        let SchemasAdded {
            mut added,
            redecodes,
        } = self.schema_add(&[dir.path().to_path_buf()], &[])?;
        // Errors name the file as it was dropped, not the temporary copy.
        let prefix = format!("{}/", dir.path().display());
        for e in &mut added.errors {
            if let Some(f) = &mut e.file {
                *f = f.trim_start_matches(&prefix).to_string();
            }
            e.display = e.display.replace(&prefix, "");
            e.message = e.message.replace(&prefix, "");
        }
        added.redecoding = redecodes.into_iter().map(|w| self.start(w)).collect();
        Ok(added)
    }

    /// Re-decodes a topic's stored events with its current mapping; the job's progress is a
    /// `RedecodeProgress`, and a stop ends it between files.
    pub fn redecode_job(&self, a: SourceArgs) -> RedecodeWork {
        let sluice = self.sluice();
        let label = format!("{}:{}", a.connection, a.topic);
        JobWork::new(
            "redecode",
            label,
            move |job: &JobCtx<'_, RedecodeProgress>| {
                sluice.redecode(&a.connection, &a.topic, &mut |p| {
                    job.progress(p);
                    !job.stopped()
                })
            },
        )
    }

    pub fn redecode(&self, a: SourceArgs) -> Result<u64> {
        Ok(self.start(self.redecode_job(a)))
    }

    /// Maps a topic to a type; the re-decode of what the lake holds of it comes with it.
    pub fn schema_map_job(&self, a: SchemaMapArgs) -> Result<(Mapping, RedecodeWork)> {
        let mapping = self.sluice().schema_map(
            &a.connection,
            &a.topic,
            &a.value_type,
            a.key_type.as_deref().filter(|k| !k.is_empty()),
            a.shared.unwrap_or(false),
        )?;
        let work = self.redecode_job(SourceArgs {
            connection: a.connection,
            topic: a.topic,
        });
        Ok((mapping, work))
    }

    /// Maps a topic and starts re-decoding what the lake already holds of it.
    pub fn schema_map(&self, a: SchemaMapArgs) -> Result<MappingSet> {
        let (mapping, work) = self.schema_map_job(a)?;
        Ok(MappingSet {
            mapping,
            redecode_job: self.start(work),
        })
    }

    /// Scores every known type on the topic's payloads, best first.
    pub fn schema_detect(&self, a: SchemaDetectArgs) -> Result<Vec<sluice_codec::Candidate>> {
        let sample = a.sample.unwrap_or(DETECT_SAMPLE).max(1);
        self.sluice().schema_detect(&a.connection, &a.topic, sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sluice;

    #[test]
    fn dropped_schemas_compile_with_imports_and_report_positions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [
                    {"path": "shop/v1/money.proto", "base64": b64("syntax = \"proto3\";\npackage shop.v1;\nmessage Money { int64 cents = 1; }\n")},
                    {"path": "shop/v1/order.proto", "base64": b64("syntax = \"proto3\";\npackage shop.v1;\nimport \"shop/v1/money.proto\";\nmessage Order { Money total = 1; }\n")},
                ]}),
            )
            .unwrap();
        let types = out["message_types"].as_array().unwrap();
        assert!(types.iter().any(|t| t == "shop.v1.Order"), "{out}");
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "bad.proto", "base64": b64("syntax = \"proto3\";\nmessage X { int32 = 1; }\n")}]}),
            )
            .unwrap();
        let err = &out["errors"][0];
        assert_eq!(err["file"], "bad.proto", "{out}");
        assert_eq!(err["line"], 2, "{out}");
        let e = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "../escape.proto", "base64": ""}]}),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn schemas_added_again_re_decode_the_topics_mapped_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let proto = dir.path().join("p.proto");
        std::fs::write(
            &proto,
            "syntax = \"proto3\";\npackage p;\nmessage M { string a = 1; }\n",
        )
        .unwrap();
        assert!(s
            .schema_add(std::slice::from_ref(&proto), &[])
            .unwrap()
            .redecodes
            .is_empty());
        s.call(
            "connection_add",
            serde_json::json!({"name": "k", "bus": "kafka", "brokers": "127.0.0.1:9"}),
        )
        .unwrap();
        let (mapping, _) = s
            .schema_map_job(SchemaMapArgs {
                connection: "k".into(),
                topic: "t".into(),
                value_type: "p.M".into(),
                key_type: Some(String::new()),
                shared: None,
            })
            .unwrap();
        assert_eq!(mapping.key_type, None, "an empty key type is none");
        let again = s.schema_add(&[proto], &[]).unwrap();
        let [work] = again.redecodes.try_into().ok().unwrap();
        let done = work
            .run(&Default::default(), &mut |_| {}, &mut |_| true)
            .unwrap();
        assert_eq!(
            done.files_total, 0,
            "an empty lake has nothing to re-decode"
        );
    }
}
