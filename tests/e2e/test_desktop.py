"""A smoke test of the real desktop window: the Tauri app under Xvfb, driven through
tauri-driver and WebKitWebDriver (Debian's webkit2gtk-driver). The app starts, lists a
connection, runs a search over a real lake, tails a topic live (rows streamed through the
app's Tauri channel, not polled), and a screenshot is taken. Then the same for NATS: a
JetStream stream listed in the tree, tailed, captured from the Captures view and searched by
subject and by header."""

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import uuid
from pathlib import Path

import pytest

from conftest import BROKER, TARGET, Sluice, create_topic, produce
from webdriver import DRIVER, start_driver, stop_driver

ARTIFACTS = Path(os.environ.get("SLUICE_ARTIFACTS", Path(__file__).parent / "artifacts"))
APP = os.environ.get("SLUICE_APP_BIN", str(TARGET / "debug" / "sluice-app"))


def run_window_once(sluice, log_path, topic, attempt, on_topic):
    """Starts the app through tauri-driver, searches, tails `topic`, and saves screenshots.
    Each attempt adds one live message to the topic; `on_topic` counts what the topic holds,
    as an attempt cut short may or may not have added its own."""
    with open(log_path, "w") as log:
        driver, wd = start_driver(sluice.env, log)
    try:
        wd.start(APP)
        wd.find(".conn-name", "local")
        box = wd.find(".filter-input")
        wd.type(box, 'status = "FAILED"\ue007')
        status = wd.find(".search-status", "5 matching")
        assert "5 matching" in wd.text(status)
        wd.find(".search-table .row[data-id]")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "desktop.png"
        wd.screenshot(shot)
        assert shot.stat().st_size > 10_000, "the screenshot is blank"

        wd.click(wd.find(".conn-name", "local"))
        wd.click(wd.find(f"button.source[data-source='{topic}']"))
        start_from = wd.find(".tail-view input[aria-label='Start from']")
        wd.clear(start_from)
        wd.type(start_from, "beginning")
        wd.click(wd.find(".tail-view .toolbar button.primary", "Start"))
        wd.find(".tail-view .toolbar span", f"{on_topic[0]} shown")
        produce(topic, [{"value": json.dumps({"status": f"LIVE-{attempt}"}).encode()}])
        on_topic[0] += 1
        wd.find(".tail-view .toolbar span", f"{on_topic[0]} shown")
        wd.screenshot(ARTIFACTS / "desktop-tail.png")
        # WebKitWebDriver reads the virtual list's rows as empty text, so ask the page itself.
        wd.wait_js("return document.querySelector('.tail-table .vrows').textContent.includes(arguments[0])", f"LIVE-{attempt}")
        wd.click(wd.find(".tail-view .toolbar button.primary", "Stop"))
    finally:
        stop_driver(driver, wd)


@pytest.mark.skipif(not Path(APP).exists(), reason="the desktop app is not built")
def test_desktop_window_lists_a_connection_and_searches(tmp_path):
    assert Path(DRIVER).exists(), "tauri-driver missing: scripts/install-deps.sh --test installs it"
    sluice = Sluice(tmp_path)
    sluice("connection", "add", "kafka", "local", "--brokers", BROKER)
    t = create_topic("desk", 1)
    produce(t, [{"value": json.dumps({"status": "FAILED" if i % 5 == 0 else "OK", "n": i}).encode()} for i in range(25)])
    sluice("capture", "local", t, "--from", "beginning", "--stop-at-end")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # WebKitWebDriver on a loaded machine has been seen dropping its connection mid-session
    # (in CI, twice in a row once, at the screenshot, after the search had passed). That is the
    # test rig failing, not the app: two fresh starts are allowed, and the driver's own log is
    # kept and shown either way.
    attempts = (1, 2, 3)
    on_topic = [25]
    for attempt in attempts:
        log_path = ARTIFACTS / f"desktop-driver-{attempt}.log"
        try:
            run_window_once(sluice, log_path, t, attempt, on_topic)
            return
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError, socket.timeout) as e:
            tail = log_path.read_text(errors="replace")[-3000:]
            if attempt == attempts[-1]:
                raise AssertionError(f"the WebDriver connection failed {attempt} times ({e!r}); driver log:\n{tail}") from e
            print(f"attempt {attempt}: WebDriver connection lost ({e!r}); driver log:\n{tail}")
            time.sleep(2)


NATS = f"nats://127.0.0.1:{os.environ.get('SLUICE_NATS_PORT', '14222')}"


def nats_do(fn):
    """Runs `fn(js)` on a fresh nats-py JetStream context (the independent client)."""
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(NATS, connect_timeout=5, max_reconnect_attempts=0)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(go())


# WebKitWebDriver's screenshot waits for the window's next paint, and a window at rest paints
# again only when the sidebar refreshes (every 15 s): measured 7-15 s a shot here. A 1-pixel,
# nearly transparent element flickering in a corner for 3 s makes the shot at once (0.1 s).
PAINT = """
    const e = document.createElement('div');
    e.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none';
    document.body.appendChild(e);
    let n = 0;
    const id = setInterval(() => { e.style.opacity = n++ % 2 ? '0.01' : '0.02'; if (n > 60) { clearInterval(id); e.remove(); } }, 50);"""


def screenshot_now(wd, path):
    wd.js(PAINT)
    wd.screenshot(path)


def nats_window_once(sluice, log_path, stream, subj, attempt):
    """Starts the app, opens the NATS connection's stream from the tree, tails it from the
    beginning and live, captures it from the Captures view and searches the lake by subject
    and by header. Each attempt publishes one live message (subject `SUBJ.live`), so what the
    stream holds is asked of the server first."""

    async def count(js):
        return (await js.stream_info(stream)).state.messages

    on_stream = nats_do(count)
    with open(log_path, "w") as log:
        driver, wd = start_driver(sluice.env, log)
    try:
        wd.start(APP)
        # The stream in the tree with its count; the box for subjects no listing shows.
        wd.click(wd.find(".conn-name", "bus"))
        # (Read in the page: the tree is drawn anew on every listing, which makes elements stale.)
        wd.find(f"button.source[data-source='{stream}']")
        counts = wd.js("return document.querySelector(`button.source[data-source='${arguments[0]}'] .counts`).textContent", stream)
        assert re.search(rf"\b{on_stream}\b", counts), f"{stream} listed as {counts!r}, holds {on_stream}"
        wd.find("input[aria-label='Open a stream or subject of bus by name']")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot_now(wd, ARTIFACTS / "desktop-nats-tree.png")

        # Tailed from the beginning, then live: rows through the app's channel.
        wd.click(wd.find(f"button.source[data-source='{stream}']"))
        wd.find(".tail-view h2", f"bus:{stream}")
        start_from = wd.find(".tail-view input[aria-label='Start from']")
        wd.clear(start_from)
        wd.type(start_from, "beginning")
        wd.click(wd.find(".tail-view .toolbar button.primary", "Start"))
        wd.find(".tail-view .toolbar span", f"{on_stream} shown")

        async def live(js):
            ack = await js.publish(f"{subj}.live", json.dumps({"note": f"LIVE-{attempt}"}).encode(),
                                   headers={"trace-id": f"live-{attempt}"})
            return ack.seq

        nats_do(live)
        wd.find(".tail-view .toolbar span", f"{on_stream + 1} shown")
        # WebKitWebDriver reads the virtual list's rows as empty text, so ask the page itself.
        rows = "return document.querySelector('.tail-table .vrows').textContent.includes(arguments[0])"
        for marker in ("desk-row-0", "desk-row-4", f"LIVE-{attempt}"):
            wd.wait_js(rows, marker, timeout=10)
        screenshot_now(wd, ARTIFACTS / "desktop-nats-tail.png")
        wd.click(wd.find(".tail-view .toolbar button.primary", "Stop"))

        # Captured from the Captures view, the selected stream filled in, to the stream's end.
        wd.click(wd.find("button[role=tab]", "Captures"))
        wd.find(".captures-view input[name=sources]")
        value = "return document.querySelector(`.captures-view input[name=${arguments[0]}]`)[arguments[1]]"
        assert wd.js(value, "sources", "value") == stream
        # The form is drawn again whenever the connections are reloaded (every 15 s, by the
        # sidebar), which puts back its defaults: check what it holds as the button is pressed.
        press = """
            const f = document.querySelector('.captures-view .form');
            const v = (n) => f.querySelector(`input[name=${n}]`);
            if (v('sources').value !== arguments[0] || v('from').value !== 'beginning' || !v('stop_at_end').checked) return false;
            [...f.querySelectorAll('button')].find((b) => b.textContent === 'Start capture').click();
            return true;"""
        for _ in range(3):
            start_from = wd.find(".captures-view input[name=from]")
            wd.clear(start_from)
            wd.type(start_from, "beginning")
            if not wd.js(value, "stop_at_end", "checked"):
                wd.click(wd.find(".captures-view input[name=stop_at_end]"))
            if wd.js(press, stream):
                break
        else:
            raise AssertionError("the capture form kept losing what was typed into it")
        # The table is drawn anew every second: read the finished row in the page, at once.
        wd.find(".captures tr", "done (end)")
        row = wd.js("""const r = [...document.querySelectorAll('.captures tbody tr')].find((r) => r.textContent.includes('done (end)'));
                       return r && [...r.cells].map((c) => c.textContent);""")
        assert row[0] == f"bus:{stream}" and row[2] == str(on_stream + 1), row

        # Searched by subject, then by a NATS header; the match's detail shows both.
        wd.click(wd.find("button[role=tab]", "Search"))
        box = wd.find(".filter-input")
        wd.clear(box)
        wd.type(box, f"source = \"{stream}\" and property.subject = '{subj}.eu'\ue007")
        wd.find(".search-status", "2 matching")
        wd.find(".search-table .row[data-id]")
        table = "document.querySelector('.search-table .vrows').textContent"
        wd.wait_js(f"return {table}.includes(arguments[0]) && {table}.includes(arguments[1])", "desk-row-1", "desk-row-3")
        assert "desk-row-2" not in wd.js(f"return {table}")
        wd.clear(box)
        wd.type(box, f"source = \"{stream}\" and header.trace-id = \"t-3\"\ue007")
        wd.find(".search-status", "1 matching")
        wd.wait_js(f"return {table}.includes(arguments[0])", "desk-row-3")
        assert "desk-row-1" not in wd.js(f"return {table}")
        wd.click(wd.find(".search-table .vrows .row[data-id]"))
        detail = "document.querySelector('.search-view .detail-pane').textContent"
        wd.wait_js(f"return {detail}.includes(arguments[0]) && {detail}.includes(arguments[1])", "t-3", f"{subj}.eu")
        shot = ARTIFACTS / "desktop-nats.png"
        screenshot_now(wd, shot)
        assert shot.stat().st_size > 10_000, "the screenshot is blank"
    finally:
        stop_driver(driver, wd)


@pytest.mark.skipif(not Path(APP).exists(), reason="the desktop app is not built")
def test_desktop_window_tails_captures_and_searches_a_nats_stream(tmp_path):
    from nats.js.api import StreamConfig

    assert Path(DRIVER).exists(), "tauri-driver missing: scripts/install-deps.sh --test installs it"
    sluice = Sluice(tmp_path)
    sluice("connection", "add", "nats", "bus", "--url", NATS)
    tag = uuid.uuid4().hex[:8]
    stream, subj = f"DESK{tag}", f"desk{tag}"

    async def fill(js):
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{subj}.>"]))
        for i in range(5):
            body = json.dumps({"note": f"desk-row-{i}", "status": "FAILED" if i == 3 else "PAID"}).encode()
            await js.publish(f"{subj}.{'eu' if i % 2 else 'us'}", body, headers={"trace-id": f"t-{i}", "x-kind": "order"})

    async def drop(js):
        await js.delete_stream(stream)

    nats_do(fill)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    attempts = (1, 2, 3)
    try:
        # As above: a WebDriver connection lost mid-session is the rig, not the app.
        for attempt in attempts:
            log_path = ARTIFACTS / f"desktop-nats-driver-{attempt}.log"
            try:
                nats_window_once(sluice, log_path, stream, subj, attempt)
                return
            except (ConnectionError, http.client.HTTPException, urllib.error.URLError, socket.timeout) as e:
                tail = log_path.read_text(errors="replace")[-3000:]
                if isinstance(e, urllib.error.HTTPError):
                    # An answer from WebDriver (no such element, stale element): not the rig.
                    raise AssertionError(f"WebDriver refused a command ({e!r}): {e.read()[:500]!r}") from e
                if attempt == attempts[-1]:
                    raise AssertionError(f"the WebDriver connection failed {attempt} times ({e!r}); driver log:\n{tail}") from e
                print(f"attempt {attempt}: WebDriver connection lost ({e!r}); driver log:\n{tail}")
                time.sleep(2)
    finally:
        nats_do(drop)
