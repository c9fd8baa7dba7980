"""A smoke test of the real desktop window: the Tauri app under Xvfb, driven through
tauri-driver and WebKitWebDriver (Debian's webkit2gtk-driver). The app starts, lists a
connection, runs a search over a real lake, tails a topic live (rows streamed through the
app's Tauri channel, not polled), and a screenshot is taken."""

import http.client
import json
import os
import socket
import time
import urllib.error
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
