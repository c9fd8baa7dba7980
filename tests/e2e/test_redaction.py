"""Redaction: values a rule names never reach the lake (capture time), or are masked in what
search, exports and bundles show (view time), and redacted events still replay."""

import base64
import json
import zipfile
from pathlib import Path

import duckdb

from conftest import ROOT, consume, produce
from test_capture_search_replay import orders


def lake_text(lake):
    """Every value the lake's files hold, as one text (decoded columns, payload and header bytes)."""
    con = duckdb.connect()
    rows = con.execute(
        "SELECT decoded, payload_text, payload, key, headers::VARCHAR FROM read_parquet(?, hive_partitioning = true)",
        [str(Path(lake) / "**" / "*.parquet")],
    ).fetchall()
    out = []
    for decoded, text, payload, key, headers in rows:
        out += [decoded or "", text or "", bytes(payload).decode("latin-1"), bytes(key or b"").decode("latin-1"), headers]
    return "\n".join(out)


def test_values_redacted_at_capture_never_reach_the_lake_and_still_replay(sluice, topic, pb):
    t = topic("redact")
    recs = orders(pb, 30)
    produce(t, recs)
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    out = sluice("redact", "add", "local", "--source", t, "--field", "customer.name", "--header", "trace-id")
    assert "1. local:" in out and "field customer.name" in out
    sluice("redact", "add", "local", "--pattern", "late deliv[a-z]+", "--action", "drop")
    sluice("capture", "local", t, "--stop-at-end", "--json")

    stored = lake_text(sluice.lake)
    for secret in ("Ada", "late delivery"):
        assert secret not in stored, secret
    hits = sluice.jsonl("search", f'topic = "{t}"', "--format", "jsonl", "--limit", "100")
    assert len(hits) == 30
    names = {h["decoded"]["customer"]["name"] for h in hits}
    assert len(names) == 1 and names.pop().startswith("redacted:"), "equal values hash alike"
    for h in hits:
        assert h["headers"]["trace-id"].startswith("redacted:")
        assert "customer.name" in h["headers"]["sluice-redacted"]
        # The bytes were encoded again from the redacted JSON: they decode, without the name.
        o = pb.order.Order.FromString(base64.b64decode(h["payload"]))
        assert o.customer.name == h["decoded"]["customer"]["name"] and o.id == h["decoded"]["id"]
        if o.HasField("refund"):
            assert o.refund.reason == "[redacted]"
    hashed = hits[0]["decoded"]["customer"]["name"]
    assert sluice("search", f'customer.name = "{hashed}"', "--count").strip() == "30"

    target = topic("redacted-out")
    dry = sluice("replay", f'topic = "{t}"', "--to", f"local:{target}", "--dry-run")
    assert "30 of them were redacted at capture" in dry, dry
    out = sluice("replay", f'topic = "{t}"', "--to", f"local:{target}", "--rate", "1000")
    assert "30 sent, 0 failed" in out
    got = consume(target, expect=30)
    assert len(got) == 30
    for m in got:
        assert b"Ada" not in m.value()
        assert pb.order.Order.FromString(m.value()).customer.name == hashed

    # --no-decode cannot honour field rules: refused, nothing captured.
    p = sluice.run("capture", "local", t, "--stop-at-end", "--no-decode", check=False)
    assert p.returncode != 0 and "redaction rules" in p.stderr, p.stderr


def test_view_time_masks_hide_values_in_search_exports_and_bundles_but_not_in_the_lake(sluice, topic, pb, tmp_path):
    t = topic("mask")
    produce(t, orders(pb, 10))
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    sluice("capture", "local", t, "--stop-at-end", "--json")
    sluice("redact", "add", "local", "--field", "customer.name", "--header", "bin", "--action", "drop", "--at", "view")
    hits = sluice.jsonl("search", f'topic = "{t}"', "--format", "jsonl", "--limit", "100")
    assert len(hits) == 10
    for h in hits:
        assert "name" not in h["decoded"]["customer"] and "bin" not in h["headers"]
        assert h["payload"] == "", "bytes that cannot be shown masked are not shown"
    assert "Ada" in lake_text(sluice.lake), "a view mask leaves the lake as it was"
    out = tmp_path / "e.jsonl"
    sluice("export", f'topic = "{t}"', "--format", "jsonl", "-o", out)
    assert "Ada" not in out.read_text()
    b = tmp_path / "masked.sluice"
    sluice("bundle", "export", f'topic = "{t}"', "-o", b)
    with zipfile.ZipFile(b) as z:
        z.extract("events.parquet", tmp_path)
    assert "Ada" not in lake_text_of_file(tmp_path / "events.parquet")
    listed = json.loads(sluice("redact", "list", "--format", "json"))
    assert listed == [{"connection": "local", "fields": ["customer.name"], "headers": ["bin"], "action": "drop", "at": "view"}]
    assert "no redaction rules" in sluice("redact", "remove", "1")
    assert sluice.jsonl("search", f'topic = "{t}"', "--format", "jsonl", "--limit", "1")[0]["decoded"]["customer"]["name"] == "Ada"


def lake_text_of_file(path):
    con = duckdb.connect()
    rows = con.execute("SELECT decoded, payload FROM read_parquet(?)", [str(path)]).fetchall()
    return "\n".join((d or "") + bytes(p).decode("latin-1") for d, p in rows)


def test_bad_rules_are_refused_with_the_reason(sluice):
    p = sluice.run("redact", "add", "local", "--pattern", "(unclosed", check=False)
    assert p.returncode != 0 and "pattern" in p.stderr and "(unclosed" in p.stderr
    p = sluice.run("redact", "add", "local", "--field", "items[x].sku", check=False)
    assert p.returncode != 0 and "items[x].sku" in p.stderr
    p = sluice.run("redact", "add", "nowhere", "--field", "a", check=False)
    assert p.returncode != 0 and "unknown connection" in p.stderr
    p = sluice.run("redact", "add", "local", check=False)
    assert p.returncode != 0 and "at least one" in p.stderr
    p = sluice.run("redact", "remove", "3", check=False)
    assert p.returncode != 0 and "no redaction rule 3" in p.stderr


def test_rules_reach_sources_named_only_when_events_arrive_and_keys_and_redecoding(tmp_path):
    # A collector's clients name their sources: a connection-wide rule covers every one.
    from conftest import Sluice
    from test_collector import Collector

    s = Sluice(tmp_path)
    s("connection", "add", "collector", "in")
    s("redact", "add", "in", "--field", "email", "--pattern", "secret-[0-9]+")
    c = Collector(s)
    try:
        r = c.post("orders", json.dumps({"email": "ada@example.com", "n": "secret-42"}).encode(),
                   headers={"content-type": "application/json"})
        assert r.status_code < 300, r.text
        r = c.post("anything-else", b'{"email":"eve@example.com"}', headers={"content-type": "application/json"})
        assert r.status_code < 300, r.text
    finally:
        code, _, err = c.stop()
    assert code == 0, err
    stored = lake_text(s.lake)
    for secret in ("ada@example.com", "secret-42", "eve@example.com"):
        assert secret not in stored, secret
    # Re-decoding cannot bring back what redaction took: redacted events keep their decoding.
    before = s.jsonl("search", 'source = "orders"', "--format", "jsonl")[0]["decoded"]
    s("schema", "redecode", "in", "orders")
    assert s.jsonl("search", 'source = "orders"', "--format", "jsonl")[0]["decoded"] == before
