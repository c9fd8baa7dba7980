//! Reading the lake with DuckDB: a view named `events` over every Parquet file, queried with
//! compiled filters (parameters bound, never spliced): counts, histograms, the oldest-first
//! reads of replay and export, and what a capture must skip. Search's pages are in `search`,
//! which files a filter must read in `scan`, raw SQL over the same view in `sql_process`.

use crate::columns::{arrow_schema, empty_view, select_list, Columns};
use crate::layout::{Lake, LakeError};
use crate::rows::EventColumns;
use crate::schema::{EventRef, RowBuilder};
use crate::writer::write_atomically;
use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use parquet::errors::ParquetError;
use sluice_filter::{Compiled, Param};
use sluice_model::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) fn qerr(e: impl std::fmt::Display) -> LakeError {
    LakeError::Query(e.to_string())
}

pub(crate) fn sql_string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A compiled filter's values, ready to bind to its `?` placeholders.
pub(crate) fn bound(filter: &Compiled) -> duckdb::ParamsFromIter<Vec<DbValue>> {
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
    /// Held from before the first listing until the last read: what this query may still
    /// open is never deleted under it (see `retire`).
    _reading: crate::retire::ReadGuard,
}

impl Query {
    pub(crate) fn lake(&self) -> &Lake {
        &self.lake
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn open(lake: &Lake) -> Result<Self, LakeError> {
        let reading = crate::retire::read_guard(lake.root());
        let conn = Connection::open_in_memory().map_err(qerr)?;
        conn.execute_batch("SET TimeZone = 'UTC';").map_err(qerr)?;
        crate::functions::register(&conn).map_err(qerr)?;
        create_view(&conn, lake)?;
        Ok(Query {
            lake: lake.clone(),
            conn,
            _reading: reading,
        })
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
        let cols = select_list(columns);
        let Some(events) = self.events_for(filter) else {
            return Ok(());
        };
        let time = "coalesce(epoch_us(timestamp), epoch_us(captured_at))";
        let by_partition =
            "PARTITION BY connection, source, partition ORDER BY \"offset\", sub_offset";
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
                 ORDER BY {time}, connection, source, partition, \"offset\", sub_offset {limit}",
                filter.where_sql
            )
        } else {
            format!(
                "SELECT {cols} FROM (SELECT *, max({time}) OVER ({by_partition} ROWS UNBOUNDED PRECEDING) \
                 AS sluice_order FROM {events} WHERE {}) \
                 ORDER BY sluice_order, connection, source, partition, \"offset\", sub_offset {limit}",
                filter.where_sql
            )
        };
        self.stream(&sql, filter, &mut f)
    }

    /// Writes the matches, oldest first, to a standalone Parquet file (partition columns
    /// included), streaming: rows go out in batches, never all held in memory. `shown` gets
    /// each event first (the caller's view-time masks).
    pub fn export_parquet(
        &self,
        filter: &Compiled,
        path: &Path,
        shown: &mut dyn FnMut(&mut Event),
    ) -> Result<u64, LakeError> {
        const BATCH_ROWS: usize = 50_000;
        let mut n = 0;
        // A failed read is returned as itself (an unknown bus, say), not as a write error.
        let mut read_error = None;
        let written = write_atomically(path, arrow_schema(true), |w| {
            let mut rows = RowBuilder::new(true);
            let mut failed = None;
            let read = self.for_each_in_order(filter, None, Columns::All, |mut e| {
                n += 1;
                shown(&mut e);
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
            });
            if let Err(e) = read {
                let stop = ParquetError::General(e.to_string());
                read_error = Some(e);
                return Err(stop);
            }
            if let Some(err) = failed {
                return Err(err);
            }
            w.write(&rows.finish()?)
        });
        match (read_error, written) {
            (Some(e), _) => Err(e),
            (None, written) => written.map(|_| n),
        }
    }

    /// Runs a query of a `select_list`, handing events to `f` until it says stop.
    fn stream(
        &self,
        sql: &str,
        filter: &Compiled,
        f: impl FnMut(Event) -> bool,
    ) -> Result<(), LakeError> {
        self.stream_with(sql, bound(filter), f)
    }

    pub(crate) fn stream_with(
        &self,
        sql: &str,
        params: impl duckdb::Params,
        mut f: impl FnMut(Event) -> bool,
    ) -> Result<(), LakeError> {
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let batches = stmt.stream_arrow(params).map_err(qerr)?;
        for batch in batches {
            let cols = EventColumns::new(&batch)?;
            for i in 0..batch.num_rows() {
                if !f(cols.event(i)?) {
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

    /// Ids of a source's events that have no partitioned position (`covered` has those): reads
    /// of a queue, whose messages can come again (given back, or a capture that died before
    /// acknowledging), whose ids the reader derives from the message itself where it can; and
    /// positions of two numbers (Redis entry ids), whose ids are derived from them.
    pub fn ids_without_position(
        &self,
        connection: &str,
        source: &str,
    ) -> Result<std::collections::HashSet<String>, LakeError> {
        let sql = "SELECT DISTINCT id FROM events WHERE connection = ? AND source = ? AND (partition IS NULL OR \"offset\" IS NULL)";
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let mut rows = stmt.query([connection, source]).map_err(qerr)?;
        let mut ids = std::collections::HashSet::new();
        while let Some(r) = rows.next().map_err(qerr)? {
            ids.insert(r.get::<_, String>(0).map_err(qerr)?);
        }
        Ok(ids)
    }
}

impl Query {
    /// The ids of one connection's events that came with an id of the client's own (a
    /// collector writes those as `collector:CONN/SOURCE#ID`; ids it draws have no `#`), so a
    /// client's retry of one is skipped without loading every id the lake holds.
    pub fn client_ids(
        &self,
        connection: &str,
    ) -> Result<std::collections::HashSet<String>, LakeError> {
        let sql = "SELECT DISTINCT id FROM events WHERE connection = ? AND contains(id, '#')";
        let mut stmt = self.conn.prepare(sql).map_err(qerr)?;
        let mut rows = stmt.query([connection]).map_err(qerr)?;
        let mut ids = std::collections::HashSet::new();
        while let Some(r) = rows.next().map_err(qerr)? {
            ids.insert(r.get::<_, String>(0).map_err(qerr)?);
        }
        Ok(ids)
    }
}

/// `read_parquet` over the given file list or glob (a SQL literal), with the lake's partition
/// columns typed as text so a topic named `123` stays a string.
pub(crate) fn parquet_source(files: &str) -> String {
    format!(
        "read_parquet({files}, hive_partitioning = true, union_by_name = true, \
         hive_types = {{'connection': VARCHAR, 'source': VARCHAR, 'date': DATE}})"
    )
}

/// `events` over the lake's files as listed now. A list, not a glob: a glob would also match
/// files that a compaction has retired but not yet deleted (see `retire`).
pub(crate) fn create_view(conn: &Connection, lake: &Lake) -> Result<(), LakeError> {
    let sql = match whole_lake_source(lake) {
        None => format!("CREATE OR REPLACE VIEW events AS {}", empty_view()),
        Some(source) => format!("CREATE OR REPLACE VIEW events AS SELECT * FROM {source}"),
    };
    conn.execute_batch(&sql).map_err(qerr)
}

/// `read_parquet` over every file of the lake, `None` when it has none.
pub(crate) fn whole_lake_source(lake: &Lake) -> Option<String> {
    let files = lake.files();
    if files.is_empty() {
        return None;
    }
    Some(parquet_source(&file_list(
        files.iter().map(PathBuf::as_path),
    )))
}

/// Files as a DuckDB list literal, `['a', 'b']`.
pub(crate) fn file_list<'a>(paths: impl Iterator<Item = &'a Path>) -> String {
    let list: Vec<String> = paths
        .map(|p| sql_string_literal(&p.display().to_string()))
        .collect();
    format!("[{}]", list.join(", "))
}
