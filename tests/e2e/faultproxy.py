"""A TCP proxy of the project's own for fault-injection tests: it sits between Sluice and a test
broker and breaks the connection in the ways real networks and brokers do, switched at run time.

Modes (`proxy.set(MODE)`):
  pass    forward both ways.
  drop    close every connection (FIN) and refuse new ones (the port stays bound but stops
          listening, so a connect gets ECONNREFUSED, as when a broker process dies).
  stall   keep every connection open and forward nothing (new connections are accepted and
          stall too): a hung broker or a black-holed network. Nothing is lost: bytes wait in the
          kernel's buffers and flow again when the mode goes back to `pass`.
  reset   abort every connection with an RST (SO_LINGER 0, then close), and reset new ones.
  slow    forward with a bandwidth cap and a per-chunk latency (`set("slow", rate=.., latency=..)`).

Only the standard library, threads and blocking sockets with short select() timeouts: a test
calls `set()` from its own thread and every pump sees the new mode within ~50 ms.
"""

import select
import socket
import struct
import threading
import time

MODES = ("pass", "drop", "stall", "reset", "slow")
_TICK = 0.05  # how often a waiting pump looks at the mode again
_CHUNK = 16384


def _abort(sock):
    """Closes with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Link:
    """One proxied connection: the client's socket, the upstream socket and their two pumps."""

    def __init__(self, proxy, client):
        self.proxy, self.client, self.upstream = proxy, client, None
        self.closed = threading.Event()

    def start(self):
        threading.Thread(target=self._run, daemon=True, name="faultproxy-link").start()

    def _run(self):
        try:
            self.upstream = socket.create_connection(self.proxy.target, timeout=5)
        except OSError:
            # The target is down: the client sees its connection end, as it would in front of it.
            self.close()
            return
        self.upstream.settimeout(None)
        t = threading.Thread(target=self._pump, args=(self.upstream, self.client, "down"), daemon=True)
        t.start()
        self._pump(self.client, self.upstream, "up")
        t.join()

    def _pump(self, src, dst, direction):
        p = self.proxy
        while not self.closed.is_set():
            if not p._wait_forwarding(self):
                return
            try:
                r, _, _ = select.select([src], [], [], _TICK)
            except (OSError, ValueError):
                break
            if not r:
                continue
            try:
                data = src.recv(p._chunk())
            except OSError:
                break
            if not data:
                break
            # A chunk read just before a fault was set is held, not sent, under stall; and under
            # drop/reset the link is already closed, so the send fails and ends the pump.
            if not p._wait_forwarding(self):
                return
            p._throttle(len(data))
            try:
                dst.sendall(data)
            except OSError:
                break
            with p._lock:
                if direction == "up":
                    p.bytes_up += len(data)
                else:
                    p.bytes_down += len(data)
        self.close()

    def close(self, rst=False):
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            if s is not None:
                (_abort if rst else _close)(s)
        self.proxy._forget(self)


class FaultProxy:
    """Listens on 127.0.0.1:EPHEMERAL (`.port`, `.addr`) and forwards to `target` (host, port)."""

    def __init__(self, target, port=0):
        self.target = target
        self.mode = "pass"
        self.rate = None  # bytes per second, in slow mode
        self.latency = 0.0  # seconds per chunk, in slow mode
        self.bytes_up = self.bytes_down = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._links = set()
        self._stopping = False
        self._listener = self._bind(port)
        self.port = self._listener.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self._listener.listen(128)
        self._listening = True
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="faultproxy-accept")
        self._acceptor.start()

    @staticmethod
    def _bind(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return s

    # -- control, from the test's thread --

    def set(self, mode, rate=None, latency=0.0):
        """Switches mode; returns once existing connections have been dropped/reset as asked."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        with self._lock:
            self.mode, self.rate, self.latency = mode, rate, latency
            links = list(self._links)
            self._changed.notify_all()
        if mode == "drop":
            self._stop_listening()
            for link in links:
                link.close()
        elif mode == "reset":
            self._ensure_listening()
            for link in links:
                link.close(rst=True)
        else:
            self._ensure_listening()

    def heal_after(self, seconds, mode="pass"):
        """Switches to `mode` after `seconds`, from a timer thread."""
        t = threading.Timer(seconds, self.set, args=(mode,))
        t.daemon = True
        t.start()
        return t

    def wait_bytes(self, up=0, down=0, timeout=20):
        """Waits until at least `up` bytes went to the target and `down` came back; True if so."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if self.bytes_up >= up and self.bytes_down >= down:
                    return True
            time.sleep(_TICK)
        return False

    @property
    def connections(self):
        with self._lock:
            return len(self._links)

    def close(self):
        with self._lock:
            self._stopping = True
            links = list(self._links)
            self._changed.notify_all()
        for link in links:
            link.close()
        self._stop_listening(rebind=False)
        try:
            self._listener.close()
        except OSError:
            pass
        self._acceptor.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- internals --

    def _stop_listening(self, rebind=True):
        """Stops listening but keeps the port bound (not listening): connects are refused and no
        other process can take the port before `pass` listens on it again."""
        with self._lock:
            if not self._listening:
                return
            self._listening = False
            old = self._listener
        # shutdown() takes the socket out of LISTEN at once; close() alone would leave it
        # listening while the accept loop's select() still holds it (up to one tick).
        try:
            old.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        old.close()
        if not rebind:
            return
        for _ in range(40):
            try:
                new = self._bind(self.port)
                break
            except OSError:
                time.sleep(_TICK / 2)
        else:
            raise OSError(f"faultproxy: could not bind 127.0.0.1:{self.port} again")
        with self._lock:
            self._listener = new

    def _ensure_listening(self):
        with self._lock:
            if not self._listening and not self._stopping:
                self._listener.listen(128)
                self._listening = True

    def _accept_loop(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
                listening, listener = self._listening, self._listener
            if not listening:
                time.sleep(_TICK)
                continue
            try:
                r, _, _ = select.select([listener], [], [], _TICK)
                if not r:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                continue  # the listener was swapped or closed under us
            with self._lock:
                self.accepted += 1
                mode = self.mode
                if mode in ("drop", "reset") or self._stopping:
                    link = None
                else:
                    link = _Link(self, client)
                    self._links.add(link)
            if link is None:
                _abort(client)
            else:
                link.start()

    def _forget(self, link):
        with self._lock:
            self._links.discard(link)

    def _wait_forwarding(self, link):
        """Blocks while the proxy stalls; False once the link should end."""
        with self._lock:
            while self.mode == "stall" and not link.closed.is_set() and not self._stopping:
                self._changed.wait(_TICK)
            return not link.closed.is_set() and not self._stopping

    def _chunk(self):
        if self.mode == "slow" and self.rate:
            # Small reads so the cap is smooth rather than one big burst per second.
            return max(1, min(_CHUNK, int(self.rate / 20)))
        return _CHUNK

    def _throttle(self, n):
        if self.mode != "slow":
            return
        delay = self.latency + (n / self.rate if self.rate else 0.0)
        if delay > 0:
            time.sleep(delay)


try:
    import pytest

    @pytest.fixture
    def fault_proxy():
        """A factory: `fault_proxy((host, port))` returns a FaultProxy; every one made in the test
        is closed when it ends, pass or fail."""
        made = []

        def make(target):
            p = FaultProxy(target)
            made.append(p)
            return p

        yield make
        for p in made:
            p.close()

except ImportError:  # usable without pytest, e.g. from a REPL
    pass
