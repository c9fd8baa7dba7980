//! Command calls run on blocking threads, a bounded number at a time, and memory goes back to
//! the OS once a burst of them is over.
//!
//! Every search, count or export opens its own in-memory DuckDB, which starts a thread per core
//! and its own buffers: 2,000 of them at once (one per request, on tokio's 512 blocking
//! threads) took 24 s at p99 and left 2.4 GB allocated. Queueing them behind a few slots
//! answers as fast on two cores and holds a few DuckDBs at a time.

use crate::edge::refuse;
use axum::http::StatusCode;
use axum::response::Response;
use sluice_api::{ApiError, ErrorCode};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// `job_poll` waits on a job (up to the `wait_ms` it is given) rather than working: it gets
/// slots of its own, so a browser's polls neither queue behind searches nor hold them up.
const WAITING_COMMANDS: &[&str] = &["job_poll"];

pub(crate) struct Calls {
    work: Arc<Semaphore>,
    waits: Arc<Semaphore>,
    queue_timeout: Duration,
    running: AtomicUsize,
    /// Bumped whenever a call ends, so a pending memory return sees later calls.
    ended: AtomicU64,
}

impl Calls {
    pub(crate) fn new(work: usize, waits: usize, queue_timeout: Duration) -> Self {
        Calls {
            work: Arc::new(Semaphore::new(work.max(1))),
            waits: Arc::new(Semaphore::new(waits.max(1))),
            queue_timeout,
            running: AtomicUsize::new(0),
            ended: AtomicU64::new(0),
        }
    }

    /// Runs `f` on a blocking thread once a slot is free (503 if none frees within the queue
    /// timeout). The slot is held by the thread, not by this future: a client that hangs up
    /// does not free a slot while its DuckDB still runs.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        command: &str,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<Result<T, ApiError>, Response> {
        let pool = if WAITING_COMMANDS.contains(&command) {
            &self.waits
        } else {
            &self.work
        };
        let permit =
            match tokio::time::timeout(self.queue_timeout, pool.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    return Err(refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::Timeout,
                        format!(
                            "{command}: Sluice is busy (no free slot within {} s): try again",
                            self.queue_timeout.as_secs()
                        ),
                    ))
                }
            };
        let running = Running::start(self.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            drop(running);
            out
        })
        .await;
        match outcome {
            Ok(out) => Ok(out),
            Err(join) => Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Io,
                format!("{command} failed: {join}"),
            )),
        }
    }

    /// Once no call has run for a moment, asks the allocator to give freed memory back.
    fn return_memory_when_quiet(self: &Arc<Self>, rt: &tokio::runtime::Handle) {
        let me = self.clone();
        let seen = me.ended.load(Ordering::SeqCst);
        rt.spawn(async move {
            tokio::time::sleep(QUIET).await;
            if me.running.load(Ordering::SeqCst) == 0 && me.ended.load(Ordering::SeqCst) == seen {
                let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
            }
        });
    }
}

/// One call on its thread; dropped there when the work is done, even if the client is gone.
struct Running {
    calls: Arc<Calls>,
    rt: tokio::runtime::Handle,
}

impl Running {
    fn start(calls: Arc<Calls>) -> Self {
        calls.running.fetch_add(1, Ordering::SeqCst);
        Running {
            calls,
            rt: tokio::runtime::Handle::current(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.calls.ended.fetch_add(1, Ordering::SeqCst);
        if self.calls.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.calls.return_memory_when_quiet(&self.rt);
        }
    }
}

/// How long the server must be idle before memory is handed back: long enough not to do it
/// between the requests of one burst, short enough that a person sees RSS fall.
const QUIET: Duration = Duration::from_millis(500);
