"""End-to-end harness: drives the real `sluice` binary against the real tansu broker that
scripts/brokers.sh started, with independent clients (confluent-kafka, protobuf) producing the
input and checking the output."""

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
PORT = os.environ.get("SLUICE_KAFKA_PORT", "19092")
BROKER = f"127.0.0.1:{PORT}"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/sluice/target"))
SLUICE = os.environ.get("SLUICE_BIN", str(TARGET / "debug" / "sluice"))


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Python protobuf modules generated from the example and test schemas."""
    out = tmp_path_factory.mktemp("pb")
    from grpc_tools import protoc
    import grpc_tools

    wkt = Path(grpc_tools.__file__).parent / "_proto"
    for root in (ROOT / "protos", ROOT / "tests" / "protos"):
        files = [str(p.relative_to(root)) for p in root.rglob("*.proto")]
        rc = protoc.main(["protoc", f"-I{root}", f"-I{wkt}", f"--python_out={out}", *files])
        assert rc == 0, f"protoc failed for {root}"
    sys.path.insert(0, str(out))
    from shop.v1 import order_pb2, common_pb2
    from kinds.v1 import kinds_pb2

    class PB:
        pass

    m = PB()
    m.order, m.common, m.kinds = order_pb2, common_pb2, kinds_pb2
    return m


class Sluice:
    def __init__(self, tmp: Path):
        self.config = tmp / "config"
        self.lake = tmp / "lake"
        self.env = dict(os.environ, SLUICE_CONFIG=str(self.config), SLUICE_LAKE=str(self.lake), SLUICE_KEYRING="off")
        self.env.pop("SLUICE_PASSWORD", None)

    def run(self, *args, input=None, check=True, timeout=120, env=None):
        p = subprocess.run(
            [SLUICE, *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            env=dict(self.env, **(env or {})),
            timeout=timeout,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"sluice {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def __call__(self, *args, **kw):
        return self.run(*args, **kw).stdout

    def jsonl(self, *args):
        return [json.loads(line) for line in self(*args).splitlines() if line.strip()]

    def popen(self, *args):
        return subprocess.Popen([SLUICE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)


@pytest.fixture
def sluice(tmp_path):
    s = Sluice(tmp_path)
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    return s


@pytest.fixture
def served(tmp_path):
    """`sluice serve` on a free port over a fresh config and lake: (Sluice, URL with token).
    It must stop cleanly on SIGINT."""
    s = Sluice(tmp_path)
    p = s.popen("serve", "--port", "0")
    line = p.stdout.readline()
    assert "http://127.0.0.1:" in line, line + p.stderr.read()
    yield s, line.split()[-1]
    p.send_signal(signal.SIGINT)
    try:
        p.wait(20)
    except Exception:
        p.kill()
        raise
    assert p.returncode == 0, p.stderr.read()


def create_topic(prefix, partitions=3):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run([str(ROOT / "scripts" / "brokers.sh"), "topic", name, str(partitions)], check=True)
    return name


@pytest.fixture
def topic():
    return create_topic


def produce(topic, records, one_batch_each=False):
    """records: dicts with value, and optional key, headers (list of pairs), partition, timestamp (ms).

    tansu 0.6.0 reports a partition's high watermark as the last batch's base offset + 1, so
    tests that depend on exact end offsets send each record as its own batch."""
    p = Producer({"bootstrap.servers": BROKER})
    for r in records:
        kw = {k: r[k] for k in ("key", "headers", "partition", "timestamp") if k in r}
        p.produce(topic, value=r["value"], **kw)
        if one_batch_each:
            assert p.flush(30) == 0
    assert p.flush(30) == 0


def api(url, command, body):
    """Calls `sluice serve`'s API at the URL it printed (token included)."""
    base, _, token = url.partition("#token=")
    req = urllib.request.Request(base + "api/" + command, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def consume(topic, partitions=3, expect=None, timeout=10):
    c = Consumer({"bootstrap.servers": BROKER, "group.id": "e2e-" + uuid.uuid4().hex, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, idle = [], 0
    while idle < timeout * 2:
        m = c.poll(0.5)
        if m is None or m.error():
            idle += 1
            if expect is not None and len(out) >= expect:
                break
            continue
        out.append(m)
    c.close()
    return out
