//! Protobuf without a schema, like `protoc --decode_raw`: a payload that parses completely as
//! protobuf wire format becomes a JSON tree keyed by field number (`"#3"`), so it reads and
//! searches (`#3.#1 = "abc"`) before anyone knows its type. Length-delimited fields show as a
//! string when they are printable UTF-8, else as a nested message when one parses, else as
//! base64. A field seen more than once becomes an array. Parsing is bounded (depth, no
//! allocation beyond the output) and never panics.

use crate::printable;
use base64::Engine as _;
use serde_json::Value;
use std::collections::HashMap;

/// Nesting deeper than this is left as bytes: real messages are far shallower, and the bound
/// keeps hostile input from recursing without end.
const MAX_DEPTH: usize = 24;

/// The field-number tree of a payload, or `None` when it is not protobuf wire format.
pub fn decode_raw(bytes: &[u8]) -> Option<Value> {
    serde_json::from_str(&decode_raw_json(bytes)?).ok()
}

/// `decode_raw`'s tree as JSON text, written straight from the wire: capture decodes every
/// unmapped binary payload this way, and building a `Value` first (a map keyed by formatted
/// strings, then serialized) cost several times the parse itself.
pub fn decode_raw_json(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 2);
    write_message(bytes, 0, &mut out)?;
    String::from_utf8(out).ok()
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

fn write_number(v: u64, out: &mut Vec<u8>) {
    // Beyond 2^53 a JSON number loses digits in most readers: such values go as strings, as
    // proto3 JSON does for 64-bit integers.
    let mut digits = itoa::Buffer::new();
    let d = digits.format(v).as_bytes();
    if v <= (1 << 53) {
        out.extend_from_slice(d);
    } else {
        out.push(b'"');
        out.extend_from_slice(d);
        out.push(b'"');
    }
}

fn write_value(w: Wire<'_>, depth: usize, out: &mut Vec<u8>) {
    match w {
        Wire::Varint(v) | Wire::Fixed64(v) => write_number(v, out),
        Wire::Fixed32(v) => write_number(u64::from(v), out),
        Wire::Bytes(b) => {
            if let Some(s) = printable(b) {
                // Serializing a &str into a Vec cannot fail.
                let _ = serde::Serialize::serialize(s, &mut serde_json::Serializer::new(&mut *out));
                return;
            }
            let mark = out.len();
            if depth < MAX_DEPTH && !b.is_empty() && write_message(b, depth + 1, out).is_some() {
                return;
            }
            out.truncate(mark);
            out.push(b'"');
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .as_bytes(),
            );
            out.push(b'"');
        }
    }
}

/// Writes `{"#n": value, ...}`: numbers in the order first seen, a number seen more than once
/// as an array of its values in wire order.
fn write_message(bytes: &[u8], depth: usize, out: &mut Vec<u8>) -> Option<()> {
    let fields = fields(bytes)?;
    // Each field's group: the index of the first field with its number. Messages are small,
    // so a scan of the numbers seen so far beats hashing until there are many of them.
    let mut seen: Vec<(u32, usize)> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(fields.len());
    for (i, (n, _)) in fields.iter().enumerate() {
        let group = if seen.len() < 32 {
            match seen.iter().find(|(m, _)| m == n) {
                Some(&(_, g)) => g,
                None => {
                    seen.push((*n, i));
                    i
                }
            }
        } else {
            if index.is_empty() {
                index.extend(seen.iter().copied());
            }
            *index.entry(*n).or_insert(i)
        };
        order.push((group, i));
    }
    // Stable: values of one number keep their wire order.
    order.sort_by_key(|&(g, _)| g);
    out.push(b'{');
    let mut at = 0;
    while at < order.len() {
        let group = order[at].0;
        let end = at + order[at..].iter().take_while(|(g, _)| *g == group).count();
        if at > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"#");
        out.extend_from_slice(itoa::Buffer::new().format(fields[group].0).as_bytes());
        out.extend_from_slice(b"\":");
        let many = end - at > 1;
        if many {
            out.push(b'[');
        }
        for (k, &(_, i)) in order[at..end].iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_value(fields[i].1, depth, out);
        }
        if many {
            out.push(b']');
        }
        at = end;
    }
    out.push(b'}');
    Some(())
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
    fn writes_json_text_directly_in_first_seen_order() {
        let msg = b"\x10\x01\x0a\x02hi\x10\x02\x0a\x01\"";
        assert_eq!(
            decode_raw_json(msg).unwrap(),
            r##"{"#2":[1,2],"#1":["hi","\""]}"##
        );
        // Past 32 distinct numbers the groups come from a map: same order, same arrays.
        let mut many = Vec::new();
        for round in 0..2u8 {
            for n in 1..=40u32 {
                let tag = n << 3;
                if tag < 0x80 {
                    many.push(tag as u8);
                } else {
                    many.extend([(tag & 0x7f) as u8 | 0x80, (tag >> 7) as u8]);
                }
                many.push(round);
            }
        }
        let v = decode_raw(&many).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 40);
        assert_eq!(obj.keys().next().unwrap(), "#1");
        assert_eq!(obj.keys().next_back().unwrap(), "#40");
        assert!(obj.values().all(|x| x == &serde_json::json!([0, 1])));
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
