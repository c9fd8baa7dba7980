"""Redis over TLS (`rediss://`) end to end: the `sluice` binary against private TLS-only
redis-servers this file starts with a throwaway CA made by `openssl`, and redis-py (ssl=True,
the same CA) as the independent client. Connecting, capturing, searching and replaying go
through TLS; an unknown certificate, a certificate for another host and a missing client
certificate are refused with errors that name the connection; a password written in the URL is
kept out of the listing and the settings."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import tomllib
import uuid

import pytest
import redis

from conftest import Sluice

REDIS_SERVER = "/usr/bin/redis-server"
PASSWORD = "tls-S3cret-pw"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate it signed for 127.0.0.1/localhost, one it signed for another
    host only, and a client certificate (PKCS#8 key, as native-tls wants)."""
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=Sluice e2e test CA", cwd=d)

    def issue(name, ext):
        (d / f"{name}.ext").write_text(ext)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)

    issue("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    issue("elsewhere", "subjectAltName=DNS:redis.elsewhere.example\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    issue("client", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=clientAuth\n")
    assert (d / "client.key").read_text().startswith("-----BEGIN PRIVATE KEY-----"), "PKCS#8"
    return d


class TlsRedis:
    def __init__(self, port, process, ca, password=None):
        self.port, self.process, self.ca, self.password = port, process, ca, password
        self.url = f"rediss://127.0.0.1:{port}/0"

    def client(self, **kw):
        kw = dict(dict(ssl_ca_certs=str(self.ca), password=self.password), **kw)
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, ssl=True, socket_timeout=10, **kw)


@pytest.fixture
def tls_redis(tmp_path, pki):
    """Starts TLS-only redis-servers of this test's own (no plain port) and stops them."""
    exe = REDIS_SERVER if os.path.exists(REDIS_SERVER) else shutil.which("redis-server")
    assert exe, "redis-server is installed"
    help_text = subprocess.run([exe, "--tls-port"], capture_output=True, text=True, timeout=10)
    # A build without TLS calls the directive unknown; one with TLS only misses its argument.
    assert "wrong number of arguments" in help_text.stdout + help_text.stderr, \
        f"{exe} is built without TLS: {help_text.stdout}{help_text.stderr}"
    started = []

    def start(cert="server", auth_clients="no", password=None):
        port = free_port()
        d = tmp_path / f"redis-{port}"
        d.mkdir()
        args = [exe, "--port", "0", "--tls-port", str(port),
                "--tls-cert-file", str(pki / f"{cert}.pem"), "--tls-key-file", str(pki / f"{cert}.key"),
                "--tls-ca-cert-file", str(pki / "ca.pem"), "--tls-auth-clients", auth_clients,
                "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir", str(d)]
        if password:
            args += ["--requirepass", password]
        log = open(d / "server.log", "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        server = TlsRedis(port, p, pki / "ca.pem", password)
        started.append(server)
        # Ready when a TLS client gets its PING answered (with a client certificate when the
        # server asks for one, and accepting the other host's name for the `elsewhere` cert).
        kw = {"ssl_check_hostname": cert == "server"}
        if auth_clients != "no":
            kw.update(ssl_certfile=str(pki / "client.pem"), ssl_keyfile=str(pki / "client.key"))
        deadline = time.time() + 10
        while True:
            assert p.poll() is None, f"redis-server exited: {(d / 'server.log').read_text()}"
            try:
                server.client(socket_connect_timeout=1, **kw).ping()
                return server
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                assert time.time() < deadline, f"redis-server never answered over TLS: {(d / 'server.log').read_text()}"
                time.sleep(0.05)

    yield start
    for s in started:
        s.process.send_signal(signal.SIGCONT)
        s.process.terminate()
        try:
            s.process.wait(10)
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait(10)


@pytest.fixture
def sl(tmp_path):
    return Sluice(tmp_path)


def test_tls_connect_capture_search_and_replay(sl, tls_redis, pki):
    server = tls_redis()
    r = server.client()
    sl("connection", "add", "redis", "secure", "--url", server.url, "--tls-ca", pki / "ca.pem")
    out = sl("connection", "test", "secure")
    assert out.startswith("secure: reachable"), out
    [listed] = json.loads(sl("connection", "list", "--format", "json"))
    assert listed["name"] == "secure" and listed["tls"] is True, listed
    # The settings keep the CA as given and TLS on.
    cfg = tomllib.loads((sl.config / "config.toml").read_text())["connections"]["secure"]
    assert cfg["url"] == server.url and cfg["tls"] is True and cfg["tls_ca"] == str(pki / "ca.pem"), cfg

    s = unique("tls-orders")
    sent = [
        {b"payload": b'{"order": 1}', b"trace": b"t-1"},
        {b"type": b"paid", b"payload": b"\x00\xffbinary\r\n\x80", b"bin": b"caf\xc3\xa9"},
        {b"payload": bytes(range(256)) * 40},  # 10 KiB: more than one TLS record
    ]
    ids = [r.xadd(s, f).decode() for f in sent]
    summary = json.loads(sl("capture", "secure", s, "--from", "beginning", "--stop-at-end", "--json"))
    assert summary["captured"] == 3 and summary["stopped_by"] == "end", summary

    events = {e["properties"]["id"]: e for e in sl.jsonl("search", f'source = "{s}"', "--format", "jsonl")}
    assert sorted(events) == sorted(ids)
    for i, fields in zip(ids, sent):
        e = events[i]
        assert e["connection"] == "secure" and e["bus"] == "redis" and e["id"] == f"redis:secure/{s}//{i}"
        assert base64.b64decode(e["payload"]) == fields[b"payload"], "the payload byte for byte"
        assert e["headers"] == {k.decode(): v.decode() for k, v in fields.items() if k != b"payload"}
    assert sl("search", 'header.trace = "t-1"', "--count").strip() == "1"

    # Live reading over TLS: a capture from the end waits (XREAD BLOCK) and takes the next entry.
    live = unique("tls-live")
    r.xadd(live, {"payload": "old"})
    p = sl.popen("capture", "secure", live, "--from", "end", "--max-messages", "1", "--json")
    try:
        deadline = time.time() + 15
        while not any(c["name"] == "sluice" and c["cmd"] == "xread" for c in r.client_list()):
            assert time.time() < deadline and p.poll() is None, "the capture never read"
            time.sleep(0.05)
        new_id = r.xadd(live, {"payload": b"new\xfe"}).decode()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert json.loads(out)["captured"] == 1, out
    [got] = sl.jsonl("search", f'source = "{live}"', "--format", "jsonl")
    assert got["properties"]["id"] == new_id and base64.b64decode(got["payload"]) == b"new\xfe"

    # Replay to another stream on the same TLS connection, checked by redis-py.
    other = unique("tls-copy")
    out = sl("replay", f'source = "{s}"', "--to", f"secure:{other}")
    assert "3 sent, 0 failed" in out, out
    copied = r.xrange(other)
    assert len(copied) == 3
    for (_, old), (_, new) in zip(r.xrange(s), copied):
        fields = list(new.items())
        assert [k for k, _ in fields[-2:]] == [b"sluice-replay-id", b"sluice-source"]
        assert fields[:-2] == list(old.items()), "fields in order, byte for byte"
    r.delete(s, live, other)


def test_tls_without_the_ca_or_for_another_host_is_refused_clearly(sl, tls_redis, pki):
    server = tls_redis()
    # No CA: the server's certificate is signed by a CA the system does not trust.
    sl("connection", "add", "redis", "noca", "--url", server.url)
    assert json.loads(sl("connection", "list", "--format", "json"))[0]["tls"] is True
    t0 = time.time()
    p = sl.run("connection", "test", "noca", check=False, timeout=30)
    took = time.time() - t0
    assert p.returncode != 0, p.stdout
    err = p.stderr
    assert f"Redis at 127.0.0.1:{server.port} (noca): TLS handshake failed" in err, err
    assert "certificate verify failed" in err and "--tls-ca" in err, err
    assert "unreachable" not in err, "the server answered: its certificate is the problem"
    assert took < 15, f"took {took:.1f} s"
    # A capture fails the same way, at once.
    t0 = time.time()
    p = sl.run("capture", "noca", "anything", "--stop-at-end", check=False, timeout=30)
    assert p.returncode != 0 and "(noca): TLS handshake failed" in p.stderr, p.stderr
    assert "certificate verify failed" in p.stderr and time.time() - t0 < 15, p.stderr

    # The CA is right but the certificate names another host: refused too.
    other = tls_redis(cert="elsewhere")
    sl("connection", "add", "redis", "wronghost", "--url", other.url, "--tls-ca", pki / "ca.pem")
    t0 = time.time()
    p = sl.run("connection", "test", "wronghost", check=False, timeout=30)
    assert p.returncode != 0 and "(wronghost): TLS handshake failed" in p.stderr, p.stderr
    assert "IP address mismatch" in p.stderr, p.stderr
    assert time.time() - t0 < 15

    # The redis client's `#insecure` URL fragment skips verifying the certificate (for a test
    # server only): the same server is then reachable without its CA.
    sl("connection", "add", "redis", "insecure", "--url", f"{server.url}#insecure")
    assert sl("connection", "test", "insecure").startswith("insecure: reachable")
    r = server.client()
    s = unique("insecure")
    r.xadd(s, {"payload": b"\xff"})
    assert json.loads(sl("capture", "insecure", s, "--stop-at-end", "--json"))["captured"] == 1
    r.delete(s)

    # Plain redis:// to a TLS-only port: an error, in bounded time.
    sl("connection", "add", "redis", "plain", "--url", f"redis://127.0.0.1:{server.port}/0")
    t0 = time.time()
    p = sl.run("connection", "test", "plain", check=False, timeout=30)
    assert p.returncode != 0 and "plain" in p.stderr, p.stderr
    assert time.time() - t0 < 15


def test_client_certificate(sl, tls_redis, pki):
    server = tls_redis(auth_clients="yes")
    sl("connection", "add", "redis", "nocert", "--url", server.url, "--tls-ca", pki / "ca.pem")
    t0 = time.time()
    p = sl.run("connection", "test", "nocert", check=False, timeout=30)
    # TLS 1.3 sends the server's "certificate required" alert after the handshake: the client
    # reads either the alert or, when its first command crossed the close, a reset.
    assert p.returncode != 0 and "(nocert)" in p.stderr, p.stderr
    assert "certificate required" in p.stderr or "client certificate" in p.stderr, p.stderr
    assert "--tls-cert" in p.stderr, p.stderr
    assert time.time() - t0 < 15
    sl("connection", "add", "redis", "withcert", "--url", server.url, "--tls-ca", pki / "ca.pem",
       "--tls-cert", pki / "client.pem", "--tls-key", pki / "client.key")
    assert sl("connection", "test", "withcert").startswith("withcert: reachable")
    r = server.client(ssl_certfile=str(pki / "client.pem"), ssl_keyfile=str(pki / "client.key"))
    s = unique("mtls")
    i = r.xadd(s, {"payload": b"\x01\x02"}).decode()
    assert json.loads(sl("capture", "withcert", s, "--stop-at-end", "--json"))["captured"] == 1
    [e] = sl.jsonl("search", f'source = "{s}"', "--format", "jsonl")
    assert e["properties"]["id"] == i and base64.b64decode(e["payload"]) == b"\x01\x02"
    # A certificate without its key is refused when the connection is added.
    p = sl.run("connection", "add", "redis", "half", "--url", server.url, "--tls-cert", pki / "client.pem",
               check=False)
    assert p.returncode != 0 and "--tls-key" in p.stderr, p.stderr


def test_a_password_in_the_url_is_neither_shown_nor_kept_in_the_settings(sl, tls_redis, pki):
    server = tls_redis(password=PASSWORD)
    p = sl.run("connection", "add", "redis", "locked", "--url", f"rediss://:{PASSWORD}@127.0.0.1:{server.port}/0",
               "--tls-ca", pki / "ca.pem")
    assert PASSWORD not in p.stdout + p.stderr
    for fmt in ("table", "json"):
        listing = sl("connection", "list", "--format", fmt)
        assert "locked" in listing and PASSWORD not in listing, listing
    # The password works, and no output shows it, even when logging.
    r = sl.run("connection", "test", "locked", env={"SLUICE_LOG": "trace"})
    assert r.stdout.startswith("locked: reachable") and PASSWORD not in r.stdout + r.stderr
    # The stored URL has no password, and no setting holds it. With SLUICE_KEYRING=off (as in
    # every e2e test) the secret's only place is the 0600 file's `password` entry.
    text = (sl.config / "config.toml").read_text()
    cfg = tomllib.loads(text)["connections"]["locked"]
    assert cfg["url"] == server.url, cfg
    assert all(PASSWORD not in json.dumps(v) for k, v in cfg.items() if k != "password"), cfg
    assert text.count(PASSWORD) <= 1
    for f in sl.config.rglob("*"):
        if f.is_file() and f.name != "config.toml":
            assert PASSWORD.encode() not in f.read_bytes(), f
    # A wrong password: authentication failed, not a certificate problem, and not shown.
    wrong = "wr0ng-tls-pw"
    sl("connection", "add", "redis", "badpw", "--url", f"rediss://:{wrong}@127.0.0.1:{server.port}/0",
       "--tls-ca", pki / "ca.pem")
    p = sl.run("connection", "test", "badpw", check=False)
    assert p.returncode != 0 and "authentication failed" in p.stderr and "badpw" in p.stderr, p.stderr
    assert wrong not in p.stdout + p.stderr and PASSWORD not in p.stdout + p.stderr
    # Capture and replay go through with the password.
    r = server.client()
    s = unique("locked")
    r.xadd(s, {"payload": "x"})
    assert json.loads(sl("capture", "locked", s, "--stop-at-end", "--json"))["captured"] == 1
    assert "1 sent, 0 failed" in sl("replay", f'source = "{s}"', "--to", f"locked:{s}-copy")
    assert r.xlen(f"{s}-copy") == 1


def test_a_server_that_never_answers_the_handshake_times_out(sl, tmp_path):
    """A TCP listener that accepts and says nothing: the TLS handshake must not wait forever."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        sl("connection", "add", "redis", "silent", "--url", f"rediss://127.0.0.1:{port}/0")
        t0 = time.time()
        p = sl.run("connection", "test", "silent", check=False, timeout=60)
        took = time.time() - t0
        assert p.returncode != 0 and "(silent) is unreachable: no answer in time" in p.stderr, p.stderr
        assert took < 15, f"took {took:.1f} s"
    finally:
        stop.set()
        t.join(5)
        for c in held:
            c.close()
        lsock.close()


def test_a_tls_server_that_stops_answering_ends_the_capture(sl, tls_redis, pki):
    """The server stops (SIGSTOP) under a capture: the read times out, and the reconnects tried
    within the --broker-timeout (whose TLS handshakes get no answer) must not hold the capture
    past it."""
    server = tls_redis()
    r = server.client()
    s = unique("tls-going")
    r.xadd(s, {"payload": "one"})
    sl("connection", "add", "redis", "going", "--url", server.url, "--tls-ca", pki / "ca.pem")
    p = sl.popen("capture", "going", s, "--broker-timeout", "8s", "--json")
    try:
        deadline = time.time() + 20
        while sl("search", f'source = "{s}"', "--count").strip() != "1":
            assert time.time() < deadline and p.poll() is None, "the capture read the entry"
            time.sleep(0.2)
        server.process.send_signal(signal.SIGSTOP)
        t0 = time.time()
        out, err = p.communicate(timeout=60)
    finally:
        server.process.send_signal(signal.SIGCONT)
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0 and "no answer" in err and "going" in err, err
    assert time.time() - t0 < 20, f"took {time.time() - t0:.1f} s"
