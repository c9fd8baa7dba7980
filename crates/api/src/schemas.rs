//! The schema store: each `schema add` keeps its compiled descriptor set as a numbered
//! `.binpb` file in `CONFIG/schemas/`, loaded in order (a later file of the same name wins),
//! and each Avro schema as a numbered copy of its `.avsc` (a later copy of the same file name
//! wins).

use crate::error::{ApiError, ErrorCode, Result};
use prost::Message as _;
use prost_types::FileDescriptorSet;
use sluice_codec::{
    collect_files, compile_paths, parse_avro, ParsedAvro, SchemaError, SchemaSet,
    DESCRIPTOR_SET_EXTENSIONS,
};
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

/// The schemas of every store in `roots`, a later store's winning over an earlier one's for a
/// file of the same name (the lake's shared store first, then the user's own).
pub(crate) fn load(roots: &[PathBuf]) -> Result<SchemaSet> {
    let mut sets = Vec::new();
    for r in roots {
        sets.extend(stored_sets(r)?.into_iter().map(|(_, s)| s));
    }
    let records = parse_avro(&stored_avro_of(roots)).records;
    let set = SchemaSet::from_sets(sets).map_err(|e| {
        // Sets stored before they were checked on add can hold what is refused now.
        let folders: Vec<String> = roots.iter().map(|r| dir(r).display().to_string()).collect();
        ApiError::new(
            ErrorCode::Schema,
            format!(
                "the stored schemas in {}: {e}; add a corrected version of that file (a file added later replaces one of the same name) or remove it from that folder",
                folders.join(" and ")
            ),
        )
    })?;
    Ok(set.with_avro(records))
}

/// `stored_avro` over several stores, a later store's copy of a file name winning.
fn stored_avro_of(roots: &[PathBuf]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in roots {
        for (name, text) in stored_avro(r) {
            out.retain(|(n, _)| *n != name);
            out.push((name, text));
        }
    }
    out
}

/// Every stored schema file of the stores, for the decoding fingerprint.
pub(crate) fn stored_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in roots {
        if let Ok(rd) = std::fs::read_dir(dir(r)) {
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            out.extend(files);
        }
    }
    out
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
    crate::config::write_aside(&path, bytes, false)
}

/// Adds .proto files, descriptor sets and .avsc files, and folders of them (walked once each,
/// within the codec's bounds).
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
    let mut walk_errors = Vec::new();
    let mut exts = vec!["avsc", "proto"];
    exts.extend_from_slice(DESCRIPTOR_SET_EXTENSIONS);
    for p in paths {
        if p.is_dir() {
            let files = match collect_files(p, &exts) {
                Ok(files) => files,
                Err(e) => {
                    walk_errors.push(SchemaProblem::from(e));
                    continue;
                }
            };
            let (avro, protobuf): (Vec<PathBuf>, Vec<PathBuf>) = files
                .into_iter()
                .partition(|f| f.extension().is_some_and(|e| e == "avsc"));
            // A folder of only Avro schemas is not a protobuf folder without .proto files;
            // an empty one goes on, to be told it holds nothing.
            if !protobuf.is_empty() || avro.is_empty() {
                others.push(p.clone());
            }
            avsc.extend(avro);
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
    walk_errors.append(&mut added.errors);
    added.errors = listed(walk_errors);
    Ok(added)
}

/// At most this many errors are listed; the rest are counted in a last line.
pub(crate) const MAX_LISTED_ERRORS: usize = 50;

/// Each distinct error once, in order, and at most `MAX_LISTED_ERRORS` of them: a folder of
/// thousands of files that share one broken import says so once, not once per importer.
fn listed(errors: Vec<SchemaProblem>) -> Vec<SchemaProblem> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<SchemaProblem> = errors
        .into_iter()
        .filter(|e| seen.insert(e.display.clone()))
        .collect();
    if out.len() > MAX_LISTED_ERRORS {
        let more = out.len() - MAX_LISTED_ERRORS;
        out.truncate(MAX_LISTED_ERRORS);
        let message = format!("and {more} more error(s)");
        out.push(SchemaProblem {
            file: None,
            line: None,
            column: None,
            display: message.clone(),
            message,
        });
    }
    out
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

/// The stored schema files a bundle of events decoded with `types` needs, as (file name,
/// bytes): each descriptor set that defines one of them (a set holds its imports), and the
/// Avro files when one is an Avro record (they may name each other's types, so all of them).
pub(crate) fn files_defining(
    roots: &[PathBuf],
    types: &std::collections::BTreeSet<String>,
) -> Result<Vec<(String, Vec<u8>)>> {
    fn messages(prefix: &str, m: &prost_types::DescriptorProto, out: &mut Vec<String>) {
        let name = format!("{prefix}{}", m.name());
        for n in &m.nested_type {
            messages(&format!("{name}."), n, out);
        }
        out.push(name);
    }
    let mut out = Vec::new();
    let mut sets = Vec::new();
    for r in roots {
        sets.extend(stored_sets(r)?);
    }
    for (path, set) in sets {
        let mut names = Vec::new();
        for f in &set.file {
            let prefix = match f.package() {
                "" => String::new(),
                p => format!("{p}."),
            };
            for m in &f.message_type {
                messages(&prefix, m, &mut names);
            }
        }
        if names.iter().any(|n| types.contains(n)) {
            let bytes = std::fs::read(&path)
                .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            out.push((name, bytes));
        }
    }
    let avro = stored_avro_of(roots);
    let records = parse_avro(&avro).records;
    if records.keys().any(|r| types.contains(r)) {
        out.extend(avro.into_iter().map(|(n, t)| (n, t.into_bytes())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{Session, Sluice};
    use base64::Engine as _;
    use prost::Message as _;
    use prost_types::FileDescriptorSet;
    use sluice_codec::SchemaSet;

    fn session(dir: &std::path::Path) -> Session {
        Session::new(Sluice::new(Some(dir.join("c")), Some(dir.join("l"))).unwrap())
    }

    fn set_of(name: &str, source: &str) -> Vec<u8> {
        SchemaSet::from_proto_source(name, source)
            .unwrap()
            .to_descriptor_set()
            .encode_to_vec()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn types(out: &serde_json::Value) -> Vec<String> {
        let mut t: Vec<String> = out["message_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    }

    #[test]
    fn dropped_descriptor_sets_are_added_alone_or_in_folders() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        let orders = set_of(
            "orders.proto",
            "syntax = \"proto3\"; package shop; message Order { map<string, int64> qty = 1; }",
        );
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "orders.desc", "base64": b64(&orders)}]}),
            )
            .unwrap();
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
        assert_eq!(types(&out), vec!["shop.Order"]);

        // A dropped folder: descriptor sets of every usual name beside a .proto file.
        let files: Vec<serde_json::Value> = ["pb", "binpb", "protoset"]
            .iter()
            .enumerate()
            .map(|(i, ext)| {
                let set = set_of(
                    &format!("t{i}.proto"),
                    &format!("syntax = \"proto3\"; package t{i}; message T {{}}"),
                );
                serde_json::json!({"path": format!("schemas/sets/t{i}.{ext}"), "base64": b64(&set)})
            })
            .chain([serde_json::json!({"path": "schemas/u.proto", "base64": b64(b"syntax = \"proto3\"; package u; message U {}")})])
            .collect();
        let out = s
            .call("schema_drop", serde_json::json!({ "files": files }))
            .unwrap();
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
        assert_eq!(types(&out), vec!["t0.T", "t1.T", "t2.T", "u.U"]);

        // The CLI's path: a folder of descriptor sets beside Avro schemas.
        let folder = dir.path().join("mixed");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("v.desc"),
            set_of("v.proto", "syntax = \"proto3\"; package v; message V {}"),
        )
        .unwrap();
        std::fs::write(
            folder.join("r.avsc"),
            r#"{"type":"record","name":"R","namespace":"av","fields":[]}"#,
        )
        .unwrap();
        let added = s.sluice().schema_add(&[folder], &[]).unwrap();
        assert!(added.errors.is_empty(), "{:?}", added.errors);
        let mut t = added.message_types.clone();
        t.sort();
        assert_eq!(t, vec!["av.R", "v.V"]);
    }

    #[test]
    fn a_dropped_set_with_a_malformed_map_entry_is_refused_by_name() {
        use prost_types::{DescriptorProto, FileDescriptorProto, MessageOptions};
        let entry = DescriptorProto {
            name: Some("TagsEntry".into()),
            options: Some(MessageOptions {
                map_entry: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let set = FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("bad.proto".into()),
                package: Some("p".into()),
                message_type: vec![DescriptorProto {
                    name: Some("Holder".into()),
                    nested_type: vec![entry],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "bad.desc", "base64": b64(&set.encode_to_vec())}]}),
            )
            .unwrap();
        assert_eq!(out["message_types"], serde_json::json!([]), "{out}");
        let e = &out["errors"][0];
        assert_eq!(e["file"], "bad.desc", "{out}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains("p.Holder.TagsEntry") && msg.contains("without a key field"),
            "{msg}"
        );
        // Nothing was stored: the store still loads.
        assert!(s.sluice().schema_list().unwrap().message_types.is_empty());
    }

    #[test]
    fn errors_are_listed_once_each_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        let folder = dir.path().join("many");
        std::fs::create_dir_all(&folder).unwrap();
        let broken = super::MAX_LISTED_ERRORS + 10;
        for i in 0..broken {
            std::fs::write(
                folder.join(format!("b{i:03}.proto")),
                format!("syntax = \"proto3\";\nmessage B{i} {{ int32 = 1; }}\n"),
            )
            .unwrap();
        }
        // Nine files that import the first broken one: its error is not repeated for each.
        for i in 0..9 {
            std::fs::write(
                folder.join(format!("u{i}.proto")),
                format!("syntax = \"proto3\";\nimport \"b000.proto\";\nmessage U{i} {{}}\n"),
            )
            .unwrap();
        }
        std::fs::write(
            folder.join("ok.proto"),
            "syntax = \"proto3\";\nmessage Fine {}\n",
        )
        .unwrap();
        let added = s.sluice().schema_add(&[folder], &[]).unwrap();
        let shown: Vec<&str> = added.errors.iter().map(|e| e.display.as_str()).collect();
        assert_eq!(shown.len(), super::MAX_LISTED_ERRORS + 1, "{shown:#?}");
        let mut unique = shown.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), shown.len(), "{shown:#?}");
        assert_eq!(shown.last().copied(), Some("and 10 more error(s)"));
        assert!(shown[0].contains("b000.proto:2:"), "{}", shown[0]);
        assert_eq!(added.message_types, vec!["Fine"]);
    }
}
