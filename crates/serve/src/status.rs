//! A headless agent's health and metrics endpoint (`sluice agent`): `GET /healthz` and
//! `GET /metrics` (Prometheus text), read-only and tokenless, so that a load balancer, systemd
//! or Prometheus can ask without a secret. It serves only what the agent renders; it offers no
//! command and reads no event.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the endpoint shows, rendered by the agent at each request.
pub struct Status {
    /// False answers /healthz with 503.
    pub healthy: bool,
    /// The JSON body of /healthz.
    pub health_json: String,
    /// The Prometheus exposition text of /metrics.
    pub metrics: String,
}

pub type Render = Arc<dyn Fn() -> Status + Send + Sync>;

/// Binds `addr` (port 0 picks one) and returns the address bound and the server, which runs
/// until `stop` completes.
pub async fn bind_status(
    addr: SocketAddr,
    render: Render,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let health = render.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let s = health();
                let code = if s.healthy {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                async move {
                    (
                        code,
                        [(header::CONTENT_TYPE, "application/json")],
                        s.health_json,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let s = render();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        s.metrics,
                    )
                        .into_response()
                }
            }),
        );
    let server = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    };
    Ok((bound, server))
}
