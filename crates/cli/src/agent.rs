//! `sluice agent --config agent.toml`: captures run as a long-lived service. Each `[[capture]]`
//! of the file is the `capture_start` command's arguments; a capture that fails (a broker gone
//! past its timeout, say) is started again after a backoff of 1 s doubling to 60 s, from the
//! beginning of what the bus still holds, skipping what the lake has (so nothing is doubled).
//! Logs are JSON lines on stderr; `/healthz` and `/metrics` answer on `metrics` (default
//! 127.0.0.1:9464). SIGINT and SIGTERM stop every capture, which flush what they read, and the
//! agent exits 0.

use crate::{args, stop_flag};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::json;
use sluice_api::{CaptureProgress, Session};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    /// Where /healthz and /metrics answer (`HOST:PORT`; port 0 picks one).
    #[serde(default)]
    metrics: Option<String>,
    /// The config folder (connections, mappings, schemas): `--config` names this file here,
    /// so the folder is said here or by `SLUICE_CONFIG`.
    #[serde(default)]
    config_dir: Option<PathBuf>,
    #[serde(default)]
    lake: Option<PathBuf>,
    #[serde(default, rename = "capture")]
    captures: Vec<toml::Table>,
}

/// One capture's running account, across its restarts.
#[derive(Default, Clone)]
struct Stats {
    state: &'static str,
    /// Totals of the runs that ended.
    done: CaptureProgress,
    /// The run going on.
    now: CaptureProgress,
    restarts: u64,
    errors: u64,
    last_error: Option<String>,
}

impl Stats {
    fn total(&self, f: impl Fn(&CaptureProgress) -> u64) -> u64 {
        f(&self.done) + f(&self.now)
    }
}

fn log(level: &str, capture: &str, event: &str, extra: serde_json::Value) {
    let mut line = json!({
        "ts": sluice_model::format_us(sluice_model::now_us()),
        "level": level,
        "capture": capture,
        "event": event,
    });
    if let (Some(m), serde_json::Value::Object(e)) = (line.as_object_mut(), extra) {
        m.extend(e);
    }
    eprintln!("{line}");
}

type Captures = Vec<(String, serde_json::Value)>;

fn load(path: &Path) -> Result<(AgentFile, Captures)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut file: AgentFile = toml::from_str(&text)
        .map_err(|e| anyhow!("{}: {}", path.display(), e.to_string().trim()))?;
    if file.captures.is_empty() {
        bail!(
            "{}: no [[capture]] tables: add one with connection = \"NAME\" and sources = [\"TOPIC\"]",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (i, mut t) in std::mem::take(&mut file.captures).into_iter().enumerate() {
        let name = match t.remove("name") {
            Some(toml::Value::String(n)) => n,
            Some(_) => bail!("{}: capture {}: name is text", path.display(), i + 1),
            None => format!(
                "{}:{}",
                t.get("connection").and_then(|v| v.as_str()).unwrap_or("?"),
                t.get("sources")
                    .and_then(|v| v.as_array())
                    .map(|s| s
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default()
            ),
        };
        if out.iter().any(|(n, _)| *n == name) {
            bail!("{}: two captures are named {name:?}", path.display());
        }
        out.push((name, serde_json::to_value(&t)?));
    }
    Ok((file, out))
}

pub(crate) fn run(session: Session, config: PathBuf) -> Result<()> {
    let (file, captures) = load(&config)?;
    let metrics = file.metrics;
    let session = match (file.config_dir, file.lake) {
        (None, None) => session,
        (c, l) => {
            let now = session.sluice();
            Session::new(sluice_api::Sluice::new(
                Some(c.unwrap_or(now.config_dir)),
                Some(l.unwrap_or(now.lake_dir)),
            )?)
        }
    };
    let session = Arc::new(session);
    // Every capture's arguments, connection and sources are checked before any starts: a
    // typo fails now, not at 3 a.m.
    for (name, fields) in &captures {
        let connection = fields.get("connection").cloned().unwrap_or_default();
        args("capture_start", fields.clone())
            .and_then(|a| Ok(session.capture_job(a)?))
            .and_then(|_| Ok(session.call("connection_get", json!({ "name": connection }))?))
            .map_err(|e| anyhow!("{}: capture {name:?}: {e}", config.display()))
            .map(drop)?;
    }
    let stop = stop_flag();
    let stats: Arc<Mutex<BTreeMap<String, Stats>>> = Arc::default();
    let started = Instant::now();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let addr: std::net::SocketAddr = metrics
        .as_deref()
        .unwrap_or("127.0.0.1:9464")
        .parse()
        .map_err(|e| {
            anyhow!(
                "{}: metrics: {e} (write it like 127.0.0.1:9464)",
                config.display()
            )
        })?;
    let render: sluice_serve::status::Render = {
        let stats = stats.clone();
        Arc::new(move || render(&stats.lock().unwrap_or_else(|p| p.into_inner()), started))
    };
    let server_stop = stop.clone();
    let (bound, server) = rt.block_on(sluice_serve::status::bind_status(
        addr,
        render,
        async move {
            while !server_stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    ))?;
    log(
        "info",
        "",
        "listening",
        json!({"health": format!("http://{bound}/healthz"), "metrics": format!("http://{bound}/metrics")}),
    );
    println!("sluice agent: health on http://{bound}/healthz, metrics on http://{bound}/metrics");
    use std::io::Write;
    std::io::stdout().flush()?;

    let workers: Vec<_> = captures
        .into_iter()
        .map(|(name, fields)| {
            let (session, stop, stats) = (session.clone(), stop.clone(), stats.clone());
            stats.lock().unwrap_or_else(|p| p.into_inner()).insert(
                name.clone(),
                Stats {
                    state: "starting",
                    ..Stats::default()
                },
            );
            std::thread::spawn(move || supervise(&session, &name, fields, &stop, &stats))
        })
        .collect();
    let all_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (all_done, stop) = (all_done.clone(), stop.clone());
        std::thread::spawn(move || {
            for w in workers {
                let _ = w.join();
            }
            all_done.store(true, Ordering::SeqCst);
            // Every capture ended by itself: the endpoint goes too.
            stop.store(true, Ordering::SeqCst);
        })
    };
    rt.block_on(server)?;
    let _ = watcher.join();
    let _ = all_done;
    log("info", "", "stopped", json!({}));
    Ok(())
}

/// Runs one capture until the agent stops or the capture ends by itself (its end, duration or
/// message count), starting it again after each failure.
fn supervise(
    session: &Session,
    name: &str,
    mut fields: serde_json::Value,
    stop: &Arc<AtomicBool>,
    stats: &Mutex<BTreeMap<String, Stats>>,
) {
    let update = |f: &mut dyn FnMut(&mut Stats)| {
        let mut all = stats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(name) {
            f(s);
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        if stop.load(Ordering::SeqCst) {
            update(&mut |s| s.state = "stopped");
            return;
        }
        let work = args("capture_start", fields.clone()).and_then(|a| Ok(session.capture_job(a)?));
        let outcome = work.and_then(|work| {
            update(&mut |s| s.state = "running");
            log("info", name, "started", json!({}));
            Ok(work.run(
                stop,
                &mut |p| update(&mut |s| s.now = p.clone()),
                &mut |_| true,
            )?)
        });
        match outcome {
            Ok(p) => {
                update(&mut |s| {
                    add(&mut s.done, &p);
                    s.now = CaptureProgress::default();
                    s.state = if stop.load(Ordering::SeqCst) {
                        "stopped"
                    } else {
                        "finished"
                    };
                });
                log(
                    "info",
                    name,
                    "ended",
                    json!({"captured": p.captured, "read": p.read, "stopped_by": p.stopped_by}),
                );
                if stop.load(Ordering::SeqCst) || p.stopped_by.as_deref() != Some("interrupted") {
                    return;
                }
            }
            Err(e) => {
                let message = e.to_string();
                update(&mut |s| {
                    let now = std::mem::take(&mut s.now);
                    add(&mut s.done, &now);
                    s.errors += 1;
                    s.state = "backoff";
                    s.last_error = Some(message.clone());
                });
                log(
                    "error",
                    name,
                    "failed",
                    json!({"error": message, "retry_in_ms": backoff.as_millis() as u64}),
                );
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Again from the start of what the bus holds: the lake's positions skip what
                // is there, so the gap while it was down is read and nothing is doubled.
                fields["from"] = json!("beginning");
                update(&mut |s| s.restarts += 1);
            }
        }
    }
}

fn add(to: &mut CaptureProgress, p: &CaptureProgress) {
    to.read += p.read;
    to.captured += p.captured;
    to.bytes += p.bytes;
    to.decode_errors += p.decode_errors;
    to.truncated += p.truncated;
    to.skipped_replays += p.skipped_replays;
    to.skipped_duplicates += p.skipped_duplicates;
    to.files += p.files;
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(stats: &BTreeMap<String, Stats>, started: Instant) -> sluice_serve::status::Status {
    let mut m = String::new();
    let mut family = |name: &str, help: &str, kind: &str, value: &dyn Fn(&Stats) -> u64| {
        m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (capture, s) in stats {
            m.push_str(&format!(
                "{name}{{capture=\"{}\"}} {}\n",
                label(capture),
                value(s)
            ));
        }
    };
    type Value = fn(&Stats) -> u64;
    const FAMILIES: &[(&str, &str, &str, Value)] = &[
        (
            "sluice_capture_events_total",
            "Events written to the lake.",
            "counter",
            |s| s.total(|p| p.captured),
        ),
        (
            "sluice_capture_read_total",
            "Messages read from the bus.",
            "counter",
            |s| s.total(|p| p.read),
        ),
        (
            "sluice_capture_bytes_total",
            "Payload bytes read.",
            "counter",
            |s| s.total(|p| p.bytes),
        ),
        (
            "sluice_capture_decode_errors_total",
            "Events stored with a decode error.",
            "counter",
            |s| s.total(|p| p.decode_errors),
        ),
        (
            "sluice_capture_duplicates_skipped_total",
            "Messages skipped as already in the lake.",
            "counter",
            |s| s.total(|p| p.skipped_duplicates),
        ),
        (
            "sluice_capture_files_total",
            "Lake files written.",
            "counter",
            |s| s.total(|p| p.files),
        ),
        (
            "sluice_capture_errors_total",
            "Runs that ended with an error.",
            "counter",
            |s| s.errors,
        ),
        (
            "sluice_capture_restarts_total",
            "Runs started again after an error.",
            "counter",
            |s| s.restarts,
        ),
        (
            "sluice_capture_up",
            "1 while the capture runs, 0 in backoff or stopped.",
            "gauge",
            |s| u64::from(s.state == "running"),
        ),
    ];
    for (name, help, kind, value) in FAMILIES {
        family(name, help, kind, value);
    }
    m.push_str(&format!(
        "# HELP sluice_agent_uptime_seconds Seconds since the agent started.\n# TYPE sluice_agent_uptime_seconds gauge\nsluice_agent_uptime_seconds {}\n",
        started.elapsed().as_secs()
    ));
    let captures: Vec<serde_json::Value> = stats
        .iter()
        .map(|(name, s)| {
            json!({"name": name, "state": s.state, "events": s.total(|p| p.captured),
                   "errors": s.errors, "last_error": s.last_error})
        })
        .collect();
    let healthy = stats.values().all(|s| s.state != "backoff");
    sluice_serve::status::Status {
        healthy,
        health_json:
            json!({"status": if healthy { "ok" } else { "failing" }, "captures": captures})
                .to_string(),
        metrics: m,
    }
}
