//! Compaction (many small files of a partition folder merged into few) and pruning (events
//! older than a cutoff removed), both safe beside running captures and searches: new files
//! are written whole under temp names, and each folder switches to them at once, when no
//! reader is listing or reading it (see `retire`), so a reader sees either the old files or
//! their replacement, never both and never neither.
//!
//! Captures flush every half second by default, so a capture left running writes about
//! 170,000 files a day: each search then lists and opens them all. Compaction is what keeps
//! such a lake fast.

use crate::columns::arrow_schema;
use crate::layout::{escape, file_times, io_err, Lake, LakeError};
use crate::retire::{self, Prepared};
use crate::sketch;
use crate::temp::TempFile;
use crate::writer::{fill_temp, part_name, row_times};
use arrow::array::{new_null_array, ArrayRef, BooleanArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which partition folders a compaction or prune touches; `None` is every one.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub connection: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub scope: Scope,
    /// Files are merged up to about this size on disk; files of half of it or more are left.
    pub target_bytes: u64,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
    /// How long a folder's switch waits for running searches to end before it gives up
    /// (changing nothing there; a later run tries again).
    pub reader_wait: Duration,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            scope: Scope::default(),
            target_bytes: 64 << 20,
            dry_run: false,
            reader_wait: Duration::from_secs(10),
        }
    }
}

/// What a compaction did (or, on a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct CompactReport {
    pub dry_run: bool,
    /// Partition folders looked at.
    pub folders: u64,
    /// Small files merged, and the files they became.
    pub files_merged: u64,
    pub files_written: u64,
    /// Events in the merged files (all of them are in the new ones).
    pub events: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Files left as they were: not written by Sluice, or by a newer Sluice.
    pub files_skipped: u64,
    /// Files left unmerged because searches kept the lake busy for the whole wait; a later
    /// run merges them.
    pub left_for_later: u64,
}

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub scope: Scope,
    /// Events older than this (event time, else capture time; microseconds) are removed.
    pub before_us: i64,
    pub dry_run: bool,
    pub reader_wait: Duration,
}

/// What a prune did (or would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct PruneReport {
    pub dry_run: bool,
    pub folders: u64,
    /// Files whose every event was older than the cutoff.
    pub files_removed: u64,
    /// Files holding events on both sides of it, written again with the newer ones only.
    pub files_rewritten: u64,
    pub events_removed: u64,
    pub bytes_removed: u64,
    pub files_skipped: u64,
    /// Files left as they were because searches kept the lake busy for the whole wait; a
    /// later run prunes them.
    pub left_for_later: u64,
}

/// One finished file of a partition folder.
struct Part {
    path: PathBuf,
    name: String,
    bytes: u64,
    times: Option<(i64, i64)>,
}

impl Lake {
    /// The `connection=/source=/date=` folders in `scope`.
    fn partition_dirs(&self, scope: &Scope) -> Vec<PathBuf> {
        let level = |dir: &Path, key: &str, want: &Option<String>| -> Vec<PathBuf> {
            let want = want.as_ref().map(|v| format!("{key}={}", escape(v)));
            let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .filter(|e| {
                            let name = e.file_name().to_string_lossy().to_string();
                            match &want {
                                Some(w) => name == *w,
                                None => name.starts_with(&format!("{key}=")),
                            }
                        })
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default();
            out.sort();
            out
        };
        let mut out = Vec::new();
        for c in level(self.root(), "connection", &scope.connection) {
            for s in level(&c, "source", &scope.source) {
                out.extend(level(&s, "date", &None));
            }
        }
        out
    }

    /// Merges the small files of each partition folder in `opts.scope`. `progress` is called
    /// after each folder; returning false stops there (what is merged stays merged).
    pub fn compact(
        &self,
        opts: &CompactOptions,
        progress: &mut dyn FnMut(&CompactReport) -> bool,
    ) -> Result<CompactReport, LakeError> {
        let m = retire::maintenance(self.root(), "compact")?;
        let dirs = self.partition_dirs(&opts.scope);
        let mut r = CompactReport {
            dry_run: opts.dry_run,
            ..CompactReport::default()
        };
        if !opts.dry_run {
            // What a killed run left half switched goes first.
            m.finish_leftovers(&dirs, opts.reader_wait)?;
        }
        let schema = arrow_schema(false);
        for dir in &dirs {
            r.folders += 1;
            let mut prepared = Vec::new();
            let mut done = CompactReport::default();
            let mut small: Vec<Part> = parts(dir)
                .into_iter()
                .filter(|p| p.bytes < opts.target_bytes / 2)
                .collect();
            small.sort_by(|a, b| (a.times, &a.name).cmp(&(b.times, &b.name)));
            for group in groups(small, opts.target_bytes) {
                if opts.dry_run {
                    r.files_merged += group.len() as u64;
                    r.files_written += 1;
                    r.bytes_before += group.iter().map(|p| p.bytes).sum::<u64>();
                    r.events += group
                        .iter()
                        .map(|p| file_rows(&p.path).unwrap_or(0))
                        .sum::<u64>();
                    continue;
                }
                let (batches, used) = read_group(&group, &schema, &mut r.files_skipped);
                if used.len() < 2 {
                    continue;
                }
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let (p, bytes) = prepare_replacement(dir, &schema, &batches, &used)?;
                prepared.push(p);
                done.files_merged += used.len() as u64;
                done.files_written += 1;
                done.events += rows as u64;
                done.bytes_before += used.iter().map(|p| p.bytes).sum::<u64>();
                done.bytes_after += bytes;
            }
            if m.switch(dir, prepared, &[], opts.reader_wait)? {
                r.files_merged += done.files_merged;
                r.files_written += done.files_written;
                r.events += done.events;
                r.bytes_before += done.bytes_before;
                r.bytes_after += done.bytes_after;
            } else {
                r.left_for_later += done.files_merged;
            }
            if !progress(&r) {
                break;
            }
        }
        Ok(r)
    }

    /// Removes the events older than `opts.before_us` in `opts.scope`: whole files where every
    /// event is older, else the file written again without them.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, LakeError> {
        let m = retire::maintenance(self.root(), "prune")?;
        let dirs = self.partition_dirs(&opts.scope);
        let mut r = PruneReport {
            dry_run: opts.dry_run,
            ..PruneReport::default()
        };
        if !opts.dry_run {
            m.finish_leftovers(&dirs, opts.reader_wait)?;
        }
        let schema = arrow_schema(false);
        for dir in &dirs {
            r.folders += 1;
            let mut gone = Vec::new();
            let mut prepared = Vec::new();
            let mut done = PruneReport::default();
            for p in parts(dir) {
                match p.times {
                    Some((_, max)) if max < opts.before_us => {
                        // Whole file: its row count is all that is read.
                        done.events_removed += file_rows(&p.path).unwrap_or(0);
                        done.files_removed += 1;
                        done.bytes_removed += p.bytes;
                        gone.push(p.name);
                    }
                    Some((min, _)) if min >= opts.before_us => {}
                    _ => {
                        let Some((kept, removed)) =
                            split_file(&p, &schema, opts.before_us, &mut r.files_skipped)
                        else {
                            continue;
                        };
                        if removed == 0 {
                            continue;
                        }
                        done.events_removed += removed;
                        if kept.iter().all(|b| b.num_rows() == 0) {
                            done.files_removed += 1;
                            done.bytes_removed += p.bytes;
                            gone.push(p.name);
                        } else {
                            done.files_rewritten += 1;
                            if !opts.dry_run {
                                prepared.push(prepare_replacement(dir, &schema, &kept, &[p])?.0);
                            }
                        }
                    }
                }
            }
            let switched = opts.dry_run || m.switch(dir, prepared, &gone, opts.reader_wait)?;
            if switched {
                r.events_removed += done.events_removed;
                r.files_removed += done.files_removed;
                r.files_rewritten += done.files_rewritten;
                r.bytes_removed += done.bytes_removed;
            } else {
                r.left_for_later += done.files_removed + done.files_rewritten;
            }
        }
        Ok(r)
    }
}

/// The finished Sluice files of one folder (as `Lake::files` lists them).
fn parts(dir: &Path) -> Vec<Part> {
    let mut files = Vec::new();
    crate::layout::collect_here(dir, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().to_string();
            let bytes = std::fs::metadata(&path).ok()?.len();
            Some(Part {
                times: file_times(&path),
                name,
                bytes,
                path,
            })
        })
        .collect()
}

/// Runs of files, in order, each about `target` bytes; a run of one is no merge.
fn groups(files: Vec<Part>, target: u64) -> Vec<Vec<Part>> {
    let mut out: Vec<Vec<Part>> = Vec::new();
    let mut run: Vec<Part> = Vec::new();
    let mut size = 0;
    for f in files {
        size += f.bytes;
        run.push(f);
        if size >= target {
            out.push(std::mem::take(&mut run));
            size = 0;
        }
    }
    out.push(run);
    out.retain(|g| g.len() > 1);
    out
}

/// The rows of a group's files in this version's schema, and the files they came from
/// (files that cannot be read as Sluice files are left out and counted in `skipped`).
fn read_group<'a>(
    group: &'a [Part],
    schema: &SchemaRef,
    skipped: &mut u64,
) -> (Vec<RecordBatch>, Vec<&'a Part>) {
    let mut batches = Vec::new();
    let mut used = Vec::new();
    for p in group {
        match read_conformed(&p.path, schema) {
            Ok(b) => {
                batches.extend(b);
                used.push(p);
            }
            Err(why) => {
                tracing::warn!("compaction leaves {} as it is: {why}", p.path.display());
                *skipped += 1;
            }
        }
    }
    (batches, used)
}

fn read_conformed(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    reader
        .map(|b| conform(&b.map_err(|e| e.to_string())?, schema))
        .collect()
}

/// A batch in `schema`: columns added since the file was written are null, and a column this
/// version does not know refuses the file (merging would drop it).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    for f in batch.schema().fields() {
        if schema.field_with_name(f.name()).is_err() {
            return Err(format!(
                "column {:?} is not one this version of Sluice writes",
                f.name()
            ));
        }
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            // Unsafe casts fail instead of turning a value that does not fit into null.
            Some(c) => arrow::compute::cast_with_options(
                c,
                f.data_type(),
                &arrow::compute::CastOptions {
                    safe: false,
                    ..Default::default()
                },
            )
            .map_err(|e| format!("column {:?}: {e}", f.name())),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

fn file_rows(path: &Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
    Some(b.metadata().file_metadata().num_rows() as u64)
}

/// A file's rows at or after `before_us`, and how many are older.
fn split_file(
    p: &Part,
    schema: &SchemaRef,
    before_us: i64,
    skipped: &mut u64,
) -> Option<(Vec<RecordBatch>, u64)> {
    let batches = match read_conformed(&p.path, schema) {
        Ok(b) => b,
        Err(why) => {
            tracing::warn!("prune leaves {} as it is: {why}", p.path.display());
            *skipped += 1;
            return None;
        }
    };
    let mut removed = 0;
    let mut kept = Vec::new();
    for b in batches {
        let keep: BooleanArray = row_times(&b).map(|t| Some(t >= before_us)).collect();
        removed += keep.false_count() as u64;
        kept.push(arrow::compute::filter_record_batch(&b, &keep).ok()?);
    }
    Some((kept, removed))
}

/// Writes `batches` as one new file of `dir` to replace `old`, sketch first, under its temp
/// name (`Maintenance::switch` puts it in place); returns it and its size.
fn prepare_replacement<P: std::borrow::Borrow<Part>>(
    dir: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    old: &[P],
) -> Result<(Prepared, u64), LakeError> {
    let (mut min, mut max) = (i64::MAX, 0);
    for b in batches {
        for t in row_times(b) {
            min = min.min(t);
            max = max.max(t);
        }
    }
    let path = dir.join(part_name(min, max));
    let tmp = TempFile::beside(&path).map_err(io_err(dir))?;
    if let Err(e) = sketch::of_batches(batches).write(&path) {
        tracing::warn!("no search sketch for {}: {e}", path.display());
    }
    let filled = fill_temp(tmp, &path, schema.clone(), |w| {
        batches.iter().try_for_each(|b| w.write(b))
    });
    let (tmp, bytes) = match filled {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(sketch::sketch_path(&path));
            return Err(e);
        }
    };
    let prepared = Prepared {
        tmp,
        target: path,
        old: old.iter().map(|p| p.borrow().name.clone()).collect(),
    };
    Ok((prepared, bytes))
}
