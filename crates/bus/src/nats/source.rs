//! Reading: JetStream streams through an ordered, ephemeral consumer that acknowledges
//! nothing (deleted when reading ends; the server drops it after 30 s idle should Sluice die
//! first), work-queue and interest streams by getting each message by sequence (a consumer
//! on those changes what the stream keeps), and core subjects by subscribing.
//!
//! Stream messages keep their stream sequence as offset (partition 0), so reading a range
//! twice adds no duplicates. Core messages have no identity at all: each gets a fresh id.

use super::browse::{retention, stream_info};
use super::config::Down;
use super::Nats;
use crate::fresh_ids::FreshIds;
use crate::{BusError, Reader, Trouble};
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{RawMessageErrorKind, RetentionPolicy, Stream};
use async_nats::HeaderMap;
use futures_util::stream::{select_all, BoxStream, SelectAll};
use futures_util::{FutureExt, StreamExt};
use sluice_model::{Header, Message, StartFrom};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A quiet reader asks the server about its streams this often: silence then is trouble, and
/// a deleted stream ends reading.
const IDLE_PROBE: Duration = Duration::from_secs(5);

/// How often a stream read by sequence looks for messages beyond the last one.
const GET_WAIT: Duration = Duration::from_millis(250);

/// One message as read, before it becomes a `Message`.
struct Got {
    subject: String,
    reply: Option<String>,
    headers: Option<HeaderMap>,
    payload: Vec<u8>,
    /// Stream messages: the stream, its sequence, publish time (ns) and whether it was the
    /// last the stream held when delivered.
    stream: Option<(String, u64, i128, bool)>,
}

/// What a source yields: a message, how far a read by sequence has looked (sequences whose
/// messages are gone yield nothing else), or a failure to read that may pass.
enum Read {
    Msg(Got),
    Through(u64),
    Failed(String),
}

impl From<Result<Got, String>> for Read {
    fn from(r: Result<Got, String>) -> Self {
        match r {
            Ok(g) => Read::Msg(g),
            Err(e) => Read::Failed(e),
        }
    }
}

/// One source's reads, and all of them together (more join when a stopped consumer is resumed).
type One = BoxStream<'static, (usize, Read)>;
type Items = SelectAll<One>;

/// Where one source stands.
struct Progress {
    name: String,
    /// The stream behind it (`None`: a core subject, which never ends).
    stream: Option<String>,
    /// The last sequence the stream had when reading began.
    end: u64,
    seen: u64,
    caught_up: bool,
    /// The ordered consumer's name, which its replacements (`NAME_N`, and Sluice's own
    /// `NAME_rN`) start with.
    consumer: Option<String>,
    /// Consumers Sluice made to take over from one that stopped.
    resumed: u32,
}

pub(crate) struct NatsReader {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    items: Items,
    progress: Vec<Progress>,
    connection: String,
    down: Down,
    failing: Option<(Instant, String)>,
    heard: Instant,
    probed: Instant,
    what: String,
    ids: FreshIds,
}

/// The sequence to start from in a stream holding `first..=last`.
fn start_seq(from: &StartFrom, first: u64, last: u64) -> u64 {
    let first = first.max(1);
    match *from {
        StartFrom::Beginning | StartFrom::LastPerSubject | StartFrom::Time(_) => first,
        StartFrom::End => last + 1,
        StartFrom::Offset(n) => (n.max(1) as u64).max(first),
        StartFrom::Last(n) => (last + 1).saturating_sub(n.max(0) as u64).max(first),
        StartFrom::Entry(ms, _) => (ms.max(1) as u64).max(first),
    }
}

fn deliver_policy(from: &StartFrom, first: u64, last: u64) -> Result<DeliverPolicy, BusError> {
    Ok(match *from {
        StartFrom::Beginning => DeliverPolicy::All,
        StartFrom::End => DeliverPolicy::New,
        StartFrom::LastPerSubject => DeliverPolicy::LastPerSubject,
        StartFrom::Time(us) => DeliverPolicy::ByStartTime {
            start_time: async_nats::datetime::from_nanos(i128::from(us) * 1000)
                .map_err(|e| BusError::Invalid(format!("--from: {e}")))?,
        },
        StartFrom::Entry(..) => {
            return Err(BusError::Invalid(
                "--from MS-SEQ is a Redis stream position; a JetStream stream starts from a \
                 sequence (--from SEQ)"
                    .into(),
            ))
        }
        _ if start_seq(from, first, last) > last => DeliverPolicy::New,
        _ => DeliverPolicy::ByStartSequence {
            start_sequence: start_seq(from, first, last),
        },
    })
}

/// Headers in a stable order (the client keeps them in a hash map, so the order they were
/// published in is lost), each name's values in their order.
pub(crate) fn headers_of(h: Option<&HeaderMap>) -> Vec<Header> {
    let Some(h) = h else { return Vec::new() };
    let mut names: Vec<_> = h.iter().collect();
    names.sort_by_key(|(k, _)| k.to_string());
    names
        .into_iter()
        .flat_map(|(k, vs)| {
            vs.iter().map(move |v| Header {
                key: k.to_string(),
                value: Some(v.as_str().as_bytes().to_vec()),
            })
        })
        .collect()
}

/// RFC 3339 of nanoseconds since the epoch, UTC.
fn rfc3339(ns: i128) -> Option<String> {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The `properties` of a message: where it was, for search (`property.subject = '...'`).
/// Written straight out rather than through a JSON map: it is made for every message read,
/// and the map's allocations showed in the tap's profile.
pub(crate) fn properties_of(
    subject: &str,
    reply: Option<&str>,
    stream: Option<(&str, u64, i128)>,
) -> String {
    use std::io::Write;
    let mut p = Vec::with_capacity(64 + subject.len());
    let text = |p: &mut Vec<u8>, key: &str, v: &str| {
        let _ = write!(p, ",\"{key}\":");
        let _ = serde_json::to_writer(&mut *p, v);
    };
    p.extend_from_slice(b"{\"subject\":");
    let _ = serde_json::to_writer(&mut p, subject);
    if let Some(r) = reply {
        text(&mut p, "reply", r);
    }
    if let Some((name, seq, ns)) = stream {
        text(&mut p, "stream", name);
        let _ = write!(p, ",\"seq\":{seq}");
        if let Some(t) = rfc3339(ns) {
            text(&mut p, "published", &t);
        }
    }
    p.push(b'}');
    // serde_json writes UTF-8 only.
    String::from_utf8(p).unwrap_or_default()
}

/// Gets asked for at once when reading by sequence: one at a time costs a round trip each.
const GET_BATCH: u64 = 64;

/// Reads a stream by sequence from `next`, many gets in flight, skipping sequences whose
/// messages are gone (taken from a work queue, deleted) and waiting for new ones past the end.
fn by_sequence(i: usize, stream: Stream<()>, name: String, next: u64, last: u64) -> One {
    futures_util::stream::unfold((stream, next, last), move |(stream, mut next, mut last)| {
        let name = name.clone();
        async move {
            loop {
                if next > last {
                    match stream.get_info().await {
                        Ok(info) => {
                            last = info.state.last_sequence;
                            next = next.max(info.state.first_sequence);
                        }
                        Err(e) => {
                            tokio::time::sleep(GET_WAIT).await;
                            let err = format!("asking about stream {name:?}: {e}");
                            return Some((vec![(i, Read::Failed(err))], (stream, next, last)));
                        }
                    }
                    if next > last {
                        tokio::time::sleep(GET_WAIT).await;
                        continue;
                    }
                }
                let upto = last.min(next + GET_BATCH - 1);
                let gets = (next..=upto).map(|seq| stream.get_raw_message(seq));
                let results = futures_util::future::join_all(gets).await;
                let mut out = Vec::new();
                for (seq, r) in (next..=upto).zip(results) {
                    match r {
                        Ok(m) => out.push((
                            i,
                            Read::Msg(Got {
                                subject: m.subject.to_string(),
                                reply: None,
                                headers: Some(m.headers),
                                payload: m.payload.to_vec(),
                                stream: Some((
                                    name.clone(),
                                    seq,
                                    m.time.unix_timestamp_nanos(),
                                    false,
                                )),
                            }),
                        )),
                        Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => {}
                        Err(e) => {
                            // Read again from here next time: nothing after it is given yet.
                            out.push((
                                i,
                                Read::Failed(format!(
                                    "getting message {seq} of stream {name:?}: {e}"
                                )),
                            ));
                            if out.len() == 1 {
                                tokio::time::sleep(GET_WAIT).await;
                            }
                            return Some((out, (stream, seq, last)));
                        }
                    }
                }
                next = upto + 1;
                out.push((i, Read::Through(upto)));
                return Some((out, (stream, next, last)));
            }
        }
    })
    .flat_map(futures_util::stream::iter)
    .boxed()
}

/// An ordered consumer's messages as reads of source `i`, without those before the start
/// asked for (`floor_seq`, `floor_ns`: see where they are made).
fn ordered_items(
    messages: async_nats::jetstream::consumer::pull::Ordered,
    i: usize,
    name: String,
    floor_seq: u64,
    floor_ns: Option<i128>,
) -> One {
    messages
        .filter(move |m| {
            let keep = match m.as_ref().map(|m| m.info()) {
                Ok(Ok(i)) => {
                    i.stream_sequence >= floor_seq
                        && floor_ns.is_none_or(|ns| i.published.unix_timestamp_nanos() >= ns)
                }
                _ => true,
            };
            futures_util::future::ready(keep)
        })
        .map(move |m| {
            let got = m
                .map_err(|e| format!("reading stream {name:?}: {e}"))
                .and_then(|m| {
                    let (seq, ns, pending) = m
                        .info()
                        .map(|i| {
                            (
                                i.stream_sequence,
                                i.published.unix_timestamp_nanos(),
                                i.pending,
                            )
                        })
                        .map_err(|e| format!("stream {name:?}: {e}"))?;
                    let m = m.message;
                    Ok(Got {
                        subject: m.subject.to_string(),
                        reply: None,
                        headers: m.headers,
                        payload: m.payload.to_vec(),
                        stream: Some((name.clone(), seq, ns, pending == 0)),
                    })
                });
            (i, Read::from(got))
        })
        .boxed()
}

impl NatsReader {
    pub(crate) fn open(n: &Nats, sources: &[String], from: StartFrom) -> Result<Self, BusError> {
        if sources.is_empty() {
            return Err(BusError::Invalid(
                "name at least one stream or subject".into(),
            ));
        }
        let rt = super::runtime()?;
        let down: Down = Arc::new(Mutex::new(None));
        let what = n.what();
        let (client, js) = rt.block_on(async {
            let client = n
                .config
                .connect(&n.name, super::OPEN_TIMEOUT, Some(down.clone()))
                .await?;
            let js = async_nats::jetstream::new(client.clone());
            Ok::<_, BusError>((client, js))
        })?;
        // Consumers made before a later source fails are deleted again, not left to expire.
        let mut created: Vec<(String, String)> = Vec::new();
        let opened = rt.block_on(async {
            let mut items: Vec<One> = Vec::new();
            let mut progress = Vec::new();
            for (i, source) in sources.iter().enumerate() {
                let info = tokio::time::timeout(super::OPEN_TIMEOUT, stream_info(&js, source))
                    .await
                    .map_err(|_| BusError::Unreachable {
                        what: what.clone(),
                        reason: format!("no answer about {source:?}"),
                    })?
                    .map_err(|e| BusError::Client(format!("{what}: {source:?}: {e}")))?;
                let Some(info) = info else {
                    if !super::browse::valid_subject(source) {
                        return Err(BusError::UnknownSource {
                            kind: "stream or subject",
                            name: source.clone(),
                            connection: n.name.clone(),
                        });
                    }
                    let sub = client.subscribe(source.clone()).await.map_err(|e| {
                        BusError::Client(format!("{what}: subscribing to {source:?}: {e}"))
                    })?;
                    items.push(
                        sub.map(move |m| {
                            (
                                i,
                                Read::Msg(Got {
                                    subject: m.subject.to_string(),
                                    reply: m.reply.map(|r| r.to_string()),
                                    headers: m.headers,
                                    payload: m.payload.to_vec(),
                                    stream: None,
                                }),
                            )
                        })
                        .boxed(),
                    );
                    progress.push(Progress {
                        name: source.clone(),
                        stream: None,
                        end: 0,
                        seen: 0,
                        caught_up: false,
                        consumer: None,
                        resumed: 0,
                    });
                    continue;
                };
                let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                let mut p = Progress {
                    name: source.clone(),
                    stream: Some(info.config.name.clone()),
                    end: last,
                    seen: start_seq(&from, first, last).saturating_sub(1),
                    caught_up: info.state.messages == 0,
                    consumer: None,
                    resumed: 0,
                };
                if let StartFrom::Time(us) = from {
                    let last_ns = info.state.last_timestamp.unix_timestamp_nanos();
                    p.caught_up |= i128::from(us) * 1000 > last_ns;
                }
                let stream = js
                    .get_stream_no_info(&info.config.name)
                    .await
                    .map_err(|e| BusError::Client(format!("{what}: stream {source:?}: {e}")))?;
                if info.config.retention != RetentionPolicy::Limits {
                    if matches!(from, StartFrom::LastPerSubject | StartFrom::Time(_)) {
                        return Err(BusError::Invalid(format!(
                            "stream {source:?} is a {} stream, read message by message so that \
                             nothing is taken from it: start it from a sequence, beginning, end \
                             or -N",
                            retention(info.config.retention)
                        )));
                    }
                    let next = start_seq(&from, first, last);
                    items.push(by_sequence(i, stream, info.config.name.clone(), next, last));
                    progress.push(p);
                    continue;
                }
                let consumer_name = format!(
                    "sluice-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let consumer = stream
                    .create_consumer(OrderedConfig {
                        name: Some(consumer_name.clone()),
                        description: Some("sluice: reads without acknowledging".into()),
                        deliver_policy: deliver_policy(&from, first, last)?,
                        // Servers before 2.10 want a filter with last-per-subject; the stream's
                        // own subject filters nothing out.
                        filter_subject: match (&from, info.config.subjects.as_slice()) {
                            (StartFrom::LastPerSubject, [one]) => one.clone(),
                            (StartFrom::LastPerSubject, _) => ">".into(),
                            _ => String::new(),
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| {
                        BusError::Client(format!("{what}: reading stream {source:?}: {e}"))
                    })?;
                created.push((info.config.name.clone(), consumer_name.clone()));
                p.consumer = Some(consumer_name);
                let messages = consumer.messages().await.map_err(|e| {
                    BusError::Client(format!("{what}: reading stream {source:?}: {e}"))
                })?;
                // async-nats recreates an ordered consumer that stopped (missed heartbeats, a
                // server restart) from the last sequence it delivered, or from the stream's
                // first message when it delivered none yet: what comes before the start asked
                // for is dropped here, or a quiet read from the end would replay the stream.
                let (floor_seq, floor_ns) = match from {
                    StartFrom::End => (last.saturating_add(1), None),
                    StartFrom::Offset(_) | StartFrom::Last(_) => {
                        (start_seq(&from, first, last), None)
                    }
                    StartFrom::Time(us) => (0, Some(i128::from(us) * 1000)),
                    _ => (0, None),
                };
                items.push(ordered_items(
                    messages,
                    i,
                    info.config.name.clone(),
                    floor_seq,
                    floor_ns,
                ));
                progress.push(p);
            }
            Ok::<_, BusError>((select_all(items), progress))
        });
        let (items, progress) = match opened {
            Ok(o) => o,
            Err(e) => {
                rt.block_on(async {
                    delete_consumers(&js, created).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
                });
                return Err(e);
            }
        };
        Ok(NatsReader {
            rt,
            client,
            js,
            items,
            progress,
            connection: n.name.clone(),
            down,
            failing: None,
            heard: Instant::now(),
            probed: Instant::now(),
            what,
            ids: FreshIds::new(),
        })
    }

    /// The message of a read, or `None` for a stream message already delivered (a resumed
    /// consumer and the one it replaces may both deliver it).
    fn message(&mut self, i: usize, got: Got) -> Option<Message> {
        let p = &mut self.progress[i];
        if let Some((_, seq, _, _)) = &got.stream {
            if *seq <= p.seen {
                return None;
            }
        }
        let props = properties_of(
            &got.subject,
            got.reply.as_deref(),
            got.stream
                .as_ref()
                .map(|(s, seq, ns, _)| (s.as_str(), *seq, *ns)),
        );
        let (offset, ts) = match &got.stream {
            Some((_, seq, ns, last)) => {
                p.seen = p.seen.max(*seq);
                p.caught_up |= *last;
                (Some(*seq as i64), Some((*ns / 1000) as i64))
            }
            None => (None, None),
        };
        Some(Message {
            // Core messages have no identity: two equal ones are two events.
            id: offset
                .is_none()
                .then(|| format!("nats:{}/{}/{}", self.connection, p.name, self.ids.next())),
            source: p.name.clone(),
            partition: offset.map(|_| 0),
            offset,
            sub_offset: None,
            key: None,
            headers: headers_of(got.headers.as_ref()),
            timestamp_us: ts,
            payload: got.payload,
            properties: Some(props),
        })
    }

    /// Asks about every stream read: an answer clears trouble, silence is trouble, and a
    /// stream that is gone ends reading. A stream that holds more than its ordered consumer
    /// delivered while nothing came for `IDLE_PROBE` has a consumer that stopped for good
    /// (the server restarted and lost it, and the client's own recreation gave up): a new one
    /// takes over from the next sequence.
    fn probe(&mut self) -> Result<(), BusError> {
        self.probed = Instant::now();
        let js = self.js.clone();
        let streams: Vec<(usize, String, String)> = self
            .progress
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.stream.clone().map(|s| (i, p.name.clone(), s)))
            .collect();
        let client = self.client.clone();
        let answer = self.rt.block_on(async {
            tokio::time::timeout(IDLE_PROBE, async {
                if streams.is_empty() {
                    return client
                        .flush()
                        .await
                        .map(|_| Ok(Vec::new()))
                        .map_err(|e| e.to_string());
                }
                let mut lasts = Vec::new();
                for (i, source, s) in &streams {
                    match stream_info(&js, s).await? {
                        None => return Ok(Err(source.clone())),
                        Some(info) => lasts.push((*i, info.state.last_sequence)),
                    }
                }
                Ok(Ok(lasts))
            })
            .await
        });
        match answer {
            Ok(Ok(Ok(lasts))) => {
                for (i, last) in lasts {
                    let p = &self.progress[i];
                    if p.consumer.is_some() && last > p.seen {
                        self.resume(i)?;
                    }
                }
                self.heard = Instant::now();
                self.failing = None;
                Ok(())
            }
            Ok(Ok(Err(gone))) => Err(BusError::UnknownSource {
                kind: "stream",
                name: gone,
                connection: self.connection.clone(),
            }),
            Ok(Err(e)) => {
                self.failing.get_or_insert((self.heard, e));
                Ok(())
            }
            Err(_) => {
                self.failing.get_or_insert((
                    self.heard,
                    format!("no answer within {} s", IDLE_PROBE.as_secs()),
                ));
                Ok(())
            }
        }
    }

    /// A new ordered consumer for source `i` from the sequence after the last delivered, named
    /// after the first (so `Drop` deletes it too); what the old one may still deliver is
    /// dropped as already seen.
    fn resume(&mut self, i: usize) -> Result<(), BusError> {
        let p = &mut self.progress[i];
        let (Some(stream), Some(first_name)) = (p.stream.clone(), p.consumer.clone()) else {
            return Ok(());
        };
        p.resumed += 1;
        let name = format!("{first_name}_r{}", p.resumed);
        let next = p.seen + 1;
        let js = self.js.clone();
        let made = self.rt.block_on(async {
            tokio::time::timeout(super::OPEN_TIMEOUT, async {
                let s = js
                    .get_stream_no_info(&stream)
                    .await
                    .map_err(|e| e.to_string())?;
                let consumer = s
                    .create_consumer(OrderedConfig {
                        name: Some(name),
                        description: Some("sluice: reads without acknowledging".into()),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: next,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            })
            .await
        });
        match made {
            Ok(Ok(messages)) => {
                tracing::debug!("{}: resumed reading stream {stream:?} at {next}", self.what);
                self.items
                    .push(ordered_items(messages, i, stream, next, None));
            }
            // Trouble, which the broker timeout judges; the next probe tries again.
            Ok(Err(e)) => {
                self.failing
                    .get_or_insert((self.heard, format!("resuming stream {stream:?}: {e}")));
            }
            Err(_) => {
                self.failing
                    .get_or_insert((self.heard, format!("no answer resuming stream {stream:?}")));
            }
        }
        Ok(())
    }
}

impl Reader for NatsReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let items = &mut self.items;
        let got = self.rt.block_on(async {
            let mut out = Vec::new();
            match tokio::time::timeout(timeout, items.next()).await {
                Err(_) => return Some(out),
                Ok(None) => return None,
                Ok(Some(item)) => out.push(item),
            }
            while out.len() < max {
                match items.next().now_or_never() {
                    Some(Some(item)) => out.push(item),
                    _ => break,
                }
            }
            Some(out)
        });
        let Some(got) = got else {
            return Err(BusError::Unreachable {
                what: self.what.clone(),
                reason: "the subscriptions ended (the connection was closed)".into(),
            });
        };
        let mut msgs = Vec::with_capacity(got.len());
        for (i, item) in got {
            match item {
                Read::Msg(g) => msgs.extend(self.message(i, g)),
                // Sequences looked at hold nothing any more: as good as read, for `at_end`.
                Read::Through(seq) => {
                    let p = &mut self.progress[i];
                    p.seen = p.seen.max(seq);
                    self.heard = Instant::now();
                    self.failing = None;
                }
                // The ordered consumer recreates itself after errors: keep reading, and let
                // `trouble` tell how long it has lasted.
                Read::Failed(e) => {
                    self.failing.get_or_insert((Instant::now(), e));
                }
            }
        }
        if !msgs.is_empty() {
            self.heard = Instant::now();
            self.failing = None;
        } else if self.heard.elapsed() >= IDLE_PROBE && self.probed.elapsed() >= IDLE_PROBE {
            self.probe()?;
        }
        Ok(msgs)
    }

    fn at_end(&self) -> bool {
        self.progress
            .iter()
            .all(|p| p.stream.is_some() && (p.caught_up || p.seen >= p.end))
    }

    fn trouble(&self) -> Option<Trouble> {
        let down = self.down.lock().ok().and_then(|d| d.clone());
        let (since, reason) = down.or_else(|| self.failing.clone())?;
        Some(Trouble {
            since,
            what: self.what.clone(),
            reason,
        })
    }
}

impl Drop for NatsReader {
    /// Deletes the ordered consumers (and any replacement the client made), so nothing of the
    /// tap is left on the server.
    fn drop(&mut self) {
        let js = self.js.clone();
        let ours: Vec<(String, String)> = self
            .progress
            .iter()
            .filter_map(|p| Some((p.stream.clone()?, p.consumer.clone()?)))
            .collect();
        let client = self.client.clone();
        self.rt.block_on(async move {
            delete_consumers(&js, ours).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        });
    }
}

/// Deletes each `(stream, name)` ordered consumer and the replacements the client made of it
/// (`NAME_N`), waiting at most three seconds in all.
async fn delete_consumers(js: &async_nats::jetstream::Context, ours: Vec<(String, String)>) {
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        for (stream, prefix) in ours {
            let Ok(s) = js.get_stream_no_info(&stream).await else {
                continue;
            };
            let mut names = s.consumer_names();
            let mut mine = Vec::new();
            while let Some(Ok(name)) = names.next().await {
                if name == prefix || name.starts_with(&format!("{prefix}_")) {
                    mine.push(name);
                }
            }
            for name in mine {
                let _ = s.delete_consumer(&name).await;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions() {
        assert_eq!(start_seq(&StartFrom::Beginning, 5, 9), 5);
        assert_eq!(start_seq(&StartFrom::End, 5, 9), 10);
        assert_eq!(start_seq(&StartFrom::Offset(7), 5, 9), 7);
        assert_eq!(start_seq(&StartFrom::Offset(2), 5, 9), 5);
        assert_eq!(start_seq(&StartFrom::Last(2), 5, 9), 8);
        assert_eq!(start_seq(&StartFrom::Last(100), 5, 9), 5);
        assert_eq!(start_seq(&StartFrom::Beginning, 0, 0), 1);
        assert!(matches!(
            deliver_policy(&StartFrom::Last(3), 1, 10).unwrap(),
            DeliverPolicy::ByStartSequence { start_sequence: 8 }
        ));
        assert!(matches!(
            deliver_policy(&StartFrom::Offset(11), 1, 10).unwrap(),
            DeliverPolicy::New
        ));
        assert!(deliver_policy(&StartFrom::Entry(1, 2), 1, 10).is_err());
    }

    #[test]
    fn properties_say_where_a_message_was() {
        let p: serde_json::Value = serde_json::from_str(&properties_of(
            "orders.eu",
            None,
            Some(("ORDERS", 42, 1_795_168_800_123_456_789)),
        ))
        .unwrap();
        assert_eq!(p["subject"], "orders.eu");
        assert_eq!(p["stream"], "ORDERS");
        assert_eq!(p["seq"], 42);
        assert_eq!(p["published"], "2026-11-20T10:00:00.123456789Z");
        assert!(p.get("reply").is_none());
        let core: serde_json::Value =
            serde_json::from_str(&properties_of("a.b", Some("_INBOX.x"), None)).unwrap();
        assert_eq!(core["reply"], "_INBOX.x");
        assert!(core.get("seq").is_none());
    }

    #[test]
    fn headers_keep_every_value() {
        let mut h = HeaderMap::new();
        h.append("b-trace", "1");
        h.append("a-multi", "x");
        h.append("a-multi", "y");
        let got = headers_of(Some(&h));
        let pairs: Vec<(String, Vec<u8>)> =
            got.into_iter().map(|h| (h.key, h.value.unwrap())).collect();
        assert_eq!(
            pairs,
            vec![
                ("a-multi".to_string(), b"x".to_vec()),
                ("a-multi".to_string(), b"y".to_vec()),
                ("b-trace".to_string(), b"1".to_vec())
            ]
        );
    }
}
