//! Redis Streams and Pub/Sub through the `redis` crate's blocking client: every read and
//! write on a connection has a socket timeout, so nothing waits unbounded.
//!
//! Reading never disturbs the application: a stream is read with XRANGE / XREVRANGE / XREAD
//! only (no consumer group is created, nothing is acknowledged, claimed or left pending), and
//! Pub/Sub is a subscription of Sluice's own. A source name is a stream key when the key is a
//! stream; `pubsub:PATTERN` (or a name that is no key at all) is a Pub/Sub pattern
//! (PSUBSCRIBE), `shard:CHANNEL` a sharded channel (SSUBSCRIBE, Redis 7). Replay writes to a
//! stream (XADD, creating it) unless the target is `pubsub:CHANNEL` / `shard:CHANNEL`
//! (PUBLISH / SPUBLISH).

mod browse;
mod config;
mod conventions;
mod entry;
mod settings;
mod sink;
mod source;

pub use config::{split_password, RedisConfig};
pub use conventions::RedisConventions;
pub use settings::RedisSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use redis::{Connection, Value};
use sluice_model::{Bus, StartFrom};
use std::time::Duration;

/// Prefix of a Pub/Sub pattern (reading) or channel (writing).
pub(crate) const PUBSUB: &str = "pubsub:";
/// Prefix of a sharded channel (Redis 7 SSUBSCRIBE / SPUBLISH).
pub(crate) const SHARD: &str = "shard:";

/// A Redis connection: settings plus the name used in errors and event ids.
#[derive(Clone, Debug)]
pub struct Redis {
    pub name: String,
    pub config: RedisConfig,
}

/// What a source or destination name means on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Named {
    Stream(String),
    Pattern(String),
    Shard(String),
}

/// A name without a key of its own: `pubsub:` and `shard:` prefixes, else a pattern.
pub(crate) fn unkeyed(name: &str) -> Named {
    if let Some(p) = name.strip_prefix(PUBSUB) {
        Named::Pattern(p.to_string())
    } else if let Some(c) = name.strip_prefix(SHARD) {
        Named::Shard(c.to_string())
    } else {
        Named::Pattern(name.to_string())
    }
}

/// The type of the key `name` (`none` when there is none).
pub(crate) fn key_type(con: &mut Connection, name: &str) -> redis::RedisResult<String> {
    let v: Value = redis::cmd("TYPE").arg(name).query(con)?;
    Ok(entry::text(&v).unwrap_or_default())
}

impl Redis {
    pub(crate) fn what(&self) -> String {
        self.config.what(&self.name)
    }

    pub(crate) fn connect(&self, timeout: Duration) -> Result<Connection, BusError> {
        self.config.connect(&self.name, timeout)
    }

    pub(crate) fn err(&self, e: redis::RedisError) -> BusError {
        config::error(&self.what(), e)
    }

    /// What `name` reads from: an existing stream key wins over any prefix (keys often hold
    /// colons); a key of another type is refused rather than mistaken for a channel.
    pub(crate) fn resolve(&self, con: &mut Connection, name: &str) -> Result<Named, BusError> {
        let t = key_type(con, name).map_err(|e| self.err(e))?;
        match t.as_str() {
            "stream" => Ok(Named::Stream(name.to_string())),
            "none" => Ok(unkeyed(name)),
            _ if name.starts_with(PUBSUB) || name.starts_with(SHARD) => Ok(unkeyed(name)),
            other => Err(BusError::Invalid(format!(
                "{name:?} on {} is a {other} key, not a stream; to read the Pub/Sub channel of \
                 that name, write {PUBSUB}{name}",
                self.name
            ))),
        }
    }
}

/// Sends commands packed as one pipeline and reads one reply per command, stopping at the
/// first that does not come: the replies read (server errors included, as values) and the
/// error that ended reading, if any.
pub(crate) fn pipeline(
    con: &mut Connection,
    packed: &[u8],
    count: usize,
) -> (Vec<Value>, Option<redis::RedisError>) {
    if let Err(e) = con.send_packed_command(packed) {
        return (Vec::new(), Some(e));
    }
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match con.recv_response() {
            Ok(v) => out.push(v),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

impl Connector for Redis {
    fn bus(&self) -> Bus {
        Bus::Redis
    }

    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        browse::check(self, timeout)
    }

    fn sources(&self, timeout: Duration) -> Result<Vec<SourceInfo>, BusError> {
        browse::sources(self, timeout)
    }

    fn source(&self, name: &str, timeout: Duration) -> Result<Option<SourceInfo>, BusError> {
        browse::source(self, name, timeout)
    }

    fn reader(
        &self,
        sources: &[String],
        from: StartFrom,
        _options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Ok(Box::new(source::RedisReader::open(self, sources, from)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::RedisWriter::open(self)?))
    }
}
