"""Upgrading what is already captured, and replaying edited events: a mapping added after a
capture re-decodes the lake without reading the broker again, a changed schema re-decodes the
topics mapped to it, and `replay --edit` re-encodes an edited event with its own type and
Confluent frame (checked with the Python protobuf runtime), sending untouched ones byte for byte."""

import base64
import json
import struct
import time

from conftest import ROOT, consume, produce


def order_bytes(pb, i):
    return pb.order.Order(id=f"o-{i}", amount_cents=100 + i, status=pb.order.FAILED if i % 2 else pb.order.PAID).SerializeToString()


def test_a_running_capture_picks_up_a_new_mapping(sluice, topic, pb):
    t = topic("live-map", partitions=1)
    sluice("schema", "add", ROOT / "protos")
    p = sluice.popen("capture", "local", t, "--from", "end", "--duration", "60s")
    try:
        time.sleep(1.5)
        produce(t, [{"value": order_bytes(pb, i)} for i in range(3)])
        count = lambda f: sluice("search", f, "--count").strip()
        deadline = time.time() + 10
        while time.time() < deadline and count(f"source = {t}") != "3":
            time.sleep(0.2)
        assert count(f"source = {t} and event.encoding = protobuf_raw") == "3"
        sluice("schema", "map", "local", t, "shop.v1.Order")
        time.sleep(1.5)  # the capture checks for changed mappings every second
        produce(t, [{"value": order_bytes(pb, i)} for i in range(3, 6)])
        deadline = time.time() + 10
        while time.time() < deadline and count(f"source = {t}") != "6":
            time.sleep(0.2)
        assert count(f"source = {t} and schema = shop.v1.Order") == "6", "earlier events re-decoded, later ones decoded live"
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_mapping_after_capture_redecodes_the_lake(sluice, topic, pb, tmp_path):
    t = topic("late-map", partitions=1)
    produce(t, [{"value": order_bytes(pb, i)} for i in range(20)])
    sluice("schema", "add", ROOT / "protos")
    sluice("capture", "local", t, "--stop-at-end")
    assert sluice("search", "status = FAILED", "--count").strip() == "0", "nothing decoded yet"
    assert sluice("search", "event.encoding = protobuf_raw", "--count").strip() == "20", "a field-number tree until mapped"
    out = sluice("schema", "map", "local", t, "shop.v1.Order")
    assert "re-decoded 20 event(s)" in out and "20 changed" in out, out
    hits = sluice.jsonl("search", "status = FAILED", "--format", "jsonl", "--limit", "100")
    assert sorted(h["decoded"]["id"] for h in hits) == sorted(f"o-{i}" for i in range(1, 20, 2))
    assert all(h["schema"] == "shop.v1.Order" and h["decode_error"] is None for h in hits)
    assert "o-3" in sluice("search", '"o-3"'), "free text sees the new decoding"
    assert sluice("search", f"source = {t}", "--count").strip() == "20", "rewritten in place, nothing re-read"
    # Changing the schema (same file, a field renamed) re-decodes the mapped topic again.
    changed = tmp_path / "protos"
    for src in (ROOT / "protos").rglob("*.proto"):
        dst = changed / src.relative_to(ROOT / "protos")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text().replace("amount_cents", "amount_in_cents"))
    out = sluice("schema", "add", changed)
    assert "re-decoded 20 event(s)" in out, out
    one = sluice.jsonl("search", 'id = "o-4"', "--format", "jsonl")[0]
    assert one["decoded"]["amountInCents"] == "104" and "amountCents" not in one["decoded"]
    # An explicit re-decode with nothing new changes nothing and says so.
    out = sluice("schema", "redecode", "local", t)
    assert "re-decoded 20 event(s)" in out and "0 changed" in out, out


def test_replay_edit_reencodes_with_type_and_frame(sluice, topic, pb, tmp_path):
    t = topic("edit", partitions=1)
    body = pb.order.Order(id="framed", amount_cents=5, status=pb.order.FAILED).SerializeToString()
    framed = b"\x00" + struct.pack(">I", 23) + b"\x02\x02" + body  # schema id 23, index path [1]
    # Field order reversed on purpose: a re-encode of the unchanged event would differ.
    odd = pb.order.Order(amount_cents=7).SerializeToString() + pb.order.Order(id="plain").SerializeToString()
    produce(t, [{"value": framed, "key": b"k1"}, {"value": odd, "key": b"k2"}, {"value": b'{"note": "json"}'}])
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    sluice("capture", "local", t, "--stop-at-end")
    events = sluice.jsonl("search", f"source = {t}", "--format", "jsonl")
    assert len(events) == 3
    by_key = {e["key_text"]: e for e in events}

    # An edit file as search prints it: one event changed, one left as it was.
    edited = dict(by_key["k1"], decoded=dict(by_key["k1"]["decoded"], status="PAID", amountCents="9"))
    same = by_key["k2"]
    f = tmp_path / "edits.jsonl"
    f.write_text(json.dumps(edited) + "\n" + json.dumps(same) + "\n")
    out_topic = topic("edit-out", partitions=1)
    dry = sluice("replay", f"source = {t} and event.encoding = protobuf", "--to", f"local:{out_topic}", "--edit", f, "--dry-run")
    assert "2 events would be sent" in dry
    sluice("replay", f"source = {t} and event.encoding = protobuf", "--to", f"local:{out_topic}", "--edit", f)
    got = {m.key(): m.value() for m in consume(out_topic, partitions=1, expect=2)}
    assert got[b"k2"] == odd, "an unchanged event is byte-identical"
    assert got[b"k1"][:7] == framed[:7], "magic byte, schema id and index path kept"
    o = pb.order.Order()
    o.ParseFromString(got[b"k1"][7:])
    assert (o.id, o.amount_cents, o.status) == ("framed", 9, pb.order.PAID)

    # A bare decoded object edits the one event a filter matches; JSON payloads stay JSON.
    bare = tmp_path / "bare.json"
    bare.write_text('{"note": "edited"}')
    json_out = topic("edit-json", partitions=1)
    sluice("replay", f"source = {t} and event.encoding = json", "--to", f"local:{json_out}", "--edit", bare)
    assert json.loads(consume(json_out, partitions=1, expect=1)[0].value()) == {"note": "edited"}

    # Edits that do not fit the type, or are not JSON, stop the replay before anything is sent.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(dict(edited, decoded={"noSuchField": 1})) + "\n" + json.dumps(same) + "\n")
    r = sluice.run("replay", f"source = {t}", "--to", f"local:{out_topic}", "--edit", bad, check=False)
    assert r.returncode != 0 and "does not fit shop.v1.Order" in r.stderr and "noSuchField" in r.stderr, r.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x",\n "decoded": {"a": }\n}')
    r = sluice.run("replay", f"source = {t}", "--to", f"local:{out_topic}", "--edit", broken, check=False)
    assert r.returncode != 0 and f"{broken}:2:" in r.stderr, r.stderr
    r = sluice.run("replay", f"source = {t}", "--to", f"local:{out_topic}", "--edit", bare, check=False)
    assert r.returncode != 0 and "exactly one event" in r.stderr, r.stderr
    assert len(consume(out_topic, partitions=1, expect=2)) == 2, "nothing more was sent"


def test_capture_without_decoding_then_redecode(sluice, topic, pb, tmp_path):
    t = topic("no-decode", partitions=1)
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order", "--no-redecode")
    produce(t, [{"value": order_bytes(pb, i)} for i in range(10)] + [{"value": b'{"note": "plain json"}'}])
    out = json.loads(sluice("capture", "local", t, "--stop-at-end", "--no-decode", "--json"))
    assert out["captured"] == 11 and out["decode_errors"] == 0, out
    assert sluice("search", "event.encoding = undecoded", "--count").strip() == "11", "stored as they came"
    assert sluice("search", "status = FAILED", "--count").strip() == "0"
    raw = sluice.jsonl("search", f"source = {t}", "--format", "jsonl", "--limit", "100")
    assert all(e["decoded"] is None and e["schema"] is None for e in raw)
    assert sorted(base64.b64decode(e["payload"]) for e in raw) == sorted([order_bytes(pb, i) for i in range(10)] + [b'{"note": "plain json"}'])
    # An undecoded event cannot be edited before it is decoded, and says how to fix that.
    (tmp_path / "edit.json").write_text('{"id": "x"}')
    p = sluice.run("replay", f"source = {t} and offset = 0", "--to", f"local:{t}", "--edit", tmp_path / "edit.json", check=False)
    assert p.returncode != 0 and "schema redecode" in p.stderr, p.stderr
    out = sluice("schema", "redecode", "local", t)
    assert "re-decoded 11 event(s)" in out, out
    assert sluice("search", "event.encoding = undecoded", "--count").strip() == "0"
    assert sluice("search", "status = FAILED", "--count").strip() == "5"
    assert sluice("search", 'note = "plain json"', "--count").strip() == "1", "unmapped-looking payloads are sniffed too"
