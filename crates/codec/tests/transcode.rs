//! The transcoder (wire bytes straight to JSON) against the general path it replaces,
//! `DynamicMessage::decode` + `serde_json::to_string`: the same text for every payload, or an
//! error from both. Random messages of every type of the test, example and real-world schemas
//! (OTLP, googleapis), hand-made wire shapes (unknown fields, repeats, merges, packing), a
//! mutation loop, and nesting around the recursion limit.
//!
//! prost-reflect keeps maps in a `HashMap`, so its key order differs from run to run; where a
//! decoded message holds a map of two or more entries the texts are compared as parsed JSON,
//! everywhere else byte for byte. SLUICE_FUZZ_ITERATIONS sets the mutation loop's length
//! (`SLUICE_FUZZ_ITERATIONS=500000 cargo test --release -p sluice-codec --test transcode`).

mod common;
use common::Rng;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use sluice_codec::{compile_paths, ProtobufCodec, SchemaSet};
use std::path::PathBuf;

#[path = "transcode/gen.rs"]
mod gen;
use gen::Gen;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pool_of(paths: &[PathBuf]) -> DescriptorPool {
    let compiled = compile_paths(paths, &[]);
    assert!(compiled.errors.is_empty(), "{:?}", compiled.errors);
    let set = SchemaSet::from_sets([compiled.set]).unwrap();
    DescriptorPool::decode(set.to_descriptor_set().encode_to_vec().as_slice()).unwrap()
}

const EDGE2: &str = r#"
syntax = "proto2";
package edge.v2;
enum E { E_ONE = 1; E_TWO = 2; E_NEG = -3; }
message P2 {
  optional int32 a = 1 [default = 7];
  optional string s = 2 [default = "x"];
  required int64 r = 3;
  repeated int32 unpacked = 4;
  repeated int32 packed = 5 [packed = true];
  optional E e = 6;
  optional P2 child = 7;
  map<int64, string> m = 8;
  oneof o { int32 oa = 9; string os = 10; P2 om = 11; }
  optional float f = 12;
  repeated E re = 13;
  optional bytes b = 14 [default = "\001"];
}
message WithGroup { optional group G = 1 { optional int32 x = 2; } optional int32 y = 3; }
message Extendable { optional int32 a = 1; extensions 100 to 200; }
extend Extendable { optional int32 ext = 100; }
"#;

const EDGE3: &str = r#"
syntax = "proto3";
package edge.v3;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/empty.proto";
enum Color { option allow_alias = true; C0 = 0; C1 = 1; ALIAS1 = 1; CNEG = -5; }
message Inner { string name = 1; repeated int32 values = 2; }
message Node {
  Node child = 1;
  repeated Node kids = 2;
  map<string, Node> m = 3;
  google.protobuf.Struct s = 4;
  google.protobuf.Value v = 5;
  int32 x = 6;
  google.protobuf.ListValue l = 7;
  google.protobuf.Any any = 8;
}
message Maps {
  map<int32, string> i32 = 1;
  map<int64, int32> i64 = 2;
  map<uint32, bool> u32 = 3;
  map<uint64, bytes> u64 = 4;
  map<sint32, double> s32 = 5;
  map<sint64, float> s64 = 6;
  map<fixed32, Color> f32 = 7;
  map<fixed64, Inner> f64 = 8;
  map<sfixed32, google.protobuf.Timestamp> sf32 = 9;
  map<sfixed64, google.protobuf.Value> sf64 = 10;
  map<bool, string> b = 11;
  map<string, google.protobuf.NullValue> n = 12;
  map<string, google.protobuf.Any> a = 13;
  map<string, google.protobuf.Empty> e = 14;
}
message Packs {
  repeated int32 p_int32 = 1;
  repeated int32 u_int32 = 2 [packed = false];
  repeated double p_double = 3;
  repeated float u_float = 4 [packed = false];
  repeated bool p_bool = 5;
  repeated sint64 p_sint64 = 6;
  repeated fixed32 p_fixed32 = 7;
  repeated sfixed64 p_sfixed64 = 8;
  repeated Color p_enum = 9;
  repeated uint64 p_uint64 = 10;
  google.protobuf.NullValue null = 11;
  repeated google.protobuf.NullValue nulls = 12;
  oneof a { int32 a1 = 13; string a2 = 14; Inner a3 = 15; google.protobuf.Timestamp a4 = 16; }
  oneof b { Inner b1 = 17; Inner b2 = 18; }
  optional double od = 19;
  optional Color oc = 20;
  string json_named = 21 [json_name = "weird-Name"];
  int32 far = 536870911;
  int32 mid = 5000;
  repeated google.protobuf.Duration durations = 22;
  google.protobuf.FieldMask mask = 23;
  repeated google.protobuf.DoubleValue doubles = 24;
  google.protobuf.FloatValue float_value = 25;
  google.protobuf.BytesValue bytes_value = 26;
  google.protobuf.UInt64Value u64_value = 27;
  google.protobuf.UInt32Value u32_value = 28;
  google.protobuf.Int32Value i32_value = 29;
  repeated bytes r_bytes = 30;
  repeated sfixed32 p_sfixed32 = 31;
  repeated fixed64 p_fixed64 = 32;
  repeated sint32 p_sint32 = 33;
  repeated uint32 p_uint32 = 34;
  repeated int64 p_int64 = 35;
}
"#;

fn edge_pool() -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edge2.proto"), EDGE2).unwrap();
    std::fs::write(dir.path().join("edge3.proto"), EDGE3).unwrap();
    pool_of(&[dir.path().to_path_buf()])
}

fn pools() -> Vec<(&'static str, DescriptorPool)> {
    let rw = std::fs::read(root().join("tests/protos/realworld/realworld.binpb")).unwrap();
    let rw = prost_types::FileDescriptorSet::decode(rw.as_slice()).unwrap();
    vec![
        ("kinds", pool_of(&[root().join("tests/protos/kinds")])),
        ("shop", pool_of(&[root().join("protos")])),
        ("edge", edge_pool()),
        (
            "realworld",
            DescriptorPool::from_file_descriptor_set(rw).unwrap(),
        ),
    ]
}

fn types(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages().filter(|m| !m.is_map_entry()).collect()
}

fn reference(desc: &MessageDescriptor, bytes: &[u8]) -> Option<String> {
    std::panic::catch_unwind(|| {
        let m = DynamicMessage::decode(desc.clone(), bytes).ok()?;
        serde_json::to_string(&m).ok()
    })
    .ok()
    .flatten()
}

/// Same text, or both an error. Returns whether it decoded.
fn check(codec: &ProtobufCodec, desc: &MessageDescriptor, bytes: &[u8]) -> bool {
    let want = reference(desc, bytes);
    let got = codec.decode_to_json(bytes);
    match (&want, &got) {
        (None, Err(_)) => false,
        (Some(w), Ok(g)) => {
            if w != g {
                let parsed = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
                let m = DynamicMessage::decode(desc.clone(), bytes).unwrap();
                assert!(
                    has_big_map(&m) && parsed(w) == parsed(g),
                    "{}: texts differ\n  general:    {w}\n  transcoder: {g}\n  bytes: {bytes:02x?}",
                    desc.full_name()
                );
            }
            true
        }
        _ => panic!(
            "{}: general path {:?}, transcoder {:?}\n  bytes: {bytes:02x?}",
            desc.full_name(),
            want,
            got.map_err(|e| e.to_string())
        ),
    }
}

/// Whether some map (also inside an `Any`) has two entries or more: only its order may differ.
fn has_big_map(m: &DynamicMessage) -> bool {
    if m.descriptor().full_name() == "google.protobuf.Any" {
        let any: prost_types::Any = m.transcode_to().unwrap();
        let name = any.type_url.rsplit_once('/').map_or("", |(_, n)| n);
        return m
            .descriptor()
            .parent_pool()
            .get_message_by_name(name)
            .and_then(|d| DynamicMessage::decode(d, any.value.as_slice()).ok())
            .is_some_and(|p| {
                // A leading dot names the type but prints it field by field: a Struct's
                // `fields` is then an ordinary map.
                let plain_struct = name.starts_with('.')
                    && p.descriptor().full_name() == "google.protobuf.Struct"
                    && p.get_field_by_number(1)
                        .and_then(|v| v.as_map().map(|m| m.len() > 1))
                        == Some(true);
                plain_struct || has_big_map(&p)
            });
    }
    // A Struct prints its keys sorted on both paths: its order must match too.
    let sorted = m.descriptor().full_name() == "google.protobuf.Struct";
    let value = |v: &Value| -> bool {
        fn inner(v: &Value, sorted: bool) -> bool {
            match v {
                Value::Message(m) => has_big_map(m),
                Value::List(l) => l.iter().any(|v| inner(v, false)),
                Value::Map(h) => (!sorted && h.len() > 1) || h.values().any(|v| inner(v, false)),
                _ => false,
            }
        }
        inner(v, sorted)
    };
    m.fields().any(|(_, v)| value(v))
}

fn iterations(default: u64) -> u64 {
    std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_messages_of_every_type_print_as_the_general_path() {
    let mut rng_seed = 0x7a5c_0de5_eed0_0001u64;
    for (name, pool) in pools() {
        let all = types(&pool);
        // SLUICE_FUZZ_ITERATIONS scales this test too (the default is 6,000).
        let scale = iterations(6_000).max(6_000) / 6_000;
        let per_type = scale * if name == "realworld" { 40 } else { 150 };
        let (mut ok, mut total) = (0, 0);
        for desc in &all {
            let codec = ProtobufCodec::new(desc.clone());
            rng_seed = rng_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut g = Gen::new(Rng(rng_seed), &pool);
            for i in 0..per_type {
                g.big_maps = i % 2 == 0;
                let m = g.message(desc, 0);
                let mut bytes = m.encode_to_vec();
                g.reshape(desc, &mut bytes);
                total += 1;
                ok += check(&codec, desc, &bytes) as u32;
            }
        }
        // Most random messages must decode, or the comparison only covers errors.
        assert!(ok * 10 > total * 7, "{name}: {ok} of {total} decoded");
    }
}

#[test]
fn otlp_traces_metrics_and_logs_print_as_the_general_path() {
    let (_, pool) = pools().pop().unwrap();
    for name in [
        "opentelemetry.proto.trace.v1.TracesData",
        "opentelemetry.proto.metrics.v1.MetricsData",
        "opentelemetry.proto.logs.v1.LogsData",
        "google.rpc.Status",
        "google.api.Distribution",
    ] {
        let desc = pool.get_message_by_name(name).unwrap();
        let codec = ProtobufCodec::new(desc.clone());
        let mut g = Gen::new(Rng(0x07e1_e3e7_0000_0001), &pool);
        g.max_depth = 7;
        let mut ok = 0;
        let n = 150 * (iterations(6_000).max(6_000) / 6_000) as u32;
        for i in 0..n {
            g.big_maps = i % 2 == 0;
            let bytes = g.message(&desc, 0).encode_to_vec();
            ok += check(&codec, &desc, &bytes) as u32;
        }
        assert!(ok * 3 > n * 2, "{name}: {ok} of {n} decoded");
    }
}

/// Encoded field by field: (tag, wire type, payload bytes).
fn field(tag: u32, wt: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wt)), &mut v);
    if wt == 2 {
        prost::encoding::encode_varint(payload.len() as u64, &mut v);
    }
    v.extend_from_slice(payload);
    v
}

fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    prost::encoding::encode_varint(v, &mut b);
    b
}

fn json_of(codec: &ProtobufCodec, desc: &MessageDescriptor, bytes: &[u8]) -> String {
    assert!(check(codec, desc, bytes), "{:02x?} does not decode", bytes);
    codec.decode_to_json(bytes).unwrap()
}

#[test]
fn unknown_fields_repeats_merges_and_packing() {
    let pool = edge_pool();
    let packs = pool.get_message_by_name("edge.v3.Packs").unwrap();
    let codec = ProtobufCodec::new(packs.clone());
    let inner =
        |name: &str, values: &[u8]| [field(1, 2, name.as_bytes()), field(2, 2, values)].concat();
    // Unknown fields of every wire type, groups nested in groups; then a known field.
    let group = [
        field(90, 3, &[]),
        field(91, 0, &varint(5)),
        field(92, 3, &[]),
        field(93, 5, &[1, 2, 3, 4]),
        field(92, 4, &[]),
        field(90, 4, &[]),
    ]
    .concat();
    let bytes = [
        field(99, 0, &varint(u64::MAX)),
        field(98, 1, &[0; 8]),
        field(97, 2, b"skipped"),
        field(96, 5, &[0; 4]),
        group,
        field(1, 2, &[1, 2, 0x96, 0x01]),
    ]
    .concat();
    assert_eq!(json_of(&codec, &packs, &bytes), r#"{"pInt32":[1,2,150]}"#);
    // Packed and unpacked runs of one field mix, in wire order; empty packed runs add nothing.
    let bytes = [
        field(1, 0, &varint(7)),
        field(1, 2, &[8, 9]),
        field(1, 2, &[]),
        field(2, 2, &[3, 4]),
        field(2, 0, &varint(5)),
        field(4, 5, &1.5f32.to_le_bytes()),
        field(4, 2, &[0, 0, 0xc0, 0x7f]),
        field(3, 2, &[]),
    ]
    .concat();
    assert_eq!(
        json_of(&codec, &packs, &bytes),
        r#"{"pInt32":[7,8,9],"uInt32":[3,4,5],"uFloat":[1.5,"NaN"]}"#
    );
    // A message field twice merges; scalars take the last; out of order prints in order.
    let bytes = [
        field(21, 2, b"first"),
        field(17, 2, &inner("a", &[1])),
        field(5000, 0, &varint(3)),
        field(17, 2, &inner("b", &[2])),
        field(21, 2, b"last"),
        field(5000, 0, &varint(0)),
    ]
    .concat();
    assert_eq!(
        json_of(&codec, &packs, &bytes),
        r#"{"b1":{"name":"b","values":[1,2]},"weird-Name":"last"}"#
    );
    // A oneof keeps what came after its last switch of member; the rest is still decoded.
    let bytes = [
        field(15, 2, &inner("x", &[])),
        field(14, 2, b"text"),
        field(15, 2, &inner("", &[5])),
        field(15, 2, &inner("y", &[])),
    ]
    .concat();
    assert_eq!(
        json_of(&codec, &packs, &bytes),
        r#"{"a3":{"name":"y","values":[5]}}"#
    );
    let bad_cleared = [field(15, 2, &[0xff]), field(13, 0, &varint(1))].concat();
    assert!(!check(&codec, &packs, &bad_cleared));
    // Errors: bad UTF-8, a wire type that does not fit, a cut, a stray end-group, field 0.
    for bad in [
        field(21, 2, &[0xc3, 0x28]),
        field(21, 0, &varint(1)),
        field(13, 2, &[1]),
        field(1, 2, &[0x80]),
        field(21, 2, b"cut")[..4].to_vec(),
        field(5, 4, &[]),
        vec![0x00],
        vec![0x0f],
        field(3, 2, &[0; 7]),
        [0xff; 11].to_vec(),
    ] {
        assert!(!check(&codec, &packs, &bad), "{bad:02x?}");
    }
}

#[test]
fn map_entries_default_replace_and_print_sorted() {
    let pool = edge_pool();
    let maps = pool.get_message_by_name("edge.v3.Maps").unwrap();
    let codec = ProtobufCodec::new(maps.clone());
    let entry = |k: &[u8], v: &[u8]| [k, v].concat();
    let bytes = [
        field(11, 2, &entry(&field(1, 0, &[1]), &field(2, 2, b"t"))),
        field(11, 2, &[]),
        field(1, 2, &entry(&field(1, 0, &varint(u64::MAX)), &[])),
        field(1, 2, &entry(&field(1, 0, &varint(3)), &field(2, 2, b"3"))),
        field(
            1,
            2,
            &entry(&field(2, 2, b"later"), &field(1, 0, &varint(3))),
        ),
        field(7, 2, &field(9, 0, &[1])),
        field(8, 2, &entry(&field(1, 1, &[0; 8]), &[])),
        field(12, 2, &field(1, 2, b"k")),
        field(14, 2, &[]),
    ]
    .concat();
    // One entry per map here, so the general path's order cannot differ.
    let single = |b: &[u8]| json_of(&codec, &maps, b);
    assert!(single(&bytes).starts_with(r#"{"i32":{"-1":"","3":"later"}"#));
    assert_eq!(
        single(&bytes),
        r#"{"i32":{"-1":"","3":"later"},"f32":{"0":"C0"},"f64":{"0":{}},"b":{"false":"","true":"t"},"n":{"k":null},"e":{"":{}}}"#
    );
    // A replaced entry's value was still decoded: a bad one fails the payload.
    let replaced = [
        field(8, 2, &entry(&field(1, 1, &[0; 8]), &field(2, 2, &[0xff]))),
        field(8, 2, &field(1, 1, &[0; 8])),
    ]
    .concat();
    assert!(!check(&codec, &maps, &replaced));
    // A message value given twice merges, also with an unknown group between the two.
    let group = [varint(3 << 3 | 3), field(1, 0, &[1]), varint(3 << 3 | 4)].concat();
    let twice = field(
        8,
        2,
        &[
            field(1, 1, &[0; 8]),
            field(2, 2, &[]),
            group,
            field(2, 2, &field(2, 0, &[5])),
        ]
        .concat(),
    );
    assert_eq!(single(&twice), r#"{"f64":{"0":{"values":[5]}}}"#);
    // A map field with another wire type is still read as a length (as prost-reflect does).
    let odd = [field(1, 0, &[]), varint(2), field(1, 0, &varint(4))].concat();
    assert_eq!(single(&odd), r#"{"i32":{"4":""}}"#);
}

#[test]
fn types_with_groups_or_extensions_decode_on_the_general_path() {
    let pool = edge_pool();
    for (name, bytes) in [
        (
            "edge.v2.WithGroup",
            [
                field(1, 3, &[]),
                field(2, 0, &[5]),
                field(1, 4, &[]),
                field(3, 0, &[1]),
            ]
            .concat(),
        ),
        (
            "edge.v2.Extendable",
            [field(1, 0, &[1]), field(100, 0, &[2])].concat(),
        ),
    ] {
        let desc = pool.get_message_by_name(name).unwrap();
        let codec = ProtobufCodec::new(desc.clone());
        assert!(check(&codec, &desc, &bytes), "{name}");
    }
}

/// A chain of `depth` messages through `link` (a field of `Node`, or a path into a
/// well-known type), innermost holding `x = 1`.
fn chain(pool: &DescriptorPool, link: &str, depth: usize) -> Vec<u8> {
    let x = field(6, 0, &[1]);
    let mut b = x.clone();
    for _ in 0..depth {
        b = match link {
            "child" => field(1, 2, &b),
            "kids" => field(2, 2, &b),
            "map" => field(3, 2, &[field(1, 2, b"k"), field(2, 2, &b)].concat()),
            // Node.s -> Struct{fields: {"k": Value{struct_value: ...}}} alternating.
            "struct" => field(
                1,
                2,
                &[field(1, 2, b"k"), field(2, 2, &field(5, 2, &b))].concat(),
            ),
            "list" => field(1, 2, &field(6, 2, &b)),
            "any" => {
                let url = b"type.googleapis.com/edge.v3.Node";
                field(8, 2, &[field(1, 2, url), field(2, 2, &b)].concat())
            }
            "group" => [field(50, 3, &[]), b, field(50, 4, &[])].concat(),
            _ => unreachable!(),
        };
    }
    let _ = pool;
    match link {
        "struct" => field(4, 2, &b),
        "list" => field(7, 2, &b),
        _ => b,
    }
}

#[test]
fn nesting_around_the_recursion_limit_fails_where_the_general_path_fails() {
    let pool = edge_pool();
    let node = pool.get_message_by_name("edge.v3.Node").unwrap();
    let codec = ProtobufCodec::new(node.clone());
    for link in ["child", "kids", "map", "struct", "list", "any", "group"] {
        let mut outcomes = Vec::new();
        for depth in (0..=8).chain(25..=40).chain(90..=110) {
            outcomes.push(check(&codec, &node, &chain(&pool, link, depth)));
        }
        // Each chain must reach both sides of some limit, or it tests nothing.
        let deep_fails = link == "any" || outcomes.iter().any(|ok| !ok);
        assert!(outcomes[0] && deep_fails, "{link}: {outcomes:?}");
    }
    // The well-known types as roots, nested too deep for the re-decode only.
    let value = pool.get_message_by_name("google.protobuf.Value").unwrap();
    let codec = ProtobufCodec::new(value.clone());
    for depth in 25..=60 {
        let mut b = field(3, 2, b"leaf");
        for _ in 0..depth {
            b = field(6, 2, &field(1, 2, &b));
        }
        check(&codec, &value, &b);
    }
}

#[test]
fn mutated_payloads_print_as_the_general_path_or_fail_with_it() {
    let n = iterations(6_000);
    let pools = pools();
    let mut rng = Rng(0x00fa_cade_5eed);
    let mut cases = Vec::new();
    for (name, pool) in &pools {
        let all: Vec<_> = types(pool)
            .into_iter()
            .filter(|d| *name != "realworld" || d.full_name().starts_with("opentelemetry"))
            .collect();
        let mut g = Gen::new(Rng(rng.next()), pool);
        for desc in all {
            let seeds: Vec<Vec<u8>> = (0..4)
                .map(|_| g.message(&desc, 0).encode_to_vec())
                .collect();
            cases.push((ProtobufCodec::new(desc.clone()), desc, seeds));
        }
    }
    let mut decoded = 0u64;
    for i in 0..n {
        let (codec, desc, seeds) = &cases[rng.below(cases.len())];
        let input = common::mutate(&mut rng, seeds);
        let r = std::panic::catch_unwind(|| check(codec, desc, &input));
        decoded += r.unwrap_or_else(|_| panic!("iteration {i}: {}", desc.full_name())) as u64;
    }
    assert!(decoded > n / 10 && decoded < n, "{decoded} of {n} decoded");
}
