//! The commands, by name with JSON arguments: the desktop shell and `sluice serve` hand every
//! call to [`Session::call`], and the `sluice` CLI builds the same arguments and calls the same
//! commands (typed, on its own thread), so the three offer exactly the same behaviour, written
//! once. `table.rs` holds the single list of commands; the UI's TypeScript bindings
//! (`ui/src/bindings.ts`) are generated from it and from the Rust types it names.
//!
//! Long work (tail, capture, replay, re-decoding) is a job: its command checks the arguments and
//! builds a [`crate::jobs::JobWork`], which a window starts in the background (`*_start`, then
//! `job_poll`/`watch`) and the CLI runs to its end with its progress lines.
//!
//! One file per domain: `app` (the session, its folders and jobs), `connections`, `schemas`,
//! `reading` (tail and capture), `lake` (search, export) and `replay`. Nothing here prints.

mod app;
mod connections;
mod lake;
mod reading;
mod replay;
mod schemas;
mod table;

pub use table::{typescript, COMMANDS};

use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobOutcome, JobUpdate, JobWork, Jobs};
use crate::Sluice;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;

/// One window's (or one `sluice serve`'s, or one `sluice` command's) view of Sluice: the folders
/// in use and the jobs running.
pub struct Session {
    sluice: Mutex<Sluice>,
    jobs: Jobs,
}

impl Session {
    pub fn new(sluice: Sluice) -> Self {
        Session {
            sluice: Mutex::new(sluice),
            jobs: Jobs::default(),
        }
    }

    /// The folders in use now (`lake_open` can change the lake).
    pub fn sluice(&self) -> Sluice {
        self.sluice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every running job, waiting for captures to flush (the host is closing).
    pub fn shutdown(&self, timeout: Duration) {
        self.jobs.shutdown(timeout);
    }

    /// Streams a job's updates to `send` (see `Jobs::watch`); the desktop app's channel.
    pub fn watch(&self, id: u64, after: u64, send: impl Fn(JobUpdate) -> bool) -> Result<()> {
        self.jobs.watch(id, after, send)
    }

    /// A command's arguments from their JSON object, checked as `call` checks a window's: the
    /// CLI builds the same object the window sends (`null` is `{}`).
    pub fn args<T: DeserializeOwned>(command: &str, args: serde_json::Value) -> Result<T> {
        let args = if args.is_null() {
            serde_json::json!({})
        } else {
            args
        };
        serde_json::from_value(args)
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("{command}: {e}")))
    }

    /// Starts a job command's work in the background: what a window's `*_start` answers.
    fn start<T, P>(&self, work: JobWork<T, P>) -> u64
    where
        T: JobOutcome + 'static,
        P: Serialize + 'static,
    {
        self.jobs.start(work)
    }
}
