"""Redis end to end: the `sluice` binary against the private redis-server that
scripts/brokers.sh started, with redis-py as the independent client. Streams are read by
entry id without touching consumer groups; Pub/Sub patterns are tapped; replay restores entry
fields byte for byte."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
import redis

from conftest import consume, produce

PORT = int(os.environ.get("SLUICE_REDIS_PORT", "16379"))
URL = f"redis://127.0.0.1:{PORT}/0"


def client():
    return redis.Redis(host="127.0.0.1", port=PORT, db=0)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def groups(r, stream):
    return [{k: v for k, v in g.items()} for g in r.xinfo_groups(stream)]


@pytest.fixture
def rds(sluice):
    sluice("connection", "add", "redis", "r", "--url", URL)
    return sluice


@pytest.fixture
def orders():
    """A stream with payload/data fields, other fields, one entry with none of them, and a
    consumer group holding two pending entries."""
    r = client()
    s = unique("orders")
    ids = [
        r.xadd(s, {"type": "created", "payload": b'{"order": 1}', "trace": "t-1"}),
        r.xadd(s, {"payload": b'{"order": 2}', "type": "paid", "bin": b"\x00\xff"}),
        r.xadd(s, {"data": b'{"order": 3}', "type": "shipped"}),
        r.xadd(s, {"a": "1", "b": b"\xfe"}),
    ]
    r.xgroup_create(s, "g1", id="0")
    r.xreadgroup("g1", "c1", {s: ">"}, count=2)
    yield s, [i.decode() for i in ids]
    r.delete(s)


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


@pytest.fixture
def locked_redis(tmp_path):
    """A redis-server of this test's own with a password."""
    port = free_port()
    exe = shutil.which("redis-server")
    assert exe, "redis-server is installed"
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "right-pw",
                          "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                redis.Redis(port=port, password="right-pw").ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        yield port, p
    finally:
        p.send_signal(signal.SIGCONT)
        p.terminate()
        p.wait(10)


def test_connection_test_browse_and_auth(rds, orders, locked_redis):
    s, ids = orders
    locked_redis, _ = locked_redis
    assert "reachable" in rds("connection", "test", "r").lower()
    listing = {t["name"]: t for t in json.loads(rds("topics", "r", "--format", "json"))}
    t = listing[s]
    assert t["kind"] == f"stream (first {ids[0]}, last {ids[-1]}, groups: g1 2 pending)"
    assert t["partitions"][0]["high"] == 4 and t["unacked"] == 2
    [named] = json.loads(rds("topics", "r", s, "--format", "json"))
    assert named["kind"] == t["kind"]
    # Wrong password, and none: authentication errors that never show the password.
    pw = "wr0ng-pw"
    rds("connection", "add", "redis", "bad", "--url", f"redis://:{pw}@127.0.0.1:{locked_redis}/0")
    cfg = (rds.config / "config.toml").read_text()
    assert f"redis://127.0.0.1:{locked_redis}/0" in cfg and f":{pw}@" not in cfg
    p = rds.run("connection", "test", "bad", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr
    assert pw not in p.stderr + p.stdout
    rds("connection", "add", "redis", "nopw", "--url", f"redis://127.0.0.1:{locked_redis}/0")
    p = rds.run("connection", "test", "nopw", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr
    p = rds.run("connection", "add", "redis", "good", "--url", f"redis://127.0.0.1:{locked_redis}/0",
                "--password-stdin", input="right-pw\n")
    assert "reachable" in rds("connection", "test", "good").lower()
    # An ACL user, named apart or in the URL.
    admin = redis.Redis(port=locked_redis, password="right-pw")
    admin.acl_setuser("app", enabled=True, passwords=["+app-pw"], keys=["*"], channels=["*"], commands=["+@all"])
    rds.run("connection", "add", "redis", "acl", "--url", f"redis://127.0.0.1:{locked_redis}/0",
            "--username", "app", "--password-stdin", input="app-pw\n")
    assert "reachable" in rds("connection", "test", "acl").lower()
    assert "user app" in rds("connection", "list")
    rds("connection", "add", "redis", "aclbad", "--url", f"redis://app:nope-pw@127.0.0.1:{locked_redis}/0")
    p = rds.run("connection", "test", "aclbad", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr and "nope-pw" not in p.stderr
    # Nothing listens: unreachable, fast.
    rds("connection", "add", "redis", "dead", "--url", f"redis://127.0.0.1:{free_port()}/0")
    t0 = time.time()
    p = rds.run("connection", "test", "dead", check=False)
    assert p.returncode != 0 and "unreachable" in p.stderr and time.time() - t0 < 15


def test_capture_maps_fields_and_leaves_groups_alone(rds, orders):
    s, ids = orders
    r = client()
    before = groups(r, s)
    summary = json.loads(rds("capture", "r", s, "--from", "beginning", "--stop-at-end", "--json"))
    assert summary["captured"] == 4 and summary["stopped_by"] == "end", summary
    events = {e["properties"]["id"]: e for e in rds.jsonl("search", f'source = "{s}"', "--format", "jsonl")}
    assert sorted(events) == sorted(ids)
    first = events[ids[0]]
    assert first["decoded"] == {"order": 1}
    assert first["headers"]["type"] == "created" and first["headers"]["trace"] == "t-1"
    assert list(first["headers"]) == ["type", "trace"], "fields other than the payload, in order"
    assert first["properties"] == {"stream": s, "id": ids[0], "payload_field": "payload", "payload_index": 1}
    ms, seq = map(int, ids[0].split("-"))
    assert (first["offset"], first["timestamp_us"]) == (ms, ms * 1000)
    assert first["id"] == f"redis:r/{s}//{ids[0]}"
    assert events[ids[2]]["decoded"] == {"order": 3} and events[ids[2]]["headers"] == {"type": "shipped"}
    whole = events[ids[3]]
    assert whole["decoded"] == {"a": "1", "b": {"base64": "/g=="}} and whole["headers"] == {}
    assert rds("search", 'header.type = "paid"', "--count").strip() == "1"
    assert rds("search", f'property.stream = "{s}"', "--count").strip() == "4"
    # The application's consumer group is as it was: no new group, same pending entries.
    assert groups(r, s) == before
    assert r.xinfo_stream(s)["groups"] == 1
    assert r.xpending(s, "g1")["pending"] == 2
    # --from MS-SEQ starts at that entry.
    tail = rds.jsonl("tail", "r", s, "--from", ids[2], "--max-messages", "2", "--format", "jsonl")
    assert [e["properties"]["id"] for e in tail] == ids[2:]
    # -N: the last N entries.
    last = rds.jsonl("tail", "r", s, "--from", "-1", "--max-messages", "1", "--format", "jsonl")
    assert [e["properties"]["id"] for e in last] == ids[3:]


def test_start_positions(rds):
    r = client()
    s = unique("positions")
    for i in ("1000-0", "2000-0", "2000-5", "3000-0"):
        r.xadd(s, {"payload": i}, id=i)

    def ids(frm, n):
        out = rds.jsonl("tail", "r", s, "--from", frm, "--max-messages", n, "--format", "jsonl")
        return [e["properties"]["id"] for e in out]

    assert ids("beginning", 4) == ["1000-0", "2000-0", "2000-5", "3000-0"]
    assert ids("2000-1", 2) == ["2000-5", "3000-0"]
    assert ids("@1970-01-01T00:00:02Z", 3) == ["2000-0", "2000-5", "3000-0"]
    assert ids("@1970-01-01T00:00:02.000001Z", 1) == ["3000-0"], "the first entry at or after the time"
    assert ids("-2", 2) == ["2000-5", "3000-0"]
    assert ids("-3", 3) == ["2000-0", "2000-5", "3000-0"]
    assert ids("-10", 4) == ["1000-0", "2000-0", "2000-5", "3000-0"]
    # From the end: only what comes after.
    p = rds.popen("tail", "r", s, "--from", "end", "--max-messages", "1", "--format", "jsonl")
    deadline = time.time() + 10
    while not any(c["name"] == "sluice" and c["cmd"] == "xread" for c in r.client_list()):
        assert time.time() < deadline and p.poll() is None, "the tail never read"
        time.sleep(0.05)
    r.xadd(s, {"payload": "new"}, id="4000-0")
    out, err = p.communicate(timeout=30)
    assert [json.loads(line)["properties"]["id"] for line in out.splitlines()] == ["4000-0"], err
    # A stopped capture of an empty stream ends at once.
    e = unique("empty")
    r.xadd(e, {"payload": "x"})
    r.xtrim(e, maxlen=0)
    assert json.loads(rds("capture", "r", e, "--stop-at-end", "--json"))["captured"] == 0
    p = rds.run("tail", "r", s, "--from", "last-per-subject", "--max-messages", "1", check=False)
    assert p.returncode != 0 and "last-per-subject" in p.stderr
    r.delete(s, e)


def test_pubsub_tail_by_pattern(rds):
    prefix = unique("events")
    p = rds.popen("tail", "r", f"{prefix}.*", "--max-messages", "3", "--format", "jsonl")
    r = client()
    deadline = time.time() + 20
    # Nobody receives what is published before the subscription: publish until it is there.
    while r.publish(f"{prefix}.a", b"m0") == 0:
        assert time.time() < deadline, "the tail never subscribed"
        time.sleep(0.05)
    r.publish(f"{prefix}.b", b"m1")
    r.publish("other-channel-" + prefix, b"not matched")
    r.publish(f"{prefix}.a", b"\xffm2")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["properties"]["channel"] for e in got] == [f"{prefix}.a", f"{prefix}.b", f"{prefix}.a"]
    assert all(e["properties"]["pattern"] == f"{prefix}.*" for e in got)
    assert got[0]["payload_text"] == "m0"


def test_sharded_channel_tail_and_listing(rds):
    ch = unique("shard")
    p = rds.popen("tail", "r", f"shard:{ch}", "--max-messages", "2", "--format", "jsonl")
    r = client()
    deadline = time.time() + 20
    while r.execute_command("SPUBLISH", ch, b"s0") == 0:
        assert time.time() < deadline, "the tail never subscribed"
        time.sleep(0.05)
    listing = {t["name"]: t for t in json.loads(rds("topics", "r", "--format", "json"))}
    assert listing[f"shard:{ch}"]["kind"] == "shard channel (1 subscribers)"
    r.execute_command("SPUBLISH", ch, b"s1")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["payload_text"] for e in got] == ["s0", "s1"]
    assert got[0]["properties"] == {"channel": ch, "shard": True}


def test_replay_restores_entries_with_new_ids(rds, orders):
    s, ids = orders
    r = client()
    rds("capture", "r", s, "--from", "beginning", "--stop-at-end")
    target = unique("replayed")
    out = rds("replay", f'source = "{s}"', "--to", f"r:{target}")
    assert "4 sent, 0 failed" in out, out
    original = r.xrange(s)
    copied = r.xrange(target)
    assert len(copied) == 4
    assert all(new_id != old_id for (new_id, _), (old_id, _) in zip(copied, original))
    for (_, old), (_, new) in zip(original, copied):
        fields = list(new.items())
        assert [k for k, _ in fields[-2:]] == [b"sluice-replay-id", b"sluice-source"]
        assert dict(fields[:-2]) == old and [k for k, _ in fields[:-2]] == list(old), "fields in order, byte for byte"
    # Ids kept on request, into an empty stream only.
    kept = unique("kept")
    assert "4 sent" in rds("replay", f'source = "{s}"', "--to", f"r:{kept}", "--keep-ids")
    assert [i.decode() for i, _ in r.xrange(kept)] == ids
    p = rds.run("replay", f'source = "{s}"', "--to", f"r:{kept}", "--keep-ids", check=False)
    assert p.returncode != 0 and "4 failed" in p.stdout and "empty stream" in p.stderr + p.stdout
    # Publishing: the payload only (Pub/Sub has no fields) to each subscriber.
    chan = unique("listened")
    sub = r.pubsub()
    sub.subscribe(chan)
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    assert "1 sent" in rds("replay", f'property.id = "{ids[0]}"', "--to", f"r:pubsub:{chan}")
    m = sub.get_message(timeout=5)
    assert m["channel"] == chan.encode() and m["data"] == b'{"order": 1}'
    sub.close()
    # Nobody listening means nobody got it.
    p = rds.run("replay", f'source = "{s}"', "--to", f"r:pubsub:{unique('nobody')}", check=False)
    assert p.returncode != 0 and "4 failed" in p.stdout and "no subscriber" in p.stderr + p.stdout
    for k in (target, kept):
        r.delete(k)


def test_a_paced_replay_arrives_as_it_goes(rds):
    """A replay at --rate N sends each entry as it is let through: the writer's pipeline must
    not hold paced entries back until it is full (1,000) or the replay ends."""
    r = client()
    s = unique("paced")
    for i in range(30):
        r.xadd(s, {"payload": f"p{i}".encode()})
    rds("capture", "r", s, "--from", "beginning", "--stop-at-end")
    target = unique("paced-out")
    p = rds.popen("replay", f'source = "{s}"', "--to", f"r:{target}", "--rate", "10")
    try:
        deadline = time.monotonic() + 2.5
        seen = 0
        while time.monotonic() < deadline and seen == 0:
            time.sleep(0.1)
            seen = r.xlen(target)
        assert 0 < seen < 30, f"{seen} of 30 entries arrived within 2.5 s of a replay at 10/s"
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "30 sent, 0 failed" in out, out
        assert [f[b"payload"] for _, f in r.xrange(target)] == [f"p{i}".encode() for i in range(30)]
    finally:
        if p.poll() is None:
            p.kill()
        r.delete(s, target)


def test_a_replay_paced_near_the_batch_hold_still_trickles(rds):
    """At --rate 100 a message is due every 10 ms, as often as the sender's hold for a part
    batch: the pipeline must still go out every few messages, not a full pipeline at a time."""
    r = client()
    s = unique("paced100")
    for i in range(600):
        r.xadd(s, {"payload": f"p{i}".encode()})
    rds("capture", "r", s, "--from", "beginning", "--stop-at-end")
    target = unique("paced100-out")
    p = rds.popen("replay", f'source = "{s}"', "--to", f"r:{target}", "--rate", "100")
    try:
        # Sampled every 50 ms: no step between samples may be a pipeline's worth (256+).
        counts, deadline = [], time.monotonic() + 30
        while p.poll() is None and time.monotonic() < deadline:
            counts.append(r.xlen(target))
            time.sleep(0.05)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and "600 sent, 0 failed" in out, (out, err)
        steps = [b - a for a, b in zip(counts, counts[1:])]
        assert steps and max(steps) < 100, f"largest jump {max(steps)} entries in 50 ms: {counts}"
    finally:
        if p.poll() is None:
            p.kill()
        r.delete(s, target)


def test_replay_across_kafka(rds, orders, topic):
    s, ids = orders
    r = client()
    # Kafka -> Redis: the value is the payload field, headers are fields; the key is not carried.
    t = topic("redis-x", 1)
    produce(t, [{"value": b'{"k": 1}', "key": b"key-1", "headers": [("trace", b"t-9")]}])
    rds("capture", "local", t, "--stop-at-end")
    target = unique("from-kafka")
    assert "1 sent" in rds("replay", f'source = "{t}"', "--to", f"r:{target}")
    [(_, fields)] = r.xrange(target)
    assert list(fields.items())[:2] == [(b"payload", b'{"k": 1}'), (b"trace", b"t-9")]
    assert b"sluice-source" in fields and b"sluice-properties" not in fields
    # Redis -> Kafka: fields become headers, the stream's properties travel in a header and come back.
    k = topic("redis-y", 1)
    rds("capture", "r", s, "--stop-at-end")
    assert "4 sent" in rds("replay", f'source = "{s}"', "--to", f"local:{k}")
    records = consume(k, partitions=1, expect=4)
    first = next(m for m in records if m.value() == b'{"order": 1}')
    h = dict(first.headers())
    assert h["type"] == b"created" and h["trace"] == b"t-1"
    assert json.loads(h["sluice-properties"])["id"] == ids[0]
    rds("capture", "local", k, "--stop-at-end", "--include-replays")
    back = unique("back")
    assert "4 sent" in rds("replay", f'source = "{k}"', "--to", f"r:{back}")
    restored = [f for _, f in r.xrange(back)]
    whole = next(f for f in restored if b"a" in f)
    assert list(whole.items())[:2] == [(b"a", b"1"), (b"b", b"\xfe")], "the whole entry comes back as fields"
    r.delete(target, back)


def test_a_name_that_is_no_stream_is_a_pattern_and_other_keys_are_refused(rds):
    name = unique("no-such-stream")
    t0 = time.time()
    p = rds.run("capture", "r", name, "--stop-at-end", "--json")
    s = json.loads(p.stdout)
    assert s["captured"] == 0 and s["stopped_by"] == "end" and time.time() - t0 < 15
    assert "is no stream" in p.stderr and f"pubsub:{name}" in p.stderr, p.stderr
    p = rds.run("capture", "r", f"pubsub:{name}", "--stop-at-end", "--json")
    assert json.loads(p.stdout)["captured"] == 0 and "is no stream" not in p.stderr
    r = client()
    k = unique("plain")
    r.set(k, "v")
    p = rds.run("capture", "r", k, "--stop-at-end", check=False)
    assert p.returncode != 0 and "not a stream" in p.stderr and f"pubsub:{k}" in p.stderr
    r.delete(k)


@pytest.mark.parametrize("how", ["shutdown", "stall"])
def test_a_server_that_goes_away_ends_the_capture(rds, locked_redis, how):
    port, server = locked_redis
    r = redis.Redis(port=port, password="right-pw")
    s = unique("going")
    r.xadd(s, {"payload": "one"})
    rds.run("connection", "add", "redis", "going", "--url", f"redis://127.0.0.1:{port}/0",
            "--password-stdin", input="right-pw\n")
    p = rds.popen("capture", "going", s, "--broker-timeout", "2s", "--json")
    deadline = time.time() + 20
    while rds("search", f'source = "{s}"', "--count").strip() != "1":
        assert time.time() < deadline and p.poll() is None, "the capture read the entry"
        time.sleep(0.2)
    if how == "shutdown":
        r.shutdown(nosave=True)
    else:
        server.send_signal(signal.SIGSTOP)
    t0 = time.time()
    out, err = p.communicate(timeout=30)
    assert p.returncode != 0 and "no answer" in err, err
    assert time.time() - t0 < 12


def test_credentials_revoked_mid_capture_end_it_with_an_auth_error(rds, locked_redis):
    """The user's access is revoked and its connections killed under a running capture: the
    reconnect is refused, the capture says so within its broker timeout, keeps what it read,
    and exits non-zero; the password never shows."""
    port, _ = locked_redis
    admin = redis.Redis(port=port, password="right-pw")
    pw = "reader-pw-1"
    admin.execute_command("ACL", "SETUSER", "reader", "on", f">{pw}", "~*", "+@all")
    s = unique("revoked")
    admin.xadd(s, {"payload": "one"})
    rds.run("connection", "add", "redis", "revoked", "--url", f"redis://reader@127.0.0.1:{port}/0",
            "--password-stdin", input=pw + "\n")
    p = rds.popen("capture", "revoked", s, "--broker-timeout", "3s", "--json")
    deadline = time.time() + 20
    while rds("search", f'source = "{s}"', "--count").strip() != "1":
        assert time.time() < deadline and p.poll() is None, "the capture read the entry"
        time.sleep(0.2)
    admin.execute_command("ACL", "SETUSER", "reader", "resetpass", ">other-pw")
    admin.execute_command("CLIENT", "KILL", "USER", "reader")
    t0 = time.time()
    out, err = p.communicate(timeout=60)
    assert p.returncode != 0, (out, err)
    assert "authentication failed" in err or "WRONGPASS" in err, err
    assert time.time() - t0 < 15, f"ended {time.time() - t0:.0f} s after the revocation"
    assert "captured 1 events into the lake" in err, err
    assert pw not in out + err
    assert rds("search", f'source = "{s}"', "--count").strip() == "1"


def test_a_pause_shorter_than_the_broker_timeout_is_read_through(rds, locked_redis):
    """The server stops answering for a while (SIGSTOP) and comes back: the capture reads on,
    and every entry is in the lake once."""
    port, server = locked_redis
    r = redis.Redis(port=port, password="right-pw")
    s = unique("paused")
    for i in range(3):
        r.xadd(s, {"payload": f"before-{i}"})
    rds.run("connection", "add", "redis", "paused", "--url", f"redis://127.0.0.1:{port}/0",
            "--password-stdin", input="right-pw\n")
    p = rds.popen("capture", "paused", s, "--max-messages", "6", "--broker-timeout", "30s", "--json")
    deadline = time.time() + 20
    while rds("search", f'source = "{s}"', "--count").strip() != "3":
        assert time.time() < deadline and p.poll() is None, "the capture read the first entries"
        time.sleep(0.2)
    server.send_signal(signal.SIGSTOP)
    time.sleep(3)
    server.send_signal(signal.SIGCONT)
    for i in range(3):
        r.xadd(s, {"payload": f"after-{i}"})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (out, err)
    assert json.loads(out)["captured"] == 6, out
    events = rds.jsonl("search", f'source = "{s}"', "--format", "jsonl")
    assert sorted(e["payload_text"] for e in events) == sorted([f"before-{i}" for i in range(3)] + [f"after-{i}" for i in range(3)])
    assert len({e["id"] for e in events}) == 6, "each entry once"


def test_replay_to_a_stalled_server_ends_in_time(rds, orders, locked_redis):
    s, _ = orders
    port, server = locked_redis
    rds("capture", "r", s, "--from", "beginning", "--stop-at-end")
    rds.run("connection", "add", "redis", "stalled", "--url", f"redis://127.0.0.1:{port}/0",
            "--password-stdin", input="right-pw\n")
    server.send_signal(signal.SIGSTOP)
    t0 = time.time()
    p = rds.run("replay", f'source = "{s}"', "--to", "stalled:copy", "--broker-timeout", "2s", "--json",
                check=False)
    assert p.returncode != 0 and time.time() - t0 < 15, p.stderr
    account = json.loads(p.stdout)
    assert account["sent"] == 0, account
    server.send_signal(signal.SIGCONT)
    assert redis.Redis(port=port, password="right-pw").exists("copy") == 0


def test_recapture_adds_no_duplicates(rds, orders):
    """Needs the lake's ids of position-less-partition events loaded for Redis captures too
    (crates/api/src/reading.rs loads them for queue reads only)."""
    s, ids = orders
    first = json.loads(rds("capture", "r", s, "--from", "beginning", "--stop-at-end", "--json"))
    assert first["captured"] == 4
    client().xadd(s, {"payload": "five"})
    again = json.loads(rds("capture", "r", s, "--from", "beginning", "--stop-at-end", "--json"))
    assert again["captured"] == 1 and again["skipped_duplicates"] == 4, again
    assert rds("search", f'source = "{s}"', "--count").strip() == "5"
