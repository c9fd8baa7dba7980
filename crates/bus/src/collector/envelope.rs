//! A request's body and headers as events, in each way a client may send them:
//!
//! - a body of any type: one event, the body byte for byte, the request's headers kept;
//! - a CloudEvent 1.0 in binary mode (`ce-specversion` and the other `ce-` headers): the body
//!   is the data, the `Content-Type` its datacontenttype;
//! - structured mode (`application/cloudevents+json`) and batched mode
//!   (`application/cloudevents-batch+json`, an array): attributes from the JSON, `data` kept
//!   as its JSON text (a string with a non-JSON datacontenttype as the string's bytes),
//!   `data_base64` decoded;
//! - newline-delimited JSON (`application/x-ndjson`, `application/jsonl`, ...): one event per
//!   non-empty line, a line that is a structured CloudEvent read as one.
//!
//! Every CloudEvent is stored the way binary mode carries it, whatever mode it came in:
//! attributes as `ce-` headers (`ce-id`, `ce-source`, `ce-type`, searchable as
//! `header.ce-type`), datacontenttype as `content-type`. So one event sent in two modes is
//! stored the same, and replaying it to any bus or to HTTP carries its attributes. Its id and
//! source make the event id, so a client that sends it again does not store it twice; an
//! `Idempotency-Key` header does the same for other bodies.
//!
//! Headers Sluice's own HTTP replay writes for what HTTP cannot carry (`NAME-b64`,
//! `sluice-headers`, `sluice-key`, `sluice-timestamp`) are read back into the header, key and
//! time they stand for, so an event replayed from one Sluice to another's collector arrives as
//! it was. Credentials (`Authorization`, `Cookie`) and HTTP's own framing are never kept.

use super::intake::Incoming;
use crate::fresh_ids::FreshIds;
use base64::Engine;
use serde_json::value::RawValue;
use sluice_model::{Header, Message};
use std::collections::BTreeMap;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Request headers that are the connection's, not the event's: its credentials, and (with
/// HTTP's framing, `crate::http::is_framing`) what only the transport needs.
const NOT_KEPT: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "idempotency-key",
];

const REQUIRED: [&str; 4] = ["specversion", "id", "source", "type"];

/// What one request's events have in common.
pub(crate) struct Request<'a> {
    pub connection: &'a str,
    /// `{source}` of the path.
    pub source: &'a str,
    /// Header names lowercase, in the order they came.
    pub headers: Vec<(String, Vec<u8>)>,
    pub received_us: i64,
}

/// An event that could not be taken, and why (said so a sender can fix it).
pub(crate) type Refusal = String;

/// Why a whole body is refused.
#[derive(Debug, PartialEq)]
pub(crate) enum BodyError {
    /// It cannot be read as its type says (400).
    Bad(String),
    /// It holds more events than may be taken at once (413); counted before any is built.
    TooMany { most: usize },
}

impl From<String> for BodyError {
    fn from(s: String) -> Self {
        BodyError::Bad(s)
    }
}

/// A JSON array read as borrowed elements, refused past `most` without reading further.
struct Capped<'a> {
    most: usize,
    items: Vec<&'a RawValue>,
}

const TOO_MANY: &str = "sluice: too many events";

impl<'de> serde::de::DeserializeSeed<'de> for &mut Capped<'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut Capped<'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<&'de RawValue>()? {
            if self.items.len() == self.most {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            self.items.push(e);
        }
        Ok(())
    }
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    fn content_type(&self) -> String {
        self.header("content-type")
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// The client's own `Idempotency-Key` (not the one Sluice's replay sets to its replay id).
    fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
            .filter(|k| !k.is_empty() && self.header("sluice-replay-id") != Some(*k))
    }

    /// The event id for a client's own id: the same id from the same source is one event.
    /// `line` is an NDJSON line's number under an `Idempotency-Key`; the key is escaped so
    /// that no other id (`k/1` given as a key) can be written the same.
    fn stable_id(&self, source: &str, id: &str, line: Option<usize>) -> String {
        client_id(self.connection, source, id, line)
    }

    /// The request's headers as the event keeps them, with what Sluice's replay encoded read
    /// back; `skip` leaves more out (a CloudEvent's envelope type).
    fn kept_headers(&self, skip: &dyn Fn(&str) -> bool) -> Kept {
        let mut k = Kept::default();
        let replay_id = self.header("sluice-replay-id").map(str::to_string);
        for (name, value) in &self.headers {
            if NOT_KEPT.contains(&name.as_str()) || crate::http::is_framing(name) || skip(name) {
                // A client's own Idempotency-Key is the event's; the one Sluice's replay adds
                // (its replay id, already a header) is not.
                if name == "idempotency-key"
                    && replay_id.as_deref().map(str::as_bytes) != Some(value.as_slice())
                {
                    k.headers.push(header(name, value.clone()));
                }
                continue;
            }
            match name.as_str() {
                "sluice-key" => k.key = Some(value.clone()),
                "sluice-key-b64" => match B64.decode(value) {
                    Ok(v) => k.key = Some(v),
                    Err(_) => k.headers.push(header(name, value.clone())),
                },
                "sluice-timestamp" => match std::str::from_utf8(value).ok().and_then(rfc3339_us) {
                    Some(t) => k.timestamp_us = Some(t),
                    None => k.headers.push(header(name, value.clone())),
                },
                "sluice-headers" => match uncarried(value) {
                    Some(hs) => k.headers.extend(hs),
                    None => k.headers.push(header(name, value.clone())),
                },
                n if n.ends_with("-b64") && n.len() > 4 => match B64.decode(value) {
                    Ok(v) => k.headers.push(header(&n[..n.len() - 4], v)),
                    Err(_) => k.headers.push(header(n, value.clone())),
                },
                n => k.headers.push(header(n, value.clone())),
            }
        }
        k
    }

    fn message(&self, id: String, kept: Kept, payload: Vec<u8>) -> Message {
        Message {
            id: Some(id),
            source: self.source.to_string(),
            partition: None,
            offset: None,
            sub_offset: None,
            key: kept.key,
            headers: kept.headers,
            timestamp_us: Some(kept.timestamp_us.unwrap_or(self.received_us)),
            payload,
            properties: None,
        }
    }
}

#[derive(Default)]
struct Kept {
    headers: Vec<Header>,
    key: Option<Vec<u8>>,
    timestamp_us: Option<i64>,
}

fn header(name: &str, value: Vec<u8>) -> Header {
    Header {
        key: name.to_string(),
        value: Some(value),
    }
}

fn rfc3339_us(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// `sluice-headers`: a JSON array of `[name, base64 value]`.
fn uncarried(v: &[u8]) -> Option<Vec<Header>> {
    let pairs: Vec<(String, String)> = serde_json::from_slice(v).ok()?;
    pairs
        .into_iter()
        .map(|(k, v)| Some(header(&k, B64.decode(v).ok()?)))
        .collect()
}

/// The event id of an event that came with an id of the client's own (over HTTP or gRPC
/// alike): `collector:CONN/SOURCE#ID`, with `%`, `#` in the source and `%`, `/` in the id
/// escaped so that two different pairs never read the same, and `/N` for line N of an NDJSON
/// body under that key.
pub(crate) fn client_id(connection: &str, source: &str, id: &str, line: Option<usize>) -> String {
    let source = source.replace('%', "%25").replace('#', "%23");
    let id = id.replace('%', "%25").replace('/', "%2F");
    match line {
        Some(n) => format!("collector:{connection}/{source}#{id}/{n}"),
        None => format!("collector:{connection}/{source}#{id}"),
    }
}

/// How the body is to be read, from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Raw,
    Binary,
    Structured,
    Batch,
    Lines,
}

pub(crate) fn mode(r: &Request<'_>) -> Mode {
    match r.content_type().as_str() {
        "application/cloudevents+json" => Mode::Structured,
        "application/cloudevents-batch+json" => Mode::Batch,
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Mode::Lines,
        _ if r.header("ce-specversion").is_some() => Mode::Binary,
        _ => Mode::Raw,
    }
}

/// The request's events, each taken or refused, at most `most` of them; `Err` refuses the
/// whole body.
pub(crate) fn events(
    r: &Request<'_>,
    body: &[u8],
    ids: &mut FreshIds,
    most: usize,
) -> Result<Vec<Result<Incoming, Refusal>>, BodyError> {
    let fresh = |ids: &mut FreshIds| format!("collector:{}/{}", r.connection, ids.next());
    match mode(r) {
        Mode::Raw => {
            let kept = r.kept_headers(&|_| false);
            let (id, stable_id) = match r.idempotency_key() {
                Some(k) => (r.stable_id(r.source, k, None), true),
                None => (fresh(ids), false),
            };
            Ok(vec![Ok(Incoming {
                msg: r.message(id, kept, body.to_vec()),
                stable_id,
            })])
        }
        Mode::Binary => Ok(vec![binary(r, body)]),
        Mode::Structured => {
            let one: Box<RawValue> =
                serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
            Ok(vec![structured(r, &one)])
        }
        Mode::Batch => {
            let text = std::str::from_utf8(body).map_err(|_| {
                "a CloudEvents batch is JSON, and the body is not UTF-8".to_string()
            })?;
            let mut capped = Capped {
                most,
                items: Vec::new(),
            };
            let mut de = serde_json::Deserializer::from_str(text);
            serde::de::DeserializeSeed::deserialize(&mut capped, &mut de)
                .and_then(|()| de.end())
                .map_err(|e| {
                    if e.to_string().starts_with(TOO_MANY) {
                        BodyError::TooMany { most }
                    } else {
                        BodyError::Bad(format!(
                            "a CloudEvents batch is a JSON array of events; the body is not: {e}"
                        ))
                    }
                })?;
            Ok(capped.items.iter().map(|e| structured(r, e)).collect())
        }
        Mode::Lines => {
            let lines = || {
                body.split(|b| *b == b'\n')
                    .enumerate()
                    .map(|(n, l)| (n, l.strip_suffix(b"\r").unwrap_or(l)))
                    .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            };
            if lines().count() > most {
                return Err(BodyError::TooMany { most });
            }
            Ok(lines().map(|(n, l)| line_event(r, l, n + 1, ids)).collect())
        }
    }
}

fn line_event(
    r: &Request<'_>,
    line: &[u8],
    n: usize,
    ids: &mut FreshIds,
) -> Result<Incoming, Refusal> {
    let raw: Box<RawValue> =
        serde_json::from_slice(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
    #[derive(serde::Deserialize)]
    struct Probe {
        specversion: Option<serde::de::IgnoredAny>,
    }
    let is_event = raw.get().starts_with('{')
        && serde_json::from_str::<Probe>(raw.get()).is_ok_and(|p| p.specversion.is_some());
    if is_event {
        return structured(r, &raw).map_err(|e| format!("line {n}: {e}"));
    }
    let mut kept = r.kept_headers(&|h| h == "content-type");
    kept.headers
        .push(header("content-type", b"application/json".to_vec()));
    // With an Idempotency-Key, each line's id is the key and its line number, so a client
    // sending the same body again stores each line once.
    let (id, stable_id) = match r.idempotency_key() {
        Some(k) => (r.stable_id(r.source, k, Some(n)), true),
        None => (format!("collector:{}/{}", r.connection, ids.next()), false),
    };
    Ok(Incoming {
        msg: r.message(id, kept, line.to_vec()),
        stable_id,
    })
}

/// A `ce-` header value, percent-decoded as the HTTP binding says.
fn ce_header_value(v: &[u8]) -> Result<String, ()> {
    percent_encoding::percent_decode(v)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ())
}

fn binary(r: &Request<'_>, body: &[u8]) -> Result<Incoming, Refusal> {
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &r.headers {
        if let Some(a) = name.strip_prefix("ce-") {
            let v = ce_header_value(value)
                .map_err(|()| format!("header ce-{a} is not UTF-8 once percent-decoded"))?;
            attrs.insert(a.to_string(), v);
        }
    }
    check_attributes(&attrs)?;
    let mut kept = r.kept_headers(&|h| h.starts_with("ce-"));
    let ts = kept.timestamp_us;
    let stored = ce_headers(&attrs);
    kept.headers.splice(0..0, stored);
    kept.timestamp_us = attrs.get("time").and_then(|t| rfc3339_us(t)).or(ts);
    let id = r.stable_id(&attrs["source"], &attrs["id"], None);
    Ok(Incoming {
        msg: r.message(id, kept, body.to_vec()),
        stable_id: true,
    })
}

/// The attributes every CloudEvent has, and a `time` that is a time.
fn check_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|a| attrs.get(*a).is_none_or(|v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "not a CloudEvent: required attribute{} {} missing",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    if attrs["specversion"] != "1.0" {
        return Err(format!(
            "specversion {:?}: only CloudEvents 1.0 is read",
            attrs["specversion"]
        ));
    }
    if let Some(t) = attrs.get("time") {
        if rfc3339_us(t).is_none() {
            return Err(format!("attribute time {t:?} is not an RFC 3339 time"));
        }
    }
    Ok(())
}

/// Attributes as the event keeps them: `ce-NAME` headers, the required ones first, and
/// datacontenttype as `content-type`.
fn ce_headers(attrs: &BTreeMap<String, String>) -> Vec<Header> {
    let mut out: Vec<Header> = REQUIRED
        .iter()
        .map(|a| header(&format!("ce-{a}"), attrs[*a].clone().into_bytes()))
        .collect();
    for (a, v) in attrs {
        if REQUIRED.contains(&a.as_str()) || a == "datacontenttype" {
            continue;
        }
        out.push(header(&format!("ce-{a}"), v.clone().into_bytes()));
    }
    if let Some(c) = attrs.get("datacontenttype") {
        out.push(header("content-type", c.clone().into_bytes()));
    }
    out
}

fn is_json_type(content_type: Option<&String>) -> bool {
    content_type.is_none_or(|c| {
        let c = c.to_ascii_lowercase();
        let c = c.split(';').next().unwrap_or("").trim();
        c == "application/json" || c.ends_with("+json") || c == "text/json"
    })
}

fn structured(r: &Request<'_>, event: &RawValue) -> Result<Incoming, Refusal> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(event.get())
        .map_err(|_| "a structured CloudEvent is a JSON object".to_string())?;
    let mut attrs = BTreeMap::new();
    let mut data = None;
    let mut data_base64 = None;
    for (name, value) in fields {
        match name.as_str() {
            "data" => data = Some(value),
            "data_base64" => data_base64 = Some(value),
            _ => {
                // Attribute values are strings, or for extensions also numbers and booleans,
                // which the binary mode writes as their text.
                let v: serde_json::Value = serde_json::from_str(value.get())
                    .map_err(|e| format!("attribute {name}: {e}"))?;
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Null => continue,
                    _ => {
                        return Err(format!(
                            "attribute {name} is not a string, number or boolean"
                        ))
                    }
                };
                attrs.insert(name, text);
            }
        }
    }
    check_attributes(&attrs)?;
    let payload = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err("an event has data or data_base64, not both".into());
        }
        (None, Some(b)) => {
            let s: String = serde_json::from_str(b.get())
                .map_err(|_| "data_base64 is not a string".to_string())?;
            B64.decode(s.trim())
                .map_err(|e| format!("data_base64 is not base64: {e}"))?
        }
        (Some(d), None) => {
            if !is_json_type(attrs.get("datacontenttype")) && d.get().starts_with('"') {
                serde_json::from_str::<String>(d.get())
                    .map_err(|e| format!("data: {e}"))?
                    .into_bytes()
            } else {
                d.get().as_bytes().to_vec()
            }
        }
        (None, None) => Vec::new(),
    };
    // The envelope's own content type is not the data's.
    let mut kept = r.kept_headers(&|h| h == "content-type" || h.starts_with("ce-"));
    let ts = kept.timestamp_us;
    kept.headers.splice(0..0, ce_headers(&attrs));
    kept.timestamp_us = attrs.get("time").and_then(|t| rfc3339_us(t)).or(ts);
    Ok(Incoming {
        msg: r.message(
            r.stable_id(&attrs["source"], &attrs["id"], None),
            kept,
            payload,
        ),
        stable_id: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<'static> {
        Request {
            connection: "in",
            source: "orders",
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            received_us: 1_000_000,
        }
    }

    fn one(r: &Request<'_>, body: &[u8]) -> Result<Message, Refusal> {
        let mut out =
            events(r, body, &mut FreshIds::new(), 10_000).map_err(|e| format!("{e:?}"))?;
        assert_eq!(out.len(), 1);
        out.remove(0).map(|i| i.msg)
    }

    fn headers(m: &Message) -> Vec<(String, String)> {
        m.headers
            .iter()
            .map(|h| {
                (
                    h.key.clone(),
                    String::from_utf8_lossy(h.value.as_deref().unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_raw_body_is_kept_byte_for_byte_without_credentials() {
        let r = request(&[
            ("content-type", "application/octet-stream"),
            ("authorization", "Bearer s3cret"),
            ("cookie", "a=b"),
            ("x-trace", "t1"),
            ("host", "h"),
        ]);
        let m = one(&r, b"\x00\xffbytes").unwrap();
        assert_eq!(m.payload, b"\x00\xffbytes");
        assert_eq!(
            headers(&m),
            [
                (
                    "content-type".to_string(),
                    "application/octet-stream".to_string()
                ),
                ("x-trace".to_string(), "t1".to_string())
            ]
        );
        assert_eq!(m.timestamp_us, Some(1_000_000));
        assert!(m.id.unwrap().starts_with("collector:in/"));

        let r = request(&[("idempotency-key", "k-1")]);
        let a = one(&r, b"x").unwrap();
        let b = one(&r, b"x").unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.as_deref(), Some("collector:in/orders#k-1"));
        assert_eq!(
            headers(&a),
            [("idempotency-key".to_string(), "k-1".to_string())]
        );
    }

    #[test]
    fn what_sluices_replay_encoded_is_read_back() {
        let r = request(&[
            ("x-bin-b64", &B64.encode(b"\x01\x02")),
            ("sluice-key", "k1"),
            ("sluice-timestamp", "2026-01-02T03:04:05.000006Z"),
            (
                "sluice-headers",
                &format!("[[\"Bad Name\",\"{}\"]]", B64.encode("v")),
            ),
            ("sluice-replay-id", "lake1-7"),
            ("idempotency-key", "lake1-7"),
        ]);
        let m = one(&r, b"{}").unwrap();
        assert_eq!(m.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(m.timestamp_us, Some(1_767_323_045_000_006));
        let h = headers(&m);
        assert!(h.contains(&("x-bin".into(), "\u{1}\u{2}".into())), "{h:?}");
        assert!(h.contains(&("Bad Name".into(), "v".into())), "{h:?}");
        assert!(
            h.contains(&("sluice-replay-id".into(), "lake1-7".into())),
            "{h:?}"
        );
        assert!(!h.iter().any(|(k, _)| k == "idempotency-key"), "{h:?}");
        // The replay's id is no id of the client's: the event gets a fresh one.
        assert!(!m.id.unwrap().contains("lake1-7"));
    }

    #[test]
    fn one_cloudevent_in_binary_and_structured_mode_is_stored_the_same() {
        let r = request(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "e-1"),
            ("ce-source", "/shop"),
            ("ce-type", "order.created"),
            ("ce-time", "2026-01-02T03:04:05Z"),
            ("ce-traceparent", "00-ab%20cd"),
            ("content-type", "application/json"),
            ("user-agent", "curl"),
        ]);
        let bin = one(&r, br#"{"n": 1}"#).unwrap();
        let r = request(&[
            (
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            ),
            ("user-agent", "curl"),
        ]);
        let st = one(
            &r,
            br#"{"specversion":"1.0","id":"e-1","source":"/shop","type":"order.created",
                "time":"2026-01-02T03:04:05Z","traceparent":"00-ab cd",
                "datacontenttype":"application/json","data":{"n": 1}}"#,
        )
        .unwrap();
        assert_eq!(bin.payload, br#"{"n": 1}"#);
        assert_eq!(st.payload, bin.payload);
        assert_eq!(headers(&st), headers(&bin));
        assert_eq!(st.id, bin.id);
        assert_eq!(bin.id.as_deref(), Some("collector:in//shop#e-1"));
        assert_eq!(bin.timestamp_us, Some(1_767_323_045_000_000));
        let h = headers(&bin);
        assert_eq!(h[0], ("ce-specversion".into(), "1.0".into()));
        assert!(h.contains(&("ce-traceparent".into(), "00-ab cd".into())));
        assert!(h.contains(&("user-agent".into(), "curl".into())));
    }

    #[test]
    fn structured_data_modes() {
        let r = request(&[("content-type", "application/cloudevents+json")]);
        let ev = |extra: &str| {
            format!(r#"{{"specversion":"1.0","id":"1","source":"s","type":"t"{extra}}}"#)
        };
        let m = one(&r, ev(r#","data_base64":"AAE=""#).as_bytes()).unwrap();
        assert_eq!(m.payload, [0, 1]);
        let m = one(
            &r,
            ev(r#","datacontenttype":"text/plain","data":"hi\n""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(m.payload, b"hi\n");
        let m = one(&r, ev(r#","data":"hi""#).as_bytes()).unwrap();
        assert_eq!(m.payload, br#""hi""#);
        let m = one(&r, ev("").as_bytes()).unwrap();
        assert!(m.payload.is_empty());
        let e = one(&r, ev(r#","data":1,"data_base64":"AA==""#).as_bytes()).unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let r = request(&[("content-type", "application/cloudevents+json")]);
        let e = one(&r, br#"{"specversion":"1.0","id":"1"}"#).unwrap_err();
        assert!(e.contains("source, type missing"), "{e}");
        let e = match events(&r, b"{nope", &mut FreshIds::new(), 10)
            .err()
            .unwrap()
        {
            BodyError::Bad(e) => e,
            e => panic!("{e:?}"),
        };
        assert!(e.contains("not JSON"), "{e}");
        let e = one(
            &r,
            br#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
        )
        .unwrap_err();
        assert!(e.contains("1.0"), "{e}");
        let e = one(
            &r,
            br#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"soon"}"#,
        )
        .unwrap_err();
        assert!(e.contains("time"), "{e}");
        let r = request(&[("ce-specversion", "1.0"), ("ce-id", "1")]);
        let e = one(&r, b"").unwrap_err();
        assert!(e.contains("source, type"), "{e}");
    }

    #[test]
    fn a_batch_and_lines_report_each_event() {
        let r = request(&[("content-type", "application/cloudevents-batch+json")]);
        let out = events(
            &r,
            br#"[{"specversion":"1.0","id":"1","source":"s","type":"t"},{"id":"2"},
                {"specversion":"1.0","id":"3","source":"s","type":"t","data":[1]}]"#,
            &mut FreshIds::new(),
            10_000,
        )
        .unwrap();
        assert!(out[0].is_ok() && out[2].is_ok());
        assert!(out[1]
            .as_ref()
            .err()
            .unwrap()
            .contains("specversion, source, type"));
        assert!(events(&r, br#"{"not":"an array"}"#, &mut FreshIds::new(), 10).is_err());

        let r = request(&[("content-type", "application/x-ndjson")]);
        let out = events(
            &r,
            b"{\"a\":1}\n\n{bad\r\n{\"specversion\":\"1.0\",\"id\":\"9\",\"source\":\"s\",\"type\":\"t\"}\n",
            &mut FreshIds::new(),
            10_000,
        )
        .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().msg.payload, b"{\"a\":1}");
        assert!(out[1].as_ref().err().unwrap().starts_with("line 3:"));
        let ce = &out[2].as_ref().unwrap();
        assert!(ce.stable_id && ce.msg.id.as_deref() == Some("collector:in/s#9"));

        // More events than may be taken: refused whole, before any is built.
        assert_eq!(
            events(&r, b"1\n2\n3\n", &mut FreshIds::new(), 2).err(),
            Some(BodyError::TooMany { most: 2 })
        );
        let r = request(&[("content-type", "application/cloudevents-batch+json")]);
        assert_eq!(
            events(&r, b"[1,2,3]", &mut FreshIds::new(), 2).err(),
            Some(BodyError::TooMany { most: 2 })
        );
        assert_eq!(
            events(&r, b"[1,2]", &mut FreshIds::new(), 2).unwrap().len(),
            2
        );
        // A key with a slash cannot pose as another key's line.
        assert_ne!(
            client_id("c", "s", "k/1", None),
            client_id("c", "s", "k", Some(1))
        );
    }
}
