"""HTTP endpoints (webhooks) end to end: events captured from Kafka (tansu) are replayed to a
local HTTP server this file runs, which records every request. Bodies arrive byte for byte,
headers mapped, the connection's secret headers sent and never shown; CloudEvents binary and
structured modes; retries on 5xx, refusals, silence and --rate, with exact counts."""

import base64
import json
import threading
import tomllib
import time
import urllib.parse
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import produce

SECRET = "Bearer tok-" + uuid.uuid4().hex


class Endpoint:
    """A local HTTP server on a free 127.0.0.1 port. `answer(n)` gives the status for the
    n-th request of a body (1 = first try); None never answers."""

    def __init__(self, answer=lambda n: 200, delay=0.0):
        self.requests = []
        self.tries = {}
        self.busy = self.most_busy = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    tries = outer.tries[body] = outer.tries.get(body, 0) + 1
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": self.headers, "body": body, "at": time.monotonic()})
                    outer.busy += 1
                    outer.most_busy = max(outer.most_busy, outer.busy)
                time.sleep(delay)
                with outer.lock:
                    outer.busy -= 1
                status = answer(tries)
                if status is None:
                    outer.release.wait(30)
                    return
                reply = b"nope: bad event" if status >= 400 else b"ok"
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_PATCH = do_OPTIONS = handle_any

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client closing a kept-alive connection is no news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self):
        with self.lock:
            return [r for r in self.requests if r["method"] != "OPTIONS"]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    made = []

    def make(answer=lambda n: 200, delay=0.0):
        e = Endpoint(answer, delay)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


def ms(rfc3339):
    return round(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def records(n):
    out = []
    for i in range(n):
        value = json.dumps({"order": i, "note": "é"}).encode() if i % 2 == 0 else bytes([0xFF, 0, i, 0x80])
        out.append({"key": f"k{i}".encode(), "value": value, "partition": 0, "timestamp": 1795168800000 + i,
                    "headers": [("trace-id", f"t{i}".encode()), ("bin", bytes([0xFF, 0x00, i])),
                                ("bad name", b"x")]})
    return out


def capture(sluice, topic, n):
    """Events captured from Kafka: (topic, records)."""
    t = topic("hooks", 1)
    recs = records(n)
    produce(t, recs, one_batch_each=True)
    summary = json.loads(sluice("capture", "local", t, "--stop-at-end", "--json"))
    assert summary["captured"] == len(recs), summary
    return t, recs


@pytest.fixture
def captured(sluice, topic):
    return capture(sluice, topic, 6)


def add(sluice, name, url, *extra, headers=("Authorization: " + SECRET, "X-Tenant: acme")):
    args = ["connection", "add", "http", name, "--url", url, *extra]
    for h in headers:
        args += ["--header", h]
    return sluice.run(*args)


def replay(sluice, t, to, *extra, check=True, env=None):
    p = sluice.run("replay", f"source = {t}", "--to", to, "--json", *extra, check=check, env=env)
    lines = [l for l in p.stdout.splitlines() if l.strip().startswith("{")]
    assert lines, p.stdout + p.stderr
    return json.loads(lines[-1]), p


def test_raw_replay_bytes_headers_and_secret(sluice, captured, endpoint):
    t, recs = captured
    ep = endpoint()
    p = add(sluice, "hook", ep.url + "/in")
    assert SECRET not in p.stdout + p.stderr
    listing = sluice("connection", "list", "--format", "json")
    assert SECRET not in listing and "hook" in listing
    r = sluice.run("connection", "test", "hook", env={"SLUICE_LOG": "debug"})
    assert "reachable" in r.stdout and SECRET not in r.stdout + r.stderr
    opts = [r for r in ep.requests if r["method"] == "OPTIONS"]
    assert opts and opts[0]["headers"]["Authorization"] == SECRET, "the check sends the headers"
    cfg = tomllib.loads((sluice.config / "config.toml").read_text())["connections"]["hook"]
    # With the keyring off (as in these tests) the secret is the 0600 file's password, and
    # nowhere among the settings.
    assert cfg["url"] == ep.url + "/in"
    assert all(SECRET not in str(v) for k, v in cfg.items() if k != "password")

    a, p = replay(sluice, t, "hook:/orders", env={"SLUICE_LOG": "debug"})
    assert (a["sent"], a["failed"], a["unknown"]) == (6, 0, 0), a
    assert SECRET not in p.stdout + p.stderr
    got = ep.posts()
    assert len(got) == 6
    assert sorted(r["body"] for r in got) == sorted(r["value"] for r in recs), "byte for byte, once each"
    by_key = {r["headers"]["sluice-key"]: r for r in got}
    for i, rec in enumerate(recs):
        r = by_key[f"k{i}"]
        h = r["headers"]
        assert r["method"] == "POST" and r["path"] == "/in/orders"
        assert r["body"] == rec["value"]
        assert h["Authorization"] == SECRET and h["X-Tenant"] == "acme"
        assert h["trace-id"] == f"t{i}"
        assert base64.b64decode(h["bin-b64"]) == bytes([0xFF, 0x00, i])
        assert json.loads(h["sluice-headers"]) == [["bad name", base64.b64encode(b"x").decode()]]
        assert h["Content-Type"] == ("application/json" if i % 2 == 0 else "application/octet-stream")
        assert h["sluice-source"] == f"local/{t}/0/{i}"
        assert h["Idempotency-Key"] == h["sluice-replay-id"]
        assert ms(h["sluice-timestamp"]) == rec["timestamp"]


def test_to_the_connection_url_itself_and_put(sluice, captured, endpoint):
    """`--to NAME` (no target) sends to the URL as it is; the method is a setting."""
    t, recs = captured
    ep = endpoint()
    add(sluice, "hook", ep.url + "/exact?x=1", "--set", "method=PUT", headers=())
    a, _ = replay(sluice, t, "hook")
    assert (a["sent"], a["failed"], a["unknown"]) == (6, 0, 0), a
    assert {(r["method"], r["path"]) for r in ep.posts()} == {("PUT", "/exact?x=1")}
    assert all("Authorization" not in r["headers"] for r in ep.posts())


def test_cloudevents_binary(sluice, captured, endpoint):
    t, recs = captured
    ep = endpoint()
    add(sluice, "ce", ep.url, "--set", "body=cloudevents-binary")
    a, _ = replay(sluice, t, "ce:")
    assert a["sent"] == 6, a
    got = ep.posts()
    assert sorted(r["body"] for r in got) == sorted(r["value"] for r in recs)
    ids = set()
    for r in got:
        h = r["headers"]
        assert h["ce-specversion"] == "1.0" and h["ce-type"] == "sluice.replay"
        assert urllib.parse.unquote(h["ce-source"]) == f"/sluice/local/{t}"
        assert h["ce-id"] and ms(h["ce-time"]) == int(h["sluice-key"][1:]) + 1795168800000
        assert h["ce-partitionkey"] == h["sluice-key"]
        assert h["Authorization"] == SECRET
        ids.add(h["ce-id"])
        i = int(h["sluice-key"][1:])
        assert h["Content-Type"] == ("application/json" if i % 2 == 0 else "application/octet-stream")
    assert len(ids) == 6


def test_cloudevents_structured(sluice, captured, endpoint):
    t, recs = captured
    ep = endpoint()
    add(sluice, "ces", ep.url, "--set", "body=cloudevents-structured")
    a, _ = replay(sluice, t, "ces:/ce")
    assert a["sent"] == 6, a
    for r in ep.posts():
        assert r["headers"]["Content-Type"] == "application/cloudevents+json"
        doc = json.loads(r["body"])
        assert doc["specversion"] == "1.0" and doc["type"] == "sluice.replay"
        assert doc["source"] == f"/sluice/local/{t}" and doc["id"]
        i = int(doc["partitionkey"][1:])
        if i % 2 == 0:
            assert doc["data"] == json.loads(recs[i]["value"]) and doc["datacontenttype"] == "application/json"
            # The payload's own bytes, inline.
            assert r["body"].endswith(b',"data":' + recs[i]["value"] + b"}")
        else:
            assert base64.b64decode(doc["data_base64"]) == recs[i]["value"] and "data" not in doc


def test_retried_after_500_then_all_sent(sluice, captured, endpoint):
    t, recs = captured
    ep = endpoint(lambda n: 500 if n == 1 else 200)
    add(sluice, "flaky", ep.url)
    a, _ = replay(sluice, t, "flaky:")
    assert (a["sent"], a["failed"], a["unknown"]) == (6, 0, 0), a
    assert len(ep.posts()) == 12
    assert all(n == 2 for n in ep.tries.values())
    # The replay id is stable across retries: an endpoint can deduplicate by it.
    keys = {}
    for r in ep.posts():
        keys.setdefault(r["body"], set()).add(r["headers"]["Idempotency-Key"])
    assert all(len(v) == 1 for v in keys.values())


def test_429_honours_retry_after(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint(lambda n: 429 if n == 1 else 200)
    add(sluice, "busy", ep.url)
    a, _ = replay(sluice, t, "busy:")
    assert a["sent"] == 6, a
    by_body = {}
    for r in ep.posts():
        by_body.setdefault(r["body"], []).append(r["at"])
    assert all(len(v) == 2 and v[1] - v[0] >= 0.9 for v in by_body.values()), by_body


def test_400_fails_with_the_status(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint(lambda n: 400)
    add(sluice, "strict", ep.url)
    a, p = replay(sluice, t, "strict:", check=False)
    assert (a["sent"], a["failed"], a["unknown"]) == (0, 6, 0), a
    assert len(ep.posts()) == 6, "a 400 is not tried again"
    text = json.dumps(a)
    assert "HTTP 400" in text and "nope: bad event" in text and SECRET not in p.stdout + p.stderr


def test_a_gateway_timeout_is_unknown_and_not_sent_again(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint(lambda n: 504)
    add(sluice, "gw", ep.url)
    a, _ = replay(sluice, t, "gw:", check=False)
    assert (a["sent"], a["failed"], a["unknown"]) == (0, 0, 6), a
    assert len(ep.posts()) == 6, "the upstream may have acted: never sent again"
    assert "HTTP 504" in json.dumps(a)


def test_silent_endpoint_ends_within_the_timeout_as_unknown(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint(lambda n: None)
    add(sluice, "silent", ep.url, "--set", "timeout_ms=1000")
    start = time.monotonic()
    a, _ = replay(sluice, t, "silent:", check=False)
    took = time.monotonic() - start
    assert (a["sent"], a["failed"], a["unknown"]) == (0, 0, 6), a
    assert len(ep.posts()) == 6, "no answer is never sent again"
    assert took < 10, took
    assert "no answer within 1000 ms" in json.dumps(a)


def test_refused_connection_fails_and_ends(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint()
    url = ep.url
    ep.close()
    add(sluice, "gone", url, "--set", "timeout_ms=500")
    r = sluice.run("connection", "test", "gone", check=False)
    assert r.returncode != 0 and "unreachable" in (r.stdout + r.stderr).lower()
    start = time.monotonic()
    a, _ = replay(sluice, t, "gone:", "--broker-timeout", "2s", check=False)
    assert a["sent"] == 0 and a["unknown"] == 0, a
    assert a["failed"] + a["not_sent"] == 6 and a["failed"] >= 1, a
    assert "connection refused" in json.dumps(a)
    assert time.monotonic() - start < 15


def test_password_in_the_url_becomes_basic_auth(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint()
    url = ep.url.replace("http://", "http://ada:hush-123@") + "/basic"
    sluice("connection", "add", "http", "basic", "--url", url)
    assert "hush-123" not in sluice("connection", "list")
    cfg = tomllib.loads((sluice.config / "config.toml").read_text())["connections"]["basic"]
    assert cfg["url"] == ep.url + "/basic"
    a, p = replay(sluice, t, "basic")
    assert a["sent"] == 6 and "hush-123" not in p.stdout + p.stderr, a
    assert {r["headers"]["Authorization"] for r in ep.posts()} == {
        "Basic " + base64.b64encode(b"ada:hush-123").decode()}


def test_check_says_when_the_headers_are_refused(sluice, endpoint):
    ep = endpoint(lambda n: 401)
    add(sluice, "locked", ep.url)
    r = sluice.run("connection", "test", "locked", check=False)
    assert r.returncode != 0 and "authentication failed" in r.stderr and "--header" in r.stderr, r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_rate_is_honoured(sluice, captured, endpoint):
    t, _ = captured
    ep = endpoint()
    add(sluice, "paced", ep.url)
    start = time.monotonic()
    a, _ = replay(sluice, t, "paced:", "--rate", "2")
    assert a["sent"] == 6, a
    ats = sorted(r["at"] for r in ep.posts())
    # Six at 2/s, evenly (no burst of a second's worth first): one each 0.5 s, so the last
    # comes 2.5 s after the first.
    assert ats[-1] - ats[0] >= 2.0, ats
    assert all(b - a >= 0.35 for a, b in zip(ats, ats[1:])), ats
    assert time.monotonic() - start < 20


def test_requests_overlap_up_to_the_concurrency(sluice, topic, endpoint):
    t, recs = capture(sluice, topic, 16)
    ep = endpoint(delay=0.4)
    add(sluice, "pool", ep.url, "--set", "concurrency=4")
    start = time.monotonic()
    a, _ = replay(sluice, t, "pool:")
    took = time.monotonic() - start
    assert (a["sent"], a["failed"], a["unknown"]) == (16, 0, 0), a
    # One at a time would take 6.4 s; four at a time 1.6 s.
    assert ep.most_busy == 4, ep.most_busy
    assert took < 4.5, took
    assert sorted(r["body"] for r in ep.posts()) == sorted(r["value"] for r in recs)


def test_flush_wait_ends_a_slow_request_as_unknown(sluice, captured, endpoint):
    """The replay's --broker-timeout bounds the whole wait, even under a longer request
    timeout: what is still out then is unknown, what never left failed; each counted once."""
    t, _ = captured
    ep = endpoint(lambda n: None)
    add(sluice, "slow", ep.url, "--set", "timeout_ms=20000", "--set", "concurrency=2")
    start = time.monotonic()
    a, _ = replay(sluice, t, "slow:", "--broker-timeout", "2s", check=False)
    took = time.monotonic() - start
    assert a["sent"] == 0 and a["unknown"] == len(ep.posts()) >= 2, a
    assert a["failed"] + a["unknown"] + a["not_sent"] == 6, a
    assert took < 10, took


def test_bad_headers_are_refused_without_echoing_values(sluice):
    r = sluice.run("connection", "add", "http", "bad", "--url", "http://127.0.0.1:9/",
                   "--header", "Authorization Bearer hush-123", check=False)
    assert r.returncode != 0 and "Name: value" in r.stderr and "hush-123" not in r.stdout + r.stderr
    r = sluice.run("connection", "add", "http", "bad", "--url", "http://127.0.0.1:9/",
                   "--header", "X-Evil: a\r\nHost: b", check=False)
    assert r.returncode != 0 and "control character" in r.stderr
    r = sluice.run("connection", "add", "http", "bad", "--url", "http://127.0.0.1:9/",
                   "--set", "body=xml", check=False)
    assert r.returncode != 0 and "cloudevents-binary" in r.stderr
    sluice("connection", "add", "http", "ok", "--url", "http://127.0.0.1:9/")
    r = sluice.run("tail", "ok", "anything", "--max-messages", "1", check=False)
    assert r.returncode != 0 and "replay destination" in r.stderr, r.stderr
    assert json.loads(sluice("topics", "ok", "--format", "json")) == []


def test_amqp_properties_travel_in_headers(sluice, endpoint):
    """An event from RabbitMQ: its properties arrive in `sluice-properties` (JSON) and its
    content type as the request's."""
    pika = pytest.importorskip("pika")
    ch = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
    x = f"hooks-{uuid.uuid4().hex[:8]}"
    ch.exchange_declare(x, "fanout", auto_delete=False)
    sluice("connection", "add", "amqp", "rmq", "--url", "amqp://guest:guest@127.0.0.1:5672/%2f")
    p = sluice.popen("capture", "rmq", x, "--duration", "3s", "--json")
    time.sleep(1.5)  # the tap queue is bound once the capture has started
    for i in range(2):
        ch.basic_publish(x, "order.paid", f"paid {i}".encode(), pika.BasicProperties(
            content_type="text/plain", correlation_id=f"c-{i}", headers={"traceparent": f"00-ab{i}-01"}))
    out, err = p.communicate(timeout=60)
    assert json.loads(out)["captured"] == 2, err
    ch.exchange_delete(x)
    ep = endpoint()
    add(sluice, "hook", ep.url)
    a, _ = replay(sluice, x, "hook:/amqp")
    assert a["sent"] == 2, a
    for r in ep.posts():
        h = r["headers"]
        i = int(r["body"].decode().split()[-1])
        assert r["body"] == f"paid {i}".encode() and r["path"] == "/amqp"
        assert h["Content-Type"] == "text/plain"
        assert h["traceparent"] == f"00-ab{i}-01"
        props = json.loads(h["sluice-properties"])
        assert props["correlation_id"] == f"c-{i}" and props["routing_key"] == "order.paid"
