"""MQTT end to end, 3.1.1 and 5: the `sluice` binary against the mosquitto that
scripts/brokers.sh started (and private ones started here for credentials, sessions and a
broker that goes away), with paho-mqtt as the independent client. Captures subscribe with a
clean session and take nothing; retained messages, QoS, MQTT 5 properties and user
properties are kept, searchable, and restored byte for byte on replay."""

import base64
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import consume
from faultproxy import fault_proxy  # noqa: F401 (a fixture, used by name)

HOST = "127.0.0.1"
PORT = int(os.environ.get("SLUICE_MQTT_PORT", "11883"))
VERSIONS = ["5", "3.1.1"]


def unique(prefix):
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def paho(version, client_id=None, clean=True):
    proto = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
    kw = {} if version == "5" else {"clean_session": clean}
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"e2e-{uuid.uuid4().hex[:10]}",
        protocol=proto,
        **kw,
    )


def connect(c, port=PORT, version="5", clean=True, user=None, password=None):
    """Connects and returns the CONNACK flags."""
    got = threading.Event()
    flags = {}

    def on_connect(client, userdata, f, rc, props=None):
        flags["session_present"] = f.session_present
        flags["rc"] = rc
        got.set()

    c.on_connect = on_connect
    if user:
        c.username_pw_set(user, password)
    if version == "5":
        c.connect(HOST, port, clean_start=clean)
    else:
        c.connect(HOST, port)
    c.loop_start()
    assert got.wait(5), "no CONNACK"
    return flags


def publish(version, messages, port=PORT):
    """messages: (topic, payload, qos, retain, properties or None)."""
    c = paho(version)
    connect(c, port, version)
    for topic, payload, qos, retain, props in messages:
        kw = {"properties": props} if props is not None else {}
        c.publish(topic, payload, qos=qos, retain=retain, **kw).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


class Listener:
    """A paho subscriber that keeps what it receives."""

    def __init__(self, version, topic, qos=2):
        self.messages = []
        self.c = paho(version)
        subscribed = threading.Event()
        self.c.on_message = lambda c, u, m: self.messages.append(m)
        self.c.on_subscribe = lambda *a: subscribed.set()
        connect(self.c, PORT, version)
        self.c.subscribe(topic, qos=qos)
        assert subscribed.wait(5)

    def wait(self, n, timeout=10):
        end = time.time() + timeout
        while len(self.messages) < n and time.time() < end:
            time.sleep(0.05)
        return self.messages

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def v5_props(i):
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = [("plant", "north"), ("line", str(i)), ("plant", "south")]
    p.ContentType = "application/json"
    p.CorrelationData = b"\x00corr-" + str(i).encode()
    p.ResponseTopic = f"replies/{i}"
    p.MessageExpiryInterval = 3600
    return p


def capture(sluice, conn, flt, publish_fn, *extra, wait=0.8):
    """Captures FLT while publish_fn runs once the subscription is up; returns the summary."""
    p = sluice.popen("capture", conn, flt, "--json", *extra)
    time.sleep(wait)
    publish_fn()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return json.loads(out)


def add(sluice, name, version, port=PORT, *extra):
    sluice("connection", "add", "mqtt", name, "--url", f"mqtt://{HOST}:{port}", "--set", f"version={version}", *extra)


@pytest.fixture(params=VERSIONS)
def mq(sluice, request):
    add(sluice, "mq", request.param)
    sluice.version = request.param
    return sluice


def test_connection_test_and_browse_retained_topics(mq):
    assert "mq: reachable" in mq("connection", "test", "mq")
    topic = unique("e2e-browse")
    publish(mq.version, [(topic, b"kept", 1, True, None)])
    try:
        listing = json.loads(mq("topics", "mq", "--format", "json"))
        found = {t["name"]: t for t in listing}
        assert found[topic]["kind"] == "topic: retained" and found[topic]["ready"] == 1
        assert found[topic]["last_seen"].endswith("Z"), found[topic]
        assert not any(n.startswith("$SYS") for n in found), "# never matches $SYS"
        named = json.loads(mq("topics", "mq", "plant/+/temp", "--format", "json"))
        assert named[0]["kind"] == "topic filter"
    finally:
        publish(mq.version, [(topic, b"", 1, True, None)])  # clears the retained message


def test_capture_a_filter_with_retained_first(mq):
    base = unique("plant")
    publish(mq.version, [(f"{base}/boot", b"booted", 1, True, None)])
    try:
        msgs = [(f"{base}/temp", f"{20 + i}".encode(), i % 3, False, None) for i in range(5)]
        msgs.append((f"{base}/deep/er", b"not matched by +", 1, False, None))
        s = capture(mq, "mq", f"{base}/+", lambda: publish(mq.version, msgs), "--max-messages", "6", "--duration", "15s")
        assert s["captured"] == 6 and s["stopped_by"] == "max-messages", s
        events = mq.jsonl("search", f'source = "{base}/+"', "--format", "jsonl")
        assert len(events) == 6
        [boot] = [e for e in events if e["properties"]["retain"]]
        assert boot["properties"]["topic"] == f"{base}/boot" and boot["payload_text"] == "booted"
        assert mq("search", f'source = "{base}/+" and property.retain = true', "--count").strip() == "1"
        temps = sorted((e for e in events if not e["properties"]["retain"]), key=lambda e: e["payload_text"])
        assert [e["properties"]["qos"] for e in temps] == [i % 3 for i in range(5)], "QoS as published"
        assert all(e["offset"] is None and e["timestamp_us"] is None for e in events)
        assert len({e["id"] for e in events}) == 6
        # --from end: no retained messages, only what is published from now on.
        s = capture(mq, "mq", f"{base}/+", lambda: publish(mq.version, msgs[:1]), "--from", "end", "--max-messages", "1", "--duration", "10s")
        assert s["captured"] == 1
        assert mq("search", f'source = "{base}/+" and property.retain = true', "--count").strip() == "1"
    finally:
        publish(mq.version, [(f"{base}/boot", b"", 1, True, None)])


def test_sys_topics_only_when_asked(mq):
    if mq.version == "5":  # the broker's rule, whichever version: once is enough
        capture(mq, "mq", "#", lambda: None, "--duration", "1s", wait=0)
        assert mq("search", 'property.topic ~ "^\\$SYS"', "--count").strip() == "0", "# never matches $SYS"
    s = json.loads(mq("capture", "mq", "$SYS/broker/uptime", "--max-messages", "1", "--duration", "15s", "--json"))
    assert s["captured"] == 1
    [e] = mq.jsonl("search", 'source = "$SYS/broker/uptime"', "--format", "jsonl")
    assert e["properties"]["topic"] == "$SYS/broker/uptime" and "seconds" in e["payload_text"]


def test_v5_properties_are_kept_searchable_and_replayed_byte_for_byte(sluice):
    add(sluice, "m5", "5")
    base = unique("props")
    msgs = [(f"{base}/in", json.dumps({"n": i}).encode(), 1 + i % 2, False, v5_props(i)) for i in range(2)]
    s = capture(sluice, "m5", f"{base}/#", lambda: publish("5", msgs), "--max-messages", "2", "--duration", "15s")
    assert s["captured"] == 2
    assert sluice("search", 'property.content_type = "application/json"', "--count").strip() == "2"
    assert sluice("search", 'property.response_topic = "replies/1"', "--count").strip() == "1"
    corr = base64.b64encode(b"\x00corr-0").decode()
    assert sluice("search", f'property.correlation_data = "{corr}"', "--count").strip() == "1"
    assert sluice("search", "header.line = 1", "--count").strip() == "1"
    [e] = sluice.jsonl("search", "header.line = 0", "--format", "jsonl")
    assert e["headers"] == {"plant": ["north", "south"], "line": "0"}, "duplicates kept"
    assert e["properties"]["message_expiry_interval"] <= 3600
    out = unique("replayed")
    listener = Listener("5", f"{out}/#")
    try:
        assert "2 sent, 0 failed" in sluice("replay", f'source = "{base}/#"', "--to", f"m5:{out}/x")
        got = sorted(listener.wait(2), key=lambda m: m.payload)
    finally:
        listener.close()
    assert len(got) == 2
    for i, m in enumerate(got):
        sent = msgs[i]
        assert m.topic == f"{out}/x" and m.payload == sent[1] and m.qos == sent[2] and not m.retain
        user = m.properties.UserProperty
        assert user[:3] == [("plant", "north"), ("line", str(i)), ("plant", "south")], "in order, duplicates kept"
        assert {k for k, _ in user[3:]} == {"sluice-replay-id", "sluice-source"}
        assert m.properties.ContentType == "application/json"
        assert m.properties.CorrelationData == b"\x00corr-" + str(i).encode()
        assert m.properties.ResponseTopic == f"replies/{i}"


@pytest.mark.parametrize("version", VERSIONS)
def test_replay_keeps_qos_never_retains_and_qos0_is_unknown(sluice, version):
    add(sluice, "mq", version)
    base = unique("replay")
    msgs = [(f"{base}/in", f"m{q}".encode(), q, q == 1, None) for q in range(3)]
    # Retained before the capture: a live subscriber gets a retained message unflagged.
    publish(version, msgs[1:2])
    try:
        live = [msgs[0], msgs[2]]
        s = capture(sluice, "mq", f"{base}/in", lambda: publish(version, live), "--max-messages", "3", "--duration", "15s")
        assert s["captured"] == 3
        out = unique("out")
        listener = Listener(version, out)
        try:
            p = sluice.run("replay", f'source = "{base}/in"', "--to", f"mq:{out}", "--json", check=False)
            got = sorted(listener.wait(3), key=lambda m: m.payload)
        finally:
            listener.close()
        account = json.loads(p.stdout)
        assert (account["sent"], account["unknown"], account["failed"]) == (2, 1, 0), account
        assert account["unknowns"][0][1] == "sent, not confirmed (QoS 0)"
        assert [(m.payload, m.qos) for m in got] == [(b"m0", 0), (b"m1", 1), (b"m2", 2)]
        # Nothing replayed was retained: a new subscriber gets nothing at once.
        late = Listener(version, out)
        time.sleep(0.5)
        late.close()
        assert late.messages == []
        p = sluice.run("replay", f'source = "{base}/in"', "--to", "mq:bad/+/topic", check=False)
        assert p.returncode != 0 and "wildcard" in p.stderr
        if version == "3.1.1":
            # Asked to (`--retain`), a replay sends a retained message as retained.
            kept = unique("kept")
            assert "1 sent" in sluice("replay", f'source = "{base}/in" and property.retain = true', "--to", f"mq:{kept}", "--retain")
            late = Listener(version, kept)
            [m] = late.wait(1)
            late.close()
            publish(version, [(kept, b"", 1, True, None)])
            assert m.retain and m.payload == b"m1"
    finally:
        publish(version, [(f"{base}/in", b"", 1, True, None)])


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def private_broker(tmp_path, password=None, extra=()):
    """A mosquitto of this test's own on a free port, logging every connection; with a
    password, only user `alice` with it may connect."""
    port = free_port()
    log = tmp_path / f"mosquitto-{port}.log"
    # A log file is flushed line by line (stdout into a file is not).
    conf = [f"listener {port} {HOST}", "persistence false", f"log_dest file {log}", "log_type all", "user root"]
    if password:
        pw = tmp_path / "passwd"
        pw.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(pw), "alice", password], check=True, capture_output=True)
        pw.chmod(0o600)
        conf += ["allow_anonymous false", f"password_file {pw}"]
    else:
        conf.append("allow_anonymous true")
    conf += list(extra)
    cf = tmp_path / f"mosquitto-{port}.conf"
    cf.write_text("\n".join(conf) + "\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(cf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 5
        while time.time() < end:
            try:
                socket.create_connection((HOST, port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        proc.port, proc.log = port, log
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("version", VERSIONS)
def test_credentials_and_no_session_left_behind(sluice, tmp_path, version):
    with private_broker(tmp_path, password="right-pw") as broker:
        p = sluice.run("connection", "add", "mqtt", "wrong", "--url", f"mqtt://{HOST}:{broker.port}",
                       "--set", f"version={version}", "--username", "alice", "--password-stdin", input="wrong-pw\n")
        assert p.returncode == 0, p.stderr
        p = sluice.run("connection", "test", "wrong", check=False)
        assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr
        assert "wrong-pw" not in p.stderr + p.stdout
        sluice.run("connection", "add", "mqtt", "right", "--url", f"mqtt://{HOST}:{broker.port}", "--set", f"version={version}",
                   "--set", "client_id=tap", "--username", "alice", "--password-stdin", input="right-pw\n")
        assert "right: reachable" in sluice("connection", "test", "right")
        topic = unique("session")
        s = capture(sluice, "right", topic, lambda: publish_auth(version, broker.port, topic), "--max-messages", "1", "--duration", "15s")
        assert s["captured"] == 1
        log = broker.log.read_text()
        ids = re.findall(r"New client connected from \S+ as (tap-[0-9a-f]{12}) \((p\d), (c\d)", log)
        assert ids and all(c == "c1" for _, _, c in ids), "clean session / clean start"
        assert {p for _, p, _ in ids} == {"p5" if version == "5" else "p2"}
        # Coming back under the tap's client id without a clean start finds no session.
        for client_id, _, _ in ids:
            c = paho(version, client_id=client_id, clean=False)
            flags = connect(c, broker.port, version, clean=False, user="alice", password="right-pw")
            c.disconnect()
            c.loop_stop()
            assert flags["session_present"] is False, client_id


def publish_auth(version, port, topic):
    c = paho(version)
    connect(c, port, version, user="alice", password="right-pw")
    c.publish(topic, b"hello", qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_broker_gone_ends_capture_within_broker_timeout(sluice, fault_proxy):
    proxy = fault_proxy((HOST, PORT))
    add(sluice, "gone", "5", proxy.port)
    base = unique("gone")
    p = sluice.popen("capture", "gone", f"{base}/#", "--broker-timeout", "2s", "--duration", "40s", "--json")
    time.sleep(1.0)
    publish("5", [(f"{base}/a", b"before", 1, False, None)])
    time.sleep(0.3)
    proxy.set("drop")  # connections closed, new ones refused: the broker died
    t0 = time.time()
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0 and "unreachable" in err, err
    assert time.time() - t0 < 6
    assert sluice("search", f'source = "{base}/#"', "--count").strip() == "1", "what was read is kept"


def test_messages_over_the_brokers_maximum_packet_size_fail_clearly(sluice, tmp_path):
    add(sluice, "m5", "5")
    base = unique("big")
    msgs = [(f"{base}/in", b"x" * 5000, 1, False, None), (f"{base}/in", b"small", 1, False, None)]
    s = capture(sluice, "m5", f"{base}/in", lambda: publish("5", msgs), "--max-messages", "2", "--duration", "15s")
    assert s["captured"] == 2
    with private_broker(tmp_path, extra=["max_packet_size 2000"]) as broker:
        add(sluice, "small", "5", broker.port)
        p = sluice.run("replay", f'source = "{base}/in"', "--to", "small:big/out", "--json", check=False)
    account = json.loads(p.stdout)
    assert (account["sent"], account["failed"], account["unknown"]) == (1, 1, 0), account
    assert "maximum packet size of 2000 bytes" in account["errors"][0][1]


def make_certs(d):
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, PEM (keys PKCS#8)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=e2e-ca")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {n: str(d / n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_tls_with_a_client_certificate(sluice, tmp_path):
    c = make_certs(tmp_path)
    tls = [f"cafile {c['ca.pem']}", f"certfile {c['server.pem']}", f"keyfile {c['server.key']}", "require_certificate true"]
    with private_broker(tmp_path, extra=tls) as broker:
        url = f"mqtts://{HOST}:{broker.port}"
        sluice("connection", "add", "mqtt", "tls", "--url", url, "--tls-ca", c["ca.pem"],
               "--tls-cert", c["client.pem"], "--tls-key", c["client.key"])
        assert "tls: reachable" in sluice("connection", "test", "tls")
        listing = sluice("connection", "list")
        assert "client certificate" in listing
        sluice("connection", "add", "mqtt", "nocert", "--url", url, "--tls-ca", c["ca.pem"])
        p = sluice.run("connection", "test", "nocert", check=False)
        assert p.returncode != 0 and "unreachable" in p.stderr
        sluice("connection", "add", "mqtt", "noca", "--url", url)
        p = sluice.run("connection", "test", "noca", check=False)
        assert p.returncode != 0 and "certificate verify failed" in p.stderr, "the broker's certificate is checked"


def test_reconnects_on_its_own_without_repeating_retained_messages(sluice, fault_proxy):
    proxy = fault_proxy((HOST, PORT))
    add(sluice, "flaky", "5", proxy.port)
    base = unique("flaky")
    publish("5", [(f"{base}/state", b"retained", 1, True, None)])
    try:
        p = sluice.popen("capture", "flaky", f"{base}/#", "--max-messages", "3", "--duration", "30s",
                         "--broker-timeout", "20s", "--json")
        time.sleep(1.0)
        proxy.set("drop")
        time.sleep(1.0)
        proxy.set("pass")
        time.sleep(2.0)  # the client waits a second, then connects and subscribes again
        publish("5", [(f"{base}/live", f"after {i}".encode(), 1, False, None) for i in range(2)])
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert json.loads(out)["captured"] == 3
        texts = sorted(e["payload_text"] for e in sluice.jsonl("search", f'source = "{base}/#"', "--format", "jsonl"))
        assert texts == ["after 0", "after 1", "retained"], "the retained message once, live ones after"
    finally:
        publish("5", [(f"{base}/state", b"", 1, True, None)])


def test_a_stalled_broker_ends_capture_within_broker_timeout(sluice, fault_proxy):
    proxy = fault_proxy((HOST, PORT))
    add(sluice, "stalled", "3.1.1", proxy.port)
    p = sluice.popen("capture", "stalled", unique("stall") + "/#", "--broker-timeout", "1s", "--duration", "40s")
    time.sleep(1.0)
    proxy.set("stall")
    t0 = time.time()
    _, err = p.communicate(timeout=40)
    assert p.returncode != 0 and "unreachable" in err and "pingreq" in err, err
    assert time.time() - t0 < 16, "two missed pings (5 s keep-alive) plus --broker-timeout"


def test_properties_travel_through_kafka_and_come_back(sluice, topic):
    add(sluice, "m5", "5")
    base = unique("across")
    msgs = [(f"{base}/in", b'{"n": 7}', 2, False, v5_props(7))]
    assert capture(sluice, "m5", f"{base}/in", lambda: publish("5", msgs), "--max-messages", "1", "--duration", "15s")["captured"] == 1
    t = topic("mqtt-x", 1)
    assert "1 sent" in sluice("replay", f'source = "{base}/in"', "--to", f"local:{t}")
    [r] = consume(t, partitions=1, expect=1)
    headers = r.headers()
    assert [(k, v) for k, v in headers[:3]] == [("plant", b"north"), ("line", b"7"), ("plant", b"south")]
    carried = json.loads(dict(headers)["sluice-properties"])
    assert carried["qos"] == 2 and carried["topic"] == f"{base}/in" and carried["content_type"] == "application/json"
    sluice("capture", "local", t, "--stop-at-end", "--include-replays")
    out = unique("back")
    listener = Listener("5", out)
    try:
        assert "1 sent" in sluice("replay", f"source = {t}", "--to", f"m5:{out}")
        [m] = listener.wait(1)
    finally:
        listener.close()
    assert m.payload == b'{"n": 7}' and m.qos == 2 and not m.retain
    assert m.properties.UserProperty[:3] == [("plant", "north"), ("line", "7"), ("plant", "south")]
    assert m.properties.CorrelationData == b"\x00corr-7" and m.properties.ContentType == "application/json"
