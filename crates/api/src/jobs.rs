//! Long work started from a window (tail, capture, replay, re-decoding) runs on its own thread as a job.
//! The host asks for what is new with `job_poll`, which waits until something arrives, or has
//! it pushed with `watch` (the desktop app's channel): live events and progress travel in
//! batches, never one message per event, and a job outlives the view that started it
//! (captures keep running while the user looks elsewhere).

use crate::error::{ApiError, ErrorCode, Result};
use crate::render::EventView;
use serde::Serialize;
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

pub struct Job {
    id: u64,
    kind: String,
    label: String,
    pub(crate) stop: AtomicBool,
    pub(crate) paused: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push_event(&self, e: EventView) {
        let mut s = self.lock();
        s.events.push_back(e);
        if s.events.len() > BUFFER {
            s.events.pop_front();
            s.first += 1;
        }
        drop(s);
        self.changed.notify_all();
    }

    pub(crate) fn set_progress(&self, p: impl Serialize) {
        self.lock().progress = serde_json::to_value(p).unwrap_or_default();
        self.changed.notify_all();
    }

    /// Blocks while the job is paused (and not stopped): pausing a replay holds its sender.
    pub(crate) fn wait_while_paused(&self) {
        while self.paused.load(Ordering::Relaxed) && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
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

#[derive(Default)]
pub struct Jobs {
    next_id: AtomicU64,
    jobs: Mutex<HashMap<u64, Arc<Job>>>,
}

impl Jobs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on a new thread; its result (or error) becomes the job's outcome.
    pub(crate) fn start<T: Serialize>(
        &self,
        kind: &str,
        label: String,
        work: impl FnOnce(&Job) -> Result<T> + Send + 'static,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            id,
            kind: kind.to_string(),
            label,
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
        std::thread::spawn(move || {
            let outcome = work(&job).map(|v| serde_json::to_value(v).unwrap_or_default());
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

    fn event(n: u64) -> EventView {
        EventView {
            id: n.to_string(),
            bus: "kafka".into(),
            connection: "c".into(),
            source: "t".into(),
            partition: Some(0),
            offset: Some(n as i64),
            timestamp: None,
            timestamp_us: None,
            captured_at: String::new(),
            key: None,
            key_text: None,
            key_decoded: serde_json::Value::Null,
            headers: serde_json::Value::Null,
            schema: None,
            encoding: "text".into(),
            decoded: serde_json::Value::Null,
            decode_error: None,
            payload: String::new(),
            payload_text: None,
            size: 0,
            truncated: false,
            properties: serde_json::Value::Null,
        }
    }

    #[test]
    fn poll_pages_through_events_and_reports_the_outcome() {
        let jobs = Jobs::default();
        let id = jobs.start("tail", "t".into(), |job| {
            for n in 0..450 {
                job.push_event(event(n));
            }
            Ok(450u64)
        });
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
        let id = jobs.start("tail", "t".into(), |job| {
            for n in 0..450 {
                job.push_event(event(n));
                if n == 300 {
                    // A quiet spell longer than one poll: nothing is sent for it.
                    std::thread::sleep(Duration::from_millis(1300));
                }
            }
            Ok(())
        });
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
        let id = jobs.start("tail", "t".into(), |job| {
            for n in 0..(BUFFER as u64 + 10) {
                job.push_event(event(n));
            }
            Ok(())
        });
        while jobs.list()[0].running {
            std::thread::sleep(Duration::from_millis(5));
        }
        let u = jobs.poll(id, 0, Duration::ZERO).unwrap();
        assert_eq!(u.dropped, 10);
        assert_eq!(u.events[0].offset, Some(10));
    }

    #[test]
    fn errors_and_stops_reach_the_poller() {
        let jobs = Jobs::default();
        let id = jobs.start("capture", "t".into(), |job| -> Result<()> {
            while !job.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(ApiError::new(ErrorCode::Bus, "stopped"))
        });
        assert!(
            jobs.poll(id, 0, Duration::from_millis(20))
                .unwrap()
                .job
                .running
        );
        jobs.stop(id).unwrap();
        let u = jobs.poll(id, 0, Duration::from_secs(5)).unwrap();
        let u = if u.job.running {
            jobs.poll(id, 0, Duration::from_secs(5)).unwrap()
        } else {
            u
        };
        assert_eq!(u.job.error.unwrap().message, "stopped");
        assert_eq!(
            jobs.poll(99, 0, Duration::ZERO).unwrap_err().code,
            ErrorCode::NotFound
        );
    }
}
