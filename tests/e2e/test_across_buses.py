"""Across buses end to end: one trace id carried by a message on each of the six readable buses
(Kafka, RabbitMQ, SQS, NATS JetStream, MQTT 5, Redis streams), captured into one lake, found by
one search, and replayed to every bus and to an HTTP endpoint. Independent clients
(confluent-kafka, pika, boto3, nats-py, paho-mqtt, redis-py, http.server) produce the input and
check what arrives, byte for byte, with the trace id where each bus carries headers."""

import asyncio
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import nats
import paho.mqtt.client as mqtt
import pika
import pytest
import redis
from nats.js.api import StreamConfig
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import BROKER, Sluice, consume, create_topic, produce

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
SQS_ENDPOINT = f"http://127.0.0.1:{os.environ.get('SLUICE_SQS_PORT', '19324')}"
NATS_URL = f"nats://127.0.0.1:{os.environ.get('SLUICE_NATS_PORT', '14222')}"
MQTT_PORT = int(os.environ.get("SLUICE_MQTT_PORT", "11883"))
REDIS_PORT = int(os.environ.get("SLUICE_REDIS_PORT", "16379"))

# The order messages are published in; a search lists them newest first, so reversed.
BUSES = ["kafka", "amqp", "sqs", "nats", "mqtt", "redis"]
GAP = 0.1  # seconds between two buses' messages: more than any clock granularity involved


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def sqs():
    return boto3.client("sqs", endpoint_url=SQS_ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def amqp_channel():
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()


def rds():
    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=0)


def nats_do(fn):
    """Runs `fn(nc, js)` on a fresh nats-py connection."""
    async def go():
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=0)
        try:
            return await fn(nc, nc.jetstream())
        finally:
            await nc.close()
    return asyncio.run(go())


class MqttClient:
    """A paho MQTT 5 client, connected, its loop running; keeps what it receives."""

    def __init__(self):
        self.messages = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("e2e-x-"), protocol=mqtt.MQTTv5)
        connected, self.subscribed = threading.Event(), threading.Event()
        self.c.on_connect = lambda *a: connected.set()
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.messages.append(m)
        self.c.connect("127.0.0.1", MQTT_PORT, clean_start=True)
        self.c.loop_start()
        assert connected.wait(5), "no CONNACK"

    def subscribe(self, topic):
        self.c.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)

    def publish(self, topic, payload, user):
        p = Properties(PacketTypes.PUBLISH)
        p.UserProperty = user
        self.c.publish(topic, payload, qos=1, properties=p).wait_for_publish(5)

    def wait(self, n, timeout=10):
        end = time.time() + timeout
        while len(self.messages) < n and time.time() < end:
            time.sleep(0.05)
        return self.messages

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Endpoint:
    """A local HTTP server on a free port that records every request and answers 200."""

    def __init__(self):
        self.requests = []
        lock = self.lock = threading.Lock()
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                with lock:
                    requests.append({"method": self.command, "headers": self.headers, "body": body})
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = do_PATCH = do_OPTIONS = handle_any

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client closing a kept-alive connection is no news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self):
        with self.lock:
            return [r for r in self.requests if r["method"] != "OPTIONS"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One lake holding one event per bus, each with header trace-id = T, published GAP apart
    in BUSES order. Yields (sluice, T, {bus: payload bytes})."""
    s = Sluice(tmp_path_factory.mktemp("across"))
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    s("connection", "add", "amqp", "rmq", "--url", AMQP_URL)
    s.run("connection", "add", "sqs", "aws", "--region", "us-east-1", "--endpoint-url", SQS_ENDPOINT,
          "--access-key-id", "test", env={"SLUICE_PASSWORD": "test"})
    s("connection", "add", "nats", "n", "--url", NATS_URL)
    s("connection", "add", "mqtt", "m5", "--url", f"mqtt://127.0.0.1:{MQTT_PORT}", "--set", "version=5")
    s("connection", "add", "redis", "r", "--url", f"redis://127.0.0.1:{REDIS_PORT}/0")

    trace = unique("trace-")
    payloads = {b: json.dumps({"from": b, "trace": trace, "n": i}).encode() for i, b in enumerate(BUSES)}
    k_src = create_topic("across-src", 1)
    x_src = unique("across-x-")
    ch = amqp_channel()
    ch.exchange_declare(x_src, "topic", auto_delete=False)
    client = sqs()
    q_src = unique("across-q-")
    q_url = client.create_queue(QueueName=q_src)["QueueUrl"]
    n_src = unique("ACROSS")
    m_src = f"across/{uuid.uuid4().hex[:10]}/in"
    r_src = unique("across-s-")
    r = rds()

    async def mk_stream(nc, j):
        await j.add_stream(StreamConfig(name=n_src, subjects=[f"{n_src.lower()}.>"]))
    nats_do(mk_stream)

    # RabbitMQ and MQTT keep no history: their captures run while the messages are published.
    amqp_cap = s.popen("capture", "rmq", x_src, "--duration", "5s", "--json")
    mqtt_cap = s.popen("capture", "m5", m_src, "--max-messages", "1", "--duration", "10s", "--json")
    time.sleep(1.5)  # the tap queue and the subscription are up once the captures have started
    mq = MqttClient()

    def publish(bus):
        body = payloads[bus]
        if bus == "kafka":
            produce(k_src, [{"value": body, "key": b"k-kafka", "headers": [("trace-id", trace.encode())]}])
        elif bus == "amqp":
            ch.basic_publish(x_src, "order.created", body, pika.BasicProperties(
                headers={"trace-id": trace}, content_type="application/json", correlation_id="corr-amqp"))
        elif bus == "sqs":
            client.send_message(QueueUrl=q_url, MessageBody=body.decode(), MessageAttributes={
                "trace-id": {"DataType": "String", "StringValue": trace}})
        elif bus == "nats":
            nats_do(lambda nc, j: j.publish(f"{n_src.lower()}.in", body, headers={"trace-id": trace}))
        elif bus == "mqtt":
            mq.publish(m_src, body, [("trace-id", trace)])
        elif bus == "redis":
            r.xadd(r_src, {"payload": body, "trace-id": trace})

    try:
        for i, bus in enumerate(BUSES):
            if i:
                time.sleep(GAP)
            publish(bus)
    finally:
        mq.close()
    summaries = {}
    for bus, p in (("amqp", amqp_cap), ("mqtt", mqtt_cap)):
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, f"{bus} capture: {err}"
        summaries[bus] = json.loads(out)
    summaries["kafka"] = json.loads(s("capture", "local", k_src, "--stop-at-end", "--json"))
    summaries["sqs"] = json.loads(s("capture", "aws", q_src, "--drain", "--stop-at-end", "--json"))
    summaries["nats"] = json.loads(s("capture", "n", n_src, "--stop-at-end", "--json"))
    summaries["redis"] = json.loads(s("capture", "r", r_src, "--stop-at-end", "--json"))
    for bus, summary in summaries.items():
        assert summary["captured"] == 1, f"{bus}: {summary}"
    s.names = {"nats": n_src, "mqtt": m_src, "redis": r_src}
    try:
        yield s, trace, payloads
    finally:
        ch.exchange_delete(x_src)
        client.delete_queue(QueueUrl=q_url)
        nats_do(lambda nc, j: j.delete_stream(n_src))
        r.delete(r_src)


def newest_first(events):
    """What "newest first" means across buses: by broker time, or by capture time for an
    event that has none (MQTT keeps no time; RabbitMQ only when the publisher sets one)."""
    return sorted(events, key=lambda e: e["timestamp"] or e["captured_at"], reverse=True)


def test_one_search_by_trace_id_spans_every_bus(world):
    s, trace, payloads = world
    events = s.jsonl("search", f'header.trace-id = "{trace}"', "--format", "jsonl")
    assert sorted(e["bus"] for e in events) == sorted(BUSES), "exactly one event per bus"
    for e in events:
        assert e["headers"]["trace-id"] == trace, e
        assert e["payload_text"].encode() == payloads[e["bus"]], e
        assert e["decoded"] == json.loads(payloads[e["bus"]])
    # The events that carry a broker time are listed newest first among themselves.
    timed = [e for e in events if e["timestamp"]]
    assert {e["bus"] for e in timed} >= {"kafka", "sqs", "nats", "redis"}
    assert [e["bus"] for e in timed] == [b for b in BUSES[::-1] if b in {e["bus"] for e in timed}]
    seen = [(e["bus"], e["timestamp"], e["captured_at"]) for e in events]
    assert [e["bus"] for e in newest_first(events)] == BUSES[::-1], f"times follow the publishing: {seen}"
    assert s("search", f'header.trace-id = "{trace}"', "--count").strip() == "6"
    for bus in BUSES:
        [e] = s.jsonl("search", f'event.bus = {bus} and header.trace-id = "{trace}"', "--format", "jsonl")
        assert e["bus"] == bus
    assert s("search", f'header.trace-id = "{trace}-not"', "--count").strip() == "0"


def test_one_search_by_trace_id_lists_every_bus_newest_first(world):
    s, trace, _ = world
    events = s.jsonl("search", f'header.trace-id = "{trace}"', "--format", "jsonl")
    seen = [(e["bus"], e["timestamp"], e["captured_at"]) for e in events]
    assert [e["bus"] for e in events] == BUSES[::-1], f"one event per bus, newest first: {seen}"


def replay(s, trace, to):
    r = json.loads(s("replay", f'header.trace-id = "{trace}"', "--to", to, "--json"))
    assert (r["matched"], r["sent"], r["failed"], r["unknown"]) == (6, 6, 0, 0), r
    return r


def to_kafka(s, trace, payloads):
    t = create_topic("across-dst", 1)
    replay(s, trace, f"local:{t}")
    got = consume(t, partitions=1, expect=6)
    assert sorted(m.value() for m in got) == sorted(payloads.values())
    for m in got:
        assert dict(m.headers())["trace-id"] == trace.encode()
    by_bus = {json.loads(m.value())["from"]: m for m in got}
    assert by_bus["kafka"].key() == b"k-kafka", "Kafka to Kafka keeps the key"
    assert by_bus["amqp"].key() == b"order.created", "the routing key becomes the Kafka key"
    props = json.loads(dict(by_bus["amqp"].headers())["sluice-properties"])
    assert props["correlation_id"] == "corr-amqp"
    mqtt_props = json.loads(dict(by_bus["mqtt"].headers())["sluice-properties"])
    assert mqtt_props["qos"] == 1, "MQTT properties travel in sluice-properties"


def to_amqp(s, trace, payloads):
    ch = amqp_channel()
    q = unique("across-dst-")
    ch.queue_declare(q)
    try:
        replay(s, trace, f"rmq:{q}")
        got = []
        while True:
            m, props, body = ch.basic_get(q, auto_ack=True)
            if m is None:
                break
            got.append((props, body))
    finally:
        ch.queue_delete(q)
    assert sorted(b for _, b in got) == sorted(payloads.values())
    for props, body in got:
        assert props.headers["trace-id"] == trace
        assert "sluice-replay-id" in props.headers
    [amqp] = [p for p, b in got if b == payloads["amqp"]]
    assert amqp.correlation_id == "corr-amqp" and amqp.content_type == "application/json"


def to_sqs(s, trace, payloads):
    client = sqs()
    q = unique("across-dst-")
    url = client.create_queue(QueueName=q)["QueueUrl"]
    try:
        replay(s, trace, f"aws:{q}")
        got, deadline = [], time.time() + 15
        while len(got) < 6 and time.time() < deadline:
            got += client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          MessageAttributeNames=["All"]).get("Messages", [])
    finally:
        client.delete_queue(QueueUrl=url)
    assert sorted(m["Body"].encode() for m in got) == sorted(payloads.values())
    for m in got:
        attrs = m["MessageAttributes"]
        assert attrs["trace-id"] == {"StringValue": trace, "DataType": "String"}, attrs
        assert "sluice-replay-id" in attrs


def to_nats(s, trace, payloads):
    name = unique("ACROSSD")
    subject = f"{name.lower()}.in"

    async def mk(nc, j):
        await j.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"]))
    nats_do(mk)
    try:
        replay(s, trace, f"n:{subject}")

        async def read(nc, j):
            return [await j.get_msg(name, seq) for seq in range(1, 7)]
        got = nats_do(read)
    finally:
        nats_do(lambda nc, j: j.delete_stream(name))
    assert sorted(m.data for m in got) == sorted(payloads.values())
    for m in got:
        assert m.subject == subject
        assert m.headers["trace-id"] == trace
        assert m.headers["Nats-Msg-Id"] == m.headers["sluice-replay-id"]


def to_mqtt(s, trace, payloads):
    topic = f"across/{uuid.uuid4().hex[:10]}/out"
    listener = MqttClient()
    try:
        listener.subscribe(topic)
        replay(s, trace, f"m5:{topic}")
        got = list(listener.wait(6))
    finally:
        listener.close()
    assert sorted(m.payload for m in got) == sorted(payloads.values())
    for m in got:
        user = m.properties.UserProperty
        assert ("trace-id", trace) in user, user
        assert "sluice-replay-id" in {k for k, _ in user}
        assert m.topic == topic and m.qos == 1 and not m.retain


def to_redis(s, trace, payloads):
    r = rds()
    key = unique("across-dst-")
    try:
        replay(s, trace, f"r:{key}")
        entries = [dict(f) for _, f in r.xrange(key)]
    finally:
        r.delete(key)
    assert sorted(f[b"payload"] for f in entries) == sorted(payloads.values())
    for f in entries:
        assert list(f)[:2] == [b"payload", b"trace-id"], "the payload field, then the headers"
        assert f[b"trace-id"] == trace.encode(), f
        assert b"sluice-replay-id" in f
    by_bus = {json.loads(f[b"payload"])["from"]: f for f in entries}
    assert b"sluice-properties" not in by_bus["redis"], "a Redis entry comes back with its own fields"
    assert json.loads(by_bus["amqp"][b"sluice-properties"])["correlation_id"] == "corr-amqp"


def to_http(s, trace, payloads):
    e = Endpoint()
    try:
        s("connection", "add", "http", "web", "--url", e.url)
        replay(s, trace, "web")
        got = e.posts()
    finally:
        e.close()
    assert sorted(r["body"] for r in got) == sorted(payloads.values())
    for r in got:
        assert r["headers"]["trace-id"] == trace
        assert r["headers"]["sluice-replay-id"] and r["headers"]["Idempotency-Key"] == r["headers"]["sluice-replay-id"]


DESTINATIONS = {"kafka": to_kafka, "amqp": to_amqp, "sqs": to_sqs, "nats": to_nats, "mqtt": to_mqtt,
                "redis": to_redis, "http": to_http}


@pytest.mark.parametrize("destination", list(DESTINATIONS))
def test_replay_from_every_bus_to_every_bus_and_http(world, destination):
    s, trace, payloads = world
    DESTINATIONS[destination](s, trace, payloads)


def test_to_origin_sends_nats_mqtt_and_redis_events_back_through_kafka(world):
    """Replayed to Kafka and captured there, NATS, MQTT and Redis events go back (`--to-origin`)
    to where they were first read: the NATS subject they were published on (not the stream's
    name), the MQTT topic, the Redis stream."""
    s, trace, payloads = world
    names = s.names
    hop = create_topic("across-hop", 1)
    replay(s, trace, f"local:{hop}")
    # Sluice's own replays are kept only when asked.
    s("capture", "local", hop, "--stop-at-end", "--include-replays")
    back = f'source = "{hop}" and header.sluice-source ~ "^(n|m5|r)/"'
    plan = s("replay", back, "--to-origin", "--dry-run")
    assert plan.count("\n") >= 3, plan
    listener = MqttClient()
    listener.subscribe(names["mqtt"])
    try:
        r = json.loads(s("replay", back, "--to-origin", "--json"))
        assert (r["matched"], r["sent"], r["failed"], r["unknown"]) == (3, 3, 0, 0), r
        [m] = listener.wait(1)
        assert m.payload == payloads["mqtt"]
    finally:
        listener.close()

    async def stream_back(nc, j):
        sub = await j.subscribe(f"{names['nats'].lower()}.in", ordered_consumer=True)
        got = [await sub.next_msg(timeout=5) for _ in range(2)]
        await sub.unsubscribe()
        return got

    first, returned = nats_do(stream_back)
    assert returned.data == payloads["nats"] and returned.subject == f"{names['nats'].lower()}.in"
    assert returned.headers["trace-id"] == trace
    entries = rds().xrange(names["redis"])
    assert len(entries) == 2 and entries[1][1][b"payload"] == payloads["redis"]
