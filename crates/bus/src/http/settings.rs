//! HTTP endpoint settings as `connection add` takes them and `config.toml` keeps them: the
//! URL, method, timeout, body mode and concurrency. The headers (`--header 'Name: value'`,
//! an `Authorization` most often) are the connection's secret: they arrive as its lines,
//! joined by "\n", and are kept apart (keyring) like a password.
//!
//! Numbers are kept as the text a person typed (`--set timeout_ms=5000`, the window's text
//! fields) and checked here, so settings read back exactly as they were given.

use super::config::{BodyMode, HttpConfig, Method};
use super::Http;
use crate::settings::{ConnectionSettings, Summary};
use crate::{BusError, Connector};
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub(crate) const DEFAULT_CONCURRENCY: usize = 8;
/// More workers than this would only queue at the endpoint (and hold as many sockets).
const MAX_CONCURRENCY: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct HttpSettings {
    #[serde(alias = "brokers")]
    pub url: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Longest wait for each phase of one request (connect, send, answer), in milliseconds.
    #[serde(
        deserialize_with = "text_or_number",
        skip_serializing_if = "String::is_empty"
    )]
    pub timeout_ms: String,
    /// `raw` (default), `cloudevents-binary` or `cloudevents-structured`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Requests in flight at once.
    #[serde(
        deserialize_with = "text_or_number",
        skip_serializing_if = "String::is_empty"
    )]
    pub concurrency: String,
}

/// A number written by hand in config.toml reads like the text the CLI keeps.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        S(String),
        N(u64),
    }
    Ok(match T::deserialize(d)? {
        T::S(s) => s,
        T::N(n) => n.to_string(),
    })
}

/// Header names Sluice sets itself (framing, the connection): a connection header could
/// only break the request.
const FRAMING: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-connection",
];

pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether HTTP cannot take a header of this name from a message or a connection.
pub(crate) fn is_framing(name: &str) -> bool {
    FRAMING.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The connection's headers from their lines (`Name: value`, one per line; blank lines
/// skipped). Errors name the line and the header name, never a value.
pub(crate) fn parse_headers(secret: &str) -> Result<Vec<(String, String)>, BusError> {
    let mut out = Vec::new();
    for (i, line) in secret.split('\n').enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(BusError::Invalid(format!(
                "--header line {n}: expected 'Name: value' (an http connection's secret is its headers, one per line)"
            )));
        };
        let name = name.trim();
        if !is_token(name) {
            // The line is a secret: the error names where it is, never what it says.
            return Err(BusError::Invalid(format!(
                "--header line {n}: not a valid header name before its ':' (letters, digits and !#$%&'*+-.^_`|~)"
            )));
        }
        if is_framing(name) {
            return Err(BusError::Invalid(format!(
                "--header {name}: Sluice sets this header itself"
            )));
        }
        let value = value.trim_matches([' ', '\t']);
        // CR, LF and other controls in a value would end the header and start another.
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(BusError::Invalid(format!(
                "--header {name}: the value holds a control character (CR, LF...)"
            )));
        }
        if !value.is_ascii() {
            return Err(BusError::Invalid(format!(
                "--header {name}: the value must be ASCII (encode other text, as HTTP has no charset for headers)"
            )));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

fn number(text: &str, default: u64, flag: &str, min: u64, max: u64) -> Result<u64, BusError> {
    if text.trim().is_empty() {
        return Ok(default);
    }
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(BusError::Invalid(format!(
            "--set {flag}={text:?}: expected a whole number from {min} to {max}"
        ))),
    }
}

/// `http[s]://HOST[:PORT][/PATH][?QUERY]`, without credentials (they belong in a header,
/// kept apart, not in config.toml).
fn check_url(url: &str) -> Result<(), BusError> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| BusError::Invalid(format!("--url {url:?}: {e}")))?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(BusError::Invalid(format!(
            "--url {url:?}: expected http://HOST[:PORT]/PATH or https://..."
        )));
    }
    let Some(authority) = uri.authority() else {
        return Err(BusError::Invalid(format!("--url {url:?}: no host")));
    };
    if authority.as_str().contains('@') {
        return Err(BusError::Invalid(
            "--url: the URL still holds credentials; give them as --header 'Authorization: ...'"
                .into(),
        ));
    }
    if authority.host().is_empty() {
        return Err(BusError::Invalid(format!("--url {url:?}: no host")));
    }
    if uri.to_string().contains('#') || url.contains('#') {
        return Err(BusError::Invalid(format!(
            "--url {url:?}: a #fragment is never sent"
        )));
    }
    Ok(())
}

/// `user:password@` taken out of a URL, as the `Authorization: Basic` header it means, so the
/// password goes where secrets go and the URL kept has none.
fn split_userinfo(url: &str) -> Result<(String, Option<(String, String)>), BusError> {
    let Some(u) = crate::userinfo::split(url)? else {
        return Ok((url.to_string(), None));
    };
    if u.user.is_none() && u.password.is_none() {
        return Ok((url.to_string(), None));
    }
    use base64::Engine;
    let (user, password) = (
        u.user.clone().unwrap_or_default(),
        u.password.clone().unwrap_or_default(),
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Ok((
        u.bare(),
        Some(("Authorization".to_string(), format!("Basic {basic}"))),
    ))
}

impl HttpSettings {
    /// The client's configuration, with the connection's headers.
    pub(crate) fn config(&self, headers: Vec<(String, String)>) -> Result<HttpConfig, BusError> {
        check_url(&self.url)?;
        let method = Method::parse(&self.method)?;
        let body = BodyMode::parse(&self.body)?;
        let timeout_ms = number(
            &self.timeout_ms,
            DEFAULT_TIMEOUT_MS,
            "timeout_ms",
            1,
            3_600_000,
        )?;
        let concurrency = number(
            &self.concurrency,
            DEFAULT_CONCURRENCY as u64,
            "concurrency",
            1,
            MAX_CONCURRENCY as u64,
        )? as usize;
        Ok(HttpConfig {
            url: self.url.clone(),
            method,
            timeout: Duration::from_millis(timeout_ms),
            body,
            concurrency,
            headers,
        })
    }
}

impl ConnectionSettings for HttpSettings {
    fn checked(self, secret: Option<String>) -> Result<(Self, Option<String>), BusError> {
        let s = HttpSettings {
            url: self.url.trim().to_string(),
            method: self.method.trim().to_ascii_uppercase(),
            timeout_ms: self.timeout_ms.trim().to_string(),
            body: self.body.trim().to_ascii_lowercase(),
            concurrency: self.concurrency.trim().to_string(),
        };
        if s.url.is_empty() {
            return Err(BusError::Invalid(
                "--url is required for http (http[s]://HOST[:PORT]/PATH)".into(),
            ));
        }
        let mut headers = match secret.as_deref() {
            Some(text) => parse_headers(text)?,
            None => Vec::new(),
        };
        let (url, basic) = split_userinfo(&s.url)?;
        let s = HttpSettings { url, ..s };
        if let Some(basic) = basic {
            if headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                return Err(BusError::Invalid(
                    "--url holds a user and password and --header an Authorization: give one of them"
                        .into(),
                ));
            }
            headers.push(basic);
        }
        s.config(Vec::new())?;
        // Kept as checked lines, so what opens later parses the same way.
        let secret = (!headers.is_empty()).then(|| {
            headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        Ok((s, secret))
    }

    fn open(&self, name: &str, secret: Option<String>) -> Result<Box<dyn Connector>, BusError> {
        let headers = match secret.as_deref() {
            Some(text) => parse_headers(text)?,
            None => Vec::new(),
        };
        Ok(Box::new(Http {
            name: name.to_string(),
            config: self.config(headers)?,
        }))
    }

    fn summary(&self) -> Summary {
        Summary {
            place: format!(
                "{} {}",
                Method::parse(&self.method).unwrap_or(Method::Post).as_str(),
                self.url
            ),
            auth: "secret headers, if any".into(),
            tls: self
                .url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> HttpSettings {
        HttpSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn headers_parse_and_refuse_injection_without_showing_values() {
        let h = parse_headers("Authorization: Bearer abc\n\nX-Api-Key:k1 \r").unwrap_err();
        assert!(h.to_string().contains("X-Api-Key"), "{h}");
        assert!(!h.to_string().contains("k1"), "{h}");
        let h = parse_headers("Authorization: Bearer abc\n\nX-Api-Key:  k1 ").unwrap();
        assert_eq!(
            h,
            [
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("X-Api-Key".to_string(), "k1".to_string())
            ]
        );
        let e = parse_headers("Bearer s3cret").unwrap_err().to_string();
        assert!(e.contains("line 1") && !e.contains("s3cret"), "{e}");
        let e = parse_headers("Bad Name: s3cret").unwrap_err().to_string();
        assert!(
            e.contains("not a valid header name") && !e.contains("s3cret"),
            "{e}"
        );
        let e = parse_headers("Content-Length: 3").unwrap_err().to_string();
        assert!(e.contains("itself"), "{e}");
        assert!(parse_headers("X: a\u{0}b").is_err());
        assert!(parse_headers("X: a\u{7f}").is_err());
        assert!(parse_headers("X: café").is_err());
        assert_eq!(parse_headers("X:").unwrap(), [("X".into(), "".into())]);
    }

    #[test]
    fn checked_normalises_and_validates() {
        let (s, secret) = HttpSettings {
            url: " http://127.0.0.1:8080/hook ".into(),
            method: "put".into(),
            body: "CloudEvents-Binary".into(),
            timeout_ms: "2500".into(),
            concurrency: "4".into(),
        }
        .checked(Some("authorization:  Bearer x \n".into()))
        .unwrap();
        assert_eq!(s.url, "http://127.0.0.1:8080/hook");
        assert_eq!(s.method, "PUT");
        assert_eq!(s.body, "cloudevents-binary");
        assert_eq!(secret.as_deref(), Some("authorization: Bearer x"));
        let c = s.config(Vec::new()).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.method, Method::Put);
        assert_eq!(c.body, BodyMode::CloudEventsBinary);

        let (s, secret) = settings("https://example.com/e").checked(None).unwrap();
        let c = s.config(Vec::new()).unwrap();
        assert_eq!(secret, None);
        assert_eq!(
            (c.method, c.body, c.timeout, c.concurrency),
            (
                Method::Post,
                BodyMode::Raw,
                Duration::from_millis(DEFAULT_TIMEOUT_MS),
                DEFAULT_CONCURRENCY
            )
        );
        assert!(s.summary().tls);

        for (bad, says) in [
            (settings(""), "--url is required"),
            (settings("ftp://x/y"), "expected http"),
            (settings("127.0.0.1:80"), "expected http"),
            (
                HttpSettings {
                    method: "DELETE".into(),
                    ..settings("http://h/")
                },
                "POST, PUT or PATCH",
            ),
            (
                HttpSettings {
                    body: "json".into(),
                    ..settings("http://h/")
                },
                "cloudevents-structured",
            ),
            (
                HttpSettings {
                    timeout_ms: "soon".into(),
                    ..settings("http://h/")
                },
                "timeout_ms",
            ),
            (
                HttpSettings {
                    concurrency: "0".into(),
                    ..settings("http://h/")
                },
                "concurrency",
            ),
        ] {
            let e = bad.checked(None).unwrap_err().to_string();
            assert!(e.contains(says), "{e} (wanted {says})");
            assert!(!e.contains("u:p"), "{e}");
        }
    }

    #[test]
    fn a_password_in_the_url_becomes_a_basic_header() {
        let (s, secret) = settings("https://ada:p%40ss@example.com:8443/in?x=1")
            .checked(Some("X-Tenant: a".into()))
            .unwrap();
        assert_eq!(s.url, "https://example.com:8443/in?x=1");
        // base64("ada:p@ss")
        assert_eq!(
            secret.as_deref(),
            Some("X-Tenant: a\nAuthorization: Basic YWRhOnBAc3M=")
        );
        let e = settings("http://u:p@h/")
            .checked(Some("Authorization: Bearer t".into()))
            .unwrap_err();
        assert!(e.to_string().contains("give one of them"), "{e}");
    }

    #[test]
    fn numbers_written_in_config_toml_read_back() {
        let s: HttpSettings =
            serde_json::from_str(r#"{"url":"http://h/","timeout_ms":500,"concurrency":"2"}"#)
                .unwrap();
        assert_eq!(
            (s.timeout_ms.as_str(), s.concurrency.as_str()),
            ("500", "2")
        );
        let back = serde_json::to_value(settings("http://h/")).unwrap();
        assert_eq!(back, serde_json::json!({"url": "http://h/"}));
    }
}
