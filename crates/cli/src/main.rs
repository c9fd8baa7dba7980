//! The `sluice` command line: parses arguments, builds for each subcommand the arguments the
//! window sends, runs the same command of the API's command table (`sluice_api::Session`; long
//! work as the same jobs, run here to their end), and renders results and progress for a
//! terminal or a pipe. It holds no logic of its own beyond presentation; the few commands a
//! window has no counterpart for (`sql`, `serve`, `dev bindings`) call the API directly.

mod agent;
mod collect;
mod connections;
mod lake;
mod output;
mod reading;
mod redact;
mod replay;
mod schemas;

// mimalloc, told below to keep freed memory rather than hand it back to the OS: capture frees
// and re-allocates large buffers all the time, and with fresh memory the kernel's page zeroing
// led its profiles. Together they measured ~30% faster capture with decoding than glibc's
// allocator (BENCHMARKS.md: 10M events in 45.5 s against 62.6 s); mimalloc alone did not.
// The `override` feature of libmimalloc-sys also takes over C's malloc, so librdkafka's and
// DuckDB's allocations (a fifth of replay's profile under glibc) use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's option enum (the -sys crate does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand, ValueEnum};
use sluice_api::{ApiError, Session, Sluice, StartFrom};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Parser)]
#[command(name = "sluice", version, about = "Capture, search and replay message-bus traffic", long_about = None)]
struct Cli {
    /// Folder holding config.toml and schemas [default: the platform config folder]
    #[arg(long, global = true, env = "SLUICE_CONFIG", value_name = "DIR")]
    config: Option<PathBuf>,
    /// Lake folder [default: the platform data folder]/lake
    #[arg(long, global = true, env = "SLUICE_LAKE", value_name = "DIR")]
    lake: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add, list, test and remove bus connections
    #[command(subcommand)]
    Connection(connections::ConnectionCmd),
    /// List a connection's topics with partitions and offsets (AMQP: exchanges and queues)
    Topics {
        name: String,
        /// Only these (for AMQP without the management API: checked by passive declare)
        only: Vec<String>,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Add .proto files, folders or descriptor sets; list types; map topics to types
    #[command(subcommand)]
    Schema(schemas::SchemaCmd),
    /// Show decoded messages live, writing nothing
    Tail {
        name: String,
        /// Topic (Kafka), exchange (AMQP), queue (SQS), stream or subject (NATS), topic filter
        /// (MQTT), stream or pubsub:PATTERN (Redis); with --from-queue, the queue
        #[arg(required_unless_present = "from_queue")]
        topic: Option<String>,
        #[command(flatten)]
        amqp: reading::AmqpReadArgs,
        /// beginning | end | last | OFFSET | @RFC3339 | -N (last N per partition)
        #[arg(long, default_value = "end", allow_hyphen_values = true)]
        from: String,
        #[arg(long)]
        max_messages: Option<u64>,
        #[arg(long, value_enum, default_value_t = TailFormat::Pretty)]
        format: TailFormat,
    },
    /// Capture topics into the lake
    Capture(reading::CaptureArgs),
    /// Listen for events services push over HTTP (POST /v1/events/SOURCE) and gRPC, and
    /// capture them into the lake; each client hears 2xx once its events are durable
    Collect(collect::CollectArgs),
    /// Search captured events with the filter language (newest first)
    Search {
        #[arg(default_value = "")]
        filter: String,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[arg(long, value_enum, default_value_t = SearchFormat::Table)]
        format: SearchFormat,
        /// Print only the number of matches
        #[arg(long)]
        count: bool,
    },
    /// Run one read-only SELECT over the `events` view
    Sql {
        query: String,
        #[arg(long, value_enum, default_value_t = SearchFormat::Table)]
        format: SearchFormat,
        /// Seconds before the query is stopped
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Memory the query may use (e.g. 512MiB, 4GiB)
        #[arg(long, default_value = "2GiB")]
        memory_limit: String,
        #[arg(long, default_value_t = 10_000)]
        max_rows: usize,
    },
    /// Send matching events to a topic, oldest first
    Replay(replay::ReplayFlags),
    /// Serve the Sluice UI and API to a browser on 127.0.0.1 (prints a URL with an access token)
    Serve {
        /// Port to listen on [default: 7878; 0 picks a free one]
        #[arg(long, default_value_t = 7878)]
        port: u16,
        /// Listen on this address instead of 127.0.0.1; anyone who can reach it and has the
        /// token can read the lake and replay
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::IpAddr>,
    },
    /// Write matching events to a file
    Export {
        filter: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(sluice_api::ExportFormat::NAMES))]
        format: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Carry events with their schemas and mappings to another machine in one file
    #[command(subcommand)]
    Bundle(lake::BundleCmd),
    /// Run the captures an agent file lists as a long-lived service, with /healthz and
    /// /metrics, restarting failed ones with backoff
    Agent {
        /// The agent file (TOML): `metrics`, `config_dir`, `lake` and `[[capture]]` tables
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Hash or drop secrets and personal data: at capture (never written) or at view
    #[command(subcommand)]
    Redact(redact::RedactCmd),
    /// Keep the lake small: compact small files, prune old events
    #[command(subcommand)]
    Lake(lake::LakeCmd),
    /// Tools for working on Sluice itself
    #[command(subcommand, hide = true)]
    Dev(DevCmd),
}

#[derive(Subcommand)]
enum DevCmd {
    /// Print the UI's TypeScript bindings (ui/src/bindings.ts) generated from the command table
    Bindings,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum TableFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum TailFormat {
    Pretty,
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum SearchFormat {
    Table,
    Jsonl,
    Json,
}

fn main() {
    // `sluice sql` runs its query in a child process (this binary, with a hidden argument)
    // that is killed at its deadline and cannot outgrow its memory limit.
    sluice_api::run_if_worker();
    // SAFETY: sets a process-wide allocator option before any threads start.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // No transparent huge pages: mimalloc asks for them on its arenas, and each first touch
    // then zeroes (and may compact memory for) a whole 2 MiB page. Capture allocates fresh
    // batches all the time; with them on, a 1M-message capture took 0.7 to 2.8 s from run to
    // run, and without them a steady 0.75 s (BENCHMARKS.md, "Capture without decoding").
    // SAFETY: only sets a flag of this process, read by the kernel at page-fault time.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                // lapin logs every refused login, missing queue and returned message; Sluice
                // reports each of them itself, once, as an error or a per-event failure. The
                // same for async-nats, which logs a refused login as an ERROR before Sluice's
                // own message says it.
                .unwrap_or_else(|_| "warn,lapin=off,async_nats=off".into())
                // ureq traces raw request bytes, header values (credentials) included.
                .add_directive("ureq_proto=off".parse().expect("a fixed directive")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        match e.downcast_ref::<ApiError>() {
            Some(api) => eprintln!("error: {}", api.message),
            None => eprintln!("error: {e:#}"),
        }
        std::process::exit(1);
    }
}

/// The process's stop flag, raised by Ctrl-C or SIGTERM: the running job then ends as a
/// window's does on `job_stop` (a capture flushes, a replay gives its account). A second one
/// means "now".
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if s.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        stop
    })
    .clone()
}

/// Checks `--from` as the command will, to name the flag in the error.
pub(crate) fn parse_from(s: &str) -> Result<StartFrom> {
    s.parse::<StartFrom>().map_err(|e| anyhow!("--from: {e}"))
}

/// A command's arguments from the JSON object a window would send; keys left `null` are left
/// out, as a window leaves out what it does not set.
pub(crate) fn args<T: serde::de::DeserializeOwned>(
    command: &str,
    mut json: serde_json::Value,
) -> Result<T> {
    if let Some(fields) = json.as_object_mut() {
        fields.retain(|_, v| !v.is_null());
    }
    Ok(Session::args(command, json)?)
}

fn run(cli: Cli) -> Result<()> {
    // `sluice agent --config FILE` names its agent file with the flag every other command
    // reads as the config folder (clap fills both): the agent's folder comes from
    // SLUICE_CONFIG or the agent file instead.
    let config = match cli.command {
        Command::Agent { .. } => std::env::var_os("SLUICE_CONFIG").map(PathBuf::from),
        _ => cli.config,
    };
    let session = Session::new(Sluice::new(config, cli.lake)?);
    match cli.command {
        Command::Connection(cmd) => connections::run(&session, cmd),
        Command::Topics { name, only, format } => connections::topics(&session, name, only, format),
        Command::Schema(cmd) => schemas::run(&session, cmd),
        Command::Serve { port, bind } => serve(session, port, bind),
        Command::Tail {
            name,
            topic,
            amqp,
            from,
            max_messages,
            format,
        } => reading::tail(&session, name, topic, amqp, from, max_messages, format),
        Command::Capture(a) => reading::capture(&session, a),
        Command::Collect(a) => collect::run(&session, a),
        Command::Search {
            filter,
            limit,
            format,
            count,
        } => lake::search(&session, filter, limit, format, count),
        Command::Sql {
            query,
            format,
            timeout,
            memory_limit,
            max_rows,
        } => lake::sql(&session, query, format, timeout, memory_limit, max_rows),
        Command::Replay(flags) => replay::run(&session, flags),
        Command::Export {
            filter,
            format,
            output,
        } => lake::export(&session, filter, format, output),
        Command::Lake(cmd) => lake::maintain(&session, cmd),
        Command::Bundle(cmd) => lake::bundle(&session, cmd),
        Command::Redact(cmd) => redact::run(&session, cmd),
        Command::Agent { config } => agent::run(session, config),
        Command::Dev(DevCmd::Bindings) => {
            print!("{}", sluice_api::typescript());
            Ok(())
        }
    }
}

pub(crate) fn is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `sluice serve`: the window's command table over HTTP (no window counterpart: it is a host).
fn serve(session: Session, port: u16, bind: Option<std::net::IpAddr>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let opts = sluice_serve::Options {
            addr: std::net::SocketAddr::new(bind.unwrap_or([127, 0, 0, 1].into()), port),
            bind_explicit: bind.is_some(),
            token: std::env::var("SLUICE_SERVE_TOKEN").ok(),
        };
        let bound = sluice_serve::bind(session, opts).await?;
        println!("Sluice is serving on {}", bound.url);
        println!("Open that URL in a browser; the token after #token= is required. Ctrl-C stops.");
        use std::io::Write;
        std::io::stdout().flush()?;
        bound.run_until_ctrl_c().await?;
        Ok(())
    })
}
