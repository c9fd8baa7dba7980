//! The canonical proto3 JSON mapping for every field kind. Messages are built field by field
//! (not from JSON) and encoded to wire bytes, so decoding is checked against hand-written JSON.
//! The end-to-end suite also compares with Python's protobuf runtime on the same schema.

use prost::Message as _;
use prost_reflect::{DynamicMessage, MapKey, Value};
use sluice_codec::{compile_paths, SchemaSet};
use std::collections::HashMap;
use std::path::PathBuf;

fn kinds() -> SchemaSet {
    let root = PathBuf::from(manifest_dir()).join("../../tests/protos");
    let compiled = compile_paths(std::slice::from_ref(&root), &[]);
    assert!(compiled.errors.is_empty(), "{:?}", compiled.errors);
    SchemaSet::from_sets([compiled.set]).unwrap()
}

fn json(set: &SchemaSet, bytes: &[u8]) -> serde_json::Value {
    let text = set
        .codec("kinds.v1.Kinds")
        .unwrap()
        .decode_to_json(bytes)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn scalars_enums_nested_repeated_maps_and_oneofs() {
    let set = kinds();
    let codec = set.codec("Kinds").unwrap();
    let desc = codec_descriptor(&set, "kinds.v1.Kinds");
    let inner = codec_descriptor(&set, "kinds.v1.Inner");
    let mut m = DynamicMessage::new(desc);
    let inner_msg = |name: &str, values: Vec<i32>| {
        let mut i = DynamicMessage::new(inner.clone());
        i.set_field_by_name("name", Value::String(name.into()));
        i.set_field_by_name(
            "values",
            Value::List(values.into_iter().map(Value::I32).collect()),
        );
        Value::Message(i)
    };
    m.set_field_by_name("f_double", Value::F64(1.5));
    m.set_field_by_name("f_float", Value::F32(-2.25));
    m.set_field_by_name("f_int32", Value::I32(-7));
    m.set_field_by_name("f_int64", Value::I64(-9_007_199_254_740_993));
    m.set_field_by_name("f_uint32", Value::U32(4_000_000_000));
    m.set_field_by_name("f_uint64", Value::U64(u64::MAX));
    m.set_field_by_name("f_sint32", Value::I32(-3));
    m.set_field_by_name("f_sint64", Value::I64(-4));
    m.set_field_by_name("f_fixed32", Value::U32(5));
    m.set_field_by_name("f_fixed64", Value::U64(6));
    m.set_field_by_name("f_sfixed32", Value::I32(-8));
    m.set_field_by_name("f_sfixed64", Value::I64(-9));
    m.set_field_by_name("f_bool", Value::Bool(true));
    m.set_field_by_name("f_string", Value::String("héllo \"q\"".into()));
    m.set_field_by_name("f_bytes", Value::Bytes(vec![0, 255, b'b'].into()));
    m.set_field_by_name("f_enum", Value::EnumNumber(2));
    m.set_field_by_name("f_message", inner_msg("in", vec![1, 2]));
    m.set_field_by_name(
        "r_string",
        Value::List(vec![Value::String("a".into()), Value::String("b".into())]),
    );
    m.set_field_by_name(
        "r_message",
        Value::List(vec![inner_msg("x", vec![]), inner_msg("", vec![])]),
    );
    m.set_field_by_name(
        "r_enum",
        Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(7)]),
    );
    m.set_field_by_name(
        "m_int64",
        Value::Map(HashMap::from([(
            MapKey::String("big".into()),
            Value::I64(1 << 40),
        )])),
    );
    m.set_field_by_name(
        "m_message",
        Value::Map(HashMap::from([(
            MapKey::I32(3),
            inner_msg("three", vec![]),
        )])),
    );
    m.set_field_by_name("o_inner", inner_msg("chosen", vec![]));
    m.set_field_by_name("p_optional", Value::I32(0));
    m.set_field_by_name("default_string", Value::String(String::new()));
    m.set_field_by_name("default_int64", Value::I64(0));
    let bytes = m.encode_to_vec();

    assert_eq!(
        json(&set, &bytes),
        serde_json::json!({
            "fDouble": 1.5, "fFloat": -2.25, "fInt32": -7, "fInt64": "-9007199254740993",
            "fUint32": 4_000_000_000u32, "fUint64": "18446744073709551615", "fSint32": -3, "fSint64": "-4",
            "fFixed32": 5, "fFixed64": "6", "fSfixed32": -8, "fSfixed64": "-9", "fBool": true,
            "fString": "héllo \"q\"", "fBytes": "AP9i", "fEnum": "GREEN",
            "fMessage": {"name": "in", "values": [1, 2]},
            "rString": ["a", "b"], "rMessage": [{"name": "x"}, {}], "rEnum": ["RED", 7],
            "mInt64": {"big": "1099511627776"}, "mMessage": {"3": {"name": "three"}},
            "oInner": {"name": "chosen"}, "pOptional": 0
        })
    );
    assert_eq!(codec.type_name(), "kinds.v1.Kinds");
}

fn codec_descriptor(set: &SchemaSet, name: &str) -> prost_reflect::MessageDescriptor {
    let bytes = set.to_descriptor_set().encode_to_vec();
    let pool = prost_reflect::DescriptorPool::decode(bytes.as_slice()).unwrap();
    pool.get_message_by_name(name).unwrap()
}

#[test]
fn well_known_types_use_their_special_forms() {
    let set = kinds();
    let codec = set.codec("kinds.v1.Kinds").unwrap();
    // Input in accepted-but-not-canonical forms; output must be the canonical ones.
    let input = r#"{
        "wTimestamp": "2026-11-20T11:00:00.123+01:00", "wDuration": "1.5s",
        "wAny": {"@type": "type.googleapis.com/kinds.v1.Inner", "name": "packed"},
        "wStruct": {"a": 1, "b": [true, null, "s"], "c": {"d": 2.5}}, "wValue": "v",
        "wInt64": 123, "wString": "", "wBool": false, "wMask": "fString,fMessage.name", "wEmpty": {},
        "fInt64": 5, "fEnum": 1
    }"#;
    let bytes = codec.encode_from_json(input).unwrap();
    assert_eq!(
        json(&set, &bytes),
        serde_json::json!({
            "wTimestamp": "2026-11-20T10:00:00.123Z", "wDuration": "1.500s",
            "wAny": {"@type": "type.googleapis.com/kinds.v1.Inner", "name": "packed"},
            "wStruct": {"a": 1.0, "b": [true, null, "s"], "c": {"d": 2.5}}, "wValue": "v",
            "wInt64": "123", "wString": "", "wBool": false, "wMask": "fString,fMessage.name", "wEmpty": {},
            "fInt64": "5", "fEnum": "RED"
        })
    );
}

#[test]
fn empty_messages_and_bad_bytes() {
    let set = kinds();
    assert_eq!(json(&set, &[]), serde_json::json!({}));
    let codec = set.codec("kinds.v1.Kinds").unwrap();
    let err = codec
        .decode_to_json(&[0xff, 0xff, 0xff])
        .unwrap_err()
        .to_string();
    assert!(err.contains("kinds.v1.Kinds"), "{err}");
    assert!(codec
        .encode_from_json(r#"{"fInt32": "not a number"}"#)
        .is_err());
    assert!(set.codec("Nope").is_err());
}

#[test]
fn schema_errors_carry_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.proto"),
        "syntax = \"proto3\";\nmessage M {\n  int32 = 1;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.proto"),
        "syntax = \"proto3\";\nmessage G { string s = 1; }\n",
    )
    .unwrap();
    let c = compile_paths(
        &[dir.path().join("bad.proto"), dir.path().join("good.proto")],
        &[],
    );
    assert_eq!(c.errors.len(), 1);
    let e = &c.errors[0];
    assert_eq!((e.line, e.column), (Some(3), Some(9)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:9: ", dir.path().join("bad.proto").display())),
        "{e}"
    );
    let set = SchemaSet::from_sets([c.set]).unwrap();
    assert_eq!(
        set.message_types(),
        vec!["G".to_string()],
        "the good file still compiled"
    );
    let missing = compile_paths(&[dir.path().join("imports.proto")], &[]);
    assert_eq!(missing.errors.len(), 1);
}

/// Read when the test runs (cargo sets it), not baked in at build time: build artifacts are
/// shared between clones, so a compiled-in path can point at a clone that is gone.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("run under cargo test")
}

/// Doubles and floats print the shortest text that reads back as the same value, through the
/// decoder and through serde_json reading that text again (the lake, search and export do):
/// without serde_json's `float_roundtrip`, 6 of 60 sampled doubles came back one unit in the
/// last place off. Random bit patterns cover normal, subnormal and huge values; NaN and the
/// infinities print as the proto3 JSON mapping spells them.
#[test]
fn doubles_and_floats_round_trip_exactly() {
    let set = kinds();
    let desc = codec_descriptor(&set, "kinds.v1.Kinds");
    let codec = set.codec("kinds.v1.Kinds").unwrap();
    let number = |text: &str, field: &str| -> String {
        let at = text
            .find(&format!("\"{field}\":"))
            .map(|i| i + field.len() + 3);
        let rest = &text[at.unwrap_or_else(|| panic!("{field} in {text}"))..];
        rest[..rest.find([',', '}']).unwrap()].to_string()
    };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut doubles: Vec<f64> = (0..20_000).map(|_| f64::from_bits(next())).collect();
    doubles.extend([
        0.13718105611909515,
        5e-324,
        2.2250738585072014e-308,
        f64::MAX,
        -0.1,
        1e23,
    ]);
    doubles.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    for (i, d) in doubles.iter().enumerate() {
        let f = f32::from_bits(next() as u32);
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("f_double", Value::F64(*d));
        m.set_field_by_name("f_float", Value::F32(f));
        let text = codec.decode_to_json(&m.encode_to_vec()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (field, expect_bits, got) in [
            ("fDouble", d.to_bits(), number(&text, "fDouble")),
            ("fFloat", u64::from(f.to_bits()), number(&text, "fFloat")),
        ] {
            let is_double = field == "fDouble";
            let (nan, inf) = if is_double {
                (d.is_nan(), d.is_infinite())
            } else {
                (f.is_nan(), f.is_infinite())
            };
            if *d == 0.0 && is_double && !text.contains("fDouble") {
                continue; // proto3 leaves a default 0 out
            }
            if nan || inf {
                assert!(got.starts_with('"'), "{field} {got} ({i})");
                continue;
            }
            let bits = if is_double {
                got.parse::<f64>().unwrap().to_bits()
            } else {
                u64::from(got.parse::<f32>().unwrap().to_bits())
            };
            assert_eq!(bits, expect_bits, "{field} printed {got} ({i})");
            let read = value[field].as_f64().unwrap();
            let read_bits = if is_double {
                read.to_bits()
            } else {
                u64::from((read as f32).to_bits())
            };
            assert_eq!(
                read_bits, expect_bits,
                "{field} {got} read back as {read} ({i})"
            );
        }
    }
}

/// Google's well-known types are there without a file that imports them, so a topic can be
/// mapped to `google.protobuf.Struct` directly; a user's own `Timestamp` still wins a short name.
#[test]
fn well_known_types_are_mappable_without_a_file() {
    let empty = SchemaSet::from_sets([]).unwrap();
    let codec = empty.codec("google.protobuf.Struct").unwrap();
    let mut st = prost_types::Struct::default();
    st.fields.insert(
        "status".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue("FAILED".into())),
        },
    );
    assert_eq!(
        codec.decode_to_json(&st.encode_to_vec()).unwrap(),
        r#"{"status":"FAILED"}"#
    );
    assert!(empty.codec("google.protobuf.FileDescriptorSet").is_ok());
    assert!(
        empty.codec("Timestamp").is_ok(),
        "Google's when nobody else has one"
    );
    assert!(
        empty.message_types().is_empty(),
        "not listed as the user's types"
    );

    let mine = SchemaSet::from_proto_source(
        "mine.proto",
        "syntax = \"proto3\"; package my; message Timestamp { string at = 1; }",
    )
    .unwrap();
    assert_eq!(
        mine.codec("Timestamp").unwrap().type_name(),
        "my.Timestamp",
        "a short name means the user's type"
    );
}
