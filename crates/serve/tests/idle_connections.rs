//! Thousands of connections that never send a request (or only part of one) must not keep a
//! real request from being answered. Its own test binary: it lowers this process's file
//! descriptor limit, so that the connections exhaust it the way ~20,000 do at the usual limit.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const IDLE: usize = 2_000;

#[test]
fn idle_unauthenticated_connections_do_not_keep_a_real_request_waiting() {
    // 4,000 descriptors: the 2,000 client ends below plus the server's own, which it sizes
    // from this limit (512 slots and a lobby of 1,024, so the 2,000 overflow both). A server
    // that accepts every connection runs out of them; the client ends and the server share it.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/setrlimit on this process's descriptor limit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = 4_000.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let server = common::Server::start("127.0.0.1:0");
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let Ok(mut s) = TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)) else {
            continue;
        };
        // Half of them start a request head and never finish it (slowloris).
        if i % 2 == 0 {
            let _ = s.write_all(b"POST /api/search HTTP/1.1\r\nHost: x\r\n");
        }
        idle.push(s);
    }
    assert!(
        idle.len() > IDLE / 2,
        "only {} connections opened",
        idle.len()
    );

    let t = Instant::now();
    let r = common::api(&server, "app_info", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "answered after {:?} with {} idle connections open",
        t.elapsed(),
        idle.len()
    );
    // And it keeps answering while they are still open.
    for _ in 0..5 {
        assert_eq!(common::api(&server, "job_list", "").status, 200);
    }
    drop(idle);
}
