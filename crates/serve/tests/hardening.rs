//! `sluice serve` at its edges: what it refuses (files written on the server, oversized bodies,
//! other Host names, cross-site POSTs) and what it still answers.

mod common;

use common::{api, request, Server, TOKEN};

#[test]
fn export_with_a_path_is_refused_and_writes_nothing() {
    let server = Server::start("127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join(".bashrc");
    let body =
        serde_json::json!({"filter": "", "format": "jsonl", "path": target.display().to_string()});
    let r = api(&server, "export", &body.to_string());
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "forbidden");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("/download/export"),
        "{}",
        r.body
    );
    assert!(!target.exists(), "export wrote {}", target.display());

    // The download route, which leaves nothing on the server, still works.
    let host = server.host();
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        server.addr,
        "POST",
        "/download/export",
        &[("Host", &host), ("Authorization", &auth)],
        br#"{"filter": "", "format": "jsonl"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn bodies_up_to_16_mib_are_read_and_larger_ones_get_a_clear_413() {
    let server = Server::start("127.0.0.1:0");
    // 3 MiB is more than axum's own default limit (2 MB): a large dropped descriptor set.
    let padded = format!(r#"{{"pad": "{}"}}"#, "x".repeat(3 << 20));
    let r = api(&server, "app_info", &padded);
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(300)]);

    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(17 << 20));
    let r = api(&server, "app_info", &big);
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    assert_eq!(r.json()["code"], "invalid_input");
    assert!(
        r.json()["message"].as_str().unwrap().contains("16 MiB"),
        "{}",
        r.body
    );

    // Without a Content-Length (chunked), the limit holds while reading.
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "POST /api/app_info HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.host()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..17 {
            if w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .is_err()
                || w.write_all(&chunk).is_err()
                || w.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let r = common::read_reply(&mut s);
    let _ = writer.join();
    assert_eq!(r.status, 413, "{}", r.body);
}

#[test]
fn other_host_names_are_refused_as_dns_rebinding() {
    let server = Server::start("127.0.0.1:0");
    let port = server.addr.port();
    let auth = format!("Bearer {TOKEN}");
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port + 1),
        String::new(),
    ] {
        for (method, path) in [("GET", "/"), ("POST", "/api/app_info")] {
            let r = request(
                server.addr,
                method,
                path,
                &[("Host", &host), ("Authorization", &auth)],
                b"",
            );
            assert_eq!(
                r.status, 403,
                "{method} {path} with Host {host:?}: {}",
                r.body
            );
            assert_eq!(r.json()["code"], "forbidden");
        }
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let r = request(
            server.addr,
            "POST",
            "/api/app_info",
            &[("Host", &host), ("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 200, "Host {host}: {}", r.body);
        let r = request(server.addr, "GET", "/", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "Host {host}: {}", r.body);
    }
}

#[test]
fn posts_from_another_origin_are_refused() {
    let server = Server::start("127.0.0.1:0");
    let host = server.host();
    let auth = format!("Bearer {TOKEN}");
    let call = |origin: Option<&str>| {
        let mut h = vec![("Host", host.as_str()), ("Authorization", auth.as_str())];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        request(server.addr, "POST", "/api/app_info", &h, b"")
    };
    let own = format!("http://{host}");
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    for bad in [
        "http://evil.example",
        "null",
        other_port.as_str(),
        &format!("https://{host}"),
    ] {
        let r = call(Some(bad));
        assert_eq!(r.status, 403, "Origin {bad}: {}", r.body);
        assert_eq!(r.json()["code"], "forbidden");
    }
    assert_eq!(call(Some(&own)).status, 200);
    assert_eq!(call(None).status, 200, "tools like curl send no Origin");
}

#[test]
fn an_ipv6_server_prints_its_url_with_brackets_and_answers_there() {
    let server = Server::start("[::1]:0");
    let prefix = format!("http://[::1]:{}/#token=", server.addr.port());
    assert!(server.url.starts_with(&prefix), "{}", server.url);
    let host = format!("[::1]:{}", server.addr.port());
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        server.addr,
        "POST",
        "/api/app_info",
        &[("Host", &host), ("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    use std::io::Read;
    let server = Server::start_with(
        "127.0.0.1:0",
        sluice_serve::Limits {
            header_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    );
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let t = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the server to close the connection");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "closed after {:?}",
        t.elapsed()
    );
}
