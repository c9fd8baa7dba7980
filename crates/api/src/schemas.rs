//! The schema store: each `schema add` keeps its compiled descriptor set as a numbered
//! `.binpb` file in `CONFIG/schemas/`, loaded in order (a later file of the same name wins),
//! and each Avro schema as a numbered copy of its `.avsc` (a later copy of the same file name
//! wins).

use crate::error::{ApiError, ErrorCode, Result};
use prost::Message as _;
use prost_types::FileDescriptorSet;
use sluice_codec::{collect_files, compile_paths, parse_avro, ParsedAvro, SchemaError, SchemaSet};
use std::path::{Path, PathBuf};

fn dir(config_dir: &Path) -> PathBuf {
    config_dir.join("schemas")
}

fn stored_sets(config_dir: &Path) -> Result<Vec<(PathBuf, FileDescriptorSet)>> {
    let d = dir(config_dir);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&d) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "binpb"))
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p)
                .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", p.display())))?;
            let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
                ApiError::new(
                    ErrorCode::Schema,
                    format!("{}: corrupt schema store file: {e}", p.display()),
                )
            })?;
            Ok((p, set))
        })
        .collect()
}

pub(crate) fn load(config_dir: &Path) -> Result<SchemaSet> {
    let sets = stored_sets(config_dir)?;
    let records = parse_avro(&stored_avro(config_dir)).records;
    Ok(SchemaSet::from_sets(sets.into_iter().map(|(_, s)| s))?.with_avro(records))
}

/// Stored Avro schemas as (file name, text), the latest copy of each file name.
fn stored_avro(config_dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(config_dir))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "avsc"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out: Vec<(String, String)> = Vec::new();
    for p in files {
        let stored = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // NNNNN-TIMESTAMP-original.avsc
        let name = stored.splitn(3, '-').nth(2).unwrap_or(stored).to_string();
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.retain(|(n, _)| *n != name);
            out.push((name, text));
        }
    }
    out
}

/// Stores one added schema file as the next numbered `NNNNN-TIMESTAMP{suffix}` in the store,
/// written aside and renamed so a reader never sees half of it.
fn keep(config_dir: &Path, suffix: &str, bytes: &[u8]) -> Result<()> {
    let d = dir(config_dir);
    std::fs::create_dir_all(&d)
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", d.display())))?;
    let n = std::fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
    let path = d.join(format!("{:05}-{}{suffix}", n + 1, sluice_model::now_us()));
    let tmp = d.join(".adding.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display())))
}

/// Adds .proto files, descriptor sets and .avsc files, and folders of them.
pub(crate) fn add(
    config_dir: &Path,
    paths: &[PathBuf],
    includes: &[PathBuf],
) -> Result<SchemaAdded> {
    for p in paths {
        if !p.exists() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{}: no such file or folder", p.display()),
            ));
        }
    }
    let mut avsc = Vec::new();
    let mut others = Vec::new();
    for p in paths {
        if p.is_dir() {
            let had = avsc.len();
            collect_files(p, "avsc", &mut avsc);
            let mut protos = Vec::new();
            collect_files(p, "proto", &mut protos);
            // A folder of only Avro schemas is not a protobuf folder without .proto files.
            if !protos.is_empty() || avsc.len() == had {
                others.push(p.clone());
            }
        } else if p.extension().is_some_and(|e| e == "avsc") {
            avsc.push(p.clone());
        } else {
            others.push(p.clone());
        }
    }
    let mut added = if others.is_empty() {
        SchemaAdded {
            files: Vec::new(),
            message_types: Vec::new(),
            errors: Vec::new(),
            defined_types: Vec::new(),
            redecoding: Vec::new(),
        }
    } else {
        add_protobuf(config_dir, &others, includes)?
    };
    if !avsc.is_empty() {
        add_avro(config_dir, &avsc, &mut added)?;
    }
    Ok(added)
}

/// Adds .avsc files: each one that parses (with the stored ones and each other for the named
/// types they share) is stored; each that does not gets an error naming file:line:col.
fn add_avro(config_dir: &Path, paths: &[PathBuf], added: &mut SchemaAdded) -> Result<()> {
    let mut new = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", p.display())))?;
        new.push((p.display().to_string(), text));
    }
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(p)
            .to_string()
    };
    let stored = stored_avro(config_dir);
    let before = parse_avro(&stored).records;
    let mut all: Vec<(String, String)> = stored
        .into_iter()
        .filter(|(n, _)| !new.iter().any(|(p, _)| base(p) == *n))
        .collect();
    all.extend(new.iter().cloned());
    let ParsedAvro {
        records,
        defined,
        errors,
    } = parse_avro(&all);
    for (name, text) in &new {
        if errors.iter().any(|e| e.file.as_deref() == Some(name)) {
            continue;
        }
        keep(config_dir, &format!("-{}", base(name)), text.as_bytes())?;
        added.files.push(name.clone());
        if let Some((_, types)) = defined.iter().find(|(n, _)| n == name) {
            added.defined_types.extend(types.iter().cloned());
        }
    }
    added.errors.extend(
        errors
            .into_iter()
            .filter(|e| new.iter().any(|(n, _)| e.file.as_deref() == Some(n)))
            .map(Into::into),
    );
    added
        .message_types
        .extend(records.keys().filter(|t| !before.contains_key(*t)).cloned());
    Ok(())
}

/// What `schema add` did.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct SchemaAdded {
    pub files: Vec<String>,
    pub message_types: Vec<String>,
    pub errors: Vec<SchemaProblem>,
    /// Every message type the added files define, new or changed: topics mapped to one of
    /// them are re-decoded.
    pub defined_types: Vec<String>,
    /// Jobs re-decoding topics mapped to the added types (started by the app; the CLI
    /// re-decodes in the foreground).
    #[serde(default)]
    pub redecoding: Vec<u64>,
}

#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct SchemaProblem {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// `file:line:col: message`, ready to print.
    pub display: String,
}

impl From<SchemaError> for SchemaProblem {
    fn from(e: SchemaError) -> Self {
        SchemaProblem {
            display: e.to_string(),
            file: e.file,
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
}

fn add_protobuf(config_dir: &Path, paths: &[PathBuf], includes: &[PathBuf]) -> Result<SchemaAdded> {
    let compiled = compile_paths(paths, includes);
    let mut errors: Vec<SchemaProblem> = compiled.errors.into_iter().map(Into::into).collect();
    let new_set = compiled.set;
    let files: Vec<String> = new_set
        .file
        .iter()
        .filter_map(|f| f.name.clone())
        .filter(|n| !n.starts_with("google/protobuf/"))
        .collect();
    if new_set.file.is_empty() {
        return Ok(SchemaAdded {
            files,
            message_types: Vec::new(),
            errors,
            defined_types: Vec::new(),
            redecoding: Vec::new(),
        });
    }
    let existing = stored_sets(config_dir)?;
    let before = SchemaSet::from_sets(existing.iter().map(|(_, s)| s.clone()))
        .map(|s| s.message_types())
        .unwrap_or_default();
    // Only keep the new set if everything still links together.
    match SchemaSet::from_sets(
        existing
            .into_iter()
            .map(|(_, s)| s)
            .chain([new_set.clone()]),
    ) {
        Ok(merged) => {
            keep(config_dir, ".binpb", &new_set.encode_to_vec())?;
            let message_types = merged
                .message_types()
                .into_iter()
                .filter(|t| !before.contains(t))
                .collect();
            Ok(SchemaAdded {
                files,
                message_types,
                errors,
                defined_types: defined_types(&new_set),
                redecoding: Vec::new(),
            })
        }
        Err(e) => {
            errors.push(e.into());
            Ok(SchemaAdded {
                files: Vec::new(),
                message_types: Vec::new(),
                errors,
                defined_types: Vec::new(),
                redecoding: Vec::new(),
            })
        }
    }
}

/// Full names of the message types (nested ones too) a set's own files define.
fn defined_types(set: &FileDescriptorSet) -> Vec<String> {
    fn walk(prefix: &str, messages: &[prost_types::DescriptorProto], out: &mut Vec<String>) {
        for m in messages {
            let name = match prefix {
                "" => m.name().to_string(),
                p => format!("{p}.{}", m.name()),
            };
            walk(&name, &m.nested_type, out);
            out.push(name);
        }
    }
    let mut out = Vec::new();
    for f in &set.file {
        walk(f.package(), &f.message_type, &mut out);
    }
    out
}
