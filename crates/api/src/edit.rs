//! Replaying edited events: the user's version of an event's decoded JSON is encoded back with
//! the event's own type and framing. An edit that changes nothing sends the stored bytes, so
//! an untouched event is byte-identical to the original whatever the encoder would produce.

use crate::capture::VALUE_SCHEMA_HEADER;
use crate::error::{ApiError, ErrorCode, Result};
use serde_json::Value;
use sluice_codec::{payload_prefix, unwrap, wrap, Decoder};
use sluice_model::{Encoding, Event};

/// One edited event: its decoded JSON (a string for a text payload) as the user wants it sent.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize, ts_rs::TS)]
pub struct ReplayEdit {
    /// The event's id; none means "the one event the filter matches".
    #[serde(default)]
    pub id: Option<String>,
    #[ts(type = "JsonValue")]
    pub decoded: Value,
}

fn invalid(msg: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, msg)
}

/// Why one entry of an edit file is not an edited event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EntryError {
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("\"id\" must be a string")]
    IdNotAString,
    #[error("neither \"decoded\" nor \"payload_text\" holds a value")]
    NoValue,
}

/// Reads an `--edit` file: events as `sluice search --format jsonl|json` prints them (their
/// `id` and `decoded`, or `payload_text` for text payloads), one per line or as a JSON array,
/// or a bare decoded object for a filter that matches exactly one event.
pub fn parse_edits(name: &str, text: &str) -> Result<Vec<ReplayEdit>> {
    let at = |e: serde_json::Error, line_offset: usize| {
        let (line, column) = (e.line() + line_offset, e.column());
        invalid(format!("{name}:{line}:{column}: {}", strip_position(&e))).in_file(
            name,
            Some(line),
            Some(column),
        )
    };
    let values: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(v) => vec![v],
        // Not one JSON document: JSON lines, each located by its own line number.
        Err(whole) => {
            let lines: Vec<(usize, &str)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .collect();
            // A document spread over lines whose first line is not JSON on its own is one
            // broken document: its own error points at the right place.
            let first_is_json = lines
                .first()
                .is_some_and(|(_, l)| serde_json::from_str::<Value>(l).is_ok());
            if lines.len() < 2 || !first_is_json {
                return Err(at(whole, 0));
            }
            lines
                .into_iter()
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| at(e, i)))
                .collect::<Result<_>>()?
        }
    };
    if values.is_empty() {
        return Err(invalid(format!("{name}: no edited events in it")));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| edit_of(v).map_err(|m| invalid(format!("{name}: entry {}: {m}", i + 1))))
        .collect()
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn edit_of(v: Value) -> std::result::Result<ReplayEdit, EntryError> {
    let Value::Object(mut obj) = v else {
        return Err(EntryError::NotAnObject);
    };
    let is_event = obj.contains_key("decoded") || obj.contains_key("payload_text");
    if !is_event {
        return Ok(ReplayEdit {
            id: None,
            decoded: Value::Object(obj),
        });
    }
    let id = match obj.remove("id") {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        Some(_) => return Err(EntryError::IdNotAString),
    };
    let decoded = match obj.remove("decoded") {
        Some(v) if !v.is_null() => v,
        _ => match obj.remove("payload_text") {
            Some(t @ Value::String(_)) => t,
            _ => return Err(EntryError::NoValue),
        },
    };
    Ok(ReplayEdit { id, decoded })
}

/// The bytes to send for `event` edited to `new`. `decoder` gives the decoder for the event's
/// type and connection; it is asked only when the payload needs re-encoding with a schema.
pub(crate) fn encode(
    event: &Event,
    new: &Value,
    decoder: &mut dyn FnMut(&Event) -> Result<Decoder>,
) -> Result<Vec<u8>> {
    let id = &event.id;
    let stored: Option<Value> = match event.encoding {
        Encoding::Text => event.payload_text.clone().map(Value::String).or_else(|| {
            std::str::from_utf8(&event.payload)
                .ok()
                .map(|s| Value::String(s.into()))
        }),
        _ => event
            .decoded
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
    };
    if stored.as_ref() == Some(new) {
        return Ok(event.payload.clone());
    }
    if event.truncated {
        return Err(invalid(format!(
            "edit for event {id}: its payload was cut at the size cap when captured, so it cannot be re-encoded"
        )));
    }
    let header = event
        .headers
        .iter()
        .find(|h| h.key == VALUE_SCHEMA_HEADER)
        .and_then(|h| h.value.as_deref());
    // JSON framed for a registry (JSON Schema) keeps its frame like the binary formats do.
    let framed_json = event.encoding == Encoding::Json
        && (header.is_some() || payload_prefix(&event.payload).is_some());
    // A compressed or base64 layer: the inside is edited as the event's type (or as JSON or
    // text without one), then wrapped again the same way.
    if let (Some(inner), true) = (
        unwrap(&event.payload),
        matches!(
            event.encoding,
            Encoding::Gzip | Encoding::Zstd | Encoding::Snappy | Encoding::Base64
        ),
    ) {
        let (layer, inside) = inner;
        let body = match (&event.schema, new) {
            (Some(_), _) => decoder(event)?
                .encode(&inside, None, &new.to_string())
                .map_err(|e| invalid(format!("edit for event {id}: {e}")))?,
            (None, Value::String(s)) if layer != Encoding::Base64 => s.clone().into_bytes(),
            (None, Value::Object(_) | Value::Array(_)) => serde_json::to_vec(new).unwrap_or_default(),
            (None, _) => {
                return Err(invalid(format!(
                    "edit for event {id}: a {} payload without a type is edited as a JSON object, array or (compressed text) string",
                    layer.as_str()
                )))
            }
        };
        return wrap(layer, &body).ok_or_else(|| {
            invalid(format!(
                "edit for event {id}: cannot wrap it in {}",
                layer.as_str()
            ))
        });
    }
    match event.encoding {
        Encoding::Protobuf | Encoding::Avro => {}
        Encoding::Json if framed_json => {}
        Encoding::Json => return Ok(serde_json::to_vec(new).unwrap_or_default()),
        Encoding::Text => {
            return match new {
                Value::String(s) => Ok(s.clone().into_bytes()),
                _ => Err(invalid(format!(
                    "edit for event {id}: its payload is text, so the edit must be a JSON string"
                ))),
            }
        }
        Encoding::Binary => {
            return Err(invalid(format!(
                "edit for event {id}: a binary payload has no decoded form to edit"
            )))
        }
        Encoding::Undecoded => {
            return Err(invalid(format!(
                "edit for event {id}: it was captured with --no-decode; decode it first (`sluice schema redecode CONNECTION TOPIC`)"
            )))
        }
        other => {
            return Err(invalid(format!(
                "edit for event {id}: {} payloads cannot be re-encoded yet (protobuf, Avro, JSON, text and compressed or base64 ones of these can)",
                other.as_str()
            )))
        }
    }
    decoder(event)?
        .encode(&event.payload, header, &new.to_string())
        .map_err(|e| invalid(format!("edit for event {id}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::Bus;

    fn event(encoding: Encoding, payload: &[u8], decoded: Option<&str>) -> Event {
        Event {
            id: "kafka:c/t/0/1".into(),
            bus: Bus::Kafka,
            connection: "c".into(),
            source: "t".into(),
            partition: Some(0),
            offset: Some(1),
            sub_offset: None,
            key: None,
            key_decoded: None,
            headers: vec![],
            timestamp_us: None,
            captured_at_us: 0,
            payload: payload.to_vec(),
            size: payload.len() as i64,
            truncated: false,
            schema: Some("M".into()),
            encoding,
            decoded: decoded.map(str::to_string),
            payload_text: None,
            decode_error: None,
            properties: None,
        }
    }

    fn schemas(_: &Event) -> Result<Decoder> {
        let set = sluice_codec::SchemaSet::from_proto_source(
            "m.proto",
            "syntax = \"proto3\"; message M { string a = 1; int64 n = 2; }",
        )
        .unwrap();
        Ok(Decoder::typed(set.type_codec("M").unwrap()))
    }

    #[test]
    fn protobuf_edits_keep_the_frame_and_unchanged_ones_keep_every_byte() {
        // Field 2 before field 1 and an explicit default: a re-encode would differ.
        let odd = b"\x10\x00\x0a\x02hi";
        let e = event(Encoding::Protobuf, odd, Some(r#"{"a":"hi"}"#));
        let same = serde_json::json!({"a": "hi"});
        assert_eq!(encode(&e, &same, &mut schemas).unwrap(), odd);
        let edited = serde_json::json!({"a": "yo", "n": "7"});
        assert_eq!(
            encode(&e, &edited, &mut schemas).unwrap(),
            b"\x0a\x02yo\x10\x07"
        );
        let framed = b"\x00\x00\x00\x00\x2a\x02\x02\x0a\x02hi";
        let e = event(Encoding::Protobuf, framed, Some(r#"{"a":"hi"}"#));
        assert_eq!(
            encode(&e, &edited, &mut schemas).unwrap(),
            b"\x00\x00\x00\x00\x2a\x02\x02\x0a\x02yo\x10\x07",
            "schema id 42 and index path [1] kept"
        );
        let err = encode(&e, &serde_json::json!({"nope": 1}), &mut schemas).unwrap_err();
        assert!(err.message.contains("does not fit M"), "{}", err.message);
        assert!(err.message.contains("nope"), "{}", err.message);
    }

    #[test]
    fn json_text_and_binary_edits() {
        let e = event(Encoding::Json, b"{ \"a\" : 1 }", Some(r#"{"a":1}"#));
        assert_eq!(
            encode(&e, &serde_json::json!({"a": 1}), &mut schemas).unwrap(),
            b"{ \"a\" : 1 }"
        );
        assert_eq!(
            encode(&e, &serde_json::json!({"a": 2}), &mut schemas).unwrap(),
            br#"{"a":2}"#
        );
        let t = event(Encoding::Text, b"hello", None);
        assert_eq!(
            encode(&t, &serde_json::json!("bye"), &mut schemas).unwrap(),
            b"bye"
        );
        assert!(encode(&t, &serde_json::json!({"x": 1}), &mut schemas).is_err());
        // Compressed JSON is edited inside and compressed again.
        let inner = br#"{"a":1}"#;
        let gz = sluice_codec::wrap(Encoding::Gzip, inner).unwrap();
        let mut z = event(Encoding::Gzip, &gz, Some(r#"{"a":1}"#));
        z.schema = None;
        let out = encode(&z, &serde_json::json!({"a": 5}), &mut schemas).unwrap();
        assert_eq!(
            sluice_codec::unwrap(&out).unwrap(),
            (Encoding::Gzip, br#"{"a":5}"#.to_vec())
        );
        // A typed message inside base64 keeps its type.
        let b64 = sluice_codec::wrap(Encoding::Base64, b"\x0a\x02hi").unwrap();
        let m = event(Encoding::Base64, &b64, Some(r#"{"a":"hi"}"#));
        let out = encode(&m, &serde_json::json!({"a": "yo"}), &mut schemas).unwrap();
        assert_eq!(sluice_codec::unwrap(&out).unwrap().1, b"\x0a\x02yo");
        let b = event(Encoding::Binary, b"\xff", None);
        assert!(encode(&b, &serde_json::json!("x"), &mut schemas)
            .unwrap_err()
            .message
            .contains("no decoded form"));
    }

    #[test]
    fn edit_files_in_every_shape() {
        let jsonl = "{\"id\":\"a\",\"decoded\":{\"x\":1},\"payload\":\"eA==\"}\n\n{\"id\":\"b\",\"decoded\":null,\"payload_text\":\"hi\"}\n";
        let e = parse_edits("f", jsonl).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].id.as_deref(), Some("a"));
        assert_eq!(e[1].decoded, serde_json::json!("hi"));
        let array = r#"[{"id":"a","decoded":{"x":1}}]"#;
        assert_eq!(parse_edits("f", array).unwrap().len(), 1);
        let bare = parse_edits("f", r#"{"status": "OK"}"#).unwrap();
        assert_eq!(bare[0].id, None);
        let err = parse_edits("f", "{\"id\":\"a\",\"decoded\":{}}\n{\"id\": oops}\n").unwrap_err();
        assert!(err.message.starts_with("f:2:8:"), "{}", err.message);
        assert_eq!(
            (err.file.as_deref(), err.line, err.column),
            (Some("f"), Some(2), Some(8))
        );
        let err = parse_edits("f", "{\"status\": ").unwrap_err();
        assert!(err.message.starts_with("f:1:"), "{}", err.message);
        assert!(parse_edits("f", "[]").is_err());
        assert!(parse_edits("f", "[1]")
            .unwrap_err()
            .message
            .contains("entry 1"));
        assert_eq!(
            parse_edits("f", r#"[{"id": 5, "decoded": {}}]"#)
                .unwrap_err()
                .message,
            r#"f: entry 1: "id" must be a string"#
        );
        assert_eq!(
            parse_edits("f", r#"{"id": "a", "decoded": null}"#)
                .unwrap_err()
                .message,
            r#"f: entry 1: neither "decoded" nor "payload_text" holds a value"#
        );
        assert_eq!(
            parse_edits("f", "[1]").unwrap_err().message,
            "f: entry 1: expected a JSON object"
        );
    }
}
