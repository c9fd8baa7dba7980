"""PostgreSQL change data end to end, against the private cluster scripts/brokers.sh starts
(wal_level=logical on 127.0.0.1:15432; the machine's own server is never touched). psql, an
independent client, makes the changes and reads the slots; Sluice captures them through
logical replication. Each test has a database of its own, so files and tests do not meet."""

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import BROKER, SLUICE, Sluice, consume, create_topic

PORT = os.environ.get("SLUICE_POSTGRES_PORT", "15432")


def psql(db, sql, check=True):
    p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", PORT, "-U", "postgres", "-X", "-q", "-t", "-A",
                        "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(p.stderr)
    return p.stdout.strip()


@pytest.fixture
def db():
    name = f"t_{uuid.uuid4().hex[:10]}"
    psql("postgres", f"CREATE DATABASE {name}")
    yield name
    # Slots of the database must go before it can.
    psql("postgres", f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{name}' AND NOT active", check=False)
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)


@pytest.fixture
def s(tmp_path, db):
    s = Sluice(tmp_path)
    s("connection", "add", "postgres", "pg", "--url", f"postgres://postgres@127.0.0.1:{PORT}/{db}")
    return s


def events(s, flt="connection = pg"):
    return s.jsonl("search", flt, "--format", "jsonl", "--limit", "100000")


def capture(s, *args):
    return subprocess.Popen([SLUICE, "capture", "pg", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=s.env)


def slots(db):
    out = psql(db, f"SELECT slot_name || ':' || active FROM pg_replication_slots WHERE database = '{db}'")
    return [l for l in out.splitlines() if l]


def wait_active(db, p, timeout=30):
    """Until the capture `p` holds its slot (replication has started)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(l.endswith(":true") for l in slots(db)):
            return
        if p.poll() is not None:
            raise AssertionError(f"the capture ended: {p.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"no active slot: {slots(db)}")


TYPES = """CREATE TABLE orders (
  id bigint PRIMARY KEY, status text, amount numeric(20,2), ratio double precision, paid boolean,
  at timestamptz, local timestamp, tags text[], nums int[], doc jsonb, raw bytea, note text)"""


def test_changes_arrive_typed_and_searchable(s, db):
    psql(db, TYPES)
    psql(db, "CREATE TABLE audit (id int PRIMARY KEY, what text); ALTER TABLE audit REPLICA IDENTITY FULL")
    p = capture(s, "--tables", "public.orders,audit", "--create-slot", "--max-messages", 7)
    wait_active(db, p)
    psql(db, """INSERT INTO orders VALUES (1, 'NEW', 12345678901.25, 0.13718105611909515, true,
                '2026-12-02 10:00:00.123456+02', '2026-12-02 10:00:00', '{a,"b c",NULL}', '{1,2}',
                '{"k": [1, {"x": null}]}', '\\x00ff', NULL)""")
    psql(db, "BEGIN; UPDATE orders SET status = 'FAILED' WHERE id = 1; INSERT INTO audit VALUES (1, 'flag'); COMMIT")
    psql(db, "UPDATE audit SET what = 'cleared' WHERE id = 1")
    psql(db, "DELETE FROM orders WHERE id = 1")
    psql(db, "INSERT INTO orders (id, status) VALUES (2, 'NEW'); TRUNCATE orders")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert f"created replication slot sluice_pg_{db}" in err and f"created publication sluice_pg_{db}" in err, err
    assert "stays" in err and "--drop-slot" in err, err
    got = events(s)
    assert len(got) == 7, [e["payload_text"] for e in got]
    (ins,) = events(s, "table = orders and op = insert and new.id = 1")
    new = ins["decoded"]["new"]
    assert new == {"id": 1, "status": "NEW", "amount": "12345678901.25", "ratio": 0.13718105611909515, "paid": True,
                   "at": "2026-12-02T08:00:00.123456Z", "local": "2026-12-02T10:00:00", "tags": ["a", "b c", None],
                   "nums": [1, 2], "doc": {"k": [1, {"x": None}]}, "raw": "AP8=", "note": None}, new
    assert ins["source"] == "public.orders" and ins["key_text"] == '{"id":1}'
    assert ins["decoded"]["schema"] == "public" and isinstance(ins["decoded"]["xid"], int)
    # The position is the change's LSN; the time is the commit's.
    assert ins["offset"] == int(ins["decoded"]["lsn"].split("/")[0], 16) << 32 | int(ins["decoded"]["lsn"].split("/")[1], 16)
    assert ins["timestamp"].startswith(ins["decoded"]["commit_time"][:19]), (ins["timestamp"], ins["decoded"])
    # The search the issue names.
    (upd,) = events(s, 'table = orders and op = update and new.status = "FAILED"')
    assert "old" not in upd["decoded"] and "old_key" not in upd["decoded"]  # the key did not change
    # Both changes of one transaction share its id; REPLICA IDENTITY FULL gives the old row.
    (aud,) = events(s, "table = audit and op = insert")
    assert aud["decoded"]["xid"] == upd["decoded"]["xid"]
    (aud2,) = events(s, "table = audit and op = update")
    assert aud2["decoded"]["old"] == {"id": 1, "what": "flag"} and aud2["decoded"]["new"]["what"] == "cleared"
    (dele,) = events(s, "table = orders and op = delete")
    # The old key is the key's columns only (pgoutput sends the others as nulls).
    assert dele["decoded"]["old_key"] == {"id": 1} and dele["key_text"] == '{"id":1}'
    (tr,) = events(s, "op = truncate")
    assert tr["decoded"]["table"] == "orders"
    # Sluice's slot stays (it said so) and holds its position; topics shows it with its lag.
    assert slots(db) == [f"sluice_pg_{db}:false"]
    listed = json.loads(s("topics", "pg", "--format", "json"))
    kinds = {t["name"] + " " + t["kind"] for t in listed}
    assert "public.orders table" in kinds and f"sluice_pg_{db} publication" in kinds, kinds
    (slot,) = [t for t in listed if t["kind"].startswith("replication slot")]
    assert slot["name"] == f"sluice_pg_{db}" and "inactive" in slot["kind"] and "bytes" in slot
    # Changes made while nobody reads are WAL the inactive slot holds: the listing warns.
    psql(db, "INSERT INTO orders (id) SELECT g FROM generate_series(10, 2000) g")
    (slot,) = [t for t in json.loads(s("topics", "pg", "--format", "json")) if t["kind"].startswith("replication slot")]
    assert slot["bytes"] > 0 and "holding back" in slot["warning"], slot
    # Replayed like any event: to Kafka, keyed by the row's key, the change as the payload.
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    topic = create_topic("pg-changes", partitions=1)
    out = s("replay", "connection = pg and table = orders and op != truncate", "--to", f"local:{topic}")
    assert "4 sent" in out, out
    got = consume(topic, partitions=1, expect=4)
    assert sorted(json.loads(m.value())["op"] for m in got) == ["delete", "insert", "insert", "update"]
    assert {m.key() for m in got} == {b'{"id":1}', b'{"id":2}'}


def test_a_snapshot_then_changes_and_drop_slot(s, db):
    psql(db, "CREATE TABLE items (id int PRIMARY KEY, name text)")
    psql(db, "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 12000) g")
    p = capture(s, "--tables", "items", "--create-slot", "--snapshot", "--drop-slot", "--max-messages", 15002)
    wait_active(db, p, timeout=60)
    psql(db, "INSERT INTO items VALUES (20000, 'after'); DELETE FROM items WHERE id = 1")
    # COPY writes its rows with one WAL record per batch: rows that share an LSN.
    rows = "".join(f"{30000 + i}\tcopied {i}\n" for i in range(3000))
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", PORT, "-U", "postgres", "-X", "-q", "-d", db, "-c",
                    "COPY items FROM STDIN"], input=rows, text=True, check=True, timeout=60)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert f"dropped replication slot sluice_pg_{db} and publication sluice_pg_{db}" in err, err
    assert slots(db) == []
    assert psql(db, "SELECT count(*) FROM pg_publication") == "0"
    snap = events(s, "op = snapshot")
    assert len(snap) == 12000 and len({e["decoded"]["new"]["id"] for e in snap}) == 12000
    assert snap[0]["key_text"].startswith('{"id":')
    assert len(events(s, "op = insert and new.name = after")) == 1
    assert len(events(s, "op = delete")) == 1
    copied = events(s, 'op = insert and new.name ~ "^copied"')
    assert len({e["decoded"]["new"]["id"] for e in copied}) == len(copied) == 3000
    assert len({e["id"] for e in copied}) == 3000, "one event id per row"
    assert any(e["sub_offset"] for e in copied), "rows of one COPY record share an LSN"
    # Tables named without their schema are stored as public.TABLE.
    assert {e["source"] for e in events(s)} == {"public.items"}


def test_kill_9_resumes_without_losing_or_duplicating(s, db):
    psql(db, "CREATE TABLE ticks (id int PRIMARY KEY, n int)")
    p = capture(s, "--tables", "ticks", "--create-slot")
    wait_active(db, p)
    # 300 transactions of 10 rows while the capture runs; it is killed midway.
    writer = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", PORT, "-U", "postgres", "-X", "-q", "-d", db, "-c",
                               "DO $$ BEGIN FOR t IN 0..299 LOOP INSERT INTO ticks SELECT t * 10 + g, t FROM generate_series(1, 10) g; "
                               "COMMIT; PERFORM pg_sleep(0.005); END LOOP; END $$"])
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    writer.wait(60)
    assert writer.returncode == 0
    before = len(events(s, "table = ticks"))
    assert 0 < before < 3000, before
    # Again, without --create-slot: the slot carries on from what was durable. Events of a
    # transaction stored before the kill come again and are skipped by their position.
    p = capture(s, "--tables", "ticks")
    deadline = time.time() + 60
    while time.time() < deadline and len(events(s, "table = ticks")) < 3000:
        time.sleep(0.5)
    time.sleep(1)  # anything more would show now
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    ids = [e["decoded"]["new"]["id"] for e in events(s, "table = ticks")]
    assert len(ids) == len(set(ids)) == 3000, (len(ids), len(set(ids)), err)


def test_slots_it_did_not_make_are_never_touched(s, db, tmp_path):
    psql(db, "CREATE TABLE t (id int PRIMARY KEY)")
    r = s.run("capture", "pg", "--tables", "t", "--duration", "1s", check=False)
    assert r.returncode != 0 and "--create-slot" in r.stderr, r.stderr
    r = s.run("capture", "pg", "--tables", "missing_table", "--create-slot", "--duration", "1s", check=False)
    assert r.returncode != 0 and "missing_table" in r.stderr, r.stderr
    # A user's own slot and publication: read, never dropped, never changed.
    psql(db, "CREATE PUBLICATION theirs FOR TABLE t")
    psql(db, "SELECT pg_create_logical_replication_slot('their_slot', 'pgoutput')")
    s("connection", "add", "postgres", "mine", "--url", f"postgres://postgres@127.0.0.1:{PORT}/{db}",
      "--set", "slot=their_slot", "--set", "publication=theirs", "--replace")
    r = s.run("capture", "mine", "--tables", "t", "--drop-slot", "--duration", "1s", check=False)
    assert r.returncode != 0 and "never" in r.stderr, r.stderr
    r = s.run("capture", "mine", "--tables", "t", "--create-slot", "--duration", "1s", check=False)
    assert r.returncode != 0 and "their_slot" in r.stderr, r.stderr
    p = subprocess.Popen([SLUICE, "capture", "mine", "--tables", "t", "--max-messages", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=s.env)
    wait_active(db, p)
    psql(db, "INSERT INTO t VALUES (5)")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "stays" not in err  # not Sluice's slot: nothing to warn about
    assert len(events(s, "connection = mine and new.id = 5")) == 1
    assert sorted(slots(db)) == ["their_slot:false"]
    assert psql(db, "SELECT pubname FROM pg_publication") == "theirs"
    # A wal_level that cannot decode, and a server that is not there, are said plainly.
    s("connection", "add", "postgres", "gone", "--url", "postgres://postgres@127.0.0.1:1/x")
    r = s.run("connection", "test", "gone", check=False, timeout=30)
    assert r.returncode != 0 and "unreachable" in r.stderr.lower(), r.stderr


def test_partitioned_tables_and_a_snapshot_cut_short(s, db):
    # A partitioned table's changes come under its own name, not its partitions'.
    psql(db, "CREATE TABLE m (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
    psql(db, "CREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
    psql(db, "INSERT INTO m SELECT g, '2026-06-01' FROM generate_series(1, 3000) g")
    # --max-messages ends it inside the snapshot: it says the snapshot is not whole.
    r = s.run("capture", "pg", "--tables", "m", "--create-slot", "--snapshot", "--max-messages", 100, timeout=120)
    assert "snapshot ended before every row was read" in r.stderr, r.stderr
    p = capture(s, "--tables", "m", "--max-messages", 2)
    wait_active(db, p)
    psql(db, "INSERT INTO m VALUES (9001, '2026-07-01'); TRUNCATE m")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    changes = events(s, "op != snapshot")
    assert sorted(e["decoded"]["op"] for e in changes) == ["insert", "truncate"], [e["payload_text"] for e in changes]
    assert {e["source"] for e in changes} == {"public.m"} and changes[0]["decoded"]["table"] == "m"
