//! `sluice replay`: the window's `replay_plan` (`--dry-run`) and `replay_start` job, run here to
//! its end. The job records the replay in the history the window shows, as the window's does.

use crate::{args, output, stop_flag};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use sluice_api::Session;
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct ReplayFlags {
    filter: String,
    /// Destination: CONNECTION:TOPIC (Kafka), CONNECTION:EXCHANGE[/ROUTING_KEY] or
    /// CONNECTION:QUEUE (AMQP), CONNECTION:QUEUE (SQS), CONNECTION:SUBJECT (NATS),
    /// CONNECTION:TOPIC (MQTT), CONNECTION:STREAM or CONNECTION:pubsub:CHANNEL (Redis),
    /// CONNECTION[:PATH] (HTTP)
    #[arg(
        long,
        required_unless_present = "to_origin",
        conflicts_with = "to_origin"
    )]
    to: Option<String>,
    /// Send each event back where it came from: RabbitMQ's x-death, Kafka's
    /// x-original-topic / kafka_dlt-original-topic, or Sluice's sluice-source header
    #[arg(long)]
    to_origin: bool,
    /// Messages per second
    #[arg(long)]
    rate: Option<u32>,
    #[arg(long)]
    limit: Option<u64>,
    /// List what would be sent; send nothing
    #[arg(long)]
    dry_run: bool,
    /// Send to the same partition number as the source
    #[arg(long)]
    keep_partition: bool,
    /// Send these events as edited: `sluice search --format jsonl` lines (or a JSON array)
    /// with their `decoded` changed, or one bare decoded object when the filter matches
    /// one event. Re-encoded with each event's type and framing.
    #[arg(long, value_name = "FILE")]
    edit: Option<PathBuf>,
    /// Only these events within the filter: a file of event ids, one per line (`-` for
    /// standard input), e.g. `sluice search F --format jsonl | jq -r .id`; up to 100,000
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
    /// Print the account (sent, failed, unknown, not sent, reasons) as one JSON object
    #[arg(long)]
    json: bool,
    /// Give up on the destination when it answers nothing for this long: what is still
    /// unanswered then counts as failed (never sent) or unknown (sent, no answer)
    #[arg(long, default_value = "30s")]
    broker_timeout: humantime::Duration,
    /// MQTT: publish events that were retained as retained (never by default)
    #[arg(long)]
    retain: bool,
    /// Redis streams: write each entry with its original id (into an empty stream only)
    #[arg(long)]
    keep_ids: bool,
}

pub(crate) fn run(session: &Session, f: ReplayFlags) -> Result<()> {
    let edits = match &f.edit {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--edit {}", path.display()))?;
            sluice_api::parse_edits(&path.display().to_string(), &text)?
        }
        None => Vec::new(),
    };
    let ids: Vec<String> = match &f.ids {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("--ids -")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("--ids {}", path.display()))?
            };
            let ids: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if ids.is_empty() {
                bail!("--ids {}: no event ids in it", path.display());
            }
            ids
        }
        None => Vec::new(),
    };
    let to = f.to.unwrap_or_default();
    let dest = if f.to_origin {
        "their origins".to_string()
    } else {
        to.clone()
    };
    let fields = json!({
        "filter": f.filter,
        "ids": ids,
        "to": to,
        "to_origin": f.to_origin,
        "rate": f.rate,
        "limit": f.limit,
        "keep_partition": f.keep_partition,
        "edits": edits,
        "broker_timeout_ms": std::time::Duration::from(f.broker_timeout).as_millis() as u64,
        "retain": f.retain,
        "keep_ids": f.keep_ids,
    });
    if f.dry_run {
        let plan = args("replay_plan", fields)?;
        let mut out = std::io::stdout().lock();
        let mut redacted = 0u64;
        let n = session.replay_plan_each(&plan, &mut |e, origin| {
            redacted += u64::from(e.header(sluice_api::REDACTED_HEADER).is_some());
            output::plan_line(&mut out, e, origin)
        })?;
        println!("dry run: {n} events would be sent to {dest}; nothing was sent");
        if redacted > 0 {
            println!(
                "note: {redacted} of them were redacted at capture: their redacted values are sent as the lake holds them (see the sluice-redacted header)"
            );
        }
        return Ok(());
    }
    let work = session.replay_job(args("replay_start", fields)?)?;
    let stop = stop_flag();
    let bar = output::Progress::new("replay");
    let outcome = work.run(
        &stop,
        &mut |p| {
            bar.set(format!(
                "{} queued, {} sent, {} failed, {} unknown",
                p.queued, p.sent, p.failed, p.unknown
            ))
        },
        &mut |_| true,
    );
    bar.finish();
    // A replay that failed still has its account, reasons included.
    let (summary, error) = match outcome {
        Ok(s) => (Some(s), None),
        Err(failure) => (failure.summary.map(|s| *s), Some(failure.error)),
    };
    output::replay_account(
        &dest,
        summary.as_ref(),
        error.as_ref().map(|e| e.message.as_str()),
        f.json,
    );
    if let Some(e) = error {
        return Err(e.into());
    }
    let s = summary.unwrap_or_default();
    if s.failed + s.unknown + s.not_sent > 0 {
        let mut why = Vec::new();
        if s.unknown > 0 {
            // Some buses never answer (core NATS, MQTT QoS 0): the reasons above say which.
            why.push(format!(
                "{} unknown: sent, but {dest} did not confirm them (reasons above: no \
                 answer before its connection failed or --broker-timeout ({}) ran out, or \
                 a destination that never confirms); sending them again may duplicate them",
                s.unknown, f.broker_timeout
            ));
        }
        if s.failed > 0 {
            why.push(format!("{} failed (reasons above)", s.failed));
        }
        if s.not_sent > 0 {
            why.push(format!("{} not sent", s.not_sent));
        }
        // Stopped by hand, an event already matched may be left unsent: still say it was
        // the stop that ended the replay.
        bail!(
            "replay {}: {} of {} matched events are not known to have arrived: {}",
            if s.interrupted {
                "interrupted before every match was sent"
            } else {
                "incomplete"
            },
            s.failed + s.unknown + s.not_sent,
            s.matched,
            why.join("; ")
        );
    }
    if s.interrupted {
        bail!("replay interrupted before every match was sent");
    }
    Ok(())
}
