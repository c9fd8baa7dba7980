//! Health and listings. Exchanges and queues come from the management HTTP API; without it,
//! AMQP alone can only answer about a named exchange or queue (passive declare).

use super::Amqp;
use crate::{BusError, Health, SourceInfo};
use base64::Engine;
use std::time::{Duration, Instant};

pub(crate) fn check(a: &Amqp, timeout: Duration) -> Result<Health, BusError> {
    let start = Instant::now();
    let rt = super::runtime()?;
    rt.block_on(async {
        let conn = a.config.connect(&a.name, timeout).await?;
        let _ = conn.close(200, "sluice check".into()).await;
        Ok::<_, BusError>(())
    })?;
    let latency_ms = start.elapsed().as_millis() as u64;
    let sources = management(a, timeout).map(|s| s.len()).unwrap_or(0);
    Ok(Health {
        brokers: vec![a.config.host()],
        sources,
        latency_ms,
        registry: None,
    })
}

/// GETs one management API path as JSON.
fn get_json(a: &Amqp, path: &str, timeout: Duration) -> Result<serde_json::Value, String> {
    let (base, user, password) = a
        .config
        .management()
        .ok_or_else(|| "no management URL".to_string())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let url = format!("{base}{path}");
    let mut resp = agent
        .get(&url)
        .header("Authorization", &format!("Basic {auth}"))
        .call()
        .map_err(|e| format!("{base}: {e}"))?;
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{base}: {e}"))?;
    serde_json::from_str(&body).map_err(|e| format!("{base}: {e}"))
}

/// Everything but letters, digits and `-_.` is escaped (the default vhost `/` is `%2F`).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

fn vhost_path(a: &Amqp) -> String {
    percent_encoding::utf8_percent_encode(&a.config.vhost(), PATH_SEGMENT).to_string()
}

fn int(v: &serde_json::Value, k: &str) -> Option<i64> {
    v.get(k).and_then(serde_json::Value::as_i64)
}

/// Exchanges and queues of the connection's vhost, from the management API.
fn management(a: &Amqp, timeout: Duration) -> Result<Vec<SourceInfo>, String> {
    let vhost = vhost_path(a);
    let mut out = Vec::new();
    for x in get_json(a, &format!("/api/exchanges/{vhost}"), timeout)?
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = x.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        if name.is_empty() {
            continue; // the default exchange: publish to it by queue name instead
        }
        out.push(SourceInfo {
            name: name.to_string(),
            internal: name.starts_with("amq.")
                || x.get("internal").and_then(|i| i.as_bool()) == Some(true),
            kind: Some(format!(
                "exchange ({})",
                x.get("type").and_then(|t| t.as_str()).unwrap_or("?")
            )),
            ..Default::default()
        });
    }
    for q in get_json(a, &format!("/api/queues/{vhost}"), timeout)?
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = q.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        let args = q.get("arguments");
        let dlx = args
            .and_then(|a| a.get("x-dead-letter-exchange"))
            .and_then(|d| d.as_str());
        let kind = q.get("type").and_then(|t| t.as_str()).unwrap_or("classic");
        out.push(SourceInfo {
            name: name.to_string(),
            internal: name.starts_with("amq."),
            kind: Some(match dlx {
                Some(d) => format!("queue ({kind}, dead letters to {d:?})"),
                None => format!("queue ({kind})"),
            }),
            ready: int(q, "messages_ready"),
            unacked: int(q, "messages_unacknowledged"),
            consumers: int(q, "consumers"),
            ..Default::default()
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(crate) fn sources(a: &Amqp, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
    management(a, timeout).map_err(|reason| {
        BusError::Client(format!(
            "cannot list exchanges and queues of {}: the management API is unreachable ({reason}); \
             AMQP alone can only check a named one: `sluice topics {} NAME`",
            a.name, a.name
        ))
    })
}

/// One exchange or queue: from the management API when it answers, else by passive declare
/// (a queue's ready count and consumers; an exchange's existence).
pub(crate) fn source(
    a: &Amqp,
    name: &str,
    timeout: Duration,
) -> Result<Option<SourceInfo>, BusError> {
    if let Ok(all) = management(a, timeout) {
        return Ok(all.into_iter().find(|s| s.name == name));
    }
    let rt = super::runtime()?;
    rt.block_on(async {
        let conn = a.config.connect(&a.name, timeout).await?;
        let client = |e: lapin::Error| BusError::Client(e.to_string());
        // A failed passive declare closes its channel, so each question gets its own.
        let ch = conn.create_channel().await.map_err(client)?;
        if let Ok(q) = super::passive_queue(&ch, name).await {
            let _ = conn.close(200, "".into()).await;
            return Ok(Some(SourceInfo {
                name: name.to_string(),
                kind: Some("queue".into()),
                ready: Some(q.message_count() as i64),
                consumers: Some(q.consumer_count() as i64),
                ..Default::default()
            }));
        }
        let ch = conn.create_channel().await.map_err(client)?;
        let found = super::passive_exchange(&ch, name).await;
        let _ = conn.close(200, "".into()).await;
        Ok(found.then(|| SourceInfo {
            name: name.to_string(),
            kind: Some("exchange".into()),
            ..Default::default()
        }))
    })
}
