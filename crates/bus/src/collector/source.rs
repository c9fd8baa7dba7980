//! Reading a collector is listening: `reader` binds the endpoints and starts serving them on
//! a runtime of their own; `poll` hands the capture what requests brought, and each
//! acknowledgement of durable events answers the requests they complete. Dropping the reader
//! (the capture ended) tells every request still waiting that its events were not stored,
//! then lets the endpoints finish those answers before they close.

use super::grpc;
use super::http::{self, Ctx};
use super::intake::{Intake, Limits};
use super::Collector;
use crate::fresh_ids::FreshIds;
use crate::{BusError, Listening, Reader};
use sluice_model::Message;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the endpoints get to send their last answers once the capture has ended.
const DRAIN: Duration = Duration::from_secs(3);

pub(crate) struct CollectorReader {
    intake: Arc<Intake>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    listening: Listening,
}

fn bind(flag: &str, addr: SocketAddr) -> Result<TcpListener, BusError> {
    let l = TcpListener::bind(addr).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "is in use (another collector or program listens there): name another address"
                    .to_string()
            }
            std::io::ErrorKind::AddrNotAvailable => "is not an address of this machine".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "needs privileges (ports below 1024): pick a port above 1024".to_string()
            }
            _ => format!("cannot be listened on: {e}"),
        };
        BusError::Invalid(format!("--{flag} {addr} {why}"))
    })?;
    l.set_nonblocking(true)
        .map_err(|e| BusError::Client(format!("--{flag} {addr}: {e}")))?;
    Ok(l)
}

pub(crate) fn open(c: &Collector, only: Vec<String>) -> Result<CollectorReader, BusError> {
    // Bound before anything starts, so a taken port is an error before the capture begins.
    let http_listener = c.http.map(|a| bind("http", a)).transpose()?;
    let grpc_listener = c.grpc.map(|a| bind("grpc", a)).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Both cores: requests are parsed here while the capture decodes and writes.
        .worker_threads(2)
        .thread_name("sluice-collector")
        .enable_all()
        .build()
        .map_err(|e| BusError::Client(format!("cannot start the collector's runtime: {e}")))?;
    let intake = Arc::new(Intake::new(Limits::default()));
    let (token, drawn) = match &c.token {
        Some(t) => (t.clone(), false),
        None => (uuid::Uuid::new_v4().simple().to_string(), true),
    };
    let ctx = Arc::new(Ctx {
        connection: c.name.clone(),
        intake: intake.clone(),
        token: token.clone(),
        max_body: c.max_body,
        only,
        ids: Mutex::new(FreshIds::new()),
        slots: tokio::sync::Semaphore::new(super::http::MAX_CONCURRENT),
    });
    let (shutdown, stopped) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut listening = Listening {
        http: None,
        grpc: None,
        token: drawn.then_some(token),
    };
    let _in = runtime.enter();
    if let Some(l) = http_listener {
        let addr = l
            .local_addr()
            .map_err(|e| BusError::Client(e.to_string()))?;
        let l = tokio::net::TcpListener::from_std(l)
            .map_err(|e| BusError::Client(format!("--http {addr}: {e}")))?;
        listening.http = Some(format!("http://{addr}/v1/events/{{source}}"));
        let app = http::router(ctx.clone());
        let mut stop = stopped.clone();
        servers.push(runtime.spawn(async move {
            let end = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(l, app).with_graceful_shutdown(end).await {
                tracing::warn!("the collector's HTTP endpoint stopped: {e}");
            }
        }));
    }
    if let Some(l) = grpc_listener {
        let addr = l
            .local_addr()
            .map_err(|e| BusError::Client(e.to_string()))?;
        let l = tokio::net::TcpListener::from_std(l)
            .map_err(|e| BusError::Client(format!("--grpc {addr}: {e}")))?;
        listening.grpc = Some(addr.to_string());
        let service = grpc::server(ctx.clone());
        let mut stop = stopped.clone();
        servers.push(runtime.spawn(async move {
            let end = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, end)
                .await
            {
                tracing::warn!("the collector's gRPC endpoint stopped: {e}");
            }
        }));
    }
    drop(_in);
    Ok(CollectorReader {
        intake,
        runtime: Some(runtime),
        shutdown,
        servers,
        listening,
    })
}

impl Reader for CollectorReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        // Back within 5 ms even when nothing comes: the capture acknowledges between polls,
        // and a request is answered only then.
        Ok(self.intake.take(max, timeout.min(Duration::from_millis(5))))
    }

    fn at_end(&self) -> bool {
        false
    }

    fn commit(&mut self, handled: u64) -> Result<(), BusError> {
        self.intake.durable(handled);
        Ok(())
    }

    fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
        self.intake.durable(durable);
        Ok(())
    }

    fn listening(&self) -> Option<Listening> {
        Some(self.listening.clone())
    }
}

impl Drop for CollectorReader {
    fn drop(&mut self) {
        self.intake.stop(super::intake::STOPPED);
        let _ = self.shutdown.send(true);
        if let Some(rt) = self.runtime.take() {
            let servers = std::mem::take(&mut self.servers);
            rt.block_on(async {
                let all = futures_util::future::join_all(servers);
                let _ = tokio::time::timeout(DRAIN, all).await;
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}
