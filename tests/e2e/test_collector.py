"""Collectors end to end: `sluice collect` listens for HTTP and gRPC, and independent clients
(requests, httpx, the CloudEvents SDK, grpcio) push events. A 2xx is only sent once the events
are in the lake, which a second Sluice process searching the lake while the collector still
runs confirms; retries do not duplicate; a bad event in a batch is refused alone; a body over
the limit gets 413, a missing token 401; kill -9 right after 2xx loses nothing acknowledged;
and an event collected, replayed to another Sluice's collector, arrives identical."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import requests
try:  # the CloudEvents SDK 2.x keeps the 1.x API under v1
    from cloudevents.v1.conversion import to_binary, to_structured
    from cloudevents.v1.http import CloudEvent
except ImportError:
    from cloudevents.conversion import to_binary, to_structured
    from cloudevents.http import CloudEvent

from conftest import ROOT, SLUICE, Sluice


class Collector:
    """`sluice collect` on free ports, with where it listens and the token it printed."""

    def __init__(self, s, *args, name="in"):
        self.s = s
        self.p = subprocess.Popen(
            [SLUICE, "collect", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--name", name, *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s.env)
        self.http = self.grpc = self.token = None
        seen = []
        deadline = time.time() + 60
        while time.time() < deadline and not (self.http and self.grpc and self.token):
            line = self.p.stderr.readline()
            if not line:
                break
            seen.append(line)
            words = line.split()
            if words[:2] == ["http", "POST"]:
                self.http = words[2].replace("{source}", "")
            elif words[:1] == ["grpc"]:
                self.grpc = words[1]
            elif words[:1] == ["token"]:
                self.token = words[1]
        assert self.http and self.grpc and self.token, "".join(seen)
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def post(self, source, body=b"", headers=None, **kw):
        return requests.post(self.http + source, data=body, headers={**self.auth, **(headers or {})}, timeout=30, **kw)

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=30)
        return self.p.returncode, out, err


@pytest.fixture
def s(tmp_path):
    return Sluice(tmp_path)


def events(s, flt='connection = "in"'):
    return s.jsonl("search", flt, "--format", "jsonl", "--limit", "100000")


def test_each_body_kind_is_in_the_lake_when_answered(s):
    c = Collector(s)
    try:
        # Raw bytes, kept byte for byte with their headers (never the token).
        raw = bytes(range(256))
        r = c.post("orders", raw, {"content-type": "application/octet-stream", "x-trace": "t-1"})
        assert r.status_code == 200 and r.json() == {"accepted": 1}, r.text
        # A CloudEvent in binary and in structured mode, by the CloudEvents SDK.
        ev = CloudEvent({"type": "order.created", "source": "/shop", "id": "e-1", "subject": "o-1",
                         "time": "2026-11-30T10:00:00Z", "traceparent": "00-abc-01"}, {"n": 1, "status": "FAILED"})
        h, b = to_binary(ev)
        assert c.post("orders", b, h).status_code == 200
        ev2 = CloudEvent({"type": "order.paid", "source": "/shop", "id": "e-2"}, {"n": 2})
        h, b = to_structured(ev2)
        assert c.post("orders", b, h).status_code == 200
        # A batch, and newline-delimited JSON, through httpx.
        batch = [{"specversion": "1.0", "id": f"b-{i}", "source": "/batch", "type": "t", "data": {"i": i}} for i in range(3)]
        r = httpx.post(c.http + "orders", content=json.dumps(batch), timeout=30,
                       headers={**c.auth, "content-type": "application/cloudevents-batch+json"})
        assert r.status_code == 200 and r.json() == {"accepted": 3}, r.text
        r = httpx.post(c.http + "lines", content=b'{"line":1}\n{"line":2}\n\n{"line":3}\n', timeout=30,
                       headers={**c.auth, "content-type": "application/x-ndjson"})
        assert r.json() == {"accepted": 3}, r.text

        # Answered means durable: another process finds every event now, the collector running.
        got = events(s)
        assert len(got) == 9, [e["payload_text"] for e in got]
        (rawev,) = [e for e in got if e["headers"].get("x-trace") == "t-1"]
        import base64
        assert base64.b64decode(rawev["payload"]) == raw
        assert "authorization" not in {k.lower() for k in rawev["headers"]}
        assert rawev["bus"] == "collector" and rawev["source"] == "orders"
        # Both modes are stored alike: attributes as ce- headers, searchable.
        (e1,) = events(s, 'header.ce-type = "order.created" and status = "FAILED"')
        assert e1["headers"]["ce-id"] == "e-1" and e1["headers"]["ce-subject"] == "o-1"
        assert e1["headers"]["ce-traceparent"] == "00-abc-01"
        assert e1["timestamp"].startswith("2026-11-30T10:00:00")
        assert e1["decoded"] == {"n": 1, "status": "FAILED"}
        (e2,) = events(s, 'header.ce-source = "/shop" and header.ce-type = "order.paid"')
        # The envelope's application/cloudevents+json is not the data's type.
        assert e2["decoded"] == {"n": 2} and "content-type" not in e2["headers"]
        assert len(events(s, "source = lines")) == 3
    finally:
        rc, out, err = c.stop()
    assert rc == 0, err
    assert "captured 0 events" not in out


def test_retries_do_not_duplicate_within_and_across_runs(s):
    c = Collector(s)
    ev = CloudEvent({"type": "t", "source": "/retry", "id": "same"}, {"v": 1})
    h, b = to_binary(ev)
    for _ in range(3):
        assert c.post("orders", b, h).status_code == 200
    sh, sb = to_structured(ev)
    assert c.post("orders", sb, sh).status_code == 200
    # Concurrent retries of one event, and an Idempotency-Key on a raw body.
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: c.post("orders", b, h).status_code, range(16)))
        codes += list(pool.map(lambda _: c.post("raw", b"x", {"Idempotency-Key": "k-1"}).status_code, range(8)))
    assert set(codes) == {200}
    # NDJSON under an Idempotency-Key: each line once, however often the body comes.
    lines = b'{"n":1}\n{"n":2}\n'
    for _ in range(3):
        assert c.post("lines", lines, {"content-type": "application/x-ndjson", "Idempotency-Key": "nd-1"}).json() == {"accepted": 2}
    c.stop()
    c = Collector(s)
    try:
        assert c.post("orders", b, h).status_code == 200
        assert c.post("raw", b"x", {"Idempotency-Key": "k-1"}).status_code == 200
    finally:
        rc, out, _ = c.stop()
    assert "2 already in the lake" in out, out
    assert len(events(s, 'source = orders')) == 1
    assert len(events(s, 'source = raw')) == 1
    assert len(events(s, 'source = lines')) == 2


def test_a_bad_event_is_refused_alone_and_bad_requests_keep_nothing(s):
    s("connection", "add", "collector", "in", "--set", "max_body_bytes=4096")
    c = Collector(s)
    try:
        batch = [
            {"specversion": "1.0", "id": "1", "source": "/b", "type": "t", "data": 1},
            {"specversion": "1.0", "id": "2", "type": "t"},
            {"specversion": "1.0", "id": "3", "source": "/b", "type": "t", "time": "yesterday"},
            {"specversion": "1.0", "id": "4", "source": "/b", "type": "t", "data": 4},
        ]
        r = c.post("orders", json.dumps(batch), {"content-type": "application/cloudevents-batch+json"})
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["accepted"] == 2
        assert [x["index"] for x in body["rejected"]] == [1, 2]
        assert "source" in body["rejected"][0]["error"] and "time" in body["rejected"][1]["error"]
        # A structured event without its type names it; broken JSON says so.
        r = c.post("orders", '{"specversion":"1.0","id":"x","source":"/b"}', {"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and "type missing" in r.json()["error"], r.text
        r = c.post("orders", '{"specversion":', {"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and "not JSON" in r.json()["error"], r.text
        # Over the limit, with a length and chunked without one.
        r = c.post("orders", b"x" * 5000)
        assert r.status_code == 413 and "4096" in r.json()["error"], r.text
        r = c.post("orders", (b"x" * 1000 for _ in range(6)))
        assert r.status_code == 413, r.text
        # No token, a wrong one.
        r = requests.post(c.http + "orders", data=b"x", timeout=10)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = requests.post(c.http + "orders", data=b"x", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert r.status_code == 401
        assert requests.get(c.http + "orders", headers=c.auth, timeout=10).status_code == 405
        assert requests.post(c.http.replace("/v1/events/", "/v2/"), headers=c.auth, timeout=10).status_code == 404
        got = events(s)
        assert sorted(e["payload_text"] for e in got) == ["1", "4"], [e["payload_text"] for e in got]
    finally:
        c.stop()


def test_a_body_past_8_mib_is_kept_whole(s):
    c = Collector(s)
    try:
        big = os.urandom(9 << 20)
        r = c.post("big", big, {"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    finally:
        c.stop()
    (e,) = s.jsonl("search", "source = big", "--format", "jsonl")
    assert e["size"] == len(big) and not e["truncated"]
    import base64
    assert base64.b64decode(e["payload"]) == big


def test_kill_9_after_2xx_loses_nothing_acknowledged(s):
    c = Collector(s)
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n):
        with requests.Session() as sess:
            i = 0
            while not stop.is_set():
                eid = f"{n}-{i}"
                ce = {"specversion": "1.0", "id": eid, "source": "/load", "type": "t", "data": {"i": i}}
                try:
                    r = sess.post(c.http + "orders", data=json.dumps(ce), timeout=10,
                                  headers={**c.auth, "content-type": "application/cloudevents+json"})
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.append(eid)
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 300 and time.time() < deadline:
        time.sleep(0.05)
    c.p.send_signal(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    c.p.wait(10)
    with lock:
        acknowledged = set(acked)
    assert len(acknowledged) >= 300
    stored = {e["headers"]["ce-id"] for e in events(s)}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events are not in the lake"


def grpc_modules(tmp_path):
    from grpc_tools import protoc
    import grpc_tools
    out = tmp_path / "grpc"
    out.mkdir()
    wkt = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{ROOT / 'protos'}", f"-I{wkt}", f"--python_out={out}", f"--grpc_python_out={out}",
                      "sluice/collector/v1/collector.proto"])
    assert rc == 0
    sys.path.insert(0, str(out))
    from sluice.collector.v1 import collector_pb2, collector_pb2_grpc
    return collector_pb2, collector_pb2_grpc


def test_grpc_unary_and_streams(s, tmp_path):
    import grpc
    pb, stubs = grpc_modules(tmp_path)
    c = Collector(s)
    try:
        ch = grpc.insecure_channel(c.grpc)
        stub = stubs.CollectorStub(ch)
        md = [("authorization", f"Bearer {c.token}")]
        ev = pb.Event(body=b'{"one":1}', source="orders", id="u-1", metadata={"trace": "t-9", "a": "b"})
        ev.timestamp.FromSeconds(1_795_000_000)
        r = stub.Send(ev, metadata=md, timeout=30)
        assert r.accepted == 1 and not r.rejected
        assert stub.Send(ev, metadata=md, timeout=30).accepted == 1  # a retry
        with pytest.raises(grpc.RpcError) as e:
            stub.Send(ev, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            stub.Send(pb.Event(body=b"x"), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "source" in e.value.details()
        far = pb.Event(body=b"x", source="orders")
        far.timestamp.seconds = 300_000_000_000
        with pytest.raises(grpc.RpcError) as e:
            stub.Send(far, metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "9999" in e.value.details()
        # Past the body limit: refused by the server before it is read into an event.
        with pytest.raises(grpc.RpcError) as e:
            stub.Send(pb.Event(body=b"x" * (17 << 20), source="orders"), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE and "limit" in e.value.details(), e.value

        def stream(n, bad_at=None):
            for i in range(n):
                yield pb.Event(body=json.dumps({"i": i}).encode(), source="" if i == bad_at else "stream", id=f"s-{i}")

        r = stub.SendStream(stream(5000, bad_at=17), metadata=md, timeout=60)
        assert r.accepted == 4999 and [x.index for x in r.rejected] == [17], r
        r = stub.SendStream(stream(100), metadata=md, timeout=60)  # all sent again
        assert r.accepted == 100
        (one,) = events(s, "source = orders")
        assert one["headers"] == {"a": "b", "trace": "t-9"} and one["decoded"] == {"one": 1}
        assert one["timestamp_us"] == 1_795_000_000 * 1_000_000
        # The second stream stored only s-17 (refused the first time): the rest were there.
        assert len(events(s, "source = stream")) == 5000
    finally:
        c.stop()


def test_collected_then_replayed_to_another_collector_arrives_identical(s, tmp_path):
    other = Sluice(tmp_path / "other")
    b = Collector(other, name="in")
    a = Collector(s, name="in")
    try:
        ce = CloudEvent({"type": "order.created", "source": "/shop", "id": "rt-1", "subject": "o-9",
                         "time": "2026-11-30T10:00:00Z", "partitionkey": "p1"}, {"n": 1})
        h, body = to_binary(ce)
        assert a.post("orders", body, {**h, "x-custom": "v"}).status_code == 200
        assert a.post("orders", bytes([0, 1, 2, 255]), {"content-type": "application/octet-stream", "x-bin": "y"}).status_code == 200
    finally:
        a.stop()
    s("connection", "add", "http", "to-b", "--url", b.http + "orders", "--header", f"Authorization: Bearer {b.token}")
    out = s("replay", 'connection = "in"', "--to", "to-b")
    assert "2 sent" in out, out
    try:
        sent = {e["payload"]: e for e in events(s)}
        got = {e["payload"]: e for e in events(other)}
        assert set(got) == set(sent)
        for k, e in sent.items():
            r = got[k]
            assert r["source"] == e["source"] and r["timestamp_us"] == e["timestamp_us"]
            extra = {h for h in r["headers"] if h.startswith("sluice-")}
            assert {h: v for h, v in r["headers"].items() if h not in extra} == e["headers"], (r["headers"], e["headers"])
        # The CloudEvent keeps its identity: sending it on again is not stored twice.
        assert got[next(k for k in got if got[k]["headers"].get("ce-id") == "rt-1")]["id"] == "collector:in//shop#rt-1"
    finally:
        b.stop()


def test_a_mapped_source_is_decoded_and_sigterm_flushes(s, pb):
    s("schema", "add", ROOT / "protos" / "shop" / "v1" / "order.proto")
    s("connection", "add", "collector", "in", "--http", "127.0.0.1:0")
    s("schema", "map", "in", "orders", "shop.v1.Order")
    c = Collector(s)
    order = pb.order.Order(id="o-77", amount_cents=1234).SerializeToString()
    assert c.post("orders", order, {"content-type": "application/x-protobuf"}).status_code == 200
    assert c.post("other", b'{"plain":true}').status_code == 200
    rc, out, err = c.stop(signal.SIGTERM)
    assert rc == 0, err
    (o,) = events(s, "source = orders")
    assert o["schema"] == "shop.v1.Order" and o["decoded"]["id"] == "o-77"
    assert events(s, "source = other")[0]["decoded"] == {"plain": True}


def test_only_named_sources_and_no_tail(s):
    s("connection", "add", "collector", "in")
    c = Collector(s, "--source", "orders")
    try:
        assert c.post("orders", b"1").status_code == 200
        r = c.post("payments", b"1")
        assert r.status_code == 404 and "orders" in r.json()["error"]
        # More events than one request may carry, though the body fits: nothing kept.
        r = c.post("orders", b"1\n" * 10001, {"content-type": "application/x-ndjson"})
        assert r.status_code == 413 and "split them" in r.json()["error"], r.text
        assert c.post("orders", b"1\n" * 10000, {"content-type": "application/x-ndjson"}).json() == {"accepted": 10000}
    finally:
        c.stop()
    r = s.run("tail", "in", "orders", check=False)
    assert r.returncode != 0 and "capture it instead" in r.stderr
    # A port in use is said before listening.
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = s.run("collect", "--name", "in", "--http", f"127.0.0.1:{port}", check=False, timeout=30)
    assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    busy.close()
