"""`sluice agent`: captures from a file as a long-lived service, with health and Prometheus
metrics, restarts with backoff, and a clean stop on SIGTERM that keeps every event."""

import json
import signal
import time
import urllib.error
import urllib.request

from conftest import BROKER, produce


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, capture):
    for line in text.splitlines():
        if line.startswith(f'{name}{{capture="{capture}"}} '):
            return int(line.split()[-1])
    return None


def start(sluice, tmp_path, body):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(body)
    p = sluice.popen("agent", "--config", cfg)
    line = p.stdout.readline()
    assert "metrics on http://" in line, line + p.stderr.read()
    base = line.split("metrics on ")[1].strip().rsplit("/metrics", 1)[0]
    return p, base


def wait_for(check, timeout=40):
    end = time.time() + timeout
    while time.time() < end:
        v = check()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_an_agent_captures_reports_metrics_and_stops_cleanly_on_sigterm(sluice, topic, tmp_path):
    a, b = topic("agent-a"), topic("agent-b", partitions=1)
    p, base = start(sluice, tmp_path, f"""
metrics = "127.0.0.1:0"

[[capture]]
name = "orders"
connection = "local"
sources = ["{a}"]
from = "beginning"

[[capture]]
connection = "local"
sources = ["{b}"]
from = "beginning"
""")
    try:
        produce(a, [{"value": json.dumps({"n": i}).encode(), "partition": i % 3} for i in range(120)])
        produce(b, [{"value": f"line {i}".encode()} for i in range(40)])
        name_b = f"local:{b}"
        wait_for(lambda: metric(get(base + "/metrics")[1], "sluice_capture_events_total", "orders") == 120)
        wait_for(lambda: metric(get(base + "/metrics")[1], "sluice_capture_events_total", name_b) == 40)
        status, text = get(base + "/metrics")
        assert status == 200 and "# TYPE sluice_capture_events_total counter" in text
        assert metric(text, "sluice_capture_up", "orders") == 1
        assert metric(text, "sluice_capture_errors_total", "orders") == 0
        status, health = get(base + "/healthz")
        assert status == 200 and json.loads(health)["status"] == "ok"
        # Read, most likely not yet flushed (files are written every half second): the stop
        # must make it durable.
        produce(a, [{"value": b'{"late":1}', "partition": 0}])
        wait_for(lambda: metric(get(base + "/metrics")[1], "sluice_capture_read_total", "orders") == 121)
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    assert any(l["event"] == "started" and l["capture"] == "orders" for l in lines), err
    assert lines[-1]["event"] == "stopped"
    # Stopping flushed what was read: the late message too, and nothing twice.
    assert sluice("search", f'topic = "{a}"', "--count").strip() == "121"
    assert sluice("search", f'topic = "{b}"', "--count").strip() == "40"


def test_a_failing_capture_is_reported_unhealthy_and_retried_with_backoff(sluice, tmp_path):
    sluice("connection", "add", "kafka", "gone", "--brokers", "127.0.0.1:1")
    p, base = start(sluice, tmp_path, """
metrics = "127.0.0.1:0"

[[capture]]
name = "nowhere"
connection = "gone"
sources = ["orders"]
broker_timeout_ms = 1000
""")
    try:
        wait_for(lambda: get(base + "/healthz")[0] == 503, timeout=60)
        health = json.loads(get(base + "/healthz")[1])
        assert health["status"] == "failing" and health["captures"][0]["last_error"]
        assert "gone" in health["captures"][0]["last_error"]
        wait_for(lambda: (metric(get(base + "/metrics")[1], "sluice_capture_restarts_total", "nowhere") or 0) >= 1, timeout=60)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert any(json.loads(l)["event"] == "failed" for l in err.splitlines() if l.startswith("{"))


def test_a_bad_agent_file_fails_at_start_naming_the_problem(sluice, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[capture]]\nconnection = "local"\nsources = ["x"]\nfrom = "yesterday-ish"\n')
    p = sluice.run("agent", "--config", bad, check=False)
    assert p.returncode != 0 and "bad.toml" in p.stderr and "yesterday-ish" in p.stderr, p.stderr
    bad.write_text('[[capture]]\nconnection = "nobody"\nsources = ["x"]\n')
    p = sluice.run("agent", "--config", bad, check=False)
    assert p.returncode != 0 and "nobody" in p.stderr, p.stderr
    bad.write_text('metrics = "127.0.0.1:0"\n')
    p = sluice.run("agent", "--config", bad, check=False)
    assert p.returncode != 0 and "no [[capture]]" in p.stderr, p.stderr
