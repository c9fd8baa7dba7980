//! Rendering for people (tables, pretty tail, progress on a terminal) and for programs
//! (JSON, JSON lines).

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sluice_api::{event_json, ConnectionSummary, Event, ReplaySummary, SourceInfo, SqlResult};
use std::io::Write;
use std::time::Duration;

pub fn json<T: Serialize + ?Sized>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn jsonl(items: impl Iterator<Item = serde_json::Value>) {
    let mut out = std::io::stdout().lock();
    for v in items {
        if writeln!(out, "{v}").is_err() {
            return;
        }
    }
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "{}",
        line(headers.iter().map(|h| h.to_string()).collect())
    );
    for r in rows {
        if writeln!(out, "{}", line(r)).is_err() {
            return;
        }
    }
}

pub fn topics(topics: &[SourceInfo]) {
    for t in topics {
        if let Some(w) = &t.warning {
            eprintln!("warning: {}: {w}", t.name);
        }
    }
    if topics.iter().any(|t| t.kind.is_some()) {
        let n = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let rows = topics
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.kind.clone().unwrap_or_default(),
                    n(t.ready),
                    n(t.unacked),
                    n(t.consumers.or(t.delayed)),
                ]
            })
            .collect();
        return table(
            &[
                "NAME",
                "KIND",
                "READY/VISIBLE",
                "UNACKED/IN-FLIGHT",
                "CONSUMERS|DELAYED",
            ],
            rows,
        );
    }
    let rows = topics
        .iter()
        .map(|t| {
            let offsets = t
                .partitions
                .iter()
                .map(|p| format!("{}:{}-{}", p.id, p.low, p.high))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                t.messages().to_string(),
                offsets,
            ]
        })
        .collect();
    table(
        &[
            "TOPIC",
            "PARTITIONS",
            "MESSAGES",
            "OFFSETS (partition:low-high)",
        ],
        rows,
    );
}

pub fn connections(list: &[ConnectionSummary]) {
    let rows = list
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.bus.clone(),
                c.brokers.clone(),
                c.auth.clone(),
                if c.tls { "tls" } else { "-" }.into(),
                c.registry.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["NAME", "BUS", "BROKERS", "AUTH", "TLS", "REGISTRY"], rows);
}

/// One line for a payload: decoded JSON, text, or a byte count, cut to fit a terminal row.
fn summary(e: &Event, max: usize) -> String {
    let s = e
        .decoded
        .clone()
        .or_else(|| e.payload_text.clone())
        .unwrap_or_else(|| format!("<{} bytes>", e.size));
    let s = s.replace(['\n', '\r', '\t'], " ");
    let s = match &e.decode_error {
        Some(err) => format!("[decode error: {err}] {s}"),
        None => s,
    };
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

fn text_or_len(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "-".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if s.chars().count() <= 24 => s.replace(['\n', '\t'], " "),
            Ok(s) => format!("{}…", s.chars().take(23).collect::<String>()),
            Err(_) => format!("<{} bytes>", b.len()),
        },
    }
}

fn when(e: &Event) -> String {
    e.timestamp_us
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Where an event was on its bus: `partition@offset` (Kafka), or the routing key (AMQP).
fn place(e: &Event) -> String {
    if e.partition.is_none() && e.offset.is_none() {
        let rk = e
            .properties
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("routing_key")?.as_str().map(str::to_string));
        if let Some(rk) = rk {
            return format!("rk={rk}");
        }
    }
    format!(
        "{}@{}",
        e.partition.map(|p| p.to_string()).unwrap_or_default(),
        e.offset.map(|o| o.to_string()).unwrap_or_default()
    )
}

pub fn events_table(events: &[Event]) {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                when(e),
                format!("{}/{}", e.connection, e.source),
                place(e),
                text_or_len(&e.key),
                e.schema
                    .clone()
                    .unwrap_or_else(|| e.encoding.as_str().to_string()),
                summary(e, 100),
            ]
        })
        .collect();
    table(
        &[
            "TIME (UTC)",
            "SOURCE",
            "PART@OFFSET",
            "KEY",
            "TYPE",
            "PAYLOAD",
        ],
        rows,
    );
    eprintln!("{} event(s)", events.len());
}

pub fn sql_table(r: &SqlResult) {
    let headers: Vec<&str> = r.columns.iter().map(String::as_str).collect();
    let rows = r
        .rows
        .iter()
        .map(|row| {
            r.columns
                .iter()
                .map(|c| match row.get(c) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => "NULL".into(),
                    Some(v) => v.to_string(),
                })
                .collect()
        })
        .collect();
    if headers.is_empty() {
        println!("(no rows)");
    } else {
        table(&headers, rows);
    }
}

/// Prints one tailed event; false when stdout is gone (e.g. piped into `head`).
pub fn tail_event(out: &mut impl Write, e: &Event, jsonl: bool) -> bool {
    let r = if jsonl {
        writeln!(out, "{}", event_json(e))
    } else {
        let headers = if e.headers.is_empty() {
            String::new()
        } else {
            format!(" headers={}", sluice_api::headers_json(&e.headers))
        };
        writeln!(
            out,
            "{} {} {} key={}{}\n  {}",
            when(e),
            e.source,
            place(e),
            text_or_len(&e.key),
            headers,
            summary(e, 4000)
        )
    };
    r.and_then(|_| out.flush()).is_ok()
}

/// One line of a dry run; `origin` is where `--to-origin` would send the event.
pub fn plan_line(out: &mut impl Write, e: &Event, origin: Option<Result<String, String>>) {
    let to = match origin {
        Some(Ok(o)) => format!("  -> {o}"),
        Some(Err(why)) => format!("  -> cannot send: {why}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "{}  {}  key={}  {} bytes  {}{to}",
        when(e),
        e.id,
        text_or_len(&e.key),
        e.payload.len(),
        summary(e, 80)
    );
}

/// Reasons printed per kind; the counts stay exact, `--json` has up to a thousand.
const REASONS_SHOWN: usize = 20;

/// A replay's account, also after an error (`error`; `summary` is `None` when the replay
/// ended before sending anything). The line keeps the documented
/// `N sent, M failed of K matched in Ts` and adds the unknown and not-sent counts after it.
pub fn replay_account(
    dest: &str,
    summary: Option<&ReplaySummary>,
    error: Option<&str>,
    json: bool,
) {
    if json {
        let mut v = serde_json::to_value(summary.cloned().unwrap_or_default()).unwrap_or_default();
        v["destination"] = dest.into();
        v["error"] = error.into();
        println!("{v}");
        return;
    }
    let Some(s) = summary else {
        println!("replay to {dest} stopped before sending anything");
        return;
    };
    for (id, why) in s.errors.iter().take(REASONS_SHOWN) {
        eprintln!("failed: {id}: {why}");
    }
    for (id, why) in s.unknowns.iter().take(REASONS_SHOWN) {
        eprintln!("unknown: {id}: {why}");
    }
    println!("{}", replay_line(dest, s, error.is_some()));
}

fn replay_line(dest: &str, s: &ReplaySummary, errored: bool) -> String {
    format!(
        "replayed to {dest}: {} sent, {} failed of {} matched in {:.1}s; {} unknown, {} not sent{}",
        s.sent,
        s.failed,
        s.matched,
        s.elapsed_ms as f64 / 1000.0,
        s.unknown,
        s.not_sent,
        if errored {
            " (stopped by an error)"
        } else if s.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    )
}

/// A spinner line on a terminal; silent when stderr is not one.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(what: &str) -> Self {
        if !crate::is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    pub fn set(&self, msg: String) {
        if let Some(b) = &self.0 {
            b.set_message(msg);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }

    /// A line above the spinner (on standard error, like the spinner).
    pub fn say(&self, line: &str) {
        match &self.0 {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Where a collector listens, and the token its clients send, one line each.
pub fn listening(bar: &Progress, l: &sluice_api::Listening) {
    bar.say("listening for events (Ctrl-C stops, after storing what was accepted):");
    if let Some(h) = &l.http {
        bar.say(&format!("  http  POST {h}"));
    }
    if let Some(g) = &l.grpc {
        bar.say(&format!(
            "  grpc  {g} (sluice.collector.v1.Collector, protos/sluice/collector/v1/collector.proto)"
        ));
    }
    match &l.token {
        Some(t) => bar.say(&format!(
            "  token {t} (send Authorization: Bearer TOKEN; drawn for this run)"
        )),
        None => {
            bar.say("  token the connection's own, from the keyring (Authorization: Bearer TOKEN)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_line_keeps_the_documented_fields_and_adds_the_rest() {
        let s = ReplaySummary {
            matched: 20,
            sent: 12,
            failed: 1,
            unknown: 3,
            not_sent: 4,
            elapsed_ms: 1500,
            ..Default::default()
        };
        assert_eq!(
            replay_line("rmq:x", &s, true),
            "replayed to rmq:x: 12 sent, 1 failed of 20 matched in 1.5s; 3 unknown, 4 not sent (stopped by an error)"
        );
    }
}
