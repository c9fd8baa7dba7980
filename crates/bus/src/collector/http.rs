//! `POST /v1/events/{source}`: a request's events (see `envelope.rs`) are queued for the
//! capture, and the answer waits until they are durable in the lake.
//!
//! Answers, each with a JSON body saying what happened:
//! - 200 `{"accepted": N}`: every event is in the lake (an event already there counts);
//! - 400: the body cannot be read (`{"error"}`), or some events were refused
//!   (`{"error", "accepted", "rejected": [{"index", "error"}]}`; the others are kept);
//! - 401 without the bearer token; 404 for another path; 405 for another method;
//! - 413 for a body over the limit (`max_body_bytes`), before reading it when it says its
//!   length;
//! - 429 with `Retry-After` when the lake is behind: nothing of the request was kept;
//! - 503 when the capture stopped before the events were durable: some may have been stored
//!   (a request cut by `--max-messages`), so sending again stores events without ids twice;
//! - 504 when they were not durable within `DURABLE_WAIT`: they may still be stored, and
//!   sending them again stores an event with an id once.

use super::envelope::{self, BodyError, Request};
use super::intake::{Admit, Intake, Outcome};
use crate::fresh_ids::FreshIds;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest a request waits for its events to be durable (the lake writes every 20 ms, so
/// this is a lake that has stopped writing, not one that is slow).
const DURABLE_WAIT: Duration = Duration::from_secs(60);
/// What a 429 asks a client to wait.
pub(crate) const RETRY_AFTER_S: u64 = 1;
/// Events in one request: a 16 MiB body of two-byte NDJSON lines would be eight million, each
/// with a copy of the request's headers.
pub(crate) const MAX_EVENTS: usize = 10_000;
/// Header bytes all of one request's events may hold in copies (64 MiB).
const HEADER_COPIES: usize = 64 << 20;
/// Refusals listed in one answer (the count is always exact).
const MAX_LISTED: usize = 1_000;
/// Requests read at once; more wait their turn, so bodies in memory stay bounded
/// (`MAX_CONCURRENT` x the body limit at most, and far less in practice).
pub(crate) const MAX_CONCURRENT: usize = 256;
/// How long a request waits for one of those slots before a 503.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// How long a body may take to arrive.
const BODY_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct Ctx {
    pub connection: String,
    pub intake: Arc<Intake>,
    pub token: String,
    pub max_body: usize,
    /// The only sources taken, when the capture named some.
    pub only: Vec<String>,
    pub ids: Mutex<FreshIds>,
    /// Requests being read or waiting (`MAX_CONCURRENT`).
    pub slots: tokio::sync::Semaphore,
}

impl Ctx {
    /// Why a source is not taken here, when the capture named the sources it takes.
    pub(crate) fn refuses(&self, source: &str) -> Option<String> {
        (!self.only.is_empty() && !self.only.iter().any(|s| s == source)).then(|| {
            format!(
                "source {source:?} is not collected here (this capture takes {})",
                self.only.join(", ")
            )
        })
    }
}

/// Whether a request carries the token, compared in constant time so it cannot be guessed
/// byte by byte.
pub(crate) fn same_token(given: Option<&str>, token: &str) -> bool {
    let given = given.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, json!({ "error": message.into() }))
}

pub(crate) fn router(ctx: Arc<Ctx>) -> axum::Router {
    axum::Router::new()
        .route("/v1/events/{source}", axum::routing::post(post_events))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: send events with POST /v1/events/{source}",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "send events with POST /v1/events/{source}",
            )
        })
        .with_state(ctx)
}

/// A source as the lake names it: what a path segment can be, without control characters.
fn check_source(source: &str) -> Result<(), String> {
    if source.is_empty() || source.len() > 255 {
        return Err("the source in /v1/events/{source} must be 1 to 255 bytes".into());
    }
    if source.chars().any(char::is_control) {
        return Err("the source in /v1/events/{source} has a control character".into());
    }
    Ok(())
}

async fn post_events(
    State(ctx): State<Arc<Ctx>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !same_token(auth, &ctx.token) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer TOKEN (the token sluice collect printed)",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        return r;
    }
    if let Err(e) = check_source(&source) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if let Some(why) = ctx.refuses(&source) {
        return error(StatusCode::NOT_FOUND, why);
    }
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over the collector's limit of {} bytes (max_body_bytes): split it into several requests",
                ctx.max_body
            ),
        )
    };
    // A slot while the body is read and parsed; given back once its events are queued (the
    // intake bounds them from there).
    let slot = match tokio::time::timeout(SLOT_WAIT, ctx.slots.acquire()).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return error(StatusCode::SERVICE_UNAVAILABLE, "the collector is stopping"),
        Err(_) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_CONCURRENT} requests are being read: send it again after Retry-After seconds"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_S.into());
            return r;
        }
    };
    let said = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if said.is_some_and(|n| n > ctx.max_body as u64) {
        return too_big();
    }
    let bytes =
        match tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(body, ctx.max_body)).await {
            Err(_) => {
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {} s", BODY_WAIT.as_secs()),
                )
            }
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let over = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                return if over {
                    too_big()
                } else {
                    error(
                        StatusCode::BAD_REQUEST,
                        format!("the body could not be read: {e}"),
                    )
                };
            }
        };
    let request = Request {
        connection: &ctx.connection,
        source: &source,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        received_us: sluice_model::now_us(),
    };
    // Each event of a batch keeps a copy of the request's headers: what many events times
    // large headers would hold in memory bounds how many one request may carry.
    let header_bytes: usize = request.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    let most = MAX_EVENTS.min(HEADER_COPIES / header_bytes.max(1)).max(1);
    let parsed = {
        let mut ids = ctx.ids.lock().unwrap_or_else(|p| p.into_inner());
        envelope::events(&request, &bytes, &mut ids, most)
    };
    drop(bytes);
    let events = match parsed {
        Ok(e) => e,
        Err(BodyError::Bad(e)) => return error(StatusCode::BAD_REQUEST, e),
        Err(BodyError::TooMany { most }) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "more events in one request than the collector takes at once ({most} with these headers; at most {MAX_EVENTS}): split them; nothing was kept"
                ),
            )
        }
    };
    if events.is_empty() {
        return answer(StatusCode::OK, json!({ "accepted": 0 }));
    }
    let mut rejected = Vec::new();
    let mut refused = 0usize;
    let mut taken = Vec::new();
    for (index, e) in events.into_iter().enumerate() {
        match e {
            Ok(i) => taken.push(i),
            Err(error) => {
                refused += 1;
                if rejected.len() < MAX_LISTED {
                    rejected.push(json!({ "index": index, "error": error }));
                }
            }
        }
    }
    let accepted = taken.len();
    if accepted > 0 {
        if let Err(r) = wait_durable(&ctx.intake, taken, slot).await {
            return r;
        }
    }
    if rejected.is_empty() {
        return answer(StatusCode::OK, json!({ "accepted": accepted }));
    }
    // Every refusal has an `error` like the other answers: the event's own when it was the
    // only one, else how many were refused (the reasons are per event).
    let error = match (rejected.as_slice(), accepted) {
        ([one], 0) => one["error"].clone(),
        _ => json!(format!(
            "{refused} of {} events were refused (see rejected{}); the others are kept",
            refused + accepted,
            if refused > rejected.len() {
                ", which lists the first 1,000"
            } else {
                ""
            }
        )),
    };
    answer(
        StatusCode::BAD_REQUEST,
        json!({ "error": error, "accepted": accepted, "refused": refused, "rejected": rejected }),
    )
}

/// Queues the events and waits until they are durable; the error is the answer to give.
async fn wait_durable(
    intake: &Intake,
    events: Vec<super::intake::Incoming>,
    slot: tokio::sync::SemaphorePermit<'_>,
) -> Result<(), Response> {
    let admitted = intake.submit(events);
    drop(slot);
    let rx = match admitted {
        Admit::Waiting(rx) => rx,
        Admit::Busy(_) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "the lake is behind: nothing of this request was kept; send it again after Retry-After seconds",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_S.into());
            return Err(r);
        }
        Admit::Stopped(why) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, why)),
    };
    match tokio::time::timeout(DURABLE_WAIT, rx).await {
        Ok(Ok(Outcome::Durable)) => Ok(()),
        Ok(Ok(Outcome::Stopped(why))) => Err(error(StatusCode::SERVICE_UNAVAILABLE, why)),
        Ok(Err(_)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, super::intake::STOPPED)),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "not confirmed in the lake within {} s; they may still be stored: send them again (events with ids are stored once)",
                DURABLE_WAIT.as_secs()
            ),
        )),
    }
}
