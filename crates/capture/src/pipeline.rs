//! The capture loop: a polling thread hands batches to this one, which skips what the lake
//! holds, decodes, pushes rows to the lake writer, and tells the polling thread how many of
//! the messages read are durable so the reader may acknowledge them.

use crate::{is_own_replay, CaptureError, CaptureOptions, CaptureProgress, EventBuilder};
use sluice_bus::{BusError, Reader};
use sluice_lake::{Covered, Lake, LakeWriter};
use sluice_model::{now_us, Message};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::{Duration, Instant};

enum Batch {
    Messages(Vec<Message>),
    End,
    Failed(BusError),
}

/// How often a running capture asks whether mappings or schemas changed.
const DECODER_CHECK: Duration = Duration::from_secs(1);

/// Reads `reader` into `lake` until `opts` or `stop` ends it, and returns the exact account.
/// `rebuild` is asked about once a second for new decoders (a mapping or schema changed);
/// `covered` (positions) and `known` (ids of position-less messages) are what the lake
/// already holds, skipped as duplicates. An error while reading comes back as
/// `CaptureError::Stopped` with the account; a failed last flush as `NotWritten`; a failed
/// final commit (everything read is durable by then) as `Bus`.
#[allow(clippy::too_many_arguments)]
pub fn run_capture(
    mut reader: Box<dyn Reader>,
    mut builder: EventBuilder,
    rebuild: &mut dyn FnMut() -> Option<EventBuilder>,
    lake: &Lake,
    covered: HashMap<String, Covered>,
    known: &HashSet<String>,
    opts: &CaptureOptions,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&CaptureProgress),
) -> Result<CaptureProgress, CaptureError> {
    let start = Instant::now();
    let mut writer = LakeWriter::new(lake.clone(), opts.flush);
    let mut p = CaptureProgress {
        listening: reader.listening(),
        ..CaptureProgress::default()
    };
    // How often buffered rows are checked for age and finished writes collected: a quarter
    // of the flush age, so a collector's clients (20 ms) hear about their events soon after
    // they are written, and a bus capture (500 ms) wakes no more than before.
    if p.listening.is_some() {
        // Clients can send from now on: say where at once.
        on_progress(&p);
    }
    let tick = (opts.flush.max_age / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
    let reader_stop = AtomicBool::new(false);
    // Messages (counted as `read`) whose events are durable: the polling thread lets the
    // reader delete them from a queue while reading goes on.
    let durable = AtomicU64::new(0);
    let stop_at_end = opts.stop_at_end;
    let broker_timeout = opts.broker_timeout;
    // Per batch: events pushed to the writer and messages read once it was handled, so a
    // count of durable events maps back to the messages behind them.
    let mut checkpoints: VecDeque<(u64, u64)> = Default::default();
    let mut pushed = 0u64;
    let (tx, rx) = sync_channel::<Batch>(32);

    let result = std::thread::scope(|s| {
        let reader_stop = &reader_stop;
        let durable = &durable;
        let polling = s.spawn(move || {
            let mut acknowledged = 0;
            let mut ack_failed: Option<Instant> = None;
            loop {
                if reader_stop.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    break;
                }
                let now_durable = durable.load(Ordering::Acquire);
                // A failed acknowledgement is tried again (once a second): the messages are
                // safe in the lake, and a bus that stays away is the broker timeout's to judge.
                let retry_due = ack_failed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if now_durable > acknowledged && retry_due {
                    match reader.acknowledge(now_durable) {
                        Ok(()) => {
                            acknowledged = now_durable;
                            ack_failed = None;
                        }
                        Err(e) => {
                            tracing::debug!("acknowledging durable messages: {e}");
                            ack_failed = Some(Instant::now());
                        }
                    }
                }
                if let Some(t) = reader.trouble().filter(|t| t.lasted(broker_timeout)) {
                    let e = t.unreachable(|s| format!("no answer for {s} s (--broker-timeout)"));
                    let _ = tx.send(Batch::Failed(e));
                    break;
                }
                if stop_at_end && reader.at_end() {
                    let _ = tx.send(Batch::End);
                    break;
                }
                match reader.poll(10_000, Duration::from_millis(100)) {
                    Ok(b) if b.is_empty() => {}
                    Ok(b) => {
                        if tx.send(Batch::Messages(b)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Batch::Failed(e));
                        break;
                    }
                }
            }
            reader
        });

        let mut last_report = Instant::now();
        let mut last_check = Instant::now();
        let outcome: Result<(), CaptureError> = loop {
            // A mapping or schema changed while capturing: decode what comes next with it.
            if last_check.elapsed() >= DECODER_CHECK {
                last_check = Instant::now();
                if let Some(b) = rebuild() {
                    builder = b;
                }
            }
            if stop.load(Ordering::Relaxed) {
                p.stopped_by = Some("interrupted".into());
                break Ok(());
            }
            if opts.duration.is_some_and(|d| start.elapsed() >= d) {
                p.stopped_by = Some("duration".into());
                break Ok(());
            }
            match rx.recv_timeout(tick) {
                Ok(Batch::Messages(batch)) => {
                    let captured_at = now_us();
                    let mut write_err = None;
                    let mut fresh = Vec::with_capacity(batch.len());
                    for msg in batch {
                        if opts.max_messages.is_some_and(|m| p.read >= m) {
                            break;
                        }
                        p.read += 1;
                        p.bytes += msg.payload.len() as u64;
                        if !opts.include_replays && is_own_replay(&msg, lake.id()) {
                            p.skipped_replays += 1;
                            continue;
                        }
                        let kept = match (msg.partition, msg.offset, &msg.id) {
                            (_, _, Some(id)) if known.contains(id) => true,
                            (Some(part), Some(off), _) => covered
                                .get(&msg.source)
                                .is_some_and(|c| c.contains(part, off)),
                            (_, _, Some(_)) => false,
                            // A position without partitions (a Redis entry id): its id is
                            // derived from it, and the lake knows it by that id.
                            (None, Some(_), None) => {
                                !known.is_empty() && known.contains(&builder.id_of(&msg))
                            }
                            _ => false,
                        };
                        if kept {
                            p.skipped_duplicates += 1;
                            continue;
                        }
                        fresh.push(msg);
                    }
                    // Decoding is most of a capture's work: all cores share it while the
                    // polling thread fetches the next batch; rows go to the lake in order.
                    let decoded = builder.decode_all(&mut fresh);
                    for (msg, parts) in fresh.iter().zip(&decoded) {
                        p.decode_errors += u64::from(parts.failed());
                        p.truncated += u64::from(parts.truncated());
                        pushed += 1;
                        match writer.push_ref(&builder.row(msg, parts, captured_at)) {
                            Ok(Some(f)) => p.flushed(f),
                            Ok(None) => {}
                            Err(e) => {
                                write_err = Some(e);
                                break;
                            }
                        }
                    }
                    checkpoints.push_back((pushed, p.read));
                    if let Some(e) = write_err {
                        break Err(e.into());
                    }
                    if opts.max_messages.is_some_and(|m| p.read >= m) {
                        p.stopped_by = Some("max-messages".into());
                        break Ok(());
                    }
                }
                Ok(Batch::End) => {
                    p.stopped_by = Some("end".into());
                    break Ok(());
                }
                Ok(Batch::Failed(e)) => break Err(e.into()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    p.stopped_by.get_or_insert_with(|| "interrupted".into());
                    break Ok(());
                }
            }
            match writer.flush_if_due() {
                Ok(Some(f)) => p.flushed(f),
                Ok(None) => {}
                Err(e) => break Err(e.into()),
            }
            // The writer makes events durable in the order they were pushed.
            let mut upto = None;
            while checkpoints
                .front()
                .is_some_and(|&(rows, _)| rows <= p.captured)
            {
                upto = checkpoints.pop_front().map(|(_, read)| read);
            }
            if let Some(read) = upto {
                durable.store(read, Ordering::Release);
            }
            if last_report.elapsed() >= Duration::from_millis(200) {
                p.elapsed_ms = start.elapsed().as_millis() as u64;
                on_progress(&p);
                last_report = Instant::now();
            }
        };
        reader_stop.store(true, Ordering::Relaxed);
        drop(rx);
        (outcome, polling.join().ok())
    });
    let (result, mut reader) = result;

    // Whatever happened, make what was read durable before reporting.
    let flushed = writer.flush();
    if let Ok(f) = &flushed {
        p.flushed(*f);
    }
    p.elapsed_ms = start.elapsed().as_millis() as u64;
    on_progress(&p);
    // Stopped by hand while the bus was not answering: that is not a clean end either.
    let trouble = reader.as_ref().and_then(|r| r.trouble());
    let result = result.and_then(|()| match trouble {
        Some(t) if p.stopped_by.as_deref() == Some("interrupted") => Err(t
            .unreachable(|s| format!("stopped while it had not answered for {s} s"))
            .into()),
        _ => Ok(()),
    });
    // A capture that fails still says exactly what it kept.
    let kept = |cause: CaptureError| CaptureError::Stopped {
        cause: Box::new(cause),
        progress: Box::new(p.clone()),
        not_written: writer.buffered(),
    };
    if result.is_err() && flushed.is_ok() {
        // Every message read is durable now (or was skipped as already kept): a reader that
        // takes messages deletes them even though the capture failed, so a later read does
        // not find them again. Best effort: the bus may be what failed.
        if let Some(r) = reader.as_mut() {
            if let Err(e) = r.acknowledge(p.read) {
                tracing::warn!("acknowledging what was captured: {e}");
            }
        }
    }
    result.map_err(kept)?;
    flushed.map_err(|error| CaptureError::NotWritten {
        error,
        not_written: writer.buffered(),
    })?;
    // Only now, with every handled message durable, may a destructive reader delete them.
    if let Some(mut reader) = reader {
        reader.commit(p.read)?;
        p.notes = reader.notes();
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::{Bus, Header};
    use std::sync::{Arc, Mutex};

    /// A bus that hands out the batches it was given, then says it is at the end, and
    /// records what it was told is durable.
    struct Scripted {
        batches: VecDeque<Result<Vec<Message>, BusError>>,
        told: Arc<Mutex<Vec<String>>>,
    }

    impl Reader for Scripted {
        fn poll(&mut self, _max: usize, _timeout: Duration) -> Result<Vec<Message>, BusError> {
            self.batches.pop_front().unwrap_or(Ok(Vec::new()))
        }
        fn at_end(&self) -> bool {
            self.batches.is_empty()
        }
        fn commit(&mut self, handled: u64) -> Result<(), BusError> {
            self.told.lock().unwrap().push(format!("commit {handled}"));
            Ok(())
        }
        fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
            self.told
                .lock()
                .unwrap()
                .push(format!("acknowledge {durable}"));
            Ok(())
        }
    }

    fn message(offset: i64) -> Message {
        Message {
            id: None,
            source: "orders".into(),
            partition: Some(0),
            offset: Some(offset),
            sub_offset: None,
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: format!("{{\"n\":{offset}}}").into_bytes(),
            properties: None,
        }
    }

    fn builder() -> EventBuilder {
        EventBuilder {
            connection: "local".into(),
            bus: Bus::Kafka,
            decoders: HashMap::new(),
            max_payload_bytes: 1 << 20,
            decode: true,
            redact: None,
        }
    }

    fn capture(
        batches: Vec<Result<Vec<Message>, BusError>>,
        known: &HashSet<String>,
        opts: &CaptureOptions,
        lake: &Lake,
    ) -> (Result<CaptureProgress, CaptureError>, Vec<String>) {
        let told = Arc::new(Mutex::new(Vec::new()));
        let reader = Scripted {
            batches: batches.into(),
            told: told.clone(),
        };
        let out = run_capture(
            Box::new(reader),
            builder(),
            &mut || None,
            lake,
            HashMap::new(),
            known,
            opts,
            &AtomicBool::new(false),
            &mut |_| {},
        );
        let told = told.lock().unwrap().clone();
        (out, told)
    }

    /// Every message read is counted once: captured, skipped as this lake's own replay, or
    /// skipped as already kept; all of them are handed back as handled at the end.
    #[test]
    fn every_message_read_is_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let mut replayed = message(3);
        replayed.headers.push(Header {
            key: sluice_replay::REPLAY_ID_HEADER.into(),
            value: Some(format!("{}:r1", lake.id()).into_bytes()),
        });
        let mut kept = message(4);
        kept.id = Some("seen".into());
        let batches = vec![
            Ok(vec![message(0), message(1)]),
            Ok(vec![message(2), replayed, kept]),
        ];
        let opts = CaptureOptions {
            sources: vec!["orders".into()],
            stop_at_end: true,
            ..CaptureOptions::default()
        };
        let known = HashSet::from(["seen".to_string()]);
        let (out, told) = capture(batches, &known, &opts, &lake);
        let p = out.unwrap();
        assert_eq!(
            (p.read, p.captured, p.skipped_replays, p.skipped_duplicates),
            (5, 3, 1, 1)
        );
        assert_eq!(p.stopped_by.as_deref(), Some("end"));
        assert_eq!(told.last().map(String::as_str), Some("commit 5"));
    }

    /// A position of two numbers without partitions (a Redis entry id) is known by the id it
    /// derives: a re-capture skips the entries the lake holds and keeps the new ones.
    #[test]
    fn two_part_positions_are_skipped_by_their_derived_id() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let entry = |seq| Message {
            partition: None,
            offset: Some(1_700_000_000_000),
            sub_offset: Some(seq),
            ..message(0)
        };
        let opts = CaptureOptions {
            sources: vec!["orders".into()],
            stop_at_end: true,
            ..CaptureOptions::default()
        };
        let known = HashSet::from([builder().id_of(&entry(1))]);
        assert_eq!(
            known.iter().next().unwrap(),
            "kafka:local/orders//1700000000000-1"
        );
        let batches = vec![Ok(vec![entry(0), entry(1), entry(2)])];
        let (out, _) = capture(batches, &known, &opts, &lake);
        let p = out.unwrap();
        assert_eq!((p.read, p.captured, p.skipped_duplicates), (3, 2, 1));
    }

    #[test]
    fn a_message_count_stops_mid_batch() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let opts = CaptureOptions {
            sources: vec!["orders".into()],
            max_messages: Some(4),
            ..CaptureOptions::default()
        };
        let batch = (0..10).map(message).collect();
        let (out, told) = capture(vec![Ok(batch)], &HashSet::new(), &opts, &lake);
        let p = out.unwrap();
        assert_eq!((p.read, p.captured), (4, 4));
        assert_eq!(p.stopped_by.as_deref(), Some("max-messages"));
        assert_eq!(told.last().map(String::as_str), Some("commit 4"));
    }

    /// A bus that fails after a batch: what was read is durable and acknowledged (so a queue
    /// does not hand it out again), never committed, and the error says what was kept.
    #[test]
    fn a_failed_capture_keeps_and_acknowledges_what_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let opts = CaptureOptions {
            sources: vec!["orders".into()],
            ..CaptureOptions::default()
        };
        let gone = || BusError::Unreachable {
            what: "kafka".into(),
            reason: "connection refused".into(),
        };
        let batches = vec![Ok((0..3).map(message).collect()), Err(gone())];
        let (out, told) = capture(batches, &HashSet::new(), &opts, &lake);
        let e = out.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}; captured 3 events into the lake before stopping (3 read)",
                gone()
            )
        );
        let CaptureError::Stopped {
            cause, not_written, ..
        } = e
        else {
            panic!("a read that failed is Stopped: {e:?}")
        };
        assert!(matches!(
            *cause,
            CaptureError::Bus(BusError::Unreachable { .. })
        ));
        assert_eq!(not_written, 0);
        assert_eq!(told.last().map(String::as_str), Some("acknowledge 3"));
        assert!(!told.iter().any(|t| t.starts_with("commit")), "{told:?}");
    }
}
