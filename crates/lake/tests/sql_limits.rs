//! `sql`'s time and memory limits against the real DuckDB, through the worker process the
//! CLI uses: this test binary registers itself as the worker, as `sluice` does in `main`.
//! Queries that DuckDB alone could not stop (a list of 1e8 items took 33 s to answer an
//! interrupt and grew to 5 GB) must end at their deadline, within bounded memory.

use sluice_lake::{Lake, LakeError, Query, SqlLimits};
use std::time::{Duration, Instant};

fn main() {
    sluice_lake::run_if_worker();
    let tests: &[(&str, fn())] = &[
        // First: the peak resident size of workers is checked, and this one stays small.
        (
            "a_list_past_the_memory_limit_is_refused",
            a_list_past_the_memory_limit_is_refused,
        ),
        ("huge_strings_are_stopped", huge_strings_are_stopped),
        (
            "cross_joins_and_recursion_stop_at_the_timeout",
            cross_joins_and_recursion_stop_at_the_timeout,
        ),
        (
            "the_sandbox_holds_in_the_worker",
            the_sandbox_holds_in_the_worker,
        ),
        (
            "a_huge_list_stops_at_the_timeout",
            a_huge_list_stops_at_the_timeout,
        ),
    ];
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, test) in tests {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        eprint!("test {name} ... ");
        test();
        eprintln!("ok");
        ran += 1;
    }
    eprintln!("{ran} passed");
}

fn empty_lake() -> (tempfile::TempDir, Query) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let q = Query::open(&lake).unwrap();
    (dir, q)
}

fn limits(timeout_s: u64, memory: u64) -> SqlLimits {
    SqlLimits {
        timeout: Duration::from_secs(timeout_s),
        memory_bytes: memory,
        max_rows: 100,
    }
}

const GIB: u64 = 1 << 30;

/// The largest resident size of any worker this process has waited for, in bytes.
fn workers_peak_rss() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as u64 * 1024
}

/// This process's own peak resident size (VmHWM), in bytes.
fn own_peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn a_huge_list_stops_at_the_timeout() {
    let (_d, q) = empty_lake();
    // Under 8 GiB the list of 1e8 fits (it peaked at 5 GB), so only the deadline stops it.
    let t = Instant::now();
    let r = q.sql_limited("select list(range(1e8::bigint)) as l", &limits(3, 8 * GIB));
    let took = t.elapsed();
    assert!(matches!(r, Err(LakeError::Timeout(_))), "{r:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprint!("(1e8: {took:?}) ");
    assert!(
        r.unwrap_err().to_string().contains("3s"),
        "the message names the limit"
    );
    // The query: 1e9 items, under the default memory limit.
    let t = Instant::now();
    let r = q.sql_limited("select list(range(1e9::bigint)) as l", &limits(3, 2 * GIB));
    let took = t.elapsed();
    assert!(
        matches!(r, Err(LakeError::Timeout(_) | LakeError::MemoryLimit(_))),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprint!(
        "(1e9: {} after {took:?}; caller peak {} MiB) ",
        r.unwrap_err(),
        own_peak_rss() >> 20
    );
    assert!(
        own_peak_rss() < 512 << 20,
        "the caller grew to {}",
        own_peak_rss()
    );
}

fn a_list_past_the_memory_limit_is_refused() {
    let (_d, q) = empty_lake();
    // DuckDB's memory_limit does not cover this list; the worker's address space does.
    let t = Instant::now();
    let r = q.sql_limited("select list(range(1e8::bigint)) as l", &limits(60, GIB));
    let took = t.elapsed();
    assert!(matches!(r, Err(LakeError::MemoryLimit(_))), "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("1.0 GiB") && msg.contains("memory"), "{msg}");
    eprint!(
        "({msg}: after {took:?}, worker peak {} MiB) ",
        workers_peak_rss() >> 20
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let peak = workers_peak_rss();
    assert!(peak < 2 * GIB, "a worker reached {peak} bytes resident");
    assert!(
        own_peak_rss() < 512 << 20,
        "the caller grew to {}",
        own_peak_rss()
    );
}

fn huge_strings_are_stopped() {
    let (_d, q) = empty_lake();
    for sql in [
        "select repeat('x', 1e9::bigint) as s",
        "select string_agg(repeat('x', 1000000), '') as s from range(5000)",
    ] {
        let t = Instant::now();
        let r = q.sql_limited(sql, &limits(3, GIB));
        let took = t.elapsed();
        assert!(
            matches!(
                r,
                Err(LakeError::Timeout(_)
                    | LakeError::MemoryLimit(_)
                    | LakeError::ResultTooLarge(_))
            ),
            "{sql}: {}",
            match &r {
                Ok(r) => format!("{} rows", r.rows.len()),
                Err(e) => e.to_string(),
            }
        );
        assert!(took < Duration::from_secs(5), "{sql} took {took:?}");
        eprint!("({} after {took:?}) ", r.unwrap_err());
    }
    assert!(workers_peak_rss() < 2 * GIB);
    assert!(
        own_peak_rss() < 512 << 20,
        "the caller grew to {}",
        own_peak_rss()
    );
}

fn cross_joins_and_recursion_stop_at_the_timeout() {
    let (_d, q) = empty_lake();
    for sql in [
        "select count(*) as n from range(1e6::bigint) a, range(1e6::bigint) b",
        "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) as n from t",
        "with recursive t(n, s) as (select 1, 'x' union all select n + 1, s || s from t where n < 40) \
         select max(length(s)) as n from t",
    ] {
        let t = Instant::now();
        let r = q.sql_limited(sql, &limits(2, GIB));
        let took = t.elapsed();
        assert!(
            matches!(r, Err(LakeError::Timeout(_) | LakeError::MemoryLimit(_))),
            "{sql}: {r:?}"
        );
        assert!(took < Duration::from_secs(4), "{sql} took {took:?}");
        eprint!("({:?}) ", took);
    }
}

fn the_sandbox_holds_in_the_worker() {
    let (_d, q) = empty_lake();
    let t = Instant::now();
    let r = q
        .sql_limited(
            "select 42 as answer, 'a' || 'b' as text",
            &SqlLimits::default(),
        )
        .unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0]["answer"], 42);
    assert_eq!(r.rows[0]["text"], "ab");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let r = q
        .sql_limited("select * from range(1000) t(i)", &limits(10, GIB))
        .unwrap();
    assert_eq!(r.rows.len(), 100, "max_rows holds");
    for bad in [
        "COPY (SELECT 1) TO '/tmp/sluice-sql-worker-pwned.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
        "SELECT 1; SELECT 2",
    ] {
        let r = q.sql_limited(bad, &limits(10, GIB));
        assert!(
            matches!(r, Err(LakeError::Forbidden(_) | LakeError::Query(_))),
            "{bad}: {r:?}"
        );
    }
    assert!(!std::path::Path::new("/tmp/sluice-sql-worker-pwned.csv").exists());
    let e = q
        .sql_limited("select no_such_column", &limits(10, GIB))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("query failed: ")
            && e.contains("no_such_column")
            && !e.contains("failed: query"),
        "{e}"
    );
}
