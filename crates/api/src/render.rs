//! The JSON shape of an event, shared by `search --format jsonl|json`, `tail --format jsonl`,
//! exports and the UI: `decoded` is an object, bytes are base64 with a `_text` twin when UTF-8.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sluice_model::{format_us, Event, Header};
use ts_rs::TS;

/// Header values as text when UTF-8, `{"base64": ...}` otherwise, `null` when absent; a key
/// that repeats maps to an array of its values, in order.
pub fn headers_json(headers: &[Header]) -> Value {
    let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
    for h in headers {
        let v = match &h.value {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_string()),
                Err(_) => json!({ "base64": B64.encode(b) }),
            },
        };
        match grouped.iter_mut().find(|(k, _)| *k == h.key) {
            Some((_, values)) => values.push(v),
            None => grouped.push((h.key.clone(), vec![v])),
        }
    }
    let out: Map<String, Value> = grouped
        .into_iter()
        .map(|(k, mut values)| {
            (
                k,
                if values.len() == 1 {
                    values.remove(0)
                } else {
                    Value::Array(values)
                },
            )
        })
        .collect();
    Value::Object(out)
}

fn parse_json(s: &Option<String>) -> Value {
    s.as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null)
}

/// One event as the CLI's JSON formats and the UI see it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct EventView {
    pub id: String,
    pub bus: String,
    pub connection: String,
    pub source: String,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// The second number of a two-part position: a Redis entry id is `offset-sub_offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sub_offset: Option<i64>,
    pub timestamp: Option<String>,
    pub timestamp_us: Option<i64>,
    pub captured_at: String,
    pub key: Option<String>,
    pub key_text: Option<String>,
    pub key_decoded: Value,
    pub headers: Value,
    pub schema: Option<String>,
    pub encoding: String,
    pub decoded: Value,
    pub decode_error: Option<String>,
    pub payload: String,
    pub payload_text: Option<String>,
    pub size: i64,
    pub truncated: bool,
    pub properties: Value,
}

/// Bytes as text when they are valid UTF-8.
pub(crate) fn utf8(b: &[u8]) -> Option<String> {
    std::str::from_utf8(b).ok().map(str::to_string)
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            id: e.id.clone(),
            bus: e.bus.as_str().to_string(),
            connection: e.connection.clone(),
            source: e.source.clone(),
            partition: e.partition,
            offset: e.offset,
            sub_offset: e.sub_offset,
            timestamp: e.timestamp_us.map(format_us),
            timestamp_us: e.timestamp_us,
            captured_at: format_us(e.captured_at_us),
            key: e.key.as_ref().map(|k| B64.encode(k)),
            key_text: e.key.as_deref().and_then(utf8),
            key_decoded: parse_json(&e.key_decoded),
            headers: headers_json(&e.headers),
            schema: e.schema.clone(),
            encoding: e.encoding.as_str().to_string(),
            decoded: parse_json(&e.decoded),
            decode_error: e.decode_error.clone(),
            payload: B64.encode(&e.payload),
            payload_text: utf8(&e.payload),
            size: e.size,
            truncated: e.truncated,
            properties: parse_json(&e.properties),
        }
    }
}

pub fn event_json(e: &Event) -> Value {
    serde_json::to_value(EventView::from(e)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_an_object() {
        let h = |k: &str, v: Option<&[u8]>| Header {
            key: k.into(),
            value: v.map(<[u8]>::to_vec),
        };
        let v = headers_json(&[
            h("a", Some(b"1")),
            h("bin", Some(&[0xff])),
            h("n", None),
            h("d", Some(b"x")),
            h("d", Some(b"y")),
            h("d", Some(b"z")),
        ]);
        assert_eq!(
            v,
            json!({"a": "1", "bin": {"base64": "/w=="}, "n": null, "d": ["x", "y", "z"]})
        );
    }
}
