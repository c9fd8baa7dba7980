//! The Sluice desktop app: a window onto the web UI in `ui/`. Its command `call` hands each
//! request to the same command table `sluice serve` uses (`sluice_api::Session`); `watch`
//! streams a job's live updates (tail rows, progress) to the window through a Tauri channel.
//!
//! This crate must stay thin: no logic of its own beyond opening the window, passing calls
//! through off the UI thread, and letting running captures flush when the window closes.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use sluice_api::{ApiError, ErrorCode, JobUpdate, Session, Sluice};
use std::sync::Arc;
use tauri::ipc::Channel;

type Shared<'a> = tauri::State<'a, Arc<Session>>;

/// Runs API work on a blocking thread so the window never waits on the lake or a broker.
async fn off_ui<T: Send + 'static>(
    session: Shared<'_>,
    work: impl FnOnce(&Session) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let s = session.inner().clone();
    tauri::async_runtime::spawn_blocking(move || work(&s))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{e}")))?
}

#[tauri::command]
async fn call(
    session: Shared<'_>,
    command: String,
    args: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    off_ui(session, move |s| s.call(&command, args)).await
}

#[tauri::command]
async fn watch(
    session: Shared<'_>,
    id: u64,
    after: u64,
    on_update: Channel<JobUpdate>,
) -> Result<(), ApiError> {
    off_ui(session, move |s| {
        s.watch(id, after, |u| on_update.send(u).is_ok())
    })
    .await
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                // lapin and async-nats log refused logins themselves; Sluice reports each once.
                .unwrap_or_else(|_| "warn,lapin=off,async_nats=off".into())
                // ureq traces raw request bytes, header values (credentials) included.
                .add_directive("ureq_proto=off".parse().expect("a fixed directive")),
        )
        .init();
    let dir = |var: &str| std::env::var_os(var).map(std::path::PathBuf::from);
    let sluice = match Sluice::new(dir("SLUICE_CONFIG"), dir("SLUICE_LAKE")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(1);
        }
    };
    let session = Arc::new(Session::new(sluice));
    let on_exit = session.clone();
    let app = tauri::Builder::default()
        .manage(session)
        .invoke_handler(tauri::generate_handler![call, watch])
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(move |_, event| {
            if let tauri::RunEvent::Exit = event {
                on_exit.shutdown(std::time::Duration::from_secs(30));
            }
        }),
        Err(e) => {
            eprintln!("error: cannot open the Sluice window: {e}");
            std::process::exit(1);
        }
    }
}
