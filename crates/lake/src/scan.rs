//! Which files and rows a filter must read: the files whose sketches and time ranges allow a
//! match, each with the row groups that may hold one, as a `read_parquet` source that also
//! names each row's file and row number (which search uses to fetch a page by row).

use crate::layout::{file_max_time, file_times};
use crate::query::{file_list, parquet_source, Query};
use crate::sketch;
use sluice_filter::{Compiled, Needs};
use std::path::{Path, PathBuf};

/// The columns DuckDB adds to a `parquet_source_with_names` row: its file, and its row there.
pub(crate) const FILENAME: &str = "filename";
pub(crate) const FILE_ROW_NUMBER: &str = "file_row_number";

impl Query {
    /// The files that may hold a match (their sketches and time ranges allow one), newest
    /// first, each with the rows that may; and whether that is every row of every file.
    pub(crate) fn candidates(&self, needs: &Needs) -> (Vec<FileScan>, bool) {
        let all = self.lake().files();
        let total = all.len();
        let mut files: Vec<FileScan> = all
            .into_iter()
            .filter_map(|path| {
                let mut s = None;
                if !sketch::may_match(needs, &path, file_times(&path), &mut s) {
                    return None;
                }
                let rows = sketch::rows_to_read(needs, &mut s, &path);
                if rows.as_ref().is_some_and(Vec::is_empty) {
                    return None;
                }
                Some(FileScan {
                    newest: file_max_time(&path),
                    path,
                    rows,
                })
            })
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.newest));
        let every = files.len() == total && files.iter().all(|f| f.rows.is_none());
        (files, every)
    }

    /// What a filtered query reads, as a FROM item named `events`: the whole view, or only the
    /// files (and rows) that may hold a match; `None` when none can.
    pub(crate) fn events_for(&self, filter: &Compiled) -> Option<String> {
        // Listed now rather than the view made at open: a long-lived query (a replay) sees
        // what captures wrote since, and never a file compaction retired since.
        let whole = || {
            Some(
                crate::query::whole_lake_source(self.lake())
                    .map_or_else(|| "events".into(), |source| format!("{source} AS events")),
            )
        };
        if filter.needs == Needs::Anything {
            return whole();
        }
        match self.candidates(&filter.needs) {
            (_, true) => whole(),
            (files, _) if files.is_empty() => None,
            (files, _) => Some(format!("{} AS events", parquet_source_with_names(&files))),
        }
    }
}

/// A lake file a query reads: its newest event time (from its name), its path, and the row
/// ranges (first, last) that may hold a match, `None` for all of them.
pub(crate) struct FileScan {
    pub(crate) newest: i64,
    pub(crate) path: PathBuf,
    pub(crate) rows: Option<Vec<(u64, u64)>>,
}

impl FileScan {
    pub(crate) fn whole(path: PathBuf) -> Self {
        FileScan {
            newest: 0,
            path,
            rows: None,
        }
    }
}

/// `read_parquet` over some lake files, with each row's `filename` and `file_row_number`. A
/// file read only in part is filtered on its row numbers, which DuckDB turns into skipping the
/// row groups outside them.
pub(crate) fn parquet_source_with_names(files: &[FileScan]) -> String {
    let source = |paths: &[&Path]| {
        parquet_source(&format!(
            "{}, filename = true, file_row_number = true",
            file_list(paths.iter().copied())
        ))
    };
    let whole: Vec<&Path> = files
        .iter()
        .filter(|f| f.rows.is_none())
        .map(|f| f.path.as_path())
        .collect();
    if whole.len() == files.len() {
        return source(&whole);
    }
    let mut parts = Vec::new();
    if !whole.is_empty() {
        parts.push(format!("SELECT * FROM {}", source(&whole)));
    }
    for f in files {
        if let Some(rows) = &f.rows {
            let ranges: Vec<String> = rows
                .iter()
                .map(|(a, b)| format!("{FILE_ROW_NUMBER} BETWEEN {a} AND {b}"))
                .collect();
            parts.push(format!(
                "SELECT * FROM {} WHERE {}",
                source(&[&f.path]),
                ranges.join(" OR ")
            ));
        }
    }
    format!("({})", parts.join(" UNION ALL BY NAME "))
}
