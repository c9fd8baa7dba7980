//! A real `sluice serve` on a free port of this machine, over an empty lake, and a raw HTTP/1.1
//! client that can send the headers a browser or an attacker would.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

pub struct Server {
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(addr: &str) -> Server {
        Server::start_with(addr, sluice_serve::Limits::default())
    }

    pub fn start_with(addr: &str, limits: sluice_serve::Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sluice = sluice_api::Sluice::new(
            Some(dir.path().join("config")),
            Some(dir.path().join("lake")),
        )
        .unwrap();
        let addr: SocketAddr = addr.parse().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let bound = sluice_serve::bind_with(
                    sluice_api::Session::new(sluice),
                    sluice_serve::Options {
                        addr,
                        bind_explicit: false,
                        token: Some(TOKEN.into()),
                    },
                    limits,
                )
                .await
                .unwrap();
                ready_tx.send((bound.addr, bound.url.clone())).unwrap();
                bound
                    .run_until(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, url) = ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Server {
            addr,
            url,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`, what a browser sends as Host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one request (`Connection: close`) with exactly these headers and reads the reply.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before reading a body it refuses: read while writing.
    let mut w = s.try_clone().unwrap();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let reply = read_reply(&mut s);
    let _ = writer.join();
    reply
}

pub fn read_reply(s: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Reply { status, body }
}

/// A call the UI makes: right Host, token, JSON body.
pub fn api(server: &Server, command: &str, body: &str) -> Reply {
    let host = server.host();
    let auth = format!("Bearer {TOKEN}");
    request(
        server.addr,
        "POST",
        &format!("/api/{command}"),
        &[
            ("Host", &host),
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}
