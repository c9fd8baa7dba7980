//! Replay: what a replay would send (the dry run), the replay itself as a job, and the history
//! every replay leaves, whichever host ran it.

use super::app::NoArgs;
use super::lake::preview;
use super::Session;
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobCtx, JobOutcome, JobWork};
use crate::render::utf8;
use crate::{ReplayEdit, ReplayFailure, ReplayProgress, ReplayRequest, ReplaySummary, Sluice};
use serde::{Deserialize, Serialize};
use sluice_model::Event;
use std::time::Duration;
use ts_rs::TS;

#[derive(Debug, Deserialize, TS)]
pub struct ReplayArgs {
    pub filter: String,
    /// Only these events (the rows ticked in a result), within the filter: any number up to
    /// 100,000, where an `event.id in (...)` filter holds 1,024.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub ids: Vec<String>,
    /// `CONNECTION:TOPIC`, `CONNECTION:EXCHANGE[/ROUTING_KEY]` or `CONNECTION:QUEUE`.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub to_origin: bool,
    #[serde(default)]
    pub rate: Option<u32>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub keep_partition: bool,
    /// Events to send as edited in the replay dialog.
    #[serde(default)]
    pub edits: Vec<ReplayEdit>,
    /// Give up on a destination that answers nothing for this long (30 s when not given).
    #[serde(default)]
    #[ts(optional)]
    pub broker_timeout_ms: Option<u64>,
    /// MQTT: publish events that were retained as retained (never by default).
    #[serde(default)]
    #[ts(optional = nullable)]
    pub retain: bool,
    /// Redis streams: write each entry with its original id, into an empty stream only.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub keep_ids: bool,
}

/// One event as a dry run shows it: what goes where.
#[derive(Debug, Serialize, TS)]
pub struct PlanRow {
    pub id: String,
    pub source: String,
    pub destination: String,
    pub key_text: Option<String>,
    pub preview: String,
    pub size: i64,
}

#[derive(Debug, Serialize, TS)]
pub struct ReplayPlan {
    pub total: u64,
    /// Events redacted at capture (they carry `sluice-redacted`): their redacted values are
    /// sent as the lake holds them.
    pub redacted: u64,
    /// The first events only (the table shows these; `total` counts all).
    pub rows: Vec<PlanRow>,
}

/// A past replay, as kept in `CONFIG/replays.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ReplayRecord {
    pub started_at: String,
    pub filter: String,
    pub to: String,
    pub matched: u64,
    pub sent: u64,
    pub failed: u64,
    /// Sent with no answer: they may have arrived (absent from records older than it).
    #[serde(default)]
    pub unknown: u64,
    /// Matched but never handed to the bus (the replay stopped first).
    #[serde(default)]
    pub not_sent: u64,
    pub interrupted: bool,
    pub error: Option<String>,
}

/// A replay's outcome: its account, or the error it ended with and (when it had begun) the
/// account up to then.
pub type ReplayOutcome = std::result::Result<ReplaySummary, ReplayFailure>;

/// A window sees a failed replay as a job error; its account is the job's last progress.
impl JobOutcome for ReplayOutcome {
    fn into_outcome(self) -> std::result::Result<serde_json::Value, ApiError> {
        self.map_err(|f| f.error).into_outcome()
    }
}

/// Where a dry run's event goes back to, or why it cannot; `None` when it is not going back.
pub type PlanOrigin = Option<std::result::Result<String, String>>;

/// Rows a dry run lists; `total` still counts every event.
const PLAN_ROWS: usize = 500;

const HISTORY: &str = "replays.jsonl";

fn replay_request(a: &ReplayArgs) -> ReplayRequest {
    ReplayRequest {
        ids: a.ids.clone(),
        to: a.to.clone(),
        to_origin: a.to_origin,
        rate: a.rate.filter(|r| *r > 0),
        limit: a.limit,
        keep_partition: a.keep_partition,
        edits: a.edits.clone(),
        broker_timeout: a.broker_timeout_ms.map(Duration::from_millis),
        send: sluice_bus::SendOptions {
            retain: a.retain,
            keep_ids: a.keep_ids,
        },
    }
}

/// The selection as the history shows it: the filter, and how many ticked events within it.
fn described_selection(a: &ReplayArgs) -> String {
    match (a.ids.len(), a.filter.trim()) {
        (0, f) => f.to_string(),
        (n, "") => format!("{n} ticked event(s)"),
        (n, f) => format!("{n} ticked event(s) within {f}"),
    }
}

/// Replays are recorded even when the history file cannot be written: the replay itself
/// already happened, so a failure here is only logged.
fn history_append(sluice: &Sluice, record: &ReplayRecord) {
    use std::io::Write;
    let path = sluice.config_dir.join(HISTORY);
    let line = serde_json::to_string(record).unwrap_or_default();
    let written = std::fs::create_dir_all(&sluice.config_dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"))
    });
    if let Err(e) = written {
        tracing::warn!("cannot record the replay in {}: {e}", path.display());
    }
}

impl Session {
    /// Walks what a replay would send, in order, sending nothing: each event as it would go
    /// (edits applied) and, going back to origin, where to or why it cannot. The count.
    pub fn replay_plan_each(
        &self,
        a: &ReplayArgs,
        on_event: &mut dyn FnMut(&Event, PlanOrigin),
    ) -> Result<u64> {
        let req = replay_request(a);
        let sluice = self.sluice();
        let mut finder = sluice.origin_finder();
        sluice.replay_plan(&a.filter, &req, &mut |e| {
            let origin = req
                .to_origin
                .then(|| finder.describe(e).map_err(|why| why.to_string()));
            on_event(e, origin)
        })
    }

    /// The dry run as the replay dialog's table: the first rows and the total.
    pub fn replay_plan(&self, a: ReplayArgs) -> Result<ReplayPlan> {
        let mut rows = Vec::new();
        let mut redacted = 0;
        let total = self.replay_plan_each(&a, &mut |e, origin| {
            redacted += u64::from(e.header(crate::REDACTED_HEADER).is_some());
            if rows.len() < PLAN_ROWS {
                let destination = match origin {
                    Some(Ok(to)) => to,
                    Some(Err(why)) => format!("(no origin: {why})"),
                    None => a.to.clone(),
                };
                rows.push(PlanRow {
                    id: e.id.clone(),
                    source: format!("{}:{}", e.connection, e.source),
                    destination,
                    key_text: e.key.as_deref().and_then(utf8),
                    preview: preview(e),
                    size: e.size,
                });
            }
        })?;
        Ok(ReplayPlan {
            total,
            redacted,
            rows,
        })
    }

    /// Sends the matching events; the job's progress is `ReplayProgress` (its last report, `done`,
    /// the whole account), a pause holds the sender, and every replay, finished, failed or
    /// stopped, is recorded in the history with its account.
    pub fn replay_job(&self, a: ReplayArgs) -> Result<JobWork<ReplayOutcome, ReplayProgress>> {
        let req = replay_request(&a);
        if !req.to_origin && a.to.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "choose a destination, or send back to origin",
            ));
        }
        let sluice = self.sluice();
        let label = if req.to_origin {
            "back to origin".to_string()
        } else {
            req.to.clone()
        };
        Ok(JobWork::new(
            "replay",
            label.clone(),
            move |job: &JobCtx<'_, ReplayProgress>| {
                let started_at = sluice_model::format_us(sluice_model::now_us());
                let outcome = sluice.replay(&a.filter, &req, job.stop(), &mut |p| {
                    job.progress(p);
                    if !p.done {
                        job.wait_while_paused();
                    }
                });
                // A replay that failed still has its account (none if it failed before sending).
                let account = match &outcome {
                    Ok(s) => Some(s),
                    Err(f) => f.summary.as_deref(),
                };
                let (matched, sent, failed, unknown, not_sent) = account
                    .map(|s| (s.matched, s.sent, s.failed, s.unknown, s.not_sent))
                    .unwrap_or_default();
                let record = ReplayRecord {
                    started_at,
                    filter: described_selection(&a),
                    to: label,
                    matched,
                    sent,
                    failed,
                    unknown,
                    not_sent,
                    interrupted: outcome.as_ref().is_ok_and(|s| s.interrupted) || job.stopped(),
                    error: outcome.as_ref().err().map(|f| f.error.message.clone()),
                };
                history_append(&sluice, &record);
                outcome
            },
        ))
    }

    pub fn replay_start(&self, a: ReplayArgs) -> Result<u64> {
        Ok(self.start(self.replay_job(a)?))
    }

    /// Past replays, newest first.
    pub fn replay_history(&self, _: NoArgs) -> Result<Vec<ReplayRecord>> {
        let path = self.sluice().config_dir.join(HISTORY);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut out: Vec<ReplayRecord> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &std::path::Path) -> Session {
        Session::new(Sluice::new(Some(dir.join("c")), Some(dir.join("l"))).unwrap())
    }

    /// `sluice replay` runs the replay job where it is; the window must find it in its
    /// history all the same, with the error it ended in.
    #[test]
    fn a_replay_run_by_the_cli_is_in_the_windows_history() {
        let dir = tempfile::tempdir().unwrap();
        let cli = session(dir.path());
        let args = Session::args(
            "replay_start",
            serde_json::json!({"filter": "", "to": "nowhere:orders", "broker_timeout_ms": 1000}),
        )
        .unwrap();
        let outcome =
            cli.replay_job(args)
                .unwrap()
                .run(&Default::default(), &mut |_| {}, &mut |_| true);
        let failure = outcome.unwrap_err();
        assert!(failure.summary.is_none(), "it failed before sending");

        let window = session(dir.path());
        let history = window
            .call("replay_history", serde_json::json!({}))
            .unwrap();
        let [record] = history.as_array().unwrap().as_slice() else {
            panic!("one replay recorded: {history}");
        };
        assert_eq!(record["to"], "nowhere:orders");
        assert_eq!(record["error"], failure.error.message.as_str());
        assert_eq!(record["sent"], 0);
    }

    #[test]
    fn a_replay_needs_a_destination() {
        let dir = tempfile::tempdir().unwrap();
        let e = session(dir.path())
            .call("replay_start", serde_json::json!({"filter": ""}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }
}
