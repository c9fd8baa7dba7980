//! Health and listings: streams (SCAN TYPE stream, bounded) with their length, first and
//! last entry ids and consumer groups with pending counts (XINFO STREAM / GROUPS), and the
//! Pub/Sub channels someone is subscribed to (PUBSUB CHANNELS / SHARDCHANNELS).

use super::entry::{bytes, text};
use super::{key_type, pipeline, unkeyed, Named, Redis, PUBSUB, SHARD};
use crate::{BusError, Health, PartitionInfo, SourceInfo};
use redis::{Connection, Value};
use std::time::{Duration, Instant};

/// SCAN calls per listing (each looks at about `SCAN_COUNT` keys): a keyspace of millions
/// is listed in part rather than held for minutes.
const MAX_SCAN_CALLS: usize = 2000;
const SCAN_COUNT: usize = 1000;
/// Streams described per pipeline.
const DESCRIBE_BATCH: usize = 100;

pub(crate) fn check(r: &Redis, timeout: Duration) -> Result<Health, BusError> {
    let start = Instant::now();
    let mut con = r.connect(timeout)?;
    let pong: Value = redis::cmd("PING").query(&mut con).map_err(|e| r.err(e))?;
    let latency_ms = start.elapsed().as_millis() as u64;
    if text(&pong).as_deref() != Some("PONG") {
        return Err(BusError::Client(format!(
            "{}: PING answered {pong:?}",
            r.what()
        )));
    }
    // A server that cannot list streams (before Redis 6) still answers.
    let streams = match stream_keys(r, &mut con, start, timeout) {
        Ok(k) => k.len(),
        Err(BusError::Client(e)) => {
            tracing::warn!("{e}");
            0
        }
        Err(e) => return Err(e),
    };
    Ok(Health {
        brokers: vec![r.config.host()],
        sources: streams,
        latency_ms,
        registry: None,
    })
}

/// The stream keys, by SCAN with `TYPE stream` (Redis 6+), within `timeout` of `start`.
fn stream_keys(
    r: &Redis,
    con: &mut Connection,
    start: Instant,
    timeout: Duration,
) -> Result<Vec<String>, BusError> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    for _ in 0..MAX_SCAN_CALLS {
        let v: Value = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .arg("TYPE")
            .arg("stream")
            .query(con)
            .map_err(|e| match r.err(e) {
                BusError::Client(e) => {
                    BusError::Client(format!("listing streams (SCAN TYPE, Redis 6+): {e}"))
                }
                e => e,
            })?;
        let Value::Array(parts) = &v else {
            return Err(BusError::Client(format!(
                "{}: SCAN answered {v:?}",
                r.what()
            )));
        };
        cursor = parts.first().and_then(text).unwrap_or_else(|| "0".into());
        if let Some(Value::Array(found)) = parts.get(1) {
            keys.extend(found.iter().filter_map(text));
        }
        if cursor == "0" {
            keys.sort();
            keys.dedup();
            return Ok(keys);
        }
        if start.elapsed() >= timeout {
            break;
        }
    }
    tracing::warn!(
        "{}: listing stopped after {} s with {} streams found; name a stream to see it",
        r.what(),
        start.elapsed().as_secs(),
        keys.len()
    );
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// A reply of field/value pairs (RESP2 flat array, or RESP3 map).
fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Array(a) => a
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((text(k)?, v.clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

fn get<'a>(p: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v)
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// The id of an entry in an XINFO reply (`[id, fields]`), if any.
fn entry_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Array(a) => a
            .first()
            .and_then(bytes)
            .map(|b| String::from_utf8_lossy(&b).into()),
        _ => None,
    }
}

/// A consumer group as the listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub name: String,
    pub consumers: i64,
    pub pending: i64,
    pub last_delivered: Option<String>,
}

/// A stream from its XINFO STREAM and XINFO GROUPS replies.
pub(crate) fn describe(name: &str, info: &Value, groups: &Value) -> SourceInfo {
    let p = pairs(info);
    let length = int(get(&p, "length")).unwrap_or(0);
    let groups: Vec<Group> = match groups {
        Value::Array(a) => a
            .iter()
            .map(|g| {
                let g = pairs(g);
                Group {
                    name: get(&g, "name").and_then(text).unwrap_or_default(),
                    consumers: int(get(&g, "consumers")).unwrap_or(0),
                    pending: int(get(&g, "pending")).unwrap_or(0),
                    last_delivered: get(&g, "last-delivered-id").and_then(text),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut kind = "stream".to_string();
    let first = entry_id(get(&p, "first-entry"));
    let last = entry_id(get(&p, "last-entry"));
    let mut said = Vec::new();
    if let (Some(f), Some(l)) = (&first, &last) {
        said.push(format!("first {f}, last {l}"));
    }
    if !groups.is_empty() {
        let g: Vec<String> = groups
            .iter()
            .map(|g| format!("{} {} pending", g.name, g.pending))
            .collect();
        said.push(format!("groups: {}", g.join(", ")));
    }
    if !said.is_empty() {
        kind = format!("{kind} ({})", said.join(", "));
    }
    let has_groups = !groups.is_empty();
    SourceInfo {
        name: name.to_string(),
        internal: false,
        // Positions are entry ids, not numbers: the one partition only counts entries.
        partitions: vec![PartitionInfo {
            id: 0,
            low: 0,
            high: length,
        }],
        kind: Some(kind),
        unacked: has_groups.then(|| groups.iter().map(|g| g.pending).sum()),
        consumers: has_groups.then(|| groups.iter().map(|g| g.consumers).sum()),
        first,
        last,
        groups: groups
            .into_iter()
            .map(|g| crate::ConsumerInfo {
                name: g.name,
                pending: g.pending,
                consumers: Some(g.consumers),
                last_delivered: g.last_delivered,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Streams described, `DESCRIBE_BATCH` per round trip; a stream deleted meanwhile is left out.
fn describe_all(
    r: &Redis,
    con: &mut Connection,
    names: &[String],
) -> Result<Vec<SourceInfo>, BusError> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(DESCRIBE_BATCH) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.cmd("XINFO").arg("STREAM").arg(n);
            pipe.cmd("XINFO").arg("GROUPS").arg(n);
        }
        let (replies, failed) = pipeline(con, &pipe.get_packed_pipeline(), chunk.len() * 2);
        if let Some(e) = failed {
            return Err(r.err(e));
        }
        for (n, two) in chunk.iter().zip(replies.chunks(2)) {
            if let [info, groups] = two {
                if matches!(info, Value::ServerError(_)) {
                    continue;
                }
                out.push(describe(n, info, groups));
            }
        }
    }
    Ok(out)
}

/// Channels with subscribers: plain ones by name, sharded ones as `shard:NAME`.
fn channels(r: &Redis, con: &mut Connection) -> Result<Vec<SourceInfo>, BusError> {
    let mut out = Vec::new();
    for (list, count, prefix, kind) in [
        ("CHANNELS", "NUMSUB", "", "channel"),
        ("SHARDCHANNELS", "SHARDNUMSUB", SHARD, "shard channel"),
    ] {
        let names: Vec<String> = match redis::cmd("PUBSUB").arg(list).query::<Value>(con) {
            Ok(Value::Array(a)) => a.iter().filter_map(text).collect(),
            Ok(_) => Vec::new(),
            // Before Redis 7 there are no sharded channels to list.
            Err(e) if !super::config::broken(&e) && prefix == SHARD => Vec::new(),
            Err(e) => return Err(r.err(e)),
        };
        if names.is_empty() {
            continue;
        }
        let counts: Value = redis::cmd("PUBSUB")
            .arg(count)
            .arg(&names)
            .query(con)
            .map_err(|e| r.err(e))?;
        let p = pairs(&counts);
        for n in names {
            let subs = int(get(&p, &n)).unwrap_or(0);
            out.push(channel_info(&format!("{prefix}{n}"), kind, Some(subs)));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn channel_info(name: &str, kind: &str, subscribers: Option<i64>) -> SourceInfo {
    SourceInfo {
        name: name.to_string(),
        kind: Some(match subscribers {
            Some(n) => format!("{kind} ({n} subscribers)"),
            None => kind.to_string(),
        }),
        consumers: subscribers,
        ..Default::default()
    }
}

pub(crate) fn sources(r: &Redis, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
    let start = Instant::now();
    let mut con = r.connect(timeout)?;
    let names = stream_keys(r, &mut con, start, timeout)?;
    let mut out = describe_all(r, &mut con, &names)?;
    out.extend(channels(r, &mut con)?);
    Ok(out)
}

/// A stream, a Pub/Sub name (always there: publishing needs no channel to exist), a key of
/// another type (shown as such; it cannot be read), or `None` when the name is no key and
/// nobody is subscribed to it.
pub(crate) fn source(
    r: &Redis,
    name: &str,
    timeout: Duration,
) -> Result<Option<SourceInfo>, BusError> {
    let mut con = r.connect(timeout)?;
    let t = key_type(&mut con, name).map_err(|e| r.err(e))?;
    match t.as_str() {
        "stream" => Ok(describe_all(r, &mut con, &[name.to_string()])?.pop()),
        "none" if name.starts_with(PUBSUB) || name.starts_with(SHARD) => {
            let kind = match unkeyed(name) {
                Named::Shard(_) => "shard channel",
                _ => "channel pattern",
            };
            Ok(Some(channel_info(name, kind, None)))
        }
        "none" => Ok(channels(r, &mut con)?.into_iter().find(|c| c.name == name)),
        other => Ok(Some(SourceInfo {
            name: name.to_string(),
            kind: Some(format!("{other} key (not a stream)")),
            ..Default::default()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::BulkString(x.as_bytes().to_vec())
    }

    #[test]
    fn a_stream_says_its_ids_and_groups() {
        let entry = |id: &str| Value::Array(vec![s(id), Value::Array(vec![s("k"), s("v")])]);
        let info = Value::Array(vec![
            s("length"),
            Value::Int(5),
            s("first-entry"),
            entry("1700-0"),
            s("last-entry"),
            entry("1701-3"),
        ]);
        let groups = Value::Array(vec![Value::Array(vec![
            s("name"),
            s("g1"),
            s("consumers"),
            Value::Int(1),
            s("pending"),
            Value::Int(2),
        ])]);
        let i = describe("orders", &info, &groups);
        assert_eq!(
            i.kind.as_deref(),
            Some("stream (first 1700-0, last 1701-3, groups: g1 2 pending)")
        );
        assert_eq!(
            (i.messages(), i.unacked, i.consumers),
            (5, Some(2), Some(1))
        );
        assert_eq!(
            (i.first.as_deref(), i.last.as_deref()),
            (Some("1700-0"), Some("1701-3"))
        );
        assert_eq!(i.groups.len(), 1);
        assert_eq!(
            (
                i.groups[0].name.as_str(),
                i.groups[0].pending,
                i.groups[0].consumers
            ),
            ("g1", 2, Some(1))
        );
        let empty = describe(
            "e",
            &Value::Array(vec![s("length"), Value::Int(0)]),
            &Value::Array(vec![]),
        );
        assert_eq!(
            (empty.kind.as_deref(), empty.unacked),
            (Some("stream"), None)
        );
    }
}
