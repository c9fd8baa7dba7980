//! The well-known types' JSON forms, as prost-reflect's serializer prints them: it re-encodes
//! the decoded message and decodes it again as the prost-types struct (so a `Struct`'s keys
//! come out sorted, and that second decode has its own recursion budget, `rel`, in which a
//! map entry costs a level too), then prints the struct.

use super::json;
use super::plan::{plan_for, Card, Msg, Plan, Scalar, Ty, Wkt};
use super::transcode::{Occ, Transcoder, RECURSION_LIMIT};
use super::wire::{limit, unpack, TranscodeError, R};

fn print(what: impl Into<String>) -> TranscodeError {
    TranscodeError::Print(what.into())
}

impl Transcoder<'_> {
    /// Prints `msg` (a well-known type) from its scanned fields `occ[base..top]`.
    pub(super) fn well_known(
        &mut self,
        p: &Plan,
        msg: &Msg,
        base: usize,
        top: usize,
        abs: u32,
        rel: u32,
    ) -> R<()> {
        // The shapes were checked when the plan was built: field i has number i + 1.
        let last = |t: &Self, number: u32| -> Option<Occ> {
            let fi = number - 1;
            t.occ[base..top]
                .iter()
                .rev()
                .find(|o| o.field == fi && !o.dead)
                .copied()
        };
        match msg.wkt {
            Wkt::None => unreachable!("plain messages print their fields"),
            Wkt::Empty => self.out.extend_from_slice(b"{}"),
            Wkt::Timestamp | Wkt::Duration => {
                let seconds = last(self, 1).map_or(0, |o| o.val as i64);
                let nanos = last(self, 2).map_or(0, |o| o.val as u32 as i32);
                if msg.wkt == Wkt::Timestamp {
                    if !(json::MIN_TIMESTAMP_SECONDS..=json::MAX_TIMESTAMP_SECONDS)
                        .contains(&seconds)
                    {
                        return Err(print("timestamp out of range"));
                    }
                    json::timestamp(&mut self.out, seconds, nanos);
                } else {
                    if seconds.unsigned_abs() > json::MAX_DURATION_SECONDS
                        || nanos.unsigned_abs() > json::MAX_DURATION_NANOS
                    {
                        return Err(print("duration out of range"));
                    }
                    json::duration(&mut self.out, seconds, nanos);
                }
            }
            Wkt::Wrapper(s) => {
                let o = last(self, 1).unwrap_or(Occ {
                    field: 0,
                    wt: s.wire(),
                    dead: false,
                    val: 0,
                });
                match s {
                    // Printed through serde_json's own float path: non-finite is `null` here.
                    Scalar::Double => json::f64_or_null(&mut self.out, f64::from_bits(o.val)),
                    Scalar::Float => json::f32_or_null(&mut self.out, f32::from_bits(o.val as u32)),
                    _ => self.scalar(p, Ty::Scalar(s), o),
                }
            }
            Wkt::FieldMask => {
                let mut result = String::new();
                for o in &self.occ[base..top] {
                    let (s, e) = unpack(o.val);
                    let path = std::str::from_utf8(&self.input[s..e])
                        .map_err(|_| print("a field mask path is not UTF-8"))?;
                    if !result.is_empty() {
                        result.push(',');
                    }
                    for (n, part) in path.split('.').enumerate() {
                        if n > 0 {
                            result.push('.');
                        }
                        snake_to_camel(&mut result, part)
                            .map_err(|()| print("cannot roundtrip field name through camelcase"))?;
                    }
                }
                json::string(&mut self.out, result.as_bytes());
            }
            Wkt::Struct => {
                if base == top {
                    self.out.extend_from_slice(b"{}");
                } else {
                    let Card::Map { key, value } = msg.fields[0].card else {
                        unreachable!("checked shape")
                    };
                    self.map(p, key, value, base, top, abs, Some(rel))?;
                }
            }
            Wkt::ListValue => {
                self.out.push(b'[');
                self.items(p, msg.fields[0].ty, base, top, abs, Some(rel))?;
                self.out.push(b']');
            }
            Wkt::Value => self.value(p, msg, base, top, abs, rel)?,
            Wkt::Any => {
                let (url, value) = (last(self, 1), last(self, 2));
                self.any(p, url, value)?;
            }
        }
        Ok(())
    }

    /// `google.protobuf.Value`: the oneof member left set decides the form.
    fn value(&mut self, p: &Plan, msg: &Msg, base: usize, top: usize, abs: u32, rel: u32) -> R<()> {
        let Some(k) = (base..top).rev().find(|&k| !self.occ[k].dead) else {
            self.out.extend_from_slice(b"null");
            return Ok(());
        };
        let o = self.occ[k];
        let f = &msg.fields[o.field as usize];
        match f.number {
            1 => self.out.extend_from_slice(b"null"),
            2 => {
                let v = f64::from_bits(o.val);
                if !v.is_finite() {
                    return Err(print(
                        "cannot serialize non-finite double in google.protobuf.Value",
                    ));
                }
                json::f64(&mut self.out, v);
            }
            3 | 4 => self.scalar(p, f.ty, o),
            _ => {
                let Ty::Message(c) = f.ty else {
                    unreachable!("checked shape")
                };
                let i = (base..=k)
                    .find(|&i| self.occ[i].field == o.field)
                    .unwrap_or(k);
                let spans = self.live_spans(i, k + 1);
                if abs == 0 || rel == 0 {
                    return limit();
                }
                self.message(p, c, spans.as_slice(), abs - 1, rel - 1)?;
            }
        }
        Ok(())
    }

    /// `google.protobuf.Any`: the payload is decoded as a message of its own (a fresh
    /// recursion budget), printed after `"@type"` (well-known payloads under `"value"`).
    fn any(&mut self, p: &Plan, url: Option<Occ>, value: Option<Occ>) -> R<()> {
        let span = |o: Option<Occ>| o.map_or((0, 0), |o| unpack(o.val));
        let (us, ue) = span(url);
        let (vs, ve) = span(value);
        let input = self.input;
        let url =
            std::str::from_utf8(&input[us..ue]).map_err(|_| print("type url is not UTF-8"))?;
        let Some((_, name)) = url.rsplit_once('/') else {
            return Err(print(format!(
                "unsupported type url '{url}': missing at least one '/'"
            )));
        };
        let Some(desc) = p.pool.get_message_by_name(name) else {
            return Err(print(format!("message '{name}' not found")));
        };
        let payload = plan_for(&desc);
        if payload.fallback.is_some() {
            return Err(TranscodeError::Unsupported);
        }
        self.out.extend_from_slice(b"{\"@type\":");
        json::string(&mut self.out, url.as_bytes());
        let spans = [(vs as u32, ve as u32)];
        if Wkt::of(name).is_some() {
            self.out.extend_from_slice(b",\"value\":");
            self.message(&payload, 0, &spans, RECURSION_LIMIT, RECURSION_LIMIT)?;
        } else {
            // Printed field by field, even when the type is well-known under another
            // spelling (a leading dot): prost-reflect decides by the name in the URL.
            let msg = &payload.msgs[0];
            let lv = self.open(msg, &spans, RECURSION_LIMIT, None)?;
            self.check_dead(&payload, msg, &lv, RECURSION_LIMIT)?;
            let top = self.occ.len();
            self.fields(&payload, msg, lv.base, top, RECURSION_LIMIT, true)?;
            self.close(&lv);
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// prost-reflect's snake_case to lowerCamelCase for field mask paths, refusing what would
/// not convert back.
fn snake_to_camel(dst: &mut String, src: &str) -> Result<(), ()> {
    let mut upper_next = false;
    for ch in src.chars() {
        if ch.is_ascii_uppercase() {
            return Err(());
        }
        if upper_next {
            let up = ch.to_ascii_uppercase();
            if up == ch {
                return Err(());
            }
            dst.push(up);
            upper_next = false;
        } else if ch == '_' {
            upper_next = true;
        } else {
            dst.push(ch);
        }
    }
    Ok(())
}
