//! Sending: each message is one request, handed to a pool of worker threads (the
//! connection's concurrency) so an endpoint's round trips overlap.
//!
//! Outcomes: a 2xx answer is sent. 429 (after its `Retry-After`) and 5xx are tried again
//! with exponential backoff, up to `MAX_TRIES` and never past the writer's timeout from the
//! first try; then, like any other status, failed with the status and the answer's start.
//! A request that never left (refused, no such host, connect timeout) is tried again the
//! same way, then failed. One sent without an answer (timed out, connection cut) is unknown,
//! never sent again: the endpoint may have acted on it.

use super::cloudevents::{request, Prepared};
use super::config::HttpConfig;
use crate::{BusError, Delivery, Writer};
use sluice_model::Outgoing;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MAX_TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The writer's timeout until the caller sets one (`Writer::set_timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error answer a reason keeps.
const REASON_CHARS: usize = 200;

/// Where a message is: its outcome at a flush that ends before it is answered.
enum Stage {
    /// Not yet taken by a worker: never left Sluice.
    Queued,
    /// A request is on its way: the endpoint may act on it.
    InFlight,
    /// Between tries, after an answer or a connection that was never made: certainly not
    /// held, for this reason.
    Waiting(String),
}

struct Job {
    seq: u64,
    prepared: Prepared,
    /// How long its tries may go on, from the first.
    budget: Duration,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Messages handed over and not yet counted: event id and stage.
    open: HashMap<u64, (String, Stage)>,
    delivery: Delivery,
    /// Since when requests have got no answer at all (refused, silent); cleared by any answer.
    failing_since: Option<Instant>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Work queued, or the writer closed.
    work: Condvar,
    /// A message counted, a queue slot freed, or a flush giving up.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked leaves counts that are still consistent (each is one update).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a message's outcome, unless a flush already counted it.
    fn settle(&self, seq: u64, outcome: Outcome) {
        let mut st = self.lock();
        if let Some((id, _)) = st.open.remove(&seq) {
            match outcome {
                Outcome::Sent => st.delivery.sent += 1,
                Outcome::Failed(why) => st.delivery.fail(id, why),
                Outcome::Unknown(why) => st.delivery.unsure(id, why),
            }
        }
        drop(st);
        self.changed.notify_all();
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    Failed(String),
    Unknown(String),
}

/// What one try came to.
#[derive(Debug, PartialEq)]
enum Try {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The request never left: nothing reached the endpoint. `again`: whether trying again
    /// may go otherwise (a refused connection may not be refused later; a bad URL stays bad).
    NotSent { why: String, again: bool },
    /// Sent (or maybe sent) without an answer.
    NoAnswer(String),
}

/// Whether a failed call stopped before sending, and if so whether trying again may help.
/// Connecting (resolving, TCP, TLS) comes first: an error there means the endpoint saw
/// nothing.
fn before_sending(e: &ureq::Error) -> Option<bool> {
    use std::io::ErrorKind as K;
    use ureq::Timeout as T;
    match e {
        ureq::Error::Timeout(T::Resolve | T::Connect) => Some(true),
        ureq::Error::Timeout(_) => None,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionRefused
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::NetworkDown
                | K::AddrNotAvailable
        )
        .then_some(true),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Some(true),
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::Tls(_)
        | ureq::Error::NativeTls(_)
        | ureq::Error::TlsRequired
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::ConnectProxyFailed(_) => Some(false),
        _ => None,
    }
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("no answer within {} ms ({t})", timeout.as_millis()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        other => other.to_string(),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    // A day is past any replay's timeout; more would overflow the deadline arithmetic.
    const MOST: u64 = 86_400;
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s.min(MOST)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis((ms.max(0) as u64).min(MOST * 1000)))
}

/// Text that may go in a reason: the start of the answer, on one line, without any of the
/// connection's header values (an endpoint may echo them).
fn clean(text: &str, secrets: &[(String, String)]) -> String {
    // Redacted before anything is cut or joined, so no part of a secret survives either.
    let mut t = text.to_string();
    for (_, v) in secrets.iter().filter(|(_, v)| v.len() >= 4) {
        t = t.replace(v.as_str(), "<redacted>");
    }
    t.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(REASON_CHARS)
        .collect()
}

fn try_once(agent: &ureq::Agent, config: &HttpConfig, p: &Prepared) -> Try {
    let mut b = ureq::http::Request::builder()
        .method(config.method.as_str())
        .uri(p.url.as_str());
    for (k, v) in &p.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let req = match b.body(p.body.as_slice()) {
        Ok(r) => r,
        Err(e) => {
            return Try::NotSent {
                why: format!("cannot make the request: {e}"),
                again: false,
            }
        }
    };
    match agent.run(req) {
        Ok(mut resp) => {
            let status = resp.status();
            let after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            // Read to the end, so the connection can carry the next request.
            let body = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .unwrap_or_default();
            let mut reason = format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            if status.is_redirection() {
                let to = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                reason = format!(
                    "{} to {:?} (redirects are not followed: set the connection's --url)",
                    reason.trim_end(),
                    clean(to, &config.headers)
                );
            } else if !status.is_success() {
                let text = clean(&String::from_utf8_lossy(&body), &config.headers);
                if !text.is_empty() {
                    reason = format!("{}: {text}", reason.trim_end());
                }
            }
            Try::Answered {
                status: status.as_u16(),
                retry_after: after,
                reason: reason.trim_end().to_string(),
            }
        }
        Err(e) => match before_sending(&e) {
            Some(again) => Try::NotSent {
                why: describe(&e, config.timeout),
                again,
            },
            None => Try::NoAnswer(describe(&e, config.timeout)),
        },
    }
}

/// The wait before the next try after `tries`, or `None` when there is none to make.
fn next_wait(
    got: &Try,
    tries: u32,
    started: Instant,
    budget: Duration,
) -> Result<Duration, String> {
    let retryable = match got {
        // 501 and 505 say what the endpoint cannot do, not that it is busy; a gateway's 502
        // and 504 may come after the upstream acted (counted unknown, never sent again).
        Try::Answered { status, .. } => {
            *status == 429 || (*status >= 500 && ![501, 502, 504, 505].contains(status))
        }
        Try::NotSent { again, .. } => *again,
        Try::NoAnswer(_) => false,
    };
    if !retryable {
        return Err(String::new());
    }
    if tries >= MAX_TRIES {
        return Err(format!(" (after {tries} tries)"));
    }
    let backoff = FIRST_BACKOFF * 2u32.pow(tries - 1);
    let wait = match got {
        Try::Answered {
            retry_after: Some(after),
            ..
        } => *after,
        _ => backoff,
    };
    let next = started.elapsed().saturating_add(wait);
    if next > budget {
        return Err(format!(
            " (after {tries} tries; the next at {:.1} s would pass the {:.1} s timeout)",
            next.as_secs_f64(),
            budget.as_secs_f64()
        ));
    }
    Ok(wait)
}

fn deliver(shared: &Shared, agent: &ureq::Agent, config: &HttpConfig, job: &Job) -> Outcome {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let got = try_once(agent, config, &job.prepared);
        {
            let mut st = shared.lock();
            match &got {
                Try::Answered { .. } => st.failing_since = None,
                _ => {
                    st.failing_since.get_or_insert(started);
                }
            }
        }
        let wait = next_wait(&got, tries, started, job.budget);
        let (status, reason) = match got {
            Try::Answered { status, reason, .. } => (Some(status), reason),
            Try::NotSent { why, .. } => (None, format!("not sent: {why}")),
            Try::NoAnswer(why) => return Outcome::Unknown(format!("sent, then {why}")),
        };
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return Outcome::Sent;
        }
        // A gateway that gave up may have passed the request on: it may have been acted on.
        if status.is_some_and(|s| s == 502 || s == 504) {
            return Outcome::Unknown(format!(
                "{reason} (a gateway's answer: the endpoint behind it may have taken it)"
            ));
        }
        let wait = match wait {
            Ok(w) => w,
            Err(tail) => return Outcome::Failed(format!("{reason}{tail}")),
        };
        // Between tries the message is certainly not held; a flush giving up now fails it.
        let until = Instant::now() + wait;
        let mut st = shared.lock();
        match st.open.get_mut(&job.seq) {
            Some((_, stage)) => *stage = Stage::Waiting(format!("{reason} (gave up retrying)")),
            None => return Outcome::Failed(reason),
        }
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if st.closed || !st.open.contains_key(&job.seq) {
                return Outcome::Failed(reason);
            }
            st = shared
                .changed
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        match st.open.get_mut(&job.seq) {
            Some((_, stage)) => *stage = Stage::InFlight,
            None => return Outcome::Failed(reason),
        }
    }
}

fn worker(shared: Arc<Shared>, agent: ureq::Agent, config: Arc<HttpConfig>) {
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.closed {
                    return;
                }
                if let Some(job) = st.queue.pop_front() {
                    if let Some((_, stage)) = st.open.get_mut(&job.seq) {
                        *stage = Stage::InFlight;
                        break job;
                    }
                    // A flush already counted it.
                    continue;
                }
                st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        shared.changed.notify_all();
        let outcome = deliver(&shared, &agent, &config, &job);
        shared.settle(job.seq, outcome);
    }
}

pub(crate) struct HttpWriter {
    shared: Arc<Shared>,
    config: Arc<HttpConfig>,
    name: String,
    next: u64,
    timeout: Duration,
}

impl HttpWriter {
    pub(crate) fn open(name: &str, config: &HttpConfig) -> Result<Self, BusError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            changed: Condvar::new(),
        });
        let config = Arc::new(config.clone());
        let agent = config.agent();
        for i in 0..config.concurrency.max(1) {
            let (s, a, c) = (shared.clone(), agent.clone(), config.clone());
            let started = std::thread::Builder::new()
                .name(format!("sluice-http-{i}"))
                .spawn(move || worker(s, a, c));
            if let Err(e) = started {
                // The workers already started would wait for work forever: close them.
                shared.lock().closed = true;
                shared.work.notify_all();
                return Err(BusError::Client(format!(
                    "cannot start an HTTP worker: {e}"
                )));
            }
        }
        Ok(HttpWriter {
            shared,
            config,
            name: name.to_string(),
            next: 0,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    fn what(&self) -> String {
        format!("HTTP endpoint {} ({})", self.config.url, self.name)
    }
}

impl Writer for HttpWriter {
    fn send(&mut self, msg: Outgoing) -> Result<(), BusError> {
        let prepared = request(&self.config, &msg);
        let seq = self.next;
        self.next += 1;
        let mut st = self.shared.lock();
        if let Some(since) = st.failing_since.filter(|t| t.elapsed() >= self.timeout) {
            st.delivery.fail(
                msg.event_id,
                format!("not sent: {} stopped answering", self.what()),
            );
            return Err(BusError::Unreachable {
                what: self.what(),
                reason: format!(
                    "no answer for {} s (--broker-timeout)",
                    since.elapsed().as_secs()
                ),
            });
        }
        // A bounded queue: the caller's pace (and `--rate`) holds at the endpoint.
        let deadline = Instant::now() + self.timeout;
        while st.queue.len() >= self.config.concurrency.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                st.delivery.fail(
                    msg.event_id,
                    format!("not sent: {} answers too slowly", self.what()),
                );
                return Err(BusError::Unreachable {
                    what: self.what(),
                    reason: format!("no request finished within {} s", self.timeout.as_secs()),
                });
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        st.open.insert(seq, (msg.event_id, Stage::Queued));
        st.queue.push_back(Job {
            seq,
            prepared,
            budget: self.timeout,
        });
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        self.shared.lock().delivery.clone()
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn flush(&mut self, timeout: Duration) -> Result<Delivery, BusError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while !st.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        // What is still open now is counted by how far it got; a late answer is ignored.
        let waited = timeout.as_secs();
        let open: Vec<(u64, (String, Stage))> = st.open.drain().collect();
        st.queue.clear();
        for (_, (id, stage)) in open {
            match stage {
                Stage::Queued => st
                    .delivery
                    .fail(id, format!("not sent: still queued after {waited} s")),
                Stage::Waiting(why) => st.delivery.fail(id, why),
                Stage::InFlight => st
                    .delivery
                    .unsure(id, format!("sent, then no answer within {waited} s")),
            }
        }
        let d = st.delivery.clone();
        drop(st);
        self.shared.changed.notify_all();
        Ok(d)
    }
}

impl Drop for HttpWriter {
    /// Workers still in a request finish it on their own (each phase is bounded) and stop.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, after: Option<u64>) -> Try {
        Try::Answered {
            status,
            retry_after: after.map(Duration::from_secs),
            reason: format!("HTTP {status}"),
        }
    }

    #[test]
    fn retries_are_bounded_by_tries_and_time() {
        let now = Instant::now();
        let t = Duration::from_secs(30);
        assert_eq!(
            next_wait(&answered(503, None), 1, now, t),
            Ok(FIRST_BACKOFF)
        );
        assert_eq!(
            next_wait(&answered(500, None), 3, now, t),
            Ok(FIRST_BACKOFF * 4)
        );
        assert_eq!(
            next_wait(&answered(429, Some(2)), 1, now, t),
            Ok(Duration::from_secs(2)),
            "Retry-After is honoured"
        );
        assert!(next_wait(&answered(429, Some(60)), 1, now, t)
            .unwrap_err()
            .contains("timeout"));
        assert!(next_wait(&answered(503, None), MAX_TRIES, now, t)
            .unwrap_err()
            .contains("5 tries"));
        assert_eq!(
            next_wait(&answered(400, None), 1, now, t),
            Err(String::new())
        );
        let refused = Try::NotSent {
            why: "refused".into(),
            again: true,
        };
        assert!(next_wait(&refused, 1, now, t).is_ok());
        let bad = Try::NotSent {
            why: "bad URI".into(),
            again: false,
        };
        assert_eq!(next_wait(&bad, 1, now, t), Err(String::new()));
        assert!(
            next_wait(&Try::NoAnswer("x".into()), 1, now, t).is_err(),
            "no answer is never sent again"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn reasons_never_echo_secrets() {
        let secrets = vec![("Authorization".to_string(), "Bearer s3cret".to_string())];
        let r = clean("denied\n   for  Bearer s3cret", &secrets);
        assert_eq!(r, "denied for <redacted>");
        let long = format!("{}Bearer s3cret", "x".repeat(REASON_CHARS - 3));
        assert!(
            !clean(&long, &secrets).contains("Bea"),
            "no part of a secret is left"
        );
    }

    #[test]
    fn refused_is_before_sending_and_a_read_timeout_is_not() {
        let refused = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "x",
        ));
        assert_eq!(before_sending(&refused), Some(true));
        let connect = ureq::Error::Timeout(ureq::Timeout::Connect);
        assert_eq!(before_sending(&connect), Some(true));
        let answer = ureq::Error::Timeout(ureq::Timeout::RecvResponse);
        assert_eq!(before_sending(&answer), None);
        assert_eq!(
            before_sending(&ureq::Error::BadUri("x".into())),
            Some(false)
        );
        let reset = ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "x",
        ));
        assert_eq!(before_sending(&reset), None);
    }
}
