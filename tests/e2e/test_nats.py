"""NATS end to end: the `sluice` binary against the nats-server (JetStream on) that
scripts/brokers.sh started, with nats-py as the independent client. Streams are read without
acknowledging anything and leave no consumer behind; work-queue streams keep their messages;
core subjects are subscribed to; replay to a stream waits for publish acks and is deduplicated
by Nats-Msg-Id, replay to a core subject is sent but not confirmed."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from conftest import SLUICE

PORT = int(os.environ.get("SLUICE_NATS_PORT", "14222"))
URL = f"nats://127.0.0.1:{PORT}"
NKEY_SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
NKEY_PUBLIC = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def run(coro):
    return asyncio.run(coro)


async def _with_js(fn, url=URL):
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        return await fn(nc, nc.jetstream())
    finally:
        await nc.close()


def js(fn):
    """Runs `fn(nc, js)` on a fresh nats-py connection."""
    return run(_with_js(fn))


def make_stream(n, retention=RetentionPolicy.LIMITS):
    """A stream NAME on subjects `name.>` holding n messages with headers; returns (name, sent)."""
    name = unique("S")
    subj = name.lower()
    sent = []

    async def fill(nc, j):
        await j.add_stream(StreamConfig(name=name, subjects=[f"{subj}.>"], retention=retention))
        for i in range(n):
            s = f"{subj}.{'eu' if i % 2 else 'us'}"
            h = {"trace-id": f"t-{i}", "x-kind": "order"}
            body = json.dumps({"order": i, "status": "FAILED" if i == 3 else "PAID"}).encode()
            await j.publish(s, body, headers=h)
            sent.append((s, body, h))

    js(fill)
    return name, sent


@pytest.fixture
def nat(sluice):
    sluice("connection", "add", "nats", "n", "--url", URL)
    return sluice


def stream_state(name):
    async def f(nc, j):
        info = await j.stream_info(name)
        consumers = await j.consumers_info(name)
        return info.state, {c.name: c for c in consumers}
    return js(f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp, *args, config=None):
    """A private nats-server on a free port (the shared one stays up for the other tests)."""
    port = free_port()
    cmd = [shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1", "-p", str(port), *args]
    if config:
        conf = tmp / f"nats-{port}.conf"
        conf.write_text(config)
        cmd += ["-c", str(conf)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, f"nats://127.0.0.1:{port}"


@pytest.fixture
def servers(tmp_path):
    """Starts private servers on demand and stops them all afterwards."""
    procs = []

    def start(*args, config=None):
        p, url = start_server(tmp_path, *args, config=config)
        procs.append(p)
        return p, url

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


def test_connection_add_test_and_errors(nat, servers):
    _, auth_server = servers("--user", "u", "--pass", "p")
    _, token_server = servers("--auth", "tok-good")
    assert "reachable" in nat("connection", "test", "n")
    listing = nat("connection", "list")
    assert URL in listing and "nats" in listing
    # Nothing listening: unreachable, fast.
    nat("connection", "add", "nats", "dead", "--url", "nats://127.0.0.1:1")
    t0 = time.time()
    p = nat.run("connection", "test", "dead", check=False)
    assert p.returncode != 0 and "unreachable" in p.stderr and time.time() - t0 < 15
    # Wrong password: an authentication error that does not show the secret.
    nat.run("connection", "add", "nats", "badpw", "--url", auth_server, "--username", "u",
            env={"SLUICE_PASSWORD": "s3cret-wrong"})
    p = nat.run("connection", "test", "badpw", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr
    assert "s3cret-wrong" not in p.stderr + p.stdout + nat("connection", "list")
    urls = [line for line in (nat.config / "config.toml").read_text().splitlines() if "url" in line]
    assert urls and not any("s3cret" in line for line in urls)
    nat.run("connection", "add", "nats", "goodpw", "--url", auth_server, "--username", "u",
            env={"SLUICE_PASSWORD": "p"})
    assert "reachable" in nat("connection", "test", "goodpw")
    assert "user u" in nat("connection", "list")
    # No JetStream there: no streams to list, but a subject can still be named.
    assert json.loads(nat("topics", "goodpw", "--format", "json")) == []
    assert json.loads(nat("topics", "goodpw", "a.b", "--format", "json"))[0]["kind"] == "subject"
    # A token given to a server that wants a user: refused as authentication too.
    nat.run("connection", "add", "nats", "tok", "--url", auth_server, "--set", "auth=token",
            env={"SLUICE_PASSWORD": "tok-123"})
    p = nat.run("connection", "test", "tok", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr and "tok-123" not in p.stderr
    # The right token, written in the URL: moved out of it, and accepted.
    nat("connection", "add", "nats", "tokok", "--url", token_server.replace("//", "//tok-good@"))
    assert "reachable" in nat("connection", "test", "tokok")
    line = next(l for l in nat("connection", "list").splitlines() if l.startswith("tokok"))
    assert "token" in line and "tok-good" not in line
    # An NKey seed as the secret (the pair from the NATS documentation).
    _, nkey_server = servers(config='authorization { users = [ { nkey: "%s" } ] }\n' % NKEY_PUBLIC)
    nat.run("connection", "add", "nats", "nk", "--url", nkey_server, "--set", "auth=nkey",
            env={"SLUICE_PASSWORD": NKEY_SEED})
    assert "reachable" in nat("connection", "test", "nk")
    assert NKEY_SEED not in nat("connection", "list") and "NKey" in nat("connection", "list")
    # Settings that cannot work are refused when added.
    p = nat.run("connection", "add", "nats", "x", "--url", URL, "--set", "auth=user", check=False)
    assert p.returncode != 0 and "--username" in p.stderr
    p = nat.run("connection", "add", "nats", "y", "--url", URL, "--set", "auth=creds",
                "--set", "creds_file=/no/such.creds", check=False)
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_browse_stream_with_consumers(nat):
    name, _ = make_stream(5)

    async def durable(nc, j):
        await j.add_consumer(name, ConsumerConfig(durable_name="app", ack_policy=AckPolicy.EXPLICIT))
        sub = await j.pull_subscribe_bind("app", name)
        msgs = await sub.fetch(2, timeout=5)
        await msgs[0].ack_sync()

    js(durable)
    [t] = json.loads(nat("topics", "n", name, "--format", "json"))
    assert t["kind"].startswith("stream (limits)"), t
    assert t["partitions"] == [{"id": 0, "low": 1, "high": 6}]
    assert t["ready"] == 5 and t["consumers"] == 1 and t["unacked"] == 1
    assert f"subjects {name.lower()}.>" in t["kind"] and "seq 1..5" in t["kind"]
    assert "consumer app: 3 pending, 1 ack pending" in t["kind"]
    assert t["retention"] == "limits" and t["subjects"] == [f"{name.lower()}.>"] and t["bytes"] > 0, t
    assert t["groups"] == [{"name": "app", "pending": 3, "ack_pending": 1}], t
    listed = {x["name"]: x for x in json.loads(nat("topics", "n", "--format", "json"))}
    assert listed[name]["ready"] == 5
    # Not a stream: a core subject, which can always be subscribed to.
    [s] = json.loads(nat("topics", "n", "some.core.subject", "--format", "json"))
    assert s["kind"] == "subject"


def test_capture_stream_takes_nothing_and_dedupes(nat):
    name, sent = make_stream(6)

    async def durable(nc, j):
        await j.add_consumer(name, ConsumerConfig(durable_name="app", ack_policy=AckPolicy.EXPLICIT))
        sub = await j.pull_subscribe_bind("app", name)
        for m in await sub.fetch(3, timeout=5):
            if m.metadata.sequence.stream == 1:
                await m.ack_sync()

    js(durable)
    _, before = stream_state(name)
    s = json.loads(nat("capture", "n", name, "--stop-at-end", "--json"))
    assert s["captured"] == 6 and s["stopped_by"] == "end", s
    subj = f"{name.lower()}.eu"
    assert nat("search", f"property.subject = '{subj}'", "--count").strip() == "3"
    assert nat("search", f"property.stream = '{name}' and property.seq = 4", "--count").strip() == "1"
    assert nat("search", 'header.trace-id = "t-3"', "--count").strip() == "1"
    [e] = nat.jsonl("search", "status = FAILED", "--format", "jsonl")
    assert e["bus"] == "nats" and e["partition"] == 0 and e["offset"] == 4
    assert e["headers"]["trace-id"] == "t-3" and e["headers"]["x-kind"] == "order"
    assert e["properties"]["subject"] == subj and e["properties"]["published"].endswith("Z")
    assert e["timestamp_us"] > 1_700_000_000_000_000
    again = json.loads(nat("capture", "n", name, "--stop-at-end", "--json"))
    assert again["captured"] == 0 and again["skipped_duplicates"] == 6, again
    # From a sequence, and the last N.
    assert json.loads(nat("capture", "n", name, "--from", "5", "--stop-at-end", "--json"))["read"] == 2
    assert json.loads(nat("capture", "n", name, "--from", "-3", "--stop-at-end", "--json"))["read"] == 3
    per_subject = json.loads(nat("capture", "n", name, "--from", "last-per-subject", "--stop-at-end", "--json"))
    assert per_subject["read"] == 2, per_subject
    future = json.loads(nat("capture", "n", name, "--from", "@2100-01-01T00:00:00Z", "--stop-at-end", "--json"))
    assert future["read"] == 0 and future["stopped_by"] == "end", future
    assert json.loads(nat("capture", "n", name, "--from", "end", "--stop-at-end", "--json"))["read"] == 0
    # A later source that cannot be read: the command fails, and the first tap is removed too.
    p = nat.run("capture", "n", name, "not a subject", "--stop-at-end", check=False)
    assert p.returncode != 0 and "not a subject" in p.stderr, p.stderr
    # Nothing of the tap is left, and the application's consumer is as it was.
    state, after = stream_state(name)
    assert state.messages == 6 and list(after) == ["app"], after
    a, b = before["app"], after["app"]
    assert (b.num_pending, b.num_ack_pending, b.delivered.stream_seq, b.ack_floor.stream_seq) == \
        (a.num_pending, a.num_ack_pending, a.delivered.stream_seq, a.ack_floor.stream_seq) == (3, 2, 3, 1)


def test_work_queue_stream_keeps_its_messages(nat):
    name, _ = make_stream(4, RetentionPolicy.WORK_QUEUE)

    async def take_last(nc, j):
        # The stream's last sequence is a message a worker already took: a gap at the end.
        await j.publish(f"{name.lower()}.gone", b"taken")
        await j.add_consumer(name, ConsumerConfig(durable_name="w", filter_subject=f"{name.lower()}.gone",
                                                  ack_policy=AckPolicy.EXPLICIT))
        sub = await j.pull_subscribe_bind("w", name)
        [m] = await sub.fetch(1, timeout=5)
        await m.ack_sync()
        await j.delete_consumer(name, "w")
        return (await j.stream_info(name)).state

    st = js(take_last)
    assert (st.messages, st.last_seq) == (4, 5)
    s = json.loads(nat("capture", "n", name, "--stop-at-end", "--json"))
    assert s["captured"] == 4 and s["stopped_by"] == "end", s
    state, consumers = stream_state(name)
    assert state.messages == 4 and consumers == {}
    [t] = json.loads(nat("topics", "n", name, "--format", "json"))
    assert t["kind"].startswith("stream (workqueue)")
    assert nat("search", f"property.stream = '{name}'", "--count").strip() == "4"


def test_interest_stream_keeps_its_messages(nat):
    name = unique("I")

    async def fill(nc, j):
        await j.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"], retention=RetentionPolicy.INTEREST))
        await j.add_consumer(name, ConsumerConfig(durable_name="app", ack_policy=AckPolicy.EXPLICIT))
        for i in range(3):
            await j.publish(f"{name.lower()}.x", f"i{i}".encode())

    js(fill)
    s = json.loads(nat("capture", "n", name, "--stop-at-end", "--json"))
    assert s["captured"] == 3 and s["stopped_by"] == "end", s
    state, consumers = stream_state(name)
    assert state.messages == 3 and list(consumers) == ["app"] and consumers["app"].num_pending == 3


def test_core_subject_tail_with_wildcard(nat):
    base = unique("core")
    p = nat.popen("tail", "n", f"{base}.>", "--max-messages", "3", "--format", "jsonl")
    time.sleep(1.5)  # subscribed once the tail has started

    async def pub(nc, j):
        await nc.publish(f"{base}.a", b"one", headers={"h": "1"})
        await nc.publish(f"{base}.b.c", b"two")
        await nc.publish(f"other.{base}", b"not matched")
        await nc.publish(f"{base}.a", b"one")
        await nc.flush()

    js(pub)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["payload_text"] for e in events] == ["one", "two", "one"]
    assert [e["properties"]["subject"] for e in events] == [f"{base}.a", f"{base}.b.c", f"{base}.a"]
    assert events[0]["headers"] == {"h": "1"} and events[0]["offset"] is None
    assert len({e["id"] for e in events}) == 3, "core messages have no identity: each is its own event"
    # A subject nobody publishes to: nothing, and the capture ends at its duration.
    t0 = time.time()
    s = json.loads(nat("capture", "n", unique("nobody") + ".x", "--duration", "2s", "--json"))
    assert s["captured"] == 0 and s["stopped_by"] == "duration" and time.time() - t0 < 15, s


def test_replay_to_stream_is_acked_and_deduplicated(nat):
    src, sent = make_stream(4)
    nat("capture", "n", src, "--stop-at-end")
    dst = unique("D")

    async def mk(nc, j):
        await j.add_stream(StreamConfig(name=dst, subjects=[f"{dst.lower()}.>"]))

    js(mk)
    r = json.loads(nat("replay", f"source = {src}", "--to", f"n:{dst.lower()}.in", "--json"))
    assert (r["sent"], r["failed"], r["unknown"]) == (4, 0, 0), r

    async def read_back(nc, j):
        return [await j.get_msg(dst, seq) for seq in range(1, 5)]

    got = js(read_back)
    assert [m.data for m in got] == [b for _, b, _ in sent]
    for m, (_, _, h) in zip(got, sent):
        assert m.subject == f"{dst.lower()}.in"
        assert {k: m.headers[k] for k in h} == h
        assert m.headers["Nats-Msg-Id"] == m.headers["sluice-replay-id"]
        assert m.headers["sluice-source"]

    # A retry of the same replay carries the same Nats-Msg-Id: the stream stores it once.
    async def retry(nc, j):
        ack = await j.publish(f"{dst.lower()}.in", got[0].data, headers=dict(got[0].headers))
        return ack.duplicate, (await j.stream_info(dst)).state.messages

    assert js(retry) == (True, 4)


def test_replay_to_core_subject_is_not_confirmed(nat):
    src, sent = make_stream(3)
    nat("capture", "n", src, "--stop-at-end")
    target = unique("plain") + ".subject"
    received = []

    async def listen_and_replay(nc, j):
        async def cb(m):
            received.append((m.subject, m.data, dict(m.headers or {})))

        await nc.subscribe(target, cb=cb)
        await nc.flush()
        p = await asyncio.create_subprocess_exec(
            SLUICE, "replay", f"source = {src}", "--to", f"n:{target}", "--json",
            env=nat.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        await asyncio.sleep(0.5)
        return p.returncode, json.loads(out), err.decode()

    code, r, err = js(listen_and_replay)
    assert code != 0 and (r["sent"], r["failed"], r["unknown"]) == (0, 0, 3), r
    assert all("sent, not confirmed" in why for _, why in r["unknowns"])
    assert [d for _, d, _ in received] == [b for _, b, _ in sent]
    assert all(h["x-kind"] == "order" and "Nats-Msg-Id" not in h for _, _, h in received)


def test_server_gone_and_max_payload(nat, servers, tmp_path):
    store = tmp_path / "js"
    proc, url = servers(config=f'max_payload: 4096\njetstream {{ store_dir: "{store}" }}\n')
    nat("connection", "add", "nats", "priv", "--url", url)

    async def fill(nc, j):
        await j.add_stream(StreamConfig(name="P", subjects=["p.>"]))
        for i in range(3):
            await j.publish("p.x", f"small {i}".encode())

    run(_with_js(fill, url))
    assert json.loads(nat("capture", "priv", "P", "--stop-at-end", "--json"))["captured"] == 3
    # An event larger than the destination's max_payload fails, saying why; the others go.
    big, _ = make_stream(0)

    async def big_one(nc, j):
        await j.publish(f"{big.lower()}.x", b"x" * 5000)
        await j.publish(f"{big.lower()}.x", b"fits")

    js(big_one)
    nat("capture", "n", big, "--stop-at-end")
    p = nat.run("replay", f"source = {big}", "--to", "priv:p.in", "--json", check=False)
    r = json.loads(p.stdout)
    assert (r["sent"], r["failed"], r["unknown"]) == (1, 1, 0), r
    assert "max_payload of 4096 bytes" in r["errors"][0][1]
    # The server goes away under a running capture: it ends within its broker timeout.
    cap = nat.popen("capture", "priv", "P", "--broker-timeout", "3s", "--json")
    time.sleep(1.5)
    proc.kill()
    proc.wait(10)
    t0 = time.time()
    out, err = cap.communicate(timeout=30)
    assert cap.returncode != 0 and time.time() - t0 < 15, (out, err)
    assert "unreachable" in err or "unreachable" in out, (out, err)


def test_a_restarted_server_is_read_on_without_loss_or_duplicates(nat, tmp_path):
    """The server restarts (same port, same store) under a running capture shorter than its
    broker timeout: the capture reads on, and the lake holds every message once."""
    store, port = tmp_path / "js", free_port()
    cmd = [shutil.which("nats-server") or "nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]

    def start():
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return p
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    url = f"nats://127.0.0.1:{port}"
    proc = start()
    try:
        nat("connection", "add", "nats", "again", "--url", url)

        async def publish(lo, hi, create=False):
            async def f(nc, j):
                if create:
                    await j.add_stream(StreamConfig(name="R", subjects=["r.>"]))
                for i in range(lo, hi):
                    await j.publish("r.x", f"m{i}".encode())
            await _with_js(f, url)

        run(publish(0, 5, create=True))
        cap = nat.popen("capture", "again", "R", "--from", "beginning", "--max-messages", "10",
                        "--broker-timeout", "30s", "--json")
        deadline = time.time() + 20
        while nat("search", "source = R", "--count").strip() != "5":
            assert time.time() < deadline and cap.poll() is None, "the capture read the first five"
            time.sleep(0.2)
        proc.terminate()
        proc.wait(10)
        time.sleep(1)
        proc = start()
        deadline = time.time() + 15
        while True:
            try:
                run(publish(5, 10))
                break
            except Exception:
                # JetStream needs a moment after a restart before it takes publishes.
                assert time.time() < deadline
                time.sleep(0.3)
        out, err = cap.communicate(timeout=60)
        assert cap.returncode == 0, (out, err)
        assert json.loads(out)["captured"] == 10, out
        events = nat.jsonl("search", "source = R", "--format", "jsonl", "--limit", "100")
        assert sorted(e["offset"] for e in events) == list(range(1, 11)), "each message once"
        assert sorted(e["payload_text"] for e in events) == sorted(f"m{i}" for i in range(10))
    finally:
        proc.terminate()
        proc.wait(10)


def make_certs(d):
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    def ssl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=sluice-test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test CA")
def test_tls(nat, servers, tmp_path):
    make_certs(tmp_path)
    _, url = servers("--tls", "--tlscert", tmp_path / "server.pem", "--tlskey", tmp_path / "server.key")
    nat("connection", "add", "nats", "tls", "--url", url, "--tls-ca", tmp_path / "ca.pem")
    assert "reachable" in nat("connection", "test", "tls")
    assert "tls" in next(l for l in nat("connection", "list").splitlines() if l.startswith("tls "))
    # Without the CA the server's certificate is not trusted: said, not a crash.
    nat("connection", "add", "nats", "untrusted", "--url", url)
    p = nat.run("connection", "test", "untrusted", check=False)
    assert p.returncode != 0 and "certificate" in p.stderr and "panicked" not in p.stderr, p.stderr


def test_replay_across_kafka(nat, topic):
    from conftest import consume, produce

    src, sent = make_stream(3)
    nat("capture", "n", src, "--stop-at-end")
    # NATS -> Kafka: headers carried, no key, NATS properties travel in a header.
    t = topic("nats-x", 1)
    r = json.loads(nat("replay", f"source = {src}", "--to", f"local:{t}", "--json"))
    assert r["sent"] == 3, r
    records = consume(t, partitions=1, expect=3)
    assert [rec.value() for rec in records] == [b for _, b, _ in sent]
    h = dict(records[1].headers())
    assert h["trace-id"] == b"t-1" and records[1].key() is None
    props = json.loads(h["sluice-properties"])
    assert props["subject"] == sent[1][0] and props["stream"] == src and props["seq"] == 2
    # Kafka -> NATS: headers become NATS headers; the Kafka key has no place on NATS.
    t2 = topic("x-nats", 1)
    produce(t2, [{"value": b"from kafka", "key": b"k1", "headers": [("trace-id", b"kafka-1")]}])
    nat("capture", "local", t2, "--stop-at-end")
    dst = unique("K")

    async def mk(nc, j):
        await j.add_stream(StreamConfig(name=dst, subjects=[f"{dst.lower()}.>"]))

    js(mk)
    r = json.loads(nat("replay", f"source = {t2}", "--to", f"n:{dst.lower()}.in", "--json"))
    assert (r["sent"], r["failed"], r["unknown"]) == (1, 0, 0), r

    async def read(nc, j):
        return await j.get_msg(dst, 1)

    m = js(read)
    assert m.data == b"from kafka" and m.headers["trace-id"] == "kafka-1"
    assert m.headers["sluice-source"] and m.headers["Nats-Msg-Id"] == m.headers["sluice-replay-id"]
