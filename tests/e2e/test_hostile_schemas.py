"""Hostile schemas against the real binary: a descriptor set with a malformed map entry (which
prost-reflect would panic on) is refused with a clear error and no panic; folder trees with
symlink loops are walked in bounded time; descriptor sets dropped on `sluice serve` (alone or
in folders) are added like the CLI adds them; an error many files share is listed once."""

import base64
import json
import time

import pytest
from google.protobuf import descriptor_pb2

from conftest import api, Sluice

PANIC_EXIT = 101


def malformed_set(file_name="bad.proto"):
    """`message Holder { map<string, string> tags = 1; }` whose entry message has no key field."""
    fds = descriptor_pb2.FileDescriptorSet()
    f = fds.file.add(name=file_name, package="p", syntax="proto3")
    holder = f.message_type.add(name="Holder")
    holder.field.add(name="tags", number=1, label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                     type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE, type_name=".p.Holder.TagsEntry")
    entry = holder.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.add(name="value", number=2, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                    type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    return fds


def fixed_set(file_name="bad.proto"):
    fds = malformed_set(file_name)
    fds.file[0].message_type[0].nested_type[0].field.add(
        name="key", number=1, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    return fds


def shop_set(pb):
    """The example schemas as `protoc --descriptor_set_out --include_imports` would write them."""
    fds = descriptor_pb2.FileDescriptorSet()
    for module in (pb.common, pb.order):
        module.DESCRIPTOR.CopyToProto(fds.file.add())
    return fds


def no_panic(r):
    assert r.returncode not in (0, PANIC_EXIT), (r.returncode, r.stderr)
    assert "panicked" not in r.stderr, r.stderr


def test_a_malformed_descriptor_set_is_refused_and_a_stored_one_is_named(tmp_path):
    s = Sluice(tmp_path)
    folder = tmp_path / "sets"
    folder.mkdir()
    bad = folder / "bad.desc"
    bad.write_bytes(malformed_set().SerializeToString())
    for target in (bad, folder):  # the file, and the folder holding it
        r = s.run("schema", "add", target, check=False)
        no_panic(r)
        assert f"{bad}: in bad.proto, message p.Holder.TagsEntry" in r.stderr, r.stderr
        assert "without a key field" in r.stderr, r.stderr
    assert s("schema", "list").strip() == "", "nothing was stored"

    # A store written before this check (as an older Sluice did): every command says which
    # folder and what, instead of panicking on the first decode.
    store = s.config / "schemas"
    store.mkdir(parents=True, exist_ok=True)
    (store / "00001-1-old.binpb").write_bytes(malformed_set().SerializeToString())
    r = s.run("schema", "list", check=False)
    no_panic(r)
    assert "stored schemas" in r.stderr and "p.Holder.TagsEntry" in r.stderr, r.stderr
    # The way out the error names: a corrected file of the same name replaces it.
    good = tmp_path / "good.desc"
    good.write_bytes(fixed_set().SerializeToString())
    s("schema", "add", good)
    assert "p.Holder" in s("schema", "list").split()


def test_symlink_loops_in_a_folder_end_in_bounded_time(tmp_path):
    s = Sluice(tmp_path)
    root = tmp_path / "protos"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "m.proto").write_text('syntax = "proto3"; package m; message M {}\n')
    (root / "a" / "b" / "up").symlink_to(root)
    (root / "a" / "b" / "sideways").symlink_to(root / "a")
    (root / "self").symlink_to(".")
    start = time.time()
    out = s("schema", "add", root, timeout=60)
    assert time.time() - start < 30
    assert "added 1 file(s)" in out and "m.M" in out, out


def test_an_error_many_files_import_is_listed_once(tmp_path):
    s = Sluice(tmp_path)
    root = tmp_path / "protos"
    root.mkdir()
    (root / "broken.proto").write_text('syntax = "proto3";\nmessage Broken { int32 = 1; }\n')
    for i in range(9):
        (root / f"user{i}.proto").write_text(f'syntax = "proto3";\nimport "broken.proto";\nmessage U{i} {{ Broken b = 1; }}\n')
    r = s.run("schema", "add", root, check=False)
    no_panic(r)
    lines = [l for l in r.stderr.splitlines() if "broken.proto:2:" in l]
    assert len(lines) == 1, r.stderr




def b64(data):
    return base64.b64encode(data).decode()


def test_descriptor_sets_dropped_on_serve_are_added(served, pb):
    s, url = served
    shop = shop_set(pb).SerializeToString()
    # One descriptor set dropped on its own.
    out = api(url, "schema_drop", {"files": [{"path": "shop.desc", "base64": b64(shop)}]})
    assert out["errors"] == [], out
    assert "shop.v1.Order" in out["message_types"], out

    # A folder with descriptor sets of other names beside a .proto file.
    other = descriptor_pb2.FileDescriptorSet()
    f = other.file.add(name="other/v1/thing.proto", package="other.v1", syntax="proto3")
    f.message_type.add(name="Thing")
    out = api(url, "schema_drop", {"files": [
        {"path": "schemas/sets/thing.binpb", "base64": b64(other.SerializeToString())},
        {"path": "schemas/sets/shop-again.pb", "base64": b64(shop)},
        {"path": "schemas/note.proto", "base64": b64(b'syntax = "proto3";\npackage note;\nmessage Note { string text = 1; }\n')},
    ]})
    assert out["errors"] == [], out
    assert {"other.v1.Thing", "note.Note"} <= set(out["message_types"]), out

    # A malformed one: an error naming the dropped file, and the server goes on.
    out = api(url, "schema_drop", {"files": [{"path": "bad.desc", "base64": b64(malformed_set().SerializeToString())}]})
    assert out["message_types"] == [], out
    assert out["errors"][0]["file"] == "bad.desc", out
    assert "p.Holder.TagsEntry" in out["errors"][0]["message"], out
    listing = api(url, "schema_list", {})
    assert {"shop.v1.Order", "other.v1.Thing", "note.Note"} <= set(listing["message_types"])
    # The CLI sees what the app added.
    assert "other.v1.Thing" in s("schema", "list").split()
