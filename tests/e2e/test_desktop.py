"""A smoke test of the real desktop window: the Tauri app under Xvfb, driven through
tauri-driver and WebKitWebDriver (Debian's webkit2gtk-driver). The app starts, lists a
connection, runs a search over a real lake, tails a topic live (rows streamed through the
app's Tauri channel, not polled), and a screenshot is taken."""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BROKER, TARGET, Sluice, create_topic, produce

ARTIFACTS = Path(os.environ.get("SLUICE_ARTIFACTS", Path(__file__).parent / "artifacts"))
APP = os.environ.get("SLUICE_APP_BIN", str(TARGET / "debug" / "sluice-app"))
CACHE = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache" / "sluice"))
DRIVER = shutil.which("tauri-driver") or str(CACHE / "tools" / "bin" / "tauri-driver")
ELEMENT = "element-6066-11e4-a52f-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """Just enough of the W3C WebDriver protocol."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def req(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method, headers={"content-type": "application/json"})
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return json.loads(resp.read())["value"]

    def start(self, app):
        v = self.req("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}}, timeout=120)
        self.session = v["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def find(self, css, text=None, timeout=30):
        end = time.monotonic() + timeout
        seen = []
        while True:
            try:
                seen = []
                for el in self.req("POST", self.s("/elements"), {"using": "css selector", "value": css}):
                    eid = el.get(ELEMENT) or next(iter(el.values()))
                    seen.append(self.text(eid) if text is not None else "")
                    if text is None or text in seen[-1]:
                        return eid
            except (urllib.error.HTTPError, KeyError, StopIteration) as e:
                seen.append(repr(e))
            if time.monotonic() > end:
                raise AssertionError(f"no {css!r} with {text!r} in the window; saw {seen[-5:]}")
            time.sleep(0.25)

    def text(self, eid):
        return self.req("GET", self.s(f"/element/{eid}/text"))

    def js(self, script, *args):
        return self.req("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def wait_js(self, script, *args, timeout=30):
        end = time.monotonic() + timeout
        while not self.js(script, *args):
            if time.monotonic() > end:
                raise AssertionError(f"still false after {timeout} s: {script}")
            time.sleep(0.25)

    def click(self, eid):
        self.req("POST", self.s(f"/element/{eid}/click"), {})

    def clear(self, eid):
        self.req("POST", self.s(f"/element/{eid}/clear"), {})

    def type(self, eid, text):
        self.req("POST", self.s(f"/element/{eid}/value"), {"text": text})

    def screenshot(self, path):
        Path(path).write_bytes(base64.b64decode(self.req("GET", self.s("/screenshot"))))

    def quit(self):
        if self.session:
            self.req("DELETE", self.s(""))


def run_window_once(sluice, log_path, topic, attempt):
    """Starts the app through tauri-driver, searches, tails `topic`, and saves screenshots.
    Each attempt adds one live message to the topic's 25."""
    port, native = free_port(), free_port()
    env = dict(sluice.env, NO_AT_BRIDGE="1", WEBKIT_DISABLE_COMPOSITING_MODE="1", WEBKIT_DISABLE_DMABUF_RENDERER="1")
    with open(log_path, "w") as log:
        driver = subprocess.Popen(
            ["xvfb-run", "-a", "-s", "-screen 0 1440x900x24", "dbus-run-session", "--", DRIVER, "--port", str(port), "--native-port", str(native)],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
    wd = WebDriver(port)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(wd.base + "/status", timeout=2)
                break
            except Exception:
                time.sleep(0.2)
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
        wd.find(".tail-view .toolbar span", f"{24 + attempt} shown")
        produce(topic, [{"value": json.dumps({"status": f"LIVE-{attempt}"}).encode()}])
        wd.find(".tail-view .toolbar span", f"{25 + attempt} shown")
        wd.screenshot(ARTIFACTS / "desktop-tail.png")
        # WebKitWebDriver reads the virtual list's rows as empty text, so ask the page itself.
        wd.wait_js("return document.querySelector('.tail-table .vrows').textContent.includes(arguments[0])", f"LIVE-{attempt}")
        wd.click(wd.find(".tail-view .toolbar button.primary", "Stop"))
    finally:
        try:
            wd.quit()
        except OSError:
            pass
        finally:
            os.killpg(driver.pid, 15)
            driver.wait(20)


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
    for attempt in attempts:
        log_path = ARTIFACTS / f"desktop-driver-{attempt}.log"
        try:
            run_window_once(sluice, log_path, t, attempt)
            return
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError, socket.timeout) as e:
            tail = log_path.read_text(errors="replace")[-3000:]
            if attempt == attempts[-1]:
                raise AssertionError(f"the WebDriver connection failed {attempt} times ({e!r}); driver log:\n{tail}") from e
            print(f"attempt {attempt}: WebDriver connection lost ({e!r}); driver log:\n{tail}")
            time.sleep(2)
