"""Shared helpers and fixtures for the srv integration tests.

Every test file in this directory is run on its own by ctest
(``/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/<file>``), so
everything a test needs lives here or in ``tests/apps``.

The server binary comes from ``$SRV_BIN`` (fallback ``<repo>/build/srv``).
Servers are started with ``cwd=tests/apps`` so the app modules import, and
with ``SRV_TEST_STATE`` pointing at a private temporary directory that the
apps use to record things the tests check afterwards (e.g. that an
iterable's ``close()`` ran).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
APPS_DIR = TESTS_DIR / "apps"
PYTHON = "/usr/bin/python3"

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def srv_bin():
    # Absolute: servers start with tests/apps as their working directory.
    return os.path.abspath(os.environ.get("SRV_BIN") or str(REPO / "build" / "srv"))


def pytest_report_header(config):
    return "srv binary: %s" % srv_bin()


@pytest.fixture(scope="session", autouse=True)
def _require_binary():
    path = srv_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("srv binary not found or not executable: %s "
                    "(set SRV_BIN or build into build/srv)" % path,
                    pytrace=False)


# ---------------------------------------------------------------------------
# ports / addresses
# ---------------------------------------------------------------------------

_ports_given = set()


def free_port(host="127.0.0.1", family=socket.AF_INET):
    """A TCP port that was free a moment ago, and that this process has not
    been given before: the kernel may hand the same ephemeral port to two
    probes in a row, and a test that asks twice (--bind and --metrics-bind)
    needs two."""
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no fresh free port in 100 tries")


def have_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def have_tool(name):
    return shutil.which(name) is not None


needs_curl = pytest.mark.skipif(not have_tool("curl"), reason="curl not installed")
needs_ipv6 = pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")


def _can_connect(target, timeout=0.5):
    """target: (host, port) tuple, ('[v6]', port) or a unix socket path."""
    try:
        if isinstance(target, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = target
        else:
            host, port = target
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            addr = (host, port)
        s.settimeout(timeout)
        try:
            s.connect(addr)
        finally:
            s.close()
        return True
    except OSError:
        return False


def parse_bind(spec):
    """Turn a --bind value into something _can_connect() accepts."""
    if spec.startswith("unix:"):
        return spec[5:]
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]:")
        return (host, int(port))
    host, _, port = spec.rpartition(":")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    return (host, int(port))


# ---------------------------------------------------------------------------
# server process management
# ---------------------------------------------------------------------------

class ServerError(Exception):
    pass


class Server:
    """A running srv process."""

    def __init__(self, app, args=(), binds=None, cwd=None, env=None,
                 ready_timeout=READY_TIMEOUT, wait_ready=True, new_session=False):
        self.app = app
        self.state_dir = tempfile.mkdtemp(prefix="srv-test-state-")
        if binds is None:
            self.port = free_port()
            binds = ["127.0.0.1:%d" % self.port]
        else:
            self.port = None
            for b in binds:
                t = parse_bind(b)
                if not isinstance(t, str):
                    self.port = t[1]
                    break
        self.binds = list(binds)
        self.host = "127.0.0.1"
        self.cmd = [srv_bin()]
        if app is not None:
            self.cmd += ["--app", app]
        for b in self.binds:
            self.cmd += ["--bind", b]
        self.cmd += list(args)
        self._stderr = tempfile.NamedTemporaryFile(prefix="srv-stderr-", suffix=".log",
                                                   delete=False)
        self._stdout = tempfile.NamedTemporaryFile(prefix="srv-stdout-", suffix=".log",
                                                   delete=False)
        e = dict(os.environ)
        e["SRV_TEST_STATE"] = self.state_dir
        e["PYTHONDONTWRITEBYTECODE"] = "1"
        e.pop("PYTHONPATH", None)
        e.pop("PYTHONHOME", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            self.cmd, cwd=str(cwd or APPS_DIR), env=e,
            stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
            start_new_session=new_session)   # its own process group: killpg()
        self.pid = self.proc.pid
        if wait_ready:
            self.wait_ready(ready_timeout)

    # -- convenience ---------------------------------------------------------
    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stderr_text(self):
        self._stderr.flush()
        with open(self._stderr.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout_text(self):
        with open(self._stdout.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def state_path(self, name):
        return os.path.join(self.state_dir, name)

    def wait_ready(self, timeout=READY_TIMEOUT):
        targets = [parse_bind(b) for b in self.binds]
        deadline = time.monotonic() + timeout
        pending = list(targets)
        while pending:
            if self.proc.poll() is not None:
                raise ServerError("srv exited with status %s before accepting "
                                  "connections\ncmd: %s\nstderr:\n%s"
                                  % (self.proc.returncode, " ".join(self.cmd),
                                     self.stderr_text()))
            pending = [t for t in pending if not _can_connect(t)]
            if not pending:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError("srv did not accept connections on %r within %.0fs\n"
                                  "cmd: %s\nstderr:\n%s"
                                  % (pending, timeout, " ".join(self.cmd),
                                     self.stderr_text()))
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop the server; returns its exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        for f in (self._stderr, self._stdout):
            with contextlib.suppress(OSError):
                f.close()
                os.unlink(f.name)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- /proc helpers --------------------------------------------------------
    def worker_pid(self, timeout=10.0):
        """The pid of the (first) worker process: srv's master forks the
        workers, and they are the ones that serve and hold memory and fds."""
        path = "/proc/%d/task/%d/children" % (self.pid, self.pid)
        deadline = time.monotonic() + timeout
        while True:
            with open(path) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
            if time.monotonic() > deadline:
                raise ServerError("srv master %d has no worker" % self.pid)
            time.sleep(0.02)

    def rss_kib(self):
        with open("/proc/%d/status" % self.worker_pid()) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.worker_pid()))

    def warm_up(self, path="/"):
        """One complete request, so the app is certainly loaded (srv may
        accept connections before it has finished importing the app)."""
        with self.connect() as c:
            c.send(raw_request("GET", path))
            c.read_response()

    def fd_baseline(self, path="/"):
        """fd count once the server is up and idle (after one request)."""
        self.warm_up(path)
        prev = self.fd_count()
        stable_since = time.monotonic()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.fd_count()
            if n != prev:
                prev, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since >= 0.3:
                break
        return prev

    # -- HTTP shortcuts -------------------------------------------------------
    def connect(self, timeout=10.0):
        return RawConn.tcp(self.host, self.port, timeout=timeout)

    def get(self, path, headers=None, timeout=10.0):
        """One GET over a fresh connection using http.client; returns
        (status, headers dict lower-cased, body bytes)."""
        import http.client
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def get_json(self, path, **kw):
        status, _, body = self.get(path, **kw)
        assert status == 200, (status, body)
        return json.loads(body)

    def assert_healthy(self):
        """The server is still alive and still answers a plain request."""
        assert self.alive(), "srv died:\n" + self.stderr_text()
        status, _, body = self.get("/__health__")
        assert status == 200, (status, body)


class ServerFactory:
    def __init__(self):
        self.servers = []

    def __call__(self, app, *args, **kw):
        s = Server(app, args=args, **kw)
        self.servers.append(s)
        return s

    def cleanup(self):
        for s in self.servers:
            s.cleanup()
        self.servers.clear()


@pytest.fixture
def server_factory():
    """Function scoped: ``server_factory('routes:app', '--max-body', '10')``."""
    f = ServerFactory()
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture(scope="module")
def module_server_factory():
    f = ServerFactory()
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture(scope="module")
def routes_server(module_server_factory):
    return module_server_factory("routes:app")


@pytest.fixture(scope="module")
def echo_server(module_server_factory):
    return module_server_factory("echo:app")


def run_srv(args, cwd=None, timeout=15, env=None):
    """Run srv to completion (for CLI error cases); returns CompletedProcess
    with text stdout/stderr.  If it is still running after ``timeout`` it is
    killed and the test fails."""
    e = dict(os.environ)
    e.pop("PYTHONPATH", None)
    if env:
        e.update(env)
    p = subprocess.Popen([srv_bin()] + list(args), cwd=str(cwd or APPS_DIR), env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        pytest.fail("srv %r did not exit within %ss; stderr:\n%s"
                    % (args, timeout, err.decode("utf-8", "replace")))
    return subprocess.CompletedProcess(p.args, p.returncode,
                                       out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def wait_for(pred, timeout=3.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------------------
# raw socket HTTP client
# ---------------------------------------------------------------------------

class Closed(Exception):
    """The peer closed the connection before a complete message arrived."""


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []          # list of (name, value) as received
        self.body = b""
        self.chunked = False
        self.complete = False      # body fully framed (CL satisfied / 0-chunk seen / EOF for close-delimited)
        self.close_delimited = False
        self.trailers = []
        self.raw_head = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes%s>" % (
            self.version, self.status, self.reason, len(self.body),
            "" if self.complete else " INCOMPLETE")


class RawConn:
    """A socket with a receive buffer and HTTP/1.x response parsing."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    @classmethod
    def tcp(cls, host, port, timeout=10.0, family=None):
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout)

    @classmethod
    def unix(cls, path, timeout=10.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s, timeout)

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    # -- sending --------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def send_lines(self, data, delay=0.01):
        """Send line by line (split after each LF), pausing between lines."""
        start = 0
        while start < len(data):
            i = data.find(b"\n", start)
            end = len(data) if i < 0 else i + 1
            self.sock.sendall(data[start:end])
            start = end
            time.sleep(delay)

    def send_bytewise(self, data, delay=0.001):
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def send_pieces(self, pieces, delay=0.05):
        for p in pieces:
            self.sock.sendall(p)
            time.sleep(delay)

    def try_send(self, data):
        """sendall that tolerates the server closing/resetting early.
        Returns True if everything was sent."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False
        except socket.timeout:
            return False

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    # -- receiving ------------------------------------------------------------
    def _fill(self):
        if self.eof:
            return False
        try:
            d = self.sock.recv(262144)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if not self._fill():
                raise Closed("connection closed while reading a line; have %r" % self.buf[:200])

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise Closed("connection closed: wanted %d bytes, have %d" % (n, len(self.buf)))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_until_close(self):
        while self._fill():
            pass
        d, self.buf = self.buf, b""
        return d

    def is_closed(self, timeout=2.0):
        """True if the peer closes the connection (EOF/RST) within timeout
        and sends nothing more.  Extra bytes (beyond the buffer) make it
        return False."""
        if self.buf:
            return False
        if self.eof:
            return True
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        except socket.timeout:
            return False
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(old)
        if d:
            self.buf += d
            return False
        self.eof = True
        return True

    def read_head(self):
        resp = Response()
        line = self.read_line()
        raw = [line]
        parts = line.rstrip(b"\r\n").split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise AssertionError("bad status line %r" % line)
        resp.version = parts[0].decode("latin-1")
        resp.status = int(parts[1])
        resp.reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        while True:
            line = self.read_line()
            raw.append(line)
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise AssertionError("bad header line %r" % line)
            resp.headers.append((name.decode("latin-1"),
                                 value.strip(b" \t\r\n").decode("latin-1")))
        resp.raw_head = b"".join(raw)
        return resp

    def read_response(self, method="GET", skip_interim=True, allow_incomplete=False):
        """Read one response.  1xx interim responses are skipped unless
        skip_interim is False (then the 1xx is returned).  With
        allow_incomplete the partial body is returned with
        ``complete=False`` when the connection closes early; otherwise
        Closed is raised."""
        while True:
            resp = self.read_head()
            if 100 <= resp.status < 200 and skip_interim:
                continue
            break
        if (method == "HEAD" or 100 <= resp.status < 200 or resp.status in (204, 304)):
            resp.complete = True
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        try:
            if te is not None and "chunked" in te.lower():
                resp.chunked = True
                self._read_chunked(resp)
            elif cl is not None:
                try:
                    resp.body = self.read_exact(int(cl))
                    resp.complete = True
                except Closed:
                    resp.body, self.buf = self.buf, b""
                    raise
            else:
                resp.close_delimited = True
                resp.body = self.read_until_close()
                resp.complete = True
        except Closed:
            if not allow_incomplete:
                raise
        return resp

    def _read_chunked(self, resp):
        parts = []
        try:
            while True:
                line = self.read_line()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self.read_line()
                        if t in (b"\r\n", b"\n"):
                            break
                        n, _, v = t.partition(b":")
                        resp.trailers.append((n.decode("latin-1"), v.strip().decode("latin-1")))
                    resp.complete = True
                    return
                parts.append(self.read_exact(size))
                crlf = self.read_exact(2)
                if crlf != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF: %r" % crlf)
        finally:
            resp.body = b"".join(parts)

    def read_responses(self, n, methods=None):
        out = []
        for i in range(n):
            m = methods[i] if methods else "GET"
            out.append(self.read_response(method=m))
        return out


def raw_request(method, target, headers=(), body=b"", version="HTTP/1.1",
                host="127.0.0.1"):
    """Build raw request bytes.  headers: list of (name, value).  A Host
    header is added unless one is given (or host is None)."""
    lines = ["%s %s %s" % (method, target, version)]
    names = [h[0].lower() for h in headers]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def chunked_body(pieces, trailers=b""):
    out = b""
    for p in pieces:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def sha256(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def pattern_bytes(n, seed=0):
    """Deterministic, non-repeating-ish test data (same as apps/routes.py)."""
    import hashlib
    out = bytearray()
    block = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, block)).digest() * 64
        block += 1
    return bytes(out[:n])


# curl helper

def curl(*args, timeout=20):
    p = subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 5)
    return p


def decode_chunked(raw):
    """Decode a complete chunked body given as bytes; returns (body,
    terminated) where terminated says the 0-size last chunk was seen."""
    parts = []
    i = 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return b"".join(parts), False
        size = int(raw[i:j].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(parts), True
        start = j + 2
        if len(raw) < start + size + 2:
            parts.append(raw[start:start + size])
            return b"".join(parts), False
        parts.append(raw[start:start + size])
        i = start + size + 2
