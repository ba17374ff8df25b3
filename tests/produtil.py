"""Helpers shared by the production-operations tests (test_master.py,
test_limits.py, test_sockets.py, test_logging.py, test_proxy.py,
test_nginx.py).  Built on conftest.py's Server / RawConn."""

import contextlib
import http.client
import json
import select
import socket
import threading
import time

from conftest import raw_request, wait_for

PROD_APP = "prod_app:app"


# ---------------------------------------------------------------- processes

def children(pid):
    """The pids of pid's child processes (the master's workers)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_children(server, n, timeout=10.0):
    """Wait until the master has exactly n children; returns them."""
    ok = wait_for(lambda: len(children(server.pid)) == n, timeout=timeout)
    kids = children(server.pid)
    assert ok, "expected %d worker(s), master %d has %r\nstderr:\n%s" % (
        n, server.pid, kids, server.stderr_text())
    return kids


# ---------------------------------------------------------------- HTTP

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_get(host, port, path, headers=None, timeout=10.0, unix=None):
    """One request on a fresh connection; (status, headers, body)."""
    if unix:
        c = UnixHTTPConnection(unix, timeout=timeout)
    else:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def get_info(server, path="/info", headers=None, timeout=10.0):
    status, _, body = server.get(path, headers=headers, timeout=timeout)
    assert status == 200, (status, body)
    return json.loads(body)


def raw_info(conn, path="/info", headers=(), host="127.0.0.1"):
    """Send a GET on a RawConn and return the JSON body of the answer."""
    conn.send(raw_request("GET", path, headers=headers, host=host))
    r = conn.read_response()
    assert r.status == 200, (r, r.body[:300])
    return r.json()


def worker_pids_by_hang(server, count, hang=0.6, stagger=0.15, timeout=20.0):
    """Send `count` staggered /hang requests, each on its own connection,
    then /info on that same keep-alive connection (so it is answered by the
    same worker).  /hang busy-loops its worker without yielding, so a worker
    that is hanging cannot accept the next connection and another worker
    must take it.  Returns the set of worker pids that answered."""
    pids = set()
    errors = []
    lock = threading.Lock()

    def one():
        try:
            c = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
            try:
                c.request("GET", "/hang?t=%g" % hang)
                r = c.getresponse()
                r.read()
                assert r.status == 200, r.status
                c.request("GET", "/info")
                r = c.getresponse()
                info = json.loads(r.read())
                with lock:
                    pids.add(info["pid"])
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))

    threads = []
    for _ in range(count):
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        time.sleep(stagger)
    for t in threads:
        t.join(timeout + 5)
    assert not errors, errors
    return pids


def wait_worker_pids(server, n, timeout=15.0, hang=0.6):
    """Wait until n distinct worker pids answer (probing with /hang);
    returns the last set seen."""
    deadline = time.monotonic() + timeout
    seen = set()
    while True:
        seen = worker_pids_by_hang(server, n + 1, hang=hang)
        if len(seen) >= n or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


# ---------------------------------------------------------------- load

class Load:
    """Steady load: `keepalive` threads reusing one connection each and
    `fresh` threads opening a new connection per request.  Counts
    successes, failures and connection resets.

    A keep-alive client behaves like a careful real client: before reusing
    an idle connection it checks whether the server already closed it
    (readable with EOF) and then reconnects (counted as `server_closed`,
    not a failure); a response with Connection: close also makes it
    reconnect.  Anything else -- an error status, an exception, a reset, a
    request written to a connection that then closes without a response --
    is a failure."""

    def __init__(self, connect, path="/info", keepalive=2, fresh=2,
                 timeout=15.0, headers=None):
        self.connect = connect          # () -> http.client.HTTPConnection
        self.path = path
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.resets = 0
        self.server_closed = 0
        self.statuses = {}
        self.bodies = []                # parsed JSON of 200 answers (capped)
        self.threads = ([threading.Thread(target=self._keepalive, daemon=True)
                         for _ in range(keepalive)] +
                        [threading.Thread(target=self._fresh, daemon=True)
                         for _ in range(fresh)])

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.timeout + 10)

    def _note(self, status, body):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.ok += 1
                if len(self.bodies) < 100000:
                    try:
                        self.bodies.append(json.loads(body))
                    except ValueError:
                        self.failures.append("non-JSON 200 body %r" % body[:100])
            else:
                self.failures.append("status %d: %r" % (status, body[:200]))

    def _fail(self, what, exc):
        with self.lock:
            if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
                self.resets += 1
            self.failures.append("%s: %r" % (what, exc))

    def _fresh(self):
        while not self.stop_ev.is_set():
            c = self.connect()
            try:
                h = dict(self.headers)
                h["Connection"] = "close"
                c.request("GET", self.path, headers=h)
                r = c.getresponse()
                body = r.read()
                self._note(r.status, body)
            except Exception as e:  # noqa: BLE001
                self._fail("fresh", e)
                time.sleep(0.01)
            finally:
                c.close()

    @staticmethod
    def _closed_by_peer(c):
        if c.sock is None:
            return True
        try:
            r, _, _ = select.select([c.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def _keepalive(self):
        c = None
        while not self.stop_ev.is_set():
            if c is not None and self._closed_by_peer(c):
                with self.lock:
                    if c.sock is not None:
                        self.server_closed += 1
                c.close()
                c = None
            if c is None:
                c = self.connect()
            try:
                c.request("GET", self.path, headers=self.headers)
                r = c.getresponse()
                body = r.read()
                self._note(r.status, body)
                if r.will_close:
                    c.close()
                    c = None
            except Exception as e:  # noqa: BLE001
                self._fail("keep-alive", e)
                with contextlib.suppress(Exception):
                    c.close()
                c = None
                time.sleep(0.01)
        if c is not None:
            c.close()

    def summary(self):
        return ("ok=%d failures=%d resets=%d server_closed_idle=%d statuses=%r "
                "first failures=%r" % (self.ok, len(self.failures), self.resets,
                                       self.server_closed, self.statuses,
                                       self.failures[:5]))


def tcp_connector(host, port, timeout=15.0):
    return lambda: http.client.HTTPConnection(host, port, timeout=timeout)


# ---------------------------------------------------------------- files

def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def wait_file_lines(path, pred, timeout=5.0):
    """Wait until pred(lines of the file) is true; returns the lines."""
    def check():
        lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
        return lines if pred(lines) else None
    r = wait_for(check, timeout=timeout, interval=0.05)
    return r if r is not None else [ln for ln in read_text(path).splitlines() if ln.strip()]


@contextlib.contextmanager
def tcp_echo_server(delay=0.0):
    """A threaded TCP echo server on 127.0.0.1, the peer an app under test
    talks to; each connection waits `delay` seconds before echoing.  Yields
    its port."""
    import socketserver

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            time.sleep(delay)
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
