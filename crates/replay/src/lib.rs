//! Replay: sends events chosen from the lake to a destination, oldest first with each source
//! partition's order kept, original key/headers/timestamp/payload bytes, two provenance
//! headers added, an optional rate limit, and every delivery report awaited for a bounded
//! time. Every replay ends with an exact account of the events it matched, also when it ends
//! in an error or is stopped: sent, failed, unknown (may have arrived) and not sent.
//!
//! This crate owns ordering, rate limiting and header rewriting. It must not choose how a bus
//! sends (that is the connector's `Writer`) nor how events are selected (the lake's query).

use governor::{Quota, RateLimiter};
use sluice_bus::{BusError, Delivery, Writer};
pub use sluice_bus::{Origin, OriginError};
use sluice_filter::Compiled;
use sluice_lake::{Columns, LakeError, Query};
use sluice_model::{position, Bus, Event, Header, Outgoing};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const REPLAY_ID_HEADER: &str = "sluice-replay-id";
pub const REPLAY_SOURCE_HEADER: &str = "sluice-source";
/// Carries an event's bus properties through a bus that cannot hold them (Kafka; SQS for
/// others' properties), so a later replay to their own bus restores them.
pub const PROPERTIES_HEADER: &str = "sluice-properties";

/// How long replay waits for a destination's answer (a publish, a window of confirms, the
/// outstanding delivery reports at the end) before what is still unanswered counts as failed
/// (never sent) or unknown (sent, no answer).
pub const DEFAULT_BROKER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A replay that ended in an error, with the account of what it did until then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Incomplete {
    pub summary: Box<ReplaySummary>,
    #[source]
    pub error: ReplayError,
}

/// Edited payloads by event id, shared by every clone of the options.
pub type Edited = Arc<HashMap<String, Vec<u8>>>;

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
    /// Payloads the user edited, by event id, sent instead of the stored bytes.
    pub edited: Option<Edited>,
    /// How long to wait for the destination's answers (`DEFAULT_BROKER_TIMEOUT` unless the
    /// user chose, e.g. `sluice replay --broker-timeout`).
    pub broker_timeout: Duration,
    /// `--retain`, `--keep-ids`: what the destination's writer is asked beyond sending.
    pub send: sluice_bus::SendOptions,
}

/// Counts while a replay runs. The last report of every replay (`done`) is its final account,
/// sent also when the replay ends in an error.
#[derive(Debug, Clone, Default, serde::Serialize, ts_rs::TS)]
pub struct ReplayProgress {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    pub unknown: u64,
    pub elapsed_ms: u64,
    /// Set on the last report only, which then carries the whole account.
    pub done: bool,
    pub matched: u64,
    pub not_sent: u64,
}

/// A replay's account: every matched event is in exactly one of `sent` (the destination
/// confirmed it), `failed` (it certainly did not arrive), `unknown` (it was sent and no answer
/// came: it may have arrived, so sending it again can duplicate it) and `not_sent` (never
/// handed to the bus, because the replay was stopped or ended in an error first).
#[derive(Debug, Clone, Default, serde::Serialize, ts_rs::TS)]
pub struct ReplaySummary {
    pub matched: u64,
    pub sent: u64,
    pub failed: u64,
    pub unknown: u64,
    pub not_sent: u64,
    /// Event id and reason for failed events (the first thousand).
    pub errors: Vec<(String, String)>,
    /// Event id and reason for events whose outcome is unknown (the first thousand).
    pub unknowns: Vec<(String, String)>,
    pub interrupted: bool,
    pub elapsed_ms: u64,
    /// From the first message handed to the destination to its last report: the
    /// destination's side of the replay, without the time spent choosing and reading the
    /// events from the lake first. `None` when nothing was handed over.
    pub sending_ms: Option<u64>,
}

/// The message replay would send for an event: original bytes, provenance headers replaced.
/// Takes the event by value: cloning payloads per event showed up in replay profiles.
///
/// Across buses (README, "Replay across buses"): an AMQP routing key becomes the Kafka key
/// when the event has none, and a Kafka key (UTF-8) the routing key when none is given; AMQP
/// properties travel through Kafka in the `sluice-properties` header and come back from it.
pub fn outgoing(event: Event, opts: &ReplayOptions) -> Outgoing {
    let carried = event.header(PROPERTIES_HEADER).map(str::to_string);
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
                event.sub_offset,
            )
            .into_bytes(),
        ),
    });
    // Kafka has no properties, and SQS only its own: the destination's conventions say
    // whether they travel in a header.
    let to = sluice_bus::conventions(opts.to_bus);
    if let (false, Some(p)) = (to.keeps_properties_of(event.bus), &properties) {
        headers.push(Header {
            key: PROPERTIES_HEADER.into(),
            value: Some(p.clone().into_bytes()),
        });
    }
    let mut out = Outgoing {
        target: opts.target.clone(),
        partition: if opts.keep_partition {
            event.partition
        } else {
            None
        },
        key: event.key,
        headers,
        timestamp_us: event.timestamp_us,
        payload: match opts.edited.as_ref().and_then(|m| m.get(&event.id)) {
            Some(p) => p.clone(),
            None => event.payload,
        },
        properties,
        routing_key: None,
        event_id: event.id,
    };
    to.address(&mut out, source_routing_key, opts.routing_key.as_deref());
    out
}

/// The AMQP routing key an event's properties hold. Runs for every replayed event, so it
/// parses into the one field: building a JSON value of the whole object took 8 % of a
/// replay's time in a profile.
fn routing_key_of(properties: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Props {
        routing_key: Option<String>,
    }
    // Only an object has keys (a struct would also be filled from an array).
    if !properties.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Props>(properties) {
        Ok(p) => p.routing_key,
        // A key twice is an error to a struct but the last value to a JSON object.
        Err(_) => serde_json::from_str::<serde_json::Value>(properties)
            .ok()?
            .get("routing_key")?
            .as_str()
            .map(str::to_string),
    }
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

type Limiter = governor::DefaultDirectRateLimiter;

/// `--rate N`: at most N a second, evenly. A quota's default burst is a whole second's worth,
/// which sent the first N messages at once; a fiftieth of a second's worth keeps the pace
/// even.
fn limiter(rate: Option<u32>) -> Option<Limiter> {
    rate.and_then(NonZeroU32::new).map(|r| {
        let burst = NonZeroU32::new(r.get() / 50).unwrap_or(NonZeroU32::MIN);
        RateLimiter::direct(Quota::per_second(r).allow_burst(burst))
    })
}

/// Waits for the rate limit; false when the stop flag is raised meanwhile.
fn pace(limiter: Option<&Limiter>, stop: &AtomicBool) -> bool {
    use governor::clock::Clock;
    if let Some(l) = limiter {
        while let Err(not_yet) = l.check() {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            // Until the next message is due (at most 50 ms, to see `stop`): a fixed 1 ms
            // sleep overshot each wait, and with a burst of one `--rate 99` sent 95 a second.
            let wait = not_yet.wait_time_from(l.clock().now());
            std::thread::sleep(wait.min(Duration::from_millis(50)));
        }
    }
    !stop.load(Ordering::Relaxed)
}

/// Events handed to the sending thread at a time, when no rate is set.
const SEND_BATCH: usize = 2048;

/// The longest a message waits in a writer's part-filled batch (`Writer::send_now`) while
/// nothing more comes.
const HOLD: Duration = Duration::from_millis(10);

/// Delivery counts the sending thread publishes for progress reports.
#[derive(Default)]
struct Reported {
    sent: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
}

/// Sends the events `filter` matches through `writer`. Raising `stop` stops handing events to
/// the bus (the rest count as not sent); what was handed over is still awaited, for at most
/// `opts.broker_timeout`. An error returns the account so far with it.
pub fn replay(
    query: &Query,
    filter: &Compiled,
    writer: &mut dyn Writer,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&ReplayProgress),
) -> Result<ReplaySummary, Incomplete> {
    let start = Instant::now();
    let timeout = opts.broker_timeout;
    writer.set_timeout(timeout);
    writer.set_options(opts.send);
    let limiter = limiter(opts.rate);
    // A rate-limited replay hands over each event as it is paced, so the pace holds on the bus.
    let batch_size = if limiter.is_some() { 1 } else { SEND_BATCH };
    let mut summary = ReplaySummary::default();
    let mut progress = ReplayProgress::default();
    let mut last_report = Instant::now();
    let reported = Reported::default();
    let handed = AtomicU64::new(0);
    let first_send = std::sync::OnceLock::<Instant>::new();
    // Reading the lake and sending run on two threads: either alone keeps a core busy.
    let (read, send_err) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Outgoing>>(4);
        let w = &mut *writer;
        let (reported, handed, first_send) = (&reported, &handed, &first_send);
        let paced = limiter.is_some();
        let sender = scope.spawn(move || -> Option<BusError> {
            let mut last_nudge = Instant::now();
            loop {
                // Nothing more ready within HOLD: what the writer holds for a batch goes now.
                // Not at once: a paced replay finds the channel empty after every few
                // messages, and sending a part batch each time (a round trip to Redis or SQS)
                // capped its rate at a few messages per round trip.
                let batch = match rx.recv_timeout(HOLD) {
                    Ok(b) => b,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        w.send_now();
                        last_nudge = Instant::now();
                        match rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                };
                first_send.get_or_init(Instant::now);
                for msg in batch {
                    if stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    // Counted before the call: a message `send` fails on is still the writer's
                    // to count (failed or unknown), not "not sent".
                    handed.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = w.send(msg) {
                        return Some(e);
                    }
                }
                // Paced at about one message per HOLD or faster, the channel is never empty
                // for HOLD: without this, a `--rate 100` replay to Redis went out in bursts of
                // a whole pipeline, seconds apart.
                if paced && last_nudge.elapsed() >= HOLD {
                    w.send_now();
                    last_nudge = Instant::now();
                }
                let d = w.delivery();
                reported.sent.store(d.sent, Ordering::Relaxed);
                reported.failed.store(d.failed, Ordering::Relaxed);
                reported.unknown.store(d.unknown, Ordering::Relaxed);
            }
            None
        });
        let mut batch = Vec::with_capacity(batch_size);
        let read = query.for_each_in_order(filter, opts.limit, Columns::ForSending, |event| {
            if !pace(limiter.as_ref(), stop) {
                summary.interrupted = true;
                return false;
            }
            summary.matched += 1;
            batch.push(outgoing(event, opts));
            if batch.len() >= batch_size {
                // The sender has stopped on an error, which its join reports.
                if tx
                    .send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(batch_size),
                    ))
                    .is_err()
                {
                    return false;
                }
            }
            progress.queued += 1;
            if last_report.elapsed() >= Duration::from_millis(200) {
                progress.sent = reported.sent.load(Ordering::Relaxed);
                progress.failed = reported.failed.load(Ordering::Relaxed);
                progress.unknown = reported.unknown.load(Ordering::Relaxed);
                progress.elapsed_ms = start.elapsed().as_millis() as u64;
                on_progress(&progress);
                last_report = Instant::now();
            }
            true
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let send_err = sender.join().unwrap_or_else(|_| {
            Some(BusError::Client(
                "the sending thread stopped unexpectedly".into(),
            ))
        });
        (read, send_err)
    });
    summary.interrupted |= stop.load(Ordering::Relaxed);
    // Wait for every report even after an error, so the counts are true.
    let (d, flush_err) = match writer.flush(timeout) {
        Ok(d) => (d, None),
        Err(e) => (writer.delivery(), Some(e)),
    };
    summary.sending_ms = first_send.get().map(|t| t.elapsed().as_millis() as u64);
    let error = match (read, send_err, flush_err) {
        (Err(e), _, _) => Some(ReplayError::Lake(e)),
        (_, Some(e), _) | (_, _, Some(e)) => Some(ReplayError::Bus(e)),
        _ => None,
    };
    finish(
        summary,
        d,
        handed.into_inner(),
        start,
        progress,
        on_progress,
        error,
    )
}

/// The final account from all delivery reports, reported once more. `handed` events went to a
/// writer; one it never reported (it cannot know) is unknown, and a matched event never handed
/// over is not sent.
fn finish(
    mut summary: ReplaySummary,
    d: Delivery,
    handed: u64,
    start: Instant,
    mut progress: ReplayProgress,
    on_progress: &mut dyn FnMut(&ReplayProgress),
    error: Option<ReplayError>,
) -> Result<ReplaySummary, Incomplete> {
    let unreported = handed.saturating_sub(d.reported());
    summary.sent = d.sent;
    summary.failed = d.failed;
    summary.unknown = d.unknown + unreported;
    summary.not_sent = summary.matched.saturating_sub(handed.max(d.reported()));
    summary.errors = d.errors;
    summary.unknowns = d.unknowns;
    if unreported > 0 {
        summary.unknowns.push((
            format!("{unreported} event(s)"),
            "handed to the bus, and no delivery report came".into(),
        ));
    }
    summary.elapsed_ms = start.elapsed().as_millis() as u64;
    progress.sent = summary.sent;
    progress.failed = summary.failed;
    progress.unknown = summary.unknown;
    progress.matched = summary.matched;
    progress.not_sent = summary.not_sent;
    progress.elapsed_ms = summary.elapsed_ms;
    progress.done = true;
    on_progress(&progress);
    match error {
        Some(error) => Err(Incomplete {
            summary: Box::new(summary),
            error,
        }),
        None => Ok(summary),
    }
}

/// Where an event goes back to (`replay --to-origin`).
/// The origin of a dead-lettered or replayed event: first from the dead-letter marks of the
/// event's own bus (its latest dead-lettering), then from any other bus's (an event may have
/// travelled between buses), then from the `sluice-source` position of a Sluice replay.
pub fn origin(event: &Event) -> Result<Origin, OriginError> {
    let own = sluice_bus::conventions(event.bus);
    let others = Bus::ALL
        .into_iter()
        .filter(|b| *b != event.bus)
        .map(sluice_bus::conventions);
    for c in std::iter::once(own).chain(others) {
        if let Some(found) = c.dead_letter_origin(event) {
            return found;
        }
    }
    if let Some(src) = event.header(REPLAY_SOURCE_HEADER) {
        // CONNECTION/SOURCE/PARTITION/OFFSET; connection names never hold a `/`.
        let mut right = src.rsplitn(3, '/');
        let (_, _, left) = (right.next(), right.next(), right.next());
        if let Some((connection, source)) = left.and_then(|l| l.split_once('/')) {
            let routing_key = event.properties.as_deref().and_then(routing_key_of);
            return Ok(Origin {
                connection: connection.to_string(),
                target: source.to_string(),
                routing_key,
            });
        }
    }
    let marks: Vec<&str> = Bus::ALL
        .into_iter()
        .map(|b| sluice_bus::conventions(b).dead_letter_marks())
        .filter(|m| !m.is_empty())
        .collect();
    Err(OriginError(format!(
        "origin unknown: no {}, nor a {REPLAY_SOURCE_HEADER} header",
        marks.join(", ")
    )))
}

/// A connection's writer and the bus it is on.
pub type BusWriter = (Box<dyn Writer>, Bus);

/// Opens a connection's writer for `replay_to_origin`.
pub type OpenWriter<'a> = dyn FnMut(&str) -> Result<BusWriter, BusError> + 'a;

/// Sends each match back to its `origin`, opening one writer per connection. An event whose
/// origin is unknown, or whose connection cannot be opened, fails on its own with the reason;
/// the rest go on. An error returns the account so far with it.
pub fn replay_to_origin(
    query: &Query,
    filter: &Compiled,
    open: &mut OpenWriter<'_>,
    // Asked when the event itself does not say where it came from (an SQS dead-letter queue
    // fed by exactly one source queue).
    fallback: &mut dyn FnMut(&Event) -> Option<Origin>,
    base: &ReplayOptions,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&ReplayProgress),
) -> Result<ReplaySummary, Incomplete> {
    let start = Instant::now();
    let timeout = base.broker_timeout;
    let limiter = limiter(base.rate);
    let mut summary = ReplaySummary::default();
    // Per connection: its writer, or why it could not be opened (asked once).
    let mut writers: HashMap<String, Result<BusWriter, String>> = HashMap::new();
    // Events that failed here, before reaching any writer.
    let mut local = Delivery::default();
    let mut handed = 0u64;
    let mut progress = ReplayProgress::default();
    let mut last_report = Instant::now();
    let mut send_err: Option<BusError> = None;
    let mut first_send: Option<Instant> = None;
    let mut last_nudge = Instant::now();
    let read = query.for_each_in_order(filter, base.limit, Columns::ForSending, |event| {
        if !pace(limiter.as_ref(), stop) {
            summary.interrupted = true;
            return false;
        }
        summary.matched += 1;
        // Counted whatever happens next: the event is accounted for as failed here or by
        // its writer.
        handed += 1;
        let o = match origin(&event).or_else(|why| fallback(&event).ok_or(why)) {
            Ok(o) => o,
            Err(why) => {
                local.fail(event.id, why.to_string());
                return true;
            }
        };
        let entry = writers.entry(o.connection.clone()).or_insert_with(|| {
            let mut opened = open(&o.connection).map_err(|e| e.to_string());
            if let Ok((w, _)) = &mut opened {
                w.set_timeout(timeout);
                w.set_options(base.send);
            }
            opened
        });
        let (writer, bus) = match entry {
            Ok((w, b)) => (w, *b),
            Err(why) => {
                local.fail(event.id, format!("connection {:?}: {why}", o.connection));
                return true;
            }
        };
        let opts = ReplayOptions {
            target: o.target,
            to_bus: bus,
            routing_key: o.routing_key,
            keep_partition: false,
            ..base.clone()
        };
        first_send.get_or_insert_with(Instant::now);
        if let Err(e) = writer.send(outgoing(event, &opts)) {
            send_err = Some(e);
            return false;
        }
        // Paced: what a writer holds for a batch goes within HOLD, not at the end.
        if limiter.is_some() && last_nudge.elapsed() >= HOLD {
            for (w, _) in writers.values_mut().flatten() {
                w.send_now();
            }
            last_nudge = Instant::now();
        }
        progress.queued += 1;
        if last_report.elapsed() >= Duration::from_millis(200) {
            let mut d = local.clone();
            for (w, _) in writers.values().flatten() {
                d.add(w.delivery());
            }
            progress.sent = d.sent;
            progress.failed = d.failed;
            progress.unknown = d.unknown;
            progress.elapsed_ms = start.elapsed().as_millis() as u64;
            on_progress(&progress);
            last_report = Instant::now();
        }
        true
    });
    summary.interrupted |= stop.load(Ordering::Relaxed);
    let mut flush_err = None;
    for (w, _) in writers.values_mut().flatten() {
        match w.flush(timeout) {
            Ok(d) => local.add(d),
            Err(e) => {
                local.add(w.delivery());
                flush_err.get_or_insert(e);
            }
        }
    }
    summary.sending_ms = first_send.map(|t| t.elapsed().as_millis() as u64);
    let error = match (read, send_err, flush_err) {
        (Err(e), _, _) => Some(ReplayError::Lake(e)),
        (_, Some(e), _) | (_, _, Some(e)) => Some(ReplayError::Bus(e)),
        _ => None,
    };
    finish(summary, local, handed, start, progress, on_progress, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `routing_key_of` looks for the key before parsing and parses one field: it must answer
    /// as reading the whole JSON value would.
    #[test]
    fn routing_keys_read_as_the_whole_json_says() {
        let general = |p: &str| -> Option<String> {
            let v: serde_json::Value = serde_json::from_str(p).ok()?;
            v.get("routing_key")?.as_str().map(str::to_string)
        };
        for p in [
            r#"{"routing_key":"orders.eu","exchange":"x"}"#,
            r#"{"exchange":"x"}"#,
            r#"{"headers":{"routing_key":"inner"}}"#,
            r#"{"routing_key":7}"#,
            r#"{"routing_key":null}"#,
            r#"{"routing_key":"a\"b","n":[1,{"routing_key":"no"}]}"#,
            r#"not json "routing_key""#,
            r#"{"routing_key":"é\u00e9"}"#,
            r#"{"routing_key":"first","routing_key":"last"}"#,
            r#"["routing_key"]"#,
            r#"{"routing\u005fkey":"escaped"}"#,
        ] {
            assert_eq!(routing_key_of(p), general(p), "{p}");
        }
    }
    use sluice_model::Encoding;

    fn event(headers: &[(&str, &str)], properties: Option<&str>) -> Event {
        Event {
            id: "e".into(),
            bus: Bus::Amqp,
            connection: "rmq".into(),
            source: "dlq".into(),
            partition: None,
            offset: None,
            sub_offset: None,
            key: None,
            key_decoded: None,
            headers: headers
                .iter()
                .map(|(k, v)| Header {
                    key: k.to_string(),
                    value: Some(v.as_bytes().to_vec()),
                })
                .collect(),
            timestamp_us: None,
            captured_at_us: 0,
            payload: Vec::new(),
            size: 0,
            truncated: false,
            schema: None,
            encoding: Encoding::Binary,
            decoded: None,
            payload_text: None,
            decode_error: None,
            properties: properties.map(str::to_string),
        }
    }

    /// 10 matched, 7 handed to the writer, which reported 3 sent, 1 failed and 1 unknown: the
    /// two it never reported are unknown (they left Sluice), the three never handed over are
    /// not sent, and the error comes back with that account, also in the last progress report.
    #[test]
    fn every_matched_event_is_in_exactly_one_count() {
        let mut d = Delivery {
            sent: 3,
            ..Delivery::default()
        };
        d.fail("a".into(), "refused".into());
        d.unsure("b".into(), "no confirm".into());
        let summary = ReplaySummary {
            matched: 10,
            ..Default::default()
        };
        let mut last = ReplayProgress::default();
        let err = BusError::Client("connection lost".into());
        let out = finish(
            summary,
            d,
            7,
            Instant::now(),
            ReplayProgress::default(),
            &mut |p| last = p.clone(),
            Some(ReplayError::Bus(err)),
        );
        let Err(Incomplete { summary: s, error }) = out else {
            panic!("the error is returned")
        };
        assert!(error.to_string().contains("connection lost"));
        assert_eq!(
            (s.sent, s.failed, s.unknown, s.not_sent, s.matched),
            (3, 1, 3, 3, 10)
        );
        assert_eq!(s.sent + s.failed + s.unknown + s.not_sent, s.matched);
        assert_eq!(s.errors, [("a".to_string(), "refused".to_string())]);
        assert_eq!(s.unknowns.len(), 2, "{:?}", s.unknowns);
        assert!(last.done);
        assert_eq!(
            (
                last.sent,
                last.failed,
                last.unknown,
                last.not_sent,
                last.matched
            ),
            (3, 1, 3, 3, 10)
        );
    }

    fn at(connection: &str, target: &str, rk: Option<&str>) -> Result<Origin, OriginError> {
        Ok(Origin {
            connection: connection.into(),
            target: target.into(),
            routing_key: rk.map(str::to_string),
        })
    }

    #[test]
    fn origins_come_from_dead_letter_and_replay_headers() {
        let death = r#"[{"exchange":"shop","queue":"orders","routing-keys":["order.created"],"count":2},{"exchange":"older"}]"#;
        assert_eq!(
            origin(&event(&[("x-death", death)], None)),
            at("rmq", "shop", Some("order.created"))
        );
        let by_queue = r#"[{"exchange":"","queue":"orders"}]"#;
        assert_eq!(
            origin(&event(&[("x-death", by_queue)], None)),
            at("rmq", "", Some("orders"))
        );
        assert_eq!(
            origin(&event(&[("x-original-topic", "orders")], None)),
            at("rmq", "orders", None)
        );
        assert_eq!(
            origin(&event(&[("kafka_dlt-original-topic", "pay")], None)),
            at("rmq", "pay", None)
        );
        assert_eq!(
            origin(&event(&[(REPLAY_SOURCE_HEADER, "local/orders/2/17")], None)),
            at("local", "orders", None)
        );
        assert_eq!(
            origin(&event(
                &[(REPLAY_SOURCE_HEADER, "rmq/shop//")],
                Some(r#"{"routing_key":"order.paid"}"#)
            )),
            at("rmq", "shop", Some("order.paid"))
        );
        assert!(origin(&event(&[], None))
            .unwrap_err()
            .0
            .contains("origin unknown"));
        assert!(origin(&event(&[("x-death", "not json")], None))
            .unwrap_err()
            .0
            .contains("x-death"));
    }

    /// The rules each destination bus's conventions apply (README, "Replay across buses").
    #[test]
    fn messages_are_addressed_by_the_destination_bus() {
        let props = r#"{"routing_key":"orders.eu","content_type":"application/json"}"#;
        let opts = |to_bus, routing_key: Option<&str>| ReplayOptions {
            target: "t".into(),
            to_bus,
            routing_key: routing_key.map(str::to_string),
            rate: None,
            limit: None,
            keep_partition: false,
            replay_prefix: "lake:run".into(),
            edited: None,
            broker_timeout: DEFAULT_BROKER_TIMEOUT,
            send: Default::default(),
        };
        let carried = |o: &Outgoing| o.headers.iter().any(|h| h.key == PROPERTIES_HEADER);
        let from_amqp = || event(&[], Some(props));

        let k = outgoing(from_amqp(), &opts(Bus::Kafka, None));
        assert_eq!(
            k.key.as_deref(),
            Some(&b"orders.eu"[..]),
            "routing key becomes the key"
        );
        assert_eq!(k.routing_key, None);
        assert!(carried(&k), "Kafka carries AMQP properties in a header");

        let a = outgoing(from_amqp(), &opts(Bus::Amqp, None));
        assert_eq!(a.routing_key.as_deref(), Some("orders.eu"));
        assert!(!carried(&a) && a.properties.as_deref() == Some(props));
        let given = outgoing(from_amqp(), &opts(Bus::Amqp, Some("given")));
        assert_eq!(given.routing_key.as_deref(), Some("given"));
        let keyed = Event {
            key: Some(b"k1".to_vec()),
            properties: None,
            ..from_amqp()
        };
        let by_key = outgoing(keyed, &opts(Bus::Amqp, None));
        assert_eq!(
            by_key.routing_key.as_deref(),
            Some("k1"),
            "a UTF-8 key routes"
        );

        let q = outgoing(from_amqp(), &opts(Bus::Sqs, None));
        assert!(
            carried(&q) && q.key.is_none(),
            "SQS keeps only its own attributes"
        );
        let from_sqs = Event {
            bus: Bus::Sqs,
            ..from_amqp()
        };
        assert!(!carried(&outgoing(from_sqs, &opts(Bus::Sqs, None))));

        // Properties carried through Kafka come back on their own bus.
        let through_kafka = Event {
            bus: Bus::Kafka,
            properties: None,
            headers: k.headers.clone(),
            ..from_amqp()
        };
        let back = outgoing(through_kafka, &opts(Bus::Amqp, None));
        assert_eq!(back.properties.as_deref(), Some(props));
        assert_eq!(back.routing_key.as_deref(), Some("orders.eu"));
    }
}
