//! Protobuf without a schema, like `protoc --decode_raw`: a payload that parses completely as
//! protobuf wire format becomes a JSON tree keyed by field number (`"#3"`), so it reads and
//! searches (`#3.#1 = "abc"`) before anyone knows its type. Length-delimited fields show as a
//! string when they are printable UTF-8, else as a nested message when one parses, else as
//! base64. A field seen more than once becomes an array. Parsing is bounded (depth, no
//! allocation beyond the output) and never panics.

use crate::printable;
use base64::Engine as _;
use serde_json::{Map, Value};

/// Nesting deeper than this is left as bytes: real messages are far shallower, and the bound
/// keeps hostile input from recursing without end.
const MAX_DEPTH: usize = 24;

/// The field-number tree of a payload, or `None` when it is not protobuf wire format.
pub fn decode_raw(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    message(bytes, 0).map(Value::Object)
}

/// A base-128 varint at `*at` (at most 10 bytes, and no bits beyond 64), moving `at` past it.
pub(crate) fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in 0..10 {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A zig-zag encoded signed value (Avro `int`/`long`, registry message-index paths).
pub(crate) fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// One field of a message as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Splits a message into `(field number, value)` pairs; `None` unless every byte is used.
pub(crate) fn fields(bytes: &[u8]) -> Option<Vec<(u32, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        let number = u32::try_from(tag >> 3).ok()?;
        if number == 0 || number > 536_870_911 {
            return None;
        }
        let value = match tag & 7 {
            0 => Wire::Varint(varint(bytes, &mut at)?),
            1 => {
                let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
                at += 8;
                Wire::Fixed64(u64::from_le_bytes(b))
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                let b = bytes.get(at..end)?;
                at = end;
                Wire::Bytes(b)
            }
            5 => {
                let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
                at += 4;
                Wire::Fixed32(u32::from_le_bytes(b))
            }
            // Groups (3, 4) are long deprecated; 6 and 7 do not exist.
            _ => return None,
        };
        out.push((number, value));
    }
    Some(out)
}

fn number(v: u64) -> Value {
    // Beyond 2^53 a JSON number loses digits in most readers: such values go as strings, as
    // proto3 JSON does for 64-bit integers.
    if v <= (1 << 53) {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

fn message(bytes: &[u8], depth: usize) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (n, w) in fields(bytes)? {
        let v = match w {
            Wire::Varint(v) | Wire::Fixed64(v) => number(v),
            Wire::Fixed32(v) => Value::from(v),
            Wire::Bytes(b) => match printable(b) {
                Some(s) => Value::String(s.to_string()),
                None => match (depth < MAX_DEPTH && !b.is_empty())
                    .then(|| message(b, depth + 1))
                    .flatten()
                {
                    Some(m) => Value::Object(m),
                    None => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                },
            },
        };
        let key = format!("#{n}");
        match out.get_mut(&key) {
            None => {
                out.insert(key, v);
            }
            Some(Value::Array(items)) => items.push(v),
            Some(first) => {
                let first = first.take();
                out.insert(key, Value::Array(vec![first, v]));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_stop_at_64_bits() {
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&max, &mut 0), Some(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(varint(&over, &mut 0), None);
        assert_eq!((zigzag(1), zigzag(2), zigzag(u64::MAX)), (-1, 1, i64::MIN));
    }

    #[test]
    fn decodes_like_decode_raw() {
        // 1: "abc", 2: 150, 3: {1: "x", 2: 1}, 2 again, 4: fixed32 7, 5: bytes ff00
        let msg = b"\x0a\x03abc\x10\x96\x01\x1a\x05\x0a\x01x\x10\x01\x10\x02\x25\x07\x00\x00\x00\x2a\x02\xff\x00";
        let v = decode_raw(msg).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"#1": "abc", "#2": [150, 2], "#3": {"#1": "x", "#2": 1}, "#4": 7, "#5": "/wA="})
        );
        assert_eq!(
            decode_raw(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").unwrap(),
            serde_json::json!({"#1": "18446744073709551615"})
        );
    }

    #[test]
    fn rejects_what_is_not_wire_format() {
        for bad in [
            &b""[..],
            b"\x00\x01",                                         // field 0
            b"\x0a\x05ab",                                       // length past the end
            b"\x0b\x0c",                                         // a group
            b"\x08",                                             // a tag without its value
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // an 11-byte varint
            b"{\"json\": true}",
        ] {
            assert!(decode_raw(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut m = b"\x08\x01".to_vec();
        for _ in 0..200 {
            let mut outer = vec![0x0a];
            let mut len = m.len();
            while len >= 0x80 {
                outer.push((len as u8) | 0x80);
                len >>= 7;
            }
            outer.push(len as u8);
            outer.extend(&m);
            m = outer;
        }
        assert!(decode_raw(&m).is_some());
    }
}
