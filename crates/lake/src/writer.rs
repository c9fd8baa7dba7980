//! Batched, atomic Parquet writes: events are buffered per partition folder and flushed by
//! row count, bytes or age (whichever comes first) to a temp file that is fsynced and renamed,
//! so a reader never sees half a file and a flushed batch survives a crash.

use crate::layout::{io_err, Lake, LakeError};
use crate::schema::{arrow_schema, to_batch};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sluice_model::Event;
use std::path::{Path, PathBuf};
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

/// A partition folder's events; found by comparing borrowed names and a day number, because
/// formatting a date and cloning names per event showed up in capture profiles.
struct Bucket {
    connection: String,
    source: String,
    day: i64,
    events: Vec<Event>,
}

const US_PER_DAY: i64 = 86_400_000_000;

/// What a background write returns: its stats, or the error and the events it could not write.
type Done = Result<FlushStats, (LakeError, Vec<Bucket>)>;

/// The thread that encodes and writes Parquet, so capture keeps decoding while a file is
/// written. One batch may wait while another is written, which bounds memory.
struct Flusher {
    tx: Option<SyncSender<Vec<Bucket>>>,
    done: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start(lake: Lake) -> Option<Flusher> {
        let (tx, rx) = sync_channel::<Vec<Bucket>>(1);
        let (done_tx, done) = channel();
        let handle = std::thread::Builder::new()
            .name("sluice-lake-writer".into())
            .spawn(move || {
                for buckets in rx {
                    if done_tx.send(write_buckets(&lake, buckets)).is_err() {
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
        let day = event
            .timestamp_us
            .unwrap_or(event.captured_at_us)
            .div_euclid(US_PER_DAY);
        self.bytes += event.payload.len() + event.decoded.as_ref().map_or(0, String::len) + 64;
        self.rows += 1;
        self.oldest.get_or_insert_with(Instant::now);
        let found = self
            .buffers
            .iter_mut()
            .find(|b| b.day == day && b.source == event.source && b.connection == event.connection);
        match found {
            Some(b) => b.events.push(event),
            None => self.buffers.push(Bucket {
                connection: event.connection.clone(),
                source: event.source.clone(),
                day,
                events: vec![event],
            }),
        }
        if self.rows >= self.policy.max_rows || self.bytes >= self.policy.max_bytes {
            self.hand_off();
        }
        self.collect(false)
    }

    /// Hands the buffer off when its oldest event has waited `max_age`; returns what finished.
    pub fn flush_if_due(&mut self) -> Result<Option<FlushStats>, LakeError> {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.policy.max_age)
        {
            self.hand_off();
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
        self.hand_off();
        Ok(self.collect(true)?.unwrap_or_default())
    }

    fn hand_off(&mut self) {
        if self.buffers.is_empty() {
            return;
        }
        let buckets = std::mem::take(&mut self.buffers);
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        self.oldest = None;
        if self.flusher.is_none() {
            self.flusher = Flusher::start(self.lake.clone());
        }
        let sent = match self.flusher.as_ref().and_then(|f| f.tx.as_ref()) {
            Some(tx) => tx.send(buckets).map_err(|e| e.0),
            None => Err(buckets),
        };
        if let Err(buckets) = sent {
            self.inline_done.push(write_buckets(&self.lake, buckets));
        }
        self.in_flight.push(rows);
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
                Err((e, buckets)) => {
                    for b in buckets {
                        self.rows += b.events.len();
                        self.buffers.push(b);
                    }
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

fn write_buckets(lake: &Lake, mut buckets: Vec<Bucket>) -> Done {
    let mut stats = FlushStats::default();
    while let Some(b) = buckets.pop() {
        let date = chrono::DateTime::from_timestamp_micros(b.day * US_PER_DAY)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let dir = lake.partition_dir(&b.connection, &b.source, &date);
        match write_partition_file(&dir, &b.events) {
            Ok(bytes) => {
                stats.rows += b.events.len() as u64;
                stats.bytes += bytes;
                stats.files += 1;
            }
            Err(e) => {
                buckets.push(b);
                return Err((e, buckets));
            }
        }
    }
    Ok(stats)
}

fn write_partition_file(dir: &Path, events: &[Event]) -> Result<u64, LakeError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    // The time range in the name lets search read the newest files first and stop early.
    let times = events
        .iter()
        .map(|e| e.timestamp_us.unwrap_or(e.captured_at_us).max(0));
    let (min, max) = times.fold((i64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let name = format!(
        "part-{max}-{min}-{}.parquet",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let path = dir.join(&name);
    let bytes = write_parquet(&path, events, false)?;
    // The folder entry must be durable too, or a crash could forget the rename.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(bytes)
}

/// Writes events to one Parquet file atomically (temp file, fsync, rename). Exports pass
/// `with_partition_columns` so the file stands alone outside the lake.
pub fn write_parquet(
    path: &Path,
    events: &[Event],
    with_partition_columns: bool,
) -> Result<u64, LakeError> {
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    let perr = |reason: String| LakeError::Parquet {
        path: path.display().to_string(),
        reason,
    };
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        // Dictionaries and statistics pay off only on repetitive, filterable columns; on ids,
        // payloads and JSON they cost capture time (the interner led the profile) for nothing.
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(100_000))
            .set_dictionary_enabled(false);
        for col in ["bus", "schema", "encoding", "connection", "source"] {
            props = props.set_column_dictionary_enabled(ColumnPath::from(col), true);
        }
        for col in [
            "id",
            "key",
            "payload",
            "payload_text",
            "decoded",
            "key_decoded",
            "decode_error",
        ] {
            props =
                props.set_column_statistics_enabled(ColumnPath::from(col), EnabledStatistics::None);
        }
        let props = props.build();
        let mut writer =
            ArrowWriter::try_new(file, arrow_schema(with_partition_columns), Some(props))
                .map_err(|e| perr(e.to_string()))?;
        for chunk in events.chunks(50_000) {
            let batch = to_batch(chunk, with_partition_columns).map_err(|e| perr(e.to_string()))?;
            writer.write(&batch).map_err(|e| perr(e.to_string()))?;
        }
        let file = writer.into_inner().map_err(|e| perr(e.to_string()))?;
        file.sync_all().map_err(io_err(&tmp))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&tmp, path).map_err(io_err(path))?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
