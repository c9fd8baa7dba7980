//! The commands a window calls, by name with JSON arguments: the desktop shell and
//! `sluice serve` both hand every call to [`Session::call`], so they offer exactly the same
//! API. The table at the bottom is the single list of commands; the UI's TypeScript bindings
//! (`ui/src/bindings.ts`) are generated from it and from the Rust types it names.

use crate::capture::CaptureOptions;
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobInfo, JobUpdate, Jobs};
use crate::render::{utf8, EventView};
use crate::{
    ConnectionAdd, ConnectionAdded, ConnectionSummary, ExportFormat, ReplayRequest, SchemaAdded,
    SchemaListing, Sluice,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sluice_bus::{Health, QueueRead, ReadOptions, SourceInfo};
use sluice_model::{Event, StartFrom};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;
use ts_rs::TS;

/// One window's (or one `sluice serve`'s) view of Sluice: the folders in use and the jobs
/// running.
pub struct Session {
    sluice: Mutex<Sluice>,
    jobs: Jobs,
}

#[derive(Debug, Default, Deserialize, TS)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, TS)]
pub struct NameArgs {
    pub name: String,
}

#[derive(Debug, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    pub config_dir: String,
    pub lake_dir: String,
}

/// A file dropped on the window: its path relative to what was dropped, and its bytes.
#[derive(Debug, Deserialize, TS)]
pub struct DroppedFile {
    pub path: String,
    pub base64: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct SchemaDropArgs {
    pub files: Vec<DroppedFile>,
}

#[derive(Debug, Deserialize, TS)]
pub struct SchemaMapArgs {
    pub connection: String,
    pub topic: String,
    pub value_type: String,
    #[serde(default)]
    pub key_type: Option<String>,
}

/// One connection's topic, exchange or queue.
#[derive(Debug, Deserialize, TS)]
pub struct SourceArgs {
    pub connection: String,
    pub topic: String,
}

/// A new mapping and the job re-decoding what the lake already holds of that topic.
#[derive(Debug, Serialize, TS)]
pub struct MappingSet {
    pub mapping: crate::Mapping,
    pub redecode_job: u64,
}

/// How to read: `tap` (RabbitMQ: Sluice's own queue bound to an exchange; Kafka and SQS
/// ignore it), `requeue` (RabbitMQ queue given back; SQS peek), `destructive` (deleted once
/// captured; SQS drain), `stream` (RabbitMQ stream queue).
#[derive(Debug, Deserialize, TS)]
pub struct ReadArgs {
    pub connection: String,
    pub sources: Vec<String>,
    /// `beginning`, `end`, `last`, `OFFSET`, `-N` or `@RFC3339`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub binding_key: Option<String>,
    #[serde(default)]
    pub max_messages: Option<u64>,
    #[serde(default)]
    pub stop_at_end: bool,
}

#[derive(Debug, Deserialize, TS)]
pub struct JobArgs {
    pub id: u64,
}

#[derive(Debug, Deserialize, TS)]
pub struct JobPollArgs {
    pub id: u64,
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Deserialize, TS)]
pub struct JobPauseArgs {
    pub id: u64,
    pub paused: bool,
}

#[derive(Debug, Deserialize, TS)]
pub struct FilterArgs {
    pub filter: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct SearchArgs {
    pub filter: String,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// A search result row: enough for the table, small enough that a page stays under ~256 KB.
#[derive(Debug, Serialize, TS)]
pub struct EventRow {
    pub id: String,
    pub bus: String,
    pub connection: String,
    pub source: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub timestamp: Option<String>,
    pub key_text: Option<String>,
    pub schema: Option<String>,
    pub encoding: String,
    /// The start of the decoded JSON or text payload.
    pub preview: String,
    pub size: i64,
    pub decode_error: bool,
}

#[derive(Debug, Serialize, TS)]
pub struct SearchPage {
    pub offset: u64,
    pub rows: Vec<EventRow>,
}

#[derive(Debug, Deserialize, TS)]
pub struct HistogramArgs {
    pub filter: String,
    #[serde(default)]
    pub buckets: Option<u32>,
}

#[derive(Debug, Serialize, TS)]
pub struct Histogram {
    pub start_us: i64,
    pub bucket_us: i64,
    pub counts: Vec<u64>,
}

#[derive(Debug, Deserialize, TS)]
pub struct IdArgs {
    pub id: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct ReplayArgs {
    pub filter: String,
    /// `CONNECTION:TOPIC`, `CONNECTION:EXCHANGE[/ROUTING_KEY]` or `CONNECTION:QUEUE`.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub to_origin: bool,
    #[serde(default)]
    pub rate: Option<u32>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub keep_partition: bool,
    /// Events to send as edited in the replay dialog.
    #[serde(default)]
    pub edits: Vec<crate::ReplayEdit>,
}

/// One event as a dry run shows it: what goes where.
#[derive(Debug, Serialize, TS)]
pub struct PlanRow {
    pub id: String,
    pub source: String,
    pub destination: String,
    pub key_text: Option<String>,
    pub preview: String,
    pub size: i64,
}

#[derive(Debug, Serialize, TS)]
pub struct ReplayPlan {
    pub total: u64,
    /// The first events only (the table shows these; `total` counts all).
    pub rows: Vec<PlanRow>,
}

/// A past replay, as kept in `CONFIG/replays.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ReplayRecord {
    pub started_at: String,
    pub filter: String,
    pub to: String,
    pub matched: u64,
    pub sent: u64,
    pub failed: u64,
    /// Sent with no answer: they may have arrived (absent from records older than it).
    #[serde(default)]
    pub unknown: u64,
    /// Matched but never handed to the bus (the replay stopped first).
    #[serde(default)]
    pub not_sent: u64,
    pub interrupted: bool,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, TS)]
pub struct ExportArgs {
    pub filter: String,
    /// `jsonl`, `csv` or `parquet`.
    pub format: String,
    pub path: String,
}

#[derive(Debug, Deserialize, TS)]
pub struct LakeOpenArgs {
    pub path: String,
}

/// Rows a dry run lists; `total` still counts every event.
const PLAN_ROWS: usize = 500;
const PREVIEW_CHARS: usize = 240;
const PAGE_ROWS: u64 = 100;

fn preview(e: &Event) -> String {
    let text = e
        .decoded
        .as_deref()
        .or(e.payload_text.as_deref())
        .map(str::to_string)
        .or_else(|| utf8(&e.payload))
        .unwrap_or_else(|| format!("<{} bytes>", e.payload.len()));
    text.chars().take(PREVIEW_CHARS).collect()
}

fn row(e: &Event) -> EventRow {
    EventRow {
        id: e.id.clone(),
        bus: e.bus.as_str().to_string(),
        connection: e.connection.clone(),
        source: e.source.clone(),
        partition: e.partition,
        offset: e.offset,
        timestamp: e.timestamp_us.map(sluice_model::format_us),
        key_text: e.key.as_deref().and_then(utf8),
        schema: e.schema.clone(),
        encoding: e.encoding.as_str().to_string(),
        preview: preview(e),
        size: e.size,
        decode_error: e.decode_error.is_some(),
    }
}

fn read_options(mode: Option<&str>, binding_key: Option<String>) -> Result<ReadOptions> {
    let queue = match mode.unwrap_or("tap") {
        "tap" | "" => None,
        "requeue" | "peek" => Some(QueueRead::Requeue),
        "destructive" | "drain" => Some(QueueRead::Destructive),
        "stream" => Some(QueueRead::Stream),
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("read mode {other:?}: expected tap, requeue, destructive or stream"),
            ))
        }
    };
    Ok(ReadOptions {
        binding_key: binding_key.filter(|k| !k.is_empty()),
        match_headers: Vec::new(),
        queue,
    })
}

fn start_from(from: Option<&str>, default: StartFrom) -> Result<StartFrom> {
    match from.filter(|f| !f.is_empty()) {
        None => Ok(default),
        Some(f) => f.parse::<StartFrom>().map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("start position {f:?}: {e}"),
            )
        }),
    }
}

/// A dropped file's path, kept inside the folder it is written to.
fn safe_relative(path: &str) -> Result<PathBuf> {
    let p = std::path::Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir => {}
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("{path}: dropped file paths must be relative"),
                ))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "a dropped file has no name",
        ));
    }
    Ok(out)
}

impl Session {
    pub fn new(sluice: Sluice) -> Self {
        Session {
            sluice: Mutex::new(sluice),
            jobs: Jobs::default(),
        }
    }

    /// The folders in use now (`lake_open` can change the lake).
    pub fn sluice(&self) -> Sluice {
        self.sluice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every running job, waiting for captures to flush (the host is closing).
    pub fn shutdown(&self, timeout: Duration) {
        self.jobs.shutdown(timeout);
    }

    /// Streams a job's updates to `send` (see `Jobs::watch`); the desktop app's channel.
    pub fn watch(&self, id: u64, after: u64, send: impl Fn(JobUpdate) -> bool) -> Result<()> {
        self.jobs.watch(id, after, send)
    }

    fn app_info(&self, _: NoArgs) -> Result<AppInfo> {
        let s = self.sluice();
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_dir: s.config_dir.display().to_string(),
            lake_dir: s.lake_dir.display().to_string(),
        })
    }

    fn lake_open(&self, a: LakeOpenArgs) -> Result<AppInfo> {
        let path = PathBuf::from(&a.path);
        if !path.is_dir() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{}: not a folder", a.path),
            ));
        }
        sluice_lake::Lake::open(&path)?;
        self.sluice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lake_dir = path;
        self.app_info(NoArgs {})
    }

    fn connection_list(&self, _: NoArgs) -> Result<Vec<ConnectionSummary>> {
        self.sluice().connection_list()
    }

    /// The saved settings of a connection, for its edit form (never the password).
    fn connection_get(&self, a: NameArgs) -> Result<ConnectionAdd> {
        let cfg = crate::Config::load(&self.sluice().config_dir)?;
        let p = cfg.connection(&a.name)?;
        let sqs = p.bus == "sqs";
        Ok(ConnectionAdd {
            name: a.name,
            bus: p.bus.clone(),
            brokers: p.brokers.clone(),
            management_url: p.management_url.clone(),
            region: p.region.clone(),
            aws_profile: p.aws_profile.clone(),
            endpoint_url: p.endpoint_url.clone(),
            access_key_id: if sqs { p.sasl_username.clone() } else { None },
            sasl_mechanism: p.sasl_mechanism.clone(),
            username: if sqs { None } else { p.sasl_username.clone() },
            password: None,
            tls: p.tls,
            tls_ca: p.tls_ca.clone(),
            tls_cert: p.tls_cert.clone(),
            tls_key: p.tls_key.clone(),
            registry_url: p.registry_url.clone(),
            registry_username: p.registry_username.clone(),
            registry_password: None,
            registry_token: None,
            replace: true,
        })
    }

    fn connection_add(&self, a: ConnectionAdd) -> Result<ConnectionAdded> {
        self.sluice().connection_add(a)
    }

    fn connection_test(&self, a: NameArgs) -> Result<Health> {
        self.sluice().connection_test(&a.name)
    }

    fn connection_remove(&self, a: NameArgs) -> Result<()> {
        self.sluice().connection_remove(&a.name)
    }

    fn topics(&self, a: NameArgs) -> Result<Vec<SourceInfo>> {
        self.sluice().topics(&a.name, &[])
    }

    fn schema_list(&self, _: NoArgs) -> Result<SchemaListing> {
        self.sluice().schema_list()
    }

    /// Compiles dropped .proto files (imports resolved among them, relative to the dropped
    /// folder) and descriptor sets, as `schema add` does for paths.
    fn schema_drop(&self, a: SchemaDropArgs) -> Result<SchemaAdded> {
        let dir = tempfile::tempdir()
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("temporary folder: {e}")))?;
        for f in &a.files {
            let rel = safe_relative(&f.path)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&f.base64)
                .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("{}: {e}", f.path)))?;
            let path = dir.path().join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
            }
            std::fs::write(&path, bytes)
                .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", f.path)))?;
        }
        if a.files.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "nothing was dropped",
            ));
        }
        let mut added = self.sluice().schema_add(&[dir.path().to_path_buf()], &[])?;
        // Errors name the file as it was dropped, not the temporary copy.
        let prefix = format!("{}/", dir.path().display());
        for e in &mut added.errors {
            if let Some(f) = &mut e.file {
                *f = f.trim_start_matches(&prefix).to_string();
            }
            e.display = e.display.replace(&prefix, "");
            e.message = e.message.replace(&prefix, "");
        }
        // Types dropped again may have changed: the topics mapped to them are decoded anew.
        for m in self.sluice().mappings_using(&added.defined_types)? {
            added
                .redecoding
                .push(self.redecode_start(m.connection, m.topic));
        }
        Ok(added)
    }

    /// Re-decodes a topic's stored events in the background; the job's progress is a
    /// `RedecodeProgress`.
    fn redecode_start(&self, connection: String, topic: String) -> u64 {
        let sluice = self.sluice();
        let label = format!("{connection}:{topic}");
        self.jobs.start("redecode", label, move |job| {
            sluice.redecode(&connection, &topic, &mut |p| {
                job.set_progress(p);
                !job.stop.load(std::sync::atomic::Ordering::Relaxed)
            })
        })
    }

    fn schema_detect(&self, a: SourceArgs) -> Result<Vec<sluice_codec::Candidate>> {
        self.sluice().schema_detect(&a.connection, &a.topic, 200)
    }

    fn redecode(&self, a: SourceArgs) -> Result<u64> {
        Ok(self.redecode_start(a.connection, a.topic))
    }

    /// Maps a topic and starts re-decoding what the lake already holds of it.
    fn schema_map(&self, a: SchemaMapArgs) -> Result<MappingSet> {
        let mapping = self.sluice().schema_map(
            &a.connection,
            &a.topic,
            &a.value_type,
            a.key_type.as_deref().filter(|k| !k.is_empty()),
        )?;
        let redecode_job = self.redecode_start(a.connection, a.topic);
        Ok(MappingSet {
            mapping,
            redecode_job,
        })
    }

    fn tail_start(&self, a: ReadArgs) -> Result<u64> {
        let read = read_options(a.mode.as_deref(), a.binding_key)?;
        let from = start_from(a.from.as_deref(), StartFrom::End)?;
        let [topic] = a.sources.as_slice() else {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "tail reads exactly one topic, exchange or queue",
            ));
        };
        let (sluice, topic, connection) = (self.sluice(), topic.clone(), a.connection);
        let label = format!("{connection}:{topic}");
        let max = a.max_messages;
        Ok(self.jobs.start("tail", label, move |job| {
            sluice.tail(&connection, &topic, from, &read, max, &job.stop, &mut |e| {
                job.push_event(EventView::from(e));
                true
            })
        }))
    }

    fn capture_start(&self, a: ReadArgs) -> Result<u64> {
        let read = read_options(a.mode.as_deref(), a.binding_key)?;
        let opts = CaptureOptions {
            sources: a.sources.clone(),
            from: start_from(a.from.as_deref(), StartFrom::End)?,
            max_messages: a.max_messages,
            stop_at_end: a.stop_at_end,
            read,
            ..CaptureOptions::default()
        };
        let (sluice, connection) = (self.sluice(), a.connection);
        let label = format!("{connection}:{}", a.sources.join(","));
        Ok(self.jobs.start("capture", label, move |job| {
            sluice.capture(&connection, &opts, &job.stop, &mut |p| job.set_progress(p))
        }))
    }

    fn job_poll(&self, a: JobPollArgs) -> Result<JobUpdate> {
        self.jobs
            .poll(a.id, a.after, Duration::from_millis(a.wait_ms))
    }

    fn job_stop(&self, a: JobArgs) -> Result<()> {
        self.jobs.stop(a.id)
    }

    fn job_pause(&self, a: JobPauseArgs) -> Result<()> {
        self.jobs.pause(a.id, a.paused)
    }

    fn job_list(&self, _: NoArgs) -> Result<Vec<JobInfo>> {
        Ok(self.jobs.list())
    }

    /// Checks a filter without running it (the filter bar's live error, with its column).
    fn filter_check(&self, a: FilterArgs) -> Result<()> {
        sluice_filter::to_sql(&a.filter, sluice_model::now_us())?;
        Ok(())
    }

    fn search(&self, a: SearchArgs) -> Result<SearchPage> {
        let limit = a.limit.unwrap_or(PAGE_ROWS).min(PAGE_ROWS * 5);
        let events = self.sluice().search(&a.filter, limit, a.offset)?;
        Ok(SearchPage {
            offset: a.offset,
            rows: events.iter().map(row).collect(),
        })
    }

    fn count(&self, a: FilterArgs) -> Result<u64> {
        self.sluice().count(&a.filter)
    }

    fn histogram(&self, a: HistogramArgs) -> Result<Histogram> {
        let (start_us, bucket_us, counts) = self
            .sluice()
            .histogram(&a.filter, a.buckets.unwrap_or(60))?;
        Ok(Histogram {
            start_us,
            bucket_us,
            counts,
        })
    }

    /// Field paths seen in the newest decoded events, for the filter bar's completion.
    fn fields(&self, _: NoArgs) -> Result<Vec<String>> {
        let events = self.sluice().search("", 300, 0)?;
        let mut paths = std::collections::BTreeSet::new();
        for e in &events {
            if let Some(v) = e
                .decoded
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
            {
                collect_paths(&v, String::new(), &mut paths);
            }
            for h in &e.headers {
                paths.insert(format!("header.{}", h.key));
            }
        }
        Ok(paths.into_iter().collect())
    }

    fn event_get(&self, a: IdArgs) -> Result<EventView> {
        let filter = format!("event.id = {}", sluice_filter::quote(&a.id));
        let events = self.sluice().search(&filter, 1, 0)?;
        events
            .first()
            .map(EventView::from)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no event {}", a.id)))
    }

    fn replay_request(a: &ReplayArgs) -> ReplayRequest {
        ReplayRequest {
            to: a.to.clone(),
            to_origin: a.to_origin,
            rate: a.rate.filter(|r| *r > 0),
            limit: a.limit,
            keep_partition: a.keep_partition,
            edits: a.edits.clone(),
            broker_timeout: None,
        }
    }

    fn replay_plan(&self, a: ReplayArgs) -> Result<ReplayPlan> {
        let req = Self::replay_request(&a);
        let sluice = self.sluice();
        let mut finder = sluice.origin_finder();
        let mut rows = Vec::new();
        let total = sluice.replay_plan(&a.filter, &req, &mut |e| {
            if rows.len() < PLAN_ROWS {
                let destination = if req.to_origin {
                    finder
                        .describe(e)
                        .unwrap_or_else(|why| format!("(no origin: {why})"))
                } else {
                    req.to.clone()
                };
                rows.push(PlanRow {
                    id: e.id.clone(),
                    source: format!("{}:{}", e.connection, e.source),
                    destination,
                    key_text: e.key.as_deref().and_then(utf8),
                    preview: preview(e),
                    size: e.size,
                });
            }
        })?;
        Ok(ReplayPlan { total, rows })
    }

    fn replay_start(&self, a: ReplayArgs) -> Result<u64> {
        let req = Self::replay_request(&a);
        if !req.to_origin && a.to.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "choose a destination, or send back to origin",
            ));
        }
        let sluice = self.sluice();
        let label = if req.to_origin {
            "back to origin".to_string()
        } else {
            req.to.clone()
        };
        Ok(self.jobs.start("replay", label.clone(), move |job| {
            let started_at = sluice_model::format_us(sluice_model::now_us());
            let outcome = sluice.replay(&a.filter, &req, &job.stop, &mut |p| {
                job.set_progress(p);
                if !p.done {
                    job.wait_while_paused();
                }
            });
            // A replay that failed still has its account (none if it failed before sending).
            let account = match &outcome {
                Ok(s) => Some(s),
                Err(f) => f.summary.as_deref(),
            };
            let (matched, sent, failed, unknown, not_sent) = account
                .map(|s| (s.matched, s.sent, s.failed, s.unknown, s.not_sent))
                .unwrap_or_default();
            let record = ReplayRecord {
                started_at,
                filter: a.filter.clone(),
                to: label,
                matched,
                sent,
                failed,
                unknown,
                not_sent,
                interrupted: outcome.as_ref().is_ok_and(|s| s.interrupted)
                    || job.stop.load(Ordering::Relaxed),
                error: outcome.as_ref().err().map(|f| f.error.message.clone()),
            };
            history_append(&sluice, &record);
            outcome.map_err(|f| f.error)
        }))
    }

    fn replay_history(&self, _: NoArgs) -> Result<Vec<ReplayRecord>> {
        let path = self.sluice().config_dir.join("replays.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut out: Vec<ReplayRecord> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        out.reverse();
        Ok(out)
    }

    fn export(&self, a: ExportArgs) -> Result<u64> {
        let format = match a.format.as_str() {
            "jsonl" => ExportFormat::Jsonl,
            "csv" => ExportFormat::Csv,
            "parquet" => ExportFormat::Parquet,
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("export format {other:?}: expected jsonl, csv or parquet"),
                ))
            }
        };
        self.sluice()
            .export(&a.filter, format, std::path::Path::new(&a.path))
    }
}

/// Replays are recorded even when the history file cannot be written: the replay itself
/// already happened, so a failure here is only logged.
fn history_append(sluice: &Sluice, record: &ReplayRecord) {
    use std::io::Write;
    let path = sluice.config_dir.join("replays.jsonl");
    let line = serde_json::to_string(record).unwrap_or_default();
    let written = std::fs::create_dir_all(&sluice.config_dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"))
    });
    if let Err(e) = written {
        tracing::warn!("cannot record the replay in {}: {e}", path.display());
    }
}

/// `a.b`, `items[0].sku`-style paths of every leaf and object in a decoded event.
fn collect_paths(
    v: &serde_json::Value,
    prefix: String,
    out: &mut std::collections::BTreeSet<String>,
) {
    if out.len() > 2000 {
        return;
    }
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                collect_paths(child, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(first) = items.first() {
                collect_paths(first, format!("{prefix}[0]"), out);
            }
        }
        _ => {}
    }
}

/// The command table: name, argument type, result type. `Session::call` dispatches on it and
/// `typescript()` turns it into the UI's `Commands` map.
macro_rules! commands {
    ($($name:ident($args:ty) -> $out:ty;)*) => {
        impl Session {
            /// Runs one command by name; the arguments are the command's JSON argument object.
            pub fn call(&self, command: &str, args: serde_json::Value) -> Result<serde_json::Value> {
                let args = if args.is_null() { serde_json::json!({}) } else { args };
                match command {
                    $(stringify!($name) => {
                        let args: $args = serde_json::from_value(args).map_err(|e| {
                            ApiError::new(ErrorCode::InvalidInput, format!("{command}: {e}"))
                        })?;
                        let out: $out = self.$name(args)?;
                        serde_json::to_value(out)
                            .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))
                    })*
                    _ => Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("unknown command {command:?}"),
                    )),
                }
            }
        }

        /// Every command's name.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        fn commands_typescript(cfg: &ts_rs::Config) -> String {
            let mut out = String::from("export type Commands = {\n");
            $(out.push_str(&format!(
                "  {}: {{ args: {}; result: {} }};\n",
                stringify!($name),
                <$args as TS>::name(cfg),
                <$out as TS>::name(cfg),
            ));)*
            out.push_str("};\n");
            out
        }
    };
}

commands! {
    app_info(NoArgs) -> AppInfo;
    lake_open(LakeOpenArgs) -> AppInfo;
    connection_list(NoArgs) -> Vec<ConnectionSummary>;
    connection_get(NameArgs) -> ConnectionAdd;
    connection_add(ConnectionAdd) -> ConnectionAdded;
    connection_test(NameArgs) -> Health;
    connection_remove(NameArgs) -> ();
    topics(NameArgs) -> Vec<SourceInfo>;
    schema_list(NoArgs) -> SchemaListing;
    schema_drop(SchemaDropArgs) -> SchemaAdded;
    schema_map(SchemaMapArgs) -> MappingSet;
    redecode(SourceArgs) -> u64;
    schema_detect(SourceArgs) -> Vec<sluice_codec::Candidate>;
    tail_start(ReadArgs) -> u64;
    capture_start(ReadArgs) -> u64;
    job_poll(JobPollArgs) -> JobUpdate;
    job_stop(JobArgs) -> ();
    job_pause(JobPauseArgs) -> ();
    job_list(NoArgs) -> Vec<JobInfo>;
    filter_check(FilterArgs) -> ();
    search(SearchArgs) -> SearchPage;
    count(FilterArgs) -> u64;
    histogram(HistogramArgs) -> Histogram;
    fields(NoArgs) -> Vec<String>;
    event_get(IdArgs) -> EventView;
    replay_plan(ReplayArgs) -> ReplayPlan;
    replay_start(ReplayArgs) -> u64;
    replay_history(NoArgs) -> Vec<ReplayRecord>;
    export(ExportArgs) -> u64;
}

/// Declares one named type (and, through the test below, proves nothing it needs is missing).
fn decl<T: TS + 'static>(cfg: &ts_rs::Config) -> String {
    format!("export {}\n", T::decl(cfg))
}

macro_rules! declared_types {
    ($($t:ty),* $(,)?) => {
        fn declarations(cfg: &ts_rs::Config) -> String {
            let mut out = String::new();
            $(out.push_str(&decl::<$t>(cfg));)*
            out
        }
        #[cfg(test)]
        fn declared_names(cfg: &ts_rs::Config) -> Vec<String> {
            vec![$(<$t as TS>::ident(cfg)),*]
        }
        #[cfg(test)]
        fn needed_names(cfg: &ts_rs::Config) -> Vec<String> {
            let mut v = Vec::new();
            $(v.extend(<$t as TS>::dependencies(cfg).into_iter().map(|d| d.ts_name));)*
            v
        }
    };
}

declared_types!(
    ApiError,
    ErrorCode,
    NoArgs,
    NameArgs,
    AppInfo,
    LakeOpenArgs,
    ConnectionSummary,
    ConnectionAdd,
    ConnectionAdded,
    crate::PasswordStore,
    Health,
    SourceInfo,
    sluice_bus::PartitionInfo,
    SchemaListing,
    crate::Mapping,
    DroppedFile,
    SchemaDropArgs,
    SchemaAdded,
    crate::SchemaProblem,
    SchemaMapArgs,
    crate::ReplayEdit,
    SourceArgs,
    MappingSet,
    sluice_lake::RedecodeProgress,
    sluice_codec::Candidate,
    ReadArgs,
    JobArgs,
    JobPollArgs,
    JobPauseArgs,
    JobInfo,
    JobUpdate,
    EventView,
    crate::CaptureProgress,
    sluice_replay::ReplayProgress,
    sluice_replay::ReplaySummary,
    FilterArgs,
    SearchArgs,
    SearchPage,
    EventRow,
    HistogramArgs,
    Histogram,
    IdArgs,
    ReplayArgs,
    ReplayPlan,
    PlanRow,
    ReplayRecord,
    ExportArgs,
);

/// The UI's `bindings.ts`: every type the commands use and the `Commands` map.
pub fn typescript() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    format!(
        "// Generated from the Rust API types by `sluice dev bindings`; do not edit.\n\
         // A test fails when this file is out of date (see crates/api/src/commands.rs).\n\n\
         export type JsonValue = number | string | boolean | Array<JsonValue> | {{ [key in string]?: JsonValue }} | null;\n\n{}\n{}",
        declarations(&cfg),
        commands_typescript(&cfg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_the_bindings_need_is_declared() {
        let cfg = ts_rs::Config::new().with_large_int("number");
        let declared = declared_names(&cfg);
        for needed in needed_names(&cfg) {
            assert!(
                declared.contains(&needed) || needed == "JsonValue",
                "{needed} is used by a command type but not declared in bindings.ts"
            );
        }
    }

    /// CI's check that the checked-in bindings are current: regenerate with
    /// `SLUICE_BLESS=1 cargo test -p sluice-api bindings`.
    #[test]
    fn checked_in_bindings_are_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
        let now = typescript();
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == now,
            "ui/src/bindings.ts is out of date: run SLUICE_BLESS=1 cargo test -p sluice-api bindings"
        );
    }

    #[test]
    fn unknown_commands_and_bad_arguments_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let e = s.call("drop_tables", serde_json::json!({})).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        let e = s
            .call("search", serde_json::json!({"filter": 3}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.starts_with("search: "), "{}", e.message);
        let e = s
            .call("filter_check", serde_json::json!({"filter": "status = "}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Filter);
        assert!(e.message.contains("column"), "{}", e.message);
        assert!(COMMANDS.contains(&"replay_start"));
    }

    #[test]
    fn dropped_schemas_compile_with_imports_and_report_positions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [
                    {"path": "shop/v1/money.proto", "base64": b64("syntax = \"proto3\";\npackage shop.v1;\nmessage Money { int64 cents = 1; }\n")},
                    {"path": "shop/v1/order.proto", "base64": b64("syntax = \"proto3\";\npackage shop.v1;\nimport \"shop/v1/money.proto\";\nmessage Order { Money total = 1; }\n")},
                ]}),
            )
            .unwrap();
        let types = out["message_types"].as_array().unwrap();
        assert!(types.iter().any(|t| t == "shop.v1.Order"), "{out}");
        let out = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "bad.proto", "base64": b64("syntax = \"proto3\";\nmessage X { int32 = 1; }\n")}]}),
            )
            .unwrap();
        let err = &out["errors"][0];
        assert_eq!(err["file"], "bad.proto", "{out}");
        assert_eq!(err["line"], 2, "{out}");
        let e = s
            .call(
                "schema_drop",
                serde_json::json!({"files": [{"path": "../escape.proto", "base64": ""}]}),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }
}
