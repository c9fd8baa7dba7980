"""`sluice serve` under load, for BENCHMARKS.md: search pages with 50 concurrent clients
(requests/s, p50/p99), a burst of 2,000 requests at once (all answered? how slow?), serve's
memory before, at the peak of and after the burst, and a real request's time while thousands
of connections sit open without sending anything. Not part of CI.

    python3 tests/bench/serve_load.py SLUICE_BIN LAKE_DIR [CLIENTS=50] [SECONDS=20] [BURST=2000] [IDLE=5000]

LAKE_DIR is a lake made by `sluice-bench synth-lake LAKE_DIR 100000` (scripts/bench.sh).
"""

import asyncio
import http.client
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

sluice, lake = sys.argv[1], sys.argv[2]
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 50
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
burst = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
idle_n = int(sys.argv[6]) if len(sys.argv) > 6 else 5000

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, burst + idle_n + 500)), hard))

env = dict(os.environ, SLUICE_LAKE=lake, SLUICE_CONFIG=lake + "-config", SLUICE_KEYRING="off")
serve = subprocess.Popen([sluice, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
url = serve.stdout.readline().split()[-1]
base, token = url.split("#token=")
host, port = base[len("http://"):].rstrip("/").rsplit(":", 1)
port = int(port)

# Search pages as the UI asks for them: a filter, 100 rows, scrolled to some offset.
FILTERS = ['status = FAILED', 'customer.id > 5000000', '"Customer"', 'status = PAID and amountCents > "500000"', '']


def body_for(i):
    return json.dumps({"filter": FILTERS[i % len(FILTERS)], "offset": 100 * (i % 20), "limit": 100}).encode()


def rss_mib():
    with open(f"/proc/{serve.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
c = http.client.HTTPConnection(host, port, timeout=300)
c.request("POST", "/api/count", body=json.dumps({"filter": ""}).encode(), headers=headers)
total = c.getresponse().read().decode()
c.close()
time.sleep(1)
rss_start = rss_mib()

# 1. Steady load: each client keeps one connection and asks for the next page as soon as it
# has the last one.
lat, errors, stop_at = [], [], time.time() + seconds
lock = threading.Lock()


def client(k):
    conn = http.client.HTTPConnection(host, port, timeout=300)
    i = k
    while time.time() < stop_at:
        t = time.perf_counter()
        try:
            conn.request("POST", "/api/search", body=body_for(i), headers=headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except Exception as e:  # noqa: BLE001 - counted, reported
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=300)
        with lock:
            (lat if ok else errors).append(time.perf_counter() - t)
        i += clients


t0 = time.time()
threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t0
rss_after_load = rss_mib()
print(f"- lake: {total} events; {os.cpu_count()} cores")
print(f"- search pages, {clients} concurrent keep-alive clients for {elapsed:.0f} s: {len(lat) / elapsed:.1f} requests/s, "
      f"p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, {len(errors)} errors")


# 2. A burst: `burst` connections each sending one search at once.
async def one(i, out):
    t = time.perf_counter()
    try:
        r, w = await asyncio.open_connection(host, port)
        b = body_for(i)
        w.write(f"POST /api/search HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\nConnection: close\r\n\r\n".encode() + b)
        await w.drain()
        data = await asyncio.wait_for(r.read(), 600)
        w.close()
        out.append((int(data.split(b" ", 2)[1]), time.perf_counter() - t))
    except Exception as e:  # noqa: BLE001
        out.append((str(type(e).__name__), time.perf_counter() - t))


peak = [0.0]
sampling = [True]


def sample():
    while sampling[0]:
        peak[0] = max(peak[0], rss_mib())
        time.sleep(0.05)


s = threading.Thread(target=sample)
s.start()
out = []
t0 = time.time()


async def run_burst():
    await asyncio.gather(*(one(i, out) for i in range(burst)))

asyncio.run(run_burst())
burst_s = time.time() - t0
sampling[0] = False
s.join()
ok = [d for code, d in out if code == 200]
codes = {}
for code, _ in out:
    codes[code] = codes.get(code, 0) + 1
rss_end = rss_mib()
time.sleep(2)
rss_2s = rss_mib()
time.sleep(13)
rss_15s = rss_mib()
print(f"- burst of {burst} concurrent search requests: {len(ok)} answered 200 in {burst_s:.1f} s (statuses {codes}), "
      f"p50 {pct(ok, 0.5):.1f} s, p99 {pct(ok, 0.99):.1f} s")
print(f"- serve RSS: {rss_start:.0f} MiB before, {rss_after_load:.0f} MiB after the steady load, peak {peak[0]:.0f} MiB in the burst, "
      f"{rss_end:.0f} MiB when it ended, {rss_2s:.0f} MiB 2 s later, {rss_15s:.0f} MiB 15 s later")

# 3. Idle connections: `idle_n` connections that send nothing (half of them half a request
# head), then one real request.
idle = []
for i in range(idle_n):
    try:
        so = socket.create_connection((host, port), timeout=2)
        if i % 2 == 0:
            so.send(b"POST /api/search HTTP/1.1\r\nHost: x\r\n")
        idle.append(so)
    except OSError:
        pass
t = time.perf_counter()
try:
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request("POST", "/api/app_info", body=b"{}", headers=headers)
    status = c.getresponse().status
except Exception as e:  # noqa: BLE001
    status = type(e).__name__
print(f"- with {len(idle)} idle connections open: a real request answered {status} in {(time.perf_counter() - t) * 1000:.0f} ms")
for so in idle:
    so.close()

serve.terminate()
serve.wait(60)
print(f"- serve exited {serve.returncode} on SIGTERM")
