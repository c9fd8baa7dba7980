//! Temp files of writes in progress, and the removal of those a killed process left behind.
//!
//! Every lake write goes to a hidden `.NAME.RANDOM.tmp` beside its target and is renamed into
//! place when whole. A process killed mid-write leaves that temp file (often 0 bytes) and,
//! since a lake file's sketch is written just before the file itself, possibly a sketch with
//! no data file. Neither is ever read, but both stayed for good.
//!
//! A temp file is flock'ed from creation until after its rename, so another process can tell
//! a live write from a dead one without guessing from ages: the kernel drops the lock when the
//! writer dies, however it dies. Sluice versions before this one did not lock, so a temp file
//! is also left alone while it is younger than `LEFTOVER_AGE`.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Younger unlocked temp files may belong to a running Sluice that predates locking.
pub(crate) const LEFTOVER_AGE: Duration = Duration::from_secs(30);

/// A locked temp file; removed on drop unless renamed into place with `persist`.
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates and locks a fresh temp file beside `target`.
    pub(crate) fn beside(target: &Path) -> std::io::Result<TempFile> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
            .unwrap_or_default();
        loop {
            let path = target.with_file_name(format!(
                ".{name}.{}.tmp",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            lock(&file, true)?;
            // A cleanup elsewhere may have taken the name between create and lock (it saw an
            // unlocked file): then this inode is unlinked and a new name is needed.
            if same_file(&file, &path) {
                return Ok(TempFile {
                    path,
                    file,
                    persisted: false,
                });
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Another handle on the same open file (it shares the lock).
    pub(crate) fn handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Renames the file to `target` while still holding the lock, so a cleanup never sees it
    /// unlocked under its temp name.
    pub(crate) fn persist(mut self, target: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn lock(file: &File, wait: bool) -> std::io::Result<bool> {
    flock(file, libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB })
}

/// `flock(2)` with `op`, again after a signal; false when `LOCK_NB` found it held.
pub(crate) fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
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

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// What a cleanup removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    pub temps: usize,
    pub sketches: usize,
}

/// Removes, under `root`, the temp files whose writer is gone and the sketches with neither a
/// data file nor a live write of one. Once per folder per process: `Lake::open` runs for every
/// command, and a dead writer's leftovers do not come back.
pub(crate) fn clean_once(root: &Path) {
    static DONE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let key = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    {
        let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
        if !done.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let removed = clean(root, SystemTime::now());
    if removed != Removed::default() {
        tracing::info!(
            "removed {} temp files and {} sketches left by interrupted writes in {}",
            removed.temps,
            removed.sketches,
            root.display()
        );
    }
}

/// The cleanup itself, with `now` given so tests can age files.
pub(crate) fn clean(root: &Path, now: SystemTime) -> Removed {
    let mut removed = Removed::default();
    clean_dir(root, now, &mut removed, 0);
    removed
}

/// The lake's own tree is `connection=/source=/date=`: nothing of Sluice's is deeper.
const MAX_DEPTH: usize = 3;

/// A lake can be opened anywhere (`--lake ~`, *Open lake*): only Sluice's own folders
/// (`KEY=VALUE`) are entered and only its own temp names (`.NAME.parquet[.sketch][.RANDOM].tmp`)
/// are removed, never another program's hidden temp file.
fn is_lake_dir(name: &str) -> bool {
    name.contains('=') && !name.starts_with('.')
}

fn is_lake_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let ours = |target: &str| {
        target.ends_with(".parquet")
            || target.ends_with(".parquet.sketch")
            || crate::retire::is_record(target)
    };
    ours(rest)
        || rest.rsplit_once('.').is_some_and(|(target, random)| {
            random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit()) && ours(target)
        })
}

fn clean_dir(dir: &Path, now: SystemTime, removed: &mut Removed, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut sketches = Vec::new();
    let mut has_temp = false;
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().to_string();
        if kind.is_dir() {
            if depth < MAX_DEPTH && is_lake_dir(&name) {
                clean_dir(&e.path(), now, removed, depth + 1);
            }
        } else if kind.is_file() && is_lake_temp(&name) {
            has_temp = true;
            if remove_if_dead(&e.path(), now) {
                removed.temps += 1;
            }
        } else if kind.is_file() && name.starts_with('.') && name.ends_with(".parquet.sketch") {
            sketches.push(name);
        }
    }
    if sketches.is_empty() {
        return;
    }
    // Writers lock the data file's temp before writing its sketch and rename it only when
    // whole, so a sketch is an orphan only if, looking again now, it has neither a live temp
    // nor (checked after the temps, since the rename may happen in between) its data file.
    let live = if has_temp {
        live_targets(dir)
    } else {
        HashSet::new()
    };
    for sketch in sketches {
        let data = &sketch[1..sketch.len() - ".sketch".len()];
        if live.contains(data) || dir.join(data).exists() {
            continue;
        }
        let path = dir.join(&sketch);
        if !old_enough(&path, now) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed.sketches += 1;
        }
    }
}

/// The names of the files whose temp file in `dir` is locked by a live writer.
fn live_targets(dir: &Path) -> HashSet<String> {
    let mut live = HashSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return live;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(stem) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .map(|(target, _)| target.to_string())
        else {
            continue;
        };
        match File::open(e.path()) {
            Ok(f) if !matches!(lock(&f, false), Ok(true)) => {
                live.insert(stem);
            }
            _ => {}
        }
    }
    live
}

fn old_enough(path: &Path, now: SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= LEFTOVER_AGE))
}

/// Removes a temp file nobody holds locked (and that is not recent, see `LEFTOVER_AGE`).
fn remove_if_dead(path: &Path, now: SystemTime) -> bool {
    if !old_enough(path, now) {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    if !matches!(lock(&file, false), Ok(true)) {
        return false;
    }
    // Holding the lock, the name must still be this file: a writer may have renamed it into
    // place and closed it since we opened it.
    same_file(&file, path) && std::fs::remove_file(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_in_progress_and_its_sketch_survive_a_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("part-2-1-aaaa.parquet");
        let tmp = TempFile::beside(&data).unwrap();
        std::fs::write(dir.path().join(".part-2-1-aaaa.parquet.sketch"), b"s").unwrap();
        // Old enough to be taken for a leftover: only the lock protects them.
        age(tmp.path());
        age(&dir.path().join(".part-2-1-aaaa.parquet.sketch"));
        assert_eq!(clean(dir.path(), SystemTime::now()), Removed::default());
        assert!(tmp.path().exists());
        tmp.persist(&data).unwrap();
        assert_eq!(clean(dir.path(), SystemTime::now()), Removed::default());
        assert_eq!(
            names(dir.path()),
            [".part-2-1-aaaa.parquet.sketch", "part-2-1-aaaa.parquet"]
        );
    }

    #[test]
    fn another_programs_temp_files_are_never_touched() {
        // A lake opened at a home folder: its editors' and downloads' temp files stay.
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("projects");
        std::fs::create_dir_all(&other).unwrap();
        let theirs = [
            dir.path().join(".bashrc.swp.tmp"),
            dir.path().join(".download.12345678.tmp"),
            other.join(".part-1-1-x.parquet.1234abcd.tmp"),
        ];
        for p in &theirs {
            std::fs::write(p, b"x").unwrap();
            age(p);
        }
        assert_eq!(clean(dir.path(), SystemTime::now()), Removed::default());
        assert!(theirs.iter().all(|p| p.exists()));
    }

    #[test]
    fn what_a_killed_writer_left_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("connection=c/source=s/date=2026-11-20");
        std::fs::create_dir_all(&d).unwrap();
        let leftovers = [
            ".part-2-1-dead.parquet.1234abcd.tmp",
            ".part-2-1-dead.parquet.sketch",
            ".part-4-3-kept.parquet.sketch.tmp",
            ".part-6-5-gone.parquet.sketch",
        ];
        let kept = [
            ".part-4-3-kept.parquet.sketch",
            "part-4-3-kept.parquet",
            ".sluice-other.txt",
        ];
        for n in leftovers.iter().chain(&kept) {
            std::fs::write(d.join(n), b"").unwrap();
            age(&d.join(n));
        }
        // Unlocked but just written: maybe a running Sluice from before temp files were locked.
        std::fs::write(d.join(".part-8-7-young.parquet.99999999.tmp"), b"").unwrap();
        let removed = clean(dir.path(), SystemTime::now());
        assert_eq!(
            removed,
            Removed {
                temps: 2,
                sketches: 2
            }
        );
        let mut want: Vec<&str> = kept.to_vec();
        want.push(".part-8-7-young.parquet.99999999.tmp");
        want.sort();
        assert_eq!(names(&d), want);
        // Later, the young one is old and still unlocked: its writer is gone.
        let later = SystemTime::now() + LEFTOVER_AGE + Duration::from_secs(1);
        assert_eq!(clean(dir.path(), later).temps, 1);
    }

    #[test]
    fn a_dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = TempFile::beside(&dir.path().join("x.parquet")).unwrap();
        let path = tmp.path().to_path_buf();
        assert!(path.exists());
        drop(tmp);
        assert!(!path.exists());
    }
}
