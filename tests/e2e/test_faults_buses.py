"""The fault matrix of test_faults.py for NATS, Redis and MQTT: Sluice reaches each private test
server through a FaultProxy that drops, stalls or resets the connection while a capture or a
replay runs. The process must end within the bound, say what is unreachable, and account
exactly: what a capture reports is in the lake once; what a replay reports delivered is on the
destination (checked with nats-py, redis-py), and no more than delivered + unknown arrived.

NATS: a single server hands out no other addresses to connect to, so every connection goes
through the proxy. MQTT notices a stalled broker only after two missed keep-alives (5 s each,
rumqttc's shortest), so its stall bound is longer."""

import asyncio
import os
import time

import nats
import pytest
import redis

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
    import paho.mqtt.client as mqtt
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

