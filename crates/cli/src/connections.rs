//! `sluice connection ...` and `sluice topics`: the window's connection commands.

use crate::{args, output, TableFormat};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use sluice_api::Session;
use std::io::Read;

#[derive(Subcommand)]
pub(crate) enum ConnectionCmd {
    /// Add a connection: `sluice connection add kafka NAME --brokers HOST:PORT`,
    /// `sluice connection add amqp NAME --url amqp://USER@HOST:5672/VHOST`,
    /// `sluice connection add sqs NAME --region REGION`,
    /// `sluice connection add nats NAME --url nats://HOST:4222`,
    /// `sluice connection add mqtt NAME --url mqtt://HOST:1883`,
    /// `sluice connection add redis NAME --url redis://HOST:6379/0`,
    /// `sluice connection add http NAME --url https://HOST/PATH --header 'Authorization: ...'` or
    /// `sluice connection add collector NAME --http :7880 --grpc :7881` (token: --password-stdin)
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
pub(crate) struct ConnectionAddArgs {
    /// Bus kind
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(sluice_model::Bus::ALL.map(|b| b.as_str())))]
    bus: String,
    name: String,
    /// Kafka brokers
    #[arg(long, value_name = "HOST:PORT[,..]", required_if_eq("bus", "kafka"))]
    brokers: Option<String>,
    /// AMQP, NATS, MQTT, Redis, HTTP: the server's URL (a password given in it goes to the
    /// keyring)
    #[arg(long, value_name = "URL", conflicts_with = "brokers")]
    url: Option<String>,
    /// AMQP: management HTTP API [default: http://HOST:15672]
    #[arg(long, value_name = "URL")]
    management_url: Option<String>,
    /// Collector: listen for HTTP here, HOST:PORT, :PORT or PORT [default: 127.0.0.1:7880]
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Collector: listen for gRPC here
    #[arg(long, value_name = "ADDR")]
    grpc: Option<String>,
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
    /// HTTP: a header sent with every request, `NAME: VALUE` (repeatable); kept in the keyring
    /// like a password, never in config.toml
    #[arg(long = "header", value_name = "NAME: VALUE", conflicts_with_all = ["password", "password_stdin"])]
    header: Vec<String>,
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
    /// Any other setting of the bus, by its field name in `bus_kinds` (repeatable; `true` and
    /// `false` are flags): the way to give a bus's settings that have no flag of their own
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub(crate) fn run(session: &Session, cmd: ConnectionCmd) -> Result<()> {
    match cmd {
        ConnectionCmd::Add(a) => add(session, *a)?,
        ConnectionCmd::List { format } => {
            let list = session.connection_list(args("connection_list", json!({}))?)?;
            match format {
                TableFormat::Json => output::json(&list),
                TableFormat::Table => output::connections(&list),
            }
        }
        ConnectionCmd::Test { name } => {
            let h = session.connection_test(args("connection_test", json!({"name": name}))?)?;
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
            session.connection_remove(args("connection_remove", json!({"name": name}))?)?;
            println!("removed connection {name}");
        }
    }
    Ok(())
}

/// The connection form's fields from the flags, secrets from standard input or the
/// environment.
fn add(session: &Session, a: ConnectionAddArgs) -> Result<()> {
    if a.password.is_some() {
        eprintln!("warning: --password is visible to other local users; --password-stdin or SLUICE_PASSWORD is safer");
    }
    let password = if !a.header.is_empty() {
        // One secret per connection: an HTTP endpoint's is its headers, a line each.
        Some(a.header.join("\n"))
    } else if let Some(p) = a.password {
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
    // The keys of each bus's settings form (`bus_kinds`); a bus ignores the others, and
    // RabbitMQ takes its URL as `brokers` too.
    let form = json!({
        "name": a.name,
        "bus": a.bus,
        "brokers": a.brokers.or(a.url),
        "management_url": a.management_url,
        "region": a.region,
        "http": a.http,
        "grpc": a.grpc,
        "aws_profile": a.profile,
        "endpoint_url": a.endpoint_url,
        "access_key_id": a.access_key_id,
        "sasl_mechanism": a.sasl_mechanism,
        "username": a.username,
        "password": password,
        "tls": a.tls,
        "tls_ca": a.tls_ca,
        "tls_cert": a.tls_cert,
        "tls_key": a.tls_key,
        "registry_url": a.registry,
        "registry_username": a.registry_user,
        "registry_password": registry_password,
        "registry_token": registry_token,
        "replace": a.replace,
    });
    let mut form = form;
    if let Some(m) = form.as_object_mut() {
        // Absent, not null: a setting left out takes its bus's default.
        m.retain(|_, v| !v.is_null());
        for kv in &a.set {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
            let v = match v {
                "true" => json!(true),
                "false" => json!(false),
                v => json!(v),
            };
            m.insert(k.to_string(), v);
        }
    }
    let added = session.connection_add(args("connection_add", form)?)?;
    if let Some(w) = &added.warning {
        eprintln!("warning: {w}");
    }
    println!("added connection {}", added.name);
    Ok(())
}

pub(crate) fn topics(
    session: &Session,
    name: String,
    only: Vec<String>,
    format: TableFormat,
) -> Result<()> {
    let topics = session.topics(args("topics", json!({"name": name, "only": only}))?)?;
    match format {
        TableFormat::Json => output::json(&topics),
        TableFormat::Table => output::topics(&topics),
    }
    Ok(())
}
