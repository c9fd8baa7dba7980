//! What a request must show before any handler looks at it: a Host naming this server and, on a
//! POST from a browser, an Origin that is this server; then a body of bounded size, read in
//! bounded time.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use sluice_api::{ApiError, ErrorCode};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The names this server answers to. A DNS-rebinding page reaches a local port under the
/// attacker's own host name, so refusing every name but these keeps such pages out even
/// before the token is checked.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    port: u16,
    /// Bound to every interface (`0.0.0.0` or `::`): the client may have used any of the
    /// machine's addresses, which cannot be listed here, so any IP literal is accepted (an IP
    /// literal cannot be rebound to another machine; only a name can).
    any_ip: bool,
    ips: Vec<IpAddr>,
}

impl Hosts {
    pub(crate) fn for_bound(addr: SocketAddr) -> Self {
        let ip = addr.ip();
        let mut ips = vec![ip];
        if ip.is_loopback() || ip.is_unspecified() {
            ips.push(IpAddr::from([127, 0, 0, 1]));
            ips.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        }
        Hosts {
            port: addr.port(),
            any_ip: ip.is_unspecified(),
            ips,
        }
    }

    /// Whether a Host header value (`name[:port]`, IPv6 in brackets) names this server.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => return false,
            },
            None => 80,
        };
        if port != self.port {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return self.ips.iter().any(|ip| ip.is_loopback()) || self.any_ip;
        }
        let ip = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(IpAddr::V6),
            None => name.parse::<std::net::Ipv4Addr>().map(IpAddr::V4),
        };
        match ip {
            Ok(ip) => self.any_ip || self.ips.contains(&ip),
            Err(_) => false,
        }
    }

    fn describe(&self) -> String {
        if self.any_ip {
            format!(
                "localhost:{} or an IP address of this machine with port {}",
                self.port, self.port
            )
        } else {
            let mut names: Vec<String> = self
                .ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.port).to_string())
                .collect();
            if self.ips.iter().any(|ip| ip.is_loopback()) {
                names.insert(0, format!("localhost:{}", self.port));
            }
            names.join(", ")
        }
    }
}

/// `name[:port]` into its parts; an IPv6 literal keeps its brackets.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => {
                let rest = &host[end + 1..];
                (&host[..=end], rest.strip_prefix(':'))
            }
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    }
}

pub(crate) fn refuse(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    (status, Json(ApiError::new(code, message))).into_response()
}

/// Refuses a request whose Host is not this server, and a POST whose Origin is another site
/// (a browser sends Origin on every cross-site POST; tools like curl send none, which is fine).
pub(crate) async fn check_host_and_origin(
    State(hosts): State<Arc<Hosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !hosts.allows(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "Host {host:?} is not this server: Sluice answers only to {} (this keeps pages \
                 of other sites out through DNS rebinding)",
                hosts.describe()
            ),
        );
    }
    if req.method() == Method::POST {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return refuse(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    format!(
                        "requests from {:?} are refused: only Sluice's own page (http://{host}) \
                         may call its API",
                        origin.to_str().unwrap_or("?")
                    ),
                );
            }
        }
    }
    next.run(req).await
}

/// Reads a whole request body, refusing one over `limit` bytes (413, before reading it when
/// Content-Length says so) or one that takes longer than `timeout` to arrive (408).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidInput,
            format!(
                "the request body is over {} MiB, the most `sluice serve` accepts",
                limit >> 20
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidInput,
            format!("reading the request body: {e}"),
        )),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Timeout,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_the_bound_address_or_loopback_names_with_the_port() {
        let local = Hosts::for_bound("127.0.0.1:7878".parse().unwrap());
        for ok in [
            "127.0.0.1:7878",
            "localhost:7878",
            "LocalHost:7878",
            "[::1]:7878",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1:7879",
            "127.0.0.1",
            "evil.example:7878",
            "localhost.evil.example:7878",
            "192.168.1.5:7878",
            "",
            "[::1]",
            "[::1:7878",
            "127.0.0.1:x",
        ] {
            assert!(!local.allows(bad), "{bad}");
        }
        let v6 = Hosts::for_bound("[::1]:9000".parse().unwrap());
        assert!(v6.allows("[::1]:9000") && v6.allows("localhost:9000"));
        let lan = Hosts::for_bound("192.168.1.5:80".parse().unwrap());
        assert!(lan.allows("192.168.1.5") && lan.allows("192.168.1.5:80"));
        assert!(!lan.allows("localhost:80") && !lan.allows("10.0.0.1:80"));
        let all = Hosts::for_bound("0.0.0.0:7878".parse().unwrap());
        assert!(all.allows("10.1.2.3:7878") && all.allows("[fe80::1]:7878"));
        assert!(all.allows("localhost:7878"));
        assert!(!all.allows("rebound.example:7878") && !all.allows("10.1.2.3:1"));
    }
}
