//! Compaction and pruning against the real DuckDB: every event kept exactly once, readers
//! running beside them never see an event missing or doubled, and what readers still hold is
//! deleted only later.

use sluice_lake::{
    CompactOptions, FlushPolicy, Lake, LakeError, LakeWriter, PruneOptions, Query, Scope,
};
use sluice_model::{event_id, Bus, Encoding, Event};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_168_800_000_000; // 2026-11-20T10:00:00Z
const HOUR: i64 = 3_600_000_000;

fn event(source: &str, offset: i64, time_us: i64) -> Event {
    let decoded = format!(r#"{{"n":{offset},"note":"order {offset} for walrus-{offset}"}}"#);
    Event {
        id: event_id(Bus::Kafka, "local", source, Some(0), Some(offset), None),
        bus: Bus::Kafka,
        connection: "local".into(),
        source: source.into(),
        partition: Some(0),
        offset: Some(offset),
        sub_offset: None,
        key: Some(format!("k{offset}").into_bytes()),
        key_decoded: None,
        headers: vec![],
        timestamp_us: Some(time_us),
        captured_at_us: T0,
        payload: decoded.clone().into_bytes(),
        size: decoded.len() as i64,
        truncated: false,
        schema: Some("shop.v1.Order".into()),
        encoding: Encoding::Json,
        decoded: Some(decoded),
        payload_text: None,
        decode_error: None,
        properties: None,
    }
}

/// `files` files of `per_file` events each in one folder, one event a second from `start`.
fn write_small_files(lake: &Lake, source: &str, first: i64, files: usize, per_file: usize) {
    let mut w = LakeWriter::new(lake.clone(), FlushPolicy::default());
    let mut offset = first;
    for _ in 0..files {
        for _ in 0..per_file {
            w.push(event(source, offset, T0 + offset * 1_000_000))
                .unwrap();
            offset += 1;
        }
        w.flush().unwrap();
    }
}

fn compile(filter: &str) -> sluice_filter::Compiled {
    sluice_filter::to_sql(filter, T0 + 1000 * HOUR).unwrap()
}

fn all_ids(lake: &Lake, filter: &str) -> Vec<String> {
    let q = Query::open(lake).unwrap();
    let mut ids = Vec::new();
    q.for_each_in_order(&compile(filter), None, sluice_lake::Columns::All, |e| {
        ids.push(e.id);
        true
    })
    .unwrap();
    ids
}

fn count(lake: &Lake, filter: &str) -> u64 {
    Query::open(lake).unwrap().count(&compile(filter)).unwrap()
}

fn tiny_target() -> CompactOptions {
    CompactOptions {
        target_bytes: 1 << 20,
        reader_wait: Duration::from_secs(5),
        ..CompactOptions::default()
    }
}

#[test]
fn compaction_keeps_every_event_once_in_fewer_files_and_search_still_finds_text() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 40, 25);
    assert_eq!(lake.files().len(), 40);
    let before = all_ids(&lake, "");

    let dry = lake
        .compact(
            &CompactOptions {
                dry_run: true,
                ..tiny_target()
            },
            &mut |_| true,
        )
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.files_merged, dry.files_written, dry.events),
        (40, 1, 1000)
    );
    assert_eq!(lake.files().len(), 40, "a dry run changes nothing");

    let r = lake.compact(&tiny_target(), &mut |_| true).unwrap();
    assert_eq!((r.files_merged, r.files_written, r.events), (40, 1, 1000));
    assert_eq!(r.left_for_later, 0);
    assert_eq!(lake.files().len(), 1);
    let on_disk: Vec<_> = std::fs::read_dir(lake.files()[0].parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        on_disk.iter().filter(|n| n.ends_with(".parquet")).count(),
        1,
        "the merged files are deleted, not only hidden: {on_disk:?}"
    );
    assert!(
        !on_disk.iter().any(|n| n.starts_with("_retired-")),
        "{on_disk:?}"
    );
    assert_eq!(all_ids(&lake, ""), before, "same events, same order");
    // The merged file has a sketch: rare text is still found, and only where it is.
    assert_eq!(count(&lake, "walrus-777"), 1);
    assert_eq!(count(&lake, "\"walrus-999\""), 1);
    assert_eq!(count(&lake, "nowhere-to-be-found"), 0);

    let again = lake.compact(&tiny_target(), &mut |_| true).unwrap();
    assert_eq!(again.files_merged, 0, "one file is left alone");
}

#[test]
fn readers_beside_a_compaction_and_a_prune_never_see_an_event_missing_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 30, 20);
    let expected = all_ids(&lake, "");
    assert_eq!(expected.len(), 600);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (lake, stop, expected) = (lake.clone(), stop.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::SeqCst) {
                    if i == 0 {
                        assert_eq!(all_ids(&lake, ""), expected, "after {reads} reads");
                    } else {
                        assert_eq!(count(&lake, "walrus"), 600, "after {reads} reads");
                        assert_eq!(count(&lake, ""), 600, "after {reads} reads");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    // Merge in several rounds, each round's files written while readers run.
    for round in 0..4 {
        let r = lake
            .compact(
                &CompactOptions {
                    target_bytes: 4 << 10 << round,
                    ..tiny_target()
                },
                &mut |_| true,
            )
            .unwrap();
        assert!(r.events <= 600, "{r:?}");
    }
    // A prune that removes nothing: the cutoff is before every event.
    let p = lake
        .prune(&PruneOptions {
            scope: Scope::default(),
            before_us: T0 - HOUR,
            dry_run: false,
            reader_wait: Duration::from_secs(5),
        })
        .unwrap();
    assert_eq!(p.events_removed, 0);
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0, "every reader read at least once");
    }
    assert_eq!(all_ids(&lake, ""), expected);
}

#[test]
fn a_folder_that_readers_keep_busy_is_left_as_it_was_and_merged_by_a_later_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 5, 10);
    let before: BTreeSet<_> = lake.files().into_iter().collect();
    let holder = Query::open(&lake).unwrap();
    let r = lake
        .compact(
            &CompactOptions {
                reader_wait: Duration::from_millis(200),
                ..tiny_target()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        (r.files_merged, r.files_written, r.left_for_later),
        (0, 0, 5)
    );
    let folder = before
        .iter()
        .next()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let names = || -> BTreeSet<String> {
        std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.ends_with(".sketch"))
            .collect()
    };
    assert_eq!(
        lake.files().into_iter().collect::<BTreeSet<_>>(),
        before,
        "nothing changed: {:?}",
        names()
    );
    assert!(names()
        .iter()
        .all(|n| !n.starts_with('_') && !n.ends_with(".tmp")));
    assert_eq!(holder.count(&compile("")).unwrap(), 50);
    drop(holder);
    let later = lake.compact(&tiny_target(), &mut |_| true).unwrap();
    assert_eq!((later.files_merged, later.left_for_later), (5, 0));
    assert_eq!(lake.files().len(), 1);
    assert_eq!(count(&lake, ""), 50);
}

#[test]
fn a_run_killed_between_its_rename_and_its_deletions_is_finished_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 2, 10);
    let files = lake.files();
    let folder = files[0].parent().unwrap().to_path_buf();
    // As a killed run leaves it: the new file (here a copy of the first) is in place, the
    // record naming what it replaces too, and the old file not yet deleted.
    let merged = folder.join("part-9-1-merged00.parquet");
    std::fs::copy(&files[0], &merged).unwrap();
    let old = files[0].file_name().unwrap().to_string_lossy().to_string();
    std::fs::write(
        folder.join("_retired-killed000000.json"),
        serde_json::json!({"replaced_by": "part-9-1-merged00.parquet", "retired": [old]})
            .to_string(),
    )
    .unwrap();
    assert_eq!(
        count(&lake, ""),
        20,
        "the old file is left out while its record holds"
    );
    assert!(!lake.files().contains(&files[0]));
    lake.compact(&tiny_target(), &mut |_| true).unwrap();
    assert!(!files[0].exists(), "the next run deleted it");
    assert!(!folder.join("_retired-killed000000.json").exists());
    assert_eq!(count(&lake, ""), 20);
    let ids = all_ids(&lake, "");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 20);
}

#[test]
fn prune_removes_exactly_the_older_events_and_rewrites_a_file_that_straddles_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    // Three files: offsets 0-99, 100-199, 200-299, one event a second.
    write_small_files(&lake, "orders", 0, 3, 100);
    write_small_files(&lake, "payments", 0, 1, 100);
    let cutoff = T0 + 150 * 1_000_000;
    let only_orders = Scope {
        connection: Some("local".into()),
        source: Some("orders".into()),
    };
    let opts = |dry_run| PruneOptions {
        scope: only_orders.clone(),
        before_us: cutoff,
        dry_run,
        reader_wait: Duration::from_secs(5),
    };
    let dry = lake.prune(&opts(true)).unwrap();
    assert_eq!(
        (dry.events_removed, dry.files_removed, dry.files_rewritten),
        (150, 1, 1)
    );
    assert_eq!(count(&lake, ""), 400, "a dry run changes nothing");
    let r = lake.prune(&opts(false)).unwrap();
    assert_eq!(
        (r.events_removed, r.files_removed, r.files_rewritten),
        (150, 1, 1)
    );
    assert_eq!(count(&lake, "source = orders"), 150);
    assert_eq!(count(&lake, "source = payments"), 100, "out of scope: kept");
    let left: BTreeSet<i64> = Query::open(&lake)
        .unwrap()
        .search(&compile("source = orders"), 1000, 0)
        .unwrap()
        .into_iter()
        .map(|e| e.offset.unwrap())
        .collect();
    assert_eq!(left, (150..300).collect());
    assert_eq!(lake.prune(&opts(false)).unwrap().events_removed, 0);
}

#[test]
fn one_compaction_at_a_time_and_none_beside_a_redecode() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 3, 10);
    let mut in_second = None;
    let first = lake
        .compact(&tiny_target(), &mut |_| {
            in_second = Some(lake.compact(&tiny_target(), &mut |_| true).map(|_| ()));
            true
        })
        .unwrap();
    assert_eq!(first.files_merged, 3);
    match in_second {
        Some(Err(LakeError::Busy(m))) => assert!(m.contains("compact"), "{m}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    write_small_files(&lake, "orders", 100, 3, 10);
    let mut during_redecode = None;
    lake.redecode(
        "local",
        "orders",
        &|s| {
            Some(sluice_lake::Redecoded {
                encoding: "text".into(),
                payload_text: Some(String::from_utf8_lossy(s.payload).into()),
                ..Default::default()
            })
        },
        &mut |_| {
            during_redecode
                .get_or_insert_with(|| lake.compact(&tiny_target(), &mut |_| true).map(|_| ()));
            true
        },
    )
    .unwrap();
    assert!(matches!(during_redecode, Some(Err(LakeError::Busy(_)))));
    assert_eq!(count(&lake, ""), 60);
}

#[test]
fn a_compaction_that_died_before_its_switch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    write_small_files(&lake, "orders", 0, 2, 10);
    let folder = lake.files()[0].parent().unwrap().to_path_buf();
    let names: Vec<String> = lake
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    // A record naming a replacement that was never renamed into place is not in force.
    std::fs::write(
        folder.join("_retired-deadbeef0000.json"),
        serde_json::json!({"replaced_by": "part-9-1-gone.parquet", "retired": names}).to_string(),
    )
    .unwrap();
    assert_eq!(lake.files().len(), 2);
    assert_eq!(count(&lake, ""), 20);
    lake.compact(&tiny_target(), &mut |_| true).unwrap();
    assert_eq!(count(&lake, ""), 20);
    assert!(!folder.join("_retired-deadbeef0000.json").exists());
}
