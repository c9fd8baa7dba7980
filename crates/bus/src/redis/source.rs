//! Reading streams by entry id (XREAD from a cursor Sluice keeps: no consumer group, nothing
//! acknowledged, claimed or left pending) and Pub/Sub patterns through a subscription of its
//! own on a thread of its own.

use super::entry::{before, bytes, id_text, parse_entries, parse_id, parse_xread, to_message, Id};
use super::{Named, Redis};
use crate::fresh_ids::FreshIds;
use crate::{BusError, Reader, Trouble};
use redis::{Connection, Value};
use serde_json::json;
use sluice_model::{Message, StartFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A reconnect waits this long at most, so a poll is not held for long by a silent server.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Between reconnect attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How much longer than its BLOCK time a read may wait for its answer.
const REPLY_MARGIN: Duration = Duration::from_secs(2);
/// Entries per stream per XREAD.
const MAX_COUNT: usize = 1000;
/// How often the Pub/Sub thread looks up from its socket to see whether it should stop.
const TAP_TICK: Duration = Duration::from_millis(200);
/// A Pub/Sub connection quiet this long is asked whether it is still there.
const PING_EVERY: Duration = Duration::from_secs(5);

struct Cursor {
    key: String,
    /// The last id read (XREAD reads after it).
    after: Id,
    /// The last id the stream had when reading began (`None`: nothing to read to).
    end: Option<Id>,
}

/// Where the Pub/Sub thread stands.
struct TapState {
    subscribed: bool,
    answered: Instant,
    failing: Option<String>,
    /// An error that will not pass by waiting (refused credentials).
    fatal: Option<BusError>,
}

struct Tap {
    rx: mpsc::Receiver<Message>,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<TapState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub(crate) struct RedisReader {
    redis: Redis,
    con: Option<Connection>,
    streams: Vec<Cursor>,
    tap: Option<Tap>,
    answered: Instant,
    failing: Option<String>,
    tried: Option<Instant>,
}

fn query(con: &mut Connection, cmd: &redis::Cmd, wait: Duration) -> redis::RedisResult<Value> {
    con.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
    cmd.query(con)
}

fn first_id(v: &Value) -> Option<Id> {
    parse_entries(v).ok()?.first().map(|e| e.id)
}

fn last_generated(con: &mut Connection, key: &str) -> redis::RedisResult<Option<Id>> {
    let v = query(
        con,
        redis::cmd("XINFO").arg("STREAM").arg(key),
        CONNECT_TIMEOUT,
    )?;
    let Value::Array(a) = v else { return Ok(None) };
    Ok(a.chunks(2).find_map(|c| match c {
        [k, v] if bytes(k).as_deref() == Some(b"last-generated-id") => parse_id(&bytes(v)?),
        _ => None,
    }))
}

/// The cursor before the last `n` entries: paged back from the end, keeping only each page's
/// oldest id, so a large `n` does not hold the entries in memory.
fn last_n(r: &Redis, con: &mut Connection, key: &str, n: i64) -> Result<Id, BusError> {
    let len: i64 = redis::cmd("XLEN")
        .arg(key)
        .query(con)
        .map_err(|e| r.err(e))?;
    if n >= len {
        return Ok((0, 0));
    }
    let mut left = n.max(1);
    let mut top = "+".to_string();
    let mut oldest = None;
    while left > 0 {
        let v = query(
            con,
            redis::cmd("XREVRANGE")
                .arg(key)
                .arg(&top)
                .arg("-")
                .arg("COUNT")
                .arg(left.min(MAX_COUNT as i64)),
            CONNECT_TIMEOUT,
        )
        .map_err(|e| r.err(e))?;
        let entries = parse_entries(&v).map_err(BusError::Client)?;
        let Some(last) = entries.last() else { break };
        left -= entries.len() as i64;
        oldest = Some(last.id);
        if last.id == (0, 0) {
            break;
        }
        top = id_text(before(last.id));
    }
    Ok(oldest.map(before).unwrap_or((0, 0)))
}

/// The cursor (read after) and end of a stream for a start position.
fn cursor(r: &Redis, con: &mut Connection, key: &str, from: StartFrom) -> Result<Cursor, BusError> {
    let last = query(
        con,
        redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1),
        CONNECT_TIMEOUT,
    )
    .map_err(|e| r.err(e))?;
    let end = first_id(&last);
    let at = |ms: i64| before((ms.max(0) as u64, 0));
    let after =
        match from {
            StartFrom::Beginning => (0, 0),
            StartFrom::End => {
                let generated = last_generated(con, key).map_err(|e| r.err(e))?;
                let after = generated.max(end).unwrap_or((0, 0));
                return Ok(Cursor {
                    key: key.to_string(),
                    after,
                    end: None,
                });
            }
            StartFrom::Entry(ms, seq) => before((ms.max(0) as u64, seq.max(0) as u64)),
            StartFrom::Offset(ms) => at(ms),
            // The first entry at or after the time: ids are milliseconds.
            StartFrom::Time(us) => at(us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0)),
            StartFrom::Last(n) => last_n(r, con, key, n)?,
            StartFrom::LastPerSubject => return Err(BusError::Invalid(
                "--from last-per-subject is for NATS; a Redis stream starts at beginning, end, \
                 MS-SEQ, @TIME or -N"
                    .into(),
            )),
        };
    Ok(Cursor {
        key: key.to_string(),
        after,
        end,
    })
}

impl RedisReader {
    pub(crate) fn open(r: &Redis, sources: &[String], from: StartFrom) -> Result<Self, BusError> {
        if sources.is_empty() {
            return Err(BusError::Config(
                "name at least one stream or channel".into(),
            ));
        }
        let mut con = r.connect(CONNECT_TIMEOUT)?;
        let mut streams: Vec<Cursor> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut shards: Vec<String> = Vec::new();
        for s in sources {
            match r.resolve(&mut con, s)? {
                Named::Stream(k) if !streams.iter().any(|c| c.key == k) => {
                    streams.push(cursor(r, &mut con, &k, from)?)
                }
                Named::Stream(_) => {}
                Named::Pattern(p) => {
                    // Said when the name was not written as a pattern: it may be a stream's
                    // name mistyped, or one not made yet.
                    if !s.starts_with(super::PUBSUB) {
                        tracing::warn!(
                            "{s:?} is no stream on {}: reading it as a Pub/Sub pattern (write \
                             {}{s} to say so); Pub/Sub keeps nothing to read back",
                            r.name,
                            super::PUBSUB
                        );
                    }
                    if !patterns.contains(&p) {
                        patterns.push(p)
                    }
                }
                Named::Shard(c) => {
                    if !shards.contains(&c) {
                        shards.push(c)
                    }
                }
            }
        }
        let tap = if patterns.is_empty() && shards.is_empty() {
            None
        } else {
            Some(Tap::start(r, patterns, shards)?)
        };
        Ok(RedisReader {
            redis: r.clone(),
            con: Some(con),
            streams,
            tap,
            answered: Instant::now(),
            failing: None,
            tried: None,
        })
    }

    /// The connection, made again after a failure (at most every `RETRY_EVERY`).
    fn connection(&mut self) -> Result<Option<&mut Connection>, BusError> {
        if self.con.is_none() {
            if self.tried.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
                return Ok(None);
            }
            self.tried = Some(Instant::now());
            match self.redis.connect(RECONNECT_TIMEOUT) {
                Ok(c) => self.con = Some(c),
                Err(e @ BusError::Auth { .. }) => return Err(e),
                Err(e) => {
                    self.failing = Some(e.to_string());
                    return Ok(None);
                }
            }
        }
        Ok(self.con.as_mut())
    }

    /// Entries after each cursor: waiting up to `block` for the first when it is set.
    fn read_streams(
        &mut self,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Message>, BusError> {
        let mut cmd = redis::cmd("XREAD");
        // COUNT is per stream: shared out so that one read holds about `max` in all.
        let each = max.div_ceil(self.streams.len().max(1));
        cmd.arg("COUNT").arg(each.clamp(1, MAX_COUNT));
        let mut wait = REPLY_MARGIN;
        if let Some(b) = block {
            // BLOCK 0 waits for ever.
            let ms = b.as_millis().max(1) as u64;
            cmd.arg("BLOCK").arg(ms);
            wait += Duration::from_millis(ms);
        }
        cmd.arg("STREAMS");
        for c in &self.streams {
            cmd.arg(&c.key);
        }
        for c in &self.streams {
            cmd.arg(id_text(c.after));
        }
        let Some(con) = self.connection()? else {
            std::thread::sleep(block.unwrap_or_default().min(RETRY_EVERY));
            return Ok(Vec::new());
        };
        let reply = match query(con, &cmd, wait) {
            Ok(v) => v,
            Err(e) if super::config::broken(&e) => {
                // Made again on the next poll; `trouble` says how long it has been.
                self.con = None;
                self.failing = Some(format!("XREAD: {e}"));
                return Ok(Vec::new());
            }
            Err(e) => return Err(self.redis.err(e)),
        };
        self.answered = Instant::now();
        self.failing = None;
        let per_stream = parse_xread(&reply).map_err(BusError::Client)?;
        let payload_field = self.redis.config.payload_field.clone();
        // XREAD answers for every stream with entries after its cursor: one left out has
        // been read to its current end, even when the entry that was last at the start has
        // been deleted since (waiting to read that one would never end).
        for c in &mut self.streams {
            if !per_stream.iter().any(|(k, e)| *k == c.key && !e.is_empty()) {
                c.end = None;
            }
        }
        let mut out = Vec::new();
        for (key, entries) in per_stream {
            let Some(c) = self.streams.iter_mut().find(|c| c.key == key) else {
                continue;
            };
            for e in &entries {
                c.after = c.after.max(e.id);
                out.push(to_message(&key, e, payload_field.as_deref()));
            }
        }
        Ok(out)
    }
}

impl Reader for RedisReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let mut out = Vec::new();
        if let Some(tap) = &self.tap {
            if let Some(e) = tap.fatal() {
                return Err(e);
            }
            out.extend(tap.rx.try_iter().take(max));
        }
        if !self.streams.is_empty() && out.len() < max {
            // With a tap to listen to as well, the wait is the tap's.
            let block = (self.tap.is_none() && out.is_empty()).then_some(timeout);
            out.extend(self.read_streams(max - out.len(), block)?);
        }
        if out.is_empty() {
            if let Some(tap) = &self.tap {
                if let Ok(m) = tap.rx.recv_timeout(timeout) {
                    out.push(m);
                    out.extend(tap.rx.try_iter().take(max.saturating_sub(1)));
                }
            }
        }
        Ok(out)
    }

    /// Every stream has been read up to the last entry it had when reading began. Pub/Sub
    /// keeps nothing, so a pattern has nothing to read to: it is at its end at once.
    fn at_end(&self) -> bool {
        self.streams
            .iter()
            .all(|c| c.end.is_none_or(|e| c.after >= e))
    }

    fn trouble(&self) -> Option<Trouble> {
        let what = self.redis.what();
        if let Some(reason) = &self.failing {
            return Some(Trouble {
                since: self.answered,
                what,
                reason: reason.clone(),
            });
        }
        let tap = self.tap.as_ref()?;
        let s = tap.state.lock().ok()?;
        Some(Trouble {
            since: s.answered,
            what,
            reason: s.failing.clone()?,
        })
    }
}

impl Tap {
    /// Subscribes on a thread of its own, and waits for the subscription to be made (a
    /// message published right after `open` is read) or to fail.
    fn start(r: &Redis, patterns: Vec<String>, shards: Vec<String>) -> Result<Tap, BusError> {
        let (tx, rx) = mpsc::sync_channel::<Message>(10_000);
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(TapState {
            subscribed: false,
            answered: Instant::now(),
            failing: None,
            fatal: None,
        }));
        let (r2, stop2, state2) = (r.clone(), stop.clone(), state.clone());
        let thread = std::thread::Builder::new()
            .name("sluice-redis-pubsub".into())
            .spawn(move || listen(&r2, &patterns, &shards, &tx, &stop2, &state2))
            .map_err(|e| BusError::Client(format!("cannot start the Pub/Sub reader: {e}")))?;
        let tap = Tap {
            rx,
            stop,
            state,
            thread: Some(thread),
        };
        let started = Instant::now();
        loop {
            if let Some(e) = tap.fatal() {
                return Err(e);
            }
            let s = tap
                .state
                .lock()
                .map_err(|_| BusError::Client("Pub/Sub reader failed".into()))?;
            if s.subscribed {
                break;
            }
            if started.elapsed() >= CONNECT_TIMEOUT {
                return Err(BusError::Unreachable {
                    what: r.what(),
                    reason: s
                        .failing
                        .clone()
                        .unwrap_or_else(|| "no answer to PSUBSCRIBE".into()),
                });
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(tap)
    }

    fn fatal(&self) -> Option<BusError> {
        let mut s = self.state.lock().ok()?;
        s.fatal.take()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The thread looks up every TAP_TICK; unsubscribing waits one socket timeout.
            let _ = t.join();
        }
    }
}

fn set(state: &Mutex<TapState>, f: impl FnOnce(&mut TapState)) {
    if let Ok(mut s) = state.lock() {
        f(&mut s);
    }
}

/// The Pub/Sub thread: subscribe, hand on every message, subscribe again after a failure.
fn listen(
    r: &Redis,
    patterns: &[String],
    shards: &[String],
    tx: &mpsc::SyncSender<Message>,
    stop: &AtomicBool,
    state: &Mutex<TapState>,
) {
    let mut ids = FreshIds::new();
    while !stop.load(Ordering::Relaxed) {
        let mut con = match r
            .config
            .connect_with(&r.name, RECONNECT_TIMEOUT, !shards.is_empty())
        {
            Ok(c) => c,
            Err(e) => {
                let auth = matches!(e, BusError::Auth { .. });
                let text = e.to_string();
                set(state, |s| {
                    s.failing = Some(text);
                    if auth {
                        s.fatal = Some(e);
                    }
                });
                if auth {
                    return;
                }
                std::thread::sleep(RETRY_EVERY);
                continue;
            }
        };
        // The client's Pub/Sub has no SSUBSCRIBE: sent as is, its confirmations read here.
        let sharded = if shards.is_empty() {
            Ok(())
        } else {
            ssubscribe(&mut con, shards)
        };
        let mut ps = con.as_pubsub();
        if let Err(e) = sharded.and_then(|_| {
            if patterns.is_empty() {
                Ok(())
            } else {
                ps.psubscribe(patterns)
            }
        }) {
            let e = r.err(e);
            let auth = matches!(e, BusError::Auth { .. });
            let text = e.to_string();
            set(state, |s| {
                s.failing = Some(format!("PSUBSCRIBE: {text}"));
                if auth {
                    s.fatal = Some(e);
                }
            });
            if auth {
                return;
            }
            std::thread::sleep(RETRY_EVERY);
            continue;
        }
        let _ = ps.set_read_timeout(Some(TAP_TICK));
        let mut last = Instant::now();
        set(state, |s| {
            s.subscribed = true;
            s.failing = None;
            s.answered = Instant::now();
        });
        while !stop.load(Ordering::Relaxed) {
            match ps.get_message() {
                Ok(m) => {
                    let channel = m.get_channel_name().to_string();
                    let pattern: Option<String> = m.get_pattern().ok();
                    let mut props = serde_json::Map::new();
                    props.insert("channel".into(), json!(channel));
                    match &pattern {
                        Some(p) => props.insert("pattern".into(), json!(p)),
                        // Sluice subscribes to patterns and shard channels only.
                        None => props.insert("shard".into(), json!(true)),
                    };
                    let msg = Message {
                        id: Some(format!("redis:{}/{channel}/{}", r.name, ids.next())),
                        source: channel,
                        partition: None,
                        offset: None,
                        sub_offset: None,
                        key: None,
                        headers: Vec::new(),
                        timestamp_us: None,
                        payload: m.get_payload_bytes().to_vec(),
                        properties: Some(serde_json::Value::Object(props).to_string()),
                    };
                    // A full queue waits for the reader, unless it is going away.
                    let mut msg = msg;
                    loop {
                        match tx.try_send(msg) {
                            Ok(()) => break,
                            Err(mpsc::TrySendError::Full(m)) if !stop.load(Ordering::Relaxed) => {
                                msg = m;
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            Err(_) => return,
                        }
                    }
                    last = Instant::now();
                }
                // A connection gone quiet may be a dead one: ask.
                Err(e) if e.is_timeout() && last.elapsed() >= PING_EVERY => {
                    let _ = ps.set_read_timeout(Some(REPLY_MARGIN));
                    let pong = ps.ping::<Value>();
                    let _ = ps.set_read_timeout(Some(TAP_TICK));
                    if let Err(e) = pong {
                        set(state, |s| {
                            s.failing = Some(format!("Pub/Sub connection: {e}"))
                        });
                        break;
                    }
                    last = Instant::now();
                    set(state, |s| s.answered = last);
                }
                // Quiet is not trouble: look up, then listen on.
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    set(state, |s| {
                        s.failing = Some(format!("Pub/Sub connection: {e}"));
                        s.answered = Instant::now();
                    });
                    break;
                }
            }
        }
    }
}

/// Subscribes to sharded channels on a RESP3 connection, reading one confirmation each.
fn ssubscribe(con: &mut Connection, shards: &[String]) -> redis::RedisResult<()> {
    con.send_packed_command(&redis::cmd("SSUBSCRIBE").arg(shards).get_packed_command())?;
    for _ in shards {
        let v = con.recv_response()?;
        v.extract_error()?;
    }
    Ok(())
}
