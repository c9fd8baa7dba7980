"""The fault matrix of test_faults.py for NATS, Redis and MQTT: Sluice reaches each private test
server through a FaultProxy that drops, stalls or resets the connection while a capture or a
replay runs. The process must end within the bound, say what is unreachable, and account
exactly: what a capture reports is in the lake once; what a replay reports delivered is on the
destination (checked with nats-py, redis-py, paho-mqtt), and no more than delivered + unknown
arrived.

NATS: a single server hands out no other addresses to connect to, so every connection goes
through the proxy. MQTT notices a stalled broker only after two missed keep-alives (5 s each,
rumqttc's shortest), so its stall bound is longer. An MQTT replay needs MQTT events (each is
published with the QoS it arrived with), so its tests capture their own from the broker first.
The checking subscriber is on the real broker, not behind the proxy, so what a stalled proxy
still holds when Sluice gives up never arrives; the proxy is not healed before counting."""

import asyncio
import json
import os
import threading
import time

import nats
import paho.mqtt.client as mqtt
import pytest
import redis

from conftest import create_topic, produce
from test_faults import (BOUND_S, FAULTS, N_CAPTURE, N_REPLAY, RATE, assert_destination_consistent,
                         assert_lake_holds, assert_reports_failure, captured, fault_after_stored,  # noqa: F401
                         fault_while_sending, payloads, runs, timeout_args, unique)
from faultproxy import fault_proxy  # noqa: F401 (a fixture, used by name)

NATS_PORT = int(os.environ.get("SLUICE_NATS_PORT", "14222"))
REDIS_PORT = int(os.environ.get("SLUICE_REDIS_PORT", "16379"))
MQTT_PORT = int(os.environ.get("SLUICE_MQTT_PORT", "11883"))
MQTT_STALL_EXTRA = 12


def nats_do(fn):
    async def go():
        nc = await nats.connect(f"nats://127.0.0.1:{NATS_PORT}", connect_timeout=5, max_reconnect_attempts=0)
        try:
            return await fn(nc, nc.jetstream())
        finally:
            await nc.close()
    return asyncio.run(go())


@pytest.fixture
def flaky_nats(fault_proxy, sluice):  # noqa: F811
    proxy = fault_proxy(("127.0.0.1", NATS_PORT))
    sluice("connection", "add", "nats", "flakynats", "--url", f"nats://{proxy.addr}")
    return proxy


@pytest.fixture
def flaky_redis(fault_proxy, sluice):  # noqa: F811
    proxy = fault_proxy(("127.0.0.1", REDIS_PORT))
    sluice("connection", "add", "redis", "flakyredis", "--url", f"redis://{proxy.addr}/0")
    return proxy


@pytest.fixture
def flaky_mqtt(fault_proxy, sluice):  # noqa: F811
    proxy = fault_proxy(("127.0.0.1", MQTT_PORT))
    sluice("connection", "add", "mqtt", "flakymqtt", "--url", f"mqtt://{proxy.addr}")
    return proxy


def nats_stream(n):
    name = unique("FAULTS").replace("-", "")

    async def fill(nc, j):
        from nats.js.api import StreamConfig
        await j.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"]))
        for p in payloads(name, n):
            await j.publish(f"{name.lower()}.in", p)
    nats_do(fill)
    return name


def nats_payloads(stream):
    async def read(nc, j):
        info = await j.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                out.append((await j.get_msg(stream, seq)).data)
            except Exception:
                pass
        return out
    return nats_do(read)


@pytest.mark.parametrize("mode", FAULTS)
def test_nats_capture_ends_when_the_server_fails(mode, flaky_nats, sluice, runs):  # noqa: F811
    stream = nats_stream(N_CAPTURE)
    run = runs(sluice, "capture", "flakynats", stream, *timeout_args())
    at = fault_after_stored(run, sluice, flaky_nats, mode, N_CAPTURE)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakynats", flaky_nats)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)
    nats_do(lambda nc, j: j.delete_stream(stream))


@pytest.mark.parametrize("mode", FAULTS)
def test_redis_capture_ends_when_the_server_fails(mode, flaky_redis, sluice, runs):  # noqa: F811
    stream = unique("faults-s")
    r = redis.Redis(port=REDIS_PORT)
    for p in payloads(stream, N_CAPTURE):
        r.xadd(stream, {"payload": p})
    run = runs(sluice, "capture", "flakyredis", stream, *timeout_args())
    at = fault_after_stored(run, sluice, flaky_redis, mode, N_CAPTURE)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakyredis", flaky_redis)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)
    r.delete(stream)


@pytest.mark.parametrize("mode", FAULTS)
def test_mqtt_capture_ends_when_the_broker_fails(mode, flaky_mqtt, sluice, runs):  # noqa: F811
    topic = f"faults/{unique('t')}"
    run = runs(sluice, "capture", "flakymqtt", topic, *timeout_args())
    time.sleep(1.5)  # subscribed
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", MQTT_PORT)
    c.loop_start()
    for p in payloads(topic, N_CAPTURE):
        c.publish(topic, p, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    at = fault_after_stored(run, sluice, flaky_mqtt, mode, N_CAPTURE)
    run.wait(BOUND_S + (MQTT_STALL_EXTRA if mode == "stall" else 0), since=at)
    assert_reports_failure(run, "flakymqtt", flaky_mqtt)
    assert_lake_holds(sluice, run, expect=N_CAPTURE)


@pytest.mark.parametrize("mode", FAULTS)
def test_nats_replay_ends_and_accounts_when_the_server_fails(mode, flaky_nats, sluice, captured, runs):  # noqa: F811
    dest = nats_stream(0)
    run = runs(sluice, "replay", captured, "--to", f"flakynats:{dest.lower()}.in", "--rate", RATE, *timeout_args())
    at = fault_while_sending(run, flaky_nats, mode)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakynats", flaky_nats)
    delivered, _, _ = assert_destination_consistent(run, nats_payloads(dest))
    assert delivered < N_REPLAY, "the fault came before the end"
    nats_do(lambda nc, j: j.delete_stream(dest))


def test_nats_replay_past_the_ack_window_ends_once_the_server_stalls(flaky_nats, sluice, runs):  # noqa: F811
    """More messages than the writer keeps awaiting acks for (1,000), unpaced: once the server
    stalls, the first ack that does not come ends the replay within the broker timeout. (A
    sliding window that waited the whole timeout again for each later message took hours.)"""
    n = 3000
    src = create_topic("faults-many", 1)
    produce(src, [{"value": v} for v in payloads(src, n)])
    sluice("capture", "local", src, "--stop-at-end")
    dest = nats_stream(0)
    run = runs(sluice, "replay", f"source = {src}", "--to", f"flakynats:{dest.lower()}.in", *timeout_args())
    at = fault_while_sending(run, flaky_nats, "stall")
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakynats", flaky_nats)
    delivered, _, _ = assert_destination_consistent(run, nats_payloads(dest))
    assert delivered < n, "the fault came before the end"
    nats_do(lambda nc, j: j.delete_stream(dest))


@pytest.mark.parametrize("mode", FAULTS)
def test_redis_replay_ends_and_accounts_when_the_server_fails(mode, flaky_redis, sluice, captured, runs):  # noqa: F811
    dest = unique("faults-dst")
    run = runs(sluice, "replay", captured, "--to", f"flakyredis:{dest}", "--rate", RATE, *timeout_args())
    at = fault_while_sending(run, flaky_redis, mode)
    run.wait(BOUND_S, since=at)
    assert_reports_failure(run, "flakyredis", flaky_redis)
    r = redis.Redis(port=REDIS_PORT)
    seen = [fields[b"payload"] for _, fields in r.xrange(dest)]
    delivered, _, _ = assert_destination_consistent(run, seen)
    assert delivered < N_REPLAY, "the fault came before the end"
    r.delete(dest)


# -- MQTT replay -------------------------------------------------------------------------------

N_MQTT = 300  # a few seconds at RATE unless the fault cuts it short


def mqtt_client():
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("faults"), protocol=mqtt.MQTTv5)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", MQTT_PORT)
    c.loop_start()
    assert connected.wait(5), "no CONNACK from the test broker"
    return c


def mqtt_close(c):
    c.disconnect()
    c.loop_stop()


def mqtt_publish(topic, values, qos, retain=False):
    c = mqtt_client()
    try:
        for v in values:
            c.publish(topic, v, qos=qos, retain=retain).wait_for_publish(5)
    finally:
        mqtt_close(c)


class MqttSubscriber:
    """Subscribed (QoS 1) to the real broker, keeping (sluice-replay-id, payload, qos) of what
    it receives."""

    def __init__(self, topic):
        self.got = []
        self.c = mqtt_client()
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_message = lambda c, u, m: self.got.append((self.replay_id(m), m.payload, m.qos))
        self.c.subscribe(topic, qos=1)
        assert subscribed.wait(5), "no SUBACK from the test broker"

    @staticmethod
    def replay_id(m):
        user = getattr(m.properties, "UserProperty", None) or []
        return next((v for k, v in user if k == "sluice-replay-id"), None)

    def settled(self, idle=1.0, timeout=15):
        """What arrived, once nothing more came for `idle` seconds."""
        end, n, last = time.time() + timeout, -1, time.time()
        while time.time() < end:
            if len(self.got) != n:
                n, last = len(self.got), time.time()
            elif time.time() - last >= idle:
                break
            time.sleep(0.05)
        mqtt_close(self.c)
        return list(self.got)


def mqtt_captured(sluice, runs, qos):
    """N_MQTT events published with `qos` and captured from the test broker into this test's
    lake; the filter for them. A retained message on the captured filter arrives as soon as the
    subscription is up: once the lake holds it, nothing published after it can be missed."""
    base = f"faults/{unique('src')}"
    ready = f"{base}/ready"
    mqtt_publish(ready, [b"subscribed"], 1, retain=True)
    try:
        sluice("connection", "add", "mqtt", "mq", "--url", f"mqtt://127.0.0.1:{MQTT_PORT}")
        cap = runs(sluice, "capture", "mq", f"{base}/#", "--max-messages", N_MQTT + 1, "--duration", "60s", "--json")
        deadline = time.time() + 20
        while int(sluice("search", f'source = "{base}/#"', "--count").strip()) < 1:
            assert cap.p.poll() is None and time.time() < deadline, f"the capture never stored the retained message:\n{cap.text[-1500:]}"
            time.sleep(0.2)
        mqtt_publish(f"{base}/in", payloads(base, N_MQTT), qos)
        cap.wait(30)
        assert cap.p.returncode == 0, cap.text[-1500:]
        assert json.loads(cap.stdout)["captured"] == N_MQTT + 1, cap.stdout
    finally:
        mqtt_publish(ready, [b""], 1, retain=True)  # clears the retained message
    flt = f'source = "{base}/#" and property.retain = false'
    assert sluice("search", f"{flt} and property.qos = {qos}", "--count").strip() == str(N_MQTT), "kept the QoS it was published with"
    return flt


def replay_account(run):
    """The replay's --json account (stdout holds only it; errors go to stderr)."""
    try:
        return json.loads(run.stdout)
    except ValueError:
        pytest.fail(f"the replay printed no JSON account:\n{run.text[-1500:]}")


def brief(a):
    """The account's counts and its first reasons, short enough for a failure message."""
    return {**{k: a.get(k) for k in ("matched", "sent", "failed", "unknown", "not_sent", "error")},
            "errors": a.get("errors", [])[:3], "unknowns": a.get("unknowns", [])[:3]}


@pytest.mark.parametrize("qos", [1, 0])
@pytest.mark.parametrize("mode", FAULTS)
def test_mqtt_replay_ends_and_accounts_when_the_broker_fails(mode, qos, flaky_mqtt, sluice, runs):  # noqa: F811
    """QoS 1 counts sent on PUBACK; QoS 0 is never confirmed, so all it wrote is unknown. Under
    a stall, QoS 0 notices nothing while the socket buffers take all N_MQTT messages (~170 kB):
    every one is then unknown, which is true, and nothing arrives (the proxy holds it)."""
    flt = mqtt_captured(sluice, runs, qos)
    lake = {e["id"]: e["payload_text"].encode() for e in sluice.jsonl("search", flt, "--limit", N_MQTT + 1, "--format", "jsonl")}
    assert len(lake) == N_MQTT
    dest = f"faults/{unique('dst')}"
    sub = MqttSubscriber(dest)
    run = runs(sluice, "replay", flt, "--to", f"flakymqtt:{dest}", "--rate", RATE, "--json", *timeout_args())
    at = fault_while_sending(run, flaky_mqtt, mode)
    run.wait(BOUND_S + (MQTT_STALL_EXTRA if mode == "stall" else 0), since=at)
    got = sub.settled()
    a = replay_account(run)
    sent, failed, unknown, not_sent, matched = (a[k] for k in ("sent", "failed", "unknown", "not_sent", "matched"))
    assert matched == sent + failed + unknown + not_sent, f"every matched event in exactly one count: {brief(a)}"
    assert 0 < matched <= N_MQTT, brief(a)
    if qos == 0:
        assert sent == 0, f"QoS 0 is never confirmed, so never sent: {brief(a)}"
    if not (qos == 0 and mode == "stall"):
        assert sent + unknown < N_MQTT, f"the fault came before the end: {brief(a)}"

    # What arrived: each message once, one of ours, carrying its replay id, with its QoS.
    ids = [rid.split(":", 2)[2] if rid else None for rid, _, _ in got]  # LAKE:RUN:EVENT
    assert None not in ids, "every replayed message carries sluice-replay-id"
    assert len(ids) == len(set(ids)), f"the destination got duplicates: {len(ids)} messages, {len(set(ids))} distinct"
    for event, (_, payload, q) in zip(ids, got):
        assert lake.get(event) == payload, f"{event}: not the payload of the event it names"
        assert q == qos, f"{event}: arrived with QoS {q}, published with {qos}"
    assert sent <= len(got) <= sent + unknown, \
        f"the subscriber got {len(got)}; the replay said {brief(a)}"
    # By event: none counted failed arrived, and what arrived without being counted unknown
    # was counted sent (so every sent one arrived).
    failed_ids = {e for e, _ in a["errors"]}
    unknown_ids = {e for e, _ in a["unknowns"] if e in lake}
    unnamed = unknown - len(unknown_ids)  # counted, not listed by id ("N event(s)")
    assert not failed_ids & set(ids), f"counted failed, yet arrived: {sorted(failed_ids & set(ids))[:5]}; {brief(a)}"
    confirmed = set(ids) - unknown_ids
    assert sent <= len(confirmed) <= sent + unnamed, \
        f"{len(confirmed)} arrived that are not counted unknown ({unnamed} unknown unnamed); {brief(a)}"
    # Last, as the messages' wording matters less than the counts above.
    assert_reports_failure(run, "flakymqtt", flaky_mqtt)
