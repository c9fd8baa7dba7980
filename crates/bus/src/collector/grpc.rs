//! The gRPC service `sluice.collector.v1.Collector` (`protos/sluice/collector/v1/collector.proto`):
//! `Send` takes one event, `SendStream` a stream of them, with the HTTP endpoint's rules: the
//! bearer token in `authorization` metadata, OK only once the events are durable, and
//! RESOURCE_EXHAUSTED (with `retry-after` seconds in the metadata) when the lake is behind.
//!
//! A stream's events are queued in chunks as they come; while the lake is behind, the stream
//! is not read (HTTP/2 flow control then holds the client back) for up to `STREAM_PATIENCE`
//! before the call ends with RESOURCE_EXHAUSTED. Events queued before that stay queued and
//! are stored: sending the stream again stores events with an `id` once, but those without
//! one twice.

use super::http::{same_token, Ctx, RETRY_AFTER_S};
use super::intake::{Admit, Incoming, Outcome};
use sluice_model::{Header, Message};
use std::sync::Arc;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("sluice.collector.v1");
}

use proto::collector_server::{Collector, CollectorServer};
use proto::{Event, Rejected, SendResult};

/// Events queued at once from a stream: big enough that queueing costs little per event,
/// and at most this many bytes, so a stream of large events holds little in memory.
const CHUNK: usize = 1000;
const CHUNK_BYTES: usize = 4 << 20;
/// Refusals reported per stream; more end the call (a client sending only bad events).
const MAX_REJECTED: usize = 1000;
/// How long a stream waits for a lake that is behind before giving up.
const STREAM_PATIENCE: Duration = Duration::from_secs(30);
const DURABLE_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct Service(pub Arc<Ctx>);

/// The service behind its token check, which runs before a message is decoded, so a client
/// without the token cannot make Sluice read a large message; a message is at most the body
/// limit (and its framing).
pub(crate) fn server(
    ctx: Arc<Ctx>,
) -> InterceptedService<CollectorServer<Service>, impl tonic::service::Interceptor + Clone> {
    let token = ctx.token.clone();
    let limit = ctx.max_body.saturating_add(64 << 10);
    let check = move |r: Request<()>| {
        let given = r
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if same_token(given, &token) {
            Ok(r)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong token: send authorization: Bearer TOKEN metadata (the token sluice collect printed)",
            ))
        }
    };
    InterceptedService::new(
        CollectorServer::new(Service(ctx)).max_decoding_message_size(limit),
        check,
    )
}

impl Service {
    /// One event as the lake keeps it, or why not.
    fn incoming(&self, e: Event) -> Result<Incoming, String> {
        if e.source.is_empty() || e.source.len() > 255 || e.source.chars().any(char::is_control) {
            return Err("source is required: 1 to 255 bytes, no control characters".into());
        }
        if let Some(why) = self.0.refuses(&e.source) {
            return Err(why);
        }
        if e.body.len() > self.0.max_body {
            return Err(format!(
                "body is over the collector's limit of {} bytes (max_body_bytes)",
                self.0.max_body
            ));
        }
        let timestamp_us = match e.timestamp {
            Some(t) if !(0..1_000_000_000).contains(&t.nanos) => {
                return Err("timestamp nanos must be 0 to 999,999,999".into())
            }
            // Years 1 to 9999, as RFC 3339 (and so HTTP's ce-time) allows.
            Some(t) if !(-62_135_596_800..=253_402_300_799).contains(&t.seconds) => {
                return Err("timestamp is outside the years 1 to 9999".into())
            }
            Some(t) => t
                .seconds
                .checked_mul(1_000_000)
                .and_then(|s| s.checked_add(i64::from(t.nanos / 1000)))
                .ok_or("timestamp is out of range")?,
            None => sluice_model::now_us(),
        };
        let mut metadata: Vec<(String, String)> = e.metadata.into_iter().collect();
        metadata.sort();
        let (id, stable_id) = if e.id.is_empty() {
            let mut ids = self.0.ids.lock().unwrap_or_else(|p| p.into_inner());
            (
                format!("collector:{}/{}", self.0.connection, ids.next()),
                false,
            )
        } else {
            (
                super::envelope::client_id(&self.0.connection, &e.source, &e.id, None),
                true,
            )
        };
        Ok(Incoming {
            msg: Message {
                id: Some(id),
                source: e.source,
                partition: None,
                offset: None,
                sub_offset: None,
                key: None,
                headers: metadata
                    .into_iter()
                    .map(|(key, v)| Header {
                        key,
                        value: Some(v.into_bytes()),
                    })
                    .collect(),
                timestamp_us: Some(timestamp_us),
                payload: e.body,
                properties: None,
            },
            stable_id,
        })
    }

    /// One of the calls served at once (shared with HTTP's requests), so memory stays bounded
    /// however many clients call.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.0.slots.acquire()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(Status::unavailable("the collector is stopping")),
            Err(_) => Err(Status::unavailable(format!(
                "{} calls are being served: call again in a moment",
                super::http::MAX_CONCURRENT
            ))),
        }
    }

    /// Queues events, waiting up to `patience` while the lake is behind.
    async fn submit(
        &self,
        events: Vec<Incoming>,
        patience: Duration,
    ) -> Result<tokio::sync::oneshot::Receiver<Outcome>, Status> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut events = events;
        loop {
            match self.0.intake.submit(events) {
                Admit::Waiting(rx) => return Ok(rx),
                Admit::Stopped(why) => return Err(Status::unavailable(why)),
                Admit::Busy(back) => {
                    if tokio::time::Instant::now() >= deadline {
                        let mut s = Status::resource_exhausted(format!(
                            "the lake is behind: events not yet sent were not kept; send them again after {RETRY_AFTER_S} s"
                        ));
                        s.metadata_mut().insert(
                            "retry-after",
                            RETRY_AFTER_S.to_string().parse().expect("digits"),
                        );
                        return Err(s);
                    }
                    events = back;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn durable(rx: tokio::sync::oneshot::Receiver<Outcome>) -> Result<(), Status> {
    match tokio::time::timeout(DURABLE_WAIT, rx).await {
        Ok(Ok(Outcome::Durable)) => Ok(()),
        Ok(Ok(Outcome::Stopped(why))) => Err(Status::unavailable(why)),
        Ok(Err(_)) => Err(Status::unavailable(super::intake::STOPPED)),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "not confirmed in the lake within {} s; they may still be stored: send them again (events with ids are stored once)",
            DURABLE_WAIT.as_secs()
        ))),
    }
}

#[tonic::async_trait]
impl Collector for Service {
    async fn send(&self, request: Request<Event>) -> Result<Response<SendResult>, Status> {
        let _slot = self.slot().await?;
        let incoming = self
            .incoming(request.into_inner())
            .map_err(Status::invalid_argument)?;
        let rx = self.submit(vec![incoming], Duration::ZERO).await?;
        durable(rx).await?;
        Ok(Response::new(SendResult {
            accepted: 1,
            rejected: Vec::new(),
        }))
    }

    async fn send_stream(
        &self,
        request: Request<tonic::Streaming<Event>>,
    ) -> Result<Response<SendResult>, Status> {
        let _slot = self.slot().await?;
        let mut stream = request.into_inner();
        let mut waits = Vec::new();
        let mut rejected = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut chunk_bytes = 0usize;
        let mut accepted = 0u64;
        let mut index = 0u64;
        loop {
            // Queue what has come as soon as the client pauses, so a slow stream's events do
            // not wait for a full chunk.
            let next = if chunk.is_empty() {
                stream.message().await
            } else {
                match tokio::time::timeout(Duration::from_millis(5), stream.message()).await {
                    Ok(m) => m,
                    Err(_) => {
                        accepted += chunk.len() as u64;
                        chunk_bytes = 0;
                        waits.push(
                            self.submit(std::mem::take(&mut chunk), STREAM_PATIENCE)
                                .await?,
                        );
                        continue;
                    }
                }
            };
            match next? {
                Some(e) => {
                    match self.incoming(e) {
                        Ok(i) => {
                            chunk_bytes += i.msg.payload.len()
                                + i.msg
                                    .headers
                                    .iter()
                                    .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                                    .sum::<usize>();
                            chunk.push(i);
                        }
                        Err(error) if rejected.len() < MAX_REJECTED => {
                            rejected.push(Rejected { index, error })
                        }
                        Err(error) => {
                            // What was taken before is kept, as the answer says.
                            if !chunk.is_empty() {
                                waits.push(
                                    self.submit(std::mem::take(&mut chunk), STREAM_PATIENCE)
                                        .await?,
                                );
                            }
                            for rx in waits {
                                durable(rx).await?;
                            }
                            return Err(Status::invalid_argument(format!(
                                "more than {MAX_REJECTED} events of this stream were refused (event {index}: {error}); the events before it are stored"
                            )));
                        }
                    }
                    index += 1;
                    if chunk.len() >= CHUNK || chunk_bytes >= CHUNK_BYTES {
                        accepted += chunk.len() as u64;
                        chunk_bytes = 0;
                        waits.push(
                            self.submit(std::mem::take(&mut chunk), STREAM_PATIENCE)
                                .await?,
                        );
                    }
                }
                None => break,
            }
        }
        if !chunk.is_empty() {
            accepted += chunk.len() as u64;
            waits.push(self.submit(chunk, STREAM_PATIENCE).await?);
        }
        for rx in waits {
            durable(rx).await?;
        }
        Ok(Response::new(SendResult { accepted, rejected }))
    }
}
