//! `sluice tail` and `sluice capture`: the window's `tail_start` and `capture_start` jobs, run
//! here to their end. The read-mode flags become the window's `mode` names; the command gives
//! them their meaning.

use crate::{args, output, parse_from, stop_flag, TailFormat};
use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};
use sluice_api::Session;

/// How AMQP sources are read; Kafka ignores these.
#[derive(Args)]
pub(crate) struct AmqpReadArgs {
    /// AMQP: binding key for Sluice's own tap queue [default: # (all, on topic/fanout exchanges)]
    #[arg(long, value_name = "KEY")]
    binding_key: Option<String>,
    /// AMQP headers exchange: match messages whose header K is V (repeat for more)
    #[arg(long = "match", value_name = "K=V")]
    match_headers: Vec<String>,
    /// AMQP: read this existing queue instead of tapping an exchange; TAKES its messages
    #[arg(long, value_name = "QUEUE")]
    from_queue: Option<String>,
    /// With --from-queue: acknowledge (delete) messages once they are safely in the lake
    #[arg(long, requires = "from_queue", conflicts_with = "requeue")]
    destructive: bool,
    /// With --from-queue: give every message back afterwards (marked redelivered; order may change)
    #[arg(long, requires = "from_queue")]
    requeue: bool,
    /// With --from-queue: the queue is a stream, read by offset from --from (beginning = first,
    /// end = next, OFFSET, @TIME); takes nothing
    #[arg(long, requires = "from_queue", conflicts_with_all = ["destructive", "requeue"])]
    stream: bool,
    /// SQS: receive without deleting; messages are given back afterwards, but each receive
    /// raises their receive count (a low maxReceiveCount can move them to a dead-letter queue)
    #[arg(long, conflicts_with_all = ["drain", "from_queue"])]
    peek: bool,
    /// SQS: receive and delete, once the events are durably in the lake
    #[arg(long, conflicts_with = "from_queue")]
    drain: bool,
}

/// What the read flags say, in the terms of `ReadArgs`.
struct ReadFields {
    mode: &'static str,
    binding_key: Option<String>,
    match_headers: Vec<(String, String)>,
    /// The queue, in queue mode.
    sources: Vec<String>,
}

impl AmqpReadArgs {
    /// The read mode and the sources to read (the queue, in queue mode).
    fn fields(self, sources: Vec<String>) -> Result<ReadFields> {
        let mut match_headers = Vec::new();
        for m in &self.match_headers {
            let Some((k, v)) = m.split_once('=') else {
                anyhow::bail!("--match {m:?}: expected HEADER=VALUE");
            };
            match_headers.push((k.to_string(), v.to_string()));
        }
        if self.peek {
            eprintln!(
                "note: --peek hides each message while it is read and raises its receive count; \
                 with a low maxReceiveCount that can move messages to the dead-letter queue"
            );
        }
        let mode = match (&self.from_queue, self.destructive, self.requeue) {
            (None, _, _) if self.peek => "peek",
            (None, _, _) if self.drain => "drain",
            (None, _, _) => "tap",
            (Some(_), _, _) if self.stream => "stream",
            (Some(_), true, _) => "destructive",
            (Some(_), _, true) => "requeue",
            (Some(q), false, false) => anyhow::bail!(
                "--from-queue {q} takes messages from that queue: say what becomes of them with \
                 --destructive (deleted once captured) or --requeue (given back, marked redelivered); \
                 a stream queue is read without taking anything with --stream"
            ),
        };
        let sources = match self.from_queue {
            Some(q) => vec![q],
            None => sources,
        };
        Ok(ReadFields {
            mode,
            binding_key: self.binding_key,
            match_headers,
            sources,
        })
    }
}

impl ReadFields {
    /// `tail_start`'s and `capture_start`'s arguments, the window's `ReadArgs`.
    fn args(self, connection: String, from: String, max_messages: Option<u64>) -> Value {
        json!({
            "connection": connection,
            "sources": self.sources,
            "from": from,
            "mode": self.mode,
            "binding_key": self.binding_key,
            "match_headers": self.match_headers,
            "max_messages": max_messages,
        })
    }
}

#[derive(Args)]
pub(crate) struct CaptureArgs {
    name: String,
    /// Topics (Kafka), exchanges (AMQP), queues (SQS), streams or subjects (NATS), topic
    /// filters (MQTT), streams or pubsub:PATTERN (Redis)
    #[arg(required_unless_present_any = ["from_queue", "tables"])]
    topics: Vec<String>,
    /// PostgreSQL: the tables whose changes to capture (SCHEMA.TABLE or TABLE for public.TABLE)
    #[arg(long, value_delimiter = ',', value_name = "TABLE,..")]
    tables: Vec<String>,
    /// PostgreSQL: make Sluice's own replication slot and publication (sluice_NAME_DB) if missing
    #[arg(long)]
    create_slot: bool,
    /// PostgreSQL: drop Sluice's own slot and publication once everything read is stored
    #[arg(long)]
    drop_slot: bool,
    /// PostgreSQL: first read the tables' rows as of the new slot's start (needs --create-slot)
    #[arg(long, requires = "create_slot")]
    snapshot: bool,
    #[command(flatten)]
    amqp: AmqpReadArgs,
    /// beginning | end | last | OFFSET | @RFC3339 | -N (last N per partition)
    #[arg(long, default_value = "beginning", allow_hyphen_values = true)]
    from: String,
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop after this long, e.g. 30s, 5m
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// Stop when every partition reaches the end offset it had at the start
    #[arg(long)]
    stop_at_end: bool,
    /// Give up (keeping what was read, exit 1) when the bus answers nothing for this long
    #[arg(long, default_value = "30s")]
    broker_timeout: humantime::Duration,
    /// Also capture events that this lake replayed
    #[arg(long)]
    include_replays: bool,
    /// Payloads larger than this are stored cut and flagged `truncated`
    #[arg(long, default_value_t = sluice_api::DEFAULT_MAX_PAYLOAD_BYTES)]
    max_payload_bytes: usize,
    /// Store payloads without decoding them (encoding `undecoded`), the fastest capture;
    /// decode them later with `sluice schema redecode CONNECTION TOPIC`
    #[arg(long)]
    no_decode: bool,
    /// Print the final summary as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn tail(
    session: &Session,
    name: String,
    topic: Option<String>,
    amqp: AmqpReadArgs,
    from: String,
    max_messages: Option<u64>,
    format: TailFormat,
) -> Result<()> {
    parse_from(&from)?;
    let stop = stop_flag();
    let read = amqp.fields(topic.into_iter().collect())?;
    let work = session.tail_job(args("tail_start", read.args(name, from, max_messages))?)?;
    let mut out = std::io::stdout().lock();
    work.run(&stop, &mut |_| {}, &mut |e| {
        output::tail_event(&mut out, e, format == TailFormat::Jsonl)
    })?;
    Ok(())
}

pub(crate) fn capture(session: &Session, a: CaptureArgs) -> Result<()> {
    let mut topics = a.topics;
    topics.extend(a.tables);
    let read = a.amqp.fields(topics)?;
    parse_from(&a.from)?;
    let millis = |d: humantime::Duration| std::time::Duration::from(d).as_millis() as u64;
    let mut fields = read.args(a.name, a.from, a.max_messages);
    fields["create_slot"] = a.create_slot.into();
    fields["drop_slot"] = a.drop_slot.into();
    fields["snapshot"] = a.snapshot.into();
    fields["duration_ms"] = a.duration.map(millis).into();
    fields["stop_at_end"] = a.stop_at_end.into();
    fields["include_replays"] = a.include_replays.into();
    fields["max_payload_bytes"] = a.max_payload_bytes.into();
    fields["no_decode"] = a.no_decode.into();
    fields["broker_timeout_ms"] = millis(a.broker_timeout).into();
    run_capture(session, fields, a.json)
}

/// Runs a capture job to its end with a progress line, and prints its account. A capture
/// that listens (a collector) first prints where clients send and the token they need.
pub(crate) fn run_capture(session: &Session, fields: serde_json::Value, json: bool) -> Result<()> {
    let work = session.capture_job(args("capture_start", fields)?)?;
    let stop = stop_flag();
    let bar = output::Progress::new("capture");
    let mut told = false;
    let p = work.run(
        &stop,
        &mut |p| {
            if let (Some(l), false) = (&p.listening, told) {
                told = true;
                output::listening(&bar, l);
            }
            let secs = (p.elapsed_ms as f64 / 1000.0).max(0.001);
            bar.set(format!(
                "{} read, {} captured, {:.0} msg/s, {}",
                p.read,
                p.captured,
                p.read as f64 / secs,
                output::bytes(p.bytes)
            ))
        },
        &mut |_| true,
    )?;
    bar.finish();
    for n in &p.notes {
        eprintln!("note: {n}");
    }
    if json {
        output::json(&p);
    } else {
        let secs = (p.elapsed_ms as f64 / 1000.0).max(0.001);
        println!(
            "captured {} events ({} read, {}, {:.0} msg/s) into {}; {} decode errors, {} truncated, {} replays skipped, {} already in the lake; stopped by {}",
            p.captured,
            p.read,
            output::bytes(p.bytes),
            p.read as f64 / secs,
            session.sluice().lake_dir.display(),
            p.decode_errors,
            p.truncated,
            p.skipped_replays,
            p.skipped_duplicates,
            p.stopped_by.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}
