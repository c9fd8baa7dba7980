//! One request per replayed message, in each body mode.
//!
//! Every mode carries the message's headers as HTTP headers: a header whose value is
//! printable ASCII keeps its name and value; another value (binary, non-ASCII text, edge
//! whitespace HTTP would trim) goes base64 under `NAME-b64`; a name HTTP cannot carry (not a
//! token, or a framing header such as `Host`) goes in `sluice-headers`, a JSON array of
//! `[name, base64 value]`. The key is `sluice-key` (or `sluice-key-b64`), the timestamp
//! `sluice-timestamp` (RFC 3339), and the replay id is also the `Idempotency-Key` (unless
//! the message has its own), stable across retries, so an endpoint can drop a duplicate. The
//! connection's headers win.
//!
//! - `raw`: the payload as it is; `Content-Type` the message's own (its `content-type`
//!   header or property), else `application/json` for a JSON payload, else
//!   `application/octet-stream`; a CloudEvent without a datacontenttype gets none.
//! - `cloudevents-binary` (CloudEvents 1.0 HTTP binding): attributes in `ce-` headers, the
//!   payload as it is, `Content-Type` its datacontenttype.
//! - `cloudevents-structured`: `application/cloudevents+json`, with a JSON payload inline as
//!   `data` (its bytes unchanged) and any other as `data_base64`.
//!
//! A message that was itself a CloudEvent (Kafka `ce_`, HTTP `ce-`, AMQP `cloudEvents:`
//! headers) keeps its attributes: id, source, type, time, subject and extensions. Others get
//! id = the Sluice event id, source = `/sluice/CONNECTION/SOURCE`, type `sluice.replay`, time
//! = the message's timestamp, and the text key as the `partitionkey` extension.

use super::config::{BodyMode, HttpConfig};
use super::settings::{is_framing, is_token};
use base64::Engine;
use percent_encoding::{AsciiSet, CONTROLS};
use sluice_model::Outgoing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) const SPEC_VERSION: &str = "1.0";
pub(crate) const DEFAULT_TYPE: &str = "sluice.replay";
const STRUCTURED: &str = "application/cloudevents+json";
const REPLAY_ID: &str = "sluice-replay-id";
const REPLAY_SOURCE: &str = "sluice-source";

/// A request ready to send.
pub(crate) struct Prepared {
    pub url: String,
    /// Values are printable ASCII (checked when built).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Printable ASCII without edge spaces: what an HTTP header value carries unchanged.
fn printable(v: &[u8]) -> bool {
    v.iter().all(|b| (0x20..=0x7e).contains(b))
        && v.first() != Some(&b' ')
        && v.last() != Some(&b' ')
}

/// A header name from another bus that is one of CloudEvents' (`ce_id`, `ce-id`,
/// `cloudEvents:id`), as the attribute name.
fn ce_attribute(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    ["ce_", "ce-", "cloudevents:", "cloudevents_"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .filter(|a| !a.is_empty() && a.len() <= 20 && a.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_string)
}

/// Characters the CloudEvents HTTP binding percent-encodes in a `ce-` header value.
const CE_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%').add(0x7f);

fn ce_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, CE_VALUE).to_string()
}

fn text(v: &Option<Vec<u8>>) -> Option<&str> {
    v.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

/// The message's own content type: a `content-type` header, else a `content_type`
/// property (AMQP, MQTT 5).
fn content_type(msg: &Outgoing) -> Option<String> {
    let from_header = msg
        .headers
        .iter()
        .find(|h| {
            h.key.eq_ignore_ascii_case("content-type")
                || h.key.eq_ignore_ascii_case("ce_datacontenttype")
        })
        .and_then(|h| text(&h.value))
        .map(str::to_string);
    from_header
        .or_else(|| {
            let p: serde_json::Value = serde_json::from_str(msg.properties.as_deref()?).ok()?;
            p.get("content_type")?.as_str().map(str::to_string)
        })
        .filter(|c| !c.is_empty() && printable(c.as_bytes()))
}

fn is_json(payload: &[u8]) -> bool {
    !payload.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok()
}

fn json_type(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|c| {
        let c = c.to_ascii_lowercase();
        c.starts_with("application/json") || c.contains("+json") || c.starts_with("text/json")
    })
}

fn rfc3339(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// `name: value` for a value HTTP carries, else `name-b64: base64`.
fn push_value(out: &mut Vec<(String, String)>, name: &str, value: &[u8]) {
    if printable(value) {
        out.push((
            name.to_string(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    } else {
        out.push((format!("{name}-b64"), B64.encode(value)));
    }
}

/// The message's headers and metadata as HTTP headers (mapping in the module comment).
/// `ce_headers`: whether CloudEvents headers are attributes here (left out) or plain headers.
fn message_headers(msg: &Outgoing, ce_headers: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut uncarried = Vec::new();
    for h in &msg.headers {
        let value = h.value.as_deref().unwrap_or_default();
        if h.key.eq_ignore_ascii_case("content-type")
            || (ce_headers && ce_attribute(&h.key).is_some())
        {
            continue;
        }
        if is_token(&h.key) && !is_framing(&h.key) {
            push_value(&mut out, &h.key, value);
        } else {
            uncarried.push(serde_json::json!([h.key, B64.encode(value)]));
        }
    }
    if !uncarried.is_empty() {
        out.push((
            "sluice-headers".into(),
            serde_json::Value::from(uncarried).to_string(),
        ));
    }
    if let Some(k) = &msg.key {
        push_value(&mut out, "sluice-key", k);
    }
    if let Some(t) = msg.timestamp_us.and_then(rfc3339) {
        out.push(("sluice-timestamp".into(), t));
    }
    // An application's own idempotency key means more to its endpoint than the replay's.
    let own_key = out
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"));
    if let Some(id) = msg
        .headers
        .iter()
        .find(|h| h.key == REPLAY_ID)
        .and_then(|h| h.value.as_deref())
        .filter(|v| printable(v) && !own_key)
    {
        out.push((
            "Idempotency-Key".into(),
            String::from_utf8_lossy(id).into_owned(),
        ));
    }
    out
}

/// The CloudEvents context of a message, in attribute order (required ones first).
fn attributes(msg: &Outgoing, datacontenttype: Option<&str>) -> Vec<(String, String)> {
    let mut own: Vec<(String, String)> = Vec::new();
    for h in &msg.headers {
        let Some(a) = ce_attribute(&h.key) else {
            continue;
        };
        let Some(v) = text(&h.value) else { continue };
        // The HTTP binding percent-encodes values; take them back as text.
        let v = if h.key.to_ascii_lowercase().starts_with("ce-") {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        } else {
            v.to_string()
        };
        if a != "specversion" && a != "datacontenttype" && a != "data" && a != "data_base64" {
            own.retain(|(k, _)| *k != a);
            own.push((a, v));
        }
    }
    let mut take = |name: &str| {
        own.iter()
            .position(|(k, _)| k == name)
            .map(|i| own.remove(i).1)
    };
    let source = take("source").unwrap_or_else(|| default_source(msg));
    let mut attrs = vec![
        ("specversion".to_string(), SPEC_VERSION.to_string()),
        (
            "id".to_string(),
            take("id").unwrap_or_else(|| msg.event_id.clone()),
        ),
        ("source".to_string(), source),
        (
            "type".to_string(),
            take("type").unwrap_or_else(|| DEFAULT_TYPE.to_string()),
        ),
    ];
    if let Some(t) = take("time").or_else(|| msg.timestamp_us.and_then(rfc3339)) {
        attrs.push(("time".into(), t));
    }
    if let Some(c) = datacontenttype {
        attrs.push(("datacontenttype".into(), c.to_string()));
    }
    let had_key = own.iter().any(|(k, _)| k == "partitionkey");
    attrs.extend(own);
    if !had_key {
        if let Some(k) = msg.key.as_deref().filter(|k| !k.is_empty() && printable(k)) {
            attrs.push((
                "partitionkey".into(),
                String::from_utf8_lossy(k).into_owned(),
            ));
        }
    }
    attrs
}

const SEGMENT: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// `/sluice/CONNECTION/SOURCE` from the replay's `sluice-source` position
/// (`CONNECTION/SOURCE/PARTITION/OFFSET`; a source may hold slashes, kept as they are: a
/// connection name holds none).
fn default_source(msg: &Outgoing) -> String {
    let pos = msg
        .headers
        .iter()
        .find(|h| h.key == REPLAY_SOURCE)
        .and_then(|h| text(&h.value));
    let Some(pos) = pos else {
        return "/sluice".into();
    };
    let mut parts = pos.rsplitn(3, '/');
    let (_offset, _partition, rest) = (parts.next(), parts.next(), parts.next());
    let Some((connection, source)) = rest.and_then(|r| r.split_once('/')) else {
        return "/sluice".into();
    };
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
    format!("/sluice/{}/{}", enc(connection), enc(source))
}

/// The request for one message.
pub(crate) fn request(config: &HttpConfig, msg: &Outgoing) -> Prepared {
    let own_type = content_type(msg);
    let json = is_json(&msg.payload);
    let (mut headers, body) = match config.body {
        BodyMode::Raw => {
            let mut h = message_headers(msg, false);
            // A CloudEvent without a datacontenttype goes without a Content-Type, as the HTTP
            // binding carries it: a guess would arrive as a datacontenttype it never had.
            let cloudevent = msg
                .headers
                .iter()
                .any(|h| ce_attribute(&h.key).as_deref() == Some("specversion"));
            let ct = own_type.or_else(|| {
                (!cloudevent).then(|| {
                    if json {
                        "application/json"
                    } else {
                        "application/octet-stream"
                    }
                    .to_string()
                })
            });
            if let Some(ct) = ct {
                h.push(("Content-Type".into(), ct));
            }
            (h, msg.payload.clone())
        }
        BodyMode::CloudEventsBinary => {
            let mut h = message_headers(msg, true);
            let ct = own_type.or_else(|| json.then(|| "application/json".to_string()));
            for (k, v) in attributes(msg, None) {
                h.push((format!("ce-{k}"), ce_value(&v)));
            }
            h.push((
                "Content-Type".into(),
                ct.unwrap_or_else(|| "application/octet-stream".into()),
            ));
            (h, msg.payload.clone())
        }
        BodyMode::CloudEventsStructured => {
            let mut h = message_headers(msg, true);
            let inline = json && json_type(own_type.as_deref());
            let ct = own_type.or_else(|| json.then(|| "application/json".to_string()));
            let mut doc = serde_json::Map::new();
            for (k, v) in attributes(msg, ct.as_deref()) {
                doc.insert(k, v.into());
            }
            if !inline {
                doc.insert("data_base64".into(), B64.encode(&msg.payload).into());
            }
            let mut body = serde_json::Value::Object(doc).to_string().into_bytes();
            if inline {
                // The payload's own bytes, not a re-serialisation: numbers and key order stay.
                body.pop();
                body.extend_from_slice(b",\"data\":");
                body.extend_from_slice(&msg.payload);
                body.push(b'}');
            }
            h.push(("Content-Type".into(), STRUCTURED.into()));
            (h, body)
        }
    };
    // The connection's headers win over any of the message's.
    headers.retain(|(k, _)| {
        !config
            .headers
            .iter()
            .any(|(c, _)| c.eq_ignore_ascii_case(k))
    });
    headers.extend(config.headers.iter().cloned());
    Prepared {
        url: config.url_for(&msg.target),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::config::Method;
    use sluice_model::Header;
    use std::time::Duration;

    fn config(body: BodyMode) -> HttpConfig {
        HttpConfig {
            url: "http://h/in".into(),
            method: Method::Post,
            timeout: Duration::from_secs(1),
            body,
            concurrency: 1,
            headers: vec![("Authorization".into(), "Bearer s".into())],
        }
    }

    fn header(k: &str, v: &[u8]) -> Header {
        Header {
            key: k.into(),
            value: Some(v.to_vec()),
        }
    }

    fn msg(payload: &[u8]) -> Outgoing {
        Outgoing {
            target: "/orders".into(),
            partition: None,
            key: Some(b"k-1".to_vec()),
            headers: vec![
                header("trace", b"abc"),
                header("bin", &[0, 159, 146, 150]),
                header("bad name", b"v"),
                header("Authorization", b"from the event"),
                header("content-type", b"application/json"),
                header(REPLAY_ID, b"lake:run:ev1"),
                header(REPLAY_SOURCE, b"local/a/b/0/42"),
            ],
            timestamp_us: Some(1_700_000_000_123_456),
            payload: payload.to_vec(),
            properties: None,
            routing_key: None,
            event_id: "ev1".into(),
        }
    }

    fn get<'a>(p: &'a Prepared, k: &str) -> Vec<&'a str> {
        p.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn raw_keeps_the_payload_and_maps_headers() {
        let p = request(&config(BodyMode::Raw), &msg(b"{\"a\": 1.50}"));
        assert_eq!(p.url, "http://h/in/orders");
        assert_eq!(p.body, b"{\"a\": 1.50}");
        assert_eq!(get(&p, "trace"), ["abc"]);
        assert_eq!(get(&p, "bin-b64"), [B64.encode([0, 159, 146, 150])]);
        assert_eq!(get(&p, "sluice-headers"), [r#"[["bad name","dg=="]]"#]);
        assert_eq!(
            get(&p, "Authorization"),
            ["Bearer s"],
            "the connection's header wins"
        );
        assert_eq!(get(&p, "Content-Type"), ["application/json"]);
        assert_eq!(get(&p, "sluice-key"), ["k-1"]);
        assert_eq!(get(&p, "sluice-timestamp"), ["2023-11-14T22:13:20.123456Z"]);
        assert_eq!(get(&p, "Idempotency-Key"), ["lake:run:ev1"]);
        assert_eq!(get(&p, REPLAY_SOURCE), ["local/a/b/0/42"]);
        for (k, v) in &p.headers {
            assert!(is_token(k) && printable(v.as_bytes()), "{k}: {v}");
        }
        let mut m = msg(b"x");
        m.headers.push(header("idempotency-key", b"app-1"));
        let p = request(&config(BodyMode::Raw), &m);
        assert_eq!(
            get(&p, "Idempotency-Key"),
            ["app-1"],
            "the application's own key stays"
        );
        let mut m = msg(&[1, 2, 3]);
        m.headers.clear();
        m.key = Some(vec![0xff]);
        let p = request(&config(BodyMode::Raw), &m);
        assert_eq!(get(&p, "Content-Type"), ["application/octet-stream"]);
        assert_eq!(get(&p, "sluice-key-b64"), ["/w=="]);

        // A CloudEvent that had no datacontenttype is not given one by a guess.
        let mut m = msg(b"{}");
        m.headers = vec![header("ce-specversion", b"1.0"), header("ce-id", b"1")];
        let p = request(&config(BodyMode::Raw), &m);
        assert!(get(&p, "Content-Type").is_empty(), "{:?}", p.headers);
        m.headers.push(header("content-type", b"application/json"));
        let p = request(&config(BodyMode::Raw), &m);
        assert_eq!(get(&p, "Content-Type"), ["application/json"]);
    }

    #[test]
    fn binary_mode_puts_attributes_in_ce_headers() {
        let p = request(&config(BodyMode::CloudEventsBinary), &msg(b"[1]"));
        assert_eq!(p.body, b"[1]");
        assert_eq!(get(&p, "ce-specversion"), ["1.0"]);
        assert_eq!(get(&p, "ce-id"), ["ev1"]);
        assert_eq!(get(&p, "ce-source"), ["/sluice/local/a/b"]);
        assert_eq!(get(&p, "ce-type"), [DEFAULT_TYPE]);
        assert_eq!(get(&p, "ce-time"), ["2023-11-14T22:13:20.123456Z"]);
        assert_eq!(get(&p, "ce-partitionkey"), ["k-1"]);
        assert_eq!(get(&p, "Content-Type"), ["application/json"]);
    }

    #[test]
    fn a_cloudevent_from_kafka_keeps_its_attributes() {
        let mut m = msg(b"hello");
        m.headers = vec![
            header("ce_specversion", b"1.0"),
            header("ce_id", b"A-1"),
            header("ce_source", b"urn:shop"),
            header("ce_type", b"order.paid"),
            header("ce_traceparent", b"00-x"),
            header("content-type", b"text/plain"),
        ];
        let p = request(&config(BodyMode::CloudEventsBinary), &m);
        assert_eq!(get(&p, "ce-id"), ["A-1"]);
        assert_eq!(get(&p, "ce-source"), ["urn:shop"]);
        assert_eq!(get(&p, "ce-type"), ["order.paid"]);
        assert_eq!(get(&p, "ce-traceparent"), ["00-x"]);
        assert_eq!(get(&p, "Content-Type"), ["text/plain"]);
        assert!(get(&p, "ce_id").is_empty(), "not sent twice");
        let p = request(&config(BodyMode::CloudEventsStructured), &m);
        let doc: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(doc["id"], "A-1");
        assert_eq!(doc["datacontenttype"], "text/plain");
        assert_eq!(doc["data_base64"], B64.encode("hello"));
        assert_eq!(doc["traceparent"], "00-x");
    }

    #[test]
    fn structured_mode_inlines_json_bytes_unchanged() {
        let payload = br#"{"n": 12345678901234567890123, "z": 1.50}"#;
        let p = request(&config(BodyMode::CloudEventsStructured), &msg(payload));
        assert_eq!(get(&p, "Content-Type"), [STRUCTURED]);
        let text = String::from_utf8(p.body.clone()).unwrap();
        assert!(
            text.ends_with(&format!(",\"data\":{}}}", String::from_utf8_lossy(payload))),
            "{text}"
        );
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["specversion"], "1.0");
        assert_eq!(doc["id"], "ev1");
        assert_eq!(doc["source"], "/sluice/local/a/b");
        assert_eq!(doc["datacontenttype"], "application/json");
        assert_eq!(doc["partitionkey"], "k-1");
        assert!(doc.get("data_base64").is_none());
        let mut m = msg(&[0, 1, 2]);
        m.headers.clear();
        let p = request(&config(BodyMode::CloudEventsStructured), &m);
        let doc: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(doc["data_base64"], "AAEC");
        assert!(doc.get("datacontenttype").is_none() && doc.get("data").is_none());
        assert_eq!(doc["source"], "/sluice");
    }

    #[test]
    fn ce_values_are_percent_encoded() {
        assert_eq!(ce_value("a b\"%é"), "a%20b%22%25%C3%A9");
        assert_eq!(ce_attribute("cloudEvents:type").as_deref(), Some("type"));
        assert_eq!(ce_attribute("ce_bad-name"), None);
        assert_eq!(ce_attribute("cert"), None);
    }
}
