//! Removing lake files while captures write and searches read, so that no reader ever sees an
//! event twice or misses one.
//!
//! Compaction and pruning replace some files of a partition folder by one new file (or by
//! none). Doing that as "write the new file, delete the old ones" leaves two windows: between
//! the two steps a reader lists both (events doubled), and a reader that listed the old files
//! just before their deletion fails to open one (events missing). So:
//!
//! 1. A *retire record* `_retired-ID.json` names the old files and the file replacing them. It
//!    is written before the new file is renamed into place, and counts only once that file
//!    exists (or at once, when nothing replaces them): the rename is the one atomic switch,
//!    and every listing (`Lake::files`) leaves out what a record in force names.
//! 2. Readers hold a shared lock on `ROOT/.sluice-readers.lock` from before they list files
//!    until their query ends; the old files are deleted only under the exclusive lock, so never
//!    under a reader that may still open them. When readers keep the lock busy past the wait,
//!    the files stay retired (invisible) and a later compaction or prune deletes them.
//! 3. One compaction or prune at a time, and none beside a re-decode
//!    (`.sluice-maintenance.lock`): each rewrites files, and two of them on one file could
//!    undo each other.
//!
//! Record names start with `_`, which Spark and Hive skip; other engines read `*.parquet`
//! only. An engine that lists the folder between the rename and the deletion sees both the
//! old files and the new one: the README says how to skip duplicate ids there.

use crate::layout::{io_err, LakeError};
use crate::sketch;
use crate::temp::TempFile;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const READERS_LOCK: &str = ".sluice-readers.lock";
const MAINTENANCE_LOCK: &str = ".sluice-maintenance.lock";
pub(crate) const RECORD_PREFIX: &str = "_retired-";
const RECORD_SUFFIX: &str = ".json";

/// Files of one partition folder that are no longer part of the lake.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The file holding their events now; `None` when their events were removed (prune).
    replaced_by: Option<String>,
    /// Base names in the same folder.
    retired: Vec<String>,
}

pub(crate) fn is_record(name: &str) -> bool {
    name.starts_with(RECORD_PREFIX) && name.ends_with(RECORD_SUFFIX)
}

/// The files named by the records in force among `records` (paths in `dir`).
pub(crate) fn retired_in(
    dir: &Path,
    records: &[String],
    present: &HashSet<String>,
) -> HashSet<String> {
    let mut out = HashSet::new();
    for name in records {
        if let Some(r) = read_record(&dir.join(name)) {
            if r.replaced_by.as_ref().is_none_or(|f| present.contains(f)) {
                out.extend(r.retired);
            }
        }
    }
    out
}

fn read_record(path: &Path) -> Option<Record> {
    let text = std::fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            // Written atomically, so only a hand edit or a damaged disk gets here.
            tracing::warn!("ignoring unreadable retire record {}: {e}", path.display());
            None
        }
    }
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor this function borrows; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

fn lock_file(root: &Path, name: &str) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join(name))
}

/// A reader's hold on the files it listed; released on drop. A lake the process cannot write
/// (a read-only mount) is read without one: nothing can compact it from here either.
pub(crate) struct ReadGuard {
    _file: Option<File>,
}

pub(crate) fn read_guard(root: &Path) -> ReadGuard {
    let file = lock_file(root, READERS_LOCK)
        .ok()
        .filter(|f| flock(f, libc::LOCK_SH).unwrap_or(false));
    ReadGuard { _file: file }
}

/// A compaction's or prune's hold on the lake (the only one at a time), or a re-decode's
/// (shared with other re-decodes); released on drop.
pub(crate) struct Maintenance {
    root: PathBuf,
    _file: File,
}

pub(crate) fn maintenance(root: &Path, what: &str) -> Result<Maintenance, LakeError> {
    maintenance_lock(root, what, libc::LOCK_EX)
}

/// What re-decoding holds: re-decodes may run side by side (each rewrites whole files under
/// their own names), but not beside a compaction or prune, which could merge a file's old
/// decoding and then delete the new one.
pub(crate) fn redecode_lock(root: &Path) -> Result<Maintenance, LakeError> {
    maintenance_lock(root, "re-decode", libc::LOCK_SH)
}

fn maintenance_lock(root: &Path, what: &str, op: libc::c_int) -> Result<Maintenance, LakeError> {
    let file = lock_file(root, MAINTENANCE_LOCK).map_err(io_err(root))?;
    if !flock(&file, op | libc::LOCK_NB).map_err(io_err(root))? {
        return Err(LakeError::Busy(format!(
            "cannot {what} {}: another compaction, prune or re-decode is running on this lake; try again when it ends",
            root.display()
        )));
    }
    Ok(Maintenance {
        root: root.to_path_buf(),
        _file: file,
    })
}

impl Maintenance {
    /// Retires `old` (base names in `dir`), replaced by `new` when given: the record is
    /// written, then `new` renamed into place from `tmp`, which puts the record in force.
    pub(crate) fn replace(
        &self,
        dir: &Path,
        old: &[String],
        new: Option<(TempFile, &Path)>,
    ) -> Result<(), LakeError> {
        let record = Record {
            replaced_by: new
                .as_ref()
                .and_then(|(_, p)| p.file_name())
                .map(|n| n.to_string_lossy().to_string()),
            retired: old.to_vec(),
        };
        let name = format!(
            "{RECORD_PREFIX}{}{RECORD_SUFFIX}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let path = dir.join(name);
        let tmp = TempFile::beside(&path).map_err(io_err(dir))?;
        let bytes = serde_json::to_vec(&record).map_err(|e| LakeError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        {
            use std::io::Write;
            let mut f = tmp.handle().map_err(io_err(tmp.path()))?;
            f.write_all(&bytes).map_err(io_err(tmp.path()))?;
            f.sync_all().map_err(io_err(tmp.path()))?;
        }
        tmp.persist(&path).map_err(io_err(&path))?;
        if let Some((tmp, target)) = new {
            if let Err(e) = tmp.persist(target) {
                let _ = std::fs::remove_file(&path);
                return Err(io_err(target)(e));
            }
        }
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Deletes the files that records in force retire, and the records, under the readers'
    /// exclusive lock, waiting at most `wait` for readers to finish; records of runs that
    /// died before their rename are removed. Returns how many retired files are left for a
    /// later run because readers held the lake all along.
    pub(crate) fn finish(&self, dirs: &[PathBuf], wait: Duration) -> Result<u64, LakeError> {
        let mut pending: Vec<(PathBuf, Option<Record>)> = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if is_record(&name) {
                    let path = e.path();
                    let record = read_record(&path);
                    pending.push((path, record));
                }
            }
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let lock = lock_file(&self.root, READERS_LOCK).map_err(io_err(&self.root))?;
        let start = Instant::now();
        while !flock(&lock, libc::LOCK_EX | libc::LOCK_NB).map_err(io_err(&self.root))? {
            if start.elapsed() >= wait {
                let left = pending
                    .iter()
                    .filter_map(|(_, r)| r.as_ref())
                    .map(|r| r.retired.len() as u64)
                    .sum();
                return Ok(left);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (path, record) in pending {
            let dir = path.parent().unwrap_or(Path::new("."));
            if let Some(r) = record {
                let in_force = r.replaced_by.as_ref().is_none_or(|f| dir.join(f).exists());
                if in_force {
                    for f in &r.retired {
                        let file = dir.join(f);
                        let _ = std::fs::remove_file(sketch::sketch_path(&file));
                        match std::fs::remove_file(&file) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io_err(&file)(e)),
                        }
                    }
                }
            }
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(0)
    }
}
