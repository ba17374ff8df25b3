"""Long polling and Server-Sent Events (tests/apps/longpoll_app.py).

Handlers that wait for many seconds on a gevent Event, a gevent Queue or
srv.sleep, a thousand at a time, over real sockets driven from one thread
with selectors: everyone else must still be served meanwhile, every waiter
must be woken exactly once with the right answer, clients that vanish while
their handler waits must cost nothing once the waits end, and SSE streams
must reach the client event by event, in correct chunked framing, and end
their generator when the client goes away.

The only timing assertions are generous sanity bounds (the test machines
have two shared cores); the latency of the quick requests is printed
(pytest -s shows it).
"""
import collections
import contextlib
import importlib.util
import os
import resource
import selectors
import socket
import struct
import time

import pytest

from conftest import raw_request, wait_for

SLOW = 3.0 if os.environ.get("SRV_SANITIZED") else 1.0
# ASan keeps freed memory in quarantine: RSS says nothing about reuse there.
RSS_MEANINGFUL = not os.environ.get("SRV_SANITIZED")
HAVE_GEVENT = importlib.util.find_spec("gevent") is not None
needs_gevent = pytest.mark.skipif(not HAVE_GEVENT, reason="gevent not installed")


def _raise_nofile(want=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


NOFILE = _raise_nofile()


def _need_fds(n):
    # Each connection costs the test one fd and the server one; srv is
    # started by this process and inherits the raised limit.
    if NOFILE != resource.RLIM_INFINITY and NOFILE < n + 200:
        pytest.skip("RLIMIT_NOFILE %d is too low for %d connections" % (NOFILE, n))


# ---------------------------------------------------------------------------
# many raw connections from one thread
# ---------------------------------------------------------------------------

def _parse(buf):
    """(status, headers, body) once buf holds one complete response with a
    Content-Length; None while it is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    assert "content-length" in headers, lines
    n = int(headers["content-length"])
    if len(buf) < end + 4 + n:
        return None
    assert len(buf) == end + 4 + n, "bytes after the response: %r" % buf[end + 4 + n:][:100]
    return status, headers, buf[end + 4:end + 4 + n]


class Herd:
    """n connections, each sending one GET at once; responses are collected
    later with one selector.  Keep-alive (no Connection: close), so the
    response must be framed by its Content-Length."""

    def __init__(self, port, targets):
        self.socks = []
        self.bufs = []
        for t in targets:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(raw_request("GET", t))
            s.setblocking(False)
            self.socks.append(s)
            self.bufs.append(b"")

    def __len__(self):
        return len(self.socks)

    def nothing_arrived(self):
        """True when no connection has received a byte (nor EOF) yet."""
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            if s.fileno() >= 0:
                sel.register(s, selectors.EVENT_READ, i)
        try:
            return not sel.select(timeout=0)
        finally:
            sel.close()

    def collect(self, timeout=30.0):
        """Reads until every connection has a complete response; returns a
        list of (status, body) in connection order, or raises."""
        results = [None] * len(self.socks)
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        pending = len(self.socks)
        deadline = time.monotonic() + timeout
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [i for i, r in enumerate(results) if r is None]
                    raise AssertionError(
                        "%d of %d responses missing after %.0fs (e.g. #%d has %r)"
                        % (len(missing), len(results), timeout, missing[0],
                           self.bufs[missing[0]][:200]))
                for key, _ in sel.select(timeout=min(left, 1.0)):
                    i = key.data
                    try:
                        d = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        d = b""
                    if not d:
                        raise AssertionError("connection #%d closed early; had %r"
                                             % (i, self.bufs[i][:200]))
                    self.bufs[i] += d
                    r = _parse(self.bufs[i])
                    if r is not None:
                        results[i] = (r[0], r[2])
                        sel.unregister(key.fileobj)
                        pending -= 1
        finally:
            sel.close()
        return results

    def close(self, rst_every=0):
        for i, s in enumerate(self.socks):
            if rst_every and i % rst_every == 0:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()


def stats(server):
    return server.get_json("/stats")


def wait_stat(server, key, value, timeout=20.0):
    got = wait_for(lambda: stats(server)[key] == value, timeout=timeout * SLOW, interval=0.05)
    assert got, "stats[%r] never reached %r: %r" % (key, value, stats(server))


def quick_requests(server, n=200, label=""):
    """n /hello requests while the waiters wait: half on one keep-alive
    connection, half on fresh connections.  Each answer is checked; returns
    the latencies (s) and prints max/p50."""
    lat = []
    c = server.connect(timeout=10)
    try:
        for i in range(n):
            t0 = time.monotonic()
            if i % 2:
                c.send(raw_request("GET", "/hello"))
                r = c.read_response()
                status, body = r.status, r.body
            else:
                status, _, body = server.get("/hello")
            lat.append(time.monotonic() - t0)
            assert (status, body) == (200, b"Hello, World!\n"), (i, status, body)
    finally:
        c.close()
    lat.sort()
    print("\n[%s] %d /hello while others wait: p50 %.2f ms, max %.2f ms"
          % (label, n, lat[len(lat) // 2] * 1e3, lat[-1] * 1e3))
    assert lat[-1] < 1.0 * SLOW, "a quick request took %.2f s" % lat[-1]
    return lat


def read_chunk(conn):
    """One chunk of a chunked body: its data (b"" for the last chunk, after
    which the (empty) trailer section has been read too)."""
    line = conn.read_line()
    assert line.endswith(b"\r\n"), line
    size = int(line[:-2], 16)   # srv sends no chunk extensions
    assert line[:-2] == b"%x" % size, "odd chunk-size line %r" % line
    if size == 0:
        assert conn.read_line() == b"\r\n", "trailers after an SSE stream"
        return b""
    data = conn.read_exact(size)
    assert conn.read_exact(2) == b"\r\n", "chunk data not followed by CRLF"
    return data


def nothing_buffered(conn):
    """True when neither the buffer nor the socket holds any unread byte."""
    if conn.buf:
        return False
    old = conn.sock.gettimeout()
    conn.sock.settimeout(0)
    try:
        conn.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        conn.sock.settimeout(old)
    return False   # a byte, or b"" (EOF): neither is expected


def open_sse(server, target):
    c = server.connect(timeout=10)
    c.send(raw_request("GET", target))
    r = c.read_head()
    assert r.status == 200, r
    assert r.header("content-type") == "text/event-stream"
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("content-length") is None
    return c


# ---------------------------------------------------------------------------
# gevent mode
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gsrv(module_server_factory):
    if not HAVE_GEVENT:
        pytest.skip("gevent not installed")
    s = module_server_factory("longpoll_app:app", "--mode", "gevent",
                              "--max-connections", "5000")
    s.warm_up("/hello")
    assert stats(s)["mode"] == "gevent"
    return s


@needs_gevent
def test_1000_event_longpolls_while_others_are_served(gsrv):
    _need_fds(1100)
    n = 1000
    before = stats(gsrv)
    herd = Herd(gsrv.port, ["/wait/event?timeout=60"] * n)
    try:
        wait_stat(gsrv, "event_waiters", n)
        quick_requests(gsrv, 200, "gevent, %d Event waiters" % n)
        assert herd.nothing_arrived(), "a long-poll answered before the event fired"
        assert stats(gsrv)["event_waiters"] == n
        out = gsrv.get_json("/publish?event=1")
        assert out == {"event_waiters": n}
        results = herd.collect(timeout=30 * SLOW)
    finally:
        herd.close()
    assert collections.Counter(results) == {(200, b"fired"): n}
    after = stats(gsrv)
    assert after["event_waiters"] == 0
    assert after["fired"] - before["fired"] == n
    assert after["timeouts"] == before["timeouts"]
    assert after["event_set"] is False
    # The event was cleared again: a new waiter waits (and times out).
    assert gsrv.get("/wait/event?timeout=0.2")[2] == b"timeout"


@needs_gevent
def test_event_waiter_answered_as_soon_as_the_event_is_set(gsrv):
    """A handler woken by gevent (Event.set() runs its waiters from gevent's
    callbacks, in the loop's prepare phase) writes a keep-alive response:
    it leaves in that turn of the loop, not at the next event or timer
    (srv's own timers tick once a second)."""
    with gsrv.connect(timeout=10) as waiter:
        for _ in range(6):
            waiter.send(raw_request("GET", "/wait/event?timeout=30"))
            wait_stat(gsrv, "event_waiters", 1)
            time.sleep(0.05)
            assert gsrv.get_json("/publish?event=1") == {"event_waiters": 1}
            t0 = time.monotonic()
            r = waiter.read_response()
            took = time.monotonic() - t0
            assert r.status == 200
            assert took < 0.25 * SLOW, "the woken handler's response took %.3f s" % took


@needs_gevent
def test_1000_queue_longpolls_each_get_exactly_one_item(gsrv):
    _need_fds(1100)
    n = 1000
    herd = Herd(gsrv.port, ["/wait/queue?timeout=60&ch=lp"] * n)
    try:
        wait_stat(gsrv, "queue_waiters", n)
        quick_requests(gsrv, 100, "gevent, %d Queue waiters" % n)
        assert herd.nothing_arrived(), "a long-poll answered before any item was put"
        # Four batches, so wake-ups interleave with new puts.
        expected = []
        for b in range(4):
            assert gsrv.get_json("/publish?item=b%d&n=250&ch=lp" % b) == {"items": 250}
            expected += ["b%d.%d" % (b, i) for i in range(250)]
        results = herd.collect(timeout=30 * SLOW)
    finally:
        herd.close()
    assert all(st == 200 for st, _ in results), collections.Counter(st for st, _ in results)
    got = collections.Counter(body.decode() for _, body in results)
    dups = [k for k, v in got.items() if v > 1]
    assert not dups, "items handed to more than one waiter: %r" % dups[:10]
    assert sorted(got) == sorted(expected), "lost: %r" % sorted(set(expected) - set(got))[:10]
    st = stats(gsrv)
    assert st["queue_waiters"] == 0
    assert st["channels"]["lp"] == 0
    # Items put with no one waiting stay queued for the next getters.
    gsrv.get_json("/publish?item=later&n=3&ch=lp")
    bodies = sorted(gsrv.get("/wait/queue?timeout=5&ch=lp")[2] for _ in range(3))
    assert bodies == [b"later.0", b"later.1", b"later.2"]


@needs_gevent
def test_timeouts_answer_timeout(gsrv):
    n = 150
    t0 = time.monotonic()
    herd = Herd(gsrv.port, ["/wait/event?timeout=0.5"] * n
                + ["/wait/queue?timeout=0.5&ch=never"] * n
                + ["/wait/sleep?s=0.5"] * n)
    try:
        results = herd.collect(timeout=20 * SLOW)
    finally:
        herd.close()
    elapsed = time.monotonic() - t0
    assert results == [(200, b"timeout")] * (2 * n) + [(200, b"slept")] * n
    assert elapsed < 15 * SLOW, "450 waits of 0.5 s took %.1f s" % elapsed
    st = stats(gsrv)
    assert (st["event_waiters"], st["queue_waiters"], st["sleepers"]) == (0, 0, 0)
    assert st["channels"]["never"] == 0


@needs_gevent
def test_clients_that_leave_while_their_handler_waits(gsrv):
    """300 Event and 300 Queue waiters whose clients disconnect (half of
    them with RST) long before the handlers are woken: srv keeps serving,
    and once the waits end their fds are closed and their memory is reused.
    Two rounds; the RSS baseline is taken after the thousand-waiter tests
    above, so pools and arenas have grown already and must not grow more."""
    _need_fds(800)
    fd_base = gsrv.fd_baseline("/hello")
    rss_base = gsrv.rss_kib()
    n = 300
    for rnd in range(2):
        herd = Herd(gsrv.port, ["/wait/event?timeout=60"] * n
                    + ["/wait/queue?timeout=60&ch=gone"] * n)
        wait_stat(gsrv, "event_waiters", n)
        wait_stat(gsrv, "queue_waiters", n)
        herd.close(rst_every=2)
        time.sleep(0.3)
        gsrv.assert_healthy()
        quick_requests(gsrv, 50, "gevent, %d waiters whose clients left" % (2 * n))
        st = stats(gsrv)
        print("[gevent] after the clients left: %d Event and %d Queue handlers still wait"
              % (st["event_waiters"], st["queue_waiters"]))
        # Wake them all: their responses go nowhere.
        gsrv.get_json("/publish?event=1")
        gsrv.get_json("/publish?item=x&n=%d&ch=gone" % n)
        wait_stat(gsrv, "event_waiters", 0)
        wait_stat(gsrv, "queue_waiters", 0)
        assert stats(gsrv)["channels"]["gone"] == 0
        gsrv.assert_healthy()
        fds = wait_for(lambda: gsrv.fd_count() <= fd_base + 2, timeout=10 * SLOW)
        assert fds, "worker fds: %d, baseline %d" % (gsrv.fd_count(), fd_base)
        rss = gsrv.rss_kib()
        print("[gevent] worker RSS %d KiB at the start, %d KiB after round %d of %d "
              "abandoned waits" % (rss_base, rss, rnd + 1, 2 * n))
    if RSS_MEANINGFUL:
        assert rss < rss_base + 8 * 1024, (rss_base, rss)
    assert "Traceback" not in gsrv.stderr_text(), gsrv.stderr_text()[-3000:]


@needs_gevent
def test_sse_from_queue_arrives_event_by_event(gsrv):
    before = stats(gsrv)
    c = open_sse(gsrv, "/sse/queue?ch=s1&id=s1")
    try:
        assert read_chunk(c) == b"event: open\ndata: s1\n\n"
        for i in range(5):
            # Nothing is sent before the item exists, and each event arrives
            # alone, before the generator has even seen the next item.
            assert nothing_buffered(c), "bytes ahead of the next event: %r" % c.buf
            assert gsrv.get_json("/publish?item=ev%d&ch=s1" % i) == {"items": 1}
            assert read_chunk(c) == b"data: ev%d\n\n" % i
            assert stats(gsrv)["progress"]["s1"] == i + 1
        gsrv.get_json("/publish?item=close&ch=s1")
        assert read_chunk(c) == b""
        # The connection stays usable (HTTP/1.1 keep-alive).
        c.send(raw_request("GET", "/hello"))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"Hello, World!\n")
    finally:
        c.close()
    after = stats(gsrv)
    assert after["sse_done"] == before["sse_done"] + 1
    assert after["sse_open"] == before["sse_open"]


@needs_gevent
def test_100_concurrent_sse_streams(gsrv):
    n = 100
    conns = [open_sse(gsrv, "/sse/queue?ch=m%d&id=m%d" % (i, i)) for i in range(n)]
    try:
        for i, c in enumerate(conns):
            assert read_chunk(c) == b"event: open\ndata: m%d\n\n" % i
        for rnd in range(3):
            for i in range(n):
                gsrv.get_json("/publish?item=r%d-%d&ch=m%d" % (rnd, i, i))
            for i, c in enumerate(conns):
                assert read_chunk(c) == b"data: r%d-%d\n\n" % (rnd, i)
        for i in range(n):
            gsrv.get_json("/publish?item=close&ch=m%d" % i)
        for c in conns:
            assert read_chunk(c) == b""
    finally:
        for c in conns:
            c.close()
    wait_stat(gsrv, "sse_open", 0)


@needs_gevent
def test_sse_client_leaving_ends_the_generator(gsrv):
    # Heartbeats: the generator writes every 0.2 s, so it notices soon.
    before = stats(gsrv)["sse_closed"]
    c = open_sse(gsrv, "/sse/queue?ch=s2&hb=0.2&id=s2")
    assert read_chunk(c) == b"event: open\ndata: s2\n\n"
    assert read_chunk(c) == b": hb\n\n"
    c.close()
    wait_stat(gsrv, "sse_closed", before + 1, timeout=10)
    # No heartbeat: the generator waits in Queue.get until an item comes;
    # the write after the client left fails (at the latest the second one).
    c = open_sse(gsrv, "/sse/queue?ch=s3&id=s3")
    assert read_chunk(c) == b"event: open\ndata: s3\n\n"
    c.close()
    time.sleep(0.2)
    for i in range(5):
        gsrv.get_json("/publish?item=late%d&ch=s3" % i)
        if wait_for(lambda: stats(gsrv)["sse_closed"] == before + 2, timeout=1.0):
            break
    st = stats(gsrv)
    assert st["sse_closed"] == before + 2, st
    assert st["progress"]["s3"] <= 2, "the generator kept yielding into a closed connection"
    assert st["channels"]["s3"] == (i + 1) - st["progress"]["s3"], st
    # The srv.sleep-driven stream too.
    c = open_sse(gsrv, "/sse?n=1000&interval=0.05&id=t2")
    assert read_chunk(c) == b"id: 0\ndata: t2/0\n\n"
    assert read_chunk(c) == b"id: 1\ndata: t2/1\n\n"
    c.close()
    wait_stat(gsrv, "sse_closed", before + 3, timeout=10)
    assert stats(gsrv)["progress"]["t2"] < 100
    assert stats(gsrv)["sse_open"] == 0
    gsrv.assert_healthy()


def _timed_sse(server, sid):
    n, interval = 4, 0.3
    c = open_sse(server, "/sse?n=%d&interval=%s&id=%s" % (n, interval, sid))
    arrivals = []
    try:
        for k in range(n):
            assert read_chunk(c) == b"id: %d\ndata: %s/%d\n\n" % (k, sid.encode(), k)
            arrivals.append(time.monotonic())
        assert read_chunk(c) == b""
    finally:
        c.close()
    # The generator sleeps 0.9 s between its first and last event; had the
    # response been buffered, all four would arrive at once.
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.45, "events arrived together (%.3f s apart): buffered" % spread


@needs_gevent
def test_sse_timed_stream_framing_gevent(gsrv):
    _timed_sse(gsrv, "g1")
    assert stats(gsrv)["progress"]["g1"] == 4


# ---------------------------------------------------------------------------
# native mode: only srv.sleep
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nsrv(module_server_factory):
    s = module_server_factory("longpoll_app:app", "--mode", "native",
                              "--max-connections", "5000")
    s.warm_up("/hello")
    assert stats(s)["mode"] == "native"
    return s


def test_native_500_sleep_longpolls_while_others_are_served(nsrv):
    _need_fds(600)
    n = 500
    sleep_s = 4 * SLOW
    fd_base = nsrv.fd_baseline("/hello")
    t0 = time.monotonic()
    herd = Herd(nsrv.port, ["/wait/sleep?s=%d" % sleep_s] * n)
    try:
        wait_stat(nsrv, "sleepers", n, timeout=sleep_s * 0.75 / SLOW)
        quick_requests(nsrv, 200, "native, %d srv.sleep waiters" % n)
        still = stats(nsrv)["sleepers"]
        if still == n:
            assert herd.nothing_arrived()
        else:
            print("[native] note: the sleeps ended during the quick requests (slow machine)")
        results = herd.collect(timeout=30 * SLOW)
    finally:
        herd.close()
    elapsed = time.monotonic() - t0
    assert results == [(200, b"slept")] * n
    assert elapsed >= sleep_s * 0.95
    assert elapsed < sleep_s + 15 * SLOW, "500 srv.sleep(%d) took %.1f s" % (sleep_s, elapsed)
    assert stats(nsrv)["sleepers"] == 0
    assert wait_for(lambda: nsrv.fd_count() <= fd_base + 2, timeout=10 * SLOW), \
        (nsrv.fd_count(), fd_base)


def test_native_clients_that_leave_while_srv_sleep_waits(nsrv):
    _need_fds(300)
    fd_base = nsrv.fd_baseline("/hello")
    n = 200
    herd = Herd(nsrv.port, ["/wait/sleep?s=%s" % (3 * SLOW)] * n)
    wait_stat(nsrv, "sleepers", n, timeout=2)
    herd.close(rst_every=2)
    nsrv.assert_healthy()
    wait_stat(nsrv, "sleepers", 0, timeout=10)
    assert wait_for(lambda: nsrv.fd_count() <= fd_base + 2, timeout=10 * SLOW), \
        (nsrv.fd_count(), fd_base)
    nsrv.assert_healthy()
    assert "Traceback" not in nsrv.stderr_text(), nsrv.stderr_text()[-3000:]


def test_native_gevent_routes_need_gevent(nsrv):
    status, _, body = nsrv.get("/wait/event?timeout=0.1")
    assert status == 501
    # Native mode never starts gevent's hub (gevent itself may be imported:
    # srv imports gevent-websocket's exceptions when it is installed).
    st = nsrv.get_json("/stats")
    assert st["gevent_hub"] is False
    print("\n[native] gevent imported in the worker: %s" % st["gevent_imported"])


def test_native_sse_and_client_leaving(nsrv):
    _timed_sse(nsrv, "n1")
    before = stats(nsrv)["sse_closed"]
    c = open_sse(nsrv, "/sse?n=1000&interval=0.05&id=n2")
    assert read_chunk(c) == b"id: 0\ndata: n2/0\n\n"
    c.close()
    wait_stat(nsrv, "sse_closed", before + 1, timeout=10)
    assert stats(nsrv)["sse_open"] == 0
    nsrv.assert_healthy()


def test_native_sse_http10_is_close_delimited(nsrv):
    c = nsrv.connect(timeout=10)
    try:
        c.send(raw_request("GET", "/sse?n=3&interval=0.05&id=h10", version="HTTP/1.0"))
        r = c.read_response()
    finally:
        c.close()
    assert r.status == 200 and r.close_delimited and not r.chunked
    assert r.header("content-type") == "text/event-stream"
    assert r.body == b"".join(b"id: %d\ndata: h10/%d\n\n" % (k, k) for k in range(3))


def test_waits_longer_than_every_idle_limit(server_factory):
    """A long-poll or a quiet SSE stream is the app waiting, not an idle
    connection: --io-timeout, --keepalive and --header-timeout must not cut
    it (here all 1 s, the waits 1.6 s)."""
    s = server_factory("longpoll_app:app", "--mode", "native", "--io-timeout", "1",
                       "--keepalive", "1", "--header-timeout", "1")
    s.warm_up("/hello")
    herd = Herd(s.port, ["/wait/sleep?s=1.6"] * 20)
    c = open_sse(s, "/sse?n=2&interval=1.6&id=q")
    try:
        assert read_chunk(c) == b"id: 0\ndata: q/0\n\n"
        assert read_chunk(c) == b"id: 1\ndata: q/1\n\n"
        assert read_chunk(c) == b""
        assert herd.collect(timeout=20 * SLOW) == [(200, b"slept")] * 20
    finally:
        c.close()
        herd.close()
    s.assert_healthy()
