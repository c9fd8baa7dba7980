"""`sluice serve` as a service manager runs it: stopped by SIGTERM (as `systemctl stop` and
`kill` do) it stops its captures, makes what they read durable and exits 0; bound to the
network it says so loudly; bound to IPv6 it prints a URL a browser can open."""

import json
import signal
import time
import urllib.request

from conftest import BROKER, Sluice, create_topic, produce


def start(s, *args):
    p = s.popen("serve", "--port", "0", *args)
    line = p.stdout.readline()
    assert line.startswith("Sluice is serving on http://"), line + p.stderr.read()
    return p, line.split()[-1]


def api(url, command, body=None):
    base, _, tok = url.partition("#token=")
    req = urllib.request.Request(base + "api/" + command, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def stop(p, sig):
    p.send_signal(sig)
    try:
        p.wait(40)
    except Exception:
        p.kill()
        raise
    return p.returncode, p.stderr.read()


def test_sigterm_stops_a_capture_started_through_the_api_flushes_it_and_exits_0(tmp_path):
    s = Sluice(tmp_path)
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    t = create_topic("serve-term")
    n = 3000
    produce(t, [{"value": json.dumps({"i": i}).encode(), "partition": i % 3} for i in range(n)])
    p, url = start(s)
    job = api(url, "capture_start", {"connection": "local", "sources": [t], "from": "beginning"})
    read, deadline = 0, time.time() + 60
    while read < n and time.time() < deadline:
        u = api(url, "job_poll", {"id": job, "after": 0, "wait_ms": 200})
        read = (u["job"]["progress"] or {}).get("read", 0)
        assert u["job"]["running"], u
    assert read == n, f"the capture read {read} of {n}"
    # Stopped while still capturing (it has no end): what it read must be in the lake after.
    code, err = stop(p, signal.SIGTERM)
    assert code == 0, f"exit {code}: {err}"
    assert "panicked" not in err, err
    assert s("search", f'topic = "{t}"', "--count").strip() == str(n)


def test_sigterm_on_an_idle_server_exits_0_promptly(tmp_path):
    p, _ = start(Sluice(tmp_path))
    t = time.time()
    code, err = stop(p, signal.SIGTERM)
    assert code == 0, f"exit {code}: {err}"
    assert time.time() - t < 10


def test_binding_every_interface_warns_who_can_reach_it(tmp_path):
    p, url = start(Sluice(tmp_path), "--bind", "0.0.0.0")
    # The printed URL is one a browser on this machine can open.
    assert url.startswith("http://127.0.0.1:"), url
    assert api(url, "app_info")["lake_dir"]
    code, err = stop(p, signal.SIGINT)
    assert code == 0, err
    assert "WARNING" in err and "every network interface" in err and "token" in err, err


def test_a_loopback_server_prints_no_warning_and_ipv6_urls_have_brackets(tmp_path):
    p, url = start(Sluice(tmp_path), "--bind", "::1")
    assert url.startswith("http://[::1]:"), url
    assert api(url, "app_info")["lake_dir"]
    code, err = stop(p, signal.SIGTERM)
    assert code == 0, err
    assert "WARNING" not in err, err
