//! Bringing events from elsewhere into the lake: a standalone export file (what
//! `export_parquet` writes, and what a bundle carries) read back as events, leaving out the
//! ones this lake already holds, and a summary of what a filter's matches span (for a
//! bundle's manifest).

use crate::columns::{select_list, Columns};
use crate::layout::LakeError;
use crate::query::{bound, qerr, sql_string_literal, Query};
use sluice_filter::Compiled;
use sluice_model::Event;
use std::path::Path;

/// One source among a filter's matches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SourceCount {
    pub connection: String,
    pub source: String,
    pub bus: String,
    pub events: u64,
    /// The message types their payloads decoded with.
    pub schemas: Vec<String>,
}

impl Query {
    /// The sources of the matches, with their counts and the types they decoded with.
    pub fn sources_of(&self, filter: &Compiled) -> Result<Vec<SourceCount>, LakeError> {
        let Some(events) = self.events_for(filter) else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT connection, source, bus, count(*), list(DISTINCT schema) FILTER (WHERE schema IS NOT NULL) \
             FROM {events} WHERE {} GROUP BY ALL ORDER BY ALL",
            filter.where_sql
        );
        let mut stmt = self.conn().prepare(&sql).map_err(qerr)?;
        let mut rows = stmt.query(bound(filter)).map_err(qerr)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(qerr)? {
            let schemas: Option<duckdb::types::Value> = r.get(4).map_err(qerr)?;
            let schemas = match schemas {
                Some(duckdb::types::Value::List(items)) => items
                    .into_iter()
                    .filter_map(|v| match v {
                        duckdb::types::Value::Text(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            out.push(SourceCount {
                connection: r.get(0).map_err(qerr)?,
                source: r.get(1).map_err(qerr)?,
                bus: r.get(2).map_err(qerr)?,
                events: r.get::<_, i64>(3).map_err(qerr)? as u64,
                schemas,
            });
        }
        Ok(out)
    }

    /// Checks that `file` is a standalone export this version reads, before anything is
    /// imported: (rows, rows with an id of their own, each id counted once).
    pub fn check_export(&self, file: &Path) -> Result<(u64, u64), LakeError> {
        let source = export_source(file);
        let first_line = |e: duckdb::Error| {
            let m = e.to_string();
            LakeError::Query(m.lines().next().unwrap_or_default().to_string())
        };
        self.conn()
            .execute_batch(&format!(
                "SELECT {} FROM {source} LIMIT 0",
                select_list(Columns::All)
            ))
            .map_err(first_line)?;
        let (total, distinct): (i64, i64) = self
            .conn()
            .query_row(
                &format!(
                    "SELECT count(*), count(DISTINCT id) FILTER (WHERE id <> '') FROM {source}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(first_line)?;
        Ok((total as u64, distinct as u64))
    }

    /// The events of `file`, a standalone export, in its order, once per id, leaving out rows
    /// without an id and the ids this lake holds already; each handed to `f` until it says
    /// stop.
    pub fn events_missing_from(
        &self,
        file: &Path,
        f: impl FnMut(Event) -> bool,
    ) -> Result<(), LakeError> {
        let source = export_source(file);
        let lake = crate::query::whole_lake_source(self.lake())
            .unwrap_or_else(|| "(SELECT NULL::VARCHAR AS id WHERE false)".into());
        let sql = format!(
            "SELECT {} FROM (SELECT * FROM {source} WHERE id <> '' \
             QUALIFY row_number() OVER (PARTITION BY id) = 1) \
             WHERE id NOT IN (SELECT id FROM {lake} WHERE id IS NOT NULL)",
            select_list(Columns::All)
        );
        self.stream_with(&sql, [], f)
    }
}

fn export_source(file: &Path) -> String {
    format!(
        "read_parquet({}, union_by_name = true)",
        sql_string_literal(&file.display().to_string())
    )
}
