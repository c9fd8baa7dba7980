//! The lake: captured events as Parquet files under one folder, partitioned Hive-style by
//! `connection=/source=/date=` so DuckDB, Spark, Trino or Athena read the same tree, and the
//! DuckDB queries Sluice runs over it (search, count, read-only SQL, export, replay order).
//!
//! This crate owns the file layout (one table of columns, `columns`, from which the Parquet
//! schema, the views and every read's SELECT list and row decoding derive), atomic writes (and atomic rewrites when events are
//! re-decoded), the removal of what killed writers leave behind, and every SQL string Sluice
//! sends to DuckDB. Raw SQL runs in a child process with hard time and memory limits when
//! the program calls `run_if_worker` first in `main`.
//! It must not talk to buses or decode payloads, and it never splices user text into SQL:
//! filters arrive compiled with bound parameters (sluice-filter); raw SQL runs sandboxed.

mod columns;
mod compact;
mod functions;
mod import;
mod layout;
mod query;
mod redecode;
mod retire;
mod rows;
mod scan;
mod schema;
mod search;
mod sketch;
mod sql_process;
mod temp;
mod writer;

pub use columns::Columns;
pub use compact::{CompactOptions, CompactReport, PruneOptions, PruneReport, Scope};
pub use import::SourceCount;
pub use layout::{Lake, LakeError};
pub use query::{Covered, Query, SqlResult};
pub use redecode::{RedecodeProgress, Redecoded, StoredPayload};
pub use schema::EventRef;
pub use sql_process::{run_if_worker, SqlLimits, MAX_RESULT_BYTES, WORKER_ARG};
pub use writer::{FlushPolicy, FlushStats, LakeWriter};
