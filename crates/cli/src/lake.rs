//! `sluice search`, `sluice export`, `sluice sql` and `sluice lake ...`: the lake, as the
//! window searches and exports it. `sql` has no window counterpart and calls the API directly.

use crate::{args, output, stop_flag, SearchFormat, TableFormat};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::json;
use sluice_api::Session;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum LakeCmd {
    /// Merge each partition folder's small files into files of about --target-size (safe
    /// while captures and searches run)
    Compact {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Merged files grow to about this size
        #[arg(long, default_value = "64MiB")]
        target_size: String,
        /// Say what would be merged, change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Remove events older than an age (event time, else capture time), safe while captures
    /// and searches run
    Prune {
        /// 30d, 12h, 2w, 90m
        #[arg(long, value_name = "AGE")]
        older_than: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Say what would be removed, change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

#[derive(Subcommand)]
pub(crate) enum BundleCmd {
    /// Write the events matching FILTER, with the schemas and mappings they need, to one
    /// file another machine can import
    Export {
        filter: String,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Add a bundle's events (those not in the lake yet), schemas and mappings here
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

pub(crate) fn bundle(session: &Session, cmd: BundleCmd) -> Result<()> {
    let utf8 = |p: &PathBuf| {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{}: not a UTF-8 path", p.display()))
    };
    match cmd {
        BundleCmd::Export {
            filter,
            output,
            format,
        } => {
            let m = session.bundle_export(args(
                "bundle_export",
                json!({"filter": filter, "path": utf8(&output)?}),
            )?)?;
            if format == TableFormat::Json {
                output::json(&m);
                return Ok(());
            }
            let sources: Vec<String> = m
                .sources
                .iter()
                .map(|s| format!("{}/{} ({})", s.connection, s.source, s.events))
                .collect();
            println!(
                "bundled {} events from {} with {} schema files and {} mappings into {}",
                m.events,
                sources.join(", "),
                m.schemas.len(),
                m.mappings.len(),
                output.display()
            );
        }
        BundleCmd::Import { file, format } => {
            let r = session.bundle_import(args("bundle_import", json!({"path": utf8(&file)?}))?)?;
            if format == TableFormat::Json {
                output::json(&r);
                return Ok(());
            }
            println!(
                "imported {} of {} events ({} already in the lake), {} schema files, {} mappings{}",
                r.imported,
                r.events_in_bundle,
                r.already_in_lake,
                r.schema_files,
                r.mappings_added,
                if r.mappings_kept_local > 0 {
                    format!(" ({} kept as mapped here)", r.mappings_kept_local)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct ScopeArgs {
    /// Only this connection's events
    #[arg(long)]
    connection: Option<String>,
    /// Only this source's (topic, queue, stream...) events
    #[arg(long)]
    source: Option<String>,
}

pub(crate) fn maintain(session: &Session, cmd: LakeCmd) -> Result<()> {
    match cmd {
        LakeCmd::Compact {
            scope,
            target_size,
            dry_run,
            format,
        } => {
            let a = args(
                "lake_compact",
                json!({"connection": scope.connection, "source": scope.source,
                       "target_size": target_size, "dry_run": dry_run}),
            )?;
            let stop = stop_flag();
            let r = session.lake_compact_with(a, &mut |_| !stop.load(Ordering::SeqCst))?;
            if format == TableFormat::Json {
                output::json(&r);
                return Ok(());
            }
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            let verb = if r.dry_run { "would merge" } else { "merged" };
            println!(
                "{verb} {} files into {} ({} events, {:.1} MiB{}) in {} partition folders",
                r.files_merged,
                r.files_written,
                r.events,
                mib(r.bytes_before),
                if r.dry_run {
                    String::new()
                } else {
                    format!(" -> {:.1} MiB", mib(r.bytes_after))
                },
                r.folders
            );
            notes(r.files_skipped, r.left_for_later);
        }
        LakeCmd::Prune {
            older_than,
            scope,
            dry_run,
            format,
        } => {
            let a = args(
                "lake_prune",
                json!({"connection": scope.connection, "source": scope.source,
                       "older_than": older_than, "dry_run": dry_run}),
            )?;
            let r = session.lake_prune(a)?;
            if format == TableFormat::Json {
                output::json(&r);
                return Ok(());
            }
            let verb = if r.dry_run { "would remove" } else { "removed" };
            println!(
                "{verb} {} events older than {older_than}: {} files removed, {} written again without them, in {} partition folders",
                r.events_removed, r.files_removed, r.files_rewritten, r.folders
            );
            notes(r.files_skipped, r.left_for_later);
        }
    }
    Ok(())
}

fn notes(skipped: u64, left: u64) {
    if skipped > 0 {
        eprintln!("note: {skipped} files were left as they are (not Sluice's, or from a newer Sluice; see the log)");
    }
    if left > 0 {
        eprintln!("note: {left} replaced files are still on disk because searches were reading them; they are hidden already, and the next compact or prune deletes them");
    }
}

pub(crate) fn search(
    session: &Session,
    filter: String,
    limit: u64,
    format: SearchFormat,
    count: bool,
) -> Result<()> {
    if count {
        println!(
            "{}",
            session.count(args("count", json!({"filter": filter}))?)?
        );
        return Ok(());
    }
    // Whole events, not the window's page of rows: the CLI prints every field.
    let events = session.search_events(&filter, limit, 0)?;
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

pub(crate) fn sql(
    session: &Session,
    query: String,
    format: SearchFormat,
    timeout: u64,
    memory_limit: String,
    max_rows: usize,
) -> Result<()> {
    let limits = sluice_api::SqlLimits {
        timeout: Duration::from_secs(timeout),
        memory_bytes: sluice_api::SqlLimits::parse_bytes(&memory_limit)?,
        max_rows,
    };
    let r = session.sluice().sql(&query, &limits)?;
    match format {
        SearchFormat::Jsonl => {
            output::jsonl(r.rows.iter().map(|r| serde_json::Value::Object(r.clone())))
        }
        SearchFormat::Json => output::json(&r.rows),
        SearchFormat::Table => output::sql_table(&r),
    }
    Ok(())
}

pub(crate) fn export(
    session: &Session,
    filter: String,
    format: String,
    output: PathBuf,
) -> Result<()> {
    let path = output
        .to_str()
        .ok_or_else(|| anyhow!("--output {}: not a UTF-8 path", output.display()))?;
    let n = session.export(args(
        "export",
        json!({"filter": filter, "format": format, "path": path}),
    )?)?;
    println!("exported {n} events to {}", output.display());
    Ok(())
}
