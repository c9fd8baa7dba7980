//! Confluent Schema Registry wire framing: magic byte 0, a 4-byte big-endian schema id, and for
//! protobuf a message-index path (a zig-zag varint count then that many zig-zag varints; a
//! single 0 byte means `[0]`). Parsing never panics and never reads past the input.

use crate::registry::{message_indexes, payload_prefix, SchemaRef};

/// A parsed frame: the registry's schema id, the message-index path, and the message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub schema_id: u32,
    pub indexes: Vec<i64>,
    pub body: &'a [u8],
}

/// A protobuf payload in Confluent framing, or `None` when it is not one.
pub fn protobuf_frame(payload: &[u8]) -> Option<Frame<'_>> {
    let (SchemaRef::Id(schema_id), rest) = payload_prefix(payload)? else {
        return None;
    };
    let (indexes, body) = message_indexes(rest)?;
    Some(Frame {
        schema_id,
        indexes,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_and_rejects_the_rest() {
        // magic, id 7, the [0] shortcut, then a message
        let f = protobuf_frame(&[0, 0, 0, 0, 7, 0, 0x0a, 0x01, b'x']).unwrap();
        assert_eq!(
            (f.schema_id, f.indexes.clone(), f.body),
            (7, vec![0], &[0x0a, 0x01, b'x'][..])
        );
        // explicit path [1, 2]: count 2 -> zigzag 4, 1 -> 2, 2 -> 4
        let f = protobuf_frame(&[0, 0, 0, 1, 0, 4, 2, 4, 0x08, 0x01]).unwrap();
        assert_eq!(
            (f.schema_id, f.indexes.clone(), f.body),
            (256, vec![1, 2], &[0x08, 0x01][..])
        );
        assert!(protobuf_frame(&[1, 0, 0, 0, 7, 0]).is_none(), "wrong magic");
        assert!(protobuf_frame(&[0, 0, 0, 0, 7]).is_none(), "too short");
        assert!(
            protobuf_frame(&[0, 0, 0, 0, 7, 6, 0x80]).is_none(),
            "cut varint"
        );
        assert!(
            protobuf_frame(&[0, 0, 0, 0, 7, 0xfe, 0x01]).is_none(),
            "absurd count"
        );
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = protobuf_frame(&junk);
            let mut framed = vec![0u8];
            framed.extend(&junk);
            let _ = protobuf_frame(&framed);
        }
    }
}
