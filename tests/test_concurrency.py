"""Many requests at once: cooperative srv.sleep, clients vanishing in the
middle of a body or response, pipelined bursts, idle/slow connections."""

import hashlib
import http.client
import os
import selectors
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import pattern_bytes, raw_request, wait_for


@pytest.fixture(scope="module")
def routes(module_server_factory):
    return module_server_factory("routes:app")


def run_threads(n, fn, timeout=30):
    results = [None] * n
    errors = []

    def wrap(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            errors.append("%d: %r" % (i, e))
    ts = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + timeout
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in ts), "client threads still running after %ss" % timeout
    return results, errors


def test_sleep_is_cooperative_threads(routes):
    """50 concurrent requests that each sleep 0.5 s finish far faster than
    the 25 s a serial server would need."""
    def one(i):
        c = http.client.HTTPConnection("127.0.0.1", routes.port, timeout=20)
        c.request("GET", "/sleep?t=0.5")
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    t0 = time.monotonic()
    results, errors = run_threads(50, one)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert all(st == 200 for st, _ in results), results
    for _, body in results:
        slept = float(body.split()[1])
        assert slept >= 0.45, body
    assert elapsed < 5.0, "50 x sleep(0.5) took %.2fs" % elapsed


def test_sleep_is_cooperative_nonblocking_sockets(routes):
    """The same with one thread and 50 non-blocking sockets."""
    n = 50
    sel = selectors.DefaultSelector()
    socks = []
    bufs = {}
    t0 = time.monotonic()
    for i in range(n):
        s = socket.socket()
        s.connect(("127.0.0.1", routes.port))
        s.sendall(b"GET /sleep?t=0.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
        bufs[s] = b""
    open_ = set(socks)
    deadline = time.monotonic() + 20
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                d = b""
            if d:
                bufs[s] += d
            else:
                sel.unregister(s)
                open_.discard(s)
                s.close()
    elapsed = time.monotonic() - t0
    for s in open_:
        s.close()
    assert not open_, "%d responses did not complete" % len(open_)
    for s in socks:
        assert bufs[s].startswith(b"HTTP/1.1 200"), bufs[s][:100]
        assert b"slept" in bufs[s]
    assert elapsed < 5.0, elapsed


def test_sleep_does_not_block_other_requests(routes):
    c = routes.connect(timeout=10)
    c.send(raw_request("GET", "/sleep?t=2"))
    time.sleep(0.1)
    t0 = time.monotonic()
    for _ in range(10):
        assert routes.get("/hello")[0] == 200
    assert time.monotonic() - t0 < 1.5
    r = c.read_response()
    assert r.status == 200
    c.close()


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_sleep_never_returns_early(server_factory, mode):
    """srv.sleep(t) after the app kept the CPU for a while without yielding:
    the timer counts from when sleep was called, not from the start of the
    loop's pass (libev's ev_now), so it waits the whole t."""
    srv = server_factory("routes:app", "--mode", mode)
    for _ in range(3):
        status, _, body = srv.get("/sleep?t=0.2&spin=0.3")
        assert status == 200
        assert float(body.split()[1]) >= 0.2, body


def test_zero_sleep(routes):
    for t in ("0", "0.0"):
        status, _, body = routes.get("/sleep?t=" + t)
        assert status == 200 and body.startswith(b"slept")


def _linger_rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("rst", [False, True])
def test_client_disconnects_mid_body(routes, rst):
    for chunked in (False, True):
        c = routes.connect()
        if chunked:
            c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n1000\r\n" + b"z" * 100)
        else:
            c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 100000\r\n\r\n" + b"z" * 1000)
        time.sleep(0.1)
        if rst:
            _linger_rst(c.sock)
        c.close()
    time.sleep(0.2)
    routes.assert_healthy()
    # a full upload still works
    data = pattern_bytes(200000)
    c = routes.connect()
    c.send(raw_request("POST", "/input?op=read_all", body=data))
    r = c.read_response()
    c.close()
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("rst", [False, True])
def test_client_disconnects_mid_response(routes, rst):
    for i in range(5):
        c = routes.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        c.send(raw_request("GET", "/big?size=20000000&chunk=65536&id=dmr%d%d" % (rst, i)))
        c.read_head()
        c.sock.recv(4096)
        if rst:
            _linger_rst(c.sock)
        c.close()
    for i in range(5):
        assert wait_for(lambda: os.path.exists(
            routes.state_path("closed-dmr%d%d" % (rst, i))), 10)
    routes.assert_healthy()
    status, _, body = routes.get("/big?size=1000000&id=after-dmr")
    assert status == 200 and body == pattern_bytes(1000000)


def test_client_disconnects_during_sleep(routes):
    for _ in range(5):
        c = routes.connect()
        c.send(raw_request("GET", "/sleep?t=0.3"))
        c.close()
    time.sleep(0.5)
    routes.assert_healthy()


def test_client_disconnects_mid_headers(routes):
    for i in range(5):
        c = routes.connect()
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Partial: ")
        if i % 2:
            _linger_rst(c.sock)
        c.close()
    routes.assert_healthy()


def test_half_closed_client_gets_response(routes):
    """Client sends a full request then shuts down its write side."""
    c = routes.connect()
    c.send(raw_request("GET", "/hello"))
    c.shutdown_write()
    r = c.read_response()
    assert r.status == 200 and r.body == b"Hello, World!\n"
    c.close()


def test_idle_connections_do_not_block(routes):
    idle = [routes.connect() for _ in range(20)]
    partial = [routes.connect() for _ in range(10)]
    for c in partial:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # header never finished
    t0 = time.monotonic()
    for _ in range(10):
        assert routes.get("/hello")[0] == 200
    assert time.monotonic() - t0 < 2.0
    for c in idle + partial:
        c.close()


def test_pipelined_bursts_parallel(routes):
    def burst(i):
        with routes.connect(timeout=20) as c:
            reqs = []
            for k in range(50):
                if k % 5 == 0:
                    reqs.append(raw_request("POST", "/input?op=read_all",
                                            body=b"%d-%d" % (i, k)))
                elif k % 7 == 0:
                    reqs.append(raw_request("GET", "/gen?n=3&id=pb%d_%d" % (i, k)))
                else:
                    reqs.append(raw_request("GET", "/hello"))
            c.send(b"".join(reqs))
            rs = c.read_responses(50)
            for k, r in enumerate(rs):
                assert r.status == 200
                if k % 5 == 0:
                    assert r.json()["data"] == "%d-%d" % (i, k)
                elif k % 7 == 0:
                    assert r.body == b"chunk-1\nchunk-2\nchunk-3\n"
                else:
                    assert r.body == b"Hello, World!\n"
            return len(rs)
    results, errors = run_threads(8, burst)
    assert not errors, errors
    assert results == [50] * 8


def test_many_connections_at_once(routes):
    """200 simultaneous connections each get their answer."""
    conns = [routes.connect(timeout=20) for _ in range(200)]
    for c in conns:
        c.send(raw_request("GET", "/hello"))
    for c in conns:
        r = c.read_response()
        assert r.status == 200 and r.body == b"Hello, World!\n"
    for c in conns:
        c.close()


def test_mixed_load_consistency(routes):
    """Concurrent uploads, downloads, sleeps: every answer matches its request."""
    def work(i):
        kind = i % 3
        if kind == 0:
            data = pattern_bytes(300000 + i, seed=i)
            c = routes.connect(timeout=30)
            c.send(raw_request("POST", "/input?op=read_n&n=4096", body=data))
            r = c.read_response()
            c.close()
            assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
        elif kind == 1:
            c = routes.connect(timeout=30)
            c.send(raw_request("GET", "/big?size=%d&chunk=30000&id=ml%d" % (500000 + i, i)))
            r = c.read_response()
            c.close()
            assert r.body == pattern_bytes(500000 + i)
        else:
            status, _, body = routes.get("/sleep?t=0.2")
            assert status == 200
        return True
    results, errors = run_threads(24, work, timeout=60)
    assert not errors, errors
    assert all(results)


def test_stalled_readers_do_not_block_others(routes):
    """Clients that request big responses and never read them: the server
    must keep serving everyone else (non-blocking, cooperative writes)."""
    stalled = []
    for target in ["/big?size=33554432&id=stall1", "/write_big?size=33554432",
                   "/biglist?size=16777216"]:
        c = routes.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(raw_request("GET", target))
        stalled.append(c)
    time.sleep(0.5)
    t0 = time.monotonic()
    for _ in range(10):
        status, _, body = routes.get("/hello", timeout=5)
        assert status == 200
    assert time.monotonic() - t0 < 2.0
    for c in stalled:
        _linger_rst(c.sock)
        c.close()
    assert wait_for(lambda: os.path.exists(routes.state_path("closed-stall1")), 10)
    routes.assert_healthy()


# ------------------------------------------------ heads parsed in one pass
#
# The worker is stopped (SIGSTOP) while the clients send, so that when it
# runs again one pass of its loop reads every request: hub.c queues the
# parsed heads and hands them out together (a worker that has served one
# takes the next without switching back to the loop).

def _send_in_one_pass(srv, conns, reqs):
    pid = srv.worker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.05)
        for c, r in zip(conns, reqs):
            c.send(r)
        time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGCONT)
    return time.monotonic()


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_heads_of_one_pass_go_past_a_waiting_one(server_factory, mode):
    """Requests whose app waits sit among others read in the same pass:
    the others are answered at once, not after the waiters (the queue keeps
    being handed out when a worker waits)."""
    srv = server_factory("routes:app", "--mode", mode)
    srv.warm_up("/hello")
    conns = [srv.connect(timeout=20) for _ in range(24)]
    time.sleep(0.2)   # all accepted and idle in the worker
    waiters = {0, 1, 9, 17}
    reqs = [raw_request("GET", "/sleep?t=2" if i in waiters else "/hello")
            for i in range(len(conns))]
    t0 = _send_in_one_pass(srv, conns, reqs)
    for i, c in enumerate(conns):
        if i not in waiters:
            r = c.read_response()
            assert r.status == 200 and r.body == b"Hello, World!\n", (i, r.status)
    quick = time.monotonic() - t0
    for i in waiters:
        r = conns[i].read_response()
        assert r.status == 200 and r.body.startswith(b"slept 2.")
    for c in conns:
        c.close()
    assert quick < 1.5, "the quick requests waited for the sleeping ones: %.2f s" % quick


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_heads_of_one_pass_each_get_their_own_answer(server_factory, mode):
    """Passes of 40, 100 and 100 requests (libev takes at most 64 events
    a pass until its array has grown, so the last pass is the one that goes
    past the queue's first 64 slots, after its head has moved): each
    connection gets the answer to its own body, and keeps serving."""
    srv = server_factory("routes:app", "--mode", mode)
    srv.warm_up("/hello")
    for n in (40, 100, 100):
        conns = [srv.connect(timeout=20) for _ in range(n)]
        time.sleep(0.2)
        bodies = [b"pass %d conn %d " % (n, i) * (1 + i % 7) for i in range(n)]
        _send_in_one_pass(srv, conns, [raw_request("POST", "/input?op=read_all", body=b)
                                       for b in bodies])
        for c, b in zip(conns, bodies):
            r = c.read_response()
            assert r.status == 200 and r.json()["data"] == b.decode()
        for c in conns:
            c.send(raw_request("GET", "/hello"))
            assert c.read_response().body == b"Hello, World!\n"
            c.close()
