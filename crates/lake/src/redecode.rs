//! Re-decoding what is already in the lake: each file of one `connection/source` folder is read,
//! its decode columns are recomputed from the stored payload and key by a function the caller
//! hands in (this crate never decodes), and the file is replaced atomically under the same name,
//! sketch first. Nothing is re-consumed from a bus; every other column is kept as it was.

use crate::columns::{self as col, Column};
use crate::layout::{collect, io_err, Lake, LakeError};
use crate::sketch;
use crate::writer::write_atomically;
use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the decode columns of one row are made from.
#[derive(Debug, Clone)]
pub struct StoredPayload<'a> {
    pub payload: &'a [u8],
    pub key: Option<&'a [u8]>,
    /// The payload was cut at the size cap when captured.
    pub truncated: bool,
    /// The message's headers (a schema id may travel in one).
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// The recomputed decode columns of one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redecoded {
    pub schema: Option<String>,
    /// `protobuf`, `json`, `text`, `binary`, ... as `Encoding::as_str` spells it.
    pub encoding: String,
    pub decoded: Option<String>,
    pub payload_text: Option<String>,
    pub decode_error: Option<String>,
    pub key_decoded: Option<String>,
}

/// Counts for one re-decode run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct RedecodeProgress {
    pub files_done: u64,
    pub files_total: u64,
    pub events: u64,
    /// Events whose decoded JSON, text or error changed.
    pub changed: u64,
    /// Events that now carry a decode error.
    pub errors: u64,
}

impl Lake {
    /// The finished files of one connection's source, across all dates.
    pub fn source_files(&self, connection: &str, source: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect(&self.source_dir(connection, source), &mut out);
        out.sort();
        out
    }

    /// Re-decodes every stored event of `connection`/`source` with `decode`; a row it answers
    /// `None` for keeps its decoding as it is. `progress` is called after each file; returning
    /// false stops before the next one (files already rewritten stay rewritten, the rest keep
    /// their old decoding: both are whole files).
    pub fn redecode(
        &self,
        connection: &str,
        source: &str,
        decode: &(dyn Fn(StoredPayload<'_>) -> Option<Redecoded> + Sync),
        progress: &mut dyn FnMut(&RedecodeProgress) -> bool,
    ) -> Result<RedecodeProgress, LakeError> {
        let _not_beside_compaction = crate::retire::redecode_lock(self.root())?;
        let files = self.source_files(connection, source);
        let mut p = RedecodeProgress {
            files_total: files.len() as u64,
            ..RedecodeProgress::default()
        };
        for path in files {
            let perr = |reason: String| LakeError::Parquet {
                path: path.display().to_string(),
                reason,
            };
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                // A concurrent compaction or delete removed it: nothing left to re-decode.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| perr(e.to_string()))?;
            let mut batches = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| perr(e.to_string()))?;
                batches.push(redecode_batch(&path, &batch, decode, &mut p)?);
            }
            let Some(schema) = batches.first().map(RecordBatch::schema) else {
                continue;
            };
            let merged = arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| perr(e.to_string()))?;
            if let Err(e) = sketch::of_batch(&merged).write(&path) {
                // Without a fresh sketch, search must read the file every time.
                tracing::warn!("no search sketch for {}: {e}", path.display());
                let _ = std::fs::remove_file(sketch::sketch_path(&path));
            }
            write_atomically(&path, schema, |w| w.write(&merged))?;
            p.files_done += 1;
            if !progress(&p) {
                break;
            }
        }
        Ok(p)
    }
}

fn redecode_batch(
    path: &Path,
    batch: &RecordBatch,
    decode: &(dyn Fn(StoredPayload<'_>) -> Option<Redecoded> + Sync),
    p: &mut RedecodeProgress,
) -> Result<RecordBatch, LakeError> {
    let bad = |column: &str, why: &str| LakeError::Parquet {
        path: path.display().to_string(),
        reason: format!("column {column}: {why}"),
    };
    let column = |c: &Column| {
        batch
            .column_by_name(c.name)
            .ok_or_else(|| bad(c.name, "missing"))
    };
    let type_of = |c: Column| move || bad(c.name, "unexpected type");
    let payload = column(&col::PAYLOAD)?
        .as_binary_opt::<i32>()
        .ok_or_else(type_of(col::PAYLOAD))?;
    let key = column(&col::KEY)?
        .as_binary_opt::<i32>()
        .ok_or_else(type_of(col::KEY))?;
    let truncated = column(&col::TRUNCATED)?
        .as_boolean_opt()
        .ok_or_else(type_of(col::TRUNCATED))?;
    let headers = column(&col::HEADERS)?
        .as_list_opt::<i32>()
        .ok_or_else(type_of(col::HEADERS))?;
    let header_items = headers
        .values()
        .as_struct_opt()
        .ok_or_else(type_of(col::HEADERS))?;
    let header_keys = header_items
        .column_by_name("key")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| bad("headers.key", "missing or not text"))?;
    let header_values = header_items
        .column_by_name("value")
        .and_then(|c| c.as_binary_opt::<i32>())
        .ok_or_else(|| bad("headers.value", "missing or not bytes"))?;
    let old = |c: &Column| {
        column(c)
            .ok()
            .and_then(|c| c.as_string_opt::<i32>().cloned())
    };
    let (old_decoded, old_text, old_error) = (
        old(&col::DECODED),
        old(&col::PAYLOAD_TEXT),
        old(&col::DECODE_ERROR),
    );
    let (old_schema, old_encoding, old_key) = (
        old(&col::SCHEMA),
        old(&col::ENCODING),
        old(&col::KEY_DECODED),
    );
    let mut schema_of = StringBuilder::new();
    let mut encoding = StringBuilder::new();
    let mut decoded = StringBuilder::new();
    let mut payload_text = StringBuilder::new();
    let mut decode_error = StringBuilder::new();
    let mut key_decoded = StringBuilder::new();
    let stored = |i: usize| StoredPayload {
        payload: if payload.is_valid(i) {
            payload.value(i)
        } else {
            &[]
        },
        key: key.is_valid(i).then(|| key.value(i)),
        truncated: truncated.is_valid(i) && truncated.value(i),
        headers: if headers.is_valid(i) {
            let o = headers.value_offsets();
            (o[i] as usize..o[i + 1] as usize)
                .filter(|&j| header_values.is_valid(j))
                .map(|j| (header_keys.value(j), header_values.value(j)))
                .collect()
        } else {
            Vec::new()
        },
    };
    // Decoding is the work here: all cores share it (rayon keeps the rows' order), and the
    // columns are then built on this thread.
    use rayon::prelude::*;
    let results: Vec<Option<Redecoded>> = (0..batch.num_rows())
        .into_par_iter()
        .with_min_len(256)
        .map(|i| decode(stored(i)))
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        let text = |c: &Option<StringArray>| at(c, i).map(str::to_string);
        let r = r.unwrap_or_else(|| Redecoded {
            schema: text(&old_schema),
            encoding: text(&old_encoding).unwrap_or_else(|| "binary".into()),
            decoded: text(&old_decoded),
            payload_text: text(&old_text),
            decode_error: text(&old_error),
            key_decoded: text(&old_key),
        });
        p.events += 1;
        if r.decode_error.is_some() {
            p.errors += 1;
        }
        if (at(&old_decoded, i), at(&old_text, i), at(&old_error, i))
            != (
                r.decoded.as_deref(),
                r.payload_text.as_deref(),
                r.decode_error.as_deref(),
            )
        {
            p.changed += 1;
        }
        schema_of.append_option(r.schema.as_deref());
        encoding.append_option(Some(&r.encoding));
        decoded.append_option(r.decoded.as_deref());
        payload_text.append_option(r.payload_text.as_deref());
        decode_error.append_option(r.decode_error.as_deref());
        key_decoded.append_option(r.key_decoded.as_deref());
    }
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (c, mut b) in [
        (col::SCHEMA, schema_of),
        (col::ENCODING, encoding),
        (col::DECODED, decoded),
        (col::PAYLOAD_TEXT, payload_text),
        (col::DECODE_ERROR, decode_error),
        (col::KEY_DECODED, key_decoded),
    ] {
        let idx = schema
            .index_of(c.name)
            .map_err(|_| bad(c.name, "missing"))?;
        columns[idx] = Arc::new(b.finish());
    }
    RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Parquet {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn at(c: &Option<StringArray>, i: usize) -> Option<&str> {
    c.as_ref().and_then(|c| c.is_valid(i).then(|| c.value(i)))
}
