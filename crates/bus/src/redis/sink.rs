//! Sending: XADD to a stream (created by the first XADD; new ids `*` unless the connection's
//! `--keep-ids` asks for the source's, into an empty stream only), PUBLISH / SPUBLISH to a
//! `pubsub:` / `shard:` channel. Commands go in pipelines of up to `BATCH`, each reply waited
//! for at most the writer's timeout. Each command is packed as it is queued, so its bytes are
//! copied once on their way to the socket.
//!
//! Outcomes: an XADD answered with an id is sent, answered with an error failed. A PUBLISH is
//! sent when at least one subscriber received it; with none, nobody holds it (Pub/Sub keeps
//! nothing), so it counts as failed with that reason. A command written but not answered
//! (connection lost, timeout) is unknown; one never written (no connection) failed.

use super::entry::{id_text, original_id, to_fields};
use super::{key_type, pipeline, unkeyed, Named, Redis, PUBSUB, SHARD};
use crate::{BusError, Delivery, SendOptions, Writer};
use redis::{Connection, Value};
use sluice_model::Outgoing;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Commands per pipeline: 256 left replay at 0.38 of a raw client pipelining 1,000
/// (BENCHMARKS.md, "NATS, MQTT, Redis and HTTP"); each pipeline waits one round trip.
const BATCH: usize = 1000;
/// Longest wait for one answer unless the caller sets another (`Writer::set_timeout`).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Redis's default `proto-max-bulk-len` (512 MB), when the server does not say.
const DEFAULT_MAX_BULK: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Stream(String),
    Channel(String),
    Shard(String),
}

struct Queued {
    event_id: String,
    /// PUBLISH / SPUBLISH: the channel, for the reason when nobody received it.
    channel: Option<String>,
}

pub(crate) struct RedisWriter {
    redis: Redis,
    con: Option<Connection>,
    delivery: Delivery,
    timeout: Duration,
    queued: Vec<Queued>,
    /// The queued commands, packed as one pipeline.
    packed: Vec<u8>,
    targets: HashMap<String, Result<Target, String>>,
    max_bulk: u64,
    /// When sending began to fail for want of a connection; past the timeout the writer stops.
    failing_since: Option<Instant>,
    /// `replay --keep-ids`: entries keep the source's ids (into an empty stream only).
    keep_ids: bool,
}

impl RedisWriter {
    pub(crate) fn open(r: &Redis) -> Result<Self, BusError> {
        // Connected at the first message, within the timeout the caller sets by then.
        Ok(RedisWriter {
            redis: r.clone(),
            con: None,
            delivery: Delivery::default(),
            timeout: ANSWER_TIMEOUT,
            queued: Vec::new(),
            packed: Vec::new(),
            targets: HashMap::new(),
            max_bulk: DEFAULT_MAX_BULK,
            failing_since: None,
            keep_ids: false,
        })
    }

    fn connection(&mut self) -> Result<&mut Connection, BusError> {
        if self.con.is_none() {
            let mut con = self
                .redis
                .connect(self.timeout.min(Duration::from_secs(10)))?;
            con.set_read_timeout(Some(self.timeout))
                .and_then(|_| con.set_write_timeout(Some(self.timeout)))
                .map_err(|e| self.redis.err(e))?;
            // Refused credentials (NOAUTH) show here, once, not as a failure per message.
            redis::cmd("PING")
                .query::<Value>(&mut con)
                .map_err(|e| self.redis.err(e))?;
            // An ACL may refuse CONFIG: the default stands then.
            if let Ok(Value::Array(a)) = redis::cmd("CONFIG")
                .arg("GET")
                .arg("proto-max-bulk-len")
                .query::<Value>(&mut con)
            {
                if let Some(n) = a
                    .get(1)
                    .and_then(super::entry::text)
                    .and_then(|t| t.parse().ok())
                {
                    self.max_bulk = n;
                }
            }
            self.con = Some(con);
        }
        self.con
            .as_mut()
            .ok_or_else(|| BusError::Client("no Redis connection".into()))
    }

    /// What a target name sends to, looked up once per writer.
    fn target(&mut self, name: &str) -> Result<Result<Target, String>, BusError> {
        if let Some(t) = self.targets.get(name) {
            return Ok(t.clone());
        }
        let keep_ids = self.keep_ids;
        let connection = self.redis.what();
        let con = self.connection()?;
        let t = key_type(con, name).map_err(|e| super::config::error(&connection, e))?;
        let target = match t.as_str() {
            "stream" => Ok(Target::Stream(name.to_string())),
            _ if name.starts_with(PUBSUB) || name.starts_with(SHARD) => match unkeyed(name) {
                Named::Shard(c) => Ok(Target::Shard(c)),
                Named::Pattern(c) | Named::Stream(c) => Ok(Target::Channel(c)),
            },
            // XADD makes the stream.
            "none" => Ok(Target::Stream(name.to_string())),
            other => Err(format!(
                "{name:?} is a {other} key, not a stream; write {PUBSUB}{name} to publish to \
                 the channel of that name"
            )),
        };
        let target = match target {
            Ok(Target::Stream(k)) if keep_ids => {
                let len: i64 = redis::cmd("XLEN")
                    .arg(&k)
                    .query(con)
                    .map_err(|e| super::config::error(&connection, e))?;
                if len > 0 {
                    Err(format!(
                        "--keep-ids: stream {k:?} holds {len} entries; original ids are written \
                         only into an empty stream"
                    ))
                } else {
                    Ok(Target::Stream(k))
                }
            }
            t => t,
        };
        self.targets.insert(name.to_string(), target.clone());
        Ok(target)
    }

    /// The command for a message, or why it cannot be sent.
    fn command(
        &self,
        msg: &Outgoing,
        target: &Target,
    ) -> Result<(redis::Cmd, Option<String>), String> {
        let too_big = |what: &str, n: usize| {
            (n as u64 > self.max_bulk).then(|| {
                format!(
                    "{what} is {n} bytes; the server takes at most {} (proto-max-bulk-len)",
                    self.max_bulk
                )
            })
        };
        match target {
            Target::Stream(key) => {
                let fields = to_fields(msg, self.redis.config.payload_field.as_deref());
                for (k, v) in &fields {
                    let name = String::from_utf8_lossy(k);
                    if let Some(why) = too_big(&format!("field {name:?}"), v.len()) {
                        return Err(why);
                    }
                }
                let id = if self.keep_ids {
                    id_text(original_id(msg).ok_or_else(|| {
                        "--keep-ids: the event has no Redis stream entry id to keep".to_string()
                    })?)
                } else {
                    "*".to_string()
                };
                let mut cmd = redis::cmd("XADD");
                cmd.arg(key).arg(id);
                for (k, v) in &fields {
                    cmd.arg(k.as_slice()).arg(v.as_slice());
                }
                Ok((cmd, None))
            }
            Target::Channel(c) | Target::Shard(c) => {
                if let Some(why) = too_big("the payload", msg.payload.len()) {
                    return Err(why);
                }
                if !msg.headers.is_empty() {
                    tracing::debug!("Pub/Sub carries no headers: {} dropped", msg.headers.len());
                }
                let name = if matches!(target, Target::Shard(_)) {
                    "SPUBLISH"
                } else {
                    "PUBLISH"
                };
                let mut cmd = redis::cmd(name);
                cmd.arg(c).arg(msg.payload.as_slice());
                Ok((cmd, Some(c.clone())))
            }
        }
    }

    /// Sends what is queued as one pipeline and counts every reply.
    fn send_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let queued = std::mem::take(&mut self.queued);
        let packed = std::mem::take(&mut self.packed);
        let con = match self.connection() {
            Ok(c) => c,
            Err(e) => {
                self.failing_since.get_or_insert_with(Instant::now);
                for q in queued {
                    self.delivery.fail(q.event_id, format!("not sent: {e}"));
                }
                return;
            }
        };
        let (replies, failed) = pipeline(con, &packed, queued.len());
        let answered = replies.len();
        for (q, reply) in queued.iter().zip(replies) {
            match reply {
                Value::ServerError(e) => self.delivery.fail(
                    q.event_id.clone(),
                    format!("refused by Redis: {}", redis::RedisError::from(e)),
                ),
                Value::Int(0) if q.channel.is_some() => self.delivery.fail(
                    q.event_id.clone(),
                    format!(
                        "published to {:?} but no subscriber received it (Pub/Sub keeps nothing)",
                        q.channel.as_deref().unwrap_or_default()
                    ),
                ),
                _ => self.delivery.sent += 1,
            }
        }
        if let Some(e) = failed {
            let why = format!("sent, no answer from {}: {e}", self.redis.what());
            for q in queued.into_iter().skip(answered) {
                self.delivery.unsure(q.event_id, why.clone());
            }
            self.con = None;
            self.failing_since.get_or_insert_with(Instant::now);
        } else {
            self.failing_since = None;
        }
    }
}

impl Writer for RedisWriter {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError> {
        if let Some(since) = self.failing_since.filter(|t| t.elapsed() >= self.timeout) {
            let what = self.redis.what();
            self.delivery
                .fail(msg.event_id, format!("not sent: {what} stopped answering"));
            return Err(BusError::Unreachable {
                what,
                reason: format!("no answer for {} s", since.elapsed().as_secs()),
            });
        }
        let target = match self.target(&msg.target) {
            Ok(t) => t,
            Err(e) => {
                self.con = None;
                self.failing_since.get_or_insert_with(Instant::now);
                self.delivery.fail(msg.event_id, format!("not sent: {e}"));
                return match e {
                    BusError::Auth { .. } => Err(e),
                    _ => Ok(()),
                };
            }
        };
        match target.and_then(|t| self.command(&msg, &t)) {
            Ok((cmd, channel)) => {
                cmd.write_packed_command(&mut self.packed);
                self.queued.push(Queued {
                    event_id: msg.event_id,
                    channel,
                })
            }
            Err(why) => self.delivery.fail(msg.event_id, why),
        }
        if self.queued.len() >= BATCH {
            self.send_queued();
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(10));
        if let Some(c) = &self.con {
            let _ = c.set_read_timeout(Some(self.timeout));
            let _ = c.set_write_timeout(Some(self.timeout));
        }
    }

    fn set_options(&mut self, options: SendOptions) {
        self.keep_ids = options.keep_ids;
    }

    fn send_now(&mut self) {
        self.send_queued();
    }

    fn flush(&mut self, _timeout: Duration) -> Result<Delivery, BusError> {
        self.send_queued();
        Ok(self.delivery.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::RedisConfig;

    fn writer(keep_ids: bool) -> RedisWriter {
        RedisWriter {
            redis: Redis {
                name: "r".into(),
                config: RedisConfig::default(),
            },
            con: None,
            delivery: Delivery::default(),
            timeout: ANSWER_TIMEOUT,
            queued: Vec::new(),
            packed: Vec::new(),
            targets: HashMap::new(),
            max_bulk: 8,
            failing_since: None,
            keep_ids,
        }
    }

    fn msg(payload: &[u8], properties: Option<&str>) -> Outgoing {
        Outgoing {
            target: "s".into(),
            partition: None,
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: payload.to_vec(),
            properties: properties.map(str::to_string),
            routing_key: None,
            event_id: "e".into(),
        }
    }

    /// A server that answers the connection's setup and TYPE, then never answers XADD.
    fn silent_on_xadd() -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((sock, _)) = l.accept() else { return };
            let mut out = sock.try_clone().unwrap();
            let mut r = BufReader::new(sock);
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
                let mut args = Vec::new();
                for _ in 0..n {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    let len: usize = line.trim_start_matches('$').trim().parse().unwrap();
                    let mut buf = vec![0; len + 2];
                    std::io::Read::read_exact(&mut r, &mut buf).unwrap();
                    args.push(String::from_utf8_lossy(&buf[..len]).to_uppercase());
                }
                let reply: &[u8] = match args.first().map(String::as_str) {
                    Some("PING") => b"+PONG\r\n",
                    Some("CONFIG") => b"*0\r\n",
                    Some("TYPE") => b"+none\r\n",
                    Some("XADD") => continue,
                    _ => b"+OK\r\n",
                };
                let _ = out.write_all(reply);
            }
        });
        port
    }

    #[test]
    fn sent_without_an_answer_is_unknown_and_the_writer_then_stops() {
        let port = silent_on_xadd();
        let r = Redis {
            name: "r".into(),
            config: RedisConfig {
                url: format!("redis://127.0.0.1:{port}/0"),
                ..Default::default()
            },
        };
        let mut w = RedisWriter::open(&r).unwrap();
        w.set_timeout(Duration::from_millis(300));
        for _ in 0..3 {
            w.send(msg(b"x", None)).unwrap();
        }
        let d = w.flush(Duration::from_secs(1)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (0, 0, 3), "{d:?}");
        assert!(d.unknowns[0].1.contains("no answer"), "{:?}", d.unknowns);
        std::thread::sleep(Duration::from_millis(350));
        assert!(w.send(msg(b"x", None)).is_err());
        assert_eq!(
            w.delivery().reported(),
            4,
            "the refused message is counted too"
        );
    }

    #[test]
    fn commands_say_ids_and_limits() {
        let w = writer(false);
        let s = Target::Stream("s".into());
        let (cmd, _) = w.command(&msg(b"x", None), &s).unwrap();
        let packed = String::from_utf8_lossy(&cmd.get_packed_command()).to_string();
        assert!(
            packed.contains("XADD") && packed.contains("\r\n*\r\n"),
            "{packed}"
        );
        let err = w.command(&msg(b"123456789", None), &s).unwrap_err();
        assert!(err.contains("proto-max-bulk-len"), "{err}");
        let w = writer(true);
        let p = r#"{"stream":"o","id":"1700-3","payload_field":"payload"}"#;
        let (cmd, _) = w.command(&msg(b"x", Some(p)), &s).unwrap();
        assert!(String::from_utf8_lossy(&cmd.get_packed_command()).contains("1700-3"));
        assert!(w
            .command(&msg(b"x", None), &s)
            .unwrap_err()
            .contains("no Redis stream entry id"));
        let (cmd, channel) = w
            .command(&msg(b"x", None), &Target::Channel("c".into()))
            .unwrap();
        assert!(String::from_utf8_lossy(&cmd.get_packed_command()).contains("PUBLISH"));
        assert_eq!(channel.as_deref(), Some("c"));
    }
}
