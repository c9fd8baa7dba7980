//! JSON text pieces written exactly as serde_json writes them (its escapes, its shortest
//! round-trip floats through its own formatter) and the well-known types' string forms as
//! prost-types prints them.

use base64::Engine as _;
use serde_json::ser::{CompactFormatter, Formatter as _};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// serde_json's escape table: 0 = copy, `u` = `\u00XX`, else `\` and that byte.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string of `s` (valid UTF-8).
pub(super) fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

pub(super) fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// 64-bit integers are strings in proto3 JSON.
pub(super) fn quoted_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.push(b'"');
    int(out, v);
    out.push(b'"');
}

/// A float field: finite as serde_json prints an f32, the rest as proto3 JSON's strings.
pub(super) fn f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        let _ = CompactFormatter.write_f32(out, v);
    } else {
        out.extend_from_slice(non_finite(v.is_nan(), v > 0.0));
    }
}

pub(super) fn f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = CompactFormatter.write_f64(out, v);
    } else {
        out.extend_from_slice(non_finite(v.is_nan(), v > 0.0));
    }
}

fn non_finite(nan: bool, positive: bool) -> &'static [u8] {
    match (nan, positive) {
        (true, _) => b"\"NaN\"",
        (false, true) => b"\"Infinity\"",
        (false, false) => b"\"-Infinity\"",
    }
}

/// A float the way serde_json's `serialize_f32` treats it: non-finite values are `null`
/// (the wrapper types print through it directly).
pub(super) fn f32_or_null(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        let _ = CompactFormatter.write_f32(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

pub(super) fn f64_or_null(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = CompactFormatter.write_f64(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

pub(super) fn bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Standard, padded base64 in quotes.
pub(super) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    let at = out.len();
    out.resize(at + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out[at..])
        .unwrap_or(0);
    out.truncate(at + written);
    out.push(b'"');
}

pub(super) const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
pub(super) const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;
pub(super) const MAX_DURATION_SECONDS: u64 = 315_576_000_000;
pub(super) const MAX_DURATION_NANOS: u32 = 999_999_999;

/// A Timestamp in range (checked by the caller) as prost-types' `Display` prints it.
pub(super) fn timestamp(out: &mut Vec<u8>, seconds: i64, nanos: i32) {
    if !(0..1_000_000_000).contains(&nanos) {
        // Out-of-range nanos are normalised by prost-types first; rare, so use its printer.
        let ts = prost_types::Timestamp { seconds, nanos };
        let _ = std::io::Write::write_fmt(out, format_args!("\"{ts}\""));
        return;
    }
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    out.push(b'"');
    let y = y as u32;
    out.extend_from_slice(&[
        b'0' + (y / 1000 % 10) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
    ]);
    two(out, m);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, secs / 3600);
    out.push(b':');
    two(out, secs / 60 % 60);
    out.push(b':');
    two(out, secs % 60);
    fraction(out, nanos as u32);
    out.extend_from_slice(b"Z\"");
}

fn two(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
}

/// Nothing, millis, micros or nanos, as prost-types chooses.
fn fraction(out: &mut Vec<u8>, nanos: u32) {
    let (digits, v) = if nanos == 0 {
        return;
    } else if nanos.is_multiple_of(1_000_000) {
        (3, nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        (6, nanos / 1_000)
    } else {
        (9, nanos)
    };
    out.push(b'.');
    let mut buf = [b'0'; 9];
    let mut v = v;
    for i in (0..digits).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..digits]);
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A Duration in range (checked by the caller), printed by prost-types.
pub(super) fn duration(out: &mut Vec<u8>, seconds: i64, nanos: i32) {
    let d = prost_types::Duration { seconds, nanos };
    let _ = std::io::Write::write_fmt(out, format_args!("\"{d}\""));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_prost_types_prints_them() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let span = (MAX_TIMESTAMP_SECONDS - MIN_TIMESTAMP_SECONDS) as u64 + 1;
        let edges = [
            MIN_TIMESTAMP_SECONDS,
            MAX_TIMESTAMP_SECONDS,
            0,
            -1,
            951_782_400,
        ];
        for i in 0..200_000 {
            let seconds = match edges.get(i) {
                Some(&e) => e,
                None => MIN_TIMESTAMP_SECONDS + (next() % span) as i64,
            };
            let nanos = match next() % 4 {
                0 => 0,
                1 => (next() % 1000) as i32 * 1_000_000,
                2 => (next() % 1_000_000) as i32 * 1000,
                _ => (next() % 1_000_000_000) as i32,
            };
            let mut out = Vec::new();
            timestamp(&mut out, seconds, nanos);
            let want = format!("\"{}\"", prost_types::Timestamp { seconds, nanos });
            assert_eq!(String::from_utf8(out).unwrap(), want, "{seconds} {nanos}");
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let all: String = (0u8..0x80)
            .map(char::from)
            .chain("é\u{2028}😀".chars())
            .collect();
        let mut out = Vec::new();
        string(&mut out, all.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }
}
