//! Batched, atomic Parquet writes: events are buffered per partition folder and flushed by
//! row count, bytes or age (whichever comes first) to a temp file that is fsynced and renamed,
//! so a reader never sees half a file and a flushed batch survives a crash.

use crate::columns::{self as col, Store, COLUMNS};
use crate::layout::{io_err, Lake, LakeError};
use crate::schema::{EventRef, RowBuilder};
use crate::sketch;
use crate::temp::TempFile;
use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sluice_model::Event;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When buffered events are written out.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    pub max_rows: usize,
    pub max_bytes: usize,
    /// Bounds how long a captured event waits before search can see it.
    pub max_age: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            max_rows: 200_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_millis(500),
        }
    }
}

/// What one flush made durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
}

/// A partition folder's rows, kept as column builders; found by comparing borrowed names and a
/// day number, because formatting a date and cloning names per event showed up in profiles.
struct Bucket {
    connection: String,
    source: String,
    day: i64,
    rows: RowBuilder,
}

/// Finished rows of one partition folder, on their way to a file.
struct Chunk {
    connection: String,
    source: String,
    day: i64,
    batch: RecordBatch,
}

const US_PER_DAY: i64 = 86_400_000_000;

/// What a background write returns: its stats, or the error and the rows it could not write.
type Done = Result<FlushStats, (LakeError, Vec<Chunk>)>;

/// The thread that encodes and writes Parquet, so capture keeps decoding while a file is
/// written. One batch may wait while another is written, which bounds memory.
struct Flusher {
    tx: Option<SyncSender<Vec<Chunk>>>,
    done: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start(lake: Lake) -> Option<Flusher> {
        let (tx, rx) = sync_channel::<Vec<Chunk>>(1);
        let (done_tx, done) = channel();
        let handle = std::thread::Builder::new()
            .name("sluice-lake-writer".into())
            .spawn(move || {
                for chunks in rx {
                    if done_tx.send(write_chunks(&lake, chunks)).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Flusher {
            tx: Some(tx),
            done,
            handle: Some(handle),
        })
    }
}

pub struct LakeWriter {
    lake: Lake,
    policy: FlushPolicy,
    buffers: Vec<Bucket>,
    /// Rows a failed write handed back, written again with the next batch.
    retry: Vec<Chunk>,
    rows: usize,
    bytes: usize,
    oldest: Option<Instant>,
    flusher: Option<Flusher>,
    /// Batches handed off and not yet reported back.
    in_flight: Vec<usize>,
    /// Results of writes done inline (when no writer thread could be started).
    inline_done: Vec<Done>,
}

impl LakeWriter {
    pub fn new(lake: Lake, policy: FlushPolicy) -> Self {
        LakeWriter {
            lake,
            policy,
            buffers: Vec::new(),
            retry: Vec::new(),
            rows: 0,
            bytes: 0,
            oldest: None,
            flusher: None,
            in_flight: Vec::new(),
            inline_done: Vec::new(),
        }
    }

    /// Buffers an event; hands the buffer to the writer thread at the row or byte limit.
    /// Returns what finished writing since the last call.
    pub fn push(&mut self, event: Event) -> Result<Option<FlushStats>, LakeError> {
        self.push_ref(&EventRef::of(&event))
    }

    /// `push` for borrowed rows: capture appends what it read without building an `Event`.
    pub fn push_ref(&mut self, e: &EventRef<'_>) -> Result<Option<FlushStats>, LakeError> {
        let day = e
            .timestamp_us
            .unwrap_or(e.captured_at_us)
            .div_euclid(US_PER_DAY);
        self.bytes += e.weight();
        self.rows += 1;
        self.oldest.get_or_insert_with(Instant::now);
        let found = self
            .buffers
            .iter_mut()
            .find(|b| b.day == day && b.source == e.source && b.connection == e.connection);
        match found {
            Some(b) => b.rows.append(e),
            None => {
                let mut rows = RowBuilder::new(false);
                rows.append(e);
                self.buffers.push(Bucket {
                    connection: e.connection.to_string(),
                    source: e.source.to_string(),
                    day,
                    rows,
                });
            }
        }
        if self.rows >= self.policy.max_rows || self.bytes >= self.policy.max_bytes {
            self.hand_off()?;
        }
        self.collect(false)
    }

    /// Hands the buffer off when its oldest event has waited `max_age`; returns what finished.
    pub fn flush_if_due(&mut self) -> Result<Option<FlushStats>, LakeError> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.policy.max_age)
        {
            self.hand_off()?;
        }
        self.collect(false)
    }

    /// Events not yet durable: buffered here or being written.
    pub fn buffered(&self) -> usize {
        self.rows + self.in_flight.iter().sum::<usize>()
    }

    /// Writes everything and waits until it is durable. Events that could not be written stay
    /// buffered and the error is returned.
    pub fn flush(&mut self) -> Result<FlushStats, LakeError> {
        // Written on this thread, beside the writer thread still finishing the batch before:
        // the caller waits for both anyway, and at the end of a capture both cores are free.
        self.hand_off_to(false)?;
        Ok(self.collect(true)?.unwrap_or_default())
    }

    fn hand_off(&mut self) -> Result<(), LakeError> {
        self.hand_off_to(true)
    }

    /// Turns the buffers into chunks and has them written, by the writer thread when
    /// `background` (started on first use), else here and now.
    fn hand_off_to(&mut self, background: bool) -> Result<(), LakeError> {
        if self.buffers.is_empty() && self.retry.is_empty() {
            return Ok(());
        }
        let mut chunks = std::mem::take(&mut self.retry);
        let rows = std::mem::take(&mut self.rows);
        for mut b in std::mem::take(&mut self.buffers) {
            let batch = b.rows.finish().map_err(|e| LakeError::Parquet {
                path: self.lake.root().display().to_string(),
                reason: e.to_string(),
            })?;
            chunks.push(Chunk {
                connection: b.connection,
                source: b.source,
                day: b.day,
                batch,
            });
        }
        self.bytes = 0;
        self.oldest = None;
        if background && self.flusher.is_none() {
            self.flusher = Flusher::start(self.lake.clone());
        }
        let sent = match self.flusher.as_ref().and_then(|f| f.tx.as_ref()) {
            Some(tx) if background => tx.send(chunks).map_err(|e| e.0),
            _ => Err(chunks),
        };
        if let Err(chunks) = sent {
            self.inline_done.push(write_chunks(&self.lake, chunks));
        }
        self.in_flight.push(rows);
        Ok(())
    }

    /// Gathers finished writes; with `wait`, every outstanding one.
    fn collect(&mut self, wait: bool) -> Result<Option<FlushStats>, LakeError> {
        let mut stats: Option<FlushStats> = None;
        let mut error = None;
        while !self.in_flight.is_empty() {
            let done = match (self.inline_done.pop(), &self.flusher) {
                (Some(d), _) => d,
                (None, Some(f)) if wait => match f.done.recv() {
                    Ok(d) => d,
                    Err(_) => break,
                },
                (None, Some(f)) => match f.done.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                },
                (None, None) => break,
            };
            self.in_flight.remove(0);
            match done {
                Ok(f) => {
                    let s = stats.get_or_insert_with(FlushStats::default);
                    s.rows += f.rows;
                    s.bytes += f.bytes;
                    s.files += f.files;
                }
                Err((e, chunks)) => {
                    self.rows += chunks.iter().map(|c| c.batch.num_rows()).sum::<usize>();
                    self.retry.extend(chunks);
                    error = Some(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

impl Drop for LakeWriter {
    fn drop(&mut self) {
        if let Some(f) = &mut self.flusher {
            f.tx.take();
            if let Some(h) = f.handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn write_chunks(lake: &Lake, mut chunks: Vec<Chunk>) -> Done {
    let mut stats = FlushStats::default();
    while let Some(c) = chunks.pop() {
        let date = chrono::DateTime::from_timestamp_micros(c.day * US_PER_DAY)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let dir = lake.partition_dir(&c.connection, &c.source, &date);
        match write_partition_file(&dir, &c.batch) {
            Ok(bytes) => {
                stats.rows += c.batch.num_rows() as u64;
                stats.bytes += bytes;
                stats.files += 1;
            }
            Err(e) => {
                chunks.push(c);
                return Err((e, chunks));
            }
        }
    }
    Ok(stats)
}

/// Each row's time as lake files are named and partitioned by: the event's own time, else
/// when it was captured (microseconds, never below 0).
pub(crate) fn row_times(batch: &RecordBatch) -> impl Iterator<Item = i64> + '_ {
    let times = |name: &str| {
        batch.column_by_name(name).and_then(|c| {
            c.as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .cloned()
        })
    };
    let (ts, cap) = (times(col::TIMESTAMP.name), times(col::CAPTURED_AT.name));
    (0..batch.num_rows()).map(move |i| {
        match (&ts, &cap) {
            (Some(ts), _) if !ts.is_null(i) => ts.value(i),
            (_, Some(cap)) => cap.value(i),
            _ => 0,
        }
        .max(0)
    })
}

/// A new lake file's name: the time range in it lets search read the newest files first and
/// stop early (`layout::file_times` reads it back).
pub(crate) fn part_name(min: i64, max: i64) -> String {
    format!(
        "part-{max}-{min}-{}.parquet",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn write_partition_file(dir: &Path, batch: &RecordBatch) -> Result<u64, LakeError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (mut min, mut max) = (i64::MAX, 0);
    for t in row_times(batch) {
        min = min.min(t);
        max = max.max(t);
    }
    let path = dir.join(part_name(min, max));
    // The data file's temp is locked before its sketch appears, so a cleanup in another
    // process never takes the sketch of a write in progress for an orphan.
    let tmp = TempFile::beside(&path).map_err(io_err(dir))?;
    // Without its sketch a file is simply always read, so a failed sketch only costs speed.
    if let Err(e) = sketch::of_batch(batch).write(&path) {
        tracing::warn!("no search sketch for {}: {e}", path.display());
    }
    let bytes = write_into(tmp, &path, batch.schema(), |w| w.write(batch)).inspect_err(|_| {
        let _ = std::fs::remove_file(sketch::sketch_path(&path));
    })?;
    // The folder entry must be durable too, or a crash could forget the rename.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(bytes)
}

/// Writes one Parquet file atomically: temp file, fsync, rename. `fill` writes the batches.
pub(crate) fn write_atomically(
    path: &Path,
    schema: SchemaRef,
    fill: impl FnOnce(&mut ArrowWriter<std::fs::File>) -> Result<(), parquet::errors::ParquetError>,
) -> Result<u64, LakeError> {
    // Unique per write: two re-decodes of one file may run at once, and each must rename a
    // whole file of its own.
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = TempFile::beside(path).map_err(io_err(dir))?;
    write_into(tmp, path, schema, fill)
}

/// Fills `tmp` and renames it to `path`; on failure `tmp` is removed as it drops.
fn write_into(
    tmp: TempFile,
    path: &Path,
    schema: SchemaRef,
    fill: impl FnOnce(&mut ArrowWriter<std::fs::File>) -> Result<(), parquet::errors::ParquetError>,
) -> Result<u64, LakeError> {
    let (tmp, bytes) = fill_temp(tmp, path, schema, fill)?;
    tmp.persist(path).map_err(io_err(path))?;
    Ok(bytes)
}

/// Fills and fsyncs `tmp`, the future `path`, leaving the rename to the caller.
pub(crate) fn fill_temp(
    tmp: TempFile,
    path: &Path,
    schema: SchemaRef,
    fill: impl FnOnce(&mut ArrowWriter<std::fs::File>) -> Result<(), parquet::errors::ParquetError>,
) -> Result<(TempFile, u64), LakeError> {
    let perr = |reason: String| LakeError::Parquet {
        path: path.display().to_string(),
        reason,
    };
    let file = tmp.handle().map_err(io_err(tmp.path()))?;
    // Dictionaries and statistics pay off only on repetitive, filterable columns; on ids,
    // payloads and JSON they cost capture time (the interner led the profile) for nothing.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(sketch::BLOCK_ROWS))
        .set_dictionary_enabled(false);
    for c in COLUMNS {
        let path = ColumnPath::from(c.name);
        props = match c.store {
            Store::Plain => props,
            Store::Dictionary => props.set_column_dictionary_enabled(path, true),
            Store::NoStatistics => {
                props.set_column_statistics_enabled(path, EnabledStatistics::None)
            }
        };
    }
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(props.build())).map_err(|e| perr(e.to_string()))?;
    fill(&mut writer).map_err(|e| perr(e.to_string()))?;
    let file = writer.into_inner().map_err(|e| perr(e.to_string()))?;
    file.sync_all().map_err(io_err(tmp.path()))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((tmp, bytes))
}
