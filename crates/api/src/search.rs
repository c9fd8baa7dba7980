//! Searching the lake: filters, counts, histograms and SQL.

use crate::error::Result;
use crate::Sluice;
use sluice_lake::{Query, SqlLimits, SqlResult};
use sluice_model::Event;

impl Sluice {
    pub(crate) fn compile(filter: &str) -> Result<sluice_filter::Compiled> {
        Ok(sluice_filter::to_sql(filter, sluice_model::now_us())?)
    }

    /// A filter narrowed to the events a user ticked, when there are any.
    pub(crate) fn compile_picked(filter: &str, ids: &[String]) -> Result<sluice_filter::Compiled> {
        if ids.len() > sluice_filter::MAX_IDS {
            return Err(crate::error::ApiError::new(
                crate::error::ErrorCode::InvalidInput,
                format!(
                    "{} events ticked; one replay takes at most {} (use a filter for more)",
                    ids.len(),
                    sluice_filter::MAX_IDS
                ),
            ));
        }
        Ok(Self::compile(filter)?.only_ids(ids))
    }

    /// Matching events, newest first.
    /// Matches newest first, as shown: view-time redaction rules applied.
    pub fn search(&self, filter: &str, limit: u64, skip: u64) -> Result<Vec<Event>> {
        let mut events = self.search_stored(filter, limit, skip)?;
        if let Some(mask) = self.view_mask()? {
            events
                .iter_mut()
                .for_each(|e| crate::redaction::mask_event(&mask, e));
        }
        Ok(events)
    }

    /// `search` as the lake holds the events, for work that sends or decodes them (replay
    /// edits, type detection), never for showing them.
    pub(crate) fn search_stored(&self, filter: &str, limit: u64, skip: u64) -> Result<Vec<Event>> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.search(&c, limit, skip)?)
    }

    pub fn count(&self, filter: &str) -> Result<u64> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.count(&c)?)
    }

    /// Matches per time bucket: `(start_us, bucket_us, counts)`.
    pub fn histogram(&self, filter: &str, buckets: u32) -> Result<(i64, i64, Vec<u64>)> {
        let c = Self::compile(filter)?;
        Ok(Query::open(&self.lake()?)?.histogram(&c, buckets)?)
    }

    /// Runs in a child process (see `sluice_lake::run_if_worker`) that is killed at the
    /// timeout and cannot outgrow its memory limit: DuckDB's own limits do not reach every
    /// operator (a 10^8-element `list()` ignored a 2 GB `memory_limit` and an interrupt for 33 s).
    pub fn sql(&self, sql: &str, limits: &SqlLimits) -> Result<SqlResult> {
        Ok(Query::open(&self.lake()?)?.sql_limited(sql, limits)?)
    }
}
