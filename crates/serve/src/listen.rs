//! The accept loop: a bounded number of open connections, each closed when it sends no full
//! request head in time (first request or between keep-alive requests), and, when the bound is
//! reached, the oldest connection with no request in progress closed to make room.
//!
//! A connection waits in a lobby until its first bytes arrive, and only then takes one of the
//! slots hyper serves. Closing the oldest idle connection, rather than refusing new ones or
//! leaving them in the kernel's backlog, is what keeps a real request answering while
//! thousands of connections sit open without sending anything: silent ones stay in the lobby
//! and take turns being closed there, and a client that sent its request is never closed
//! before it is read. In a burst of real requests every one is answered, at worst with 503
//! `busy` (BENCHMARKS.md).

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub(crate) struct Edge {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long requests still in progress at shutdown may take to finish.
    pub grace: Duration,
}

/// A connection must have been idle this long to be closed to make room: one just given a
/// slot has not had its request read yet.
const MIN_IDLE: Duration = Duration::from_millis(250);

/// How long a new connection may send nothing before it can be closed to make room in the
/// lobby. A burst of 2,000 requests from a loaded 2-core machine had clients that took over
/// 250 ms from connecting to sending; 500 ms still drains 5,000 silent connections in about
/// 2.5 s (two lobbies' worth a second).
const LOBBY_WAIT: Duration = Duration::from_millis(500);

/// One open connection.
struct Slot {
    /// Requests whose response has not been fully written yet.
    in_flight: AtomicUsize,
    /// When it last became idle (accepted, or its last response written).
    idle_since: Mutex<Instant>,
    /// The socket, to look for a request that has arrived but that the connection's task has
    /// not read yet: under load the task can be that late, and closing a socket with unread
    /// bytes resets it (83 of 2,000 in a burst). Once the connection ends the number may name
    /// another socket for a moment; that can only keep this slot a little longer.
    fd: std::os::fd::RawFd,
    close: CancellationToken,
}

impl Slot {
    fn idle_for(&self, min: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.idle_since.lock().map_or(true, |t| t.elapsed() >= min)
            && !has_unread_bytes(self.fd)
    }
}

fn has_unread_bytes(fd: std::os::fd::RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte peek into a local; a stale descriptor only makes recv fail.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
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

/// Connections accepted that have sent nothing yet, oldest first: the lobby. They hold no
/// connection slot, so a flood of silent connections cannot keep a real request from one, and
/// a client that is slow to send (2,000 at once from one machine) is not closed for it.
#[derive(Default)]
struct Lobby {
    waiting: Mutex<VecDeque<Waiter>>,
    next: AtomicUsize,
}

struct Waiter {
    id: usize,
    since: Instant,
    fd: std::os::fd::RawFd,
    close: CancellationToken,
}

impl Lobby {
    fn enter(&self, fd: std::os::fd::RawFd, close: CancellationToken) -> usize {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push_back(Waiter {
            id,
            since: Instant::now(),
            fd,
            close,
        });
        id
    }

    fn leave(&self, id: usize) {
        let mut w = self.lock();
        if let Some(i) = w.iter().position(|x| x.id == id) {
            w.remove(i);
        }
    }

    /// Closes up to `n` of the connections that have waited longest, sending nothing for
    /// [`LOBBY_WAIT`]. One whose request has arrived is kept even when its task has not run yet:
    /// under load the accept loop outpaces the tasks it starts, and closing those unread left
    /// 1,536 of a 2,000-connection burst unanswered.
    fn close_oldest(&self, n: usize) {
        let mut closed = 0;
        self.lock().retain(|x| {
            if closed < n && x.since.elapsed() >= LOBBY_WAIT && !has_unread_bytes(x.fd) {
                x.close.cancel();
                closed += 1;
                false
            } else {
                true
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiter>> {
        // A panic while holding this lock leaves a list of tokens, still valid.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes a free place from `places`, closing up to `n` connections with `make_room` at once
/// and every 100 ms while there is none; `None` once `stop` is cancelled. One acquire stays
/// queued throughout, so a waiter keeps its turn (the semaphore is first come, first served).
async fn place(
    places: &Arc<Semaphore>,
    stop: &CancellationToken,
    n: usize,
    make_room: impl Fn(usize),
) -> Option<OwnedSemaphorePermit> {
    if stop.is_cancelled() {
        return None;
    }
    if let Ok(p) = places.clone().try_acquire_owned() {
        return Some(p);
    }
    let acquire = places.clone().acquire_owned();
    tokio::pin!(acquire);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            p = &mut acquire => return p.ok(),
            _ = tick.tick() => make_room(n),
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
    let batch = (max / 8).max(1);
    let permits = Arc::new(Semaphore::new(max));
    // Twice the slots: a waiting connection costs a descriptor and a small task, and a burst
    // from one loaded machine has many clients that connected but have not sent yet.
    let seats = Arc::new(Semaphore::new(2 * max));
    let lobby = Arc::new(Lobby::default());
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
        // A full lobby makes room by closing the connections that have waited longest.
        let lobby_ref = lobby.clone();
        let Some(seat) = place(&seats, &stop, batch, |n| lobby_ref.close_oldest(n)).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let waited_out = stop.child_token();
        let ticket = lobby.enter(stream.as_raw_fd(), waited_out.clone());
        let (http, router, open, lobby) =
            (http.clone(), router.clone(), open.clone(), lobby.clone());
        let (permits, stop, edge_header, grace) = (
            permits.clone(),
            stop.clone(),
            edge.header_timeout,
            edge.grace,
        );
        tokio::spawn(async move {
            // The first bytes (or the client's close) before a connection slot is taken.
            // `peek`, not `readable`: readiness can be reported with nothing to read yet
            // (half the connections of a 2,000-connection burst), and such a connection then
            // took a slot and sat idle in it until it was closed unanswered.
            let mut first = [0u8; 1];
            let ready = tokio::select! {
                // Ok(0) is the client's close: nothing to serve.
                r = stream.peek(&mut first) => matches!(r, Ok(n) if n > 0),
                _ = tokio::time::sleep(edge_header) => false,
                _ = waited_out.cancelled() => false,
            };
            // At the limit: make room by closing connections with no request in progress.
            // The lobby seat is kept meanwhile, so connections waiting for a slot stay
            // bounded; with its request unread, the lobby never closes this one.
            let open_ref = open.clone();
            let permit = if ready {
                tokio::time::timeout(
                    edge_header,
                    place(&permits, &stop, batch, |n| open_ref.close_oldest_idle(n)),
                )
                .await
                .ok()
                .flatten()
            } else {
                None
            };
            lobby.leave(ticket);
            drop(seat);
            let Some(permit) = permit else {
                return;
            };
            let slot = Arc::new(Slot {
                in_flight: AtomicUsize::new(0),
                idle_since: Mutex::new(Instant::now()),
                fd: stream.as_raw_fd(),
                close: stop.child_token(),
            });
            open.lock().push_back(slot.clone());
            serve_connection(stream, &slot, &http, router, grace).await;
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

/// Runs hyper on one connection until it ends, or until its slot is closed: then an idle
/// connection is simply dropped (hyper's graceful shutdown would wait for a first request
/// that may never come), and a busy one finishes what it is doing within `grace`.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    slot: &Arc<Slot>,
    http: &http1::Builder,
    router: Router,
    grace: Duration,
) {
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
            if slot.in_flight.load(Ordering::SeqCst) > 0 {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(grace, conn).await;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// A connected pair: the client end, and the server end as the accept loop holds it.
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    /// Closing to make room passes over a connection whose request has arrived but has not
    /// been read (its task is late), and closes one that has sent nothing for MIN_IDLE.
    #[test]
    fn only_silent_connections_are_closed_to_make_room() {
        let (mut sent, sent_server) = pair();
        let (_silent, silent_server) = pair();
        sent.write_all(b"POST /api/app_info HTTP/1.1\r\n").unwrap();
        let lobby = Lobby::default();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        lobby.enter(sent_server.as_raw_fd(), a.clone());
        lobby.enter(silent_server.as_raw_fd(), b.clone());
        lobby.close_oldest(2);
        assert!(!a.is_cancelled() && !b.is_cancelled(), "too young to close");
        std::thread::sleep(LOBBY_WAIT);
        lobby.close_oldest(2);
        assert!(!a.is_cancelled(), "its request is waiting to be read");
        assert!(b.is_cancelled());

        let slot = |fd| Slot {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now() - MIN_IDLE),
            fd,
            close: CancellationToken::new(),
        };
        assert!(!slot(sent_server.as_raw_fd()).idle_for(MIN_IDLE));
        assert!(slot(silent_server.as_raw_fd()).idle_for(MIN_IDLE));
    }
}
