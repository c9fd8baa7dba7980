//! Reading a bus: tail (shows, stores nothing) and capture (into the lake).

use crate::capture::{
    self, CaptureOptions, CaptureProgress, EventBuilder, DEFAULT_MAX_PAYLOAD_BYTES,
};
use crate::error::{ApiError, ErrorCode, Result};
use crate::Sluice;
use sluice_bus::{QueueRead, ReadOptions};
use sluice_lake::Query;
use sluice_model::{Event, StartFrom};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

impl Sluice {
    /// Streams decoded events to `on_event` until `max` messages, the stop flag, or the
    /// callback returns false. Writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn tail(
        &self,
        connection: &str,
        topic: &str,
        from: StartFrom,
        read: &ReadOptions,
        max: Option<u64>,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<u64> {
        if read.queue == Some(QueueRead::Destructive) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "tail stores nothing, so it never deletes messages: use --requeue or --peek (or capture with --destructive or --drain)",
            ));
        }
        let connector = self.connector(connection)?;
        let topics = vec![sluice_bus::conventions(connector.bus()).source_name(topic)];
        let builder = self.event_builder(connection, &topics, DEFAULT_MAX_PAYLOAD_BYTES)?;
        if sluice_bus::capabilities(connector.bus()).listens {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a collector's clients wait until their events are stored, and tail stores nothing: capture it instead (sluice collect, or sluice capture CONNECTION)",
            ));
        }
        let mut reader = connector.reader(&topics, from, read)?;
        let mut n = 0;
        'reading: while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let batch = reader.poll(1000, Duration::from_millis(200))?;
            if let Some(t) = reader
                .trouble()
                .filter(|t| t.lasted(capture::DEFAULT_BROKER_TIMEOUT))
            {
                return Err(t.unreachable(|s| format!("no answer for {s} s")).into());
            }
            let now = sluice_model::now_us();
            for msg in batch {
                n += 1;
                if !on_event(&builder.build(msg, now)) || max.is_some_and(|m| n >= m) {
                    break 'reading;
                }
            }
        }
        // Nothing was stored: a queue read gives every message back.
        reader.commit(0)?;
        Ok(n)
    }

    pub fn capture(
        &self,
        connection: &str,
        opts: &CaptureOptions,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&CaptureProgress),
    ) -> Result<CaptureProgress> {
        let connector = self.connector(connection)?;
        let caps = sluice_bus::capabilities(connector.bus());
        if opts.sources.is_empty() && !caps.listens {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "name at least one topic to capture",
            ));
        }
        let conventions = sluice_bus::conventions(connector.bus());
        let mut opts = CaptureOptions {
            // As the lake stores them, so positions and duplicates are found (`orders` read
            // from PostgreSQL is stored as `public.orders`).
            sources: opts
                .sources
                .iter()
                .map(|s| conventions.source_name(s))
                .collect(),
            ..opts.clone()
        };
        if caps.listens {
            // Clients wait for their events to be durable: write every 20 ms rather than 500
            // (files stay few while the rows of many requests share each one).
            opts.flush.max_age = Duration::from_millis(20);
            // A client that heard 2xx must find its bytes whole: the collector's body limit
            // (413) bounds payloads instead of the cut that marks a bus's large messages.
            opts.max_payload_bytes = usize::MAX;
        }
        let opts = &opts;
        // A collector's sources are whatever clients name: decoders for every source mapped
        // on the connection (others are sniffed).
        let decoded = if caps.listens {
            self.mappings()?
                .into_iter()
                .filter(|m| m.connection == connection)
                .map(|m| m.topic)
                .collect()
        } else {
            opts.sources.clone()
        };
        if !opts.decode && self.redacts_at_capture(connection)? {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{connection} has redaction rules, which need decoding: capture without --no-decode (sluice redact list)"
                ),
            ));
        }
        let build = || -> Result<EventBuilder> {
            let b = self.event_builder(connection, &decoded, opts.max_payload_bytes)?;
            Ok(EventBuilder {
                decode: opts.decode,
                ..b
            })
        };
        let builder = build()?;
        if opts.stop_at_end && !caps.ends {
            let kind = sluice_bus::conventions(connector.bus()).kind();
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{} keeps no history, so a read never reaches an end: stop with --max-messages or --duration instead of --stop-at-end",
                    kind.label
                ),
            ));
        }
        let lake = self.lake()?;
        let query = Query::open(&lake)?;
        let mut covered = HashMap::new();
        for t in &opts.sources {
            covered.insert(t.clone(), query.covered(connection, t)?);
        }
        // A queue's messages have no positions, but may come again; a position of two numbers
        // without partitions (a Redis entry id) is known by the id it derives: skip those kept.
        let mut known = std::collections::HashSet::new();
        if matches!(
            opts.read.queue,
            Some(QueueRead::Destructive | QueueRead::Requeue)
        ) || (caps.positions && !caps.partitions)
        {
            for t in &opts.sources {
                known.extend(query.ids_without_position(connection, t)?);
            }
        }
        // Clients send again what they were not sure arrived: the lake's events of the
        // connection that carry a client's id are skipped.
        if caps.listens {
            known.extend(query.client_ids(connection)?);
        }
        drop(query);
        // Only now: a collector takes clients' events from the moment it listens.
        let reader = connector.reader(&opts.sources, opts.from, &opts.read)?;
        let mut seen = self.decoding_fingerprint();
        let mut rebuild = || {
            let now = self.decoding_fingerprint();
            if now == seen {
                return None;
            }
            seen = now;
            build().ok()
        };
        Ok(sluice_capture::run_capture(
            reader,
            builder,
            &mut rebuild,
            &lake,
            covered,
            &known,
            opts,
            stop,
            on_progress,
        )?)
    }
}
