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
    /// Fields the type (and the message types the samples reach in it) declares that no
    /// sample uses: between types that fit equally, the one the samples use most completely
    /// is the likelier.
    pub unseen_fields: u32,
    /// Fits exactly as well as the candidate next to it, by every measure: the samples cannot
    /// tell them apart, so pick by name.
    pub tied: bool,
}

/// Which declared fields the samples used, per message type reached.
#[derive(Default)]
struct Seen {
    types: std::collections::HashMap<String, MessageDescriptor>,
    fields: std::collections::HashSet<(String, u32)>,
}

impl Seen {
    fn reach(&mut self, desc: &MessageDescriptor) {
        if !self.types.contains_key(desc.full_name()) {
            self.types
                .insert(desc.full_name().to_string(), desc.clone());
        }
    }

    fn unseen(&self) -> u32 {
        let declared: usize = self.types.values().map(|d| d.fields().len()).sum();
        declared.saturating_sub(self.fields.len()) as u32
    }
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

fn score(
    desc: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
    t: &mut Tally,
    used: &mut Seen,
) -> bool {
    let Some(wire) = fields(bytes) else {
        return false;
    };
    used.reach(desc);
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
                b.is_empty() || score(m, b, depth + 1, t, used)
            }
            _ => true,
        };
        if ok {
            t.good += 1;
            if seen.insert(number) {
                t.used += 1;
            }
            used.fields.insert((desc.full_name().to_string(), number));
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
        let mut used = Seen::default();
        for s in samples {
            let mut one = Tally::default();
            let parsed = score(&desc, s, 0, &mut one, &mut used);
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
                unseen_fields: used.unseen(),
                tied: false,
            },
            t.used,
        ));
    }
    // Equal fit first means the same confidence and decodes; then the fewest declared fields
    // left unused, then the most wire fields explained.
    let fit = |(a, au): &(Candidate, u32), (b, bu): &(Candidate, u32)| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(b.decoded.cmp(&a.decoded))
            .then(a.unseen_fields.cmp(&b.unseen_fields))
            .then(bu.cmp(au))
    };
    out.sort_by(|a, b| fit(a, b).then(a.0.type_name.cmp(&b.0.type_name)));
    for i in 1..out.len() {
        if fit(&out[i - 1], &out[i]).is_eq() {
            out[i - 1].0.tied = true;
            out[i].0.tied = true;
        }
    }
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
        assert!(!c[0].tied);
    }

    /// Both fit every field of every sample; the samples use all of Point's fields and only
    /// two of Wide's four, so Point is likelier. Twins that cannot be told apart are a tie.
    #[test]
    fn equal_fits_prefer_the_type_used_most_completely_and_show_ties() {
        let set = SchemaSet::from_proto_source(
            "t.proto",
            r#"syntax = "proto3";
            message Wide { int32 x = 1; int32 y = 2; string label = 3; bytes extra = 4; }
            message Point { int32 x = 1; int32 y = 2; }
            message Twin { int32 x = 1; int32 y = 2; }"#,
        )
        .unwrap();
        let p = b"\x08\x01\x10\x02";
        let c = detect(&set, &[p, p]);
        let names: Vec<&str> = c.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(names, ["Point", "Twin", "Wide"]);
        assert_eq!((c[0].unseen_fields, c[2].unseen_fields), (0, 2));
        assert!(c[0].tied && c[1].tied && !c[2].tied, "{c:?}");
    }
}
