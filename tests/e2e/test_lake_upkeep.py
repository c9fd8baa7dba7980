"""A lake a team keeps: compaction and pruning beside a running capture and searches, and
bundles that carry events with their schemas to a machine with no access to the bus."""

import json
import threading
import time
import zipfile
from pathlib import Path

from conftest import BROKER, ROOT, Sluice, consume, produce
from test_capture_search_replay import orders, setup_orders

DAY_MS = 86_400_000


def parquet_files(lake):
    return sorted(p for p in Path(lake).rglob("*.parquet") if not p.name.startswith("."))


def test_compaction_beside_a_running_capture_keeps_every_event_exactly_once(sluice, topic, pb):
    t = topic("compact")
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    produced = 0
    # A capture flushing every few events writes many small files while it runs.
    cap = sluice.popen("capture", "local", t, "--from", "beginning", "--duration", "14s", "--json")
    counts, errors = [], []
    stop = threading.Event()

    def search_all_along():
        while not stop.is_set():
            p = sluice.run("search", "", "--count", check=False)
            if p.returncode != 0:
                errors.append(p.stderr)
            else:
                counts.append(int(p.stdout))

    reader = threading.Thread(target=search_all_along)
    reader.start()
    compactions = []
    for batch in range(6):
        produce(t, orders(pb, 50, start_ts=1795168800000 + batch * 1000))
        produced += 50
        time.sleep(1.2)
        out = json.loads(sluice("lake", "compact", "--target-size", "1MiB", "--format", "json"))
        compactions.append(out)
    out, err = cap.communicate(timeout=60)
    stop.set()
    reader.join()
    assert cap.returncode == 0, err
    assert json.loads(out)["captured"] == produced
    assert not errors, errors[:3]
    # Never more than was produced, and never fewer than an earlier search saw.
    assert counts and max(counts) <= produced
    assert all(b >= a for a, b in zip(counts, counts[1:])), counts
    assert sum(c["files_merged"] for c in compactions) > 0, compactions
    before = len(parquet_files(sluice.lake))
    final = json.loads(sluice("lake", "compact", "--target-size", "1MiB", "--format", "json"))
    assert len(parquet_files(sluice.lake)) == before - final["files_merged"] + final["files_written"]
    assert sluice("search", "", "--count").strip() == str(produced)
    ids = [e["id"] for e in sluice.jsonl("search", "", "--format", "jsonl", "--limit", "100000")]
    assert len(ids) == len(set(ids)) == produced
    assert sluice("search", "status = FAILED", "--count").strip() == str(6 * len([i for i in range(50) if i % 7 == 0]))
    # Spark and Hive skip files starting with _ or .: nothing of Sluice's own is left as
    # *.parquet besides the data, and no retire record outlives its run.
    assert not list(Path(sluice.lake).rglob("_retired-*"))


def test_prune_removes_exactly_the_events_older_than_the_age_with_a_dry_run_first(sluice, topic, pb):
    t = topic("prune")
    now_ms = int(time.time() * 1000)
    old = orders(pb, 40, start_ts=now_ms - 40 * DAY_MS)
    new = orders(pb, 30, start_ts=now_ms - DAY_MS)
    for r in new:
        r["key"] = b"new-" + r["key"]
    produce(t, old + new)
    sluice("schema", "add", ROOT / "protos")
    sluice("schema", "map", "local", t, "shop.v1.Order")
    sluice("capture", "local", t, "--stop-at-end", "--json")
    assert sluice("search", "", "--count").strip() == "70"

    dry = json.loads(sluice("lake", "prune", "--older-than", "30d", "--dry-run", "--format", "json"))
    assert dry["dry_run"] and dry["events_removed"] == 40
    assert sluice("search", "", "--count").strip() == "70"
    text = sluice("lake", "prune", "--older-than", "30d")
    assert "removed 40 events older than 30d" in text, text
    assert sluice("search", "", "--count").strip() == "30"
    assert sluice("search", 'key ~ "new-"', "--count").strip() == "30"
    assert json.loads(sluice("lake", "prune", "--older-than", "30d", "--format", "json"))["events_removed"] == 0

    bad = sluice.run("lake", "prune", "--older-than", "thirty days", check=False)
    assert bad.returncode != 0 and "--older-than" in bad.stderr and "30d" in bad.stderr


def test_a_bundle_carries_events_schemas_and_mappings_to_a_machine_without_the_bus(sluice, topic, pb, tmp_path):
    t, recs = setup_orders(sluice, topic, pb, n=60)
    bundle = tmp_path / "incident.sluice"
    out = sluice("bundle", "export", "status = FAILED", "-o", bundle)
    failed = [i for i in range(60) if i % 7 == 0]
    assert f"bundled {len(failed)} events" in out, out
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        manifest = json.loads(z.read("sluice-bundle.json"))
    assert "events.parquet" in names and any(n.startswith("schemas/") for n in names), names
    assert manifest["version"] == 1 and manifest["events"] == len(failed)
    assert manifest["mappings"] == [{"connection": "local", "topic": t, "value_type": "shop.v1.Order"}]

    # Another machine: its own config and lake, a connection of another name, no registry.
    other = Sluice(tmp_path / "other")
    other("connection", "add", "kafka", "dev", "--brokers", BROKER)
    got = json.loads(other("bundle", "import", bundle, "--format", "json"))
    assert (got["events_in_bundle"], got["imported"], got["already_in_lake"]) == (len(failed), len(failed), 0)
    assert got["mappings_added"] == 1 and got["schema_files"] >= 1
    assert "shop.v1.Order" in other("schema", "list")
    mine = {e["id"]: e for e in sluice.jsonl("search", "status = FAILED", "--format", "jsonl", "--limit", "100")}
    theirs = {e["id"]: e for e in other.jsonl("search", "status = FAILED", "--format", "jsonl", "--limit", "100")}
    assert theirs.keys() == mine.keys()
    for i, e in theirs.items():
        for field in ("payload", "key", "headers", "decoded", "timestamp_us", "partition", "offset", "source"):
            assert e[field] == mine[i][field], field
    # Imported twice: nothing doubles.
    again = json.loads(other("bundle", "import", bundle, "--format", "json"))
    assert (again["imported"], again["already_in_lake"]) == (0, len(failed))
    assert other("search", "", "--count").strip() == str(len(failed))

    # Replayed from the imported events into the other machine's own topic, byte for byte.
    target = topic("from-bundle")
    out = other("replay", "status = FAILED", "--to", f"dev:{target}", "--rate", "1000")
    assert f"{len(failed)} sent, 0 failed" in out, out
    arrived = consume(target, expect=len(failed))
    assert sorted(m.value() for m in arrived) == sorted(recs[i]["value"] for i in failed)

    # A truncated bundle and one from a newer Sluice are refused before anything changes.
    cut = tmp_path / "cut.sluice"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    third = Sluice(tmp_path / "third")
    p = third.run("bundle", "import", cut, check=False)
    assert p.returncode != 0 and "not a complete Sluice bundle" in p.stderr, p.stderr
    newer = tmp_path / "newer.sluice"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(newer, "w") as dst:
        for n in src.namelist():
            data = src.read(n)
            if n == "sluice-bundle.json":
                m = json.loads(data)
                m["version"] = 2
                data = json.dumps(m).encode()
            dst.writestr(n, data)
    p = third.run("bundle", "import", newer, check=False)
    assert p.returncode != 0 and "newer Sluice" in p.stderr, p.stderr
    assert third("search", "", "--count").strip() == "0"

    # Events that are not a Sluice export: refused, and no schema or mapping was added first.
    garbage = tmp_path / "garbage.sluice"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(garbage, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, b"not parquet at all" if n == "events.parquet" else src.read(n))
    p = third.run("bundle", "import", garbage, check=False)
    assert p.returncode != 0 and "not a complete Sluice bundle" in p.stderr, p.stderr
    assert json.loads(third("schema", "list", "--format", "json")) == {"message_types": [], "mappings": []}
    # Into a machine with a connection of the same name: refused (their ids would mix).
    p = sluice.run("bundle", "import", bundle, check=False)
    assert p.returncode != 0 and 'connection named "local"' in p.stderr, p.stderr

    empty = sluice.run("bundle", "export", "status = NOPE_NOT_A_STATUS", "-o", tmp_path / "x.sluice", check=False)
    assert empty.returncode != 0 and "nothing to bundle" in empty.stderr


def test_schemas_and_mappings_kept_with_the_lake_decode_alike_for_everyone_who_opens_it(sluice, topic, pb, tmp_path):
    t = topic("shared")
    produce(t, orders(pb, 20))
    # The writer keeps the schemas and the mapping with the lake, not in their own config.
    out = sluice("schema", "add", "--shared", ROOT / "protos")
    assert "shop.v1.Order" in out
    out = sluice("schema", "map", "--shared", "local", t, "shop.v1.Order")
    assert "kept with the lake" in out
    assert (Path(sluice.lake) / "_sluice" / "mappings.toml").exists()
    assert not (Path(sluice.config) / "schemas").exists()
    sluice("capture", "local", t, "--stop-at-end", "--json")

    # A colleague opens the same lake with a config of their own: same types, same mapping.
    colleague = Sluice(tmp_path / "colleague")
    colleague.env["SLUICE_LAKE"] = str(sluice.lake)
    colleague.lake = sluice.lake
    colleague("connection", "add", "kafka", "local", "--brokers", BROKER, "--password", "s3cret-pw")
    listing = json.loads(colleague("schema", "list", "--format", "json"))
    assert "shop.v1.Order" in listing["message_types"]
    assert {"connection": "local", "topic": t, "value_type": "shop.v1.Order", "shared": True} in listing["mappings"]
    assert "(shared, in the lake)" in colleague("schema", "list")
    # New events they capture decode with the shared mapping.
    produce(t, orders(pb, 5, start_ts=1795168900000))
    colleague("capture", "local", t, "--stop-at-end", "--json")
    hits = colleague.jsonl("search", f'topic = "{t}"', "--format", "jsonl", "--limit", "100")
    assert len(hits) == 25 and all(h["schema"] == "shop.v1.Order" and h["decode_error"] is None for h in hits)
    # Their own mapping wins for them, and only for them.
    colleague("schema", "map", "local", t, "shop.v1.Customer", "--no-redecode")
    mine = json.loads(colleague("schema", "list", "--format", "json"))["mappings"]
    assert [m["value_type"] for m in mine if m["topic"] == t] == ["shop.v1.Customer"]
    theirs = json.loads(sluice("schema", "list", "--format", "json"))["mappings"]
    assert [m["value_type"] for m in theirs if m["topic"] == t] == ["shop.v1.Order"]
    # Nothing secret is kept with the lake.
    for f in (Path(sluice.lake) / "_sluice").rglob("*"):
        if f.is_file():
            assert b"s3cret-pw" not in f.read_bytes(), f
    # A bundle carries the shared schemas too.
    b = tmp_path / "shared.sluice"
    sluice("bundle", "export", f'topic = "{t}"', "-o", b)
    with zipfile.ZipFile(b) as z:
        assert any(n.startswith("schemas/") for n in z.namelist())
