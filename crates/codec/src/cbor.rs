//! CBOR payloads as JSON. Like MessagePack, only a map or array that uses every byte counts.

/// The payload as JSON, when it is one CBOR map or array and nothing else.
pub fn decode(bytes: &[u8]) -> Option<String> {
    let major = bytes.first()? >> 5;
    if !(major == 4 || major == 5) || bytes.len() < 2 {
        return None;
    }
    let mut rest = bytes;
    let value: ciborium::Value =
        ciborium::de::from_reader_with_recursion_limit(&mut rest, 64).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let json: serde_json::Value = value.deserialized().ok()?;
    serde_json::to_string(&json).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_and_arrays_only() {
        // {"a": 1, "b": [true, "x"]}
        let c = b"\xa2\x61a\x01\x61b\x82\xf5\x61x";
        assert_eq!(
            super::decode(c).as_deref(),
            Some(r#"{"a":1,"b":[true,"x"]}"#)
        );
        assert_eq!(super::decode(b"\x01"), None);
        assert_eq!(super::decode(b"\xa2\x61a\x01"), None, "cut short");
        assert_eq!(super::decode(b"\xa1\x61a\x01\x00"), None, "bytes left over");
    }
}
