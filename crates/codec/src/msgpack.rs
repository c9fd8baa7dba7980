//! MessagePack payloads as JSON. Almost any byte string begins with a valid MessagePack value,
//! so only a map or array that uses every byte counts.

/// The payload as JSON, when it is one MessagePack map or array and nothing else.
pub fn decode(bytes: &[u8]) -> Option<String> {
    let first = *bytes.first()?;
    let container = matches!(first, 0x80..=0x9f | 0xdc..=0xdf);
    if !container || bytes.len() < 2 {
        return None;
    }
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, 64).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let json = serde_json::to_value(&value).ok()?;
    serde_json::to_string(&json).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_and_arrays_only() {
        // {"a": 1, "b": [true, "x"]}
        let m = b"\x82\xa1a\x01\xa1b\x92\xc3\xa1x";
        assert_eq!(
            super::decode(m).as_deref(),
            Some(r#"{"a":1,"b":[true,"x"]}"#)
        );
        assert_eq!(
            super::decode(b"\x01"),
            None,
            "a bare number is too easy to hit"
        );
        assert_eq!(super::decode(b"\x82\xa1a\x01"), None, "cut short");
        assert_eq!(super::decode(b"\x81\xa1a\x01\x00"), None, "bytes left over");
    }
}
