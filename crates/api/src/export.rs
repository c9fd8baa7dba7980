//! Exporting matching events as JSON lines, CSV or Parquet.

use crate::error::{ApiError, ErrorCode, Result};
use crate::{event_json, Sluice};
use sluice_lake::Query;
use sluice_model::Event;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    Parquet,
}

impl Sluice {
    pub fn export(&self, filter: &str, format: ExportFormat, path: &Path) -> Result<u64> {
        let c = Self::compile(filter)?;
        let query = Query::open(&self.lake()?)?;
        let mask = self.view_mask()?;
        let mut shown = |e: &mut Event| {
            if let Some(m) = &mask {
                crate::redaction::mask_event(m, e);
            }
        };
        let io =
            |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()));
        let tmp = path.with_file_name(format!(
            ".{}.partial",
            path.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        ));
        if format == ExportFormat::Parquet {
            return Ok(query.export_parquet(&c, path, &mut shown)?);
        }
        // Text formats: one line or record per event, oldest first, stopping at the first
        // write error.
        let mut n = 0u64;
        let mut each =
            |write: &mut dyn FnMut(&Event) -> std::result::Result<(), String>| -> Result<()> {
                let mut failed = None;
                query.for_each_in_order(&c, None, sluice_lake::Columns::All, |mut e| {
                    shown(&mut e);
                    n += 1;
                    match write(&e) {
                        Ok(()) => true,
                        Err(why) => {
                            failed = Some(why);
                            false
                        }
                    }
                })?;
                failed.map_or(Ok(()), |why| {
                    Err(ApiError::new(
                        ErrorCode::Io,
                        format!("{}: {why}", path.display()),
                    ))
                })
            };
        match format {
            ExportFormat::Jsonl => {
                use std::io::Write;
                let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
                each(&mut |e| writeln!(w, "{}", event_json(e)).map_err(|e| e.to_string()))?;
                w.into_inner()
                    .map_err(|e| io(e.into_error()))?
                    .sync_all()
                    .map_err(io)?;
            }
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_path(&tmp)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
                let cols = [
                    "id",
                    "bus",
                    "connection",
                    "source",
                    "partition",
                    "offset",
                    "timestamp",
                    "key_text",
                    "key",
                    "headers",
                    "schema",
                    "encoding",
                    "decoded",
                    "payload_text",
                    "payload",
                    "size",
                    "truncated",
                    "decode_error",
                    "properties",
                ];
                w.write_record(cols)
                    .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))?;
                each(&mut |e| {
                    let j = event_json(e);
                    let cell = |k: &str| match &j[k] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    w.write_record(cols.iter().map(|k| cell(k)))
                        .map_err(|e| e.to_string())
                })?;
                w.flush().map_err(io)?;
            }
            ExportFormat::Parquet => unreachable!("written above"),
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(n)
    }
}
