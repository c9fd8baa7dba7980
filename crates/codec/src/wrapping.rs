//! Layers around a payload that hide what it is: gzip, zstd and snappy compression (found by
//! their magic bytes) and base64 text. Each is taken off with a bound on the output, so a
//! decompression bomb costs at most `MAX_UNWRAPPED` bytes, and never panics.

use base64::Engine as _;
use sluice_model::Encoding;
use std::io::Read;

/// Larger inflated payloads are not decoded (the raw bytes are still kept).
const MAX_UNWRAPPED: u64 = 64 << 20;

const GZIP: &[u8] = b"\x1f\x8b";
const ZSTD: &[u8] = b"\x28\xb5\x2f\xfd";
const SNAPPY_FRAMED: &[u8] = b"\xff\x06\x00\x00sNaPpY";

fn bounded(mut r: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    (&mut r)
        .take(MAX_UNWRAPPED + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_UNWRAPPED).then_some(out)
}

/// The layer around `bytes` and what it wraps, when there is one.
pub fn unwrap(bytes: &[u8]) -> Option<(Encoding, Vec<u8>)> {
    if bytes.starts_with(GZIP) {
        return Some((
            Encoding::Gzip,
            bounded(flate2::read::MultiGzDecoder::new(bytes))?,
        ));
    }
    if bytes.starts_with(ZSTD) {
        return Some((
            Encoding::Zstd,
            bounded(zstd::stream::read::Decoder::new(bytes).ok()?)?,
        ));
    }
    if bytes.starts_with(SNAPPY_FRAMED) {
        return Some((
            Encoding::Snappy,
            bounded(snap::read::FrameDecoder::new(bytes))?,
        ));
    }
    base64_body(bytes).map(|b| (Encoding::Base64, b))
}

/// Puts `bytes` back inside `layer` (to replay an edited event the way it came): gzip, zstd,
/// framed snappy, or standard padded base64. `None` for an encoding that is no layer.
pub fn wrap(layer: Encoding, bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    match layer {
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(bytes).ok()?;
            w.finish().ok()
        }
        Encoding::Zstd => zstd::stream::encode_all(bytes, 0).ok(),
        Encoding::Snappy => {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            w.write_all(bytes).ok()?;
            w.into_inner().ok()
        }
        Encoding::Base64 => Some(
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into_bytes(),
        ),
        _ => None,
    }
}

/// Base64 text (standard or URL-safe, padded or not) of at least 8 characters. Short or
/// ordinary words are base64 by accident, so callers only accept the result when it then
/// decodes as something.
fn base64_body(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() < 8
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
    {
        return None;
    }
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let padding_optional =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [&base64::alphabet::STANDARD, &base64::alphabet::URL_SAFE]
        .into_iter()
        .find_map(|alphabet| {
            GeneralPurpose::new(alphabet, padding_optional)
                .decode(text)
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_layers_unwrap_to_what_went_in() {
        for layer in [
            Encoding::Gzip,
            Encoding::Zstd,
            Encoding::Snappy,
            Encoding::Base64,
        ] {
            let w = wrap(layer, b"{\"a\": [1, 2, 3]}").unwrap();
            assert_eq!(
                unwrap(&w),
                Some((layer, b"{\"a\": [1, 2, 3]}".to_vec())),
                "{layer:?}"
            );
        }
        assert!(wrap(Encoding::Json, b"x").is_none());
    }
    use std::io::Write;

    #[test]
    fn takes_off_each_layer() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"a\":1}").unwrap();
        assert_eq!(
            unwrap(&gz.finish().unwrap()),
            Some((Encoding::Gzip, b"{\"a\":1}".to_vec()))
        );
        let z = zstd::encode_all(&b"hello zstd"[..], 3).unwrap();
        assert_eq!(unwrap(&z), Some((Encoding::Zstd, b"hello zstd".to_vec())));
        let mut s = snap::write::FrameEncoder::new(Vec::new());
        s.write_all(b"hello snappy").unwrap();
        assert_eq!(
            unwrap(&s.into_inner().unwrap()),
            Some((Encoding::Snappy, b"hello snappy".to_vec()))
        );
        assert_eq!(
            unwrap(b"eyJhIjogMX0="),
            Some((Encoding::Base64, b"{\"a\": 1}".to_vec()))
        );
        assert_eq!(
            unwrap(b"eyJhIjogMX0"),
            Some((Encoding::Base64, b"{\"a\": 1}".to_vec()))
        );
        assert_eq!(unwrap(b"hello"), None);
        assert_eq!(unwrap(b"not base64 at all!"), None);
    }

    #[test]
    fn broken_and_huge_layers_are_refused() {
        assert_eq!(unwrap(b"\x1f\x8b\x08\x00garbage"), None);
        assert_eq!(unwrap(b"\x28\xb5\x2f\xfd\x00"), None);
        let bomb = zstd::encode_all(std::io::repeat(0).take(MAX_UNWRAPPED + 10), 19).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(unwrap(&bomb), None, "inflating past the bound is refused");
    }
}
