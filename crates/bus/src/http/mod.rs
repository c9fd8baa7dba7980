//! HTTP endpoints (webhooks) as replay destinations, through ureq (blocking).
//!
//! An endpoint is written to, never read: `sources` is empty and `reader` refuses. Each
//! replayed message is one request (`cloudevents.rs` says what it carries in each body mode,
//! `sink.rs` how outcomes are counted). The connection's headers (`--header`, credentials
//! most often) are its secret: kept apart from the settings, never in Debug or errors.

mod cloudevents;
mod config;
mod conventions;
mod settings;
mod sink;

pub use config::{BodyMode, HttpConfig, Method};
pub use conventions::HttpConventions;
pub(crate) use settings::is_framing;
pub use settings::HttpSettings;

use crate::{BusError, Connector, Health, ReadOptions, Reader, SourceInfo, Writer};
use sluice_model::{Bus, StartFrom};
use std::time::{Duration, Instant};

pub struct Http {
    pub name: String,
    pub config: HttpConfig,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

impl Http {
    fn what(&self) -> String {
        format!("HTTP endpoint {} ({})", self.config.url, self.name)
    }
}

/// What a check's answer (or its absence) says about the endpoint.
fn health_of(status: Option<u16>, what: String, why: String) -> Result<(), BusError> {
    match status {
        Some(401 | 403) => Err(BusError::Auth {
            what,
            reason: format!(
                "the endpoint answered {why} to OPTIONS; check the connection's --header (a few endpoints refuse OPTIONS itself)"
            ),
        }),
        // Any other answer, 404 and 405 included: something listens and speaks HTTP.
        Some(_) => Ok(()),
        None => Err(BusError::Unreachable { what, reason: why }),
    }
}

impl Connector for Http {
    fn bus(&self) -> Bus {
        Bus::Http
    }

    /// An `OPTIONS` request with the connection's headers: it changes nothing where a `POST`
    /// would deliver something.
    fn check(&self, timeout: Duration) -> Result<Health, BusError> {
        let mut cfg = self.config.clone();
        cfg.timeout = cfg.timeout.min(timeout);
        let agent = cfg.agent();
        let mut b = ureq::http::Request::builder()
            .method("OPTIONS")
            .uri(cfg.url.as_str());
        for (k, v) in &cfg.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b
            .body(())
            .map_err(|e| BusError::Invalid(format!("--url {:?}: {e}", cfg.url)))?;
        let started = Instant::now();
        let (status, why) = match agent.run(req) {
            Ok(r) => (
                Some(r.status().as_u16()),
                format!(
                    "HTTP {} {}",
                    r.status().as_u16(),
                    r.status().canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            ),
            Err(ureq::Error::Timeout(t)) => (
                None,
                format!("no answer within {} ms ({t})", cfg.timeout.as_millis()),
            ),
            Err(e) => (None, e.to_string()),
        };
        health_of(status, self.what(), why)?;
        Ok(Health {
            brokers: vec![self.config.url.clone()],
            sources: 0,
            latency_ms: started.elapsed().as_millis() as u64,
            registry: None,
        })
    }

    fn sources(&self, _: Duration) -> Result<Vec<SourceInfo>, BusError> {
        Ok(Vec::new())
    }

    fn source(&self, _: &str, _: Duration) -> Result<Option<SourceInfo>, BusError> {
        Ok(None)
    }

    fn reader(
        &self,
        _: &[String],
        _: StartFrom,
        _: &ReadOptions,
    ) -> Result<Box<dyn Reader>, BusError> {
        Err(BusError::Invalid(
            "an HTTP endpoint is a replay destination; it cannot be read".into(),
        ))
    }

    fn writer(&self) -> Result<Box<dyn Writer>, BusError> {
        Ok(Box::new(sink::HttpWriter::open(&self.name, &self.config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn connector(url: &str, secret: Option<&str>) -> Box<dyn Connector> {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "bus": "http", "url": url, "timeout_ms": "500", "concurrency": "2"
        }))
        .unwrap();
        let (s, secret) = s.checked(secret.map(str::to_string)).unwrap();
        s.open("hook", secret).unwrap()
    }

    /// One request: its head, then as many body bytes as its content-length says.
    fn read_request(s: &mut std::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// A server answering every request on one connection with `status`, recording requests.
    fn serve(status: u16, n: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/in", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..n {
                let (mut s, _) = l.accept().unwrap();
                seen.push(read_request(&mut s));
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
                );
            }
            seen
        });
        (url, h)
    }

    #[test]
    fn check_reports_reachable_auth_and_unreachable() {
        let (url, h) = serve(405, 1);
        let c = connector(&url, Some("Authorization: Bearer s3cret"));
        assert_eq!(c.check(Duration::from_secs(2)).unwrap().sources, 0);
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("OPTIONS /in "), "{}", seen[0]);
        assert!(seen[0].contains("Bearer s3cret"));

        let (url, h) = serve(401, 1);
        let e = connector(&url, Some("Authorization: Bearer s3cret"))
            .check(Duration::from_secs(2))
            .unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, BusError::Auth { .. }), "{e}");
        assert!(!e.to_string().contains("s3cret"));

        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = connector(&format!("http://{closed}/"), None)
            .check(Duration::from_secs(2))
            .unwrap_err();
        assert!(matches!(e, BusError::Unreachable { .. }), "{e}");

        // Accepts, never answers: unreachable within the timeout.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        let e = connector(&format!("http://{}/", silent.local_addr().unwrap()), None)
            .check(Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(e, BusError::Unreachable { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn an_endpoint_cannot_be_read() {
        let c = connector("http://127.0.0.1:1/", None);
        assert!(c.sources(Duration::from_secs(1)).unwrap().is_empty());
        assert!(c.source("x", Duration::from_secs(1)).unwrap().is_none());
        let e = c
            .reader(&[], StartFrom::Beginning, &ReadOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("replay destination"));
    }

    fn outgoing(i: usize) -> sluice_model::Outgoing {
        sluice_model::Outgoing {
            target: String::new(),
            partition: None,
            key: None,
            headers: Vec::new(),
            timestamp_us: None,
            payload: format!("m{i}").into_bytes(),
            properties: None,
            routing_key: None,
            event_id: format!("e{i}"),
        }
    }

    #[test]
    fn writer_counts_each_message_once() {
        let (url, h) = serve(200, 3);
        let mut w = connector(&url, None).writer().unwrap();
        for i in 0..3 {
            w.send(outgoing(i)).unwrap();
        }
        let d = w.flush(Duration::from_secs(5)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (3, 0, 0));
        let mut bodies: Vec<String> = h
            .join()
            .unwrap()
            .iter()
            .map(|r| r.rsplit("\r\n\r\n").next().unwrap_or("").to_string())
            .collect();
        bodies.sort();
        assert_eq!(bodies, ["m0", "m1", "m2"]);

        let (url, h) = serve(400, 2);
        let mut w = connector(&url, None).writer().unwrap();
        w.send(outgoing(0)).unwrap();
        w.send(outgoing(1)).unwrap();
        let d = w.flush(Duration::from_secs(5)).unwrap();
        h.join().unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (0, 2, 0));
        assert!(d.errors[0].1.contains("HTTP 400"), "{:?}", d.errors);

        let (url, h) = serve(301, 1);
        let mut w = connector(&url, None).writer().unwrap();
        w.send(outgoing(0)).unwrap();
        let d = w.flush(Duration::from_secs(5)).unwrap();
        h.join().unwrap();
        assert_eq!(d.failed, 1);
        assert!(d.errors[0].1.contains("not followed"), "{:?}", d.errors);

        // Accepts and never answers: unknown, within the connection's timeout.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut w = connector(&format!("http://{}/", silent.local_addr().unwrap()), None)
            .writer()
            .unwrap();
        let t = Instant::now();
        w.send(outgoing(0)).unwrap();
        let d = w.flush(Duration::from_secs(10)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (0, 0, 1), "{:?}", d.unknowns);
        assert!(t.elapsed() < Duration::from_secs(3));

        // Cut short by the flush while the request is out: unknown, and counted once.
        let mut w = connector(&format!("http://{}/", silent.local_addr().unwrap()), None)
            .writer()
            .unwrap();
        w.send(outgoing(0)).unwrap();
        let d = w.flush(Duration::from_millis(100)).unwrap();
        assert_eq!((d.sent, d.failed, d.unknown), (0, 0, 1));
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(w.delivery().reported(), 1);
    }
}
