//! The `sluice` command line: parses arguments, calls the command API, and renders results
//! and progress for a terminal or a pipe. It holds no logic of its own beyond presentation.

mod output;

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

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_api::{
    ApiError, CaptureOptions, ConnectionAdd, ExportFormat, QueueRead, ReadOptions, ReplayRequest,
    Sluice, StartFrom,
};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    Connection(ConnectionCmd),
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
    Schema(SchemaCmd),
    /// Show decoded messages live, writing nothing
    Tail {
        name: String,
        /// Topic (Kafka) or exchange (AMQP); with --from-queue, the queue
        #[arg(required_unless_present = "from_queue")]
        topic: Option<String>,
        #[command(flatten)]
        amqp: AmqpReadArgs,
        /// beginning | end | last | OFFSET | @RFC3339 | -N (last N per partition)
        #[arg(long, default_value = "end", allow_hyphen_values = true)]
        from: String,
        #[arg(long)]
        max_messages: Option<u64>,
        #[arg(long, value_enum, default_value_t = TailFormat::Pretty)]
        format: TailFormat,
    },
    /// Capture topics into the lake
    Capture(CaptureArgs),
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
    Replay {
        filter: String,
        /// Destination: CONNECTION:TOPIC (Kafka), CONNECTION:EXCHANGE[/ROUTING_KEY] or
        /// CONNECTION:QUEUE (AMQP)
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
        /// Print the account (sent, failed, unknown, not sent, reasons) as one JSON object
        #[arg(long)]
        json: bool,
        /// Give up on the destination when it answers nothing for this long: what is still
        /// unanswered then counts as failed (never sent) or unknown (sent, no answer)
        #[arg(long, default_value = "30s")]
        broker_timeout: humantime::Duration,
    },
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
        #[arg(long, value_enum)]
        format: ExportKind,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConnectionCmd {
    /// Add a connection: `sluice connection add kafka NAME --brokers HOST:PORT`,
    /// `sluice connection add amqp NAME --url amqp://USER@HOST:5672/VHOST` or
    /// `sluice connection add sqs NAME --region REGION`
    Add(Box<ConnectionAddArgs>),
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Check that the broker answers (within 10 seconds)
    Test {
        name: String,
    },
    Remove {
        name: String,
    },
}

#[derive(Args)]
struct ConnectionAddArgs {
    /// Bus kind
    #[arg(value_parser = ["kafka", "amqp", "sqs"])]
    bus: String,
    name: String,
    /// Kafka brokers
    #[arg(long, value_name = "HOST:PORT[,..]", required_unless_present_any = ["url", "region"])]
    brokers: Option<String>,
    /// AMQP: amqp[s]://USER@HOST:PORT/VHOST (a password given here goes to the keyring)
    #[arg(long, value_name = "URL", conflicts_with = "brokers")]
    url: Option<String>,
    /// AMQP: management HTTP API [default: http://HOST:15672]
    #[arg(long, value_name = "URL")]
    management_url: Option<String>,
    /// SQS: AWS region
    #[arg(long)]
    region: Option<String>,
    /// SQS: a named AWS profile (default: the standard credential chain)
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,
    /// SQS: another endpoint (LocalStack, moto, ElasticMQ)
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// SQS: static access key id; the secret key comes like a password (--password-stdin or
    /// SLUICE_PASSWORD) and goes to the keyring
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    #[arg(long, value_name = "MECHANISM")]
    sasl_mechanism: Option<String>,
    #[arg(long, alias = "sasl-username")]
    username: Option<String>,
    /// Read the password from standard input (or set SLUICE_PASSWORD)
    #[arg(long, alias = "sasl-password-stdin")]
    password_stdin: bool,
    /// The password itself (visible in shell history and process lists: prefer --password-stdin)
    #[arg(long, alias = "sasl-password", conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Use TLS (implied by --tls-ca/--tls-cert)
    #[arg(long)]
    tls: bool,
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<String>,
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<String>,
    #[arg(long, value_name = "FILE")]
    tls_key: Option<String>,
    /// A Confluent-compatible Schema Registry (Confluent, Karapace, Redpanda...) that framed
    /// payloads' schemas are fetched from and cached
    #[arg(long, value_name = "URL")]
    registry: Option<String>,
    /// Registry basic-auth user; the password comes from --registry-password-stdin or
    /// SLUICE_REGISTRY_PASSWORD and goes to the keyring
    #[arg(long, value_name = "USER", requires = "registry")]
    registry_user: Option<String>,
    /// Read the registry password from standard input
    #[arg(long, requires = "registry_user", conflicts_with_all = ["password_stdin", "registry_token_stdin"])]
    registry_password_stdin: bool,
    /// Read a registry bearer token from standard input (or set SLUICE_REGISTRY_TOKEN)
    #[arg(long, requires = "registry", conflicts_with_all = ["password_stdin", "registry_user"])]
    registry_token_stdin: bool,
    /// Overwrite an existing connection of the same name
    #[arg(long)]
    replace: bool,
}

#[derive(Subcommand)]
enum SchemaCmd {
    /// Add .proto files or folders (compiled now) and binary FileDescriptorSets
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Extra import root
        #[arg(short = 'I', long = "include")]
        includes: Vec<PathBuf>,
    },
    /// List known message types and topic mappings
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Decode CONNECTION's TOPIC values (and keys) with message TYPE
    Map {
        connection: String,
        topic: String,
        #[arg(value_name = "TYPE")]
        value_type: String,
        #[arg(long = "key", value_name = "TYPE")]
        key_type: Option<String>,
        /// Leave the events already in the lake as they were decoded
        #[arg(long)]
        no_redecode: bool,
    },
    /// Decode CONNECTION's TOPIC events in the lake again with the current mapping
    Redecode { connection: String, topic: String },
    /// Score every known message type on TOPIC's payloads (captured ones, else read from the
    /// beginning) and list the best candidates
    Detect {
        connection: String,
        topic: String,
        /// Payloads to score on
        #[arg(long, default_value_t = 200)]
        sample: usize,
        /// Map the topic to the best candidate (and re-decode the lake)
        #[arg(long)]
        accept: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

/// How AMQP sources are read; Kafka ignores these.
#[derive(Args)]
struct AmqpReadArgs {
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

impl AmqpReadArgs {
    /// The read options and the sources to read (the queue, in queue mode).
    fn read_options(self, sources: Vec<String>) -> anyhow::Result<(ReadOptions, Vec<String>)> {
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
        let queue = match (&self.from_queue, self.destructive, self.requeue) {
            (None, _, _) if self.peek => Some(QueueRead::Requeue),
            (None, _, _) if self.drain => Some(QueueRead::Destructive),
            (None, _, _) => None,
            (Some(_), _, _) if self.stream => Some(QueueRead::Stream),
            (Some(_), true, _) => Some(QueueRead::Destructive),
            (Some(_), _, true) => Some(QueueRead::Requeue),
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
        Ok((
            ReadOptions {
                binding_key: self.binding_key,
                match_headers,
                queue,
            },
            sources,
        ))
    }
}

#[derive(Args)]
struct CaptureArgs {
    name: String,
    /// Topics (Kafka) or exchanges (AMQP)
    #[arg(required_unless_present = "from_queue")]
    topics: Vec<String>,
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

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum TableFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum TailFormat {
    Pretty,
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum SearchFormat {
    Table,
    Jsonl,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportKind {
    Jsonl,
    Csv,
    Parquet,
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
                // reports each of them itself, once, as an error or a per-event failure.
                .unwrap_or_else(|_| "warn,lapin=off".into()),
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

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C means "now".
            std::process::exit(130);
        }
    });
    stop
}

fn parse_from(s: &str) -> Result<StartFrom> {
    s.parse::<StartFrom>().map_err(|e| anyhow!("--from: {e}"))
}

fn run(cli: Cli) -> Result<()> {
    let sluice = Sluice::new(cli.config, cli.lake)?;
    match cli.command {
        Command::Connection(cmd) => connection(&sluice, cmd),
        Command::Topics { name, only, format } => {
            let topics = sluice.topics(&name, &only)?;
            match format {
                TableFormat::Json => output::json(&topics),
                TableFormat::Table => output::topics(&topics),
            }
            Ok(())
        }
        Command::Schema(cmd) => schema(&sluice, cmd),
        Command::Serve { port, bind } => serve(sluice, port, bind),
        Command::Tail {
            name,
            topic,
            amqp,
            from,
            max_messages,
            format,
        } => {
            let from = parse_from(&from)?;
            let stop = stop_flag();
            let (read, mut sources) = amqp.read_options(topic.into_iter().collect())?;
            let topic = sources.pop().unwrap_or_default();
            let mut out = std::io::stdout().lock();
            sluice.tail(&name, &topic, from, &read, max_messages, &stop, &mut |e| {
                output::tail_event(&mut out, e, format == TailFormat::Jsonl)
            })?;
            Ok(())
        }
        Command::Capture(args) => capture(&sluice, args),
        Command::Search {
            filter,
            limit,
            format,
            count,
        } => {
            if count {
                println!("{}", sluice.count(&filter)?);
                return Ok(());
            }
            let events = sluice.search(&filter, limit, 0)?;
            match format {
                SearchFormat::Jsonl => output::jsonl(events.iter().map(sluice_api::event_json)),
                SearchFormat::Json => output::json(
                    &events
                        .iter()
                        .map(sluice_api::event_json)
                        .collect::<Vec<_>>(),
                ),
                SearchFormat::Table => output::events_table(&events),
            }
            Ok(())
        }
        Command::Sql {
            query,
            format,
            timeout,
            memory_limit,
            max_rows,
        } => {
            let limits = sluice_api::SqlLimits {
                timeout: Duration::from_secs(timeout),
                memory_bytes: sluice_api::SqlLimits::parse_bytes(&memory_limit)?,
                max_rows,
            };
            let r = sluice.sql(&query, &limits)?;
            match format {
                SearchFormat::Jsonl => {
                    output::jsonl(r.rows.iter().map(|r| serde_json::Value::Object(r.clone())))
                }
                SearchFormat::Json => output::json(&r.rows),
                SearchFormat::Table => output::sql_table(&r),
            }
            Ok(())
        }
        Command::Replay {
            filter,
            to,
            to_origin,
            rate,
            limit,
            dry_run,
            keep_partition,
            edit,
            json,
            broker_timeout,
        } => {
            let edits = match &edit {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("--edit {}", path.display()))?;
                    sluice_api::parse_edits(&path.display().to_string(), &text)?
                }
                None => Vec::new(),
            };
            let req = ReplayRequest {
                to: to.unwrap_or_default(),
                to_origin,
                rate,
                limit,
                keep_partition,
                edits,
                broker_timeout: Some(broker_timeout.into()),
            };
            let dest = if to_origin {
                "their origins".to_string()
            } else {
                req.to.clone()
            };
            if dry_run {
                let mut out = std::io::stdout().lock();
                let mut origins = sluice.origin_finder();
                let n = sluice.replay_plan(&filter, &req, &mut |e| {
                    output::plan_line(&mut out, e, to_origin.then(|| origins.describe(e)))
                })?;
                println!("dry run: {n} events would be sent to {dest}; nothing was sent");
                return Ok(());
            }
            let stop = stop_flag();
            let bar = output::Progress::new("replay");
            let outcome = sluice.replay(&filter, &req, &stop, &mut |p| {
                bar.set(format!(
                    "{} queued, {} sent, {} failed, {} unknown",
                    p.queued, p.sent, p.failed, p.unknown
                ));
            });
            bar.finish();
            // A replay that failed still has its account, reasons included.
            let (summary, error) = match outcome {
                Ok(s) => (Some(s), None),
                Err(f) => (f.summary.map(|s| *s), Some(f.error)),
            };
            output::replay_account(
                &dest,
                summary.as_ref(),
                error.as_ref().map(|e| e.message.as_str()),
                json,
            );
            if let Some(e) = error {
                return Err(e.into());
            }
            let s = summary.unwrap_or_default();
            if s.failed + s.unknown + s.not_sent > 0 {
                let mut why = Vec::new();
                if s.unknown > 0 {
                    why.push(format!(
                        "{} unknown: sent, but no answer came from {dest} before its connection \
                         failed or --broker-timeout ({}) ran out; sending them again may \
                         duplicate them",
                        s.unknown, broker_timeout
                    ));
                }
                if s.failed > 0 {
                    why.push(format!("{} failed (reasons above)", s.failed));
                }
                if s.not_sent > 0 {
                    why.push(format!("{} not sent", s.not_sent));
                }
                bail!(
                    "replay incomplete: {} of {} matched events are not known to have arrived: {}",
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
        Command::Export {
            filter,
            format,
            output,
        } => {
            let f = match format {
                ExportKind::Jsonl => ExportFormat::Jsonl,
                ExportKind::Csv => ExportFormat::Csv,
                ExportKind::Parquet => ExportFormat::Parquet,
            };
            let n = sluice.export(&filter, f, &output)?;
            println!("exported {n} events to {}", output.display());
            Ok(())
        }
    }
}

fn connection(sluice: &Sluice, cmd: ConnectionCmd) -> Result<()> {
    match cmd {
        ConnectionCmd::Add(a) => {
            if a.password.is_some() {
                eprintln!("warning: --password is visible to other local users; --password-stdin or SLUICE_PASSWORD is safer");
            }
            let password = if let Some(p) = a.password {
                Some(p)
            } else if a.password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the password from standard input")?;
                Some(s.trim_end_matches(['\n', '\r']).to_string())
            } else {
                std::env::var("SLUICE_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty())
            };
            let stdin_line = || -> Result<String> {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading a secret from standard input")?;
                Ok(s.trim_end_matches(['\n', '\r']).to_string())
            };
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let registry_password = if a.registry_password_stdin {
                Some(stdin_line()?)
            } else {
                a.registry_user
                    .as_ref()
                    .and_then(|_| env("SLUICE_REGISTRY_PASSWORD"))
            };
            let registry_token = if a.registry_token_stdin {
                Some(stdin_line()?)
            } else if a.registry_user.is_none() && a.registry.is_some() {
                env("SLUICE_REGISTRY_TOKEN")
            } else {
                None
            };
            let added = sluice.connection_add(ConnectionAdd {
                name: a.name,
                bus: a.bus,
                brokers: a.brokers.or(a.url).unwrap_or_default(),
                management_url: a.management_url,
                region: a.region,
                aws_profile: a.profile,
                endpoint_url: a.endpoint_url,
                access_key_id: a.access_key_id,
                sasl_mechanism: a.sasl_mechanism,
                username: a.username,
                password,
                tls: a.tls,
                tls_ca: a.tls_ca,
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                registry_url: a.registry,
                registry_username: a.registry_user,
                registry_password,
                registry_token,
                replace: a.replace,
            })?;
            if let Some(w) = &added.warning {
                eprintln!("warning: {w}");
            }
            println!("added connection {}", added.name);
        }
        ConnectionCmd::List { format } => {
            let list = sluice.connection_list()?;
            match format {
                TableFormat::Json => output::json(&list),
                TableFormat::Table => output::connections(&list),
            }
        }
        ConnectionCmd::Test { name } => {
            let h = sluice.connection_test(&name)?;
            println!(
                "{name}: reachable in {} ms, {} broker(s), {} topic(s)",
                h.latency_ms,
                h.brokers.len(),
                h.sources
            );
            if let Some(r) = &h.registry {
                println!("{name}: {r}");
            }
        }
        ConnectionCmd::Remove { name } => {
            sluice.connection_remove(&name)?;
            println!("removed connection {name}");
        }
    }
    Ok(())
}

fn schema(sluice: &Sluice, cmd: SchemaCmd) -> Result<()> {
    match cmd {
        SchemaCmd::Add { paths, includes } => {
            let r = sluice.schema_add(&paths, &includes)?;
            for e in &r.errors {
                eprintln!("error: {}", e.display);
            }
            // Types that were added again may have changed: their topics are decoded anew.
            for m in sluice.mappings_using(&r.defined_types)? {
                redecode(sluice, &m.connection, &m.topic)?;
            }
            if !r.files.is_empty() {
                println!(
                    "added {} file(s); {} new message type(s)",
                    r.files.len(),
                    r.message_types.len()
                );
                for t in &r.message_types {
                    println!("  {t}");
                }
            }
            if !r.errors.is_empty() {
                bail!(
                    "{} schema error(s){}",
                    r.errors.len(),
                    if r.files.is_empty() {
                        "; nothing was added"
                    } else {
                        "; the other files were added"
                    }
                );
            }
        }
        SchemaCmd::List { format } => {
            let l = sluice.schema_list()?;
            match format {
                TableFormat::Json => output::json(&l),
                TableFormat::Table => {
                    for t in &l.message_types {
                        println!("{t}");
                    }
                    if !l.mappings.is_empty() {
                        println!();
                        for m in &l.mappings {
                            let key = m
                                .key_type
                                .as_ref()
                                .map(|k| format!(" (key: {k})"))
                                .unwrap_or_default();
                            println!("{}:{} -> {}{key}", m.connection, m.topic, m.value_type);
                        }
                    }
                }
            }
        }
        SchemaCmd::Map {
            connection,
            topic,
            value_type,
            key_type,
            no_redecode,
        } => {
            let m = sluice.schema_map(&connection, &topic, &value_type, key_type.as_deref())?;
            let key = m
                .key_type
                .as_ref()
                .map(|k| format!(", keys as {k}"))
                .unwrap_or_default();
            println!(
                "{}:{} values decode as {}{key}",
                m.connection, m.topic, m.value_type
            );
            if !no_redecode {
                redecode(sluice, &connection, &topic)?;
            }
        }
        SchemaCmd::Redecode { connection, topic } => redecode(sluice, &connection, &topic)?,
        SchemaCmd::Detect {
            connection,
            topic,
            sample,
            accept,
            format,
        } => {
            let found = sluice.schema_detect(&connection, &topic, sample.max(1))?;
            match format {
                TableFormat::Json => output::json(&found),
                TableFormat::Table => {
                    if found.is_empty() {
                        println!("no known type fits these payloads");
                    } else {
                        println!("{:<50} {:>10} {:>10}", "TYPE", "CONFIDENCE", "DECODED");
                    }
                    for c in found.iter().take(10) {
                        println!(
                            "{:<50} {:>9.0}% {:>10}",
                            c.type_name,
                            c.confidence * 100.0,
                            format!("{}/{}", c.decoded, c.samples)
                        );
                    }
                }
            }
            if accept {
                let best = found
                    .first()
                    .ok_or_else(|| anyhow!("nothing to accept: no known type fits"))?;
                let m = sluice.schema_map(&connection, &topic, &best.type_name, None)?;
                println!(
                    "{}:{} values decode as {}",
                    m.connection, m.topic, m.value_type
                );
                redecode(sluice, &connection, &topic)?;
            }
        }
    }
    Ok(())
}

/// Re-decodes one topic's stored events, with a spinner; Ctrl-C stops between files.
fn redecode(sluice: &Sluice, connection: &str, topic: &str) -> Result<()> {
    let bar = output::Progress::new("re-decode");
    let stop = stop_flag();
    let p = sluice.redecode(connection, topic, &mut |p| {
        bar.set(format!(
            "{}/{} files, {} events",
            p.files_done, p.files_total, p.events
        ));
        !stop.load(Ordering::Relaxed)
    })?;
    bar.finish();
    if p.files_total > 0 {
        println!(
            "re-decoded {} event(s) of {connection}:{topic} in the lake: {} changed, {} with a decode error{}",
            p.events,
            p.changed,
            p.errors,
            if p.files_done < p.files_total {
                format!(" (stopped after {} of {} files)", p.files_done, p.files_total)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn capture(sluice: &Sluice, a: CaptureArgs) -> Result<()> {
    let (read, sources) = a.amqp.read_options(a.topics)?;
    let opts = CaptureOptions {
        sources,
        read,
        from: parse_from(&a.from)?,
        max_messages: a.max_messages,
        duration: a.duration.map(Into::into),
        stop_at_end: a.stop_at_end,
        include_replays: a.include_replays,
        max_payload_bytes: a.max_payload_bytes,
        decode: !a.no_decode,
        broker_timeout: a.broker_timeout.into(),
        ..CaptureOptions::default()
    };
    let stop = stop_flag();
    let bar = output::Progress::new("capture");
    let p = sluice.capture(&a.name, &opts, &stop, &mut |p| {
        let secs = (p.elapsed_ms as f64 / 1000.0).max(0.001);
        bar.set(format!(
            "{} read, {} captured, {:.0} msg/s, {}",
            p.read,
            p.captured,
            p.read as f64 / secs,
            output::bytes(p.bytes)
        ))
    })?;
    bar.finish();
    if a.json {
        output::json(&p);
    } else {
        let secs = (p.elapsed_ms as f64 / 1000.0).max(0.001);
        println!(
            "captured {} events ({} read, {}, {:.0} msg/s) into {}; {} decode errors, {} truncated, {} replays skipped, {} already in the lake; stopped by {}",
            p.captured,
            p.read,
            output::bytes(p.bytes),
            p.read as f64 / secs,
            sluice.lake_dir.display(),
            p.decode_errors,
            p.truncated,
            p.skipped_replays,
            p.skipped_duplicates,
            p.stopped_by.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

pub(crate) fn is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

fn serve(sluice: Sluice, port: u16, bind: Option<std::net::IpAddr>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let opts = sluice_serve::Options {
            addr: std::net::SocketAddr::new(bind.unwrap_or([127, 0, 0, 1].into()), port),
            bind_explicit: bind.is_some(),
            token: std::env::var("SLUICE_SERVE_TOKEN").ok(),
        };
        let bound = sluice_serve::bind(sluice_api::Session::new(sluice), opts).await?;
        println!("Sluice is serving on {}", bound.url);
        println!("Open that URL in a browser; the token after #token= is required. Ctrl-C stops.");
        use std::io::Write;
        std::io::stdout().flush()?;
        bound.run_until_ctrl_c().await?;
        Ok(())
    })
}
