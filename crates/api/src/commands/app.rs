//! The session itself: where it keeps things, which buses it knows, and its running jobs.

use super::Session;
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobInfo, JobUpdate};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use ts_rs::TS;

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

#[derive(Debug, Deserialize, TS)]
pub struct LakeOpenArgs {
    pub path: String,
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

impl Session {
    pub fn app_info(&self, _: NoArgs) -> Result<AppInfo> {
        let s = self.sluice();
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_dir: s.config_dir.display().to_string(),
            lake_dir: s.lake_dir.display().to_string(),
        })
    }

    pub fn lake_open(&self, a: LakeOpenArgs) -> Result<AppInfo> {
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

    /// Every bus Sluice can connect to: its settings form, read modes and capabilities.
    pub fn bus_kinds(&self, _: NoArgs) -> Result<Vec<sluice_bus::BusKind>> {
        Ok(sluice_bus::kinds())
    }

    pub fn job_poll(&self, a: JobPollArgs) -> Result<JobUpdate> {
        self.jobs
            .poll(a.id, a.after, Duration::from_millis(a.wait_ms))
    }

    pub fn job_stop(&self, a: JobArgs) -> Result<()> {
        self.jobs.stop(a.id)
    }

    pub fn job_pause(&self, a: JobPauseArgs) -> Result<()> {
        self.jobs.pause(a.id, a.paused)
    }

    pub fn job_list(&self, _: NoArgs) -> Result<Vec<JobInfo>> {
        Ok(self.jobs.list())
    }
}
