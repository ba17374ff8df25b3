"""Timeouts and limits: --header-timeout, --keepalive, --io-timeout (a
stalled request body, a client that stops reading), --max-connections,
configured header/URI/body limits, and 1,000 slowloris connections that
must not stop a normal client from being served."""

import contextlib
import os
import resource
import socket
import threading
import time

import pytest

from conftest import RawConn, raw_request, wait_for
from produtil import PROD_APP, children, get_info, read_text, wait_children


def _raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_all_until_close(conn, timeout):
    """Read whatever arrives until EOF; returns (data, closed)."""
    conn.settimeout(timeout)
    data = conn.buf
    conn.buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = conn.sock.recv(65536)
        except ConnectionResetError:
            return data, True
        except socket.timeout:
            return data, False
        if not d:
            return data, True
        data += d
    return data, False


def status_of(data):
    if not data.startswith(b"HTTP/"):
        return None
    return int(data.split(b" ", 2)[1])


# ---------------------------------------------------------------- header timeout

def test_header_timeout_partial_head_gets_408(server_factory):
    s = server_factory(PROD_APP, "--header-timeout", "1")
    s.warm_up("/info")
    with s.connect() as c:
        c.send(b"GET /info HTTP/1.1\r\nHost: x\r\nX-Partial: y")
        t0 = time.monotonic()
        data, closed = read_all_until_close(c, 8)
        elapsed = time.monotonic() - t0
    assert status_of(data) == 408, data[:200]
    assert closed, "connection not closed after the 408"
    assert elapsed < 7, elapsed
    assert read_text(s.state_path("prod_seen.log")).split().count("/info") == 1, \
        "the app saw the partial request"
    s.assert_healthy()


def test_header_timeout_is_not_extended_by_dripping(server_factory):
    """A head that keeps trickling in (one header line every 0.3 s) is still
    cut off after --header-timeout: the limit is for the whole head."""
    s = server_factory(PROD_APP, "--header-timeout", "1")
    s.warm_up("/info")
    with s.connect() as c:
        c.send(b"GET /info HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        cut = False
        i = 0
        while time.monotonic() - t0 < 8:
            if not c.try_send(b"X-Drip-%d: y\r\n" % i):
                cut = True
                break
            i += 1
            if not c.is_closed(timeout=0.3):
                if c.buf:        # something arrived: the 408
                    cut = True
                    break
            else:
                cut = True
                break
        elapsed = time.monotonic() - t0
    assert cut, "a head dripping for 8 s was never cut off (--header-timeout 1)"
    assert elapsed < 6, elapsed
    s.assert_healthy()


def test_header_timeout_silent_connection_closed(server_factory):
    s = server_factory(PROD_APP, "--header-timeout", "1")
    s.warm_up("/info")
    with s.connect() as c:
        data, closed = read_all_until_close(c, 8)
    assert closed, "a connection that sent nothing was not closed"
    assert status_of(data) in (None, 408), data[:200]
    s.assert_healthy()


def test_slow_but_complete_head_is_served(server_factory):
    s = server_factory(PROD_APP, "--header-timeout", "3")
    with s.connect() as c:
        c.send_lines(raw_request("GET", "/info", headers=[("X-A", "1"), ("X-B", "2")]),
                     delay=0.1)
        r = c.read_response()
    assert r.status == 200


# ---------------------------------------------------------------- keep-alive

def test_keepalive_timeout_closes_idle_connection(server_factory):
    s = server_factory(PROD_APP, "--keepalive", "1")
    with s.connect() as c:
        c.send(raw_request("GET", "/info"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.is_closed(timeout=8), "idle keep-alive connection kept open"
        assert time.monotonic() - t0 < 7
    s.assert_healthy()


def test_keepalive_connection_reused_within_timeout(server_factory):
    s = server_factory(PROD_APP, "--keepalive", "5")
    with s.connect() as c:
        c.send(raw_request("GET", "/info"))
        r1 = c.read_response()
        time.sleep(0.5)
        c.send(raw_request("GET", "/info"))
        r2 = c.read_response()
    assert r1.status == r2.status == 200
    assert r1.json()["remote_port"] == r2.json()["remote_port"]


# ---------------------------------------------------------------- io timeout

def test_io_timeout_stalled_request_body(server_factory):
    s = server_factory(PROD_APP, "--io-timeout", "1")
    s.warm_up("/info")
    with s.connect() as c:
        c.send(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        c.send(b"a" * 1000)
        data, closed = read_all_until_close(c, 10)
    assert closed, "a client that stopped sending its body was never cut off"
    assert status_of(data) in (None, 400, 408), data[:200]
    assert read_text(s.state_path("read-done")) == "", "the app got a complete body"
    s.assert_healthy()


def test_io_timeout_client_stops_reading(server_factory):
    size = 256 * 1024 * 1024
    s = server_factory(PROD_APP, "--io-timeout", "1")
    s.warm_up("/info")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.settimeout(10)
    sock.connect((s.host, s.port))
    c = RawConn(sock)
    try:
        c.send(raw_request("GET", "/big?size=%d" % size))
        head = c.read_head()
        assert head.status == 200
        time.sleep(4)        # we read nothing: the server's writes stall
        got = len(c.buf)
        c.buf = b""
        closed = False
        c.settimeout(3)
        while got < 64 * 1024 * 1024:
            try:
                d = c.sock.recv(262144)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not d:
                closed = True
                break
            got += len(d)
    finally:
        c.close()
    assert closed, ("a client that stopped reading kept its connection "
                    "(read %d of %d bytes afterwards)" % (got, size))
    assert got < size
    assert wait_for(lambda: read_text(s.state_path("big-closed")), timeout=5), \
        "the response iterable was not closed"
    s.assert_healthy()


# ---------------------------------------------------------------- max connections

def test_max_connections_queues_then_serves(server_factory):
    s = server_factory(PROD_APP, "--max-connections", "5", "--keepalive", "60",
                       "--header-timeout", "60")
    s.warm_up("/info")
    time.sleep(0.2)
    held = []
    try:
        for _ in range(5):
            c = s.connect()
            c.send(raw_request("GET", "/info"))
            assert c.read_response().status == 200
            held.append(c)
        sixth = s.connect(timeout=15)      # waits in the backlog: not refused
        held.append(sixth)
        sixth.send(raw_request("GET", "/info"))
        sixth.settimeout(1.5)
        with pytest.raises(socket.timeout):
            sixth.read_response()
        assert s.alive()
        held.pop(0).close()
        sixth.settimeout(15)
        r = sixth.read_response()
        assert r.status == 200, r
    finally:
        for c in held:
            c.close()
    # and it keeps serving, fresh connections included
    time.sleep(0.2)
    for _ in range(20):
        assert get_info(s, timeout=10)["path"] == "/info"
    s.assert_healthy()


def test_max_connections_many_clients_all_served(server_factory):
    """30 concurrent clients against --max-connections 5: all are served
    eventually (none refused or reset)."""
    s = server_factory(PROD_APP, "--max-connections", "5")
    s.warm_up("/info")
    results = []
    lock = threading.Lock()

    def one():
        try:
            st, _, _ = s.get("/sleep?t=0.2", timeout=30)
        except Exception as e:  # noqa: BLE001
            st = repr(e)
        with lock:
            results.append(st)
    threads = [threading.Thread(target=one, daemon=True) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert results.count(200) == 30, results


# ---------------------------------------------------------------- configured limits

@pytest.fixture(scope="module")
def limited(module_server_factory):
    return module_server_factory(PROD_APP, "--max-header-size", "2048",
                                 "--max-headers", "10", "--max-uri", "256",
                                 "--max-body", "1000")


@pytest.mark.parametrize("name,req,status", [
    ("head-size", raw_request("GET", "/info", headers=[("X-Big", "a" * 3000)]), 431),
    ("headers", raw_request("GET", "/info",
                            headers=[("X-H%d" % i, "v") for i in range(20)]), 431),
    ("uri", raw_request("GET", "/info?" + "q" * 400), 414),
    ("body", raw_request("POST", "/echo", body=b"z" * 1500), 413),
])
def test_configured_limits(limited, name, req, status):
    with limited.connect() as c:
        c.try_send(req)
        r = c.read_response()
    assert r.status == status, (name, r)
    assert limited.alive()


@pytest.mark.parametrize("req", [
    raw_request("GET", "/info", headers=[("X-Big", "a" * 1500)]),
    raw_request("GET", "/info", headers=[("X-H%d" % i, "v") for i in range(8)]),
    raw_request("GET", "/info?" + "q" * 200),
    raw_request("POST", "/echo", body=b"z" * 1000),
], ids=["head-size", "headers", "uri", "body"])
def test_configured_limits_just_under(limited, req):
    with limited.connect() as c:
        c.send(req)
        r = c.read_response()
    assert r.status == 200, r


# ---------------------------------------------------------------- slowloris

def test_slowloris_thousand_half_open_connections(server_factory):
    _raise_nofile(4096)
    s = server_factory(PROD_APP)
    s.warm_up("/info")
    idle = []
    try:
        for i in range(1000):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect((s.host, s.port))
            if i % 2 == 0:
                sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\nX-Slow")
            idle.append(sock)
        t0 = time.monotonic()
        statuses = []
        for _ in range(20):
            try:
                st, _, body = s.get("/info", timeout=10)
                statuses.append(st)
            except Exception as e:  # noqa: BLE001
                statuses.append(repr(e))
        elapsed = time.monotonic() - t0
        assert statuses == [200] * 20, statuses
        assert elapsed < 15, "20 requests took %.1fs next to 1000 idle connections" % elapsed
        # the half-open connections are still there (not all dropped)
        alive = 0
        for sock in idle[:50]:
            sock.setblocking(False)
            try:
                d = sock.recv(1)
                if d:
                    alive += 1
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        assert alive > 0, "srv dropped every idle connection"
    finally:
        for sock in idle:
            with contextlib.suppress(OSError):
                sock.close()
    s.assert_healthy()


# ---------------------------------------------------------------- EMFILE

def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_survives_running_out_of_fds(server_factory):
    """With a low RLIMIT_NOFILE, more connections than the worker can hold:
    it neither dies nor spins on the listening socket, and serves again
    once they are gone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        s = server_factory(PROD_APP)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    worker = wait_children(s, 1)[0]
    s.warm_up("/info")
    held = []
    try:
        for _ in range(120):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect((s.host, s.port))
            held.append(sock)
        time.sleep(0.5)
        cpu0 = _cpu_seconds(worker)
        time.sleep(1.5)
        spent = _cpu_seconds(worker) - cpu0
        assert spent < 0.75, "worker burnt %.2fs of CPU in 1.5s while out of fds" % spent
        assert s.alive()
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    time.sleep(0.3)
    for _ in range(10):
        assert get_info(s, timeout=15)["path"] == "/info"
    assert worker in children(s.pid), "the worker died (EMFILE)"
