//! JSON payloads: recognised only when they are a whole JSON object or array, so that a bare
//! number or word stays text (searching `"42"` as text is what people expect).

pub(crate) fn parse_object_or_array(bytes: &[u8]) -> Option<String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::to_string(&value).ok()
}
