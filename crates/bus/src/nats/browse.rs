//! Health and listings: JetStream streams with their counts, sequences and retention, and
//! each stream's consumers with what they have pending. Core NATS subjects are not listed
//! (the server keeps no list of them), but any subject can be read.

use super::Nats;
use crate::{BusError, Health, PartitionInfo, SourceInfo};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{Info, RetentionPolicy};
use async_nats::jetstream::ErrorCode;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

pub(crate) fn check(n: &Nats, timeout: Duration) -> Result<Health, BusError> {
    let rt = super::runtime()?;
    rt.block_on(async {
        let start = Instant::now();
        let client = n.config.connect(&n.name, timeout, None).await?;
        let info = client.server_info();
        let latency_ms = start.elapsed().as_millis() as u64;
        let sources = if info.jetstream {
            stream_infos(n, &client, timeout).await?.len()
        } else {
            0
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        let name = if info.server_name.is_empty() {
            info.server_id.clone()
        } else {
            info.server_name.clone()
        };
        Ok(Health {
            brokers: vec![format!(
                "{}:{} (nats-server {}, {name}, JetStream {}, max payload {} bytes)",
                info.host,
                info.port,
                info.version,
                if info.jetstream { "on" } else { "off" },
                info.max_payload
            )],
            sources,
            latency_ms,
            registry: None,
        })
    })
}

/// What a person calls a retention policy.
pub(crate) fn retention(r: RetentionPolicy) -> &'static str {
    match r {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Interest => "interest",
        RetentionPolicy::WorkQueue => "workqueue",
    }
}

async fn stream_infos(
    n: &Nats,
    client: &async_nats::Client,
    timeout: Duration,
) -> Result<Vec<Info>, BusError> {
    let js = async_nats::jetstream::new(client.clone());
    let listing = async {
        let mut out = Vec::new();
        let mut streams = js.streams();
        while let Some(s) = streams.next().await {
            out.push(s.map_err(|e| format!("listing streams: {e}"))?);
        }
        Ok::<_, String>(out)
    };
    match tokio::time::timeout(timeout, listing).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BusError::Client(format!("{}: {e}", n.what()))),
        Err(_) => Err(BusError::Unreachable {
            what: n.what(),
            reason: format!("no list of streams within {} s", timeout.as_secs()),
        }),
    }
}

/// One stream as a source: its messages are partition 0 from the first sequence to the last;
/// retention, subjects, bytes and consumers are told in `kind`.
async fn describe(js: &async_nats::jetstream::Context, info: Info) -> SourceInfo {
    let st = &info.state;
    let mut consumers = Vec::new();
    let mut groups = Vec::new();
    let mut ack_pending = 0i64;
    if let Ok(stream) = js.get_stream_no_info(&info.config.name).await {
        let mut list = stream.consumers();
        while let Some(Ok(c)) = list.next().await {
            ack_pending += c.num_ack_pending as i64;
            consumers.push(format!(
                "{}: {} pending, {} ack pending",
                c.name, c.num_pending, c.num_ack_pending
            ));
            groups.push(crate::ConsumerInfo {
                name: c.name.clone(),
                pending: c.num_pending as i64,
                ack_pending: Some(c.num_ack_pending as i64),
                ..Default::default()
            });
        }
    }
    consumers.sort();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    SourceInfo {
        name: info.config.name.clone(),
        internal: info.config.name.starts_with("KV_") || info.config.name.starts_with("OBJ_"),
        partitions: vec![partition(st.messages, st.first_sequence, st.last_sequence)],
        kind: Some(kind_of(&info, &consumers)),
        ready: Some(st.messages as i64),
        unacked: Some(ack_pending),
        consumers: Some(consumers.len() as i64),
        delayed: None,
        bytes: Some(st.bytes as i64),
        subjects: info.config.subjects.clone(),
        retention: Some(retention(info.config.retention).to_string()),
        first: None,
        last: None,
        last_seen: None,
        groups,
        warning: None,
    }
}

/// Sequences as a partition's offsets: `high` is one past the last, so an empty stream (whose
/// first sequence may be 0 or one past its last) has `low == high`.
pub(crate) fn partition(messages: u64, first: u64, last: u64) -> PartitionInfo {
    let high = last as i64 + 1;
    PartitionInfo {
        id: 0,
        low: if messages == 0 { high } else { first as i64 },
        high,
    }
}

pub(crate) fn kind_of(info: &Info, consumers: &[String]) -> String {
    let mut k = format!(
        "stream ({}); subjects {}; {} messages, {} bytes; seq {}..{}",
        retention(info.config.retention),
        if info.config.subjects.is_empty() {
            "-".to_string()
        } else {
            info.config.subjects.join(",")
        },
        info.state.messages,
        info.state.bytes,
        info.state.first_sequence,
        info.state.last_sequence,
    );
    for c in consumers {
        k.push_str("; consumer ");
        k.push_str(c);
    }
    k
}

pub(crate) fn sources(n: &Nats, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = n.config.connect(&n.name, timeout, None).await?;
        // Without JetStream there is nothing to list, yet any subject can be read by name.
        if !client.server_info().jetstream {
            return Ok(Vec::new());
        }
        let js = async_nats::jetstream::new(client.clone());
        let mut out = Vec::new();
        let described = async {
            for info in stream_infos(n, &client, timeout).await? {
                out.push(describe(&js, info).await);
            }
            Ok::<_, BusError>(())
        };
        tokio::time::timeout(timeout * 2, described)
            .await
            .map_err(|_| BusError::Unreachable {
                what: n.what(),
                reason: format!("no answer about streams within {} s", 2 * timeout.as_secs()),
            })??;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    })
}

/// A stream's details (retention and state), or `None` when no stream has that name.
pub(crate) async fn stream_info(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> Result<Option<Info>, String> {
    if !valid_stream_name(name) {
        return Ok(None);
    }
    match js.get_stream(name).await {
        Ok(mut s) => s
            .info()
            .await
            .map(|i| Some(i.clone()))
            .map_err(|e| e.to_string()),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Ok(None)
            }
            GetStreamErrorKind::InvalidStreamName | GetStreamErrorKind::EmptyName => Ok(None),
            // No JetStream at all: nothing is a stream.
            _ if e.to_string().contains("no responders") => Ok(None),
            _ => Err(e.to_string()),
        },
    }
}

/// Stream names cannot hold subject wildcards, dots or spaces; such a name is a subject.
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c == '/' || c == '\\')
}

/// Whether a name can be subscribed to as a core subject.
pub(crate) fn valid_subject(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(char::is_whitespace)
        && name.split('.').all(|t| !t.is_empty())
        && name
            .split('.')
            .enumerate()
            .all(|(i, t)| t != ">" || i == name.split('.').count() - 1)
        && name
            .split('.')
            .all(|t| t.len() == 1 || !(t.contains('*') || t.contains('>')))
}

/// A stream with its counts; any other valid subject is a core subject (one can always be
/// subscribed to), with no counts: `kind` `subject`.
pub(crate) fn source(
    n: &Nats,
    name: &str,
    timeout: Duration,
) -> Result<Option<SourceInfo>, BusError> {
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = n.config.connect(&n.name, timeout, None).await?;
        let js = async_nats::jetstream::new(client.clone());
        let found = tokio::time::timeout(timeout, stream_info(&js, name))
            .await
            .map_err(|_| BusError::Unreachable {
                what: n.what(),
                reason: format!("no answer about {name:?} within {} s", timeout.as_secs()),
            })?
            .map_err(|e| BusError::Client(format!("{}: asking about {name:?}: {e}", n.what())))?;
        let out = match found {
            // Listing consumers is one request per page: bounded as a whole, like `sources`.
            Some(info) => Some(
                tokio::time::timeout(timeout, describe(&js, info))
                    .await
                    .map_err(|_| BusError::Unreachable {
                        what: n.what(),
                        reason: format!(
                            "no answer about {name:?}'s consumers within {} s",
                            timeout.as_secs()
                        ),
                    })?,
            ),
            None if valid_subject(name) => Some(SourceInfo {
                name: name.to_string(),
                kind: Some("subject".into()),
                ..Default::default()
            }),
            None => None,
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_stream_names() {
        for ok in ["orders", "orders.>", "orders.*.eu", "*", ">", "a.b.c"] {
            assert!(valid_subject(ok), "{ok}");
        }
        for bad in ["", "a..b", "a.>.b", "a b", ".a", "a.", "or*ders"] {
            assert!(!valid_subject(bad), "{bad}");
        }
        assert!(valid_stream_name("ORDERS"));
        assert!(!valid_stream_name("orders.eu"));
        assert!(!valid_stream_name("orders.>"));
    }

    #[test]
    fn sequences_become_a_partition() {
        let p = partition(3, 5, 7);
        assert_eq!((p.low, p.high), (5, 8));
        let empty = partition(0, 0, 0);
        assert_eq!(empty.low, empty.high);
        let purged = partition(0, 11, 10);
        assert_eq!((purged.low, purged.high), (11, 11));
    }
}
