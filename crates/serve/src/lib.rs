//! `sluice serve`: the desktop app's UI and command API over HTTP, for a browser.
//!
//! It owns the HTTP edge only: `POST /api/COMMAND` hands the JSON body to
//! [`sluice_api::Session::call`] (the same call the Tauri shell makes), and every other path
//! serves the built UI (`ui/dist`, embedded in release builds). `POST /download/export` runs
//! the same `export` command into a temporary file and streams it to the browser, since a
//! browser's user wants the file on their own machine. It must not grow commands of its own. Every API call needs the random access token printed at start (`Authorization:
//! Bearer TOKEN`); it binds to 127.0.0.1 unless the user explicitly names another address.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sluice_api::{ApiError, ErrorCode, Session};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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

struct AppState {
    session: Session,
    token: String,
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
}

pub async fn bind(session: Session, opts: Options) -> Result<Bound, ServeError> {
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
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: opts.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: opts.addr,
        source,
    })?;
    let state = Arc::new(AppState {
        session,
        token: token.clone(),
    });
    let router = Router::new()
        .route("/api/{command}", post(api))
        .route("/download/export", post(download_export))
        .fallback(get(asset))
        .with_state(state.clone());
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    Ok(Bound {
        url: format!("http://{host}:{}/#token={token}", addr.port()),
        token,
        addr,
        listener,
        router,
        state,
    })
}

impl Bound {
    /// Serves until Ctrl-C, then stops every job and waits for captures to make what they
    /// read durable.
    pub async fn run_until_ctrl_c(self) -> std::io::Result<()> {
        let state = self.state.clone();
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
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
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers, &state.token) {
        return forbidden();
    }
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
    let outcome = tokio::task::spawn_blocking(move || st.session.call(&command, args)).await;
    match outcome {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => command_error(e),
        Err(join) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::new(ErrorCode::Io, format!("the command failed: {join}")),
        ),
    }
}

/// A command's own error, with the HTTP status its code stands for.
fn command_error(e: ApiError) -> Response {
    let status = match e.code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidInput | ErrorCode::Filter | ErrorCode::Schema => StatusCode::BAD_REQUEST,
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
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers, &state.token) {
        return forbidden();
    }
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
    let outcome = tokio::task::spawn_blocking(move || st.session.call("export", call_args)).await;
    let count = match outcome {
        Ok(Ok(v)) => v.as_u64().unwrap_or(0),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&path);
            return command_error(e);
        }
        Err(join) => {
            let _ = std::fs::remove_file(&path);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiError::new(ErrorCode::Io, format!("the export failed: {join}")),
            );
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
