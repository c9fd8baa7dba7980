//! A burst of real requests, many more than the connections the server keeps open, from
//! clients that connect at once and send at once: every request gets an answer (200, or 503
//! `busy` when no command slot frees in time), none a closed connection. Its own binary: it
//! starts hundreds of client threads.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const CLIENTS: usize = 400;

#[test]
fn a_burst_past_the_connection_limit_is_answered_in_full() {
    let limits = sluice_serve::Limits {
        max_connections: 8,
        max_calls: 1,
        queue_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let server = common::Server::start_with("127.0.0.1:0", limits);
    let (addr, host) = (server.addr, server.host());
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (start, host) = (start.clone(), host.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(20)) {
                    Ok(s) => s,
                    Err(e) => return format!("connect: {e}"),
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                let body = "{}";
                let req = format!(
                    "POST /api/app_info HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    common::TOKEN,
                    body.len()
                );
                if let Err(e) = s.write_all(req.as_bytes()) {
                    return format!("write: {e}");
                }
                let mut reply = Vec::new();
                match s.read_to_end(&mut reply) {
                    Ok(_) if reply.is_empty() => "closed with no answer".to_string(),
                    Ok(_) => String::from_utf8_lossy(&reply)
                        .split(' ')
                        .nth(1)
                        .unwrap_or("no status")
                        .to_string(),
                    Err(e) => format!("read: {e}"),
                }
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for c in clients {
        *outcomes.entry(c.join().unwrap()).or_default() += 1;
    }
    let answered = outcomes.get("200").unwrap_or(&0) + outcomes.get("503").unwrap_or(&0);
    assert_eq!(answered, CLIENTS, "{outcomes:?}");
}
