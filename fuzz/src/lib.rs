//! What the fuzz targets share: the checks every output must pass and the fixed schemas the
//! payload decoders are fuzzed against. A finding is a panic, an abort (stack overflow), a
//! timeout or running out of memory; a panic that the codec's own guard caught surfaces as a
//! "decoder bug" error text, and that counts as a finding too.

use prost::Message as _;
use sluice_codec::{
    Decoded, Decoder, NamedSchema, RegisteredSchema, SchemaKind, SchemaRef, SchemaSet, SchemaSource,
    SourceError,
};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Fails when `error` says the codec's panic guard caught a panic.
pub fn no_bug(context: &str, error: Option<&str>) {
    if let Some(e) = error {
        assert!(!e.contains("decoder bug"), "{context}: {e}");
    }
}

/// Checks one decode result: no caught panic, and any JSON it holds parses.
pub fn check_decoded(context: &str, d: &Decoded) {
    no_bug(context, d.error.as_deref());
    if let Some(json) = &d.json {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(json) {
            panic!("{context}: decoded JSON does not parse ({e}): {json:?}");
        }
    }
}

/// Decodes `payload` with `decoder`, then encodes the JSON it produced back: an untouched
/// event must be replayable, so the encoder must accept what the decoder printed.
pub fn decode_and_reencode(context: &str, decoder: &Decoder, payload: &[u8]) {
    let d = decoder.decode(payload, true);
    check_decoded(context, &d);
    if d.error.is_none() && d.schema.is_some() {
        if let Some(json) = &d.json {
            if let Err(e) = decoder.encode(payload, None, json) {
                no_bug(context, Some(&e.to_string()));
                panic!("{context}: decoded JSON does not encode back ({e}): {json}");
            }
        }
    }
    check_decoded(context, &decoder.decode(payload, false));
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The project's example and test schemas (protos/ and tests/protos/), compiled once.
pub fn schemas() -> &'static SchemaSet {
    static SET: OnceLock<SchemaSet> = OnceLock::new();
    SET.get_or_init(|| {
        let root = repo();
        let c = sluice_codec::compile_paths(&[root.join("protos"), root.join("tests/protos")], &[]);
        assert!(c.errors.is_empty(), "example schemas: {:?}", c.errors);
        SchemaSet::from_sets([c.set]).expect("example schemas load")
    })
}

/// Payloads decoded with every type of a schema under test: a few hand-made wire shapes.
pub const PROBES: &[&[u8]] = &[
    b"",
    b"\x08\x96\x01",
    b"\x0a\x03abc\x10\x01",
    b"\x12\x04\x0a\x02hi",
    b"\x1a\x06\x0a\x01k\x10\x02\x22\x00",
    b"\x25\x00\x00\x80\x3f\x29\x00\x00\x00\x00\x00\x00\xf0\x3f",
];

/// Exercises every message type of `set` (the first 32): decode the probes and `extra`, encode
/// back, and run type detection over them.
pub fn exercise_set(set: &SchemaSet, extra: &[u8]) {
    let _ = set.to_descriptor_set().encode_to_vec();
    for name in set.message_types().into_iter().take(32) {
        let Ok(codec) = set.type_codec(&name) else {
            continue;
        };
        let decoder = Decoder::typed(codec);
        for p in PROBES.iter().copied().chain([extra]) {
            decode_and_reencode(&name, &decoder, p);
        }
    }
    let samples: Vec<&[u8]> = PROBES.iter().copied().chain([extra]).collect();
    let _ = sluice_codec::detect(set, &samples);
}

/// An in-memory registry: schema ids 1 (Avro), 2 (protobuf importing 3), 3 (protobuf), 4 (JSON
/// Schema), and whatever `extra` holds under id 5.
pub struct Registry {
    pub extra: Option<RegisteredSchema>,
}

pub const AVRO_RECORD: &str = r#"{"type":"record","name":"N","namespace":"fz","fields":[
  {"name":"s","type":"string"},{"name":"l","type":"long"},{"name":"d","type":"double"},
  {"name":"i","type":"int"},{"name":"f32","type":"float"},{"name":"b","type":"boolean"},
  {"name":"by","type":"bytes"},{"name":"n","type":"null"},
  {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
  {"name":"a","type":{"type":"array","items":"N"}},
  {"name":"m","type":{"type":"map","values":["null","bytes"]}},
  {"name":"f","type":{"type":"fixed","name":"F","size":3}},
  {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"u","type":{"type":"string","logicalType":"uuid"}},
  {"name":"next","type":["null","N"]}]}"#;

const PROTO_DEP: &str =
    "syntax = \"proto3\";\npackage fz.dep;\nmessage Dep { string s = 1; repeated int64 n = 2; }\n";
const PROTO_MAIN: &str = "syntax = \"proto3\";\npackage fz;\nimport \"fz/dep.proto\";\n\
    message A { fz.dep.Dep dep = 1; map<string, B> m = 2; oneof o { string t = 3; bytes b = 4; } }\n\
    message B { repeated B kids = 1; double d = 2; sint32 z = 3; }\n";
const JSON_SCHEMA: &str =
    r#"{"title":"Thing","type":"object","properties":{"a":{"type":"integer"}}}"#;

impl SchemaSource for Registry {
    fn schema(&self, r: SchemaRef) -> Result<RegisteredSchema, SourceError> {
        let plain = |kind, schema: &str| RegisteredSchema {
            kind,
            schema: schema.to_string(),
            references: Vec::new(),
        };
        match r {
            SchemaRef::Id(1) => Ok(plain(SchemaKind::Avro, AVRO_RECORD)),
            SchemaRef::Id(2) => Ok(RegisteredSchema {
                references: vec![NamedSchema {
                    name: "fz/dep.proto".into(),
                    schema: PROTO_DEP.into(),
                }],
                ..plain(SchemaKind::Protobuf, PROTO_MAIN)
            }),
            SchemaRef::Id(3) => Ok(plain(SchemaKind::Protobuf, PROTO_DEP)),
            SchemaRef::Id(4) => Ok(plain(SchemaKind::Json, JSON_SCHEMA)),
            SchemaRef::Id(5) => self.extra.clone().ok_or(SourceError::NotFound),
            _ => Err(SourceError::NotFound),
        }
    }
}
