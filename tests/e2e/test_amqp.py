"""RabbitMQ end to end: the `sluice` binary against the RabbitMQ that scripts/brokers.sh
started, with pika as the independent client. Taps take nothing from the application's queues;
properties and headers are captured, searchable, and restored on replay, also across Kafka."""

import json
import time
import uuid

import pika
import pytest

from conftest import consume, produce

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def channel():
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def drain(queue):
    ch = channel()
    out = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((method, props, body))


def depth(queue):
    return channel().queue_declare(queue, passive=True).method.message_count


@pytest.fixture
def rmq(sluice):
    p = sluice.run("connection", "add", "amqp", "rmq", "--url", AMQP_URL)
    assert "warning" in p.stderr and "guest:" not in sluice("connection", "list")
    cfg = (sluice.config / "config.toml").read_text()
    assert "amqp://guest@127.0.0.1" in cfg, "the password is kept apart from the URL"
    return sluice


@pytest.fixture
def shop():
    """A topic exchange with an application queue bound to order.#."""
    ch = channel()
    x, q = unique("shop"), unique("app")
    ch.exchange_declare(x, "topic", auto_delete=False)
    ch.queue_declare(q)
    ch.queue_bind(q, x, "order.#")
    return x, q


def publish(exchange, n, key=lambda i: "order.created" if i % 2 == 0 else "order.paid"):
    ch = channel()
    for i in range(n):
        ch.basic_publish(
            exchange,
            key(i),
            json.dumps({"order": i, "status": "FAILED" if i == 3 else "PAID"}).encode(),
            pika.BasicProperties(
                content_type="application/json",
                correlation_id=f"c-{i}",
                message_id=f"m-{i}",
                headers={"x-foo": 1, "traceparent": f"00-4bf92f{i}-01"},
                priority=3,
                timestamp=1795168800 + i,
                delivery_mode=2,
            ),
        )
    ch.basic_publish(exchange, "user.created", b"not matched by the binding key")


def tap(sluice, exchange, publish_fn, seconds=4, *extra):
    """Captures EXCHANGE for a few seconds while publish_fn runs; returns the summary."""
    p = sluice.popen("capture", "rmq", exchange, "--duration", f"{seconds}s", "--json", *extra)
    time.sleep(1.5)  # the tap queue is bound once the capture has started
    publish_fn()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return json.loads(out)


def test_connection_test_topics_and_failures(rmq, shop):
    x, q = shop
    assert "reachable" in rmq("connection", "test", "rmq")
    listing = json.loads(rmq("topics", "rmq", "--format", "json"))
    kinds = {t["name"]: t.get("kind") for t in listing}
    assert kinds[x] == "exchange (topic)" and kinds[q].startswith("queue (classic")
    # Without the management API, a named exchange or queue is still checked (passive declare).
    rmq("connection", "add", "amqp", "nomgmt", "--url", AMQP_URL, "--management-url", "http://127.0.0.1:9")
    p = rmq.run("topics", "nomgmt", check=False)
    assert p.returncode != 0 and "management API is unreachable" in p.stderr
    named = json.loads(rmq("topics", "nomgmt", q, x, "--format", "json"))
    assert [t["kind"] for t in named] == ["queue", "exchange"]
    # Dead broker, wrong password, unknown exchange: clear errors, fast, no secrets.
    rmq("connection", "add", "amqp", "dead", "--url", "amqp://guest@127.0.0.1:1/%2f")
    t0 = time.time()
    p = rmq.run("connection", "test", "dead", check=False)
    assert p.returncode != 0 and "unreachable" in p.stderr and time.time() - t0 < 10
    rmq("connection", "add", "amqp", "badpw", "--url", "amqp://guest:s3cret-pw@127.0.0.1:5672/%2f")
    p = rmq.run("connection", "test", "badpw", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr and "s3cret-pw" not in p.stderr + p.stdout
    p = rmq.run("capture", "rmq", "no-such-exchange", "--duration", "1s", check=False)
    assert p.returncode != 0 and 'unknown exchange "no-such-exchange"' in p.stderr


def test_tap_takes_nothing_and_properties_are_searchable(rmq, shop):
    x, q = shop
    summary = tap(rmq, x, lambda: publish(x, 5), 4, "--binding-key", "order.#")
    assert summary["captured"] == 5, summary
    assert depth(q) == 5, "the application's queue still holds every message"
    assert rmq("search", f'event.exchange = "{x}"', "--count").strip() == "5"
    assert rmq("search", 'routing_key ~ "order.*"', "--count").strip() == "5"
    assert rmq("search", 'routing_key = "order.paid"', "--count").strip() == "2"
    assert rmq("search", 'property.correlation_id = "c-3"', "--count").strip() == "1"
    assert rmq("search", "header.x-foo = 1", "--count").strip() == "5"
    [e] = rmq.jsonl("search", "status = FAILED", "--format", "jsonl")
    assert e["bus"] == "amqp" and e["decoded"] == {"order": 3, "status": "FAILED"}
    assert e["properties"]["content_type"] == "application/json"
    assert e["properties"]["priority"] == 3 and e["properties"]["message_id"] == "m-3"
    assert e["timestamp_us"] == (1795168800 + 3) * 1_000_000
    assert e["headers"]["traceparent"] == "00-4bf92f3-01"
    out = rmq.lake.parent / "amqp.csv"
    rmq("export", 'routing_key = "order.paid"', "--format", "csv", "-o", out)
    import csv
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and all(json.loads(r["properties"])["routing_key"] == "order.paid" for r in rows)


def test_replay_within_amqp_and_across_kafka(rmq, shop, topic):
    x, q = shop
    summary = tap(rmq, x, lambda: publish(x, 4), 4)
    assert summary["captured"] == 5, "the default binding key # taps everything, user.created too"
    drain(q)
    # AMQP -> AMQP: exchange with a routing key, and a queue through the default exchange.
    assert "2 sent, 0 failed" in rmq("replay", 'routing_key = "order.paid"', "--to", f"rmq:{x}/order.replayed")
    assert "1 sent" in rmq("replay", 'property.correlation_id = "c-0"', "--to", f"rmq:{q}")
    got = drain(q)
    assert sorted(m.routing_key for m, _, _ in got) == [q, "order.replayed", "order.replayed"]
    for m, props, body in got:
        assert props.content_type == "application/json" and props.priority == 3
        assert props.headers["x-foo"] == "1" and "sluice-replay-id" in props.headers
        assert json.loads(body)["order"] in (0, 1, 3)
    # Unroutable messages are reported per event and fail the command.
    p = rmq.run("replay", f'event.exchange = "{x}"', "--to", f"rmq:{x}/nobody.listens", check=False)
    assert p.returncode != 0 and "5 failed" in p.stdout and "unroutable" in p.stderr
    # AMQP -> Kafka: routing key becomes the key, properties travel in a header.
    t = topic("amqp-x", 1)
    orders = f'event.exchange = "{x}" and routing_key ~ "^order"'
    assert "4 sent" in rmq("replay", orders, "--to", f"local:{t}")
    records = consume(t, partitions=1, expect=4)
    keys = sorted(r.key() for r in records)
    assert keys == [b"order.created", b"order.created", b"order.paid", b"order.paid"]
    props = json.loads(dict(records[0].headers())["sluice-properties"])
    assert props["content_type"] == "application/json"
    # Kafka -> AMQP: the carried properties come back.
    rmq("capture", "local", t, "--stop-at-end", "--include-replays")
    assert "4 sent" in rmq("replay", f"source = {t}", "--to", f"rmq:{q}")
    back = drain(q)
    assert sorted(p.correlation_id for _, p, _ in back) == ["c-0", "c-1", "c-2", "c-3"]
    assert all(p.content_type == "application/json" and p.timestamp >= 1795168800 for _, p, _ in back)
    # One search across buses, in time order.
    trace = rmq.jsonl("search", 'header.traceparent ~ "4bf92f2"', "--format", "jsonl")
    assert sorted(e["bus"] for e in trace) == ["amqp", "kafka"]


def test_reading_a_queue_is_explicit(rmq):
    q = unique("dlq")
    ch = channel()
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, f"dead {i}".encode())
    p = rmq.run("capture", "rmq", "--from-queue", q, check=False)
    assert p.returncode != 0 and "--destructive" in p.stderr and "--requeue" in p.stderr
    p = rmq.run("tail", "rmq", "--from-queue", q, "--destructive", check=False)
    assert p.returncode != 0 and "never deletes messages" in p.stderr
    s = json.loads(rmq("capture", "rmq", "--from-queue", q, "--requeue", "--stop-at-end", "--json"))
    assert s["captured"] == 3 and depth(q) == 3, "requeue gives every message back"
    s = json.loads(rmq("capture", "rmq", "--from-queue", q, "--destructive", "--stop-at-end", "--json"))
    assert s["captured"] == 3 and depth(q) == 0, "destructive takes them once they are in the lake"
    redelivered = rmq.jsonl("search", f"source = {q}", "--format", "jsonl", "--limit", "10")
    assert len(redelivered) == 6 and any(e["properties"].get("redelivered") for e in redelivered)


def test_dead_letters_go_back_to_their_origin(rmq, topic):
    # RabbitMQ: rejected messages dead-letter into a DLQ with an x-death header.
    x, work, dlq = unique("shop"), unique("work"), unique("dlq")
    ch = channel()
    ch.exchange_declare(x, "topic")
    ch.queue_declare(dlq)
    ch.queue_declare(work, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    ch.queue_bind(work, x, "order.#")
    for i in range(2):
        ch.basic_publish(x, "order.created", f"order {i}".encode(), pika.BasicProperties(correlation_id=f"d-{i}"))
    for _ in range(2):
        method, _, _ = ch.basic_get(work)
        ch.basic_reject(method.delivery_tag, requeue=False)
    time.sleep(0.5)
    assert depth(dlq) == 2 and depth(work) == 0
    rmq("capture", "rmq", "--from-queue", dlq, "--destructive", "--stop-at-end")
    # Kafka: a Spring-style dead-letter topic names the original topic in a header.
    orig, dlt = topic("orig", 1), topic("dlt", 1)
    produce(dlt, [{"value": b"kafka dead", "key": b"k1", "headers": [("kafka_dlt-original-topic", orig.encode())]}])
    produce(dlt, [{"value": b"no origin"}])
    rmq("capture", "local", dlt, "--stop-at-end")
    plan = rmq("replay", f"source in ({dlq}, {dlt})", "--to-origin", "--dry-run")
    assert plan.count(f"-> rmq:{x}/order.created") == 2 and f"-> local:{orig}" in plan
    assert "cannot send: origin unknown" in plan
    p = rmq.run("replay", f"source in ({dlq}, {dlt})", "--to-origin", check=False)
    assert p.returncode != 0, "the event without an origin fails the command"
    assert "3 sent, 1 failed of 4 matched" in p.stdout and "origin unknown" in p.stderr
    back = drain(work)
    assert sorted(pr.correlation_id for _, pr, _ in back) == ["d-0", "d-1"]
    [r] = consume(orig, partitions=1, expect=1)
    assert r.value() == b"kafka dead" and r.key() == b"k1"


def test_stream_queues_are_read_by_offset_without_taking(rmq):
    s = unique("stream")
    ch = channel()
    ch.queue_declare(s, durable=True, arguments={"x-queue-type": "stream"})
    for i in range(5):
        ch.basic_publish("", s, f"event {i}".encode(), pika.BasicProperties(correlation_id=f"s-{i}"))
    time.sleep(0.5)
    first = json.loads(rmq("capture", "rmq", "--from-queue", s, "--stream", "--max-messages", "5", "--json"))
    assert first["captured"] == 5
    events = rmq.jsonl("search", f"source = {s}", "--format", "jsonl")
    assert sorted(e["offset"] for e in events) == [0, 1, 2, 3, 4]
    assert events[0]["id"] == f"amqp:rmq/{s}/0/4", "stream positions give stable ids"
    # Reading again from an offset takes nothing and adds no duplicates.
    again = json.loads(rmq("capture", "rmq", "--from-queue", s, "--stream", "--from", "2", "--max-messages", "3", "--json"))
    assert again["read"] == 3 and again["skipped_duplicates"] == 3
    assert rmq("search", f"source = {s}", "--count").strip() == "5"
    tail = rmq("tail", "rmq", "--from-queue", s, "--stream", "--from", "beginning", "--max-messages", "2", "--format", "jsonl")
    assert [json.loads(line)["payload_text"] for line in tail.splitlines()] == ["event 0", "event 1"]
    last = rmq("tail", "rmq", "--from-queue", s, "--stream", "--from", "last", "--max-messages", "1", "--format", "jsonl")
    # `last` starts at the stream's last chunk, which may hold several of these messages.
    assert json.loads(last)["payload_text"].startswith("event ")


def test_taps_on_direct_fanout_and_headers_exchanges(rmq):
    ch = channel()
    direct, fanout, headers = unique("d"), unique("f"), unique("h")
    ch.exchange_declare(direct, "direct")
    ch.exchange_declare(fanout, "fanout")
    ch.exchange_declare(headers, "headers")

    def send():
        c = channel()
        c.basic_publish(direct, "eu", b"direct eu")
        c.basic_publish(direct, "us", b"direct us")
        c.basic_publish(fanout, "anything", b"fanout")
        c.basic_publish(headers, "", b"headers match", pika.BasicProperties(headers={"region": "eu", "tier": "gold"}))
        c.basic_publish(headers, "", b"headers other", pika.BasicProperties(headers={"region": "us"}))

    procs = [
        rmq.popen("capture", "rmq", direct, "--binding-key", "eu", "--duration", "4s"),
        rmq.popen("capture", "rmq", fanout, "--duration", "4s"),
        rmq.popen("capture", "rmq", headers, "--match", "region=eu", "--duration", "4s"),
    ]
    time.sleep(2)
    send()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    texts = lambda ex: sorted(e["payload_text"] for e in rmq.jsonl("search", f'event.exchange = "{ex}"', "--format", "jsonl"))
    assert texts(direct) == ["direct eu"], "a direct tap sees its binding key only"
    assert texts(fanout) == ["fanout"]
    assert texts(headers) == ["headers match"], "a headers tap matches its headers"
