//! Schemas: .proto files compiled at run time with protox, and binary FileDescriptorSets
//! (`protoc --descriptor_set_out`, `buf build -o`), given as files or found in folders, merged
//! into one descriptor pool. Every set is checked (see `validate`) before it reaches the pool,
//! and folder walks are bounded: no symlink loops, capped depth and size.

use crate::guard::guarded;
use crate::validate::check_files;
use crate::{AvroSchema, ProtobufCodec, TypeCodec};
use miette::Diagnostic;
use prost::Message as _;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A schema problem, located as precisely as the compiler allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", location(.file, .line, .column))]
pub struct SchemaError {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(file: &Option<String>, line: &Option<usize>, column: &Option<usize>) -> String {
    match (file, line, column) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}: "),
        (Some(f), _, _) => format!("{f}: "),
        _ => String::new(),
    }
}

impl SchemaError {
    fn plain(file: Option<String>, message: impl Into<String>) -> Self {
        SchemaError {
            file,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// Reads file, line and column out of a miette diagnostic (protox and prost-reflect errors).
    fn from_diagnostic(
        d: &dyn Diagnostic,
        fallback_file: Option<String>,
        display_path: impl Fn(&str) -> String,
    ) -> Self {
        let mut message = d.to_string();
        let (mut file, mut line, mut column) = (fallback_file, None, None);
        if let (Some(src), Some(label)) = (d.source_code(), d.labels().and_then(|mut l| l.next())) {
            if let Ok(span) = src.read_span(label.inner(), 0, 0) {
                line = Some(span.line() + 1);
                column = Some(span.column() + 1);
                if let Some(name) = span.name() {
                    file = Some(display_path(name));
                }
            }
            if let Some(text) = label.label() {
                message = format!("{message} ({text})");
            }
        }
        SchemaError {
            file,
            line,
            column,
            message,
        }
    }
}

/// The result of compiling what the user handed over: everything that compiled, and an error
/// for each file that did not (one bad file does not stop the others).
#[derive(Debug, Default)]
pub struct Compiled {
    pub set: FileDescriptorSet,
    pub errors: Vec<SchemaError>,
}

/// File name endings read as binary FileDescriptorSets when a folder is walked (what protoc,
/// buf and grpcurl name them; the app's drop target accepts the same).
pub const DESCRIPTOR_SET_EXTENSIONS: &[&str] = &["binpb", "pb", "desc", "protoset", "fds", "bin"];

/// Compiles .proto files and folders, and loads binary descriptor sets (given as files or
/// found in folders).
///
/// A folder is its own include root. A single file's include root is the ancestor folder that
/// matches its `package` (so `protos/shop/v1/order.proto` with `package shop.v1;` resolves
/// imports like `shop/v1/common.proto`), else its own folder. `includes` adds more roots.
/// An error that several files run into (a broken file they all import) is listed once.
pub fn compile_paths(paths: &[PathBuf], includes: &[PathBuf]) -> Compiled {
    let mut out = Compiled::default();
    let mut proto_files: Vec<(PathBuf, PathBuf)> = Vec::new(); // (include root, file)
    let mut sets: Vec<PathBuf> = Vec::new();
    let mut exts = vec!["proto"];
    exts.extend_from_slice(DESCRIPTOR_SET_EXTENSIONS);
    for path in paths {
        if path.is_dir() {
            let files = match collect_files(path, &exts) {
                Ok(files) => files,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            if files.is_empty() {
                out.errors.push(SchemaError::plain(
                    Some(path.display().to_string()),
                    format!(
                        "folder holds no .proto files or descriptor sets (.{})",
                        DESCRIPTOR_SET_EXTENSIONS.join(", .")
                    ),
                ));
            }
            for f in files {
                if f.extension().is_some_and(|e| e == "proto") {
                    proto_files.push((path.clone(), f));
                } else {
                    sets.push(f);
                }
            }
        } else if path.extension().is_some_and(|e| e == "proto") {
            proto_files.push((package_root(path), path.clone()));
        } else {
            sets.push(path.clone());
        }
    }
    for path in &sets {
        match load_descriptor_set(path) {
            Ok(set) => out.set.file.extend(set.file),
            Err(e) => out.errors.push(e),
        }
    }

    let mut roots: Vec<PathBuf> = includes.to_vec();
    for (root, _) in &proto_files {
        if !roots.contains(root) {
            roots.push(root.clone());
        }
    }
    if !proto_files.is_empty() {
        match protox::Compiler::new(&roots) {
            Ok(mut compiler) => {
                compiler.include_imports(true).include_source_info(true);
                for (_, file) in &proto_files {
                    if let Err(e) = compiler.open_file(file) {
                        let display = |name: &str| display_path(&roots, name);
                        out.errors.push(SchemaError::from_diagnostic(
                            &e,
                            e.file().map(&display),
                            display,
                        ));
                    }
                }
                out.set.file.extend(compiler.file_descriptor_set().file);
            }
            Err(e) => out.errors.push(SchemaError::plain(None, e.to_string())),
        }
    }
    dedup_errors(&mut out.errors);
    out
}

/// Drops repeats, keeping the first of each in order.
pub fn dedup_errors(errors: &mut Vec<SchemaError>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
}

/// How deep, and how much, a folder walk goes before it stops with an error. A schema tree
/// of thousands of files fits well inside; a walk into `/` or a generated maze does not run on
/// for hours.
pub const MAX_FOLDER_DEPTH: usize = 32;
pub const MAX_FOLDER_FILES: usize = 50_000;
pub const MAX_FOLDER_ENTRIES: usize = 500_000;

/// The files under `dir` (recursively, in name order) whose extension is one of `exts`.
///
/// Symlinked folders are followed, each real folder at most once, so a link back up the tree
/// (a loop) ends the walk there instead of running forever. Errors when the tree is deeper than
/// `MAX_FOLDER_DEPTH`, holds more than `MAX_FOLDER_FILES` matching files or more than
/// `MAX_FOLDER_ENTRIES` entries in all.
pub fn collect_files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>, SchemaError> {
    let mut walk = Walk {
        exts,
        visited: std::collections::HashSet::new(),
        entries: 0,
        out: Vec::new(),
        top: dir,
    };
    walk.folder(dir, 0)?;
    Ok(walk.out)
}

struct Walk<'a> {
    exts: &'a [&'a str],
    /// Canonical paths of the folders already walked.
    visited: std::collections::HashSet<PathBuf>,
    entries: usize,
    out: Vec<PathBuf>,
    top: &'a Path,
}

impl Walk<'_> {
    fn too_big(&self, what: String) -> SchemaError {
        SchemaError::plain(
            Some(self.top.display().to_string()),
            format!("{what}; add a smaller folder"),
        )
    }

    fn folder(&mut self, dir: &Path, depth: usize) -> Result<(), SchemaError> {
        if depth > MAX_FOLDER_DEPTH {
            return Err(self.too_big(format!(
                "folders nest more than {MAX_FOLDER_DEPTH} deep (at {})",
                dir.display()
            )));
        }
        let Ok(real) = dir.canonicalize() else {
            return Ok(());
        };
        if !self.visited.insert(real) {
            return Ok(());
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut paths = Vec::new();
        for e in entries.flatten() {
            self.entries += 1;
            if self.entries > MAX_FOLDER_ENTRIES {
                return Err(
                    self.too_big(format!("more than {MAX_FOLDER_ENTRIES} files and folders"))
                );
            }
            paths.push(e.path());
        }
        paths.sort();
        for p in paths {
            if p.is_dir() {
                self.folder(&p, depth + 1)?;
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| self.exts.contains(&e))
            {
                if self.out.len() == MAX_FOLDER_FILES {
                    return Err(self.too_big(format!("more than {MAX_FOLDER_FILES} schema files")));
                }
                self.out.push(p);
            }
        }
        Ok(())
    }
}

/// The folder that `import` paths in this file are relative to, guessed from its package.
fn package_root(file: &Path) -> PathBuf {
    let parent = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let parent = if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent
    };
    let Ok(text) = std::fs::read_to_string(file) else {
        return parent;
    };
    let package = text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("package ")
            .map(|p| p.trim_end_matches(';').trim().to_string())
    });
    if let Some(package) = package {
        let parts: Vec<&str> = package.split('.').collect();
        let mut root = parent.clone();
        for part in parts.iter().rev() {
            if root.file_name().is_some_and(|n| n == *part) {
                root = root.parent().map(Path::to_path_buf).unwrap_or_default();
            } else {
                return parent;
            }
        }
        if root.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
        return root;
    }
    parent
}

fn display_path(roots: &[PathBuf], name: &str) -> String {
    roots
        .iter()
        .map(|r| r.join(name))
        .find(|p| p.exists())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| name.to_string())
}

/// Descriptor sets larger than this are refused before they are read: the largest real ones
/// (every Google API at once) are a few MiB.
const MAX_DESCRIPTOR_SET_BYTES: u64 = 64 << 20;

fn load_descriptor_set(path: &Path) -> Result<FileDescriptorSet, SchemaError> {
    let file = Some(path.display().to_string());
    let cannot_read =
        |e: std::io::Error| SchemaError::plain(file.clone(), format!("cannot read: {e}"));
    let len = std::fs::metadata(path).map_err(cannot_read)?.len();
    if len > MAX_DESCRIPTOR_SET_BYTES {
        return Err(SchemaError::plain(
            file.clone(),
            format!(
                "{len} bytes is too large for a descriptor set (at most {} MiB)",
                MAX_DESCRIPTOR_SET_BYTES >> 20
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(cannot_read)?;
    let not_a_set = || {
        SchemaError::plain(
            file.clone(),
            "neither a .proto file nor a binary FileDescriptorSet",
        )
    };
    let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(|_| not_a_set())?;
    if set.file.is_empty()
        || set
            .file
            .iter()
            .any(|f| f.name.as_deref().unwrap_or("").is_empty())
    {
        return Err(not_a_set());
    }
    check_files(&set.file).map_err(|p| SchemaError::plain(file.clone(), p.to_string()))?;
    Ok(set)
}

/// Google's well-known types, so descriptor sets built without `--include_imports` still resolve.
/// Compiled once per process: every schema load adds them.
fn well_known_files() -> &'static [FileDescriptorProto] {
    static FILES: std::sync::OnceLock<Vec<FileDescriptorProto>> = std::sync::OnceLock::new();
    FILES.get_or_init(compile_well_known)
}

fn compile_well_known() -> Vec<FileDescriptorProto> {
    const NAMES: &[&str] = &[
        "any",
        "api",
        "descriptor",
        "duration",
        "empty",
        "field_mask",
        "source_context",
        "struct",
        "timestamp",
        "type",
        "wrappers",
    ];
    let mut compiler =
        protox::Compiler::with_file_resolver(protox::file::GoogleFileResolver::new());
    compiler.include_imports(true);
    for n in NAMES {
        // Cannot fail: these files ship inside protox.
        let _ = compiler.open_file(format!("google/protobuf/{n}.proto"));
    }
    compiler.file_descriptor_set().file
}

/// A pool of checked files. Built behind the guard: options of a custom map type are read
/// through prost-reflect's map-entry accessors, which panic on what `check_files` missed.
fn build_pool(set: FileDescriptorSet) -> Result<DescriptorPool, SchemaError> {
    let mut pool = DescriptorPool::new();
    guarded(|| pool.add_file_descriptor_set(set))
        .map_err(|bug| SchemaError::plain(None, bug.to_string()))?
        .map_err(|e| {
            SchemaError::from_diagnostic(&e, e.file().map(str::to_string), str::to_string)
        })?;
    Ok(pool)
}

/// All known message types: protobuf messages and Avro records.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    pool: DescriptorPool,
    files: Vec<FileDescriptorProto>,
    /// Avro named records by full name, each rooted at itself.
    avro: BTreeMap<String, Arc<AvroSchema>>,
}

impl Default for SchemaSet {
    fn default() -> Self {
        SchemaSet {
            pool: DescriptorPool::new(),
            files: Vec::new(),
            avro: BTreeMap::new(),
        }
    }
}

/// What `parse_avro` made of a set of .avsc files.
#[derive(Debug, Default)]
pub struct ParsedAvro {
    /// Every record, by full name, rooted at itself.
    pub records: BTreeMap<String, Arc<AvroSchema>>,
    /// (file name, the records it defines) for each file that parsed.
    pub defined: Vec<(String, Vec<String>)>,
    /// One error per file that never parsed.
    pub errors: Vec<SchemaError>,
}

/// Parses .avsc texts (name, text) that may use each other's named types, in whatever order
/// they come: each pass parses what the earlier passes make resolvable.
pub fn parse_avro(files: &[(String, String)]) -> ParsedAvro {
    let mut records = BTreeMap::new();
    let mut defined = Vec::new();
    let mut parsed: Vec<&str> = Vec::new();
    let mut pending: Vec<&(String, String)> = files.iter().collect();
    loop {
        let before = pending.len();
        pending.retain(|(name, text)| match AvroSchema::parse(text, &parsed) {
            Ok(schema) => {
                let own: Vec<String> = schema
                    .record_names()
                    .into_iter()
                    .filter(|n| !records.contains_key(n))
                    .collect();
                for n in schema.record_names() {
                    if let Some(rooted) = schema.rooted_at(&n) {
                        records.insert(n, Arc::new(rooted));
                    }
                }
                defined.push((name.clone(), own));
                parsed.push(text);
                false
            }
            Err(_) => true,
        });
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    let errors = pending
        .into_iter()
        .map(|(name, text)| {
            let e = AvroSchema::parse(text, &parsed).expect_err("failed above");
            SchemaError {
                file: Some(name.clone()),
                line: e.position.map(|p| p.0),
                column: e.position.map(|p| p.1),
                message: e.message,
            }
        })
        .collect();
    ParsedAvro {
        records,
        defined,
        errors,
    }
}

impl SchemaSet {
    /// Builds a pool from descriptor sets; a file added later replaces an earlier one of the same
    /// name, so re-adding an edited .proto updates it.
    pub fn from_sets(
        sets: impl IntoIterator<Item = FileDescriptorSet>,
    ) -> Result<Self, SchemaError> {
        let mut by_name: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for set in sets {
            for f in set.file {
                let name = f.name.clone().unwrap_or_default();
                if by_name.insert(name.clone(), f).is_none() {
                    order.push(name);
                }
            }
        }
        let mut files: Vec<FileDescriptorProto> =
            order.iter().filter_map(|n| by_name.remove(n)).collect();
        let mut all = FileDescriptorSet {
            file: files.clone(),
        };
        // Google's well-known types are always there, so `google.protobuf.Struct` can be
        // mapped directly, without adding a file that imports it; a set that brings its own
        // copy of one keeps it.
        let have: Vec<String> = files.iter().filter_map(|f| f.name.clone()).collect();
        let wkt: Vec<_> = well_known_files()
            .iter()
            .filter(|f| f.name.as_ref().is_some_and(|n| !have.contains(n)))
            .cloned()
            .collect();
        all.file.splice(0..0, wkt);
        check_files(&files).map_err(|p| {
            SchemaError::plain(
                Some(p.file),
                format!("message {}: {}", p.message, p.problem),
            )
        })?;
        let pool = build_pool(all)?;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(SchemaSet {
            pool,
            files,
            avro: BTreeMap::new(),
        })
    }

    /// Adds Avro records (from `parse_avro`).
    pub fn with_avro(mut self, records: BTreeMap<String, Arc<AvroSchema>>) -> Self {
        self.avro = records;
        self
    }

    /// Compiles one in-memory .proto source (tests and quick checks).
    pub fn from_proto_source(name: &str, source: &str) -> Result<Self, SchemaError> {
        // Unique per call: two threads compiling the same name must not share a folder.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-proto-{}-{}-{}",
            std::process::id(),
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name.replace('/', "_")
        ));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        std::fs::write(&path, source)
            .map_err(|e| SchemaError::plain(Some(name.into()), e.to_string()))?;
        let compiled = compile_paths(std::slice::from_ref(&path), std::slice::from_ref(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(e) = compiled.errors.into_iter().next() {
            return Err(e);
        }
        Self::from_sets([compiled.set])
    }

    /// The descriptor files this set holds (what gets persisted).
    pub fn to_descriptor_set(&self) -> FileDescriptorSet {
        FileDescriptorSet {
            file: self.files.clone(),
        }
    }

    /// Every message type and Avro record, by full name, excluding Google's own.
    pub fn message_types(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .messages()
            .map(|m| m.full_name().to_string())
            .chain(self.avro.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A protobuf message type or an Avro record, by full name or unique suffix (protobuf
    /// first when a name is both).
    pub fn type_codec(&self, name: &str) -> Result<TypeCodec, SchemaError> {
        let proto = self.codec(name);
        if proto.is_ok() {
            return proto.map(TypeCodec::Protobuf);
        }
        let name = name.trim_start_matches('.');
        if let Some(s) = self.avro.get(name) {
            return Ok(TypeCodec::Avro(s.clone()));
        }
        let suffix = format!(".{name}");
        let matches: Vec<_> = self
            .avro
            .iter()
            .filter(|(n, _)| n.ends_with(&suffix))
            .collect();
        match matches.as_slice() {
            [(_, s)] => Ok(TypeCodec::Avro((*s).clone())),
            _ => proto.map(TypeCodec::Protobuf),
        }
    }

    /// The user's message types (not Google's, not map entries).
    pub(crate) fn messages(&self) -> impl Iterator<Item = prost_reflect::MessageDescriptor> + '_ {
        self.pool
            .all_messages()
            .filter(|m| !m.full_name().starts_with("google.protobuf.") && !m.is_map_entry())
    }

    /// Resolves a type by full name, or by a suffix (`Order`, `v1.Order`) when that is unique.
    pub fn codec(&self, name: &str) -> Result<ProtobufCodec, SchemaError> {
        let name = name.trim_start_matches('.');
        if let Some(desc) = self.pool.get_message_by_name(name) {
            return Ok(ProtobufCodec::new(desc));
        }
        let suffix = format!(".{name}");
        let mut matches: Vec<_> = self
            .pool
            .all_messages()
            .filter(|m| m.full_name().ends_with(&suffix))
            .collect();
        // A short name means the user's type before Google's (`Timestamp` is theirs when they
        // have one); Google's answer it only when nothing else does.
        if matches
            .iter()
            .any(|m| !m.full_name().starts_with("google.protobuf."))
        {
            matches.retain(|m| !m.full_name().starts_with("google.protobuf."));
        }
        match matches.as_slice() {
            [one] => Ok(ProtobufCodec::new(one.clone())),
            [] => Err(SchemaError::plain(
                None,
                format!(
                    "no message type named {name:?}; `sluice schema list` shows the known types"
                ),
            )),
            many => Err(SchemaError::plain(
                None,
                format!(
                    "{name:?} is ambiguous: {}",
                    many.iter()
                        .map(|m| m.full_name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}
