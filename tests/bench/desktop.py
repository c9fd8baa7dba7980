"""Desktop figures for BENCHMARKS.md: the real Tauri window (WebKitGTK, under Xvfb, driven by
tauri-driver) over a synthetic lake: time from submitting a search to its first result row, and
the app's memory (its own process and WebKit's) after browsing the whole lake.

    python3 tests/bench/desktop.py SLUICE_APP_BIN LAKE_DIR
"""

import http.client
import os
import statistics
import sys
import tempfile
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from webdriver import start_driver, stop_driver  # noqa: E402

app, lake = sys.argv[1], sys.argv[2]
env = dict(os.environ, SLUICE_LAKE=lake, SLUICE_CONFIG=lake + "-config", SLUICE_KEYRING="off")

# Resolves once the table shows a result row, with the time since `window.t0`.
FIRST_ROW = """
const done = arguments[arguments.length - 1];
const tick = () => document.querySelector('.search-table .vrows .row[data-id]')
  ? done(performance.now() - window.t0) : requestAnimationFrame(tick);
tick();
"""


def memory(pid):
    """(RSS, PSS) in MiB; PSS shares the libraries WebKit's processes have in common fairly."""
    vals = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, _, rest = line.partition(":")
        if k in ("Rss", "Pss"):
            vals[k] = int(rest.split()[0]) // 1024
    return vals["Rss"], vals["Pss"]


def app_processes():
    """The app's process and its children (WebKit's web and network processes)."""
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                procs[int(d.name)] = (name, ppid)
            except (OSError, ValueError):
                pass
    root = next(p for p, (n, _) in procs.items() if n.startswith("sluice-app"))
    family, grew = {root}, True
    while grew:
        kids = {p for p, (_, pp) in procs.items() if pp in family} - family
        family |= kids
        grew = bool(kids)
    return [(p, procs[p][0]) for p in sorted(family)]


def search(wd, text):
    """Milliseconds from submitting `text` to its first result row, starting from an empty
    table (a search that matches nothing clears what the last one showed)."""
    box = wd.find(".filter-input")
    wd.clear(box)
    wd.type(box, "customer.id = -1\ue007")
    wd.find(".search-status", "0 matching", timeout=300)
    wd.wait_js("return !document.querySelector('.search-table .vrows .row[data-id]')", timeout=300)
    wd.clear(box)
    wd.js("window.t0 = performance.now();")
    wd.type(box, text + "\ue007")
    return wd.req("POST", wd.s("/execute/async"), {"script": FIRST_ROW, "args": []}, timeout=300)


def measure(log):
    driver, wd = start_driver(env, log)
    try:
        wd.start(app)
        runs = [search(wd, "status = FAILED") for _ in range(3)]
        search(wd, "")
        status = wd.find(".search-status", "matching", timeout=300)
        total = wd.text(status).split()[0]
        for frac in [0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 0.3, 0.6]:
            wd.js("const l = document.querySelector('.search-table .vlist'); l.scrollTop = l.scrollHeight * arguments[0];", frac)
            wd.wait_js("return !!document.querySelector('.search-table .vrows .row[data-id]')", timeout=300)
        nodes = wd.js("return document.getElementsByTagName('*').length")
        parts, rss_sum, pss_sum = [], 0, 0
        for pid, name in app_processes():
            if name.startswith(("sluice-app", "WebKit")):
                rss, pss = memory(pid)
                parts.append(f"{name} {rss} MiB")
                rss_sum, pss_sum = rss_sum + rss, pss_sum + pss
    finally:
        stop_driver(driver, wd)
    print(f"- desktop window: submitting `status = FAILED` to its first result row (from an empty table): median "
          f"{statistics.median(runs):.0f} ms of {[round(r) for r in runs]}")
    print(f"- desktop window after browsing {total} results (8 jumps across the table): {nodes} DOM nodes; "
          f"RSS {', '.join(parts)}; together {rss_sum} MiB RSS, {pss_sum} MiB PSS")


# WebKitWebDriver on a loaded machine sometimes drops its connection mid-session (see
# tests/e2e/test_desktop.py): the rig failing, not the app, so a fresh start is allowed.
for attempt in (1, 2, 3):
    with tempfile.TemporaryFile("w+") as log:
        try:
            measure(log)
            break
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError) as e:
            log.seek(0)
            print(f"attempt {attempt}: WebDriver connection lost ({e!r}); driver log:\n{log.read()[-3000:]}", file=sys.stderr)
            if attempt == 3:
                raise
