//! Bundles: matching events with the schemas and mappings they need, in one file another
//! machine can import and then search and replay with no access to the original bus or
//! registry (`sluice bundle export 'FILTER' -o incident.sluice`, `sluice bundle import`).
//!
//! A bundle is a zip archive, so anyone can look inside with `unzip -l`:
//! - `sluice-bundle.json`, the manifest ([`BundleManifest`]): format and version, what was
//!   exported and with which filter, the sources and mappings;
//! - `events.parquet`, the events in the standalone export layout (`sluice export --format
//!   parquet`), stored uncompressed in the zip since Parquet is compressed already;
//! - `schemas/NAME`, the stored schema files (descriptor sets, .avsc) the events need.
//!
//! Zip keeps a CRC of every member and its directory at the end: a truncated or damaged
//! bundle fails to open, or fails its check, before anything is imported.

use crate::config::Mapping;
use crate::error::{ApiError, ErrorCode, Result};
use crate::{schemas, Sluice};
use serde::{Deserialize, Serialize};
use sluice_lake::{FlushPolicy, LakeWriter, Query, SourceCount};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

const FORMAT: &str = "sluice-bundle";
/// Bundles this version writes and reads; a bundle of a later version is refused by name.
pub const BUNDLE_VERSION: u32 = 1;
const MANIFEST: &str = "sluice-bundle.json";
const EVENTS: &str = "events.parquet";
const SCHEMAS: &str = "schemas/";
/// Caps on what import reads from a member, whatever the archive claims.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// All schema members together.
const MAX_SCHEMA_BYTES: u64 = 256 << 20;
const MAX_MEMBERS: usize = 10_000;

/// What `sluice-bundle.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct BundleManifest {
    pub format: String,
    pub version: u32,
    /// The Sluice that wrote it.
    pub sluice_version: String,
    pub created_at: String,
    pub filter: String,
    pub events: u64,
    pub sources: Vec<SourceCount>,
    pub mappings: Vec<Mapping>,
    /// Member names under `schemas/`.
    pub schemas: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct BundleImported {
    pub events_in_bundle: u64,
    pub imported: u64,
    /// Events whose ids the lake held already (a bundle imported twice adds nothing).
    pub already_in_lake: u64,
    /// Rows of the bundle without an id, or repeating one: not imported.
    pub skipped_in_bundle: u64,
    pub schema_files: u64,
    pub mappings_added: u64,
    /// Mappings of the bundle left out because this machine maps the same source itself.
    pub mappings_kept_local: u64,
    pub manifest: BundleManifest,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

fn damaged(path: &Path, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        format!(
            "{} is not a complete Sluice bundle (truncated or damaged?): {why}",
            path.display()
        ),
    )
}

impl Sluice {
    /// Writes the events matching `filter`, with the schemas and mappings they need, to
    /// `path` (written aside and renamed: a bundle is whole or absent).
    pub fn bundle_export(&self, filter: &str, path: &Path) -> Result<BundleManifest> {
        let c = Self::compile(filter)?;
        let query = Query::open(&self.lake()?)?;
        let sources = query.sources_of(&c)?;
        let events: u64 = sources.iter().map(|s| s.events).sum();
        if events == 0 {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no events match {filter:?}: nothing to bundle"),
            ));
        }
        let mappings: Vec<Mapping> = self
            .mappings()?
            .into_iter()
            .filter(|m| {
                sources
                    .iter()
                    .any(|s| s.connection == m.connection && s.source == m.topic)
            })
            .map(|m| Mapping { shared: false, ..m })
            .collect();
        let mut types: BTreeSet<String> = sources.iter().flat_map(|s| s.schemas.clone()).collect();
        for m in &mappings {
            types.insert(m.value_type.clone());
            types.extend(m.key_type.clone());
        }
        let schema_files = schemas::files_defining(&self.schema_roots(), &types)?;

        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let scratch = tempfile::tempdir_in(dir).map_err(io(dir))?;
        let events_file = scratch.path().join(EVENTS);
        // A bundle is an export: view-time masks apply to it too.
        let mask = self.view_mask()?;
        let written = query.export_parquet(&c, &events_file, &mut |e| {
            if let Some(m) = &mask {
                crate::redaction::mask_event(m, e);
            }
        })?;
        let manifest = BundleManifest {
            format: FORMAT.into(),
            version: BUNDLE_VERSION,
            sluice_version: env!("CARGO_PKG_VERSION").into(),
            created_at: sluice_model::format_us(sluice_model::now_us()),
            filter: filter.into(),
            events: written,
            sources,
            mappings,
            schemas: schema_files.iter().map(|(n, _)| n.clone()).collect(),
        };
        let partial = scratch.path().join("bundle.partial");
        write_zip(&partial, &manifest, &events_file, &schema_files)
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display())))?;
        std::fs::rename(&partial, path).map_err(io(path))?;
        Ok(manifest)
    }

    /// Adds a bundle's events (those the lake does not hold yet), schemas and mappings (where
    /// this machine has none of its own for the same source).
    pub fn bundle_import(&self, path: &Path) -> Result<BundleImported> {
        let file = std::fs::File::open(path).map_err(io(path))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(path, e))?;
        if zip.len() > MAX_MEMBERS {
            return Err(damaged(path, format!("{} members", zip.len())));
        }
        let manifest = read_manifest(path, &mut zip)?;
        // Events of a connection this machine also has would share its ids and positions:
        // a later capture there would take them for its own and skip real messages.
        let config = self.config()?;
        if let Some(s) = manifest
            .sources
            .iter()
            .find(|s| config.connections.contains_key(&s.connection))
        {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "{}: its events come from a connection named {:?}, and this machine has a connection of that name: they would mix with its own (same ids and offsets). Import into a lake of its own (--lake DIR), or rename your connection",
                    path.display(),
                    s.connection
                ),
            ));
        }
        // Beside the lake, not in /tmp (often RAM): the events may be large.
        let lake_dir = &self.lake_dir;
        std::fs::create_dir_all(lake_dir).map_err(io(lake_dir))?;
        let scratch = tempfile::Builder::new()
            .prefix(".sluice-bundle-")
            .tempdir_in(lake_dir)
            .map_err(io(lake_dir))?;

        // Every member is read and checked before anything changes here.
        let mut schema_paths = Vec::new();
        let mut schema_budget = MAX_SCHEMA_BYTES;
        for name in &manifest.schemas {
            let plain = !name.is_empty()
                && !name.contains(['/', '\\'])
                && !name.starts_with('.')
                && (name.ends_with(".binpb") || name.ends_with(".avsc"));
            if !plain {
                return Err(damaged(path, format!("schema member name {name:?}")));
            }
            let to = scratch.path().join(name);
            let n = extract(
                path,
                &mut zip,
                &format!("{SCHEMAS}{name}"),
                &to,
                schema_budget,
            )?;
            schema_budget -= n;
            schema_paths.push(to);
        }
        // Stored, never compressed: it cannot be larger than the bundle itself.
        let bundle_bytes = std::fs::metadata(path).map_err(io(path))?.len();
        // Not `*.parquet`: other engines globbing the lake must not read it.
        let events_file = scratch.path().join("events.importing");
        extract(path, &mut zip, EVENTS, &events_file, bundle_bytes)?;
        let lake = self.lake()?;
        let query = Query::open(&lake)?;
        let (total, distinct) = query
            .check_export(&events_file)
            .map_err(|e| damaged(path, format!("{EVENTS}: {e}")))?;

        let schema_files = schema_paths.len() as u64;
        if !schema_paths.is_empty() {
            let added = schemas::add(&self.config_dir, &schema_paths, &[])?;
            if let Some(p) = added.errors.first() {
                return Err(ApiError::new(
                    ErrorCode::Schema,
                    format!(
                        "{}: a schema in it does not load: {}",
                        path.display(),
                        p.display
                    ),
                ));
            }
        }
        let mut config = config;
        let (mut mappings_added, mut mappings_kept_local) = (0, 0);
        for m in &manifest.mappings {
            if config.mapping(&m.connection, &m.topic).is_some() {
                mappings_kept_local += 1;
            } else {
                config.mappings.push(m.clone());
                mappings_added += 1;
            }
        }
        if mappings_added > 0 {
            config.save(&self.config_dir)?;
        }

        let mut writer = LakeWriter::new(lake.clone(), FlushPolicy::default());
        let mut imported = 0u64;
        let mut failed = None;
        let read = query.events_missing_from(&events_file, |e| match writer.push(e) {
            Ok(_) => {
                imported += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        read.map_err(|e| damaged(path, format!("{EVENTS}: {e}")))?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        writer.flush()?;
        Ok(BundleImported {
            events_in_bundle: total,
            imported,
            already_in_lake: distinct.saturating_sub(imported),
            skipped_in_bundle: total.saturating_sub(distinct),
            schema_files,
            mappings_added,
            mappings_kept_local,
            manifest,
        })
    }
}

fn write_zip(
    to: &Path,
    manifest: &BundleManifest,
    events: &Path,
    schemas: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(to)?;
    let mut zip = zip::ZipWriter::new(file);
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(std::fs::metadata(events)?.len() >= u32::MAX as u64);
    zip.start_file(MANIFEST, deflated)?;
    zip.write_all(&serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?)?;
    zip.start_file(EVENTS, stored)?;
    std::io::copy(&mut std::fs::File::open(events)?, &mut zip)?;
    for (name, bytes) in schemas {
        zip.start_file(format!("{SCHEMAS}{name}"), deflated)?;
        zip.write_all(bytes)?;
    }
    zip.finish()?.sync_all()
}

fn read_manifest(path: &Path, zip: &mut zip::ZipArchive<std::fs::File>) -> Result<BundleManifest> {
    let mut text = Vec::new();
    zip.by_name(MANIFEST)
        .map_err(|e| damaged(path, format!("{MANIFEST}: {e}")))?
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| damaged(path, format!("{MANIFEST}: {e}")))?;
    // The version is read first, alone: a later format may change everything else.
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: u32,
    }
    let head: Head =
        serde_json::from_slice(&text).map_err(|e| damaged(path, format!("{MANIFEST}: {e}")))?;
    if head.format != FORMAT {
        return Err(damaged(path, format!("format {:?}", head.format)));
    }
    if head.version > BUNDLE_VERSION {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} was written by a newer Sluice (bundle version {}; this one reads up to {BUNDLE_VERSION}): update Sluice to import it",
                path.display(),
                head.version
            ),
        ));
    }
    serde_json::from_slice(&text).map_err(|e| damaged(path, format!("{MANIFEST}: {e}")))
}

/// Copies one member to `to`, reading at most `max` bytes and checking its CRC (the zip
/// reader checks it as the member's end is read).
fn extract(
    path: &Path,
    zip: &mut zip::ZipArchive<std::fs::File>,
    member: &str,
    to: &Path,
    max: u64,
) -> Result<u64> {
    let mut m = zip
        .by_name(member)
        .map_err(|e| damaged(path, format!("{member}: {e}")))?;
    if m.size() > max {
        return Err(damaged(path, format!("{member} claims {} bytes", m.size())));
    }
    let mut out = std::fs::File::create(to).map_err(io(to))?;
    let copied = std::io::copy(&mut (&mut m).take(max), &mut out)
        .map_err(|e| damaged(path, format!("{member}: {e}")))?;
    if copied != m.size() {
        return Err(damaged(
            path,
            format!("{member}: {copied} of {} bytes", m.size()),
        ));
    }
    Ok(copied)
}
