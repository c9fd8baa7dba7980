//! Search: pages of matches newest first. The newest files are read first, and a page is
//! found from positions and sort keys alone, then fetched whole by row number.

use crate::columns::{self as col, select_list, select_of, Columns};
use crate::layout::LakeError;
use crate::query::{bound, qerr, Query};
use crate::rows::{column_as, EventColumns};
use crate::scan::{parquet_source_with_names, FileScan, FILENAME, FILE_ROW_NUMBER};
use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use duckdb::params_from_iter;
use duckdb::types::Value as DbValue;
use sluice_filter::Compiled;
use sluice_model::Event;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The columns search orders by, read with every match (`Hit`).
const SORT_KEYS: [col::Column; 4] = [
    col::TIMESTAMP,
    col::CAPTURED_AT,
    col::OFFSET,
    col::SUB_OFFSET,
];

impl Query {
    /// Matches newest first, `limit` rows after skipping `skip`.
    ///
    /// Files are read newest first in growing groups, stopping once the remaining files are
    /// all older than the last row of the page: a common filter's first page then reads only
    /// the newest files instead of the whole lake.
    pub fn search(
        &self,
        filter: &Compiled,
        limit: u64,
        skip: u64,
    ) -> Result<Vec<Event>, LakeError> {
        let want = (limit + skip) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        let files = self.candidates(&filter.needs).0;
        // For a page of up to a few thousand rows, matches are found reading only their position
        // and sort keys, and the page is then fetched whole by row number: materialising every
        // column of every row the filter reads cost about as much as the filter itself, and a
        // page deep in a large result (the UI's table scrolled far down) would otherwise hold
        // every event before it in memory.
        let by_row = limit as usize <= FETCH_BY_ROW_MAX;
        let cols = if by_row {
            select_of(&SORT_KEYS)
        } else {
            select_list(Columns::All)
        };
        let cols = format!("{FILENAME}, {FILE_ROW_NUMBER}, {cols}");
        let mut hits: Vec<Hit> = Vec::new();
        if skip as usize > DEEP_SKIP && !files.is_empty() {
            // Far down a large result, DuckDB skips inside its sort: the rows before the page
            // never come back to Rust, and reading newest files first could not stop early
            // anyway.
            let sql = format!(
                "SELECT {cols} FROM {} AS events WHERE {} \
                 ORDER BY coalesce(timestamp, captured_at) DESC, captured_at DESC, \"offset\" DESC, sub_offset DESC LIMIT {limit} OFFSET {skip}",
                parquet_source_with_names(&files),
                filter.where_sql
            );
            self.hits(&sql, bound(filter), !by_row, &mut hits)?;
            return self.page(hits, by_row);
        }
        let (mut next, mut group) = (0, 4);
        while next < files.len() {
            let end = (next + group).min(files.len());
            let sql = format!(
                "SELECT {cols} FROM {} AS events WHERE {} \
                 ORDER BY coalesce(timestamp, captured_at) DESC, captured_at DESC, \"offset\" DESC, sub_offset DESC LIMIT {want}",
                parquet_source_with_names(&files[next..end]),
                filter.where_sql
            );
            self.hits(&sql, bound(filter), !by_row, &mut hits)?;
            hits.sort_by(Hit::newest_first);
            hits.truncate(want);
            next = end;
            // Groups grow to let DuckDB's threads share the work, but not past 16 files, so a
            // rare filter's page stops soon after its last match instead of reading on.
            group = (group * 2).min(16);
            // Files are named by the same time (broker time, else capture time).
            let kth = hits.get(want - 1).map(Hit::time);
            if hits.len() == want
                && kth.is_some_and(|k| files.get(next).is_none_or(|f| f.newest < k))
            {
                break;
            }
        }
        let hits: Vec<Hit> = hits.into_iter().skip(skip as usize).collect();
        self.page(hits, by_row)
    }

    /// The events of a page's hits: read already, or fetched by row.
    fn page(&self, hits: Vec<Hit>, by_row: bool) -> Result<Vec<Event>, LakeError> {
        if !by_row {
            return Ok(hits.into_iter().filter_map(|h| h.event).collect());
        }
        self.fetch_rows(hits)
    }

    /// Reads query rows holding each match's file, row and sort keys, and with `whole` the
    /// whole event, into hits.
    fn hits(
        &self,
        sql: &str,
        params: duckdb::ParamsFromIter<Vec<DbValue>>,
        whole: bool,
        out: &mut Vec<Hit>,
    ) -> Result<(), LakeError> {
        let mut stmt = self.conn().prepare(sql).map_err(qerr)?;
        for batch in stmt.stream_arrow(params).map_err(qerr)? {
            let int = |name| column_as::<Int64Array>(&batch, name, &DataType::Int64);
            let names = column_as::<StringArray>(&batch, FILENAME, &DataType::Utf8)?;
            let rows = int(FILE_ROW_NUMBER)?;
            let (ts, cap, off, sub) = (
                int(col::TIMESTAMP.read_name())?,
                int(col::CAPTURED_AT.read_name())?,
                int(col::OFFSET.read_name())?,
                int(col::SUB_OFFSET.read_name())?,
            );
            let events = if whole {
                Some(EventColumns::new(&batch)?)
            } else {
                None
            };
            for i in 0..batch.num_rows() {
                out.push(Hit {
                    file: names.value(i).to_string(),
                    row: rows.value(i),
                    timestamp_us: ts.is_valid(i).then(|| ts.value(i)),
                    captured_at_us: cap.value(i),
                    offset: off.is_valid(i).then(|| off.value(i)),
                    sub_offset: sub.is_valid(i).then(|| sub.value(i)),
                    event: events.as_ref().map(|e| e.event(i)).transpose()?,
                });
            }
        }
        Ok(())
    }

    /// The whole events for `hits`, in their order: one query per file with hits, filtered on
    /// row numbers, which DuckDB uses to read only the row groups holding them.
    fn fetch_rows(&self, hits: Vec<Hit>) -> Result<Vec<Event>, LakeError> {
        let mut by_file: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for h in &hits {
            by_file.entry(&h.file).or_default().push(h.row);
        }
        let mut found: HashMap<(String, i64), Event> = Default::default();
        for (file, rows) in by_file {
            let marks = vec!["?"; rows.len()].join(", ");
            let sql = format!(
                "SELECT {FILE_ROW_NUMBER}, {} FROM {} AS events WHERE {FILE_ROW_NUMBER} IN ({marks})",
                select_list(Columns::All),
                parquet_source_with_names(&[FileScan::whole(PathBuf::from(file))])
            );
            let params: Vec<DbValue> = rows.into_iter().map(DbValue::BigInt).collect();
            let mut stmt = self.conn().prepare(&sql).map_err(qerr)?;
            for batch in stmt.stream_arrow(params_from_iter(params)).map_err(qerr)? {
                let rows = column_as::<Int64Array>(&batch, FILE_ROW_NUMBER, &DataType::Int64)?;
                let events = EventColumns::new(&batch)?;
                for i in 0..batch.num_rows() {
                    found.insert((file.to_string(), rows.value(i)), events.event(i)?);
                }
            }
        }
        Ok(hits
            .iter()
            .filter_map(|h| found.remove(&(h.file.clone(), h.row)))
            .collect())
    }
}

/// A match found by search: its file and row, its sort keys, and the event when it was read whole.
struct Hit {
    file: String,
    row: i64,
    timestamp_us: Option<i64>,
    captured_at_us: i64,
    offset: Option<i64>,
    sub_offset: Option<i64>,
    event: Option<Event>,
}

/// Beyond this many skipped rows, a search page is one query that skips inside DuckDB.
const DEEP_SKIP: usize = 10_000;

/// Above this many rows per page a search reads whole rows at once instead of fetching by row.
const FETCH_BY_ROW_MAX: usize = 2_000;

impl Hit {
    /// When the event happened as far as the lake knows: the broker's time, else the capture's
    /// (MQTT and most AMQP messages carry none), so events of every bus interleave by time.
    fn time(&self) -> i64 {
        self.timestamp_us.unwrap_or(self.captured_at_us)
    }

    /// The order of `search`: time descending, then capture time, then position.
    fn newest_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
        b.time()
            .cmp(&a.time())
            .then(b.captured_at_us.cmp(&a.captured_at_us))
            .then(b.offset.cmp(&a.offset))
            .then(b.sub_offset.cmp(&a.sub_offset))
    }
}
