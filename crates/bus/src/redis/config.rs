//! The client's config: the URL is kept without its password, which lives apart (keyring) and
//! is put back only when connecting; Debug output never shows it.

use crate::userinfo::Userinfo;
use crate::BusError;
use redis::{Client, ClientTlsConfig, Connection, IntoConnectionInfo, TlsCertificates};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct RedisConfig {
    /// `redis[s]://[USER@]HOST:PORT/DB`, without the password.
    pub url: String,
    /// ACL user when the URL names none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS even on a `redis://` URL.
    pub tls: bool,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// The entry field that holds the payload (`None`: `payload`, `data` or `body`).
    pub payload_field: Option<String>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("payload_field", &self.payload_field)
            .finish()
    }
}

/// A redis URL's parts (`crate::userinfo`), checked: its scheme and a host.
fn parts(url: &str) -> Result<Userinfo, BusError> {
    let bad = || BusError::Invalid("--url: expected redis[s]://[USER@]HOST:PORT/DB".into());
    let p = crate::userinfo::split(url)?.ok_or_else(bad)?;
    if (p.scheme != "redis" && p.scheme != "rediss") || p.host.is_empty() {
        return Err(bad());
    }
    Ok(p)
}

/// A URL split into the part to store (user kept, percent-encoded as given) and the password
/// to keep apart.
pub fn split_password(url: &str) -> Result<(String, Option<String>), BusError> {
    let p = parts(url)?;
    match &p.password {
        None => Ok((url.to_string(), None)),
        Some(pw) => Ok((p.with_user(), Some(pw.clone()).filter(|pw| !pw.is_empty()))),
    }
}

/// The user a URL names, if any.
pub(crate) fn url_user(url: &str) -> Option<String> {
    parts(url).ok()?.user
}

impl RedisConfig {
    /// `HOST:PORT`, for messages.
    pub(crate) fn host(&self) -> String {
        parts(&self.url)
            .map(|p| p.host)
            .unwrap_or_else(|_| self.url.clone())
    }

    pub(crate) fn user(&self) -> Option<String> {
        url_user(&self.url).or_else(|| self.username.clone())
    }

    pub(crate) fn uses_tls(&self) -> bool {
        self.tls
            || self.url.starts_with("rediss://")
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
    }

    /// What errors name: `Redis at HOST:PORT (CONNECTION)`.
    pub(crate) fn what(&self, connection: &str) -> String {
        format!("Redis at {} ({connection})", self.host())
    }

    /// Whether the redis client can read the URL (port, database number, options).
    pub(crate) fn check_url(&self) -> Result<(), BusError> {
        let p = parts(&self.url)?;
        format!("redis://{}{}", p.host, p.rest)
            .as_str()
            .into_connection_info()
            .map(|_| ())
            .map_err(|e| BusError::Invalid(format!("--url {:?}: {e}", self.url)))
    }

    fn client(&self, resp3: bool) -> Result<Client, BusError> {
        let p = parts(&self.url)?;
        let scheme = if self.uses_tls() { "rediss" } else { "redis" };
        let url = format!("{scheme}://{}{}", p.host, p.rest);
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| BusError::Invalid(format!("--url: {e}")))?;
        // The client pipelines CLIENT SETINFO after AUTH at connect and waits the timeout for
        // each reply: a silent server would hold the connect for three timeouts.
        let mut redis = info.redis_settings().clone().set_skip_set_lib_name();
        if let Some(u) = p.user.or_else(|| self.username.clone()) {
            redis = redis.set_username(u);
        }
        if let Some(pw) = &self.password {
            redis = redis.set_password(pw);
        }
        if resp3 {
            redis = redis.set_protocol(redis::ProtocolVersion::RESP3);
        }
        let info = info.set_redis_settings(redis);
        if self.tls_ca.is_none() && self.tls_cert.is_none() {
            return Client::open(info).map_err(|e| BusError::Invalid(format!("--url: {e}")));
        }
        let read = |f: &str| {
            std::fs::read(f).map_err(|e| BusError::MissingFile(format!("TLS file {f}: {e}")))
        };
        let root_cert = self.tls_ca.as_deref().map(read).transpose()?;
        let client_tls = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some(ClientTlsConfig {
                client_cert: read(c)?,
                client_key: read(k)?,
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(BusError::Invalid(
                    "--tls-cert and --tls-key go together".into(),
                ))
            }
            (None, None) => None,
        };
        Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls,
                root_cert,
            },
        )
        .map_err(|e| BusError::Invalid(format!("TLS settings: {e}")))
    }

    /// A connection whose every read and write waits at most `timeout`.
    pub(crate) fn connect(
        &self,
        connection: &str,
        timeout: Duration,
    ) -> Result<Connection, BusError> {
        self.connect_with(connection, timeout, false)
    }

    /// A connection speaking RESP3 (Redis 6+) when `resp3`: sharded Pub/Sub messages come as
    /// push messages only there.
    pub(crate) fn connect_with(
        &self,
        connection: &str,
        timeout: Duration,
        resp3: bool,
    ) -> Result<Connection, BusError> {
        let timeout = timeout.max(Duration::from_millis(10));
        let client = self.client(resp3)?;
        let made = if self.uses_tls() {
            connect_bounded(client, timeout)
        } else {
            client.get_connection_with_timeout(timeout)
        };
        let what = self.what(connection);
        // A server that refuses the client's certificate (or its absence) sends TLS 1.3's
        // alert after the handshake, then closes: the first command may meet the reset
        // rather than the alert, which then never says why.
        let fail = |e: redis::RedisError| {
            let closed = e.is_connection_dropped() && !e.is_connection_refusal();
            if self.uses_tls() && closed && tls_hint(&e.to_string()).is_none() {
                BusError::Unreachable {
                    what: what.clone(),
                    reason: format!(
                        "{e}: the server closed the TLS connection as it began; it may want a \
                         client certificate it trusts (--tls-cert, --tls-key)"
                    ),
                }
            } else {
                error(&what, e)
            }
        };
        let mut con = made.map_err(fail)?;
        con.set_read_timeout(Some(timeout))
            .and_then(|_| con.set_write_timeout(Some(timeout)))
            .map_err(fail)?;
        // CLIENT LIST then says who this is; a server or ACL that refuses it is no matter.
        match redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg("sluice")
            .query::<redis::Value>(&mut con)
        {
            Err(e) if broken(&e) => Err(fail(e)),
            _ => Ok(con),
        }
    }
}

/// How much longer than its own timeout a TLS connect is given before it is abandoned, so the
/// client's own, more precise error wins when it has one.
const TLS_CONNECT_MARGIN: Duration = Duration::from_millis(500);

/// `get_connection_with_timeout` bounds the TCP connect and the commands after it, but not the
/// TLS handshake in between: that reads from a socket with no timeout yet, so a server that
/// accepts and never answers (stopped, or no TLS on that port) held `connection test`, or a
/// capture's reconnect, for ever. The connect runs on a thread of its own that is given up at
/// the deadline; such a thread ends when the server answers or closes (or with the process).
fn connect_bounded(client: Client, timeout: Duration) -> redis::RedisResult<Connection> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sluice-redis-tls-connect".into())
        .spawn(move || {
            let _ = tx.send(client.get_connection_with_timeout(timeout));
        })?;
    rx.recv_timeout(timeout + TLS_CONNECT_MARGIN)
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no TLS handshake within {} ms", timeout.as_millis()),
            )
            .into())
        })
}

/// What to do about a failed TLS handshake, from OpenSSL's words (native-tls); `None` when
/// the error is no TLS failure.
fn tls_hint(text: &str) -> Option<&'static str> {
    if !(text.contains("SSL Handshake error") || text.contains("SSL routines")) {
        return None;
    }
    Some(if text.contains("certificate verify failed") {
        "the server's certificate is not trusted for this host: give the CA that signed it \
         with --tls-ca, and use a host name or address the certificate names"
    } else if [
        "certificate required",
        "alert bad certificate",
        "alert unknown ca",
    ]
    .iter()
    .any(|a| text.contains(a))
    {
        "the server wants a client certificate it trusts: give --tls-cert and --tls-key"
    } else {
        "check the TLS settings (--tls-ca, --tls-cert, --tls-key) and that the port speaks TLS"
    })
}

/// Whether an error means the connection is unusable (to be dropped and made again).
pub(crate) fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

/// A client error in Sluice's terms: refused credentials, an unreachable server, or what the
/// server said.
pub(crate) fn error(what: &str, e: redis::RedisError) -> BusError {
    let text = e.to_string();
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || ["NOAUTH", "WRONGPASS", "NOPERM"]
            .iter()
            .any(|c| e.code() == Some(*c) || text.contains(c));
    if let Some(hint) = tls_hint(&text) {
        // The server answered, so not "unreachable": its certificate or ours was refused.
        BusError::Client(format!("{what}: TLS handshake failed: {text}; {hint}"))
    } else if auth {
        BusError::Auth {
            what: what.to_string(),
            reason: text,
        }
    } else if broken(&e) {
        BusError::Unreachable {
            what: what.to_string(),
            reason: if e.is_timeout() {
                format!("no answer in time ({text})")
            } else {
                text
            },
        }
    } else {
        BusError::Client(format!("{what}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_moves_out_of_it() {
        assert_eq!(
            split_password("redis://alice:s%40cret@h:6379/2").unwrap(),
            (
                "redis://alice@h:6379/2".to_string(),
                Some("s@cret".to_string())
            )
        );
        assert_eq!(
            split_password("rediss://:pw@h:6380").unwrap(),
            ("rediss://h:6380".to_string(), Some("pw".to_string()))
        );
        assert_eq!(
            split_password("redis://bob@h:1/0").unwrap(),
            ("redis://bob@h:1/0".to_string(), None)
        );
        assert!(split_password("http://h:1").is_err());
        assert!(split_password("redis://").is_err());
        assert_eq!(url_user("redis://bob@h:1/0").as_deref(), Some("bob"));
    }

    #[test]
    fn a_refused_certificate_is_said_as_such() {
        let what = "Redis at 127.0.0.1:1 (c)";
        let e = redis::RedisError::from((
            redis::ErrorKind::Io,
            "SSL Handshake error",
            "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate \
             verify failed (self-signed certificate in certificate chain)"
                .to_string(),
        ));
        let BusError::Client(m) = error(what, e) else {
            panic!("a TLS failure is not unreachable");
        };
        assert!(
            m.starts_with(what) && m.contains("TLS handshake failed") && m.contains("--tls-ca")
        );
        let e = redis::RedisError::from(std::io::Error::other(
            "error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required",
        ));
        assert!(matches!(error(what, e), BusError::Client(m) if m.contains("--tls-cert")));
        let e =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(error(what, e), BusError::Unreachable { .. }));
    }

    #[test]
    fn a_tls_server_that_never_answers_is_given_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and keeps the connection, saying nothing.
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let c = RedisConfig {
            url: format!("rediss://127.0.0.1:{port}/0"),
            ..Default::default()
        };
        let start = std::time::Instant::now();
        let Err(e) = c.connect("silent", Duration::from_millis(300)) else {
            panic!("a silent server is no connection");
        };
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(&e, BusError::Unreachable { what, reason } if what.contains("(silent)") && reason.contains("no answer in time")),
            "{e}"
        );
        drop(held.join());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = RedisConfig {
            url: "redis://h:1".into(),
            password: Some("s3cret".into()),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret") && shown.contains("<redacted>"));
    }
}
