//! Raw SQL: the read-only sandbox it runs in, and the child process that gives it hard
//! limits on time and memory.
//!
//! DuckDB alone cannot hold them: measured with libduckdb 1.5.6, `SELECT list(range(1e8))`
//! under `SET memory_limit = '2GB'` grew to 5 GB resident, and an interrupt sent at 3 s took
//! effect at 33 s; `repeat('x', 1e9)` ignored its interrupt for 4 s more. The list is built
//! inside one operator that neither checks for interrupts nor asks the buffer manager for its
//! memory. So the query runs in a child (this same executable, called with `WORKER_ARG`)
//! whose address space is capped with `RLIMIT_AS`, and which is killed at the deadline
//! whatever it is doing. DuckDB's own `memory_limit` still applies inside it, so the
//! operators that do account for memory fail with DuckDB's message first.
//!
//! A program opts in by calling `run_if_worker` first thing in `main`; without it (library
//! tests, other hosts) the query runs in-process with only DuckDB's own limits.

use crate::layout::{Lake, LakeError};
use crate::query::{create_view, qerr, sql_string_literal, Query, SqlResult};
use duckdb::Connection;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

impl Query {
    /// Runs one read-only SELECT in a sandbox: no file access outside the lake, no settings
    /// changes, at most `limits.max_rows` rows. The limits are hard when the program registered
    /// a worker (`run_if_worker`): the query then runs in a child process that is killed at the
    /// deadline and cannot grow past its memory.
    pub fn sql_limited(&self, user_sql: &str, limits: &SqlLimits) -> Result<SqlResult, LakeError> {
        run(self, user_sql, limits)
    }

    /// The sandboxed query in this process, with DuckDB's own limits only: its interrupt and
    /// `memory_limit` do not reach every operator (see `sql_process`).
    pub(crate) fn sql_here(
        &self,
        user_sql: &str,
        limits: &SqlLimits,
        threads: Option<u64>,
    ) -> Result<SqlResult, LakeError> {
        let (timeout, max_rows) = (limits.timeout, limits.max_rows);
        let memory = limits.memory_bytes.max(MIN_MEMORY);
        let conn = Connection::open_in_memory().map_err(qerr)?;
        conn.execute_batch(&format!(
            "SET TimeZone = 'UTC'; SET memory_limit = '{}KiB';",
            memory / 1024
        ))
        .map_err(qerr)?;
        if let Some(n) = threads {
            conn.execute_batch(&format!("SET threads = {n};"))
                .map_err(qerr)?;
        }
        create_view(&conn, self.lake())?;
        let root = self
            .lake()
            .root()
            .canonicalize()
            .unwrap_or_else(|_| self.lake().root().to_path_buf());
        conn.execute_batch(&format!(
            "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
            sql_string_literal(&root.display().to_string())
        ))
        .map_err(qerr)?;

        let check: String = conn
            .query_row(
                "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR",
                [user_sql],
                |r| r.get(0),
            )
            .map_err(qerr)?;
        let parsed: serde_json::Value = serde_json::from_str(&check).map_err(qerr)?;
        if parsed
            .get("error")
            .and_then(|e| e.as_bool())
            .unwrap_or(true)
        {
            let why = parsed
                .get("error_message")
                .and_then(|m| m.as_str())
                .unwrap_or("only a single SELECT statement is allowed");
            return Err(LakeError::Forbidden(format!(
                "only a single read-only SELECT is allowed ({why})"
            )));
        }
        if parsed
            .get("statements")
            .and_then(|s| s.as_array())
            .map_or(0, |s| s.len())
            != 1
        {
            return Err(LakeError::Forbidden(
                "exactly one SELECT statement is allowed".into(),
            ));
        }

        let handle = conn.interrupt_handle();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                handle.interrupt();
                return true;
            }
            false
        });
        let wrapped = format!(
            "SELECT CAST(to_json(sluice_row) AS VARCHAR) FROM ({}) AS sluice_row",
            user_sql.trim().trim_end_matches(';')
        );
        let result = (|| {
            let mut stmt = conn.prepare(&wrapped)?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                if out.len() >= max_rows {
                    break;
                }
                let json: Option<String> = r.get(0)?;
                out.push(json.unwrap_or_default());
            }
            Ok::<_, duckdb::Error>(out)
        })();
        let _ = done_tx.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        let rows = match result {
            Ok(rows) => rows,
            Err(_) if timed_out => return Err(LakeError::Timeout(timeout)),
            Err(e) if is_out_of_memory(&e.to_string()) => {
                return Err(LakeError::MemoryLimit(memory))
            }
            Err(e) => return Err(qerr(e)),
        };
        let mut columns: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for r in rows {
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&r).map_err(qerr)?;
            if columns.is_empty() {
                columns = obj.keys().cloned().collect();
            }
            out.push(obj);
        }
        Ok(SqlResult { columns, rows: out })
    }
}

/// The hidden first argument that makes a program act as the SQL worker.
pub const WORKER_ARG: &str = "__sluice-sql-worker";

/// Limits of one `sql` query.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Wall-clock time from start to result, worker start-up included.
    pub timeout: Duration,
    /// Memory the query may use, on top of the worker's own footprint (`WORKER_BASE`).
    pub memory_bytes: u64,
    pub max_rows: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            timeout: Duration::from_secs(30),
            memory_bytes: 2 << 30,
            max_rows: 10_000,
        }
    }
}

/// The least memory limit accepted: DuckDB needs some to plan and scan at all.
pub const MIN_MEMORY: u64 = 64 << 20;

/// The most result text a worker may send back. The caller holds the result (and, in
/// `sluice serve`, sends it on), so it is bounded apart from the query's own memory.
pub const MAX_RESULT_BYTES: u64 = 256 << 20;

/// Address space the worker itself occupies before a query allocates anything: the mapped
/// executable and libduckdb, thread stacks and allocator reservations. Measured as `VmPeak`
/// during a scan with 2 DuckDB threads: 300 MiB under glibc's malloc, 170 MiB under the
/// CLI's mimalloc with `ARENA_RESERVE` below; the rest is per thread.
const WORKER_BASE: u64 = 512 << 20;
const WORKER_PER_THREAD: u64 = 64 << 20;

/// DuckDB's worker threads in the child: each reserves address space, which `RLIMIT_AS`
/// counts, so many-core machines would otherwise leave less of the limit for the query.
const MAX_THREADS: u64 = 8;

impl SqlLimits {
    /// Parses a size such as `2GiB`, `512MiB`, `1.5G`, `800M` or plain bytes (K, M, G, T
    /// and their `iB` forms are all powers of 1024).
    pub fn parse_bytes(text: &str) -> Result<u64, LakeError> {
        let bad = || LakeError::BadSize(text.to_string());
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(bad()),
        };
        let bytes = n * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
            return Err(bad());
        }
        Ok(bytes as u64)
    }
}

/// The program re-run as worker, recorded by `run_if_worker`.
static WORKER: OnceLock<PathBuf> = OnceLock::new();

/// Call first in `main`: when this process was started as a SQL worker, runs the query it
/// is sent and exits; otherwise records this executable as the worker for `Query::sql`.
pub fn run_if_worker() {
    if std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG) {
        std::process::exit(serve_one());
    }
    // The running executable itself, even if its file was replaced since (an upgrade while
    // `sluice serve` runs): the worker must speak this version's protocol.
    let running = PathBuf::from("/proc/self/exe");
    let exe = if running.exists() {
        Ok(running)
    } else {
        std::env::current_exe()
    };
    if let Ok(exe) = exe {
        let _ = WORKER.set(exe);
    }
}

/// What the parent sends on the worker's stdin.
#[derive(Serialize, Deserialize)]
struct Request {
    lake: PathBuf,
    sql: String,
    timeout_ms: u64,
    memory_bytes: u64,
    threads: u64,
    max_rows: usize,
}

/// What the worker prints on stdout.
#[derive(Serialize, Deserialize)]
enum Reply {
    Ok(SqlResult),
    Forbidden(String),
    Query(String),
    Timeout,
    MemoryLimit,
    /// Anything else, such as an unreadable lake folder.
    Failed(String),
}

fn serve_one() -> i32 {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return 2;
    }
    let Ok(req) = serde_json::from_str::<Request>(&input) else {
        return 2;
    };
    let limits = SqlLimits {
        timeout: Duration::from_millis(req.timeout_ms),
        memory_bytes: req.memory_bytes,
        max_rows: req.max_rows,
    };
    let reply = match Lake::open_as_is(&req.lake)
        .and_then(|lake| Query::open(&lake))
        .and_then(|q| q.sql_here(&req.sql, &limits, Some(req.threads)))
    {
        Ok(r) => Reply::Ok(r),
        Err(LakeError::Forbidden(m)) => Reply::Forbidden(m),
        Err(LakeError::Timeout(_)) => Reply::Timeout,
        Err(LakeError::MemoryLimit(_)) => Reply::MemoryLimit,
        Err(LakeError::Query(m)) => Reply::Query(m),
        Err(e) => Reply::Failed(e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, &reply) {
        Ok(()) if out.flush().is_ok() => 0,
        _ => 3,
    }
}

/// Runs `sql` in a worker when this program registered one, else in-process.
pub(crate) fn run(query: &Query, sql: &str, limits: &SqlLimits) -> Result<SqlResult, LakeError> {
    match WORKER.get() {
        Some(program) => run_in_worker(program, query.lake().root(), sql, limits),
        None => query.sql_here(sql, limits, None),
    }
}

fn threads() -> u64 {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() as u64)
        .clamp(1, MAX_THREADS)
}

/// The address-space cap for a worker allowed `memory` bytes with `threads` DuckDB threads.
fn address_space(memory: u64, threads: u64) -> u64 {
    memory
        .saturating_add(WORKER_BASE)
        .saturating_add(threads * WORKER_PER_THREAD)
}

fn run_in_worker(
    program: &PathBuf,
    lake: &std::path::Path,
    sql: &str,
    limits: &SqlLimits,
) -> Result<SqlResult, LakeError> {
    let started = Instant::now();
    let memory = limits.memory_bytes.max(MIN_MEMORY);
    let threads = threads();
    let request = serde_json::to_vec(&Request {
        lake: lake.to_path_buf(),
        sql: sql.to_string(),
        timeout_ms: limits.timeout.as_millis() as u64,
        memory_bytes: memory,
        threads,
        max_rows: limits.max_rows,
    })
    .map_err(|e| LakeError::Worker(e.to_string()))?;
    let cap = address_space(memory, threads);
    let mut cmd = Command::new(program);
    cmd.arg(WORKER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // mimalloc (the CLI's allocator) otherwise reserves 1 GiB of address space up front,
        // which RLIMIT_AS counts: VmPeak 1.15 GiB for a trivial query, 170 MiB with this.
        // Other allocators ignore it.
        .env("MIMALLOC_ARENA_RESERVE", "64MiB");
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits; the
    // closure allocates nothing.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: cap as libc::rlim_t,
                rlim_max: cap as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A worker that dies of its limit must not leave a core of that size behind.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| LakeError::Worker(format!("cannot start {}: {e}", program.display())))?;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // The request is small, but a worker that dies at once must not block this write.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&request);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = stdout.take(MAX_RESULT_BYTES + 1).read_to_end(&mut buf);
        let _ = tx.send(());
        r.map(|_| buf)
    });
    let err_reader = std::thread::spawn(move || {
        // Only the end matters (an allocator's or DuckDB's last words), bounded.
        let mut tail = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut stderr = stderr;
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&chunk[..n]);
            if tail.len() > 16384 {
                tail.drain(..tail.len() - 4096);
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    // A timeout past what an Instant can hold (`--timeout 18446744073709551615`) is no limit.
    let deadline = started
        .checked_add(limits.timeout)
        .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 86_400));
    // Either stdout ended (the worker is done or sent too much) or the time is up.
    let mut finished = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok();
    if !finished {
        // Also ends the reader, which is waiting for the worker's stdout to close.
        let _ = child.kill();
    }
    let out = out_reader.join().ok().and_then(|r| r.ok());
    let too_large = out
        .as_ref()
        .is_some_and(|b| b.len() as u64 > MAX_RESULT_BYTES);
    // A worker that closed stdout still has until the deadline to exit.
    let mut status = None;
    while finished && !too_large && status.is_none() {
        match child.try_wait() {
            Ok(Some(s)) => status = Some(s),
            Ok(None) if Instant::now() >= deadline => finished = false,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break,
        }
    }
    if status.is_none() {
        let _ = child.kill();
        status = child.wait().ok();
    }
    drop(rx);
    let _ = writer.join();
    let stderr_tail = err_reader.join().unwrap_or_default();
    if !finished {
        return Err(LakeError::Timeout(limits.timeout));
    }
    if too_large {
        return Err(LakeError::ResultTooLarge(MAX_RESULT_BYTES));
    }
    let status = status.ok_or_else(|| LakeError::Worker("lost the query process".into()))?;
    let out = out.unwrap_or_default();
    if let Ok(reply) = serde_json::from_slice::<Reply>(&out) {
        return match reply {
            Reply::Ok(r) => Ok(r),
            Reply::Forbidden(m) => Err(LakeError::Forbidden(m)),
            Reply::Query(m) => Err(LakeError::Query(m)),
            Reply::Timeout => Err(LakeError::Timeout(limits.timeout)),
            Reply::MemoryLimit => Err(LakeError::MemoryLimit(memory)),
            Reply::Failed(m) => Err(LakeError::Worker(m)),
        };
    }
    if out_of_memory(&stderr_tail, &status) {
        return Err(LakeError::MemoryLimit(memory));
    }
    Err(LakeError::Worker(format!(
        "the query process ended ({status}) without a result: {}",
        stderr_tail.trim()
    )))
}

/// Whether a worker that sent no reply died of its memory cap: an allocation refused by the
/// address-space limit aborts the process (Rust's allocator and C++'s `bad_alloc` both say
/// so on stderr), and the kernel's OOM killer sends SIGKILL.
fn out_of_memory(stderr: &str, status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let said = [
        "memory allocation",
        "bad_alloc",
        "Out of Memory",
        "out of memory",
    ]
    .iter()
    .any(|s| stderr.contains(s));
    said || status.signal() == Some(libc::SIGKILL)
}

/// DuckDB reports the memory it could not get as an "Out of Memory Error".
pub(crate) fn is_out_of_memory(duckdb_message: &str) -> bool {
    duckdb_message.contains("Out of Memory")
}

/// `2147483648` as `2.0 GiB`, for messages.
pub(crate) fn human(bytes: &u64) -> String {
    let b = *bytes as f64;
    match *bytes {
        n if n >= 1 << 30 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.0} MiB", b / (1u64 << 20) as f64),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(SqlLimits::parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(SqlLimits::parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(SqlLimits::parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(SqlLimits::parse_bytes("4096").unwrap(), 4096);
        for bad in ["", "GiB", "2 parsecs", "-1G", "1e400", "99999999999T"] {
            assert!(SqlLimits::parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
