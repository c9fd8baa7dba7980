//! Reading the lake with DuckDB: a view named `events` over every Parquet file, queried with
//! compiled filters (parameters bound, never spliced). Raw SQL over the same view is in
//! `sql_process`.

use crate::layout::{file_max_time, file_times, Lake, LakeError};
use crate::schema::{arrow_schema, EventRef, RowBuilder};
use crate::sketch;
use crate::writer::write_atomically;
use arrow::array::{
    Array, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use parquet::errors::ParquetError;
use sluice_filter::{Compiled, Needs, Param};
use sluice_model::{Bus, Encoding, Event, Header};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Columns read back into an `Event`; headers cross as JSON (base64 values) to keep the
/// Rust side free of DuckDB's nested-type conversions.
const EVENT_COLUMNS: &str = "id, bus, connection, source, partition, \"offset\", key, key_decoded, \
     list_transform(headers, h -> h.key), list_transform(headers, h -> h.value), \
     epoch_us(timestamp), epoch_us(captured_at), payload, payload_text, size, truncated, schema, encoding, \
     decoded, decode_error, properties";

const EVENT_COLUMN_COUNT: usize = 21;

/// Search's sort keys, last in each row it reads (`Query::hits`).
const HIT_KEYS: &str = "epoch_us(timestamp), epoch_us(captured_at), \"offset\"";

/// The same shape without the decoded forms, for replay: it sends bytes only, and skipping
/// the JSON columns roughly halves what DuckDB must materialise.
const SEND_COLUMNS: &str = "id, bus, connection, source, partition, \"offset\", key, NULL::VARCHAR, \
     list_transform(headers, h -> h.key), list_transform(headers, h -> h.value), \
     epoch_us(timestamp), epoch_us(captured_at), payload, NULL::VARCHAR, size, truncated, schema, encoding, \
     NULL::VARCHAR, NULL::VARCHAR, properties";

/// Which columns a read fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    All,
    /// Bytes, key, headers and position only: what a bus needs to send the event again.
    ForSending,
}

/// Where an empty lake still needs a typed `events` view.
const EMPTY_VIEW: &str = "SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS bus, NULL::INTEGER AS partition, \
     NULL::BIGINT AS \"offset\", NULL::BLOB AS key, NULL::VARCHAR AS key_decoded, \
     NULL::STRUCT(key VARCHAR, value BLOB)[] AS headers, NULL::TIMESTAMPTZ AS timestamp, \
     NULL::TIMESTAMPTZ AS captured_at, NULL::BLOB AS payload, NULL::VARCHAR AS payload_text, NULL::BIGINT AS size, \
     NULL::BOOLEAN AS truncated, NULL::VARCHAR AS schema, NULL::VARCHAR AS encoding, NULL::VARCHAR AS decoded, \
     NULL::VARCHAR AS decode_error, NULL::VARCHAR AS properties, NULL::VARCHAR AS connection, NULL::VARCHAR AS source, NULL::DATE AS date \
     WHERE FALSE";

pub(crate) fn qerr(e: impl std::fmt::Display) -> LakeError {
    LakeError::Query(e.to_string())
}

pub(crate) fn sql_string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A compiled filter's values, ready to bind to its `?` placeholders.
fn bound(filter: &Compiled) -> duckdb::ParamsFromIter<Vec<DbValue>> {
    params_from_iter(filter.params.iter().map(to_db).collect())
}

fn to_db(p: &Param) -> DbValue {
    match p {
        Param::Text(s) => DbValue::Text(s.clone()),
        Param::Int(i) => DbValue::BigInt(*i),
        Param::Float(f) => DbValue::Double(*f),
        Param::Blob(b) => DbValue::Blob(b.clone()),
    }
}

/// Offsets already in the lake for one source, as closed intervals per partition, so a new
/// capture of an overlapping range skips what is there (ids stay unique in search).
#[derive(Debug, Default, Clone)]
pub struct Covered {
    ranges: BTreeMap<i32, Vec<(i64, i64)>>,
}

impl Covered {
    pub fn contains(&self, partition: i32, offset: i64) -> bool {
        self.ranges.get(&partition).is_some_and(|r| {
            let i = r.partition_point(|(lo, _)| *lo <= offset);
            i > 0 && r[i - 1].1 >= offset
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// The result of `sluice sql`: column names and one JSON object per row.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

pub struct Query {
    lake: Lake,
    conn: Connection,
}

impl Query {
    pub(crate) fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn open(lake: &Lake) -> Result<Self, LakeError> {
        let conn = Connection::open_in_memory().map_err(qerr)?;
        conn.execute_batch("SET TimeZone = 'UTC';").map_err(qerr)?;
        crate::functions::register(&conn).map_err(qerr)?;
        create_view(&conn, lake)?;
        Ok(Query {
            lake: lake.clone(),
            conn,
        })
    }

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
            format!("filename, file_row_number, {HIT_KEYS}")
        } else {
            format!("filename, file_row_number, {EVENT_COLUMNS}, {HIT_KEYS}")
        };
        let mut hits: Vec<Hit> = Vec::new();
        if skip as usize > DEEP_SKIP && !files.is_empty() {
            // Far down a large result, DuckDB skips inside its sort: the rows before the page
            // never come back to Rust, and reading newest files first could not stop early
            // anyway.
            let sql = format!(
                "SELECT {cols} FROM {} AS events WHERE {} \
                 ORDER BY timestamp DESC NULLS LAST, captured_at DESC, \"offset\" DESC LIMIT {limit} OFFSET {skip}",
                parquet_source_with_names(&files),
                filter.where_sql
            );
            self.hits(&sql, bound(filter), &mut hits)?;
            return self.page(hits, by_row);
        }
        let (mut next, mut group) = (0, 4);
        while next < files.len() {
            let end = (next + group).min(files.len());
            let sql = format!(
                "SELECT {cols} FROM {} AS events WHERE {} \
                 ORDER BY timestamp DESC NULLS LAST, captured_at DESC, \"offset\" DESC LIMIT {want}",
                parquet_source_with_names(&files[next..end]),
                filter.where_sql
            );
            self.hits(&sql, bound(filter), &mut hits)?;
            hits.sort_by(Hit::newest_first);
            hits.truncate(want);
            next = end;
            // Groups grow to let DuckDB's threads share the work, but not past 16 files, so a
            // rare filter's page stops soon after its last match instead of reading on.
            group = (group * 2).min(16);
            let kth = hits.get(want - 1).and_then(|h| h.timestamp_us);
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

    /// Reads query rows of the shape `file, row, [event columns], sort keys` into hits.
    fn hits(
        &self,
        sql: &str,
        params: duckdb::ParamsFromIter<Vec<DbValue>>,
        out: &mut Vec<Hit>,
    ) -> Result<(), LakeError> {
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        for batch in stmt.stream_arrow(params).map_err(qerr)? {
            let text = |i| cast_as::<StringArray>(&batch, i, &DataType::Utf8).map_err(qerr);
            let int = |i| cast_as::<Int64Array>(&batch, i, &DataType::Int64).map_err(qerr);
            let n = batch.num_columns();
            let (names, rows) = (text(0)?, int(1)?);
            let (ts, cap, off) = (int(n - 3)?, int(n - 2)?, int(n - 1)?);
            let events = if n < 2 + EVENT_COLUMN_COUNT {
                None
            } else {
                let cols: Vec<_> = (0..EVENT_COLUMN_COUNT).map(|i| 2 + i).collect();
                Some(EventColumns::new(&batch.project(&cols).map_err(qerr)?).map_err(qerr)?)
            };
            for i in 0..batch.num_rows() {
                out.push(Hit {
                    file: names.value(i).to_string(),
                    row: rows.value(i),
                    timestamp_us: (!ts.is_null(i)).then(|| ts.value(i)),
                    captured_at_us: cap.value(i),
                    offset: (!off.is_null(i)).then(|| off.value(i)),
                    event: events.as_ref().map(|e| e.event(i)),
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
                "SELECT file_row_number, {EVENT_COLUMNS} FROM {} AS events WHERE file_row_number IN ({marks})",
                parquet_source_with_names(&[FileScan::whole(PathBuf::from(file))])
            );
            let params: Vec<DbValue> = rows.into_iter().map(DbValue::BigInt).collect();
            let mut stmt = self.conn.prepare(&sql).map_err(qerr)?;
            for batch in stmt.stream_arrow(params_from_iter(params)).map_err(qerr)? {
                let rows = cast_as::<Int64Array>(&batch, 0, &DataType::Int64).map_err(qerr)?;
                let cols: Vec<usize> = (1..batch.num_columns()).collect();
                let events =
                    EventColumns::new(&batch.project(&cols).map_err(qerr)?).map_err(qerr)?;
                for i in 0..batch.num_rows() {
                    found.insert((file.to_string(), rows.value(i)), events.event(i));
                }
            }
        }
        Ok(hits
            .iter()
            .filter_map(|h| found.remove(&(h.file.clone(), h.row)))
            .collect())
    }

    /// The files that may hold a match (their sketches and time ranges allow one), newest
    /// first, each with the rows that may; and whether that is every row of every file.
    fn candidates(&self, needs: &Needs) -> (Vec<FileScan>, bool) {
        let all = self.lake.files();
        let total = all.len();
        let mut files: Vec<FileScan> = all
            .into_iter()
            .filter_map(|path| {
                let mut s = None;
                if !sketch::may_match(needs, &path, file_times(&path), &mut s) {
                    return None;
                }
                let rows = sketch::rows_to_read(needs, &mut s, &path);
                if rows.as_ref().is_some_and(Vec::is_empty) {
                    return None;
                }
                Some(FileScan {
                    newest: file_max_time(&path),
                    path,
                    rows,
                })
            })
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.newest));
        let every = files.len() == total && files.iter().all(|f| f.rows.is_none());
        (files, every)
    }

    /// What a filtered query reads, as a FROM item named `events`: the whole view, or only the
    /// files (and rows) that may hold a match; `None` when none can.
    fn events_for(&self, filter: &Compiled) -> Option<String> {
        if filter.needs == Needs::Anything {
            return Some("events".into());
        }
        match self.candidates(&filter.needs) {
            (_, true) => Some("events".into()),
            (files, _) if files.is_empty() => None,
            (files, _) => Some(format!("{} AS events", parquet_source_with_names(&files))),
        }
    }

    pub fn count(&self, filter: &Compiled) -> Result<u64, LakeError> {
        let Some(events) = self.events_for(filter) else {
            return Ok(0);
        };
        let sql = format!("SELECT count(*) FROM {events} WHERE {}", filter.where_sql);
        self.conn
            .query_row(&sql, bound(filter), |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(qerr)
    }

    /// Matches per time bucket (event time, else capture time) between the first and the last
    /// match: `(start_us, bucket_us, counts)`, with `buckets` counts (none when nothing matches).
    pub fn histogram(
        &self,
        filter: &Compiled,
        buckets: u32,
    ) -> Result<(i64, i64, Vec<u64>), LakeError> {
        let buckets = buckets.clamp(1, 1000) as i64;
        let Some(events) = self.events_for(filter) else {
            return Ok((0, 0, Vec::new()));
        };
        let t = "coalesce(epoch_us(timestamp), epoch_us(captured_at))";
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .conn
            .query_row(
                &format!(
                    "SELECT min({t}), max({t}) FROM {events} WHERE {}",
                    filter.where_sql
                ),
                bound(filter),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(qerr)?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok((0, 0, Vec::new()));
        };
        let width = ((hi - lo) / buckets + 1).max(1);
        let sql = format!(
            "SELECT least(({t} - {lo}) // {width}, {last}) AS b, count(*) FROM {events} WHERE {} GROUP BY b",
            filter.where_sql,
            last = buckets - 1
        );
        let mut counts = vec![0u64; buckets as usize];
        let mut stmt = self.conn.prepare(&sql).map_err(qerr)?;
        let mut rows = stmt.query(bound(filter)).map_err(qerr)?;
        while let Some(r) = rows.next().map_err(qerr)? {
            let b: i64 = r.get(0).map_err(qerr)?;
            let n: i64 = r.get(1).map_err(qerr)?;
            if let Some(c) = counts.get_mut(b.max(0) as usize) {
                *c += n as u64;
            }
        }
        Ok((lo, width, counts))
    }

    /// Matches oldest first while keeping each source partition in offset order (a running
    /// maximum of time per partition orders the merge), handing each to `f` until it says stop.
    pub fn for_each_in_order(
        &self,
        filter: &Compiled,
        limit: Option<u64>,
        columns: Columns,
        mut f: impl FnMut(Event) -> bool,
    ) -> Result<(), LakeError> {
        let limit = limit.map(|l| format!("LIMIT {l}")).unwrap_or_default();
        let cols = match columns {
            Columns::All => EVENT_COLUMNS,
            Columns::ForSending => SEND_COLUMNS,
        };
        let Some(events) = self.events_for(filter) else {
            return Ok(());
        };
        let time = "coalesce(epoch_us(timestamp), epoch_us(captured_at))";
        let by_partition = "PARTITION BY connection, source, partition ORDER BY \"offset\"";
        // Times almost always rise with offsets, and then the running maximum is the time
        // itself: a narrow check spares the window over whole rows (payloads included), which
        // held every row back from the sender until both sorts had finished.
        let inversions = format!(
            "SELECT count(*) FROM (SELECT {time} AS t, lag({time}) OVER ({by_partition}) AS prev \
             FROM {events} WHERE {}) WHERE t < prev",
            filter.where_sql
        );
        let in_order = self
            .conn
            .query_row(&inversions, bound(filter), |r| r.get::<_, i64>(0))
            .map_err(qerr)?
            == 0;
        // Tried: ordering the matches' positions in memory and reading rows by chunk of file
        // instead; DuckDB's window and sort, spread over its threads, stayed faster.
        let sql = if in_order {
            format!(
                "SELECT {cols} FROM {events} WHERE {} \
                 ORDER BY {time}, connection, source, partition, \"offset\" {limit}",
                filter.where_sql
            )
        } else {
            format!(
                "SELECT {cols} FROM (SELECT *, max({time}) OVER ({by_partition} ROWS UNBOUNDED PRECEDING) \
                 AS sluice_order FROM {events} WHERE {}) \
                 ORDER BY sluice_order, connection, source, partition, \"offset\" {limit}",
                filter.where_sql
            )
        };
        self.stream(&sql, filter, &mut f)
    }

    /// Writes the matches, oldest first, to a standalone Parquet file (partition columns
    /// included), streaming: rows go out in batches, never all held in memory.
    pub fn export_parquet(&self, filter: &Compiled, path: &Path) -> Result<u64, LakeError> {
        const BATCH_ROWS: usize = 50_000;
        let mut n = 0;
        write_atomically(path, arrow_schema(true), |w| {
            let mut rows = RowBuilder::new(true);
            let mut failed = None;
            self.for_each_in_order(filter, None, Columns::All, |e| {
                n += 1;
                rows.append(&EventRef::of(&e));
                if rows.len() >= BATCH_ROWS {
                    if let Err(err) = rows
                        .finish()
                        .map_err(ParquetError::from)
                        .and_then(|b| w.write(&b))
                    {
                        failed = Some(err);
                        return false;
                    }
                }
                true
            })
            .map_err(|e| ParquetError::General(e.to_string()))?;
            if let Some(err) = failed {
                return Err(err);
            }
            w.write(&rows.finish()?)
        })?;
        Ok(n)
    }

    /// Runs a query of one of the column lists above, handing events to `f` until it says
    /// stop. Results arrive as Arrow batches and are converted column by column: reading
    /// values one at a time through the row API dominated replay profiles.
    fn stream(
        &self,
        sql: &str,
        filter: &Compiled,
        mut f: impl FnMut(Event) -> bool,
    ) -> Result<(), LakeError> {
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let batches = stmt.stream_arrow(bound(filter)).map_err(qerr)?;
        for batch in batches {
            let cols = EventColumns::new(&batch).map_err(qerr)?;
            for i in 0..batch.num_rows() {
                if !f(cols.event(i)) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The highest source partition among matches (checked before `--keep-partition`).
    pub fn sql_max_partition(&self, filter: &Compiled) -> Result<Option<i32>, LakeError> {
        let sql = format!(
            "SELECT max(partition) FROM events WHERE {}",
            filter.where_sql
        );
        self.conn
            .query_row(&sql, bound(filter), |r| r.get::<_, Option<i32>>(0))
            .map_err(qerr)
    }

    pub fn covered(&self, connection: &str, source: &str) -> Result<Covered, LakeError> {
        let sql = "SELECT partition, min(o), max(o) FROM (SELECT partition, o, o - row_number() OVER (PARTITION BY partition ORDER BY o) AS grp \
                   FROM (SELECT DISTINCT partition, \"offset\" AS o FROM events WHERE connection = ? AND source = ? AND partition IS NOT NULL AND \"offset\" IS NOT NULL)) \
                   GROUP BY partition, grp ORDER BY partition, 2";
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let mut rows = stmt.query([connection, source]).map_err(qerr)?;
        let mut covered = Covered::default();
        while let Some(r) = rows.next().map_err(qerr)? {
            let (p, lo, hi): (i32, i64, i64) = (
                r.get(0).map_err(qerr)?,
                r.get(1).map_err(qerr)?,
                r.get(2).map_err(qerr)?,
            );
            covered.ranges.entry(p).or_default().push((lo, hi));
        }
        Ok(covered)
    }

    /// Ids of a source's events that have no bus position: for reads of a queue, whose
    /// messages can come again (given back, or a capture that died before acknowledging), and
    /// whose ids the reader derives from the message itself where it can.
    pub fn ids_without_position(
        &self,
        connection: &str,
        source: &str,
    ) -> Result<std::collections::HashSet<String>, LakeError> {
        let sql = "SELECT DISTINCT id FROM events WHERE connection = ? AND source = ? AND \"offset\" IS NULL";
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let mut rows = stmt.query([connection, source]).map_err(qerr)?;
        let mut ids = std::collections::HashSet::new();
        while let Some(r) = rows.next().map_err(qerr)? {
            ids.insert(r.get::<_, String>(0).map_err(qerr)?);
        }
        Ok(ids)
    }
}

/// The order of `search`: time descending (missing last), then capture time, then offset.
/// A match found by search: its file and row, its sort keys, and the event when it was read whole.
struct Hit {
    file: String,
    row: i64,
    timestamp_us: Option<i64>,
    captured_at_us: i64,
    offset: Option<i64>,
    event: Option<Event>,
}

/// Beyond this many skipped rows, a search page is one query that skips inside DuckDB.
const DEEP_SKIP: usize = 10_000;

/// Above this many rows per page a search reads whole rows at once instead of fetching by row.
const FETCH_BY_ROW_MAX: usize = 2_000;

impl Hit {
    fn newest_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
        let ts = |h: &Hit| h.timestamp_us.map_or((0, 0), |t| (1, t));
        ts(b)
            .cmp(&ts(a))
            .then(b.captured_at_us.cmp(&a.captured_at_us))
            .then(b.offset.cmp(&a.offset))
    }
}

/// A lake file a query reads: its newest event time (from its name), its path, and the row
/// ranges (first, last) that may hold a match, `None` for all of them.
struct FileScan {
    newest: i64,
    path: PathBuf,
    rows: Option<Vec<(u64, u64)>>,
}

impl FileScan {
    fn whole(path: PathBuf) -> Self {
        FileScan {
            newest: 0,
            path,
            rows: None,
        }
    }
}

/// `read_parquet` over some lake files, with each row's `filename` and `file_row_number`. A
/// file read only in part is filtered on its row numbers, which DuckDB turns into skipping the
/// row groups outside them.
fn parquet_source_with_names(files: &[FileScan]) -> String {
    let source = |paths: &[&Path]| {
        let list: Vec<String> = paths
            .iter()
            .map(|p| sql_string_literal(&p.display().to_string()))
            .collect();
        parquet_source(&format!(
            "[{}], filename = true, file_row_number = true",
            list.join(", ")
        ))
    };
    let whole: Vec<&Path> = files
        .iter()
        .filter(|f| f.rows.is_none())
        .map(|f| f.path.as_path())
        .collect();
    if whole.len() == files.len() {
        return source(&whole);
    }
    let mut parts = Vec::new();
    if !whole.is_empty() {
        parts.push(format!("SELECT * FROM {}", source(&whole)));
    }
    for f in files {
        if let Some(rows) = &f.rows {
            let ranges: Vec<String> = rows
                .iter()
                .map(|(a, b)| format!("file_row_number BETWEEN {a} AND {b}"))
                .collect();
            parts.push(format!(
                "SELECT * FROM {} WHERE {}",
                source(&[&f.path]),
                ranges.join(" OR ")
            ));
        }
    }
    format!("({})", parts.join(" UNION ALL BY NAME "))
}

/// `read_parquet` over the given file list or glob (a SQL literal), with the lake's partition
/// columns typed as text so a topic named `123` stays a string.
fn parquet_source(files: &str) -> String {
    format!(
        "read_parquet({files}, hive_partitioning = true, union_by_name = true, \
         hive_types = {{'connection': VARCHAR, 'source': VARCHAR, 'date': DATE}})"
    )
}

pub(crate) fn create_view(conn: &Connection, lake: &Lake) -> Result<(), LakeError> {
    let sql = if lake.files().is_empty() {
        format!("CREATE OR REPLACE VIEW events AS {EMPTY_VIEW}")
    } else {
        let glob = lake.root().join("**").join("*.parquet");
        format!(
            "CREATE OR REPLACE VIEW events AS SELECT * FROM {}",
            parquet_source(&sql_string_literal(&glob.display().to_string()))
        )
    };
    conn.execute_batch(&sql).map_err(qerr)
}

/// One Arrow batch of an event query, each column cast to the type read here, so the types
/// DuckDB chooses for its Arrow export (e.g. large or view strings) do not matter.
struct EventColumns {
    text: Vec<StringArray>,
    partition: Int32Array,
    offset: Int64Array,
    key: BinaryArray,
    payload: BinaryArray,
    header_keys: ListArray,
    header_values: ListArray,
    times: Vec<Int64Array>,
    size: Int64Array,
    truncated: BooleanArray,
}

/// Positions of the text columns in `EVENT_COLUMNS`.
const TEXT_COLUMNS: [usize; 11] = [0, 1, 2, 3, 7, 13, 16, 17, 18, 19, 20];

fn cast_as<T: Array + Clone + 'static>(
    batch: &RecordBatch,
    i: usize,
    ty: &DataType,
) -> Result<T, String> {
    let col = cast(batch.column(i), ty).map_err(|e| format!("column {i}: {e}"))?;
    col.as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| format!("column {i}: unexpected type {}", col.data_type()))
}

impl EventColumns {
    fn new(batch: &RecordBatch) -> Result<Self, String> {
        let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
        Ok(EventColumns {
            text: TEXT_COLUMNS
                .iter()
                .map(|&i| cast_as::<StringArray>(batch, i, &DataType::Utf8))
                .collect::<Result<_, _>>()?,
            partition: cast_as(batch, 4, &DataType::Int32)?,
            offset: cast_as(batch, 5, &DataType::Int64)?,
            key: cast_as(batch, 6, &DataType::Binary)?,
            header_keys: cast_as(batch, 8, &list(DataType::Utf8))?,
            header_values: cast_as(batch, 9, &list(DataType::Binary))?,
            times: [10, 11]
                .iter()
                .map(|&i| cast_as::<Int64Array>(batch, i, &DataType::Int64))
                .collect::<Result<_, _>>()?,
            payload: cast_as(batch, 12, &DataType::Binary)?,
            size: cast_as(batch, 14, &DataType::Int64)?,
            truncated: cast_as(batch, 15, &DataType::Boolean)?,
        })
    }

    fn event(&self, i: usize) -> Event {
        let text = |c: usize| {
            let a = &self.text[c];
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let opt = |a: &dyn Array| !a.is_null(i);
        let headers = if self.header_keys.is_null(i) {
            Vec::new()
        } else {
            let keys = self.header_keys.value(i);
            let values = self.header_values.value(i);
            let keys = keys.as_any().downcast_ref::<StringArray>();
            let values = values.as_any().downcast_ref::<BinaryArray>();
            match (keys, values) {
                (Some(k), Some(v)) => (0..k.len())
                    .map(|j| Header {
                        key: k.value(j).to_string(),
                        value: (!v.is_null(j)).then(|| v.value(j).to_vec()),
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        Event {
            id: text(0).unwrap_or_default(),
            bus: text(1)
                .as_deref()
                .and_then(Bus::parse)
                .unwrap_or(Bus::Kafka),
            connection: text(2).unwrap_or_default(),
            source: text(3).unwrap_or_default(),
            partition: opt(&self.partition).then(|| self.partition.value(i)),
            offset: opt(&self.offset).then(|| self.offset.value(i)),
            key: opt(&self.key).then(|| self.key.value(i).to_vec()),
            key_decoded: text(4),
            headers,
            timestamp_us: opt(&self.times[0]).then(|| self.times[0].value(i)),
            captured_at_us: self.times[1].value(i),
            payload: if opt(&self.payload) {
                self.payload.value(i).to_vec()
            } else {
                Vec::new()
            },
            payload_text: text(5),
            size: self.size.value(i),
            truncated: opt(&self.truncated) && self.truncated.value(i),
            schema: text(6),
            encoding: Encoding::parse(text(7).as_deref().unwrap_or("binary")),
            decoded: text(8),
            decode_error: text(9),
            properties: text(10),
        }
    }
}
