//! Health and listing. MQTT has no way to list topics: `sources` subscribes to `#` for a
//! moment and reports what arrives, which is every topic holding a retained message (the
//! broker sends those at once) plus whatever is published meanwhile. `#` never matches
//! `$SYS/...` topics (the spec keeps `$` topics out of wildcards).

use super::client::{self, Ev};
use super::{properties, Mqtt};
use crate::{BusError, Health, SourceInfo};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long `sources` listens after subscribing (less when the caller's timeout is shorter).
const LOOK: Duration = Duration::from_secs(1);
/// Topics kept by one look: a broker with millions of retained topics must not fill memory.
const MAX_TOPICS: usize = 10_000;

pub(crate) fn check(m: &Mqtt, timeout: Duration) -> Result<Health, BusError> {
    let start = Instant::now();
    let rt = super::runtime()?;
    let mut s = client::start(&rt, &m.config, timeout, Some(64 * 1024), None)?;
    let what = m.config.what(&m.name);
    let connected = s.connected(&rt, &what, timeout);
    let latency_ms = start.elapsed().as_millis() as u64;
    s.stop(&rt);
    connected?;
    Ok(Health {
        brokers: vec![m.config.place()],
        // Unknown: MQTT cannot list topics.
        sources: 0,
        latency_ms,
        registry: None,
    })
}

#[derive(Default)]
struct Seen {
    count: i64,
    retained: bool,
    last_us: i64,
}

pub(crate) fn sources(m: &Mqtt, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
    let rt = super::runtime()?;
    let what = m.config.what(&m.name);
    let mut s = client::start(&rt, &m.config, timeout, Some(4 * 1024 * 1024), None)?;
    let listed = (|| {
        s.connected(&rt, &what, timeout)?;
        s.client
            .try_subscribe(&["#".to_string()], 0, true)
            .map_err(BusError::Client)?;
        let deadline = Instant::now() + timeout;
        let mut look_ends = None;
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        loop {
            let until = look_ends.unwrap_or(deadline).min(deadline);
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match s.next_event(&rt, left) {
                Err(_) if look_ends.is_none() => {
                    return Err(BusError::Unreachable {
                        what: what.clone(),
                        reason: format!("no SUBACK within {} s", timeout.as_secs().max(1)),
                    })
                }
                Err(_) => break,
                Ok(None) => return Err(BusError::Client(format!("{what}: the client stopped"))),
                Ok(Some(Ev::SubAck(codes))) => {
                    if let Some(Err(why)) = codes.first() {
                        return Err(BusError::Client(format!(
                            "{what}: subscribing to # to look for topics was {why}"
                        )));
                    }
                    look_ends = Some(Instant::now() + LOOK.min(timeout));
                }
                Ok(Some(Ev::Message(r))) => {
                    if seen.len() < MAX_TOPICS || seen.contains_key(&r.topic) {
                        let e = seen.entry(r.topic).or_default();
                        e.count += 1;
                        e.retained |= r.retain;
                        e.last_us = sluice_model::now_us();
                    }
                }
                Ok(Some(Ev::Down { reason, .. })) => {
                    return Err(BusError::Unreachable {
                        what: what.clone(),
                        reason,
                    })
                }
                Ok(Some(_)) => {}
            }
        }
        Ok(seen)
    })();
    s.stop(&rt);
    Ok(listed?
        .into_iter()
        .map(|(name, seen)| SourceInfo {
            name,
            kind: Some(if seen.retained {
                "topic: retained".into()
            } else {
                "topic: live traffic".into()
            }),
            ready: Some(seen.count),
            last_seen: Some(sluice_model::format_us(seen.last_us)),
            ..Default::default()
        })
        .collect())
}

/// Any valid topic filter can be subscribed to, whether or not anything is published there.
pub(crate) fn source(name: &str) -> Result<Option<SourceInfo>, BusError> {
    properties::check_filter(name).map_err(BusError::Invalid)?;
    let wildcard = name.contains(['+', '#']);
    Ok(Some(SourceInfo {
        name: name.to_string(),
        internal: name.starts_with('$'),
        kind: Some(if wildcard { "topic filter" } else { "topic" }.into()),
        ..Default::default()
    }))
}
