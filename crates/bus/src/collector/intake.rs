//! What the endpoints and the capture share: the events of accepted requests, queued for the
//! capture to poll in order, and each request waiting until all of its events are durable.
//!
//! Events are numbered in the order they are queued, which is the order `poll` hands them
//! out, so the capture's "the first N are durable" answers every request whose last event is
//! below N. A request is admitted whole or not at all: when what is queued or not yet durable
//! passes the limits, it is refused as busy (429 / RESOURCE_EXHAUSTED) and nothing of it is
//! kept, so memory stays bounded when the lake cannot keep up.

use sluice_model::Message;
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Ids remembered so that a client's retry in the same run is stored once (earlier runs'
/// events are known from the lake); at about 100 bytes each, 100,000 is 10 MB.
const RECENT_IDS: usize = 100_000;

/// What a request still waiting hears when the capture ends first.
pub(crate) const STOPPED: &str = "the collector stopped before all of these events were stored (some may have been): send them again; events with ids (a CloudEvent's, an Idempotency-Key, a gRPC id) are stored once";

/// One event of a request, with whether its id is the client's own (a CloudEvent's id and
/// source, an `Idempotency-Key`, a gRPC event's id): only those can come again.
pub(crate) struct Incoming {
    pub msg: Message,
    pub stable_id: bool,
}

/// How a request's wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every event is in the lake.
    Durable,
    /// The capture ended (stopped, or the lake failed) before they were: nothing is promised.
    Stopped(String),
}

pub(crate) enum Admit {
    Waiting(oneshot::Receiver<Outcome>),
    /// Over the limits: nothing was kept; the events come back to be sent again later.
    Busy(Vec<Incoming>),
    Stopped(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Events queued or written but not yet durable.
    pub events: u64,
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Twice the lake writer's own batch (200,000 rows or 64 MiB) would only queue; this
        // keeps a burst from a thousand clients in memory without letting it grow past that.
        Limits {
            events: 100_000,
            bytes: 128 << 20,
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Message>,
    /// Events ever queued: the next one's number.
    queued: u64,
    durable: u64,
    /// Payload bytes of events queued and not yet durable.
    pending_bytes: usize,
    /// Per admitted request: one past its last event, and its bytes.
    admitted: VecDeque<(u64, usize)>,
    waiters: Vec<(u64, oneshot::Sender<Outcome>)>,
    recent: HashMap<String, u64>,
    recent_order: VecDeque<String>,
    stopped: Option<String>,
}

pub(crate) struct Intake {
    state: Mutex<State>,
    ready: Condvar,
    limits: Limits,
}

impl Intake {
    pub(crate) fn new(limits: Limits) -> Self {
        Intake {
            state: Mutex::default(),
            ready: Condvar::new(),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves counts that are still consistent: each
        // change below is made before anything that could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a request's events, or says why not. An event whose id was queued before in
    /// this run is not queued again; the request then waits for the earlier one.
    pub(crate) fn submit(&self, events: Vec<Incoming>) -> Admit {
        let mut s = self.lock();
        if let Some(why) = &s.stopped {
            return Admit::Stopped(why.clone());
        }
        // Headers count too: every event of a batch carries a copy of the request's.
        let bytes: usize = events
            .iter()
            .map(|e| {
                e.msg.payload.len()
                    + e.msg
                        .headers
                        .iter()
                        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                        .sum::<usize>()
            })
            .sum();
        let pending = s.queued - s.durable;
        // One request alone is always let in (its size is bounded by the body limit).
        if pending > 0
            && (pending + events.len() as u64 > self.limits.events
                || s.pending_bytes + bytes > self.limits.bytes)
        {
            return Admit::Busy(events);
        }
        let (tx, rx) = oneshot::channel();
        let mut need = 0;
        for e in events {
            if let Some(&n) = e
                .msg
                .id
                .as_ref()
                .filter(|_| e.stable_id)
                .and_then(|id| s.recent.get(id))
            {
                need = need.max(n + 1);
                continue;
            }
            let n = s.queued;
            s.queued += 1;
            need = need.max(n + 1);
            if e.stable_id {
                if let Some(id) = e.msg.id.clone() {
                    remember(&mut s, id, n);
                }
            }
            s.queue.push_back(e.msg);
        }
        let end = s.queued;
        s.pending_bytes += bytes;
        s.admitted.push_back((end, bytes));
        if need <= s.durable {
            let _ = tx.send(Outcome::Durable);
        } else {
            s.waiters.push((need, tx));
        }
        drop(s);
        self.ready.notify_one();
        Admit::Waiting(rx)
    }

    /// Up to `max` queued events, waiting up to `timeout` for the first.
    pub(crate) fn take(&self, max: usize, timeout: Duration) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while s.queue.is_empty() && s.stopped.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Vec::new();
            }
            s = self
                .ready
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = s.queue.len().min(max);
        s.queue.drain(..n).collect()
    }

    /// The first `n` events taken are in the lake: answers the requests they complete.
    pub(crate) fn durable(&self, n: u64) {
        let mut s = self.lock();
        if n <= s.durable {
            return;
        }
        s.durable = n;
        while s.admitted.front().is_some_and(|&(end, _)| end <= n) {
            if let Some((_, b)) = s.admitted.pop_front() {
                s.pending_bytes -= b;
            }
        }
        let waiters = std::mem::take(&mut s.waiters);
        for (need, tx) in waiters {
            if need <= n {
                let _ = tx.send(Outcome::Durable);
            } else {
                s.waiters.push((need, tx));
            }
        }
    }

    /// No more events are taken: every request still waiting hears `why`, and events not yet
    /// taken by the capture are dropped (their senders were never told they were kept).
    pub(crate) fn stop(&self, why: &str) {
        let mut s = self.lock();
        s.stopped.get_or_insert_with(|| why.to_string());
        s.queue.clear();
        for (_, tx) in std::mem::take(&mut s.waiters) {
            let _ = tx.send(Outcome::Stopped(why.to_string()));
        }
        drop(s);
        self.ready.notify_all();
    }
}

fn remember(s: &mut State, id: String, n: u64) {
    if s.recent_order.len() >= RECENT_IDS {
        if let Some(old) = s.recent_order.pop_front() {
            s.recent.remove(&old);
        }
    }
    s.recent_order.push_back(id.clone());
    s.recent.insert(id, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, stable: bool) -> Incoming {
        Incoming {
            msg: Message {
                id: Some(id.into()),
                source: "s".into(),
                partition: None,
                offset: None,
                sub_offset: None,
                key: None,
                headers: Vec::new(),
                timestamp_us: None,
                payload: b"0123456789".to_vec(),
                properties: None,
            },
            stable_id: stable,
        }
    }

    fn waiting(a: Admit) -> oneshot::Receiver<Outcome> {
        match a {
            Admit::Waiting(rx) => rx,
            _ => panic!("not admitted"),
        }
    }

    #[test]
    fn a_request_is_answered_once_all_its_events_are_durable() {
        let i = Intake::new(Limits::default());
        let mut a = waiting(i.submit(vec![event("a", true), event("b", true)]));
        let mut b = waiting(i.submit(vec![event("c", false)]));
        let taken = i.take(10, Duration::ZERO);
        assert_eq!(taken.len(), 3);
        i.durable(1);
        assert!(a.try_recv().is_err());
        i.durable(2);
        assert_eq!(a.try_recv().unwrap(), Outcome::Durable);
        assert!(b.try_recv().is_err());
        i.durable(3);
        assert_eq!(b.try_recv().unwrap(), Outcome::Durable);
    }

    #[test]
    fn a_retry_waits_for_the_first_copy_and_is_not_queued_again() {
        let i = Intake::new(Limits::default());
        let _first = waiting(i.submit(vec![event("a", true)]));
        let mut retry = waiting(i.submit(vec![event("a", true), event("a", true)]));
        // Fresh ids never repeat, so they are not remembered: both are queued.
        drop(waiting(i.submit(vec![event("f", false)])));
        drop(waiting(i.submit(vec![event("f", false)])));
        assert_eq!(i.take(10, Duration::ZERO).len(), 3);
        i.durable(1);
        assert_eq!(retry.try_recv().unwrap(), Outcome::Durable);
        // Once durable, a retry is answered at once.
        let mut late = waiting(i.submit(vec![event("a", true)]));
        assert_eq!(late.try_recv().unwrap(), Outcome::Durable);
    }

    #[test]
    fn over_the_limits_a_request_is_refused_whole_and_one_alone_always_fits() {
        let i = Intake::new(Limits {
            events: 2,
            bytes: 25,
        });
        drop(waiting(i.submit(
            (0..5).map(|n| event(&n.to_string(), true)).collect(),
        )));
        assert!(matches!(i.submit(vec![event("x", true)]), Admit::Busy(_)));
        assert_eq!(i.take(10, Duration::ZERO).len(), 5);
        i.durable(5);
        drop(waiting(i.submit(vec![event("x", true), event("y", true)])));
        // 20 bytes pending; 10 more passes 25.
        assert!(matches!(i.submit(vec![event("z", true)]), Admit::Busy(_)));
        i.take(10, Duration::ZERO);
        i.durable(7);
        drop(waiting(i.submit(vec![event("z", true)])));
    }

    #[test]
    fn stopping_answers_every_waiter_and_refuses_more() {
        let i = Intake::new(Limits::default());
        let mut a = waiting(i.submit(vec![event("a", true)]));
        i.stop("stopped");
        assert_eq!(a.try_recv().unwrap(), Outcome::Stopped("stopped".into()));
        assert!(i.take(10, Duration::from_secs(5)).is_empty());
        assert!(matches!(
            i.submit(vec![event("b", true)]),
            Admit::Stopped(_)
        ));
    }
}
