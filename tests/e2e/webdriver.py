"""Just enough of a W3C WebDriver client to drive the real Tauri window through tauri-driver
and WebKitWebDriver (Debian's webkit2gtk-driver) under Xvfb: the desktop smoke test and the
desktop benchmark share it."""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CACHE = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache" / "sluice"))
DRIVER = shutil.which("tauri-driver") or str(CACHE / "tools" / "bin" / "tauri-driver")
ELEMENT = "element-6066-11e4-a52f-4f735466cecf"
# WebKitGTK under Xvfb: no accessibility bus, no GPU compositing, no DMA-BUF renderer.
WEBKIT_ENV = {"NO_AT_BRIDGE": "1", "WEBKIT_DISABLE_COMPOSITING_MODE": "1", "WEBKIT_DISABLE_DMABUF_RENDERER": "1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """A session with tauri-driver: commands, element lookups that wait, page scripts."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def req(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        # tauri-driver forwards each command to WebKitWebDriver over a pooled connection, and
        # now and then that connection turns out reset ("Connection reset by peer" in its
        # log), seemingly closed by WebKitWebDriver just before: tauri-driver then closes ours
        # without an answer. Sent again, the command goes through.
        for retry in (False, True):
            r = urllib.request.Request(self.base + path, data=data, method=method, headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(r, timeout=timeout) as resp:
                    return json.loads(resp.read())["value"]
            except (http.client.RemoteDisconnected, ConnectionResetError):
                if retry:
                    raise
                print(f"WebDriver: {method} {path} sent again after a dropped connection", file=sys.stderr)
                time.sleep(0.5)

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


def start_driver(env, log):
    """tauri-driver in a fresh X server and D-Bus session; returns (process, WebDriver) once it
    answers. Stop it with stop_driver."""
    port, native = free_port(), free_port()
    driver = subprocess.Popen(
        ["xvfb-run", "-a", "-s", "-screen 0 1440x900x24", "dbus-run-session", "--", DRIVER, "--port", str(port), "--native-port", str(native)],
        env=dict(env, **WEBKIT_ENV), stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    wd = WebDriver(port)
    for _ in range(100):
        try:
            urllib.request.urlopen(wd.base + "/status", timeout=2)
            break
        except Exception:
            time.sleep(0.2)
    return driver, wd


def stop_driver(driver, wd):
    try:
        wd.quit()
    except OSError:
        pass
    finally:
        os.killpg(driver.pid, 15)
        driver.wait(20)
