//! The accept loop: a bounded number of open connections, each closed when it sends no full
//! request head in time (first request or between keep-alive requests), and, when the bound is
//! reached, the oldest connection with no request in progress closed to make room.
//!
//! Closing the oldest idle connection, rather than refusing new ones or leaving them in the
//! kernel's backlog, is what keeps a real request answering while thousands of connections sit
//! open without sending anything: they take turns being the oldest, and a client that sends its
//! request at once is never idle long enough (250 ms) to be picked. In a burst of real
//! requests nothing is idle, so new connections wait in the backlog instead.

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub(crate) struct Edge {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long requests still in progress at shutdown may take to finish.
    pub grace: Duration,
}

/// A connection must have been idle this long to be closed to make room: one just accepted
/// has not had its request read yet (in a burst, that is every new connection).
const MIN_IDLE: Duration = Duration::from_millis(250);

/// One open connection.
struct Slot {
    /// Requests whose response has not been fully written yet.
    in_flight: AtomicUsize,
    /// When it last became idle (accepted, or its last response written).
    idle_since: Mutex<Instant>,
    close: CancellationToken,
}

impl Slot {
    fn idle_for(&self, min: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.idle_since.lock().map_or(true, |t| t.elapsed() >= min)
    }
}

#[derive(Default)]
struct Open(Mutex<VecDeque<Arc<Slot>>>);

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Slot>>> {
        // A panic while holding this lock leaves a list of Arcs, still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes up to `n` of the connections open longest that have had no request in progress
    /// for [`MIN_IDLE`]. Several at once: with thousands waiting in the backlog, making room
    /// one connection at a time took seconds.
    fn close_oldest_idle(&self, n: usize) {
        let mut open = self.lock();
        let mut closed = 0;
        open.retain(|s| {
            if closed < n && s.idle_for(MIN_IDLE) {
                s.close.cancel();
                closed += 1;
                false
            } else {
                true
            }
        });
    }

    fn remove(&self, slot: &Arc<Slot>) {
        let mut open = self.lock();
        if let Some(i) = open.iter().position(|s| Arc::ptr_eq(s, slot)) {
            open.remove(i);
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then lets requests in progress
/// finish (up to the grace period) and closes every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    stop: CancellationToken,
) {
    let max = edge.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let open = Arc::new(Open::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout);
    let http = Arc::new(http);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or memory: wait for some to be freed rather than
                // spin; a connection reset before it was accepted needs no pause.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) {
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        // At the limit: make room by closing an idle connection, or wait for one to end (or
        // to have been idle long enough), with the new connection accepted but not yet read.
        let permit = loop {
            if let Ok(p) = permits.clone().try_acquire_owned() {
                break Some(p);
            }
            open.close_oldest_idle((max / 8).max(1));
            tokio::select! {
                _ = stop.cancelled() => break None,
                p = permits.clone().acquire_owned() => break p.ok(),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        };
        let Some(permit) = permit else { break };
        let _ = stream.set_nodelay(true);
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            close: stop.child_token(),
        });
        open.lock().push_back(slot.clone());
        let (http, router, open, grace) = (http.clone(), router.clone(), open.clone(), edge.grace);
        tokio::spawn(async move {
            let tracked = slot.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let busy = Busy::start(tracked.clone());
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req.map(Body::new)).await?;
                    Ok::<_, std::convert::Infallible>(resp.map(|b| Tracked {
                        body: b,
                        _busy: busy,
                    }))
                }
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = slot.close.cancelled() => {
                    // An idle connection is simply dropped (hyper's graceful shutdown would
                    // wait for a first request that may never come); a busy one finishes
                    // what it is doing.
                    if slot.in_flight.load(Ordering::SeqCst) > 0 {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(grace, conn).await;
                    }
                }
            }
            open.remove(&slot);
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(
        edge.grace + Duration::from_secs(1),
        permits.acquire_many(max as u32),
    )
    .await;
}

/// A request in progress on its connection, until its response body has been written.
struct Busy(Arc<Slot>);

impl Busy {
    fn start(slot: Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Ok(mut t) = self.0.idle_since.lock() {
                *t = Instant::now();
            }
        }
    }
}

/// A response body that keeps its connection marked busy while it is being sent (a streamed
/// export outlives the handler that started it).
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
