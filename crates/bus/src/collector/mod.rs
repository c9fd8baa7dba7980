//! Collectors: HTTP and gRPC endpoints that services push events to (the way Batch's
//! collectors receive them), read like any other source: a capture of a collector
//! connection listens, and every event a client sent lands in the lake.
//!
//! A client hears 2xx (gRPC OK) only once its events are durable in the lake: the endpoints
//! queue a request's events (`intake.rs`) and the capture's acknowledgement of what it has
//! flushed answers the requests (`source.rs`). `envelope.rs` says how bodies become events
//! (raw, CloudEvents in each mode, newline-delimited JSON), `http.rs` and `grpc.rs` what each
//! endpoint answers. Nothing is written to a collector (`writer` refuses).

mod conventions;
mod envelope;
mod grpc;
mod http;
mod intake;
mod settings;
mod source;

pub use conventions::CollectorConventions;
pub use grpc::proto;
pub use settings::{CollectorSettings, DEFAULT_HTTP};

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct Collector {
    pub name: String,
    http: Option<SocketAddr>,
    grpc: Option<SocketAddr>,
    max_body: usize,
    token: Option<String>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("name", &self.name)
            .field("http", &self.http)
            .field("grpc", &self.grpc)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Connector for Collector {
    fn bus(&self) -> Bus {
        Bus::Collector
    }

    /// Whether the endpoints could listen now: each address is bound and let go at once.
    /// An address in use may be this collector's own capture, which the error says.
    fn check(&self, _timeout: Duration) -> Result<Health, BusError> {
        let started = Instant::now();
        let mut brokers = Vec::new();
        for (flag, addr) in [("http", self.http), ("grpc", self.grpc)] {
            let Some(addr) = addr else { continue };
            std::net::TcpListener::bind(addr).map_err(|e| {
                BusError::Unreachable {
                    what: format!("collector {} ({flag} {addr})", self.name),
                    reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                        "the address is in use: a capture of this collector may be running already, or another program listens there".into()
                    } else {
                        e.to_string()
                    },
                }
            })?;
            brokers.push(format!("{flag} {addr}"));
        }
        Ok(Health {
            brokers,
            sources: 0,
            latency_ms: started.elapsed().as_millis() as u64,
            registry: None,
        })
    }

    fn sources(&self, _: Duration) -> Result<Vec<SourceInfo>, BusError> {
        Ok(Vec::new())
    }

    fn source(&self, _: &str, _: Duration) -> Result<Option<SourceInfo>, BusError> {
        Ok(None)
    }

    /// Listens; `sources`, when given, are the only ones taken (others get 404). Addresses
    /// in `options` replace the connection's for this read.
    fn reader(
        &self,
        sources: &[String],
        _: StartFrom,
        options: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        let only: Vec<String> = sources.iter().filter(|s| *s != "*").cloned().collect();
        let here = Collector {
            name: self.name.clone(),
            http: match &options.listen_http {
                Some(a) => Some(settings::parse_addr("http", a)?),
                None if options.listen_grpc.is_some() => None,
                None => self.http,
            },
            grpc: match &options.listen_grpc {
                Some(a) => Some(settings::parse_addr("grpc", a)?),
                None if options.listen_http.is_some() => None,
                None => self.grpc,
            },
            max_body: self.max_body,
            token: self.token.clone(),
        };
        Ok(Box::new(source::open(&here, only)?))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Err(BusError::Invalid(
            "a collector takes events from clients; to replay into one, add an http connection to its URL".into(),
        ))
    }
}
