//! Column values from PostgreSQL's text form into typed JSON, by type OID: booleans and
//! numbers as JSON booleans and numbers (NaN and infinities as the strings PostgreSQL prints),
//! `numeric` as a string (its precision is more than a JSON reader keeps), `json`/`jsonb` as
//! the JSON they hold, `bytea` as base64, `timestamptz` as RFC 3339 in UTC and `timestamp` as
//! RFC 3339 without an offset, arrays as JSON arrays; anything else (text, uuid, enums, ...) as
//! the text. A value that does not read as its type is kept as text rather than lost.

use base64::Engine;
use serde_json::Value as Json;

const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const OID: u32 = 26;
const JSON: u32 = 114;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const JSONB: u32 = 3802;

/// Array types and their elements' types.
fn element_of(oid: u32) -> Option<u32> {
    Some(match oid {
        1000 => BOOL,
        1001 => BYTEA,
        1005 => INT2,
        1007 => INT4,
        1016 => INT8,
        1028 => OID,
        1021 => FLOAT4,
        1022 => FLOAT8,
        199 => JSON,
        3807 => JSONB,
        1115 => TIMESTAMP,
        1185 => TIMESTAMPTZ,
        // text, varchar, bpchar, name, numeric, uuid, date, time: elements stay text.
        1009 | 1015 | 1014 | 1003 | 1231 | 2951 | 1182 | 1183 => 25,
        _ => return None,
    })
}

/// One value in text form as JSON.
pub(crate) fn to_json(oid: u32, text: &[u8]) -> Json {
    let Ok(s) = std::str::from_utf8(text) else {
        return Json::String(String::from_utf8_lossy(text).into_owned());
    };
    let typed = match oid {
        BOOL => match s {
            "t" => Some(Json::Bool(true)),
            "f" => Some(Json::Bool(false)),
            _ => None,
        },
        INT2 | INT4 | INT8 | OID => s.parse::<i64>().ok().map(Json::from),
        FLOAT4 | FLOAT8 => match s {
            "NaN" | "Infinity" | "-Infinity" => None,
            _ => serde_json::from_str::<serde_json::Number>(s)
                .ok()
                .map(Json::Number),
        },
        JSON | JSONB => serde_json::from_str::<Json>(s).ok(),
        BYTEA => s
            .strip_prefix("\\x")
            .and_then(hex)
            .map(|b| Json::String(base64::engine::general_purpose::STANDARD.encode(b))),
        TIMESTAMPTZ => chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
            .ok()
            .map(|t| {
                Json::String(
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                )
            }),
        TIMESTAMP => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|t| Json::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
        _ => element_of(oid).and_then(|e| array(e, s)),
    };
    typed.unwrap_or_else(|| Json::String(s.to_string()))
}

fn hex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An array literal (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`); PostgreSQL allows 6
/// dimensions, and nothing deeper is read.
fn array(element: u32, s: &str) -> Option<Json> {
    let s = s
        .strip_prefix('[')
        .map_or(Some(s), |_| s.split_once('=').map(|(_, a)| a))?;
    let mut chars = s.chars().peekable();
    let v = array_level(element, &mut chars, 0)?;
    chars.next().is_none().then_some(v)
}

fn array_level(
    element: u32,
    c: &mut std::iter::Peekable<std::str::Chars<'_>>,
    depth: usize,
) -> Option<Json> {
    if depth > 6 || c.next()? != '{' {
        return None;
    }
    let mut out = Vec::new();
    if c.peek() == Some(&'}') {
        c.next();
        return Some(Json::Array(out));
    }
    loop {
        match c.peek()? {
            '{' => out.push(array_level(element, c, depth + 1)?),
            '"' => {
                c.next();
                let mut v = String::new();
                loop {
                    match c.next()? {
                        '\\' => v.push(c.next()?),
                        '"' => break,
                        ch => v.push(ch),
                    }
                }
                out.push(to_json(element, v.as_bytes()));
            }
            _ => {
                let mut v = String::new();
                while let Some(&ch) = c.peek() {
                    if ch == ',' || ch == '}' {
                        break;
                    }
                    v.push(ch);
                    c.next();
                }
                let v = v.trim();
                out.push(if v.eq_ignore_ascii_case("NULL") {
                    Json::Null
                } else {
                    to_json(element, v.as_bytes())
                });
            }
        }
        match c.next()? {
            ',' => continue,
            '}' => return Some(Json::Array(out)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_come_typed() {
        let j = |oid, s: &str| to_json(oid, s.as_bytes());
        assert_eq!(j(BOOL, "t"), json!(true));
        assert_eq!(j(INT8, "9007199254740993"), json!(9007199254740993i64));
        assert_eq!(j(INT4, "-7"), json!(-7));
        assert_eq!(j(FLOAT8, "0.13718105611909515"), json!(0.13718105611909515));
        assert_eq!(j(FLOAT8, "NaN"), json!("NaN"));
        assert_eq!(j(FLOAT4, "-Infinity"), json!("-Infinity"));
        assert_eq!(
            j(1700, "12345678901234567890.000001"),
            json!("12345678901234567890.000001")
        );
        assert_eq!(
            j(JSONB, r#"{"a": [1, {"b": null}]}"#),
            json!({"a": [1, {"b": null}]})
        );
        assert_eq!(j(BYTEA, "\\x00ff10"), json!("AP8Q"));
        assert_eq!(
            j(TIMESTAMPTZ, "2026-12-02 14:00:00.123456+01"),
            json!("2026-12-02T13:00:00.123456Z")
        );
        assert_eq!(
            j(TIMESTAMPTZ, "2026-12-02 14:00:00+05:30"),
            json!("2026-12-02T08:30:00Z")
        );
        assert_eq!(
            j(TIMESTAMP, "2026-12-02 14:00:00"),
            json!("2026-12-02T14:00:00")
        );
        assert_eq!(j(TIMESTAMPTZ, "infinity"), json!("infinity"));
        assert_eq!(j(2950, "8c3f..."), json!("8c3f..."));
        assert_eq!(j(1007, "{1,2,NULL}"), json!([1, 2, null]));
        assert_eq!(
            j(1009, r#"{"a b","c\"d",e,NULL}"#),
            json!(["a b", "c\"d", "e", null])
        );
        assert_eq!(j(1007, "{{1,2},{3,4}}"), json!([[1, 2], [3, 4]]));
        assert_eq!(j(1007, "[0:1]={5,6}"), json!([5, 6]));
        assert_eq!(j(1007, "{}"), json!([]));
        // Not what its type says: kept as text, not lost.
        assert_eq!(j(INT4, "x"), json!("x"));
        assert_eq!(j(1007, "{1,2"), json!("{1,2"));
        assert_eq!(
            j(1007, &format!("{}1{}", "{".repeat(50), "}".repeat(50))),
            json!(format!("{}1{}", "{".repeat(50), "}".repeat(50)))
        );
    }
}
