//! `sluice schema ...`: the window's schema commands, with the re-decodes that follow a
//! schema change run here to their end (`--no-redecode` skips the one after `map`).

use crate::{args, output, stop_flag, TableFormat};
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use serde_json::json;
use sluice_api::{ApiError, RedecodeProgress, Session};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[derive(Subcommand)]
pub(crate) enum SchemaCmd {
    /// Add .proto files or folders (compiled now) and binary FileDescriptorSets
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Extra import root
        #[arg(short = 'I', long = "include")]
        includes: Vec<PathBuf>,
        /// Keep them with the lake (LAKE/_sluice/schemas) for everyone who opens it
        #[arg(long)]
        shared: bool,
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
        /// Keep the mapping with the lake (LAKE/_sluice/mappings.toml) for everyone who opens
        /// it; a mapping of a user's own for the same topic wins for that user
        #[arg(long)]
        shared: bool,
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

pub(crate) fn run(session: &Session, cmd: SchemaCmd) -> Result<()> {
    match cmd {
        SchemaCmd::Add {
            paths,
            includes,
            shared,
        } => {
            let added = session.schema_add_to(&paths, &includes, shared)?;
            let r = added.added;
            for e in &r.errors {
                eprintln!("error: {}", e.display);
            }
            // Types that were added again may have changed: their topics are decoded anew.
            for work in added.redecodes {
                redecode(work.label().to_string(), |stop, on| {
                    work.run(stop, on, &mut |_| true)
                })?;
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
            let l = session.schema_list(args("schema_list", json!({}))?)?;
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
                            let shared = if m.shared {
                                " (shared, in the lake)"
                            } else {
                                ""
                            };
                            println!(
                                "{}:{} -> {}{key}{shared}",
                                m.connection, m.topic, m.value_type
                            );
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
            shared,
        } => {
            let (m, work) = session.schema_map_job(args(
                "schema_map",
                json!({
                    "connection": connection,
                    "topic": topic,
                    "value_type": value_type,
                    "key_type": key_type,
                    "shared": shared,
                }),
            )?)?;
            let key = m
                .key_type
                .as_ref()
                .map(|k| format!(", keys as {k}"))
                .unwrap_or_default();
            println!(
                "{}:{} values decode as {}{key}{}",
                m.connection,
                m.topic,
                m.value_type,
                if m.shared {
                    " (kept with the lake, for everyone who opens it)"
                } else {
                    ""
                }
            );
            if !no_redecode {
                redecode(work.label().to_string(), |stop, on| {
                    work.run(stop, on, &mut |_| true)
                })?;
            }
        }
        SchemaCmd::Redecode { connection, topic } => {
            let work = session.redecode_job(args(
                "redecode",
                json!({"connection": connection, "topic": topic}),
            )?);
            redecode(work.label().to_string(), |stop, on| {
                work.run(stop, on, &mut |_| true)
            })?;
        }
        SchemaCmd::Detect {
            connection,
            topic,
            sample,
            accept,
            format,
        } => {
            let found = session.schema_detect(args(
                "schema_detect",
                json!({"connection": connection, "topic": topic, "sample": sample}),
            )?)?;
            match format {
                TableFormat::Json => output::json(&found),
                TableFormat::Table => {
                    if found.is_empty() {
                        println!("no known type fits these payloads");
                    } else {
                        println!(
                            "{:<50} {:>10} {:>10} {:>7}",
                            "TYPE", "CONFIDENCE", "DECODED", "UNUSED"
                        );
                    }
                    for c in found.iter().take(10) {
                        println!(
                            "{:<50} {:>9.0}% {:>10} {:>7}{}",
                            c.type_name,
                            c.confidence * 100.0,
                            format!("{}/{}", c.decoded, c.samples),
                            c.unseen_fields,
                            if c.tied { "  tie" } else { "" }
                        );
                    }
                }
            }
            if accept {
                let best = found
                    .first()
                    .ok_or_else(|| anyhow!("nothing to accept: no known type fits"))?;
                if best.tied {
                    let tied: Vec<&str> = found
                        .iter()
                        .take_while(|c| {
                            c.tied
                                && (c.confidence, c.decoded, c.unseen_fields)
                                    == (best.confidence, best.decoded, best.unseen_fields)
                        })
                        .map(|c| c.type_name.as_str())
                        .collect();
                    bail!(
                        "nothing to accept: {} fit these payloads equally well; map one by name \
                         (sluice schema map {connection} {topic} TYPE)",
                        tied.join(", ")
                    );
                }
                let (m, work) = session.schema_map_job(args(
                    "schema_map",
                    json!({"connection": connection, "topic": topic, "value_type": best.type_name}),
                )?)?;
                println!(
                    "{}:{} values decode as {}",
                    m.connection, m.topic, m.value_type
                );
                redecode(work.label().to_string(), |stop, on| {
                    work.run(stop, on, &mut |_| true)
                })?;
            }
        }
    }
    Ok(())
}

/// Runs one re-decode job (`run` is its `JobWork::run`) of `label` (`CONNECTION:TOPIC`) with a
/// spinner; Ctrl-C stops it between files.
fn redecode(
    label: String,
    run: impl FnOnce(
        &AtomicBool,
        &mut dyn FnMut(&RedecodeProgress),
    ) -> Result<RedecodeProgress, ApiError>,
) -> Result<()> {
    let bar = output::Progress::new("re-decode");
    let stop = stop_flag();
    let p = run(&stop, &mut |p| {
        bar.set(format!(
            "{}/{} files, {} events",
            p.files_done, p.files_total, p.events
        ))
    })?;
    bar.finish();
    if p.files_total > 0 {
        println!(
            "re-decoded {} event(s) of {label} in the lake: {} changed, {} with a decode error{}",
            p.events,
            p.changed,
            p.errors,
            if p.files_done < p.files_total {
                format!(
                    " (stopped after {} of {} files)",
                    p.files_done, p.files_total
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
