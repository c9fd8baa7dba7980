//! Which known message type unmapped protobuf payloads probably are. Every type is scored on
//! sample payloads by walking the wire format against its fields: a field the type declares
//! with a matching wire type (and valid UTF-8 for strings, a parseable body for messages)
//! counts for it; unknown field numbers, wire-type mismatches and bad strings count against.

use crate::guard::guarded;
use crate::schema::SchemaSet;
use crate::schemaless::{fields, Wire};
use prost_reflect::{Kind, MessageDescriptor};

/// A type's fit over the sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct Candidate {
    pub type_name: String,
    /// 0 to 1: the share of wire fields, over all samples, that fit the type.
    pub confidence: f64,
    /// Samples that decode as this type without error.
    pub decoded: u32,
    pub samples: u32,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    good: u32,
    bad: u32,
    /// Distinct declared fields seen: prefers the type that explains more of the payload
    /// when several fit everything.
    used: u32,
}

const MAX_DEPTH: usize = 16;

fn wire_fits(kind: &Kind, packed_ok: bool, w: &Wire<'_>) -> bool {
    use Kind::*;
    match (kind, w) {
        (Int32 | Int64 | Uint32 | Uint64 | Sint32 | Sint64 | Bool | Enum(_), Wire::Varint(_)) => {
            true
        }
        (Double | Fixed64 | Sfixed64, Wire::Fixed64(_)) => true,
        (Float | Fixed32 | Sfixed32, Wire::Fixed32(_)) => true,
        (String | Bytes | Message(_), Wire::Bytes(_)) => true,
        // Packed repeated scalars arrive length-delimited.
        (_, Wire::Bytes(_)) => packed_ok,
        _ => false,
    }
}

fn score(desc: &MessageDescriptor, bytes: &[u8], depth: usize, t: &mut Tally) -> bool {
    let Some(wire) = fields(bytes) else {
        return false;
    };
    let mut seen = std::collections::HashSet::new();
    for (number, w) in wire {
        let Some(f) = desc.get_field(number) else {
            t.bad += 1;
            continue;
        };
        let kind = f.kind();
        if !wire_fits(&kind, f.is_list(), &w) {
            t.bad += 1;
            continue;
        }
        let ok = match (&kind, w) {
            (Kind::String, Wire::Bytes(b)) => std::str::from_utf8(b).is_ok(),
            (Kind::Message(m), Wire::Bytes(b)) if depth < MAX_DEPTH => {
                b.is_empty() || score(m, b, depth + 1, t)
            }
            _ => true,
        };
        if ok {
            t.good += 1;
            if seen.insert(number) {
                t.used += 1;
            }
        } else {
            t.bad += 1;
        }
    }
    true
}

/// Every known type scored on `samples`, best first; types that fit nothing are left out.
pub fn detect(set: &SchemaSet, samples: &[&[u8]]) -> Vec<Candidate> {
    let mut out: Vec<(Candidate, u32)> = Vec::new();
    for desc in set.messages() {
        let mut t = Tally::default();
        let mut decoded = 0;
        for s in samples {
            let mut one = Tally::default();
            let parsed = score(&desc, s, 0, &mut one);
            // Guarded: a panic in prost-reflect counts as a failed decode of this sample.
            if parsed
                && one.bad == 0
                && guarded(|| prost_reflect::DynamicMessage::decode(desc.clone(), *s).is_ok())
                    .unwrap_or(false)
            {
                decoded += 1;
            }
            t.good += one.good;
            t.bad += one.bad;
            t.used += one.used;
        }
        if t.good == 0 {
            continue;
        }
        out.push((
            Candidate {
                type_name: desc.full_name().to_string(),
                confidence: f64::from(t.good) / f64::from(t.good + t.bad),
                decoded,
                samples: samples.len() as u32,
            },
            t.used,
        ));
    }
    out.sort_by(|(a, au), (b, bu)| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(b.decoded.cmp(&a.decoded))
            .then(bu.cmp(au))
            .then(a.type_name.cmp(&b.type_name))
    });
    out.into_iter().map(|(c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_that_explains_the_payload_wins() {
        let set = SchemaSet::from_proto_source(
            "d.proto",
            r#"syntax = "proto3";
            message Tiny { string id = 1; }
            message Order { string id = 1; int64 amount = 2; Customer customer = 3; repeated int32 tags = 4; }
            message Customer { string name = 1; }
            message Other { fixed64 x = 1; double y = 2; }"#,
        )
        .unwrap();
        // Order{id: "o-1", amount: 5, customer: {name: "Ada"}, tags: [1, 2] (packed)}
        let order = b"\x0a\x03o-1\x10\x05\x1a\x05\x0a\x03Ada\x22\x02\x01\x02";
        let c = detect(&set, &[order, order]);
        assert_eq!(c[0].type_name, "Order");
        assert_eq!((c[0].decoded, c[0].samples), (2, 2));
        assert!((c[0].confidence - 1.0).abs() < 1e-9);
        let tiny = c.iter().find(|c| c.type_name == "Tiny").unwrap();
        assert!(tiny.confidence < 0.5, "{tiny:?}");
        assert!(c.iter().all(|c| c.type_name != "Other"), "fits nothing");
        assert!(detect(&set, &[b"\xff\xff"]).is_empty());
    }
}
