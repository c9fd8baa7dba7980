"""Destructive queue reads acknowledge what is durable while the capture runs, not only at the
end: a long drain must not hold every message unacknowledged, and a capture killed with -9
must give back only what the lake does not hold."""

import json
import signal
import time

from test_amqp import channel, depth, rmq, unique  # noqa: F401 (rmq is a fixture)


def test_a_destructive_read_acknowledges_after_each_flush(rmq):  # noqa: F811
    q = unique("drain")
    ch = channel()
    ch.queue_declare(q)
    for i in range(2000):
        ch.basic_publish("", q, json.dumps({"i": i}).encode())
    cap = rmq.popen("capture", "rmq", "--from-queue", q, "--destructive")
    # Everything read is in the lake within a flush (0.5 s); the acknowledgements follow.
    deadline = time.time() + 30
    stored = 0
    while time.time() < deadline:
        stored = int(rmq("search", f"source = {q}", "--count").strip())
        if stored == 2000:
            break
        time.sleep(0.3)
    assert stored == 2000
    time.sleep(1.5)
    # Killed without a chance to settle anything: what it had not acknowledged comes back.
    cap.send_signal(signal.SIGKILL)
    cap.wait(timeout=10)
    time.sleep(0.5)
    assert depth(q) == 0, "durable messages were acknowledged while the capture ran"
    # A second capture finds nothing to store twice.
    s = json.loads(rmq("capture", "rmq", "--from-queue", q, "--destructive", "--duration", "2s", "--json"))
    assert s["captured"] == 0
    assert int(rmq("search", f"source = {q}", "--count").strip()) == 2000


def test_messages_read_again_from_a_queue_are_stored_once_when_the_publisher_named_them(rmq):  # noqa: F811
    import pika

    q = unique("again")
    ch = channel()
    ch.queue_declare(q)
    for i in range(5):
        ch.basic_publish("", q, json.dumps({"i": i}).encode(), pika.BasicProperties(message_id=f"m-{i}"))
    # The same id on another message: it must not be taken for the first.
    ch.basic_publish("", q, b'{"i": "other"}', pika.BasicProperties(message_id="m-0"))
    for _ in range(3):
        ch.basic_publish("", q, b'{"anonymous": true}')
    first = json.loads(rmq("capture", "rmq", "--from-queue", q, "--requeue", "--stop-at-end", "--json"))
    assert first["captured"] == 9 and depth(q) == 9
    again = json.loads(rmq("capture", "rmq", "--from-queue", q, "--requeue", "--stop-at-end", "--json"))
    # The six named ones are known; the three without a message id cannot be told apart.
    assert again["skipped_duplicates"] == 6 and again["captured"] == 3, again
    assert int(rmq("search", f"source = {q}", "--count").strip()) == 12
