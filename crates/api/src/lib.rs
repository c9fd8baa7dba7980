//! The command API: every action Sluice offers, as plain blocking functions over plain data,
//! called alike by the `sluice` CLI and the desktop app's thin command wrappers.
//!
//! This crate owns configuration (profiles, mappings, secrets, schema store) and wires
//! connectors, codecs, the lake and replay together. It must not print, prompt, or know about
//! terminals or windows: hosts render results and progress. Errors are `{code, message}`.

//! One file per domain: `connections`, `decoding` (schemas, mappings, re-decoding), `reading`
//! (tail, capture), `search`, `export`, `replay`; `commands` is the table every host calls.

mod bundle;
mod capture;
mod commands;
mod config;
mod connections;
mod decoding;
mod edit;
mod error;
mod export;
mod jobs;
mod reading;
mod redaction;
mod registry;
mod render;
mod replay;
mod schemas;
mod search;
mod secrets;
mod upkeep;

pub use bundle::{BundleImported, BundleManifest, BUNDLE_VERSION};
pub use capture::{CaptureOptions, CaptureProgress, DEFAULT_MAX_PAYLOAD_BYTES};
pub use commands::{typescript, Session, COMMANDS};
pub use config::{Config, ConnectionProfile, Mapping, PasswordStore};
pub use connections::{ConnectionAdd, ConnectionAdded, ConnectionSummary};
pub use decoding::SchemaListing;
pub use edit::{parse_edits, ReplayEdit};
pub use error::{ApiError, ErrorCode, Result};
pub use export::ExportFormat;
pub use jobs::{JobInfo, JobUpdate};
pub use render::EventView;
pub use render::{event_json, headers_json};
pub use replay::{OriginFinder, ReplayFailure, ReplayRequest};
pub use schemas::{SchemaAdded, SchemaProblem};
pub use sluice_bus::Listening;
pub use sluice_bus::{
    BusKind, Capabilities, Delivery, Health, QueueRead, ReadOptions, Settings, SourceInfo,
};
pub use sluice_capture::{RedactAction, RedactAt, RedactRule, REDACTED_HEADER};
pub use sluice_lake::{run_if_worker, SqlLimits};
pub use sluice_lake::{
    CompactReport, FlushPolicy, PruneReport, RedecodeProgress, Scope as LakeScope, SqlResult,
};
pub use sluice_model::{Event, StartFrom};
pub use sluice_replay::{ReplayProgress, ReplaySummary};
pub use upkeep::parse_age;

use sluice_lake::Lake;
use std::path::PathBuf;
use std::time::Duration;

/// How long a connection may take to answer before we say it is unreachable (the whole
/// command stays under the promised 10 seconds).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Where Sluice keeps its configuration and its lake.
#[derive(Debug, Clone)]
pub struct Sluice {
    pub config_dir: PathBuf,
    pub lake_dir: PathBuf,
}

fn default_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "sluice", "sluice")
}

impl Sluice {
    /// Uses the given folders, else the platform's config and data folders.
    pub fn new(config_dir: Option<PathBuf>, lake_dir: Option<PathBuf>) -> Result<Self> {
        let dirs = default_dirs();
        let missing = || {
            ApiError::new(
                ErrorCode::Config,
                "cannot find a home folder: pass --config and --lake",
            )
        };
        let config_dir = match config_dir {
            Some(d) => d,
            None => dirs
                .as_ref()
                .ok_or_else(missing)?
                .config_dir()
                .to_path_buf(),
        };
        let lake_dir = match lake_dir {
            Some(d) => d,
            None => dirs.as_ref().ok_or_else(missing)?.data_dir().join("lake"),
        };
        Ok(Sluice {
            config_dir,
            lake_dir,
        })
    }

    pub(crate) fn config(&self) -> Result<Config> {
        Config::load(&self.config_dir)
    }

    pub(crate) fn lake(&self) -> Result<Lake> {
        Ok(Lake::open(&self.lake_dir)?)
    }

    /// What is kept with the lake for everyone who opens it: schemas and mappings.
    pub(crate) fn shared_dir(&self) -> PathBuf {
        self.lake_dir.join("_sluice")
    }

    /// The schema stores, in the order they load: the lake's shared one, then the user's own
    /// (which wins for a file of the same name).
    pub(crate) fn schema_roots(&self) -> Vec<PathBuf> {
        vec![self.shared_dir(), self.config_dir.clone()]
    }

    /// Every mapping in force: the user's own, then the lake's shared ones for sources the
    /// user maps no differently (marked `shared`).
    pub(crate) fn mappings(&self) -> Result<Vec<config::Mapping>> {
        let mut all = self.config()?.mappings;
        for mut m in config::SharedMappings::load(&self.shared_dir())?.mappings {
            if !all
                .iter()
                .any(|l| l.connection == m.connection && l.topic == m.topic)
            {
                m.shared = true;
                all.push(m);
            }
        }
        Ok(all)
    }
}
