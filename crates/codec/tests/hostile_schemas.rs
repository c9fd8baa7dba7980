//! Schemas built to break things: descriptor sets with map entries prost-reflect would panic
//! on (refused when added or loaded; and if one reaches a decoder anyway, that decode fails
//! with an error instead of a panic), folder trees with symlink loops and absurd depth (the
//! walk ends, in bounded time), folders of descriptor sets, and errors shared by many files.

mod common;
use common::Rng;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions,
};
use sluice_codec::{collect_files, compile_paths, Decoder, ProtobufCodec, SchemaSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn field(name: &str, number: i32, ty: Type, label: Label, type_name: &str) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        r#type: Some(ty as i32),
        label: Some(label as i32),
        type_name: (!type_name.is_empty()).then(|| type_name.into()),
        json_name: Some(name.into()),
        ..Default::default()
    }
}

/// `bad.proto`: `message Holder { map<?, ?> tags = 1; }` whose entry message `TagsEntry`
/// has exactly `entry_fields`.
fn set_with_entry(entry_fields: Vec<FieldDescriptorProto>) -> FileDescriptorSet {
    let entry = DescriptorProto {
        name: Some("TagsEntry".into()),
        field: entry_fields,
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let holder = DescriptorProto {
        name: Some("Holder".into()),
        field: vec![field(
            "tags",
            1,
            Type::Message,
            Label::Repeated,
            ".p.Holder.TagsEntry",
        )],
        nested_type: vec![entry],
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("bad.proto".into()),
            package: Some("p".into()),
            syntax: Some("proto3".into()),
            message_type: vec![holder],
            ..Default::default()
        }],
    }
}

fn key(ty: Type) -> FieldDescriptorProto {
    field("key", 1, ty, Label::Optional, "")
}

fn value() -> FieldDescriptorProto {
    field("value", 2, Type::String, Label::Optional, "")
}

/// Each malformed entry, with words its error must contain.
fn malformed() -> Vec<(Vec<FieldDescriptorProto>, &'static str)> {
    vec![
        (vec![], "without a key field"),
        (vec![value()], "without a key field"),
        (vec![key(Type::String)], "without a value field"),
        (
            vec![key(Type::Double), value()],
            "TYPE_DOUBLE, which no map key",
        ),
        (
            vec![key(Type::Bytes), value()],
            "TYPE_BYTES, which no map key",
        ),
        (
            vec![
                field("key", 1, Type::Message, Label::Optional, ".p.Holder"),
                value(),
            ],
            "p.Holder, which no map key",
        ),
        (
            vec![field("key", 1, Type::String, Label::Repeated, ""), value()],
            "is repeated",
        ),
        (
            vec![
                key(Type::String),
                value(),
                field("x", 3, Type::Int32, Label::Optional, ""),
            ],
            "field x = 3",
        ),
    ]
}

#[test]
fn malformed_map_entries_are_refused_on_add_and_on_load() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (fields, words)) in malformed().into_iter().enumerate() {
        let set = set_with_entry(fields);
        let path = dir.path().join(format!("bad{i}.desc"));
        std::fs::write(&path, set.encode_to_vec()).unwrap();

        // Adding the file: refused, naming the file, the message and what is wrong.
        let c = compile_paths(std::slice::from_ref(&path), &[]);
        assert!(
            c.set.file.is_empty(),
            "case {i}: nothing is taken from a bad set"
        );
        let e = c
            .errors
            .first()
            .unwrap_or_else(|| panic!("case {i}: accepted"));
        let text = e.to_string();
        assert_eq!(e.file.as_deref(), Some(path.display().to_string().as_str()));
        assert!(text.contains("bad.proto"), "case {i}: {text}");
        assert!(text.contains("p.Holder.TagsEntry"), "case {i}: {text}");
        assert!(text.contains(words), "case {i}: {text}");

        // Loading a stored set (the store may hold one from before this check): refused too.
        let e = SchemaSet::from_sets([set]).unwrap_err().to_string();
        assert!(
            e.contains("p.Holder.TagsEntry") && e.contains(words),
            "case {i}: {e}"
        );
    }
    // The well-formed entry passes both.
    let good = set_with_entry(vec![key(Type::String), value()]);
    assert!(SchemaSet::from_sets([good]).is_ok());
}

#[test]
fn a_decode_prost_reflect_panics_on_is_an_error_of_that_event() {
    // A pool built straight from the malformed set, past every check, as a dependency bug
    // would present itself.
    let pool =
        prost_reflect::DescriptorPool::from_file_descriptor_set(set_with_entry(vec![value()]))
            .expect("prost-reflect itself accepts the malformed entry");
    let desc = pool.get_message_by_name("p.Holder").unwrap();
    let codec = ProtobufCodec::new(desc);
    // tags = {"": ...}: one map entry on the wire.
    let payload = b"\x0a\x04\x12\x02hi";
    let e = codec.decode_to_json(payload).unwrap_err().to_string();
    assert!(e.contains("decoder bug"), "{e}");
    assert!(e.contains("p.Holder"), "{e}");
    let e = codec
        .encode_from_json(r#"{"tags": {"a": "b"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("decoder bug"), "{e}");

    let d = Decoder::protobuf(codec).decode(payload, true);
    // As for any payload the mapped type fails on: the error recorded, the bytes still shown.
    assert_eq!(d.schema.as_deref(), Some("p.Holder"));
    assert!(
        d.error.as_deref().unwrap_or("").contains("decoder bug"),
        "{d:?}"
    );
    // The decoder still works for the next event.
    assert!(Decoder::sniffing()
        .decode(b"{\"a\":1}", true)
        .json
        .is_some());
}

/// Runs `f` on another thread and fails the test if it takes longer than `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the folder walk did not finish in time")
}

#[cfg(unix)]
#[test]
fn symlink_loops_end_the_walk_and_deep_trees_are_an_error() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("schemas");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(
        root.join("a/b/m.proto"),
        "syntax = \"proto3\"; message M {}",
    )
    .unwrap();
    symlink(&root, root.join("a/b/up")).unwrap(); // back to the top
    symlink(root.join("a"), root.join("a/b/sideways")).unwrap();
    symlink(".", root.join("self")).unwrap();
    let walked = root.clone();
    let files = within(20, move || collect_files(&walked, &["proto"])).unwrap();
    assert_eq!(
        files,
        vec![root.join("a/b/m.proto")],
        "each real folder once"
    );
    let compiled = within(20, {
        let root = root.clone();
        move || compile_paths(&[root], &[])
    });
    assert!(compiled.errors.is_empty(), "{:?}", compiled.errors);
    assert_eq!(compiled.set.file.len(), 1);

    // Deeper than any schema tree: an error naming the folder, not a stack overflow.
    let mut deep = dir.path().join("deep");
    for i in 0..(sluice_codec::MAX_FOLDER_DEPTH + 2) {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let top = dir.path().join("deep");
    let e = collect_files(&top, &["proto"]).unwrap_err().to_string();
    assert!(e.contains("nest more than") && e.contains("deep"), "{e}");
}

fn compile_source(dir: &Path, name: &str, source: &str) -> FileDescriptorSet {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(name), source).unwrap();
    let c = compile_paths(&[src.join(name)], &[]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c.set
}

#[test]
fn a_folder_of_descriptor_sets_and_proto_files_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let a = compile_source(
        dir.path(),
        "a.proto",
        "syntax = \"proto3\"; package a; message A { map<string, int32> m = 1; }",
    );
    let b = compile_source(
        dir.path(),
        "b.proto",
        "syntax = \"proto3\"; package b; message B {}",
    );
    // What a drop of files makes: a folder holding them.
    let dropped: PathBuf = dir.path().join("dropped");
    std::fs::create_dir_all(dropped.join("more")).unwrap();
    std::fs::write(dropped.join("a.desc"), a.encode_to_vec()).unwrap();
    std::fs::write(dropped.join("more/b.binpb"), b.encode_to_vec()).unwrap();
    std::fs::write(
        dropped.join("c.proto"),
        "syntax = \"proto3\"; package c; message C {}",
    )
    .unwrap();
    let c = compile_paths(std::slice::from_ref(&dropped), &[]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let set = SchemaSet::from_sets([c.set]).unwrap();
    assert_eq!(set.message_types(), vec!["a.A", "b.B", "c.C"]);

    // A folder with only descriptor sets: the same.
    std::fs::remove_file(dropped.join("c.proto")).unwrap();
    let c = compile_paths(std::slice::from_ref(&dropped), &[]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(
        SchemaSet::from_sets([c.set]).unwrap().message_types(),
        vec!["a.A", "b.B"]
    );
}

#[test]
fn an_error_many_files_share_is_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("broken.proto"),
        "syntax = \"proto3\";\nmessage Broken { int32 = 1; }\n",
    )
    .unwrap();
    for i in 0..9 {
        std::fs::write(
            root.join(format!("user{i}.proto")),
            format!("syntax = \"proto3\";\nimport \"broken.proto\";\nmessage U{i} {{ Broken b = 1; }}\n"),
        )
        .unwrap();
    }
    let c = compile_paths(&[root], &[]);
    let texts: Vec<String> = c.errors.iter().map(|e| e.to_string()).collect();
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(texts.len(), unique.len(), "{texts:#?}");
    assert!(
        texts.iter().any(|t| t.contains("broken.proto:2:")),
        "{texts:#?}"
    );
}

/// Calls `f` on the `k`th message of the set (depth first, nested ones too); returns how many
/// there are.
fn with_message(
    set: &mut FileDescriptorSet,
    k: usize,
    f: &mut dyn FnMut(&mut DescriptorProto),
) -> usize {
    fn walk(
        ms: &mut [DescriptorProto],
        k: usize,
        seen: &mut usize,
        f: &mut dyn FnMut(&mut DescriptorProto),
    ) {
        for m in ms {
            if *seen == k {
                f(m);
            }
            *seen += 1;
            walk(&mut m.nested_type, k, seen, f);
        }
    }
    let mut seen = 0;
    for file in &mut set.file {
        walk(&mut file.message_type, k, &mut seen, f);
    }
    seen
}

/// One structural change of the kind a hand-built or corrupted set has.
fn mutate_message(rng: &mut Rng, names: &[String], m: &mut DescriptorProto) -> String {
    let n = m.field.len();
    let i = rng.below(n);
    match rng.below(9) {
        0 => {
            let o = m.options.get_or_insert_with(Default::default);
            let on = !o.map_entry();
            o.map_entry = Some(on);
            format!("{}: map_entry {on}", m.name())
        }
        1 if n > 0 => {
            let gone = m.field.remove(i);
            format!("{}: field {} removed", m.name(), gone.name())
        }
        2 if n > 0 => {
            m.field[i].r#type = Some(1 + rng.below(18) as i32);
            format!(
                "{}.{}: type {:?}",
                m.name(),
                m.field[i].name(),
                m.field[i].r#type
            )
        }
        3 if n > 0 => {
            m.field[i].label = Some(1 + rng.below(3) as i32);
            format!(
                "{}.{}: label {:?}",
                m.name(),
                m.field[i].name(),
                m.field[i].label
            )
        }
        4 if n > 0 => {
            let t = &names[rng.below(names.len())];
            m.field[i].type_name = Some(t.clone());
            m.field[i].r#type = Some(if rng.below(2) == 0 {
                11
            } else {
                1 + rng.below(18) as i32
            });
            format!(
                "{}.{}: type_name {t} type {:?}",
                m.name(),
                m.field[i].name(),
                m.field[i].r#type
            )
        }
        5 if n > 0 => {
            m.field[i].number = Some(1 + rng.below(4) as i32);
            format!(
                "{}.{}: number {:?}",
                m.name(),
                m.field[i].name(),
                m.field[i].number
            )
        }
        6 if n > 0 => {
            let o = m.field[i].options.get_or_insert_with(Default::default);
            o.packed = Some(rng.below(2) == 0);
            m.field[i].proto3_optional = Some(rng.below(2) == 0);
            format!("{}.{}: packed/optional", m.name(), m.field[i].name())
        }
        7 if n > 0 => {
            const DEFAULTS: &[&str] = &["0", "x", "-1", "1e400", "true", "RED", "\\x", ""];
            let d = DEFAULTS[rng.below(DEFAULTS.len())];
            m.field[i].default_value = Some(d.into());
            format!("{}.{}: default {d:?}", m.name(), m.field[i].name())
        }
        _ if n > 0 => {
            let mut f = m.field[i].clone();
            f.number = Some(1 + rng.below(40) as i32);
            f.name = Some(format!("{}_copy", f.name()));
            f.json_name = Some(format!("{}Copy", f.name()));
            m.field.push(f);
            format!("{}: field copied", m.name())
        }
        _ => "no change".into(),
    }
}

/// Random wire-format bytes: fields 1..40 of every wire type, nested a little.
fn wire(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(6) {
        let number = 1 + rng.below(40) as u64;
        let (wt, body): (u64, Vec<u8>) = match rng.below(4) {
            0 => (0, vec![(rng.next() & 0x7f) as u8]),
            1 => (1, (0..8).map(|_| rng.next() as u8).collect()),
            2 => (5, (0..4).map(|_| rng.next() as u8).collect()),
            _ => {
                let inner = if depth < 3 {
                    wire(rng, depth + 1)
                } else {
                    b"ab".to_vec()
                };
                let mut b = vec![inner.len() as u8];
                b.extend(inner);
                (2, b)
            }
        };
        let mut key = (number << 3) | wt;
        while key >= 0x80 {
            out.push((key as u8) | 0x80);
            key >>= 7;
        }
        out.push(key as u8);
        out.extend(body);
    }
    out
}

/// Descriptor sets mutated the way hand-built ones go wrong, then every type of each accepted
/// set decodes random payloads and encodes JSON back: no panic may get past the checks (a
/// "decoder bug" error means the guard caught one the checks should have refused). 2,000 sets
/// in the normal suite; SLUICE_FUZZ_ITERATIONS for more.
#[test]
fn mutated_descriptor_sets_are_refused_or_decode_without_a_panic() {
    let n: u64 = std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(|n: u64| n / 50)
        .unwrap_or(2_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/protos");
    let seed = compile_paths(std::slice::from_ref(&root), &[]);
    assert!(seed.errors.is_empty(), "{:?}", seed.errors);
    let seed = seed.set;
    let names: Vec<String> = SchemaSet::from_sets([seed.clone()])
        .unwrap()
        .message_types()
        .into_iter()
        .map(|t| format!(".{t}"))
        .chain([
            ".kinds.v1.Color".into(),
            ".google.protobuf.Timestamp".into(),
        ])
        .collect();
    let count = with_message(&mut seed.clone(), usize::MAX, &mut |_| {});
    let mut rng = Rng(0xde5c_5eed_0123_4567);
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..n {
        let mut set = seed.clone();
        let mut what = Vec::new();
        for _ in 0..=rng.below(3) {
            let k = rng.below(count);
            with_message(&mut set, k, &mut |m| {
                what.push(mutate_message(&mut rng, &names, m))
            });
        }
        let built = std::panic::catch_unwind(|| SchemaSet::from_sets([set.clone()]));
        let schemas = match built {
            Err(_) => panic!("iteration {i}: building the pool panicked past the guard: {what:?}"),
            Ok(Err(_)) => {
                refused += 1;
                continue;
            }
            Ok(Ok(s)) => s,
        };
        accepted += 1;
        for t in schemas.message_types() {
            let Ok(codec) = schemas.codec(&t) else {
                continue;
            };
            for _ in 0..4 {
                let payload = wire(&mut rng, 0);
                let out = codec.decode_to_json(&payload);
                if let Err(e) = &out {
                    let e = e.to_string();
                    assert!(
                        !e.contains("decoder bug"),
                        "iteration {i}, {t}: {e}; after {what:?}"
                    );
                }
                let json = out.unwrap_or_else(|_| "{}".into());
                if let Err(e) = codec.encode_from_json(&json) {
                    let e = e.to_string();
                    assert!(
                        !e.contains("decoder bug"),
                        "iteration {i}, {t} encoding {json}: {e}; after {what:?}"
                    );
                }
            }
        }
    }
    // Both sides must be reached, or the loop tests nothing.
    assert!(
        accepted > n / 10 && refused > n / 20,
        "{accepted} accepted, {refused} refused of {n}"
    );
}
