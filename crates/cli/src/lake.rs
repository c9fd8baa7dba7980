//! `sluice search`, `sluice export` and `sluice sql`: the lake, as the window searches and
//! exports it. `sql` has no window counterpart and calls the API directly.

use crate::{args, output, SearchFormat};
use anyhow::{anyhow, Result};
use serde_json::json;
use sluice_api::Session;
use std::path::PathBuf;
use std::time::Duration;

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
