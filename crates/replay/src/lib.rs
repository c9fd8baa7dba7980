//! Replay: sends events chosen from the lake to a destination, oldest first with each source
//! partition's order kept, original key/headers/timestamp/payload bytes, two provenance
//! headers added, an optional rate limit, and every delivery report awaited.
//!
//! This crate owns ordering, rate limiting and header rewriting. It must not choose how a bus
//! sends (that is the connector's `Writer`) nor how events are selected (the lake's query).

use governor::{Quota, RateLimiter};
use sluice_bus::{BusError, Delivery, Writer};
use sluice_filter::Compiled;
use sluice_lake::{Columns, LakeError, Query};
use sluice_model::{position, Bus, Event, Header, Outgoing};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const REPLAY_ID_HEADER: &str = "sluice-replay-id";
pub const REPLAY_SOURCE_HEADER: &str = "sluice-source";
/// Carries an AMQP event's properties through a bus without them (Kafka), so a later replay
/// to AMQP restores them.
pub const PROPERTIES_HEADER: &str = "sluice-properties";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Destination topic, exchange or queue on the writer's connection.
    pub target: String,
    /// The destination's bus, which decides how keys and properties travel.
    pub to_bus: Bus,
    /// AMQP routing key given with the destination (`NAME:EXCHANGE/ROUTING_KEY`).
    pub routing_key: Option<String>,
    /// Messages per second; `None` is as fast as the bus accepts.
    pub rate: Option<u32>,
    pub limit: Option<u64>,
    pub keep_partition: bool,
    /// `LAKE_ID:RUN_ID`, the prefix of each `sluice-replay-id` value.
    pub replay_prefix: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplayProgress {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplaySummary {
    pub matched: u64,
    pub sent: u64,
    pub failed: u64,
    pub errors: Vec<(String, String)>,
    pub interrupted: bool,
    pub elapsed_ms: u64,
}

/// The message replay would send for an event: original bytes, provenance headers replaced.
/// Takes the event by value: cloning payloads per event showed up in replay profiles.
///
/// Across buses (README, "Replay across buses"): an AMQP routing key becomes the Kafka key
/// when the event has none, and a Kafka key (UTF-8) the routing key when none is given; AMQP
/// properties travel through Kafka in the `sluice-properties` header and come back from it.
pub fn outgoing(event: Event, opts: &ReplayOptions) -> Outgoing {
    let carried = event
        .headers
        .iter()
        .find(|h| h.key == PROPERTIES_HEADER)
        .and_then(|h| h.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string);
    let properties = event.properties.or(carried);
    let source_routing_key = properties.as_deref().and_then(routing_key_of);
    let mut headers: Vec<Header> = event
        .headers
        .into_iter()
        .filter(|h| {
            h.key != REPLAY_ID_HEADER && h.key != REPLAY_SOURCE_HEADER && h.key != PROPERTIES_HEADER
        })
        .collect();
    headers.push(Header {
        key: REPLAY_ID_HEADER.into(),
        value: Some(format!("{}:{}", opts.replay_prefix, event.id).into_bytes()),
    });
    headers.push(Header {
        key: REPLAY_SOURCE_HEADER.into(),
        value: Some(
            position(
                &event.connection,
                &event.source,
                event.partition,
                event.offset,
            )
            .into_bytes(),
        ),
    });
    let mut key = event.key;
    if opts.to_bus == Bus::Kafka {
        if key.is_none() {
            key = source_routing_key.clone().map(String::into_bytes);
        }
        if let Some(p) = &properties {
            headers.push(Header {
                key: PROPERTIES_HEADER.into(),
                value: Some(p.clone().into_bytes()),
            });
        }
    }
    let routing_key = opts.routing_key.clone().or(source_routing_key).or_else(|| {
        key.as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_string)
    });
    Outgoing {
        target: opts.target.clone(),
        partition: if opts.keep_partition {
            event.partition
        } else {
            None
        },
        key,
        headers,
        timestamp_us: event.timestamp_us,
        payload: event.payload,
        properties,
        routing_key,
        event_id: event.id,
    }
}

fn routing_key_of(properties: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(properties).ok()?;
    v.get("routing_key")?.as_str().map(str::to_string)
}

/// Calls `f` with each event replay would send, in send order, and sends nothing.
pub fn plan(
    query: &Query,
    filter: &Compiled,
    limit: Option<u64>,
    mut f: impl FnMut(&Event),
) -> Result<u64, ReplayError> {
    let mut n = 0;
    query.for_each_in_order(filter, limit, Columns::All, |e| {
        n += 1;
        f(&e);
        true
    })?;
    Ok(n)
}

pub fn replay(
    query: &Query,
    filter: &Compiled,
    writer: &mut dyn Writer,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&ReplayProgress),
) -> Result<ReplaySummary, ReplayError> {
    let start = Instant::now();
    let limiter = opts
        .rate
        .and_then(NonZeroU32::new)
        .map(|r| RateLimiter::direct(Quota::per_second(r)));
    let mut summary = ReplaySummary::default();
    let mut send_err: Option<BusError> = None;
    let mut progress = ReplayProgress::default();
    let mut last_report = Instant::now();
    query.for_each_in_order(filter, opts.limit, Columns::ForSending, |event| {
        if stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            return false;
        }
        if let Some(l) = &limiter {
            while l.check().is_err() {
                std::thread::sleep(Duration::from_millis(1));
                if stop.load(Ordering::Relaxed) {
                    summary.interrupted = true;
                    return false;
                }
            }
        }
        summary.matched += 1;
        if let Err(e) = writer.send(outgoing(event, opts)) {
            send_err = Some(e);
            return false;
        }
        progress.queued += 1;
        if last_report.elapsed() >= Duration::from_millis(200) {
            let d = writer.delivery();
            progress.sent = d.sent;
            progress.failed = d.failed;
            progress.elapsed_ms = start.elapsed().as_millis() as u64;
            on_progress(&progress);
            last_report = Instant::now();
        }
        true
    })?;
    // Wait for every report even after a send error, so the counts are true.
    let d: Delivery = writer.flush(Duration::from_secs(60))?;
    summary.sent = d.sent;
    summary.failed = d.failed + summary.matched.saturating_sub(d.sent + d.failed);
    summary.errors = d.errors;
    summary.elapsed_ms = start.elapsed().as_millis() as u64;
    progress.sent = summary.sent;
    progress.failed = summary.failed;
    progress.elapsed_ms = summary.elapsed_ms;
    on_progress(&progress);
    if let Some(e) = send_err {
        return Err(e.into());
    }
    Ok(summary)
}
