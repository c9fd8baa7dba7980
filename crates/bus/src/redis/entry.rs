//! Stream entries and Sluice messages, both ways.
//!
//! An entry is an ordered list of field/value pairs (names may repeat). Reading: the payload
//! field (the connection's `payload_field`, else the first of `payload`, `data`, `body` the
//! entry has) becomes the payload and every other field a header, in order; the properties
//! name the field and its place so a replay restores the entry as it was. An entry with no
//! such field becomes one JSON object `{field: value}` (a value that is not UTF-8 is written
//! `{"base64": "..."}`; repeated names make it an array of `[field, value]` pairs instead),
//! with no headers. Writing reverses both.

use base64::Engine;
use redis::Value;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use sluice_model::{Header, Message, Outgoing};

/// The fields tried, in order, when the connection names no payload field.
pub(crate) const PAYLOAD_FIELDS: [&str; 3] = ["payload", "data", "body"];

/// A stream entry id `MS-SEQ`.
pub(crate) type Id = (u64, u64);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub id: Id,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) fn id_text(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

pub(crate) fn parse_id(s: &[u8]) -> Option<Id> {
    let s = std::str::from_utf8(s).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The id just before `id`, for reads that start after a position (XREAD is exclusive).
pub(crate) fn before(id: Id) -> Id {
    match id {
        (0, 0) => (0, 0),
        (ms, 0) => (ms - 1, u64::MAX),
        (ms, seq) => (ms, seq - 1),
    }
}

pub(crate) fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes().to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

pub(crate) fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).to_string())
}

/// Entries of an XRANGE / XREVRANGE reply (`[[id, [field, value, ...]], ...]`).
pub(crate) fn parse_entries(v: &Value) -> Result<Vec<Entry>, String> {
    let items = match v {
        Value::Array(a) => a,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(format!("unexpected stream reply {other:?}")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(format!("unexpected stream entry {item:?}"));
        };
        let id = pair
            .first()
            .and_then(bytes)
            .and_then(|b| parse_id(&b))
            .ok_or_else(|| format!("unexpected stream entry id in {item:?}"))?;
        let mut fields = Vec::new();
        match pair.get(1) {
            Some(Value::Array(kv)) => {
                for chunk in kv.chunks(2) {
                    if let [k, v] = chunk {
                        fields.push((bytes(k).unwrap_or_default(), bytes(v).unwrap_or_default()));
                    }
                }
            }
            Some(Value::Map(kv)) => {
                for (k, v) in kv {
                    fields.push((bytes(k).unwrap_or_default(), bytes(v).unwrap_or_default()));
                }
            }
            // A deleted entry still listed (XAUTOCLAIM, XPENDING ranges): no fields.
            _ => {}
        }
        out.push(Entry { id, fields });
    }
    Ok(out)
}

/// Per stream, its entries, from an XREAD reply (`[[key, entries], ...]`, or nil).
pub(crate) fn parse_xread(v: &Value) -> Result<Vec<(String, Vec<Entry>)>, String> {
    let streams: Vec<(Value, Value)> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .filter_map(|s| match s {
                Value::Array(p) if p.len() == 2 => Some((p[0].clone(), p[1].clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m.clone(),
        other => return Err(format!("unexpected XREAD reply {other:?}")),
    };
    streams
        .iter()
        .map(|(k, e)| Ok((text(k).unwrap_or_default(), parse_entries(e)?)))
        .collect()
}

fn json_value(v: &[u8]) -> Json {
    match std::str::from_utf8(v) {
        Ok(s) => json!(s),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(v) }),
    }
}

fn from_json_value(v: &Json) -> Option<Vec<u8>> {
    match v {
        Json::String(s) => Some(s.as_bytes().to_vec()),
        Json::Object(o) if o.len() == 1 => base64::engine::general_purpose::STANDARD
            .decode(o.get("base64")?.as_str()?)
            .ok(),
        // A value edited into a number or a boolean: its JSON text.
        Json::Number(_) | Json::Bool(_) => Some(v.to_string().into_bytes()),
        Json::Null => Some(Vec::new()),
        _ => None,
    }
}

/// An entry as a message of `connection`'s stream `stream`; its id is its position.
pub(crate) fn to_message(stream: &str, e: &Entry, payload_field: Option<&str>) -> Message {
    let found = match payload_field {
        Some(f) => e.fields.iter().position(|(k, _)| k == f.as_bytes()),
        None => PAYLOAD_FIELDS
            .iter()
            .find_map(|f| e.fields.iter().position(|(k, _)| k == f.as_bytes())),
    };
    let mut props = Map::new();
    props.insert("stream".into(), json!(stream));
    props.insert("id".into(), json!(id_text(e.id)));
    let (payload, headers) = match found {
        Some(i) => {
            props.insert(
                "payload_field".into(),
                json!(String::from_utf8_lossy(&e.fields[i].0)),
            );
            if i > 0 {
                props.insert("payload_index".into(), json!(i));
            }
            let headers = e
                .fields
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (k, v))| Header {
                    key: String::from_utf8_lossy(k).to_string(),
                    value: Some(v.clone()),
                })
                .collect();
            (e.fields[i].1.clone(), headers)
        }
        None => {
            let mut names: Vec<&[u8]> = e.fields.iter().map(|(k, _)| k.as_slice()).collect();
            names.sort();
            let repeated = names.windows(2).any(|w| w[0] == w[1]);
            let whole = if repeated {
                props.insert("entry".into(), json!("pairs"));
                Json::Array(
                    e.fields
                        .iter()
                        .map(|(k, v)| json!([String::from_utf8_lossy(k), json_value(v)]))
                        .collect(),
                )
            } else {
                props.insert("entry".into(), json!("json"));
                Json::Object(
                    e.fields
                        .iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k).to_string(), json_value(v)))
                        .collect(),
                )
            };
            (whole.to_string().into_bytes(), Vec::new())
        }
    };
    Message {
        id: None,
        source: stream.to_string(),
        partition: None,
        offset: Some(e.id.0 as i64),
        sub_offset: Some(e.id.1 as i64),
        key: None,
        headers,
        timestamp_us: Some((e.id.0 as i64).saturating_mul(1000)),
        payload,
        properties: Some(Json::Object(props).to_string()),
    }
}

/// What the properties of a message read from a Redis stream say of its entry. Parsed into
/// these fields only (a JSON map of the whole object showed in replay profiles); each is kept
/// as JSON so a field of an unexpected type is ignored alone, as a map lookup would.
#[derive(Default, serde::Deserialize)]
pub(crate) struct StreamProps {
    /// Whether the object names a stream at all (`null` included, as `contains_key` says).
    #[serde(default, deserialize_with = "present")]
    stream: bool,
    id: Option<Json>,
    entry: Option<Json>,
    payload_field: Option<Json>,
    payload_index: Option<Json>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

impl StreamProps {
    fn text(v: &Option<Json>) -> Option<&str> {
        v.as_ref()?.as_str()
    }
}

/// The properties of a message read from a Redis stream, when it is one.
pub(crate) fn stream_properties(msg: &Outgoing) -> Option<StreamProps> {
    let text = msg.properties.as_deref()?;
    // Only an object has keys (a struct would also be filled from an array).
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let p: StreamProps = serde_json::from_str(text)
        .or_else(|_| {
            // A key twice is an error to a struct but the last value to a JSON object.
            serde_json::from_str::<Json>(text).and_then(serde_json::from_value)
        })
        .ok()?;
    p.stream.then_some(p)
}

/// The original entry id a message read from a stream had.
pub(crate) fn original_id(msg: &Outgoing) -> Option<Id> {
    parse_id(StreamProps::text(&stream_properties(msg)?.id)?.as_bytes())
}

/// The entry fields for a message: a whole-entry JSON payload back into its fields, else the
/// payload field at its place among the headers. `payload_field` is the connection's.
pub(crate) fn to_fields(msg: &Outgoing, payload_field: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let props = stream_properties(msg).unwrap_or_default();
    let headers = msg.headers.iter().map(|h| {
        (
            h.key.as_bytes().to_vec(),
            h.value.clone().unwrap_or_default(),
        )
    });
    let restored = match StreamProps::text(&props.entry) {
        Some("json") => serde_json::from_slice::<Json>(&msg.payload)
            .ok()
            .and_then(|j| match j {
                Json::Object(o) => o
                    .iter()
                    .map(|(k, v)| Some((k.as_bytes().to_vec(), from_json_value(v)?)))
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            }),
        Some("pairs") => serde_json::from_slice::<Json>(&msg.payload)
            .ok()
            .and_then(|j| match j {
                Json::Array(a) => a
                    .iter()
                    .map(|p| {
                        let k = p.get(0)?.as_str()?;
                        Some((k.as_bytes().to_vec(), from_json_value(p.get(1)?)?))
                    })
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            }),
        _ => None,
    };
    // An entry restored needs at least one field (XADD takes none); an edited payload that is
    // no longer an object of fields is sent as a payload field.
    if let Some(mut fields) = restored.filter(|f| !f.is_empty()) {
        fields.extend(headers);
        return fields;
    }
    let name = StreamProps::text(&props.payload_field)
        .or(payload_field)
        .unwrap_or(PAYLOAD_FIELDS[0]);
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = headers.collect();
    let at = props
        .payload_index
        .as_ref()
        .and_then(|i| i.as_u64())
        .unwrap_or(0)
        .min(fields.len() as u64) as usize;
    fields.insert(at, (name.as_bytes().to_vec(), msg.payload.clone()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `StreamProps` parses five fields only: each must read as a lookup in the whole JSON
    /// object would, including fields of an unexpected type and other buses' properties.
    #[test]
    fn stream_properties_read_as_the_whole_json_says() {
        let general = |p: &str| -> Option<[Option<String>; 4]> {
            let v: Json = serde_json::from_str(p).ok()?;
            let o = v.as_object()?;
            o.contains_key("stream").then(|| {
                let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_string);
                [
                    text("id"),
                    text("entry"),
                    text("payload_field"),
                    o.get("payload_index")
                        .and_then(|i| i.as_u64())
                        .map(|i| i.to_string()),
                ]
            })
        };
        for p in [
            r#"{"stream":"s","id":"1700-3","payload_field":"data","payload_index":2}"#,
            r#"{"stream":"s","id":"1700-3","entry":"json"}"#,
            r#"{"stream":"ORDERS","subject":"orders.eu","seq":4}"#,
            r#"{"subject":"no stream here"}"#,
            r#"{"stream":"s","id":17,"payload_field":["x"],"payload_index":"2"}"#,
            r#"{"stream":null}"#,
            r#"[1,2]"#,
            r#"[0,"1700-3",null,null,null]"#,
            r#"{"stream":"s","id":"1-1","id":"2-2"}"#,
            "not json",
        ] {
            let m = Outgoing {
                target: "t".into(),
                partition: None,
                key: None,
                headers: Vec::new(),
                timestamp_us: None,
                payload: Vec::new(),
                properties: Some(p.into()),
                routing_key: None,
                event_id: "e".into(),
            };
            let typed = stream_properties(&m).map(|sp| {
                [
                    StreamProps::text(&sp.id).map(str::to_string),
                    StreamProps::text(&sp.entry).map(str::to_string),
                    StreamProps::text(&sp.payload_field).map(str::to_string),
                    sp.payload_index
                        .as_ref()
                        .and_then(|i| i.as_u64())
                        .map(|i| i.to_string()),
                ]
            });
            assert_eq!(typed, general(p), "{p}");
        }
    }

    fn entry(fields: &[(&str, &[u8])]) -> Entry {
        Entry {
            id: (1700, 3),
            fields: fields
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
                .collect(),
        }
    }

    fn outgoing(m: &Message) -> Outgoing {
        Outgoing {
            target: "t".into(),
            partition: None,
            key: None,
            headers: m.headers.clone(),
            timestamp_us: m.timestamp_us,
            payload: m.payload.clone(),
            properties: m.properties.clone(),
            routing_key: None,
            event_id: "e".into(),
        }
    }

    #[test]
    fn the_payload_field_and_headers_round_trip_in_order() {
        let e = entry(&[
            ("type", b"order"),
            ("data", b"{\"n\":1}"),
            ("trace", b"\xff"),
        ]);
        let m = to_message("s", &e, None);
        assert_eq!(m.payload, b"{\"n\":1}");
        assert_eq!(
            (m.offset, m.sub_offset, m.id.as_deref()),
            (Some(1700), Some(3), None)
        );
        assert_eq!(m.timestamp_us, Some(1_700_000));
        let keys: Vec<&str> = m.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["type", "trace"]);
        let p: Json = serde_json::from_str(m.properties.as_deref().unwrap()).unwrap();
        assert_eq!(
            p,
            json!({"stream": "s", "id": "1700-3", "payload_field": "data", "payload_index": 1})
        );
        assert_eq!(to_fields(&outgoing(&m), None), e.fields);
        // A named field wins over the defaults.
        let m = to_message("s", &e, Some("type"));
        assert_eq!(m.payload, b"order");
    }

    #[test]
    fn an_entry_without_a_payload_field_is_one_json_object() {
        let e = entry(&[("a", b"1"), ("bin", b"\x00\xff")]);
        let m = to_message("s", &e, None);
        let j: Json = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(j, json!({"a": "1", "bin": {"base64": "AP8="}}));
        assert!(m.headers.is_empty());
        assert_eq!(to_fields(&outgoing(&m), None), e.fields);
        let e = entry(&[("a", b"1"), ("a", b"2")]);
        let m = to_message("s", &e, None);
        assert_eq!(m.payload, br#"[["a","1"],["a","2"]]"#);
        assert_eq!(to_fields(&outgoing(&m), None), e.fields);
    }

    #[test]
    fn messages_of_other_buses_get_a_payload_field_first() {
        let mut o = outgoing(&to_message("s", &entry(&[("payload", b"x")]), None));
        o.properties = Some(r#"{"exchange":"x"}"#.into());
        o.headers = vec![Header {
            key: "h".into(),
            value: None,
        }];
        assert_eq!(
            to_fields(&o, Some("body")),
            vec![
                (b"body".to_vec(), b"x".to_vec()),
                (b"h".to_vec(), Vec::new())
            ]
        );
        assert_eq!(to_fields(&o, None)[0].0, b"payload");
    }

    #[test]
    fn ids_parse_and_step_back() {
        assert_eq!(parse_id(b"1700-3"), Some((1700, 3)));
        assert_eq!(parse_id(b"1700"), None);
        assert_eq!(before((5, 0)), (4, u64::MAX));
        assert_eq!(before((5, 2)), (5, 1));
        let v = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"1-1".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"k".to_vec()),
                Value::BulkString(b"v".to_vec()),
            ]),
        ])]);
        assert_eq!(
            parse_entries(&v).unwrap(),
            vec![Entry {
                id: (1, 1),
                fields: vec![(b"k".to_vec(), b"v".to_vec())]
            }]
        );
    }
}
