"""SQS end to end against moto's SQS server (scripts/brokers.sh), with boto3 as the independent
client, and replay across all three buses: every direction between Kafka, RabbitMQ and SQS."""

import json
import os
import time
import uuid

import boto3
import pika
import pytest

from conftest import consume, produce

ENDPOINT = f"http://127.0.0.1:{os.environ.get('SLUICE_SQS_PORT', '19324')}"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


def sqs():
    return boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def counts(url):
    a = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def queue_with_dlq(max_receives):
    """A queue that dead-letters into a new DLQ after max_receives; returns names and URLs."""
    client = sqs()
    dlq_name, q_name = unique("dlq"), unique("work")
    dlq = client.create_queue(QueueName=dlq_name)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    q = client.create_queue(QueueName=q_name, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    return dlq_name, dlq, q_name, q


def receive_all(url, n, timeout=15):
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        r = sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"], AttributeNames=["All"])
        out += r.get("Messages", [])
    return out


@pytest.fixture
def buses(sluice):
    sluice.run("connection", "add", "sqs", "aws", "--region", "us-east-1", "--endpoint-url", ENDPOINT,
               "--access-key-id", "test", env={"SLUICE_PASSWORD": "test"})
    sluice("connection", "add", "amqp", "rmq", "--url", AMQP_URL)
    return sluice


def test_sqs_browse_peek_drain_and_attributes(buses):
    s = buses
    client = sqs()
    dlq_name, dlq, q_name, q = queue_with_dlq(5)
    for i in range(4):
        client.send_message(QueueUrl=q, MessageBody=json.dumps({"order": i}), MessageAttributes={
            "traceparent": {"DataType": "String", "StringValue": f"00-4bf92f{i}-01"},
            "n": {"DataType": "Number", "StringValue": str(i)}})
    assert "reachable" in s("connection", "test", "aws")
    listing = {t["name"]: t for t in json.loads(s("topics", "aws", "--format", "json"))}
    assert listing[q_name]["kind"] == f"queue (standard), dead letters to {dlq_name} after 5 receives"
    assert listing[q_name]["ready"] == 4
    p = s.run("capture", "aws", q_name, check=False)
    assert p.returncode != 0 and "--peek" in p.stderr and "--drain" in p.stderr
    peek = json.loads(s("capture", "aws", q_name, "--peek", "--stop-at-end", "--json"))
    assert peek["captured"] == 4 and counts(q) == (4, 0), "a peek gives every message back"
    assert s("search", f"source = {q_name} and header.traceparent ~ \"4bf92f2\"", "--count").strip() == "1"
    assert s("search", f"source = {q_name} and property.ApproximateReceiveCount >= 1", "--count").strip() == "4"
    drain = json.loads(s("capture", "aws", q_name, "--drain", "--stop-at-end", "--json"))
    # The peek stored them already (SQS message ids are stable): the drain stores nothing twice
    # and deletes what the lake holds.
    assert drain["captured"] == 0 and drain["skipped_duplicates"] == 4, drain
    assert counts(q) == (0, 0), "a drain deletes what the lake holds"
    assert s("search", f"source = {q_name}", "--count").strip() == "4"
    [e] = s.jsonl("search", f"source = {q_name} and order = 1", "--format", "jsonl", "--limit", "1")
    assert e["bus"] == "sqs" and e["properties"]["attribute_types"] == {"n": "Number"}
    assert e["timestamp_us"] > 0 and e["headers"]["n"] == "1"
    # No static key: the standard AWS credential chain (here its environment variables).
    s("connection", "add", "sqs", "chain", "--region", "us-east-1", "--endpoint-url", ENDPOINT)
    assert "AWS credential chain" in s("connection", "list")
    env = {"AWS_ACCESS_KEY_ID": "from-env", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    assert "reachable" in s.run("connection", "test", "chain", env=env).stdout
    # Dead endpoint: a clear error, quickly.
    s.run("connection", "add", "sqs", "dead", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9",
          "--access-key-id", "x", env={"SLUICE_PASSWORD": "y"})
    t0 = time.time()
    p = s.run("connection", "test", "dead", check=False)
    assert p.returncode != 0 and "unreachable" in p.stderr and time.time() - t0 < 10


def test_replay_in_all_nine_directions(buses, topic):
    s = buses
    client = sqs()
    # One event captured from each bus, each carrying a trace header.
    k_src = topic("k-src", 1)
    produce(k_src, [{"value": b'{"from":"kafka"}', "key": b"kk", "headers": [("traceparent", b"t-kafka")]}])
    s("capture", "local", k_src, "--stop-at-end")
    x = unique("x")
    ch = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
    ch.exchange_declare(x, "topic")
    p = s.popen("capture", "rmq", x, "--duration", "3s")
    time.sleep(1.5)
    ch.basic_publish(x, "order.created", b'{"from":"amqp"}',
                     pika.BasicProperties(headers={"traceparent": "t-amqp"}, correlation_id="corr-1"))
    p.communicate(timeout=30)
    s_src = unique("s-src")
    src_url = client.create_queue(QueueName=s_src)["QueueUrl"]
    client.send_message(QueueUrl=src_url, MessageBody='{"from":"sqs"}',
                        MessageAttributes={"traceparent": {"DataType": "String", "StringValue": "t-sqs"}})
    s("capture", "aws", s_src, "--drain", "--stop-at-end")
    sources = {"kafka": f"source = {k_src}", "amqp": f'event.exchange = "{x}"', "sqs": f"source = {s_src}"}
    for name, f in sources.items():
        assert s("search", f, "--count").strip() == "1", name
    # Destinations: a Kafka topic, a RabbitMQ queue, an SQS queue.
    k_dst = topic("k-dst", 1)
    r_dst = unique("r-dst")
    ch.queue_declare(r_dst)
    s_dst = unique("s-dst")
    dst_url = client.create_queue(QueueName=s_dst)["QueueUrl"]
    for name, f in sources.items():
        for to in (f"local:{k_dst}", f"rmq:{r_dst}", f"aws:{s_dst}"):
            out = s("replay", f, "--to", to)
            assert "1 sent, 0 failed" in out, f"{name} -> {to}: {out}"
    got_kafka = consume(k_dst, partitions=1, expect=3)
    assert sorted(m.value() for m in got_kafka) == [b'{"from":"amqp"}', b'{"from":"kafka"}', b'{"from":"sqs"}']
    assert sorted(dict(m.headers())["traceparent"] for m in got_kafka) == [b"t-amqp", b"t-kafka", b"t-sqs"]
    from_amqp = [m for m in got_kafka if m.value() == b'{"from":"amqp"}'][0]
    assert from_amqp.key() == b"order.created", "the routing key becomes the Kafka key"
    got_amqp = []
    while True:
        m, props, body = ch.basic_get(r_dst, auto_ack=True)
        if m is None:
            break
        got_amqp.append((props, body))
    assert sorted(b for _, b in got_amqp) == [b'{"from":"amqp"}', b'{"from":"kafka"}', b'{"from":"sqs"}']
    assert sorted(p.headers["traceparent"] for p, _ in got_amqp) == ["t-amqp", "t-kafka", "t-sqs"]
    assert [p.correlation_id for p, b in got_amqp if b == b'{"from":"amqp"}'] == ["corr-1"]
    got_sqs = receive_all(dst_url, 3)
    assert sorted(m["Body"] for m in got_sqs) == ['{"from":"amqp"}', '{"from":"kafka"}', '{"from":"sqs"}']
    assert sorted(m["MessageAttributes"]["traceparent"]["StringValue"] for m in got_sqs) == ["t-amqp", "t-kafka", "t-sqs"]
    assert all("sluice-replay-id" in m["MessageAttributes"] for m in got_sqs)
    # One search across the three buses.
    assert s("search", 'header.traceparent ~ "^t-"', "--count").strip() == "3"


def test_fifo_and_what_sqs_cannot_carry(buses, topic):
    s = buses
    client = sqs()
    fifo = unique("f") + ".fifo"
    url = client.create_queue(QueueName=fifo, Attributes={"FifoQueue": "true"})["QueueUrl"]
    t = topic("to-fifo", 1)
    produce(t, [
        {"value": b"one", "key": b"group-a"},
        {"value": b"two", "key": b"group-b"},
        {"value": bytes([0x80, 0xff]), "key": b"group-a"},
        {"value": b"many", "headers": [(f"h{i}", b"v") for i in range(12)]},
    ])
    s("capture", "local", t, "--stop-at-end")
    p = s.run("replay", f"source = {t}", "--to", f"aws:{fifo}", check=False)
    assert p.returncode != 0 and "2 sent, 2 failed of 4 matched" in p.stdout
    assert "binary" in p.stderr and "at most 10 message attributes" in p.stderr
    got = receive_all(url, 2)
    groups = {m["Body"]: m["Attributes"]["MessageGroupId"] for m in got}
    assert groups == {"one": "group-a", "two": "group-b"}, "the key becomes the FIFO group"
    dedup = [m["Attributes"]["MessageDeduplicationId"] for m in got]
    assert all(":kafka:local/" in d for d in dedup), "deduplication ids come from the replay id"


def test_sqs_dead_letters_go_back_to_their_source_queue(buses):
    s = buses
    client = sqs()
    dlq_name, dlq, q_name, q = queue_with_dlq(1)
    client.send_message(QueueUrl=q, MessageBody="failed twice")
    for _ in range(3):
        client.receive_message(QueueUrl=q, VisibilityTimeout=0)
    assert counts(dlq)[0] == 1, "the message was dead-lettered"
    s("capture", "aws", dlq_name, "--drain", "--stop-at-end")
    plan = s("replay", f"source = {dlq_name}", "--to-origin", "--dry-run")
    assert f"-> aws:{q_name}" in plan
    assert "1 sent, 0 failed" in s("replay", f"source = {dlq_name}", "--to-origin")
    [m] = receive_all(q, 1)
    assert m["Body"] == "failed twice" and counts(dlq) == (0, 0)


def test_fifo_capture_keeps_group_and_sequence(buses):
    s = buses
    client = sqs()
    src, dst = unique("src") + ".fifo", unique("dst") + ".fifo"
    src_url = client.create_queue(QueueName=src, Attributes={"FifoQueue": "true"})["QueueUrl"]
    dst_url = client.create_queue(QueueName=dst, Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(3):
        client.send_message(QueueUrl=src_url, MessageBody=f"m{i}", MessageGroupId=f"g{i % 2}",
                            MessageDeduplicationId=f"d{i}",
                            MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}})
    s("capture", "aws", src, "--drain", "--stop-at-end")
    assert s("search", f"source = {src} and property.MessageGroupId = g1", "--count").strip() == "1"
    assert s("search", f"source = {src} and property.SequenceNumber exists", "--count").strip() == "3"
    assert s("search", f'source = {src} and key = "g0"', "--count").strip() == "2"
    assert "3 sent, 0 failed" in s("replay", f"source = {src}", "--to", f"aws:{dst}")
    got = receive_all(dst_url, 3)
    assert sorted((m["Body"], m["Attributes"]["MessageGroupId"]) for m in got) == [("m0", "g0"), ("m1", "g1"), ("m2", "g0")]
    assert all(m["MessageAttributes"]["n"]["DataType"] == "Number" for m in got), "attribute types come back"
