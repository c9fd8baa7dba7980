//! Reading a bus: tail (shown, never stored) and capture (into the lake), both jobs. How to read
//! (`mode`) and where to start (`from`) are parsed here, for the window and the CLI alike.

use super::Session;
use crate::capture::{CaptureOptions, CaptureProgress};
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobCtx, JobWork};
use serde::Deserialize;
use sluice_bus::{QueueRead, ReadOptions};
use sluice_model::StartFrom;
use std::time::Duration;
use ts_rs::TS;

/// How to read: `tap` (RabbitMQ: Sluice's own queue bound to an exchange; Kafka and SQS
/// ignore it), `requeue` (RabbitMQ queue given back; SQS peek), `destructive` (deleted once
/// captured; SQS drain), `stream` (RabbitMQ stream queue), `slot`, `create-slot` and
/// `snapshot` (PostgreSQL: the slot as it is, `--create-slot`, `--create-slot --snapshot`).
/// The fields a window leaves out are
/// the CLI's finer controls; left out, they are the defaults.
#[derive(Debug, Deserialize, TS)]
pub struct ReadArgs {
    pub connection: String,
    pub sources: Vec<String>,
    /// `beginning`, `end`, `last`, `OFFSET`, `-N` or `@RFC3339`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub binding_key: Option<String>,
    #[serde(default)]
    pub max_messages: Option<u64>,
    #[serde(default)]
    pub stop_at_end: bool,
    /// RabbitMQ headers exchanges: only messages whose header `K` is `V`.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub match_headers: Vec<(String, String)>,
    /// Capture: stop after this long.
    #[serde(default)]
    #[ts(optional)]
    pub duration_ms: Option<u64>,
    /// Capture: give up (keeping what was read) when the bus answers nothing for this long
    /// (30 s when not given).
    #[serde(default)]
    #[ts(optional)]
    pub broker_timeout_ms: Option<u64>,
    /// Capture: also keep events that this lake replayed.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub include_replays: bool,
    /// Capture: larger payloads are stored cut and flagged `truncated` (8 MiB when not given).
    #[serde(default)]
    #[ts(optional)]
    pub max_payload_bytes: Option<usize>,
    /// Capture: store payloads undecoded, the fastest capture; `redecode` decodes them later.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub no_decode: bool,
    /// Capture of a collector: listen for HTTP here (`HOST:PORT`, `:PORT`, `PORT`) instead of
    /// at the connection's address; naming only one of `http` and `grpc` listens for that one.
    #[serde(default)]
    #[ts(optional)]
    pub http: Option<String>,
    /// Capture of a collector: the same for gRPC.
    #[serde(default)]
    #[ts(optional)]
    pub grpc: Option<String>,
    /// Capture of PostgreSQL: make Sluice's own replication slot and publication when missing.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub create_slot: bool,
    /// Capture of PostgreSQL: drop Sluice's own slot and publication at the end.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub drop_slot: bool,
    /// Capture of PostgreSQL: read the tables' rows first, as of the new slot's start.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub snapshot: bool,
}

/// The read mode names and what they mean; SQS calls requeue `peek` and destructive `drain`.
fn read_options(
    mode: Option<&str>,
    binding_key: Option<String>,
    match_headers: Vec<(String, String)>,
) -> Result<ReadOptions> {
    let mut slot = (false, false);
    let queue = match mode.unwrap_or("tap") {
        "tap" | "" | "slot" => None,
        // PostgreSQL: the same as `--create-slot`, and with `--snapshot`.
        "create-slot" => {
            slot = (true, false);
            None
        }
        "snapshot" => {
            slot = (true, true);
            None
        }
        "requeue" | "peek" => Some(QueueRead::Requeue),
        "destructive" | "drain" => Some(QueueRead::Destructive),
        "stream" => Some(QueueRead::Stream),
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("read mode {other:?}: expected tap, requeue, destructive, stream, slot, create-slot or snapshot"),
            ))
        }
    };
    Ok(ReadOptions {
        binding_key: binding_key.filter(|k| !k.is_empty()),
        match_headers,
        queue,
        create_slot: slot.0,
        snapshot: slot.1,
        ..ReadOptions::default()
    })
}

fn start_from(from: Option<&str>, default: StartFrom) -> Result<StartFrom> {
    match from.filter(|f| !f.is_empty()) {
        None => Ok(default),
        Some(f) => f.parse::<StartFrom>().map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("start position {f:?}: {e}"),
            )
        }),
    }
}

fn millis(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl Session {
    /// Shows a source's messages as they come, storing nothing; the job's events are the
    /// messages, its result how many were read.
    pub fn tail_job(&self, a: ReadArgs) -> Result<JobWork<Result<u64>>> {
        let read = read_options(a.mode.as_deref(), a.binding_key, a.match_headers)?;
        let from = start_from(a.from.as_deref(), StartFrom::End)?;
        let [topic] = a.sources.as_slice() else {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "tail reads exactly one topic, exchange or queue",
            ));
        };
        let (sluice, topic, connection) = (self.sluice(), topic.clone(), a.connection);
        let label = format!("{connection}:{topic}");
        let max = a.max_messages;
        Ok(JobWork::new("tail", label, move |job: &JobCtx<'_, ()>| {
            sluice.tail(
                &connection,
                &topic,
                from,
                &read,
                max,
                job.stop(),
                &mut |e| job.event(e),
            )
        }))
    }

    pub fn tail_start(&self, a: ReadArgs) -> Result<u64> {
        Ok(self.start(self.tail_job(a)?))
    }

    /// Captures sources into the lake; the job's progress and result are `CaptureProgress`.
    pub fn capture_job(
        &self,
        a: ReadArgs,
    ) -> Result<JobWork<Result<CaptureProgress>, CaptureProgress>> {
        let mut read = read_options(a.mode.as_deref(), a.binding_key, a.match_headers)?;
        read.listen_http = a.http.filter(|h| !h.is_empty());
        read.listen_grpc = a.grpc.filter(|g| !g.is_empty());
        read.create_slot |= a.create_slot;
        read.drop_slot = a.drop_slot;
        read.snapshot |= a.snapshot;
        let defaults = CaptureOptions::default();
        let opts = CaptureOptions {
            sources: a.sources.clone(),
            from: start_from(a.from.as_deref(), StartFrom::End)?,
            max_messages: a.max_messages,
            duration: millis(a.duration_ms),
            stop_at_end: a.stop_at_end,
            include_replays: a.include_replays,
            max_payload_bytes: a.max_payload_bytes.unwrap_or(defaults.max_payload_bytes),
            decode: !a.no_decode,
            broker_timeout: millis(a.broker_timeout_ms).unwrap_or(defaults.broker_timeout),
            read,
            ..defaults
        };
        let (sluice, connection) = (self.sluice(), a.connection);
        let label = match a.sources.as_slice() {
            [] => connection.clone(),
            s => format!("{connection}:{}", s.join(",")),
        };
        Ok(JobWork::new(
            "capture",
            label,
            move |job: &JobCtx<'_, CaptureProgress>| {
                sluice.capture(&connection, &opts, job.stop(), &mut |p| job.progress(p))
            },
        ))
    }

    pub fn capture_start(&self, a: ReadArgs) -> Result<u64> {
        Ok(self.start(self.capture_job(a)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_modes_have_one_meaning_for_every_host() {
        let q = |m: &str| read_options(Some(m), None, Vec::new()).map(|r| r.queue);
        assert_eq!(q("tap").unwrap(), None);
        assert_eq!(q("").unwrap(), None);
        assert_eq!(q("peek").unwrap(), Some(QueueRead::Requeue));
        assert_eq!(q("requeue").unwrap(), Some(QueueRead::Requeue));
        assert_eq!(q("drain").unwrap(), Some(QueueRead::Destructive));
        assert_eq!(q("destructive").unwrap(), Some(QueueRead::Destructive));
        assert_eq!(q("stream").unwrap(), Some(QueueRead::Stream));
        assert_eq!(q("steal").unwrap_err().code, ErrorCode::InvalidInput);
        let slot = |m: &str| {
            let r = read_options(Some(m), None, Vec::new()).unwrap();
            (r.queue, r.create_slot, r.snapshot)
        };
        assert_eq!(slot("slot"), (None, false, false));
        assert_eq!(slot("create-slot"), (None, true, false));
        assert_eq!(slot("snapshot"), (None, true, true));
        let r = read_options(None, Some(String::new()), vec![("k".into(), "v".into())]).unwrap();
        assert_eq!(r.binding_key, None);
        assert_eq!(r.match_headers, vec![("k".to_string(), "v".to_string())]);
    }
}
