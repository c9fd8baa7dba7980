//! Long work (tail, capture, replay, re-decoding) as jobs. A job command checks its arguments
//! and hands back a [`JobWork`]: the window starts it on a thread of its own ([`Jobs::start`])
//! and asks for what is new with `job_poll`, which waits until something arrives, or has it
//! pushed with `watch` (the desktop app's channel); the CLI runs the very same work to its end on
//! its own thread ([`JobWork::run`]), rendering progress as it comes. So a `sluice replay` and
//! the window's replay are one piece of code, history record included.
//!
//! For windows, live events and progress travel in batches, never one message per event, and a
//! job outlives the view that started it (captures keep running while the user looks
//! elsewhere).

use crate::error::{ApiError, ErrorCode, Result};
use crate::render::EventView;
use serde::Serialize;
use sluice_model::Event;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use ts_rs::TS;

/// Events a job keeps for slow pollers; older ones are dropped and counted.
const BUFFER: usize = 5_000;
/// At most this many events per poll, so one answer stays within a ~256 KB IPC page.
const PAGE: usize = 200;
/// Finished jobs are forgotten after this many newer ones started.
const KEEP_FINISHED: usize = 50;

#[derive(Debug, Clone, Serialize, TS)]
pub struct JobInfo {
    pub id: u64,
    /// `tail`, `capture`, `replay` or `redecode`.
    pub kind: String,
    /// What it reads or sends, for the jobs list.
    pub label: String,
    pub running: bool,
    pub paused: bool,
    pub progress: serde_json::Value,
    pub error: Option<ApiError>,
}

/// What `job_poll` answers: events after the caller's cursor, the latest progress, and the
/// outcome once the job has ended.
#[derive(Debug, Clone, Serialize, TS)]
pub struct JobUpdate {
    pub events: Vec<EventView>,
    /// Pass back as `after` to get what follows.
    pub next: u64,
    /// Events that fell out of the buffer before this poller saw them.
    pub dropped: u64,
    pub job: JobInfo,
    pub result: Option<serde_json::Value>,
}

struct State {
    events: VecDeque<EventView>,
    /// Sequence number of `events[0]`.
    first: u64,
    progress: serde_json::Value,
    outcome: Option<std::result::Result<serde_json::Value, ApiError>>,
}

struct Job {
    id: u64,
    kind: String,
    label: String,
    stop: AtomicBool,
    paused: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_event(&self, e: EventView) {
        let mut s = self.lock();
        s.events.push_back(e);
        if s.events.len() > BUFFER {
            s.events.pop_front();
            s.first += 1;
        }
        drop(s);
        self.changed.notify_all();
    }

    fn set_progress(&self, p: impl Serialize) {
        self.lock().progress = serde_json::to_value(p).unwrap_or_default();
        self.changed.notify_all();
    }

    fn info(&self, s: &State) -> JobInfo {
        JobInfo {
            id: self.id,
            kind: self.kind.clone(),
            label: self.label.clone(),
            running: s.outcome.is_none(),
            paused: self.paused.load(Ordering::Relaxed),
            progress: s.progress.clone(),
            error: match &s.outcome {
                Some(Err(e)) => Some(e.clone()),
                _ => None,
            },
        }
    }
}

/// A window's job keeps its events and progress for pollers; it never asks the work to stop
/// for a slow one (old events are dropped instead).
impl<P: Serialize> Report<P> for Job {
    fn event(&self, e: &Event) -> bool {
        self.push_event(EventView::from(e));
        true
    }

    fn progress(&self, p: &P) {
        self.set_progress(p);
    }
}

/// A job command's work, its arguments already checked, not yet running: a window starts it on
/// a thread of its own (`Jobs::start`), the CLI runs it to its end where it is (`run`). `T` is
/// its outcome, `P` the progress it reports as it goes.
pub struct JobWork<T, P = ()> {
    kind: &'static str,
    label: String,
    work: Work<T, P>,
}

type Work<T, P> = Box<dyn FnOnce(&JobCtx<'_, P>) -> T + Send>;

impl<T, P> JobWork<T, P> {
    /// `kind` is `tail`, `capture`, `replay` or `redecode`; `label` says what it reads or sends.
    pub(crate) fn new(
        kind: &'static str,
        label: String,
        work: impl FnOnce(&JobCtx<'_, P>) -> T + Send + 'static,
    ) -> Self {
        JobWork {
            kind,
            label,
            work: Box::new(work),
        }
    }

    /// What it reads or sends, as the jobs list shows it (`CONNECTION:TOPIC` for a re-decode).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs the job to its end on the calling thread, as the CLI does. `stop` ends it early
    /// (Ctrl-C, SIGTERM) the way `job_stop` ends a window's job: a capture still flushes and a
    /// replay still gives its account. `on_progress` sees every progress report and `on_event`
    /// every event as it comes (tail); `on_event` returning false stops the job, as when the
    /// output went away. Nothing is dropped: a slow `on_event` holds the job up.
    pub fn run(
        self,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&P),
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> T {
        let here = Here {
            progress: RefCell::new(on_progress),
            event: RefCell::new(on_event),
        };
        (self.work)(&JobCtx {
            stop,
            paused: None,
            report: &here,
        })
    }
}

/// What a running job's work sees of its host: whether to stop or hold, and where its events
/// and progress go.
pub struct JobCtx<'a, P> {
    stop: &'a AtomicBool,
    /// Only a window's jobs can be paused.
    paused: Option<&'a AtomicBool>,
    report: &'a dyn Report<P>,
}

impl<P> JobCtx<'_, P> {
    /// The flag the work polls: raised by `job_stop`, a closing window or the CLI's Ctrl-C.
    pub(crate) fn stop(&self) -> &AtomicBool {
        self.stop
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands one event on; false when the host wants no more (the work should end).
    pub(crate) fn event(&self, e: &Event) -> bool {
        self.report.event(e)
    }

    pub(crate) fn progress(&self, p: &P) {
        self.report.progress(p)
    }

    /// Blocks while the job is paused (and not stopped): pausing a replay holds its sender.
    pub(crate) fn wait_while_paused(&self) {
        if let Some(paused) = self.paused {
            while paused.load(Ordering::Relaxed) && !self.stopped() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Where a job's events and progress go: a window's buffer, or the CLI's callbacks.
trait Report<P> {
    fn event(&self, e: &Event) -> bool;
    fn progress(&self, p: &P);
}

/// The CLI's callbacks, called on the thread that runs the job.
struct Here<'f, P> {
    progress: RefCell<&'f mut dyn FnMut(&P)>,
    event: RefCell<&'f mut dyn FnMut(&Event) -> bool>,
}

impl<P> Report<P> for Here<'_, P> {
    fn event(&self, e: &Event) -> bool {
        (self.event.borrow_mut())(e)
    }

    fn progress(&self, p: &P) {
        (self.progress.borrow_mut())(p)
    }
}

/// How a job's outcome reaches a window: a JSON result, or the error the job ended with.
pub trait JobOutcome {
    fn into_outcome(self) -> std::result::Result<serde_json::Value, ApiError>;
}

impl<T: Serialize> JobOutcome for Result<T> {
    fn into_outcome(self) -> std::result::Result<serde_json::Value, ApiError> {
        self.map(|v| serde_json::to_value(v).unwrap_or_default())
    }
}

#[derive(Default)]
pub struct Jobs {
    next_id: AtomicU64,
    jobs: Mutex<HashMap<u64, Arc<Job>>>,
}

impl Jobs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on a new thread; its outcome (result or error) ends the job.
    pub(crate) fn start<T, P>(&self, work: JobWork<T, P>) -> u64
    where
        T: JobOutcome + 'static,
        P: Serialize + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            kind: work.kind.to_string(),
            label: work.label,
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            state: Mutex::new(State {
                events: VecDeque::new(),
                first: 0,
                progress: serde_json::Value::Null,
                outcome: None,
            }),
            changed: Condvar::new(),
        });
        {
            let mut map = self.map();
            let finished: Vec<u64> = {
                let mut ids: Vec<u64> = map
                    .values()
                    .filter(|j| j.lock().outcome.is_some())
                    .map(|j| j.id)
                    .collect();
                ids.sort_unstable();
                let excess = ids.len().saturating_sub(KEEP_FINISHED);
                ids.truncate(excess);
                ids
            };
            for old in finished {
                map.remove(&old);
            }
            map.insert(id, job.clone());
        }
        let run = work.work;
        std::thread::spawn(move || {
            let ctx = JobCtx {
                stop: &job.stop,
                paused: Some(&job.paused),
                report: &*job,
            };
            let outcome = run(&ctx).into_outcome();
            job.lock().outcome = Some(outcome);
            job.changed.notify_all();
        });
        id
    }

    fn get(&self, id: u64) -> Result<Arc<Job>> {
        self.map()
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job {id}")))
    }

    /// Events after `after`, waiting up to `wait` for something new (an event, progress or
    /// the end) when there is nothing yet.
    pub fn poll(&self, id: u64, after: u64, wait: Duration) -> Result<JobUpdate> {
        let job = self.get(id)?;
        let deadline = Instant::now() + wait.min(Duration::from_secs(25));
        let mut s = job.lock();
        let seen_progress = s.progress.clone();
        loop {
            let end = s.first + s.events.len() as u64;
            if end > after || s.outcome.is_some() || s.progress != seen_progress {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = job
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let from = after.max(s.first);
        let skip = (from - s.first) as usize;
        let events: Vec<EventView> = s.events.iter().skip(skip).take(PAGE).cloned().collect();
        let next = from + events.len() as u64;
        Ok(JobUpdate {
            dropped: from - after.min(from),
            next,
            events,
            job: job.info(&s),
            result: match &s.outcome {
                Some(Ok(v)) => Some(v.clone()),
                _ => None,
            },
        })
    }

    /// Pushes a job's updates to `send` as they come (events in pages, progress, the outcome)
    /// from sequence number `after` on, until the job has ended and everything it produced
    /// went out (the last update is not running and has no events), or `send` returns false.
    pub fn watch(&self, id: u64, mut after: u64, send: impl Fn(JobUpdate) -> bool) -> Result<()> {
        let mut last_progress = None;
        loop {
            let u = self.poll(id, after, Duration::from_secs(1))?;
            let ended = !u.job.running && u.events.is_empty();
            // A poll that timed out with nothing new is not worth a message.
            let quiet = u.events.is_empty()
                && u.job.running
                && last_progress.as_ref() == Some(&u.job.progress);
            after = u.next;
            if quiet {
                continue;
            }
            last_progress = Some(u.job.progress.clone());
            if !send(u) || ended {
                return Ok(());
            }
        }
    }

    pub fn stop(&self, id: u64) -> Result<()> {
        let job = self.get(id)?;
        job.stop.store(true, Ordering::Relaxed);
        job.changed.notify_all();
        Ok(())
    }

    pub fn pause(&self, id: u64, paused: bool) -> Result<()> {
        self.get(id)?.paused.store(paused, Ordering::Relaxed);
        Ok(())
    }

    /// Stops every job and waits (up to `timeout`) until they have ended: a capture flushes
    /// what it read before it ends.
    pub fn shutdown(&self, timeout: Duration) {
        let jobs: Vec<Arc<Job>> = self.map().values().cloned().collect();
        for j in &jobs {
            j.stop.store(true, Ordering::Relaxed);
        }
        let deadline = Instant::now() + timeout;
        for j in jobs {
            let mut s = j.lock();
            while s.outcome.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                s = j
                    .changed
                    .wait_timeout(s, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }

    pub fn list(&self) -> Vec<JobInfo> {
        let mut out: Vec<JobInfo> = self.map().values().map(|j| j.info(&j.lock())).collect();
        out.sort_by_key(|j| j.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> Event {
        Event {
            id: n.to_string(),
            bus: sluice_model::Bus::Kafka,
            connection: "c".into(),
            source: "t".into(),
            partition: Some(0),
            offset: Some(n as i64),
            sub_offset: None,
            key: None,
            key_decoded: None,
            headers: Vec::new(),
            timestamp_us: None,
            captured_at_us: 0,
            payload: Vec::new(),
            size: 0,
            truncated: false,
            schema: None,
            encoding: sluice_model::Encoding::Text,
            decoded: None,
            payload_text: None,
            decode_error: None,
            properties: None,
        }
    }

    fn tail(n: u64, pause_at: Option<u64>) -> JobWork<Result<u64>> {
        JobWork::new("tail", "t".into(), move |job: &JobCtx<'_, ()>| {
            for i in 0..n {
                if !job.event(&event(i)) {
                    return Ok(i);
                }
                if Some(i) == pause_at {
                    // A quiet spell longer than one poll: nothing is sent for it.
                    std::thread::sleep(Duration::from_millis(1300));
                }
            }
            Ok(n)
        })
    }

    #[test]
    fn poll_pages_through_events_and_reports_the_outcome() {
        let jobs = Jobs::default();
        let id = jobs.start(tail(450, None));
        let mut after = 0;
        let mut seen = Vec::new();
        loop {
            let u = jobs.poll(id, after, Duration::from_secs(2)).unwrap();
            seen.extend(u.events.iter().map(|e| e.offset.unwrap()));
            assert!(u.events.len() <= PAGE);
            after = u.next;
            if !u.job.running && u.events.is_empty() {
                assert_eq!(u.result, Some(serde_json::json!(450)));
                break;
            }
        }
        assert_eq!(seen, (0..450).collect::<Vec<i64>>());
    }

    #[test]
    fn watch_streams_every_event_once_and_ends_with_the_job() {
        let jobs = Jobs::default();
        let id = jobs.start(tail(450, Some(300)));
        let updates = Mutex::new(Vec::new());
        jobs.watch(id, 0, |u| {
            updates.lock().unwrap().push(u);
            true
        })
        .unwrap();
        let updates = updates.into_inner().unwrap();
        let seen: Vec<i64> = updates
            .iter()
            .flat_map(|u| u.events.iter().map(|e| e.offset.unwrap()))
            .collect();
        assert_eq!(seen, (0..450).collect::<Vec<i64>>());
        assert!(updates[..updates.len() - 1]
            .iter()
            .all(|u| !u.events.is_empty()));
        let last = updates.last().unwrap();
        assert!(!last.job.running && last.events.is_empty());

        // A window that went away stops the stream at once.
        let sent = Mutex::new(0);
        jobs.watch(id, 0, |_| {
            *sent.lock().unwrap() += 1;
            false
        })
        .unwrap();
        assert_eq!(*sent.lock().unwrap(), 1);
    }

    #[test]
    fn a_slow_poller_is_told_how_many_events_it_missed() {
        let jobs = Jobs::default();
        let id = jobs.start(tail(BUFFER as u64 + 10, None));
        while jobs.list()[0].running {
            std::thread::sleep(Duration::from_millis(5));
        }
        let u = jobs.poll(id, 0, Duration::ZERO).unwrap();
        assert_eq!(u.dropped, 10);
        assert_eq!(u.events[0].offset, Some(10));
    }

    fn until_stopped() -> JobWork<Result<()>, u64> {
        JobWork::new("capture", "t".into(), |job: &JobCtx<'_, u64>| {
            let mut n = 0;
            while !job.stopped() {
                n += 1;
                job.progress(&n);
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(ApiError::new(ErrorCode::Bus, "stopped"))
        })
    }

    #[test]
    fn errors_and_stops_reach_the_poller() {
        let jobs = Jobs::default();
        let id = jobs.start(until_stopped());
        assert!(
            jobs.poll(id, 0, Duration::from_millis(20))
                .unwrap()
                .job
                .running
        );
        jobs.stop(id).unwrap();
        let mut u = jobs.poll(id, 0, Duration::from_secs(5)).unwrap();
        while u.job.running {
            u = jobs.poll(id, 0, Duration::from_secs(5)).unwrap();
        }
        assert_eq!(u.job.error.unwrap().message, "stopped");
        assert_eq!(
            jobs.poll(99, 0, Duration::ZERO).unwrap_err().code,
            ErrorCode::NotFound
        );
    }

    #[test]
    fn run_hands_every_event_and_report_to_the_caller_and_stops_on_its_flag() {
        // Every event, however slow the caller: nothing is buffered or dropped.
        let mut seen = Vec::new();
        let n =
            tail(BUFFER as u64 + 10, None).run(&AtomicBool::new(false), &mut |_| {}, &mut |e| {
                seen.push(e.offset.unwrap());
                true
            });
        assert_eq!(n.unwrap(), BUFFER as u64 + 10);
        assert_eq!(seen, (0..BUFFER as i64 + 10).collect::<Vec<i64>>());

        // A caller that wants no more ends the work.
        let n = tail(100, None).run(&AtomicBool::new(false), &mut |_| {}, &mut |e| {
            e.offset != Some(4)
        });
        assert_eq!(n.unwrap(), 4);

        // The caller's stop flag (its Ctrl-C) ends the work, which still gives its outcome.
        let stop = Arc::new(AtomicBool::new(false));
        let raise = stop.clone();
        let mut reports = 0;
        let out = until_stopped().run(
            &stop,
            &mut |_| {
                reports += 1;
                if reports == 3 {
                    raise.store(true, Ordering::Relaxed);
                }
            },
            &mut |_| true,
        );
        assert_eq!(out.unwrap_err().message, "stopped");
        assert_eq!(reports, 3);
    }
}
