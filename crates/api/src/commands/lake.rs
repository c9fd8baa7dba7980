//! The lake: checking filters, searching, counting, the histogram, one event, and exports.

use super::app::NoArgs;
use super::Session;
use crate::error::{ApiError, ErrorCode, Result};
use crate::render::{utf8, EventView};
use crate::ExportFormat;
use serde::{Deserialize, Serialize};
use sluice_model::Event;
use std::path::PathBuf;
use ts_rs::TS;

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
    /// The second number of a two-part position (a Redis entry id is `offset-sub_offset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sub_offset: Option<i64>,
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
pub struct ExportArgs {
    pub filter: String,
    /// `jsonl`, `csv` or `parquet`.
    pub format: String,
    #[ts(type = "string")]
    pub path: PathBuf,
}

/// Which part of the lake a compaction or prune touches (all of it by default).
#[derive(Debug, Default, Deserialize, TS)]
pub struct LakeScopeArgs {
    #[serde(default)]
    #[ts(optional)]
    pub connection: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub source: Option<String>,
}

impl LakeScopeArgs {
    fn scope(self) -> crate::LakeScope {
        crate::LakeScope {
            connection: self.connection,
            source: self.source,
        }
    }
}

#[derive(Debug, Deserialize, TS)]
pub struct CompactArgs {
    #[serde(flatten)]
    pub scope: LakeScopeArgs,
    /// Merged files grow to about this size (`64MiB` by default).
    #[serde(default)]
    #[ts(optional)]
    pub target_size: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, TS)]
pub struct PruneArgs {
    #[serde(flatten)]
    pub scope: LakeScopeArgs,
    /// `30d`, `12h`, `2w`: events older than this go.
    pub older_than: String,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, TS)]
pub struct RedactRemoveArgs {
    /// As `redact_list` numbers the rules, from 1.
    pub index: usize,
}

#[derive(Debug, Deserialize, TS)]
pub struct BundleExportArgs {
    pub filter: String,
    #[ts(type = "string")]
    pub path: PathBuf,
}

#[derive(Debug, Deserialize, TS)]
pub struct BundleImportArgs {
    #[ts(type = "string")]
    pub path: PathBuf,
}

const PREVIEW_CHARS: usize = 240;
const PAGE_ROWS: u64 = 100;

impl ExportFormat {
    /// Every format's name, as `export` takes it (and `sluice export --format`).
    pub const NAMES: &'static [&'static str] = &["jsonl", "csv", "parquet"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            "parquet" => Ok(ExportFormat::Parquet),
            other => Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("export format {other:?}: expected jsonl, csv or parquet"),
            )),
        }
    }
}

/// The start of an event's decoded JSON or text, for a row or a dry run's table.
pub(super) fn preview(e: &Event) -> String {
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
        sub_offset: e.sub_offset,
        timestamp: e.timestamp_us.map(sluice_model::format_us),
        key_text: e.key.as_deref().and_then(utf8),
        schema: e.schema.clone(),
        encoding: e.encoding.as_str().to_string(),
        preview: preview(e),
        size: e.size,
        decode_error: e.decode_error.is_some(),
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

impl Session {
    /// Checks a filter without running it (the filter bar's live error, with its column).
    pub fn filter_check(&self, a: FilterArgs) -> Result<()> {
        sluice_filter::to_sql(&a.filter, sluice_model::now_us())?;
        Ok(())
    }

    /// Matching events in full, newest first: what a search page, the CLI's `search` and
    /// `event_get` are cut from.
    pub fn search_events(&self, filter: &str, limit: u64, offset: u64) -> Result<Vec<Event>> {
        self.sluice().search(filter, limit, offset)
    }

    /// One page of rows for the window's table (at most 500).
    pub fn search(&self, a: SearchArgs) -> Result<SearchPage> {
        let limit = a.limit.unwrap_or(PAGE_ROWS).min(PAGE_ROWS * 5);
        let events = self.search_events(&a.filter, limit, a.offset)?;
        Ok(SearchPage {
            offset: a.offset,
            rows: events.iter().map(row).collect(),
        })
    }

    /// Merges small lake files (`sluice lake compact`).
    pub fn lake_compact(&self, a: CompactArgs) -> Result<crate::CompactReport> {
        self.lake_compact_with(a, &mut |_| true)
    }

    /// `lake_compact`, told after each partition folder; returning false stops there.
    pub fn lake_compact_with(
        &self,
        a: CompactArgs,
        progress: &mut dyn FnMut(&crate::CompactReport) -> bool,
    ) -> Result<crate::CompactReport> {
        self.sluice().compact(
            a.scope.scope(),
            a.target_size.as_deref(),
            a.dry_run,
            progress,
        )
    }

    /// Writes matching events with their schemas and mappings to one file.
    pub fn bundle_export(&self, a: BundleExportArgs) -> Result<crate::BundleManifest> {
        self.sluice().bundle_export(&a.filter, &a.path)
    }

    /// Makes a bundle's events searchable and replayable here.
    pub fn bundle_import(&self, a: BundleImportArgs) -> Result<crate::BundleImported> {
        self.sluice().bundle_import(&a.path)
    }

    pub fn redact_list(&self, _: super::app::NoArgs) -> Result<Vec<crate::RedactRule>> {
        self.sluice().redact_list()
    }

    /// Adds a redaction rule; the rules after it.
    pub fn redact_add(&self, a: crate::RedactRule) -> Result<Vec<crate::RedactRule>> {
        self.sluice().redact_add(a)
    }

    pub fn redact_remove(&self, a: RedactRemoveArgs) -> Result<Vec<crate::RedactRule>> {
        self.sluice().redact_remove(a.index)
    }

    /// Removes old events (`sluice lake prune`).
    pub fn lake_prune(&self, a: PruneArgs) -> Result<crate::PruneReport> {
        self.sluice()
            .prune(a.scope.scope(), &a.older_than, a.dry_run)
    }

    pub fn count(&self, a: FilterArgs) -> Result<u64> {
        self.sluice().count(&a.filter)
    }

    pub fn histogram(&self, a: HistogramArgs) -> Result<Histogram> {
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
    pub fn fields(&self, _: NoArgs) -> Result<Vec<String>> {
        let events = self.search_events("", 300, 0)?;
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

    pub fn event_get(&self, a: IdArgs) -> Result<EventView> {
        let filter = format!("event.id = {}", sluice_filter::quote(&a.id));
        let events = self.search_events(&filter, 1, 0)?;
        events
            .first()
            .map(EventView::from)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no event {}", a.id)))
    }

    /// Writes the matching events to a file; how many were written.
    pub fn export(&self, a: ExportArgs) -> Result<u64> {
        let format = ExportFormat::parse(&a.format)?;
        self.sluice().export(&a.filter, format, &a.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_formats_are_named_once() {
        for name in ExportFormat::NAMES {
            ExportFormat::parse(name).unwrap();
        }
        let e = ExportFormat::parse("xml").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("jsonl, csv or parquet"), "{}", e.message);
    }
}
