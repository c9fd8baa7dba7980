//! The client's configuration from checked settings: the endpoint, method, timeouts and body
//! mode, and the connection's headers, which Debug never shows (they hold credentials).

use crate::BusError;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
}

impl Method {
    pub(crate) fn parse(s: &str) -> Result<Self, BusError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "" | "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            other => Err(BusError::Invalid(format!(
                "--set method={other:?}: expected POST, PUT or PATCH"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// What a request's body is (see `cloudevents.rs` for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// The payload as it is; the message's metadata in headers.
    Raw,
    /// CloudEvents 1.0 HTTP binary mode: attributes in `ce-` headers, the payload as body.
    CloudEventsBinary,
    /// CloudEvents 1.0 HTTP structured mode: one `application/cloudevents+json` document.
    CloudEventsStructured,
}

impl BodyMode {
    pub(crate) const NAMES: [&'static str; 3] =
        ["raw", "cloudevents-binary", "cloudevents-structured"];

    pub(crate) fn parse(s: &str) -> Result<Self, BusError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "raw" => Ok(BodyMode::Raw),
            "cloudevents-binary" => Ok(BodyMode::CloudEventsBinary),
            "cloudevents-structured" => Ok(BodyMode::CloudEventsStructured),
            other => Err(BusError::Invalid(format!(
                "--set body={other:?}: expected raw, cloudevents-binary or cloudevents-structured"
            ))),
        }
    }
}

#[derive(Clone)]
pub struct HttpConfig {
    pub url: String,
    pub method: Method,
    /// The longest each phase of a request may take (connect, send, wait for the answer).
    pub timeout: Duration,
    pub body: BodyMode,
    pub concurrency: usize,
    /// Sent with every request; they win over any header a message carries.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}: <redacted>"))
            .collect();
        f.debug_struct("HttpConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("timeout", &self.timeout)
            .field("body", &self.body)
            .field("concurrency", &self.concurrency)
            .field("headers", &names)
            .finish()
    }
}

impl HttpConfig {
    /// A client whose every phase (resolve, connect, send, answer) is bounded by the
    /// connection's timeout, so a timeout says how far the request got. Redirects are not
    /// followed: that would send the connection's headers to another place, and a method
    /// changed on the way.
    pub(crate) fn agent(&self) -> ureq::Agent {
        let t = Some(self.timeout);
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_recv_body(t)
            .max_idle_connections(self.concurrency.max(1) * 2)
            .max_idle_connections_per_host(self.concurrency.max(1))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }

    /// The URL a message goes to: the connection's, with the destination's path or query
    /// appended (`NAME:/orders`, `NAME:orders`, `NAME:?tenant=a`).
    pub(crate) fn url_for(&self, target: &str) -> String {
        let t = target.trim();
        if t.is_empty() {
            return self.url.clone();
        }
        if let Some(q) = t.strip_prefix('?') {
            let sep = if self.url.contains('?') { "&" } else { "?" };
            return format!("{}{sep}{q}", self.url);
        }
        // The connection URL's own query goes after the appended path.
        let (base, query) = match self.url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.url.as_str(), None),
        };
        let mut url = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            t.trim_start_matches('/')
        );
        if let Some(q) = query {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(q);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> HttpConfig {
        HttpConfig {
            url: url.into(),
            method: Method::Post,
            timeout: Duration::from_secs(1),
            body: BodyMode::Raw,
            concurrency: 1,
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
        }
    }

    #[test]
    fn debug_hides_header_values() {
        let d = format!("{:?}", config("http://h/"));
        assert!(d.contains("Authorization") && !d.contains("s3cret"), "{d}");
    }

    #[test]
    fn targets_append_a_path_or_a_query() {
        let c = config("http://h:1/hooks/");
        assert_eq!(c.url_for(""), "http://h:1/hooks/");
        assert_eq!(c.url_for("/orders"), "http://h:1/hooks/orders");
        assert_eq!(c.url_for("orders/1"), "http://h:1/hooks/orders/1");
        assert_eq!(c.url_for("?x=1"), "http://h:1/hooks/?x=1");
        let c = config("http://h:1/in?key=k");
        assert_eq!(c.url_for("a"), "http://h:1/in/a?key=k");
        assert_eq!(c.url_for("a?b=2"), "http://h:1/in/a?b=2&key=k");
        assert_eq!(c.url_for("?x=1"), "http://h:1/in?key=k&x=1");
    }
}
