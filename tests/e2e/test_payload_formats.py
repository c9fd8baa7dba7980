"""Payloads nobody mapped still show something useful: compressed (gzip, zstd, snappy),
MessagePack, CBOR and base64 payloads, produced with independent Python encoders, decode to
the same JSON those libraries started from; protobuf without a mapping becomes a searchable
field-number tree; and `schema detect` finds the type that fits it."""

import base64
import gzip
import json

import cbor2
import cramjam
import msgpack
import zstandard

from conftest import ROOT, produce


def test_compressed_and_self_describing_payloads_decode(sluice, topic, pb):
    t = topic("formats", partitions=1)
    doc = {"status": "FAILED", "n": 7, "tags": ["a", "b"], "nested": {"ok": False}}
    order = pb.order.Order(id="o-9", amount_cents=900).SerializeToString()
    payloads = {
        "gzip": gzip.compress(json.dumps(doc).encode()),
        "zstd": zstandard.ZstdCompressor().compress(json.dumps(doc).encode()),
        "snappy": bytes(cramjam.snappy.compress(json.dumps(doc).encode())),
        "msgpack": msgpack.packb(doc),
        "cbor": cbor2.dumps(doc),
        "base64": base64.b64encode(json.dumps(doc).encode()),
        "gzip-text": gzip.compress(b"just some words"),
        "protobuf_raw": order,
    }
    produce(t, [{"key": k.encode(), "value": v} for k, v in payloads.items()])
    sluice("capture", "local", t, "--stop-at-end")
    got = {e["key_text"]: e for e in sluice.jsonl("search", f"source = {t}", "--format", "jsonl")}
    for k in ("gzip", "zstd", "snappy", "msgpack", "cbor", "base64"):
        assert got[k]["encoding"] == k, (k, got[k]["encoding"])
        assert got[k]["decoded"] == doc, k
        assert base64.b64decode(got[k]["payload"]) == payloads[k], "raw bytes kept"
    assert got["gzip-text"]["encoding"] == "gzip" and got["gzip-text"]["decoded"] == "just some words"
    raw = got["protobuf_raw"]
    assert raw["encoding"] == "protobuf_raw" and raw["decoded"] == {"#1": "o-9", "#3": 900}, raw["decoded"]
    # Decoded content is searchable whatever wrapped it, and raw trees by field number.
    keys = lambda f: sorted(e["key_text"] for e in sluice.jsonl("search", f, "--format", "jsonl"))
    assert keys(f'source = {t} and status = "FAILED"') == ["base64", "cbor", "gzip", "msgpack", "snappy", "zstd"]
    assert keys(f'source = {t} and #1 = "o-9"') == ["protobuf_raw"]
    assert keys(f"source = {t} and #3 > 800") == ["protobuf_raw"]
    assert keys(f'source = {t} and "some words"') == ["gzip-text"]


def test_detect_prefers_the_type_used_most_completely_and_will_not_accept_a_tie(sluice, topic, tmp_path):
    proto = tmp_path / "shapes.proto"
    proto.write_text('syntax = "proto3";\npackage shapes;\n'
                     "message Wide { int32 x = 1; int32 y = 2; string label = 3; bytes extra = 4; }\n"
                     "message Point { int32 x = 1; int32 y = 2; }\n"
                     "message Twin { int32 x = 1; int32 y = 2; }\n")
    sluice("schema", "add", proto)
    t = topic("detect-tie", partitions=1)
    produce(t, [{"value": bytes([0x08, i + 1, 0x10, 2 * i + 1])} for i in range(10)])
    found = {c["type_name"]: c for c in json.loads(sluice("schema", "detect", "local", t, "--format", "json"))}
    ranked = [n for n in json.loads(sluice("schema", "detect", "local", t, "--format", "json")) if n["type_name"].startswith("shapes.")]
    assert [c["type_name"] for c in ranked] == ["shapes.Point", "shapes.Twin", "shapes.Wide"], ranked
    assert found["shapes.Point"]["unseen_fields"] == 0 and found["shapes.Wide"]["unseen_fields"] == 2
    assert found["shapes.Point"]["tied"] and found["shapes.Twin"]["tied"] and not found["shapes.Wide"]["tied"]
    table = sluice("schema", "detect", "local", t)
    assert "tie" in next(line for line in table.splitlines() if line.startswith("shapes.Point")), table
    r = sluice.run("schema", "detect", "local", t, "--accept", check=False)
    assert r.returncode != 0 and "shapes.Point, shapes.Twin fit these payloads equally well" in r.stderr, r.stderr


def test_detect_suggests_the_type_and_accepting_it_maps_and_redecodes(sluice, topic, pb):
    t = topic("detect", partitions=1)
    recs = []
    for i in range(30):
        o = pb.order.Order(id=f"o-{i}", amount_cents=100 + i, status=pb.order.PAID)
        o.customer.name = "Ada"
        o.items.add(sku="A-1", quantity=2)
        recs.append({"value": o.SerializeToString()})
    produce(t, recs)
    sluice("schema", "add", ROOT / "protos", ROOT / "tests" / "protos")
    # Before anything is captured, detect reads the topic itself (and stores nothing).
    found = json.loads(sluice("schema", "detect", "local", t, "--format", "json"))
    assert found[0]["type_name"] == "shop.v1.Order", found[:3]
    assert found[0]["confidence"] == 1.0 and found[0]["decoded"] == found[0]["samples"] == 30
    assert all(c["confidence"] < 1.0 or c["decoded"] < 30 for c in found[1:]), found[1:3]
    assert sluice("search", f"source = {t}", "--count").strip() == "0"
    sluice("capture", "local", t, "--stop-at-end")
    assert sluice("search", f"source = {t} and event.encoding = protobuf_raw", "--count").strip() == "30"
    out = sluice("schema", "detect", "local", t, "--accept")
    assert "shop.v1.Order" in out.splitlines()[1] and "values decode as shop.v1.Order" in out, out
    assert "re-decoded 30 event(s)" in out, out
    hits = sluice.jsonl("search", f'source = {t} and customer.name = "Ada" and amountCents = 129', "--format", "jsonl")
    assert [h["decoded"]["id"] for h in hits] == ["o-29"]
