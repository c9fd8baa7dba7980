"""The main journey: protobuf events with keys and headers are captured, found by a decoded
field, replayed to another topic, and arrive byte for byte."""

import json
import signal
import time

from conftest import BROKER, ROOT, consume, produce


def orders(pb, n, start_ts=1795168800000):
    recs = []
    for i in range(n):
        o = pb.order.Order(
            id=f"o-{i}",
            customer=pb.common.Customer(id=42 if i % 10 == 0 else 1000 + i, name="Ada"),
            amount_cents=1000 + i,
            status=pb.order.FAILED if i % 7 == 0 else pb.order.PAID,
            items=[pb.common.Item(sku="A-1" if i % 2 == 0 else "B-2", quantity=2)],
        )
        o.created_at.FromSeconds(1795168800 + i)
        if i % 5 == 0:
            o.refund.reason = "late delivery"
        recs.append(
            {
                "key": f"k{i}".encode(),
                "value": o.SerializeToString(),
                "headers": [("trace-id", f"t{i}".encode()), ("bin", bytes([0xFF, 0x00, i % 256]))],
                "partition": i % 3,
                "timestamp": start_ts + i,
            }
        )
    return recs


def setup_orders(sluice, topic, pb, n=60):
    t = topic("orders")
    recs = orders(pb, n)
    produce(t, recs)
    out = sluice("schema", "add", ROOT / "protos")
    assert "shop.v1.Order" in out
    sluice("schema", "map", "local", t, "shop.v1.Order")
    out = sluice("capture", "local", t, "--stop-at-end", "--json")
    summary = json.loads(out)
    assert summary["captured"] == n and summary["read"] == n and summary["stopped_by"] == "end"
    return t, recs


def test_capture_search_replay_round_trip(sluice, topic, pb):
    t, recs = setup_orders(sluice, topic, pb)
    hits = sluice.jsonl("search", "customer.id = 42", "--format", "jsonl", "--limit", "100")
    assert sorted(h["key_text"] for h in hits) == sorted(f"k{i}" for i in range(0, 60, 10))
    h = hits[0]
    for field in ("id", "bus", "connection", "source", "partition", "offset", "key", "headers", "timestamp",
                  "captured_at", "payload", "size", "schema", "decoded", "decode_error", "payload_text", "key_text"):
        assert field in h, field
    assert h["bus"] == "kafka" and h["connection"] == "local" and h["source"] == t
    assert h["schema"] == "shop.v1.Order" and h["decode_error"] is None
    assert isinstance(h["decoded"], dict) and h["decoded"]["customer"]["id"] == "42"
    assert h["headers"]["trace-id"].startswith("t") and "base64" in h["headers"]["bin"]
    # newest first
    ts = [x["timestamp_us"] for x in hits]
    assert ts == sorted(ts, reverse=True)

    assert sluice("search", "status = FAILED", "--count").strip() == str(len([i for i in range(60) if i % 7 == 0]))
    assert sluice("search", f'topic = "{t}" and items[0].sku = "B-2" and exists(refund)', "--count").strip() == "6"
    assert sluice("search", '"LATE DELIVERY"', "--count").strip() == "12"
    assert sluice("search", 'header.trace-id = "t7"', "--count").strip() == "1"
    assert sluice("search", 'key = "k3" or key = "k4"', "--count").strip() == "2"
    assert sluice("search", "partition = 1 and offset >= 5", "--count").strip() == str(20 - 5)
    assert sluice("search", "after:2026-11-20T10:00:00.050Z", "--count").strip() == "10"

    target = topic("replayed")
    dry = sluice("replay", "customer.id = 42", "--to", f"local:{target}", "--dry-run")
    assert "6 events would be sent" in dry
    assert consume(target, expect=1, timeout=2) == []

    out = sluice("replay", "customer.id = 42", "--to", f"local:{target}", "--rate", "1000")
    assert "6 sent, 0 failed" in out
    got = consume(target, expect=6)
    assert len(got) == 6
    by_key = {m.key(): m for m in got}
    for i in range(0, 60, 10):
        orig = recs[i]
        m = by_key[orig["key"]]
        assert m.value() == orig["value"]
        hdrs = m.headers()
        assert hdrs[:2] == orig["headers"], "original headers first, in order"
        names = [k for k, _ in hdrs]
        assert names[2:] == ["sluice-replay-id", "sluice-source"]
        assert dict(hdrs)["sluice-source"] == f"local/{t}/{i % 3}/{i // 3}".encode()
        assert m.timestamp()[1] == orig["timestamp"]


def test_replay_keeps_partition_order_and_partition(sluice, topic, pb):
    t, recs = setup_orders(sluice, topic, pb, n=30)
    target = topic("replayed")
    sluice("replay", f"source = {t}", "--to", f"local:{target}", "--keep-partition")
    got = consume(target, expect=30)
    assert len(got) == 30
    for m in got:
        i = int(m.key()[1:])
        assert m.partition() == i % 3
    for p in range(3):
        keys = [int(m.key()[1:]) for m in got if m.partition() == p]
        assert keys == sorted(keys), "each partition keeps its order"

    narrow = topic("narrow", partitions=1)
    r = sluice.run("replay", f"source = {t}", "--to", f"local:{narrow}", "--keep-partition", check=False)
    assert r.returncode != 0 and "partition" in r.stderr


def test_replay_of_listed_ids_sends_exactly_those(sluice, topic, tmp_path):
    """`--ids FILE` takes more events than an `event.id in (...)` filter's 1,024 terms."""
    t = topic("picked", partitions=1)
    produce(t, [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(2000)])
    sluice("capture", "local", t, "--stop-at-end")
    rows = [json.loads(line) for line in sluice("search", f"source = {t}", "--format", "jsonl", "--limit", "5000").splitlines()]
    picked = [r for r in rows if int(r["key_text"][1:]) % 3 != 0]
    assert len(picked) > 1024
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(r["id"] + "\n" for r in picked) + "\n")
    target = topic("picked-replayed", partitions=1)
    plan = sluice("replay", f"source = {t}", "--ids", ids, "--to", f"local:{target}", "--dry-run")
    assert f"dry run: {len(picked)} events would be sent" in plan
    out = json.loads(sluice("replay", f"source = {t}", "--ids", ids, "--to", f"local:{target}", "--json"))
    assert (out["matched"], out["sent"], out["failed"]) == (len(picked), len(picked), 0)
    got = consume(target, expect=len(picked))
    assert sorted(m.key() for m in got) == sorted(r["key_text"].encode() for r in picked)
    # The ids narrow the filter, never widen it.
    narrowed = json.loads(sluice("replay", "partition = 7", "--ids", ids, "--to", f"local:{target}", "--json"))
    assert narrowed["matched"] == 0
    empty = tmp_path / "none.txt"
    empty.write_text("\n")
    r = sluice.run("replay", "", "--ids", empty, "--to", f"local:{target}", check=False)
    assert r.returncode != 0 and "no event ids" in r.stderr


def test_recapture_and_replay_loops(sluice, topic, pb):
    t, _ = setup_orders(sluice, topic, pb, n=20)
    again = json.loads(sluice("capture", "local", t, "--stop-at-end", "--json"))
    assert again["captured"] == 0 and again["skipped_duplicates"] == 20
    assert sluice("search", f"source = {t}", "--count").strip() == "20"

    # Replaying into the captured topic must not loop back into the lake.
    sluice("replay", f"source = {t} and partition = 0", "--to", f"local:{t}")
    third = json.loads(sluice("capture", "local", t, "--stop-at-end", "--json"))
    assert third["skipped_replays"] == 7 and third["captured"] == 0
    assert sluice("search", f"source = {t}", "--count").strip() == "20"
    fourth = json.loads(sluice("capture", "local", t, "--stop-at-end", "--include-replays", "--json"))
    assert fourth["captured"] == 7
    assert sluice("search", "exists(header.sluice-replay-id) or header.sluice-replay-id exists", "--count").strip() == "7"


def test_capture_is_searchable_while_running_and_ctrl_c_flushes(sluice, topic):
    t = topic("live", partitions=1)
    p = sluice.popen("capture", "local", t, "--from", "end")
    try:
        time.sleep(1.5)
        produce(t, [{"value": b'{"event":"first"}'}])
        deadline = time.time() + 5
        found = "0"
        while time.time() < deadline and found == "0":
            found = sluice("search", "event = first", "--count").strip()
            time.sleep(0.1)
        assert found == "1", "a captured event is searchable while the capture runs"
        produce(t, [{"value": b"second plain text"}])
        time.sleep(0.3)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "stopped by interrupted" in out
    assert sluice("search", '"second plain"', "--count").strip() == "1"


def test_tail_decodes_without_writing(sluice, topic, pb):
    t = topic("tail")
    produce(t, orders(pb, 9), one_batch_each=True)
    sluice("schema", "add", ROOT / "protos" / "shop" / "v1" / "order.proto")
    sluice("schema", "map", "local", t, "Order")
    lines = sluice.jsonl("tail", "local", t, "--from", "beginning", "--max-messages", "9", "--format", "jsonl")
    assert len(lines) == 9
    assert {l["decoded"]["id"] for l in lines} == {f"o-{i}" for i in range(9)}
    last = sluice.jsonl("tail", "local", t, "--from", "-1", "--max-messages", "3", "--format", "jsonl")
    assert len(last) == 3 and {l["offset"] for l in last} == {2}
    pretty = sluice("tail", "local", t, "--from", "2", "--max-messages", "3")
    assert pretty.count('"id":"o-') == 3
    assert not sluice.lake.exists() or sluice("search", "", "--count").strip() == "0"


def test_confluent_framed_protobuf_decodes_and_replays_unchanged(sluice, topic, pb):
    import struct

    t = topic("framed", partitions=1)
    plain = pb.order.Order(id="plain", amount_cents=1).SerializeToString()
    body = pb.order.Order(id="framed", amount_cents=2).SerializeToString()
    framed = b"\x00" + struct.pack(">I", 17) + b"\x00" + body  # magic, schema id 17, index path [0]
    produce(t, [{"value": plain}, {"value": framed}])
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    sluice("capture", "local", t, "--stop-at-end")
    got = {e["decoded"]["id"]: e for e in sluice.jsonl("search", f"source = {t}", "--format", "jsonl")}
    assert set(got) == {"plain", "framed"}
    assert got["framed"]["decode_error"] is None and got["framed"]["decoded"]["amountCents"] == "2"
    target = topic("framed-out", partitions=1)
    sluice("replay", 'id = "framed"', "--to", f"local:{target}")  # `id` is the payload's field
    assert [m.value() for m in consume(target, partitions=1, expect=1)] == [framed], "bytes replay as captured"
