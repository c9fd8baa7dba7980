//! Keeping a lake small and fast: compaction (`sluice lake compact`) and retention
//! (`sluice lake prune --older-than 30d`), both safe while captures and searches run.

use crate::error::{ApiError, ErrorCode, Result};
use crate::Sluice;
use sluice_lake::{CompactOptions, CompactReport, PruneOptions, PruneReport, Scope, SqlLimits};
use std::time::Duration;

/// `30d`, `12h`, `2w`, `90m`: how far back a prune keeps events.
pub fn parse_age(text: &str) -> Result<Duration> {
    let bad = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("--older-than {text:?}: {why} (write it like 30d, 12h, 2w or 90m)"),
        )
    };
    let d = humantime::parse_duration(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if d.is_zero() {
        return Err(bad("an age of zero would remove everything"));
    }
    Ok(d)
}

impl Sluice {
    pub fn compact(
        &self,
        scope: Scope,
        target_size: Option<&str>,
        dry_run: bool,
        progress: &mut dyn FnMut(&CompactReport) -> bool,
    ) -> Result<CompactReport> {
        let mut opts = CompactOptions {
            scope,
            dry_run,
            ..CompactOptions::default()
        };
        if let Some(t) = target_size {
            opts.target_bytes = SqlLimits::parse_bytes(t)?;
            if opts.target_bytes < 1 << 20 {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("--target-size {t:?}: at least 1MiB"),
                ));
            }
        }
        Ok(self.lake()?.compact(&opts, progress)?)
    }

    /// Removes events older than `older_than` (event time, else capture time).
    pub fn prune(&self, scope: Scope, older_than: &str, dry_run: bool) -> Result<PruneReport> {
        let age = parse_age(older_than)?;
        let age_us = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
        let opts = PruneOptions {
            scope,
            before_us: sluice_model::now_us().saturating_sub(age_us),
            dry_run,
            reader_wait: Duration::from_secs(10),
        };
        Ok(self.lake()?.prune(&opts)?)
    }
}
