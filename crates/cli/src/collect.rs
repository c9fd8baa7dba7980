//! `sluice collect`: a capture of a collector connection, which listens for events services
//! push over HTTP and gRPC. The connection (`--name`, `collector` by default) is made on
//! first use from the flags, so the window lists it and can start the same capture; later
//! runs take its addresses unless flags name others for that run.

use crate::{args, reading};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use sluice_api::Session;

#[derive(Args)]
pub(crate) struct CollectArgs {
    /// Listen for HTTP here: HOST:PORT, :PORT or PORT (host 127.0.0.1) [default: 127.0.0.1:7880
    /// when --grpc is not given either]
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Listen for gRPC (sluice.collector.v1.Collector) here
    #[arg(long, value_name = "ADDR")]
    grpc: Option<String>,
    /// The collector connection events are stored under (made on first use)
    #[arg(long, default_value = "collector")]
    name: String,
    /// Take only these sources (/v1/events/SOURCE); others get 404 [default: all]
    #[arg(long = "source", value_name = "SOURCE")]
    sources: Vec<String>,
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop after this long, e.g. 30s, 5m
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// Payloads larger than this are stored cut and flagged `truncated`
    #[arg(long, default_value_t = sluice_api::DEFAULT_MAX_PAYLOAD_BYTES)]
    max_payload_bytes: usize,
    /// Store payloads without decoding them (decode later with `sluice schema redecode`)
    #[arg(long)]
    no_decode: bool,
    /// Print the final summary as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(session: &Session, a: CollectArgs) -> Result<()> {
    let list = session.connection_list(args("connection_list", json!({}))?)?;
    match list.iter().find(|c| c.name == a.name) {
        Some(c) if c.bus != "collector" => bail!(
            "connection {:?} is a {} connection, not a collector: pass --name with another name",
            a.name,
            c.bus
        ),
        Some(_) => {}
        None => {
            // The token, when one is given, is kept like a password; otherwise each run draws
            // one and prints it.
            let token = std::env::var("SLUICE_COLLECTOR_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
            let added = session.connection_add(args(
                "connection_add",
                json!({
                    "name": a.name,
                    "bus": "collector",
                    "http": a.http,
                    "grpc": a.grpc,
                    "password": token,
                }),
            )?)?;
            if let Some(w) = &added.warning {
                eprintln!("warning: {w}");
            }
            eprintln!("added collector connection {}", added.name);
        }
    }
    let millis = |d: humantime::Duration| std::time::Duration::from(d).as_millis() as u64;
    let fields = json!({
        "connection": a.name,
        "sources": a.sources,
        "max_messages": a.max_messages,
        "duration_ms": a.duration.map(millis),
        "max_payload_bytes": a.max_payload_bytes,
        "no_decode": a.no_decode,
        "http": a.http,
        "grpc": a.grpc,
    });
    reading::run_capture(session, fields, a.json)
}
