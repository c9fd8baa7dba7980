//! Replacing and removing lake files while captures write and searches read, so that no
//! reader ever sees an event twice or misses one.
//!
//! Compaction and pruning replace some files of a partition folder by one new file (or by
//! none). Readers hold a shared lock on `ROOT/.sluice-readers.lock` from before they list files
//! until their query ends; the switch (the new file renamed into place, the old ones deleted)
//! happens only under the exclusive lock, so no reader lists a folder halfway through a switch
//! and none has listed a file that is then deleted under it. A directory listing is no
//! snapshot, so nothing a reader must see together may change while one lists. When readers
//! keep the lock busy past the wait, the prepared files are dropped and the old ones stay:
//! nothing changes, and a later run tries again.
//!
//! A kill between the rename and the last deletion would leave the new file beside some old
//! ones, so a *retire record* `_retired-ID.json` naming both is written before the switch and
//! removed after it. While a record's new file exists, every listing (`Lake::files`) leaves out
//! the old files it names, and the next compaction or prune deletes them. A record whose new
//! file never appeared is a run that died before its switch and is simply removed.
//!
//! One compaction or prune at a time, and none beside a re-decode
//! (`.sluice-maintenance.lock`): each rewrites files, and two of them on one file could undo
//! each other.
//!
//! Record names start with `_`, which Spark and Hive skip; other engines read `*.parquet`
//! only, and one that lists a folder during a switch can see the replaced events twice: the
//! README says how to skip duplicate ids there.

use crate::layout::{io_err, LakeError};
use crate::sketch;
use crate::temp::{flock, TempFile};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const READERS_LOCK: &str = ".sluice-readers.lock";
const MAINTENANCE_LOCK: &str = ".sluice-maintenance.lock";
pub(crate) const RECORD_PREFIX: &str = "_retired-";
const RECORD_SUFFIX: &str = ".json";

/// Files of one partition folder that are no longer part of the lake.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The file holding their events now.
    replaced_by: String,
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
            if present.contains(&r.replaced_by) {
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

/// A new file of a folder, written and fsynced under its temp name, and the files it replaces.
pub(crate) struct Prepared {
    pub(crate) tmp: TempFile,
    pub(crate) target: PathBuf,
    pub(crate) old: Vec<String>,
}

impl Prepared {
    /// Drops the new file and its sketch (the temp file goes as it drops).
    fn abandon(self) {
        let _ = std::fs::remove_file(sketch::sketch_path(&self.target));
    }
}

impl Maintenance {
    /// Puts the prepared files of `dir` in place of the files they replace, and deletes
    /// `gone` (files whose every event goes), all under the readers' exclusive lock, waiting
    /// at most `wait` for readers to finish. Returns false, having changed nothing, when
    /// readers kept the lake busy all along.
    pub(crate) fn switch(
        &self,
        dir: &Path,
        prepared: Vec<Prepared>,
        gone: &[String],
        wait: Duration,
    ) -> Result<bool, LakeError> {
        if prepared.is_empty() && gone.is_empty() {
            return Ok(true);
        }
        let mut records = Vec::new();
        for p in &prepared {
            let record = Record {
                replaced_by: p
                    .target
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                retired: p.old.clone(),
            };
            match write_record(dir, &record) {
                Ok(path) => records.push(path),
                Err(e) => {
                    remove_all(&records);
                    prepared.into_iter().for_each(Prepared::abandon);
                    return Err(e);
                }
            }
        }
        let Some(_exclusive) = self.readers_exclusive(wait)? else {
            remove_all(&records);
            prepared.into_iter().for_each(Prepared::abandon);
            return Ok(false);
        };
        for p in prepared {
            let target = p.target.clone();
            p.tmp.persist(&target).map_err(io_err(&target))?;
            delete_all(dir, &p.old)?;
        }
        delete_all(dir, gone)?;
        sync_dir(dir);
        remove_all(&records);
        sync_dir(dir);
        Ok(true)
    }

    /// Finishes what runs killed mid-switch left in `dirs`: the old files a record in force
    /// names are deleted (under the readers' exclusive lock), records of runs that died before
    /// their switch are removed. Busy when readers kept the lake busy past `wait`: new
    /// records must not be written beside unfinished ones.
    pub(crate) fn finish_leftovers(
        &self,
        dirs: &[PathBuf],
        wait: Duration,
    ) -> Result<(), LakeError> {
        let mut in_force = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !is_record(&name) {
                    continue;
                }
                let path = e.path();
                match read_record(&path) {
                    Some(r) if dir.join(&r.replaced_by).exists() => in_force.push((path, r)),
                    _ => std::fs::remove_file(&path).map_err(io_err(&path))?,
                }
            }
        }
        if in_force.is_empty() {
            return Ok(());
        }
        let Some(_exclusive) = self.readers_exclusive(wait)? else {
            return Err(LakeError::Busy(format!(
                "cannot finish an interrupted compaction in {}: searches kept the lake busy; try again when they end",
                self.root.display()
            )));
        };
        for (path, r) in in_force {
            let dir = path.parent().unwrap_or(Path::new("."));
            delete_all(dir, &r.retired)?;
            sync_dir(dir);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }

    fn readers_exclusive(&self, wait: Duration) -> Result<Option<File>, LakeError> {
        let lock = lock_file(&self.root, READERS_LOCK).map_err(io_err(&self.root))?;
        let start = Instant::now();
        loop {
            if flock(&lock, libc::LOCK_EX | libc::LOCK_NB).map_err(io_err(&self.root))? {
                return Ok(Some(lock));
            }
            if start.elapsed() >= wait {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn write_record(dir: &Path, record: &Record) -> Result<PathBuf, LakeError> {
    let name = format!(
        "{RECORD_PREFIX}{}{RECORD_SUFFIX}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let path = dir.join(name);
    let tmp = TempFile::beside(&path).map_err(io_err(dir))?;
    let bytes = serde_json::to_vec(record).map_err(|e| LakeError::Io {
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
    sync_dir(dir);
    Ok(path)
}

/// Deletes files of `dir` and their sketches; one already gone is fine.
fn delete_all(dir: &Path, names: &[String]) -> Result<(), LakeError> {
    for f in names {
        let file = dir.join(f);
        let _ = std::fs::remove_file(sketch::sketch_path(&file));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&file)(e)),
        }
    }
    Ok(())
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
