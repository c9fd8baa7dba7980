//! Where files go: `ROOT/connection=C/source=S/date=YYYY-MM-DD/part-*.parquet`, plus the lake's
//! own identity file (used to recognise events this lake replayed, so captures do not loop).

use crate::retire;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("writing Parquet {path}: {reason}")]
    Parquet { path: String, reason: String },
    #[error("query failed: {0}")]
    Query(String),
    #[error("SQL not allowed: {0}")]
    Forbidden(String),
    #[error("query stopped after {0:?}, its time limit (--timeout)")]
    Timeout(std::time::Duration),
    #[error("query needs more than {}, its memory limit (--memory-limit)", crate::sql_process::human(.0))]
    MemoryLimit(u64),
    #[error("query result is over {}: select fewer rows or columns", crate::sql_process::human(.0))]
    ResultTooLarge(u64),
    #[error("not a size: {0:?} (write it like 2GiB, 512MiB or 1500000000)")]
    BadSize(String),
    /// Another maintenance run (compaction, prune, re-decode) holds the lake.
    #[error("{0}")]
    Busy(String),
    #[error("the SQL query process failed: {0}")]
    Worker(String),
    /// A lake column a read needs is missing from what DuckDB returned, or has a type it
    /// cannot be cast from (a file not written by Sluice, or a damaged one).
    #[error("lake column {column}: {reason}")]
    Column { column: String, reason: String },
    /// A stored event names a bus this build does not know (a lake written by a newer Sluice,
    /// or edited by hand): its bus-specific rules (ids, replay mapping) cannot be guessed.
    #[error("a stored event has bus {0:?}, which this version of Sluice does not know")]
    UnknownBus(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A lake folder.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
    id: String,
}

const ID_FILE: &str = ".sluice-lake-id";

impl Lake {
    /// Opens (creating if needed) a lake folder, and removes what writers killed mid-write
    /// left in it (once per process, see `temp`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LakeError> {
        let lake = Self::open_as_is(root)?;
        crate::temp::clean_once(&lake.root);
        Ok(lake)
    }

    /// `open` without the cleanup, for a short-lived process whose parent already did it.
    pub(crate) fn open_as_is(root: impl Into<PathBuf>) -> Result<Self, LakeError> {
        let root: PathBuf = root.into();
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let id_path = root.join(ID_FILE);
        let id = match std::fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
                std::fs::write(&id_path, &id).map_err(io_err(&id_path))?;
                id
            }
        };
        Ok(Lake { root, id })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A short random id naming this lake in `sluice-replay-id` headers.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The folder holding every date of one connection's source.
    pub(crate) fn source_dir(&self, connection: &str, source: &str) -> PathBuf {
        self.root
            .join(format!("connection={}", escape(connection)))
            .join(format!("source={}", escape(source)))
    }

    pub(crate) fn partition_dir(&self, connection: &str, source: &str, date: &str) -> PathBuf {
        self.source_dir(connection, source)
            .join(format!("date={date}"))
    }

    /// All finished Parquet files (temp files of writes in progress never match).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect(&self.root, &mut out);
        out.sort();
        out
    }
}

/// Finished Parquet files under `dir`, appended to `out` unsorted; files a compaction or prune
/// retired (see `retire`) are left out.
pub(crate) fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for sub in gather(dir, out) {
        collect(&sub, out);
    }
}

/// `collect` for the files of `dir` itself, not of its subfolders.
pub(crate) fn collect_here(dir: &Path, out: &mut Vec<PathBuf>) {
    gather(dir, out);
}

/// Appends the finished files of `dir` to `out`; returns its subfolders.
fn gather(dir: &Path, out: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    let mut subs = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return subs;
    };
    let mut files = HashSet::new();
    let mut records = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            // Hidden folders are scratch space (a bundle being imported), never lake data.
            if !name.starts_with('.') {
                subs.push(p);
            }
        } else if name.ends_with(".parquet") && !name.starts_with('.') {
            files.insert(name);
        } else if retire::is_record(&name) {
            records.push(name);
        }
    }
    let retired = if records.is_empty() {
        HashSet::new()
    } else {
        retire::retired_in(dir, &records, &files)
    };
    out.extend(
        files
            .into_iter()
            .filter(|f| !retired.contains(f))
            .map(|f| dir.join(f)),
    );
    subs
}

/// A lake file's (oldest, newest) event time, from its name (`part-MAX-MIN-ID.parquet`).
pub(crate) fn file_times(path: &Path) -> Option<(i64, i64)> {
    let name = path.file_name()?.to_string_lossy().to_string();
    let parts: Vec<&str> = name.strip_prefix("part-")?.split('-').collect();
    match parts.as_slice() {
        [max, min, _] => Some((min.parse().ok()?, max.parse().ok()?)),
        _ => None,
    }
}

/// The newest event time in a lake file; files named otherwise count as newest, so they are
/// always read.
pub(crate) fn file_max_time(path: &Path) -> i64 {
    file_times(path).map_or(i64::MAX, |(_, max)| max)
}

/// Hive partition values: characters other than letters, digits, `.`, `_` and `-` are
/// percent-encoded as Hive does, so any name is a safe single path segment.
pub(crate) fn escape(value: &str) -> String {
    let mut s = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
