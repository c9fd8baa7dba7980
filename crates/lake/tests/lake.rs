//! The lake against the real DuckDB: atomic batched writes, every filter construct executed,
//! hostile values inert, sandboxed SQL, and the offsets a re-capture must skip.

use sluice_lake::{FlushPolicy, Lake, LakeError, LakeWriter, Query, SqlLimits, SqlResult};
use sluice_model::{event_id, Bus, Encoding, Event, Header};
use std::time::Duration;

/// `sql_limited` with a time and row limit and the default memory limit, as these tests run it.
trait SqlWithin {
    fn sql(&self, sql: &str, timeout: Duration, max_rows: usize) -> Result<SqlResult, LakeError>;
}

impl SqlWithin for Query {
    fn sql(&self, sql: &str, timeout: Duration, max_rows: usize) -> Result<SqlResult, LakeError> {
        self.sql_limited(
            sql,
            &SqlLimits {
                timeout,
                max_rows,
                ..SqlLimits::default()
            },
        )
    }
}

const T0: i64 = 1_795_168_800_000_000; // 2026-11-20T10:00:00Z

/// A lake in a fresh temporary folder and a writer that flushes every `max_rows` rows.
fn writer_in_tempdir(max_rows: usize) -> (tempfile::TempDir, Lake, LakeWriter) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let w = LakeWriter::new(
        lake.clone(),
        FlushPolicy {
            max_rows,
            ..FlushPolicy::default()
        },
    );
    (dir, lake, w)
}

fn event(partition: i32, offset: i64, decoded: Option<&str>, text: Option<&str>) -> Event {
    Event {
        id: event_id(Bus::Kafka, "local", "orders", Some(partition), Some(offset), None),
        bus: Bus::Kafka,
        connection: "local".into(),
        source: "orders".into(),
        partition: Some(partition),
        offset: Some(offset),
        sub_offset: None,
        key: Some(format!("k{offset}").into_bytes()),
        key_decoded: None,
        headers: vec![
            Header {
                key: "trace-id".into(),
                value: Some(format!("t{offset}").into_bytes()),
            },
            Header {
                key: "bin".into(),
                value: Some(vec![0xff, 0xfe]),
            },
            Header {
                key: "nothing".into(),
                value: None,
            },
        ],
        timestamp_us: Some(T0 + offset * 1_000_000),
        captured_at_us: T0,
        payload: decoded.or(text).unwrap_or("").as_bytes().to_vec(),
        size: 10,
        truncated: false,
        schema: decoded.map(|_| "shop.v1.Order".to_string()),
        encoding: if decoded.is_some() {
            Encoding::Json
        } else {
            Encoding::Text
        },
        decoded: decoded.map(str::to_string),
        payload_text: text.map(str::to_string),
        decode_error: None,
        properties: (offset % 2 == 0).then(|| {
            format!(r#"{{"exchange":"shop","routing_key":"order.created","correlation_id":"c{offset}","priority":{offset}}}"#)
        }),
    }
}

fn sample_lake() -> (tempfile::TempDir, Lake) {
    let (dir, lake, mut w) = writer_in_tempdir(3);
    let mut written = 0;
    let mut push = |w: &mut LakeWriter, e: Event| {
        written += w.push(e).unwrap().map_or(0, |s| s.rows);
    };
    push(
        &mut w,
        event(
            0,
            1,
            Some(
                r#"{"status":"FAILED","amount":150.5,"order":{"customer":{"id":"42"}},"items":[{"sku":"A-1"}]}"#,
            ),
            None,
        ),
    );
    push(
        &mut w,
        event(
            0,
            2,
            Some(r#"{"status":"OK","amount":20,"refund":{"reason":"late"}}"#),
            None,
        ),
    );
    push(&mut w, event(1, 3, None, Some("Payment DECLINED by bank")));
    let mut bad = event(1, 4, None, None);
    bad.decode_error = Some("not a valid shop.v1.Order".into());
    bad.encoding = Encoding::Binary;
    bad.payload = vec![0x80, 0xff];
    bad.key = Some(vec![0xc3, 0x28]); // invalid UTF-8 key
    push(&mut w, bad);
    assert!(w.buffered() >= 1);
    let stats = w.flush().unwrap();
    assert_eq!(
        written + stats.rows,
        4,
        "every event reported durable exactly once"
    );
    assert_eq!(w.buffered(), 0);
    assert_eq!(
        lake.files().len(),
        2,
        "three rows were written at the row limit, one at flush"
    );
    (dir, lake)
}

fn ids(q: &Query, filter: &str) -> Vec<i64> {
    let c = sluice_filter::to_sql(filter, T0 + 10_000_000).unwrap();
    q.search(&c, 100, 0)
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
        .iter()
        .map(|e| e.offset.unwrap())
        .collect()
}

#[test]
fn files_are_hive_partitioned_and_never_half_written() {
    let (dir, lake) = sample_lake();
    for f in lake.files() {
        let rel = f
            .strip_prefix(dir.path())
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            rel.starts_with("connection=local/source=orders/date=2026-11-20/part-"),
            "{rel}"
        );
    }
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.rsplit('/').next().unwrap().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

#[test]
fn every_filter_construct_runs_on_duckdb() {
    let (_d, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    assert_eq!(ids(&q, ""), vec![4, 3, 2, 1], "newest first");
    // A page too large to fetch by row number reads whole rows in one pass, in the same order.
    let all = sluice_filter::to_sql("", T0).unwrap();
    let wide: Vec<i64> = q
        .search(&all, 3000, 0)
        .unwrap()
        .iter()
        .map(|e| e.offset.unwrap())
        .collect();
    assert_eq!(wide, vec![4, 3, 2, 1]);
    assert_eq!(ids(&q, "\"payment declined\""), vec![3]);
    assert_eq!(ids(&q, "declined"), vec![3]);
    assert_eq!(ids(&q, "order.customer.id = 42"), vec![1]);
    assert_eq!(ids(&q, "status in (\"FAILED\", \"RETRY\")"), vec![1]);
    assert_eq!(ids(&q, "amount > 100.5"), vec![1]);
    assert_eq!(ids(&q, "amount > 150.5"), Vec::<i64>::new());
    assert_eq!(ids(&q, "amount >= 100.5"), vec![1]);
    assert_eq!(ids(&q, "items[0].sku = \"A-1\""), vec![1]);
    assert_eq!(ids(&q, "exists(refund)"), vec![2]);
    assert_eq!(ids(&q, "refund exists"), vec![2]);
    assert_eq!(
        ids(&q, "source = orders and topic = orders and partition = 1"),
        vec![4, 3]
    );
    assert_eq!(ids(&q, "offset >= 3"), vec![4, 3]);
    assert_eq!(ids(&q, "key = \"k2\""), vec![2]);
    assert_eq!(ids(&q, "key ~ \"^k[13]$\""), vec![3, 1]);
    assert_eq!(ids(&q, "header.trace-id = \"t3\""), vec![3]);
    assert_eq!(ids(&q, "header.trace-id ~ \"t[12]\""), vec![2, 1]);
    assert_eq!(ids(&q, "header.trace-id != \"t3\""), vec![4, 2, 1]);
    assert_eq!(
        ids(&q, "header.nothing exists and not header.missing exists"),
        vec![4, 3, 2, 1]
    );
    assert_eq!(ids(&q, "schema = shop.v1.Order"), vec![2, 1]);
    assert_eq!(ids(&q, "decode_error exists"), vec![4]);
    assert_eq!(ids(&q, "decode_error ~ \"valid\""), vec![4]);
    assert_eq!(ids(&q, "after:2026-11-20T10:00:03Z"), vec![4, 3]);
    assert_eq!(ids(&q, "before:2026-11-20T10:00:02Z"), vec![1]);
    assert_eq!(ids(&q, "last:8s"), vec![4, 3, 2]);
    assert_eq!(
        ids(
            &q,
            "status ~ \"FAIL\" or (partition = 1 and not decode_error exists)"
        ),
        vec![3, 1]
    );
    assert_eq!(
        ids(&q, "not status = \"OK\""),
        vec![4, 3, 1],
        "missing fields count as not equal"
    );
    assert_eq!(ids(&q, "routing_key ~ \"^order\\.\""), vec![4, 2]);
    assert_eq!(ids(&q, "event.exchange = shop"), vec![4, 2]);
    assert_eq!(ids(&q, "property.correlation_id = \"c4\""), vec![4]);
    assert_eq!(ids(&q, "property.priority > 2"), vec![4]);
    assert_eq!(ids(&q, "property.correlation_id exists"), vec![4, 2]);
    // A rare value is looked up through the file sketches: files without it are skipped.
    assert_eq!(ids(&q, "status = FAILED"), vec![1]);
    assert_eq!(ids(&q, "status = NOWHERE"), Vec::<i64>::new());
    assert_eq!(ids(&q, "\"by bank\""), vec![3]);
    assert_eq!(ids(&q, "\"DECLINED BY\""), vec![3], "any case");
    let c = sluice_filter::to_sql("partition = 0", 0).unwrap();
    assert_eq!(q.count(&c).unwrap(), 2);
    let c = sluice_filter::to_sql("status = NOWHERE", 0).unwrap();
    assert_eq!(q.count(&c).unwrap(), 0);
}

#[test]
fn events_round_trip_bytes_and_headers() {
    let (_d, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    let all = q
        .search(&sluice_filter::to_sql("offset = 4", 0).unwrap(), 10, 0)
        .unwrap();
    let e = &all[0];
    assert_eq!(e.key.as_deref(), Some(&[0xc3, 0x28][..]));
    assert_eq!(e.payload, vec![0x80, 0xff]);
    assert_eq!(e.headers[1].value.as_deref(), Some(&[0xff, 0xfe][..]));
    assert_eq!(e.headers[2].value, None);
    assert_eq!(e.timestamp_us, Some(T0 + 4_000_000));
}

#[test]
fn hostile_filter_values_are_inert() {
    let (dir, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    for f in [
        "status = \"x'; DROP VIEW events; --\"",
        "\"'; COPY (SELECT 1) TO '/tmp/sluice-pwned.csv'; --\"",
        "source = \"orders' OR '1'='1\"",
        "header.\"x = 1",
        "a;DROP = 1",
        "status ~ \"a|b\" and key = \"; SELECT * FROM read_csv('/etc/passwd')\"",
    ] {
        if let Ok(c) = sluice_filter::to_sql(f, 0) {
            assert_eq!(q.search(&c, 10, 0).unwrap().len(), 0, "{f}");
        }
    }
    assert!(!std::path::Path::new("/tmp/sluice-pwned.csv").exists());
    assert_eq!(ids(&q, ""), vec![4, 3, 2, 1], "the view is still there");
    assert_eq!(lake.files().len(), 2);
    drop(dir);
}

#[test]
fn sql_is_read_only_and_sandboxed() {
    let (_d, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    let r = q
        .sql(
            "SELECT partition, count(*) AS n FROM events GROUP BY ALL ORDER BY partition",
            Duration::from_secs(10),
            100,
        )
        .unwrap();
    assert_eq!(r.columns, vec!["partition", "n"]);
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[1]["n"], 2);
    for bad in [
        "COPY (SELECT 1) TO '/tmp/sluice-sql-pwned.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
        "SELECT 1; SELECT 2",
        "DROP VIEW events",
        "ATTACH '/tmp/sluice-x.db'",
        "INSTALL httpfs",
    ] {
        assert!(
            q.sql(bad, Duration::from_secs(10), 100).is_err(),
            "{bad} was allowed"
        );
    }
    assert!(!std::path::Path::new("/tmp/sluice-sql-pwned.csv").exists());
    let slow = q.sql(
        "SELECT count(*) FROM range(1000000000000) a",
        Duration::from_millis(300),
        10,
    );
    assert!(
        matches!(slow, Err(sluice_lake::LakeError::Timeout(_))),
        "{slow:?}"
    );
}

#[test]
fn covered_offsets_are_intervals() {
    let (_d, lake) = sample_lake();
    let c = Query::open(&lake)
        .unwrap()
        .covered("local", "orders")
        .unwrap();
    assert!(c.contains(0, 1) && c.contains(0, 2) && c.contains(1, 3) && c.contains(1, 4));
    assert!(!c.contains(0, 3) && !c.contains(1, 2) && !c.contains(2, 1));
    let empty = Lake::open(tempfile::tempdir().unwrap().path()).unwrap();
    let q = Query::open(&empty).unwrap();
    assert!(q.covered("local", "orders").unwrap().is_empty());
    assert!(q
        .search(&sluice_filter::to_sql("status = 1", 0).unwrap(), 10, 0)
        .unwrap()
        .is_empty());
}

#[test]
fn a_page_deep_in_a_large_result_is_the_same_page_a_full_sort_gives() {
    let (_dir, lake, mut w) = writer_in_tempdir(3_000);
    let n = 12_100i64;
    for i in 0..n {
        let mut e = event((i % 2) as i32, i, Some(&format!(r#"{{"n":{i}}}"#)), None);
        // Time runs backwards against offsets in places, so file order is not result order.
        e.timestamp_us = Some(T0 + ((i * 7919) % n) * 1_000);
        w.push(e).unwrap();
    }
    w.flush().unwrap();
    let mut truth: Vec<(i64, i64)> = (0..n).map(|i| ((i * 7919) % n, i)).collect();
    truth.sort_by(|a, b| b.cmp(a));
    let q = Query::open(&lake).unwrap();
    let c = sluice_filter::to_sql("", 0).unwrap();
    // Below and above the depth where DuckDB starts skipping by itself.
    for skip in [9_990u64, 12_000, 12_090] {
        let got: Vec<i64> = q
            .search(&c, 20, skip)
            .unwrap()
            .iter()
            .map(|e| e.offset.unwrap())
            .collect();
        let want: Vec<i64> = truth
            .iter()
            .skip(skip as usize)
            .take(20)
            .map(|t| t.1)
            .collect();
        assert_eq!(got, want, "skip {skip}");
    }
}

#[test]
fn newest_first_over_many_files_matches_a_full_sort() {
    let (_dir, lake, mut w) = writer_in_tempdir(7);
    // Out-of-order times across files (producer time is not arrival order), a few without time.
    let mut all = Vec::new();
    for i in 0..100i64 {
        let mut e = event(
            (i % 3) as i32,
            i,
            Some(&format!(r#"{{"n":{i},"even":{}}}"#, i % 2 == 0)),
            None,
        );
        e.timestamp_us = if i % 17 == 0 {
            None
        } else {
            Some(T0 + ((i * 37) % 100) * 1_000_000)
        };
        // Captured later than most, without a broker time of their own: they belong in the
        // middle of the list, not after it.
        e.captured_at_us = T0 + (i % 100) * 1_000_000 + 500_000;
        all.push(e.clone());
        w.push(e).unwrap();
    }
    w.flush().unwrap();
    assert!(lake.files().len() > 10);
    let q = Query::open(&lake).unwrap();
    for (filter, keep) in [
        ("", &(|_: &Event| true) as &dyn Fn(&Event) -> bool),
        ("even = true", &|e: &Event| e.offset.unwrap() % 2 == 0),
    ] {
        let mut truth: Vec<&Event> = all.iter().filter(|e| keep(e)).collect();
        // Newest first by broker time, else capture time (events of buses without one).
        truth.sort_by(|a, b| {
            let ts = |e: &Event| e.timestamp_us.unwrap_or(e.captured_at_us);
            ts(b)
                .cmp(&ts(a))
                .then(b.captured_at_us.cmp(&a.captured_at_us))
                .then(b.offset.cmp(&a.offset))
        });
        let c = sluice_filter::to_sql(filter, 0).unwrap();
        // Pages over 2,000 rows read whole rows; smaller ones, at any depth, fetch by row.
        for (limit, skip) in [
            (1, 0),
            (5, 0),
            (10, 3),
            (60, 0),
            (200, 0),
            (10, 95),
            (3000, 0),
            (2500, 40),
        ] {
            let got: Vec<i64> = q
                .search(&c, limit, skip)
                .unwrap()
                .iter()
                .map(|e| e.offset.unwrap())
                .collect();
            let want: Vec<i64> = truth
                .iter()
                .skip(skip as usize)
                .take(limit as usize)
                .map(|e| e.offset.unwrap())
                .collect();
            assert_eq!(got, want, "filter {filter:?} limit {limit} skip {skip}");
        }
    }
}

#[test]
fn parquet_export_streams_a_standalone_file() {
    let (_d, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("x.parquet");
    let n = q
        .export_parquet(
            &sluice_filter::to_sql("partition = 0", 0).unwrap(),
            &path,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(n, 2);
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let (rows, sources, first): (i64, String, i64) = conn
        .query_row(
            &format!(
                "SELECT count(*), string_agg(DISTINCT source), min(\"offset\") FROM read_parquet('{}')",
                path.display()
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, sources.as_str(), first),
        (2, "orders", 1),
        "partition columns are inside the file"
    );
    assert!(std::fs::read_dir(out.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("tmp")));
}

#[test]
fn histogram_counts_matches_per_time_bucket() {
    let (_dir, lake) = sample_lake();
    let q = Query::open(&lake).unwrap();
    let all = sluice_filter::to_sql("", T0).unwrap();
    let (start, width, counts) = q.histogram(&all, 3).unwrap();
    assert_eq!(start, T0 + 1_000_000, "starts at the first match");
    assert_eq!(counts.iter().sum::<u64>(), 4);
    assert_eq!(counts, vec![2, 1, 1]);
    assert!(
        start + 3 * width > T0 + 4_000_000,
        "the last match falls inside"
    );
    let failed = sluice_filter::to_sql("status = \"FAILED\"", T0).unwrap();
    assert_eq!(q.histogram(&failed, 10).unwrap().2.iter().sum::<u64>(), 1);
    let none = sluice_filter::to_sql("status = \"NOPE\"", T0).unwrap();
    assert_eq!(q.histogram(&none, 10).unwrap(), (0, 0, Vec::new()));
}

#[test]
fn redecode_rewrites_decode_columns_in_place_and_search_sees_them() {
    use sluice_lake::{Redecoded, StoredPayload};
    let (_d, lake) = sample_lake();
    let before: Vec<_> = lake.source_files("local", "orders");
    assert!(!before.is_empty());
    assert!(lake.source_files("local", "elsewhere").is_empty());
    let q = Query::open(&lake).unwrap();
    let total = q.count(&compile("")).unwrap();
    let upper = |s: StoredPayload<'_>| {
        Some(Redecoded {
            schema: Some("test.Upper".into()),
            encoding: "json".into(),
            decoded: Some(format!(
                r#"{{"shout":{}}}"#,
                serde_json::to_string(&String::from_utf8_lossy(s.payload).to_uppercase()).unwrap()
            )),
            key_decoded: s.key.map(|k| format!("\"{}\"", String::from_utf8_lossy(k))),
            ..Redecoded::default()
        })
    };
    let mut seen = Vec::new();
    let done = lake
        .redecode("local", "orders", &upper, &mut |p| {
            seen.push(p.files_done);
            true
        })
        .unwrap();
    assert_eq!(done.files_done, before.len() as u64);
    assert_eq!(done.events, total);
    assert_eq!(done.changed, total, "every row's decoding changed");
    assert_eq!(seen, (1..=before.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        lake.source_files("local", "orders"),
        before,
        "same file names"
    );
    let q = Query::open(&lake).unwrap();
    assert_eq!(q.count(&compile("schema = test.Upper")).unwrap(), total);
    assert_eq!(q.count(&compile("exists(shout)")).unwrap(), total);
    assert_eq!(q.count(&compile("shout ~ \"FAILED\"")).unwrap(), 1);
    assert_eq!(
        q.count(&compile("\"failed\"")).unwrap(),
        1,
        "free text uses the new sketch"
    );
    // Everything else is kept: ids, offsets and raw bytes.
    let ev = q.search(&compile("offset = 1"), 1, 0).unwrap();
    assert_eq!(
        ev[0].id,
        event_id(Bus::Kafka, "local", "orders", Some(0), Some(1), None)
    );
    assert!(ev[0].payload.starts_with(br#"{"status":"FAILED""#));
    assert_eq!(ev[0].key_decoded.as_deref(), Some("\"k1\""));
    // Stopping after the first file leaves whole files either way.
    let again = lake
        .redecode(
            "local",
            "orders",
            &|_| Some(Redecoded::default()),
            &mut |_| false,
        )
        .unwrap();
    assert_eq!(again.files_done, 1);
    assert_eq!(
        Query::open(&lake)
            .unwrap()
            .count(&compile("schema = test.Upper"))
            .unwrap()
            + again.events,
        total
    );
}

fn compile(filter: &str) -> sluice_filter::Compiled {
    sluice_filter::to_sql(filter, T0 + 10_000_000).unwrap()
}

/// Rare text spread over the row groups of large files: the block sketches let queries read
/// only some row groups, and every query still finds exactly the matching rows.
#[test]
fn rare_text_in_some_row_groups_is_found_by_every_query() {
    let (_dir, lake, mut w) = writer_in_tempdir(45_000);
    let rare = |i: i64| i % 20_011 == 7;
    for i in 0..90_000i64 {
        let note = if rare(i) {
            "Payment DECLINED by bank"
        } else if i % 3 == 0 {
            "payment accepted"
        } else {
            "order declined"
        };
        let (decoded, text) = if i % 5 == 0 {
            (None, Some(format!("plain {note} {i}")))
        } else {
            (Some(format!(r#"{{"n":{i},"note":"{note}"}}"#)), None)
        };
        let mut e = event((i % 2) as i32, i, decoded.as_deref(), text.as_deref());
        e.timestamp_us = Some(T0 + i);
        w.push(e).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(lake.files().len(), 2);
    let q = Query::open(&lake).unwrap();
    let want: Vec<i64> = (0..90_000).rev().filter(|&i| rare(i)).collect();
    assert!(want.len() >= 4);
    for filter in [
        r#""payment declined""#,
        r#""declined by" and partition >= 0"#,
        r#""payment declined" or "no such phrase anywhere""#,
    ] {
        let c = compile(filter);
        let got: Vec<i64> = q
            .search(&c, 100, 0)
            .unwrap()
            .iter()
            .map(|e| e.offset.unwrap())
            .collect();
        assert_eq!(got, want, "{filter}");
        assert_eq!(q.count(&c).unwrap(), want.len() as u64, "{filter}");
        let mut sent = Vec::new();
        q.for_each_in_order(&c, None, sluice_lake::Columns::ForSending, |e| {
            sent.push(e.offset.unwrap());
            true
        })
        .unwrap();
        assert_eq!(
            sent,
            want.iter().rev().copied().collect::<Vec<_>>(),
            "{filter}"
        );
    }
    // Common words in every block, or a condition the sketch cannot narrow, read everything.
    let declined = (0..90_000).filter(|&i| rare(i) || i % 3 != 0).count() as u64;
    assert_eq!(q.count(&compile(r#""declined""#)).unwrap(), declined);
    assert_eq!(
        q.count(&compile(r#""payment declined" or partition = 1"#))
            .unwrap(),
        45_000 + want.iter().filter(|i| *i % 2 == 0).count() as u64
    );
}

/// Replay's order written as one SQL window over the matches (the filter's WHERE comes first):
/// the ids of events with an offset, oldest first by the running maximum of time per partition.
fn window_order(q: &Query, condition: &str) -> Vec<String> {
    q.sql(
        &format!(
            "SELECT id FROM (SELECT *, max(coalesce(epoch_us(timestamp), epoch_us(captured_at))) OVER \
             (PARTITION BY connection, source, partition ORDER BY \"offset\" ROWS UNBOUNDED PRECEDING) AS o \
             FROM events WHERE \"offset\" IS NOT NULL AND {condition}) ORDER BY o, connection, source, partition, \"offset\""
        ),
        Duration::from_secs(30),
        10_000,
    )
    .unwrap()
    .rows
    .iter()
    .map(|r| r["id"].as_str().unwrap().to_string())
    .collect()
}

/// Replay's order, worked out in memory, against the same order written as SQL: oldest
/// first, each partition in offset order even where producer times go backwards, events
/// without time or offset included, across many files and two sources.
#[test]
fn oldest_first_keeps_partition_order_like_the_sql_window() {
    let (_dir, lake, mut w) = writer_in_tempdir(13);
    for i in 0..300i64 {
        let mut e = event((i % 4) as i32, i, Some(&format!(r#"{{"n":{i}}}"#)), None);
        e.timestamp_us = match i % 11 {
            0 => None,
            _ => Some(T0 + ((i * 7919) % 300) * 1_000),
        };
        if i % 5 == 0 {
            e.source = "payments".into();
            e.id = event_id(Bus::Kafka, "local", "payments", e.partition, e.offset, None);
        }
        if i % 23 == 0 {
            e.bus = Bus::Amqp;
            e.source = "queue".into();
            e.partition = None;
            e.offset = None;
            e.id = format!("amqp-{i}");
            e.payload = format!("p{i}").into_bytes();
        }
        w.push(e).unwrap();
    }
    w.flush().unwrap();
    assert!(lake.files().len() > 20);
    let q = Query::open(&lake).unwrap();
    let truth = |condition: &str| window_order(&q, condition);
    for (filter, condition, limit, amqp_matches) in [
        ("", "true", None, 14),
        ("", "true", Some(50), 14),
        ("n > 100", "\"offset\" > 100", None, 9),
    ] {
        let mut got = Vec::new();
        let mut amqp = 0;
        q.for_each_in_order(&compile(filter), limit, sluice_lake::Columns::All, |e| {
            assert!(!e.payload.is_empty() && e.decoded.is_some());
            if e.offset.is_some() {
                got.push(e.id);
            } else {
                amqp += 1;
            }
            true
        })
        .unwrap();
        match limit {
            None => {
                assert_eq!(got, truth(condition), "{filter:?}");
                assert_eq!(amqp, amqp_matches, "{filter:?}");
            }
            Some(l) => assert_eq!(got.len() + amqp, l as usize),
        }
    }
}

/// The usual lake, where times rise with offsets in every partition, takes the single sort;
/// one time going backwards in one partition must bring the window back. Both match it.
#[test]
fn oldest_first_with_times_in_offset_order_and_with_one_going_back() {
    for backwards in [None, Some(137i64)] {
        let (_dir, lake, mut w) = writer_in_tempdir(17);
        for i in 0..240i64 {
            let mut e = event((i % 3) as i32, i, Some(&format!(r#"{{"n":{i}}}"#)), None);
            // Partitions interleave in time; equal times within a partition fall to offsets.
            e.timestamp_us = Some(T0 + (i / 2) * 1_000 + (i % 3) * 333);
            if backwards == Some(i) {
                e.timestamp_us = Some(T0);
            }
            w.push(e).unwrap();
        }
        w.flush().unwrap();
        let q = Query::open(&lake).unwrap();
        for (filter, condition) in [("", "true"), ("n >= 60", "\"offset\" >= 60")] {
            let mut got = Vec::new();
            q.for_each_in_order(
                &compile(filter),
                None,
                sluice_lake::Columns::ForSending,
                |e| {
                    got.push(e.id);
                    true
                },
            )
            .unwrap();
            let want = window_order(&q, condition);
            assert_eq!(got, want, "{filter:?} backwards={backwards:?}");
            // The fixture must actually differ from plain time order when a time goes back.
            let by_time = q
                .sql(
                    &format!("SELECT id FROM events WHERE {condition} ORDER BY coalesce(epoch_us(timestamp), epoch_us(captured_at)), partition, \"offset\""),
                    Duration::from_secs(30),
                    10_000,
                )
                .unwrap()
                .rows
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>();
            assert_eq!(by_time == want, backwards.is_none());
        }
    }
}

/// A write that fails (here: a file where the partition folder must go) loses nothing: its
/// rows stay buffered, counted, and land with the next flush once the way is clear.
#[test]
fn a_failed_write_keeps_its_rows_for_the_next_flush() {
    let (dir, lake, mut w) = writer_in_tempdir(10);
    let blocker = dir.path().join("connection=local");
    std::fs::write(&blocker, b"in the way").unwrap();
    let mut reported = 0;
    for i in 0..25 {
        // Background writes fail too; a push reports that and keeps the rows.
        if let Ok(Some(s)) = w.push(event(0, i, Some(&format!(r#"{{"n":{i}}}"#)), None)) {
            reported += s.rows;
        }
    }
    let err = w.flush().unwrap_err().to_string();
    assert!(err.contains("connection=local"), "{err}");
    assert_eq!(reported, 0);
    assert_eq!(w.buffered(), 25);
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(w.flush().unwrap().rows, 25);
    assert_eq!(w.buffered(), 0);
    let q = Query::open(&lake).unwrap();
    assert_eq!(q.count(&compile("")).unwrap(), 25);
}

/// A process holding `path` flock'ed as a lake writer does until it is killed.
fn lock_holder(path: &std::path::Path) -> std::process::Child {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "exec 9<>\"$0\" && flock 9 && exec sleep 600"])
        .arg(path)
        .spawn()
        .unwrap();
    let f = std::fs::File::open(path).unwrap_or_else(|_| {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::File::open(path).unwrap()
    });
    use std::os::unix::io::AsRawFd;
    for _ in 0..500 {
        // SAFETY: flock on a descriptor owned by `f`.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return child;
        }
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the lock holder never locked {}", path.display());
}

fn an_hour_old(path: &std::path::Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

#[test]
fn opening_a_lake_removes_what_killed_writers_left_and_keeps_live_writes() {
    // Real lake files, moved to a folder this process has not opened yet (cleanup runs once
    // per folder per process).
    let (src, _) = sample_lake();
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(src.path()).unwrap().flatten() {
        std::fs::rename(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let mut before = walk(dir.path());
    before.sort();
    let data = std::fs::read_dir(dir.path().join("connection=local/source=orders"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let dead_tmp = data.join(".part-9-8-dead0000.parquet.0badf00d.tmp");
    let dead_sketch = data.join(".part-9-8-dead0000.parquet.sketch");
    let live_tmp = data.join(".part-7-6-live0000.parquet.abcdef01.tmp");
    let live_sketch = data.join(".part-7-6-live0000.parquet.sketch");
    let mut killed = lock_holder(&dead_tmp);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let mut live = lock_holder(&live_tmp);
    std::fs::write(&dead_sketch, b"SLSKTCH2").unwrap();
    std::fs::write(&live_sketch, b"SLSKTCH2").unwrap();
    for p in [&dead_tmp, &dead_sketch, &live_tmp, &live_sketch] {
        an_hour_old(p);
    }

    let lake = Lake::open(dir.path()).unwrap();
    let (dead_gone, live_kept) = (
        !dead_tmp.exists() && !dead_sketch.exists(),
        live_tmp.exists() && live_sketch.exists(),
    );
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(dead_gone, "a killed writer's temp file and sketch stay");
    assert!(live_kept, "a live writer's files were removed");
    let mut after = walk(dir.path());
    after.retain(|n| !n.contains("live0000"));
    after.sort();
    assert_eq!(after, before, "the lake's own files are untouched");
    assert_eq!(ids(&Query::open(&lake).unwrap(), ""), vec![4, 3, 2, 1]);
}

#[test]
fn an_event_of_a_bus_this_build_does_not_know_is_an_error_not_kafka() {
    let (_d, lake, mut w) = writer_in_tempdir(10);
    w.push(event(0, 1, Some(r#"{"status":"PAID"}"#), None))
        .unwrap();
    w.flush().unwrap();
    // As a newer Sluice with more buses would have written it.
    let file = lake.files().remove(0);
    let edited = file.with_extension("edited");
    duckdb::Connection::open_in_memory()
        .unwrap()
        .execute_batch(&format!(
            "COPY (SELECT * REPLACE ('pulsar' AS bus) FROM read_parquet('{}')) TO '{}' (FORMAT parquet)",
            file.display(),
            edited.display()
        ))
        .unwrap();
    std::fs::rename(&edited, &file).unwrap();
    let q = Query::open(&lake).unwrap();
    let unknown = |r: Result<(), LakeError>| {
        assert!(
            matches!(&r, Err(LakeError::UnknownBus(b)) if b == "pulsar"),
            "{r:?}"
        )
    };
    assert_eq!(q.count(&compile("")).unwrap(), 1, "counting reads no bus");
    unknown(q.search(&compile(""), 10, 0).map(drop));
    unknown(q.search(&compile(""), 5000, 0).map(drop));
    for columns in [sluice_lake::Columns::All, sluice_lake::Columns::ForSending] {
        unknown(q.for_each_in_order(&compile(""), None, columns, |_| true));
    }
    let out = tempfile::tempdir().unwrap();
    unknown(
        q.export_parquet(&compile(""), &out.path().join("x.parquet"), &mut |_| {})
            .map(drop),
    );
    let e = q.search(&compile(""), 10, 0).unwrap_err().to_string();
    assert!(e.contains("\"pulsar\""), "{e}");
}

/// Redis entry ids are two numbers: the lake keeps both, orders by both (many entries share a
/// millisecond), finds them with `sub_offset`, and knows their ids for a re-capture to skip.
#[test]
fn two_part_positions_order_dedupe_and_filter_by_both_numbers() {
    let (_d, lake, mut w) = writer_in_tempdir(2);
    let ms = T0 / 1000;
    for seq in [0, 1, 2, 10] {
        let mut e = event(0, 0, None, Some("entry"));
        e.bus = Bus::Redis;
        e.source = "orders-stream".into();
        e.partition = None;
        e.offset = Some(ms);
        e.sub_offset = Some(seq);
        e.timestamp_us = Some(ms * 1000);
        e.id = event_id(
            Bus::Redis,
            "local",
            "orders-stream",
            None,
            Some(ms),
            Some(seq),
        );
        w.push(e).unwrap();
    }
    w.flush().unwrap();
    let q = Query::open(&lake).unwrap();
    let all = q
        .search(&compile("source = 'orders-stream'"), 10, 0)
        .unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.sub_offset.unwrap()).collect();
    assert_eq!(
        seqs,
        [10, 2, 1, 0],
        "newest first, by the second number too"
    );
    assert_eq!(all[0].id, format!("redis:local/orders-stream//{ms}-10"));
    let found = q.search(&compile("sub_offset >= 2"), 10, 0).unwrap();
    assert_eq!(found.len(), 2);
    let known = q.ids_without_position("local", "orders-stream").unwrap();
    assert_eq!(known.len(), 4);
    assert!(known.contains(&format!("redis:local/orders-stream//{ms}-1")));
    assert!(q.covered("local", "orders-stream").unwrap().is_empty());
}
