//! Searching the lake: filters, counts, histograms and SQL.

use crate::error::Result;
use crate::Sluice;
use sluice_lake::{Query, SqlLimits, SqlResult};
use sluice_model::Event;

impl Sluice {
    pub(crate) fn compile(filter: &str) -> Result<sluice_filter::Compiled> {
        Ok(sluice_filter::to_sql(filter, sluice_model::now_us())?)
    }

    /// Matching events, newest first.
    pub fn search(&self, filter: &str, limit: u64, skip: u64) -> Result<Vec<Event>> {
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
