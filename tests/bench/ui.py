"""UI speed figures for BENCHMARKS.md: time to the first search page (through the API and in
the browser) and memory after browsing a large result set, on a synthetic lake.

    python3 tests/bench/ui.py SLUICE_BIN LAKE_DIR
"""

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

sluice, lake = sys.argv[1], sys.argv[2]
env = dict(os.environ, SLUICE_LAKE=lake, SLUICE_CONFIG=lake + "-config", SLUICE_KEYRING="off")
serve = subprocess.Popen([sluice, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
url = serve.stdout.readline().split()[-1]
base, token = url.split("#token=")


def api(command, body):
    r = urllib.request.Request(base + "api/" + command, data=json.dumps(body).encode(), method="POST",
                               headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    with urllib.request.urlopen(r, timeout=300) as resp:
        return resp.read()


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024


try:
    for f in ["", "status = FAILED", "customer.id = 4242"]:
        runs, sizes = [], []
        for _ in range(3):
            t = time.monotonic()
            n = json.loads(api("count", {"filter": f}))
            page = api("search", {"filter": f, "offset": 0, "limit": 100})
            runs.append((time.monotonic() - t) * 1000)
            sizes.append(len(page))
        print(f"- API first page (count + 100 rows) for {f or '(everything)'!r}: median {statistics.median(runs):.0f} ms "
              f"of {[round(r) for r in runs]}; {n} matches; page {max(sizes) // 1024} KiB")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = b.new_page(viewport={"width": 1440, "height": 900})
        runs = []
        # Each navigation starts from a blank page: going from one hash to another only changes
        # the hash, which would neither reload the app nor the results.
        for _ in range(3):
            page.goto("about:blank")
            t = time.monotonic()
            page.goto(f"{base}#search?q=status%20%3D%20FAILED&token={token}")
            page.locator(".search-table .vrows .row[data-id]").first.wait_for(timeout=300_000)
            runs.append((time.monotonic() - t) * 1000)
        print(f"- browser: navigation to first result row (status = FAILED): median {statistics.median(runs):.0f} ms of {[round(r) for r in runs]}")
        page.goto("about:blank")
        page.goto(f"{base}#search?q=&token={token}")
        page.locator(".search-table .vrows .row[data-id]").first.wait_for(timeout=300_000)
        # The first rows show before the count; the table's length comes with the count.
        status = page.locator(".search-status", has_text="matching")
        status.wait_for(timeout=300_000)
        total = int(status.inner_text().split()[0].replace(",", ""))
        t = time.monotonic()
        for frac in [0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 0.3, 0.6]:
            page.evaluate("f => { const l = document.querySelector('.search-table .vlist'); l.scrollTop = l.scrollHeight * f; }", frac)
            page.locator(".search-table .vrows .row[data-id]").first.wait_for(timeout=300_000)
        browse = time.monotonic() - t
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        heap = metrics["JSHeapUsedSize"] / 2**20
        print(f"- after browsing {total:,} results (8 jumps across the table, {browse:.1f} s): page JS heap {heap:.1f} MiB, "
              f"DOM nodes {int(metrics['Nodes'])}; `sluice serve` RSS {rss_mib(serve.pid)} MiB")
        b.close()
finally:
    serve.terminate()
    serve.wait(30)
