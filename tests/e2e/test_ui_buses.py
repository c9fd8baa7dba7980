"""The newer buses in the real browser (headless Chromium against `sluice serve`): a Redis
connection added through the form, its stream in the sidebar tree, captured from the Captures
view and searched; an HTTP endpoint added with its secret headers, shown as a destination only
and replayed to from the replay dialog without a target; MQTT's note that it cannot list
topics; a NATS subject opened by name from the sidebar and tailed live."""

import asyncio
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_ui import api, page, shot  # noqa: F401  (the page fixture)

playwright = pytest.importorskip("playwright.sync_api")
redis = pytest.importorskip("redis")

REDIS = f"redis://127.0.0.1:{os.environ.get('SLUICE_REDIS_PORT', '16379')}/0"
MQTT = f"mqtt://127.0.0.1:{os.environ.get('SLUICE_MQTT_PORT', '11883')}"
NATS = f"nats://127.0.0.1:{os.environ.get('SLUICE_NATS_PORT', '14222')}"


class Recorder:
    """A local HTTP endpoint that answers 204 and keeps every request."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n)))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            do_OPTIONS = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def add_connection(page, bus, name, fields):
    page.get_by_role("button", name="+ Add").click()
    page.locator("dialog select[name=bus]").select_option(bus)
    page.locator("dialog input[name=name]").fill(name)
    for field, value in fields.items():
        page.locator(f"dialog [name={field}]").fill(value)
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".conn-name", has_text=name).wait_for()


def test_redis_http_mqtt_and_nats_in_the_browser(served, page):  # noqa: F811
    sluice, url = served
    r = redis.Redis.from_url(REDIS)
    stream = f"ui-stream-{uuid.uuid4().hex[:8]}"
    ids = [r.xadd(stream, {"payload": json.dumps({"n": i, "status": "FAILED" if i % 2 else "PAID"}), "kind": "order"}).decode()
           for i in range(5)]
    hook = Recorder()
    try:
        page.goto(url)
        page.get_by_text("No connections yet").wait_for()

        # A Redis connection from the form; its stream in the sidebar with its length.
        add_connection(page, "redis", "cache", {"url": REDIS})
        page.locator(".conn-name", has_text="cache").click()
        source = page.locator(f".source[data-source='{stream}']")
        source.wait_for(timeout=15000)
        assert "5" in source.inner_text(), source.inner_text()
        shot(page, "sidebar-redis")

        # Captured from the Captures view, to the stream's end, then searched by a field.
        page.get_by_role("tab", name="Captures").click()
        page.locator(".captures-view select[name=connection]").select_option("cache")
        page.locator(".captures-view input[name=sources]").fill(stream)
        page.locator(".captures-view input[name=from]").fill("beginning")
        page.locator(".captures-view input[name=stop_at_end]").check()
        page.get_by_role("button", name="Start capture").click()
        page.locator(".captures tr", has_text="done (end)").wait_for(timeout=30000)
        page.get_by_role("tab", name="Search").click()
        page.keyboard.press("/")
        page.keyboard.type(f'source = "{stream}" and status = "FAILED" and header.kind = "order"')
        page.keyboard.press("Enter")
        page.locator(".search-status", has_text="2 matching").wait_for(timeout=15000)
        # The position as Redis writes it, the entry id (the rows arrive after the count).
        page.locator(".search-table .vrows .row[data-id]").nth(1).wait_for()
        table = page.locator(".search-table .vrows").inner_text()
        assert ids[1] in table and ids[3] in table, table
        shot(page, "search-redis")

        # An HTTP endpoint with its headers as the secret: a destination, nothing to read.
        add_connection(page, "http", "hook", {"url": hook.url, "password": "Authorization: Bearer ui-secret\nX-Team: sluice"})
        saved = api(url, "connection_get", {"name": "hook"})
        assert "ui-secret" not in json.dumps(saved), saved
        page.locator(".conn-name", has_text="hook").click()
        page.get_by_text("A replay destination").wait_for()

        # The replay dialog sends the search's matches there with no target named.
        page.get_by_role("button", name="Replay all 2 matching").click()
        page.locator("dialog select[name=connection]").select_option("hook")
        assert "optional" in page.locator("dialog input[name=target]").get_attribute("placeholder")
        page.get_by_role("button", name="Preview (dry run)").click()
        page.get_by_text("Dry run: 2 events would be sent").wait_for()
        page.get_by_role("button", name="Send 2").click()
        page.locator("dialog p", has_text="Done: 2 of 2 sent").wait_for(timeout=30000)
        shot(page, "replay-http")
        page.keyboard.press("Escape")
        posts = [(h, b) for h, b in hook.requests if b]
        assert len(posts) == 2
        assert {json.loads(b)["n"] for _, b in posts} == {1, 3}
        assert all(h.get("authorization") == "Bearer ui-secret" and h.get("x-team") == "sluice" for h, _ in posts)

        # MQTT says in the tree that what it lists is not the whole story.
        add_connection(page, "mqtt", "plant", {"url": MQTT})
        page.locator(".conn-name", has_text="plant").click()
        page.locator(".sources .note", has_text="MQTT has no topic listing").wait_for(timeout=15000)
        shot(page, "sidebar-mqtt")

        # A core NATS subject, which no listing shows, opened by name and tailed live.
        subject = f"ui.{uuid.uuid4().hex[:8]}.orders"
        add_connection(page, "nats", "bus", {"url": NATS})
        page.locator(".conn-name", has_text="bus").click()
        # By its label: other connections' trees (Redis lists every stream of the shared
        # server) may hold the text "bus" too.
        opener = page.locator("input[aria-label='Open a stream or subject of bus by name']")
        opener.fill(subject.rsplit(".", 1)[0] + ".>")
        opener.press("Enter")
        page.locator(".tail-view h2", has_text=f"bus:{subject.rsplit('.', 1)[0]}.>").wait_for()
        page.locator(".tail-view").get_by_role("button", name="Start").click()
        page.locator(".tail-view").get_by_role("button", name="Stop").wait_for()
        time.sleep(1.0)

        async def publish():
            import nats

            nc = await nats.connect(NATS)
            for i in range(3):
                await nc.publish(subject, json.dumps({"tick": i}).encode(), headers={"trace": f"t{i}"})
            await nc.flush()
            await nc.close()

        # Playwright's sync API holds this thread's event loop: publish from another thread.
        t = threading.Thread(target=lambda: asyncio.run(publish()))
        t.start()
        t.join(15)
        page.get_by_text("3 shown").wait_for(timeout=15000)
        assert "tick" in page.locator(".tail-table .vrows").inner_text()
        shot(page, "tail-nats")
        page.locator(".tail-view").get_by_role("button", name="Stop").click()
    finally:
        hook.close()
        r.delete(stream)


def test_a_collector_listens_from_the_captures_view(served, page):  # noqa: F811
    """A capture whose source is a listening endpoint, started from the window: it shows where
    clients send and the token, and what a client posts is searchable."""
    import requests

    sluice, url = served
    page.goto(url)
    page.get_by_text("No connections yet").wait_for()
    add_connection(page, "collector", "intake", {"http": "127.0.0.1:0"})
    page.locator(".conn-name", has_text="intake").click()
    page.locator(".sources .note", has_text="A collector lists nothing").wait_for(timeout=15000)

    page.get_by_role("tab", name="Captures").click()
    page.locator(".captures-view select[name=connection]").select_option("intake")
    assert page.locator(".captures-view input[name=from]").is_hidden()
    assert "empty: every one" in page.locator(".captures-view input[name=sources]").get_attribute("placeholder")
    page.get_by_role("button", name="Start capture").click()
    where = page.locator(".captures .listening")
    where.wait_for(timeout=15000)
    shot(page, "collector-listening")
    lines = where.inner_text().splitlines()
    endpoint = next(l.split()[1] for l in lines if l.startswith("POST "))
    token = next(l.split()[-1] for l in lines if l.startswith("Authorization: Bearer "))
    r = requests.post(endpoint.replace("{source}", "webhooks"), data=b'{"status":"FAILED","n":7}', timeout=30,
                      headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"accepted": 1}, r.text

    page.get_by_role("tab", name="Search").click()
    page.keyboard.press("/")
    page.keyboard.type('connection = intake and status = "FAILED"')
    page.keyboard.press("Enter")
    page.locator(".search-status", has_text="1 matching").wait_for(timeout=15000)

    page.get_by_role("tab", name="Captures").click()
    page.locator(".captures tr", has_text="running").get_by_role("button", name="Stop").click()
    page.locator(".captures tr", has_text="done (interrupted)").wait_for(timeout=30000)
    # Stopped, it takes nothing more.
    with pytest.raises(requests.RequestException):
        requests.post(endpoint.replace("{source}", "webhooks"), data=b"x", timeout=5,
                      headers={"Authorization": f"Bearer {token}"})


def test_postgres_changes_from_the_captures_view(served, page):  # noqa: F811
    """A PostgreSQL connection from the form, its tables in the sidebar, and a capture with
    the `snapshot` read mode (a new slot, rows first) started from the window."""
    import subprocess

    port = os.environ.get("SLUICE_POSTGRES_PORT", "15432")
    db = f"ui_{uuid.uuid4().hex[:8]}"

    def psql(d, sql):
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-d", d, "-c", sql], check=True, capture_output=True, timeout=60)

    psql("postgres", f"CREATE DATABASE {db}")
    try:
        psql(db, "CREATE TABLE orders (id int PRIMARY KEY, status text); INSERT INTO orders VALUES (1, 'NEW'), (2, 'FAILED')")
        sluice, url = served
        page.goto(url)
        page.get_by_text("No connections yet").wait_for()
        add_connection(page, "postgres", "shopdb", {"url": f"postgres://postgres@127.0.0.1:{port}/{db}"})
        page.locator(".conn-name", has_text="shopdb").click()
        page.locator(".source[data-source='public.orders']").wait_for(timeout=15000)

        page.get_by_role("tab", name="Captures").click()
        page.locator(".captures-view select[name=connection]").select_option("shopdb")
        page.locator(".captures-view select[name=mode]").select_option("snapshot")
        page.locator(".captures-view input[name=sources]").fill("public.orders")
        page.get_by_role("button", name="Start capture").click()
        page.locator(".captures tr", has_text="running").wait_for(timeout=15000)
        # Rows first, then a change made while it runs.
        deadline = time.time() + 30
        while time.time() < deadline:
            slots = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-X", "-t", "-A", "-d", db, "-c",
                                    "SELECT count(*) FROM pg_replication_slots WHERE active"], capture_output=True, text=True).stdout.strip()
            if slots == "1":
                break
            time.sleep(0.2)
        psql(db, "UPDATE orders SET status = 'FAILED' WHERE id = 1")
        # Both in the lake (the capture flushes every 0.5 s) before the window searches once.
        flt = 'connection = shopdb and new.status = "FAILED"'
        deadline = time.time() + 30
        while time.time() < deadline and len(sluice.jsonl("search", flt, "--format", "jsonl")) < 2:
            time.sleep(0.3)
        page.get_by_role("tab", name="Search").click()
        page.keyboard.press("/")
        page.keyboard.type('connection = shopdb and new.status = "FAILED"')
        page.keyboard.press("Enter")
        # The snapshot's row 2 and the update of row 1.
        page.locator(".search-status", has_text="2 matching").wait_for(timeout=30000)
        shot(page, "search-postgres")
        page.get_by_role("tab", name="Captures").click()
        page.locator(".captures tr", has_text="running").get_by_role("button", name="Stop").click()
        page.locator(".captures tr", has_text="done (interrupted)").wait_for(timeout=30000)
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-X", "-q", "-d", "postgres", "-c",
                        f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{db}' AND NOT active"],
                       capture_output=True, timeout=60)
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-X", "-q", "-d", "postgres", "-c",
                        f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True, timeout=60)
