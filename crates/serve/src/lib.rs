//! `sluice serve`: the desktop app's UI and command API over HTTP, for a browser.
//!
//! It owns the HTTP edge only: `POST /api/COMMAND` hands the JSON body to
//! [`sluice_api::Session::call`] (the same call the Tauri shell makes), and every other path
//! serves the built UI (`ui/dist`, embedded in release builds). `POST /download/export` runs
//! the same `export` command into a temporary file and streams it to the browser, since a
//! browser's user wants the file on their own machine; `export` itself, which writes wherever
//! its `path` says, is refused through `/api`. It must not grow commands of its own.
//!
//! It is a hardened local service: every API call needs the random access token printed at
//! start (`Authorization: Bearer TOKEN`); it binds to 127.0.0.1 unless the user explicitly
//! names another address (and then warns who can reach it); it answers only to its own Host
//! names and refuses cross-site POSTs; connections, request sizes, header and body times and
//! concurrent command calls are bounded ([`Limits`]); memory goes back to the OS after a burst;
//! SIGINT and SIGTERM both stop it the same way, captures flushed first.
//!
//! `status` is the other, much smaller edge: a headless agent's health and metrics.

mod calls;
mod edge;
mod listen;
mod memory;
pub mod status;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use calls::Calls;
use edge::refuse;
use sluice_api::{ApiError, ErrorCode, Session};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../ui/dist"]
#[allow_missing = true]
struct Ui;

/// Pages may load only Sluice's own scripts and styles and talk only to Sluice; nothing
/// remote, no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{addr} is not a local address: pass --bind {addr} to serve Sluice on the network (anyone who can reach it and has the token can read the lake and replay)")]
    NotLocal { addr: IpAddr },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the UI is not built: run `npm --prefix ui ci && npm --prefix ui run build` (scripts/install-deps.sh does it)")]
    NoUi,
}

pub struct Options {
    pub addr: SocketAddr,
    /// The user asked for this address by name (`--bind`), so a non-local one is allowed.
    pub bind_explicit: bool,
    /// Fixed token (tests); random otherwise.
    pub token: Option<String>,
}

/// What one client, or all of them together, can make the server hold. The defaults were
/// measured on 2 cores (BENCHMARKS.md, "sluice serve under load").
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once. Past it, the oldest connection with no request in progress
    /// is closed to make room.
    pub max_connections: usize,
    /// Largest request body (413 beyond). Dropped descriptor sets are the largest real ones.
    pub max_body_bytes: usize,
    /// A connection must send a whole request head within this, first and between keep-alive
    /// requests, or it is closed.
    pub header_timeout: Duration,
    /// A request body must arrive within this (408 beyond).
    pub body_timeout: Duration,
    /// Command calls running at once (each search opens a DuckDB that uses every core).
    pub max_calls: usize,
    /// `job_poll` calls waiting at once (they sleep, they do not work).
    pub max_waits: usize,
    /// How long a call may wait for a slot before a 503.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            max_connections: connections_for_fd_limit(),
            max_body_bytes: 16 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_calls: cores * 2,
            max_waits: 128,
            queue_timeout: Duration::from_secs(30),
        }
    }
}

/// 512 connection slots, or a sixth of the file descriptors this process may open if that is
/// less: the lobby of connections that have sent nothing yet holds twice as many, and the
/// other half stays for the lake's files, DuckDB and the brokers' sockets.
fn connections_for_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    ((soft / 6) as usize).clamp(16, 512)
}

struct AppState {
    session: Session,
    token: String,
    calls: Arc<Calls>,
    limits: Limits,
}

/// A server bound and ready: `url` carries the token in its fragment, which browsers never
/// send to the server or put in logs.
pub struct Bound {
    pub url: String,
    pub token: String,
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    router: Router,
    state: Arc<AppState>,
    signals: Option<StopSignals>,
}

pub async fn bind(session: Session, opts: Options) -> Result<Bound, ServeError> {
    bind_with(session, opts, Limits::default()).await
}

/// [`bind`] with other limits than the defaults.
pub async fn bind_with(
    session: Session,
    opts: Options,
    limits: Limits,
) -> Result<Bound, ServeError> {
    let ip = opts.addr.ip();
    if !ip.is_loopback() && !opts.bind_explicit {
        return Err(ServeError::NotLocal { addr: ip });
    }
    if Ui::get("index.html").is_none() {
        return Err(ServeError::NoUi);
    }
    let token = opts
        .token
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let listener = listen_socket(opts.addr).map_err(|source| ServeError::Listen {
        addr: opts.addr,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: opts.addr,
        source,
    })?;
    if !ip.is_loopback() {
        eprintln!("{}", network_warning(addr));
    }
    memory::allow_purging();
    let state = Arc::new(AppState {
        session,
        token: token.clone(),
        calls: Arc::new(Calls::new(
            limits.max_calls,
            limits.max_waits,
            limits.queue_timeout,
        )),
        limits,
    });
    let hosts = Arc::new(edge::Hosts::for_bound(addr));
    let router = Router::new()
        .route("/api/{command}", post(api))
        .route("/download/export", post(download_export))
        .fallback(get(asset))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            edge::check_host_and_origin,
        ));
    Ok(Bound {
        url: format!("{}#token={token}", base_url(addr)),
        token,
        addr,
        listener,
        router,
        state,
        signals: Some(StopSignals::listen()),
    })
}

/// A listening socket with a backlog deep enough for a burst of connections to wait in while
/// the server is at its connection limit (tokio's own default is 1024).
fn listen_socket(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The address a browser on this machine should open: 127.0.0.1 for a server on every
/// interface, an IPv6 literal in brackets.
fn base_url(addr: SocketAddr) -> String {
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
    } else {
        addr
    };
    format!("http://{shown}/")
}

fn network_warning(addr: SocketAddr) -> String {
    let who = if addr.ip().is_unspecified() {
        format!(
            "on every network interface of this machine: anyone who can reach it on port {}",
            addr.port()
        )
    } else {
        format!("on {addr}: anyone on a network that reaches that address")
    };
    format!(
        "WARNING: Sluice is listening {who} can connect, and whoever has the token can read \
         the lake, change connections and replay to your brokers. The traffic is plain HTTP, \
         so the token can be seen on the way. Stop it (Ctrl-C) unless that is what you want; \
         without --bind it listens on 127.0.0.1 only."
    )
}

/// Ctrl-C (SIGINT) and SIGTERM (what service managers and `kill` send), listened for from
/// the moment the server is bound: a signal that arrives just after the URL is printed must
/// stop it gracefully too, not kill it.
struct StopSignals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = one(&mut self.int) => {}
                _ = one(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Bound {
    /// Serves until Ctrl-C or SIGTERM (the name is older than the SIGTERM handling), then
    /// stops every job and waits for captures to make what they read durable.
    pub async fn run_until_ctrl_c(mut self) -> std::io::Result<()> {
        let signals = self.signals.take().unwrap_or_else(StopSignals::listen);
        self.run_until(signals.recv()).await
    }

    /// Serves until `stop` resolves, then shuts down as [`Bound::run_until_ctrl_c`] does.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let state = self.state.clone();
        let token = CancellationToken::new();
        let serving = tokio::spawn(listen::serve(
            self.listener,
            self.router,
            listen::Edge {
                max_connections: state.limits.max_connections,
                header_timeout: state.limits.header_timeout,
                grace: Duration::from_secs(10),
            },
            token.clone(),
        ));
        stop.await;
        token.cancel();
        let _ = serving.await;
        tokio::task::spawn_blocking(move || {
            state.session.shutdown(std::time::Duration::from_secs(30))
        })
        .await
        .ok();
        Ok(())
    }
}

fn error(status: StatusCode, e: ApiError) -> Response {
    (status, Json(e)).into_response()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare in constant time so the token cannot be guessed byte by byte.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn api(
    State(state): State<Arc<AppState>>,
    Path(command): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&headers, &state.token) {
        return forbidden();
    }
    if command == "export" {
        // `export` writes to any path the server's user can write (a shell start-up file as
        // well as a download folder); a browser's user wants the file on their own machine.
        return refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "export writes files on the server, which `sluice serve` does not allow: POST \
             /download/export with {\"filter\", \"format\"} streams the export back instead \
             (the browser's Export… does that)",
        );
    }
    let body = match read(&state, &headers, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let args = if body.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    ApiError::new(ErrorCode::InvalidInput, format!("{command}: body: {e}")),
                )
            }
        }
    };
    let st = state.clone();
    let name = command.clone();
    match state
        .calls
        .run(&command, move || st.session.call(&name, args))
        .await
    {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => command_error(e),
        Err(resp) => resp,
    }
}

async fn read(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    edge::read_body(
        headers,
        body,
        state.limits.max_body_bytes,
        state.limits.body_timeout,
    )
    .await
}

/// A command's own error, with the HTTP status its code stands for.
fn command_error(e: ApiError) -> Response {
    let status = match e.code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidInput | ErrorCode::Filter | ErrorCode::Schema => StatusCode::BAD_REQUEST,
        ErrorCode::Busy => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, e)
}

fn forbidden() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        ApiError::new(
            ErrorCode::Forbidden,
            "missing or wrong access token: open the URL `sluice serve` printed",
        ),
    )
}

/// Body of `POST /download/export`: the `export` command's arguments without the path.
#[derive(serde::Deserialize)]
struct DownloadArgs {
    filter: String,
    format: String,
}

/// Exports into a temporary file, then streams it as an attachment. The file is unlinked as
/// soon as it is open, so nothing is left behind on the server, whatever happens next.
async fn download_export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&headers, &state.token) {
        return forbidden();
    }
    let body = match read(&state, &headers, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let args: DownloadArgs = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ApiError::new(ErrorCode::InvalidInput, format!("export: body: {e}")),
            )
        }
    };
    let ext = match args.format.as_str() {
        f @ ("jsonl" | "csv" | "parquet") => f,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("unknown export format {other:?}: use jsonl, csv or parquet"),
                ),
            )
        }
    };
    let path = std::env::temp_dir().join(format!(
        "sluice-export-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ));
    let call_args = serde_json::json!({
        "filter": args.filter,
        "format": args.format,
        "path": path.display().to_string(),
    });
    let st = state.clone();
    let outcome = state
        .calls
        .run("export", move || st.session.call("export", call_args))
        .await;
    let count = match outcome {
        Ok(Ok(v)) => v.as_u64().unwrap_or(0),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&path);
            return command_error(e);
        }
        Err(resp) => {
            let _ = std::fs::remove_file(&path);
            return resp;
        }
    };
    let file = tokio::fs::File::open(&path).await;
    let _ = std::fs::remove_file(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiError::new(ErrorCode::Io, format!("reading the export: {e}")),
            )
        }
    };
    let content_type = match ext {
        "jsonl" => "application/x-ndjson",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/vnd.apache.parquet",
    };
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"sluice-export.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-sluice-count", HeaderValue::from(count));
    resp
}

async fn asset(uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Ui::get(path).or_else(|| Ui::get("index.html")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = file.metadata.mimetype().to_string();
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_network_binds_unless_named_and_wrong_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let session = || {
            Session::new(
                sluice_api::Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l")))
                    .unwrap(),
            )
        };
        let e = bind(
            session(),
            Options {
                addr: "0.0.0.0:0".parse().unwrap(),
                bind_explicit: false,
                token: None,
            },
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, ServeError::NotLocal { .. }), "{e}");

        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(authorized(&headers("Bearer abc"), "abc"));
        assert!(!authorized(&headers("Bearer abd"), "abc"));
        assert!(!authorized(&headers("Bearer ab"), "abc"));
        assert!(!authorized(&headers("abc"), "abc"));
        assert!(!authorized(&HeaderMap::new(), "abc"));
    }
}
