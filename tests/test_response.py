"""Response framing, standard headers, write(), close(), file_wrapper,
large and slowly-read responses."""

import email.utils
import hashlib
import os
import socket
import struct
import threading
import time
from datetime import datetime, timezone

import pytest
import requests

from conftest import Closed, RawConn, decode_chunked, pattern_bytes, raw_request, wait_for


def get(server, target, version="HTTP/1.1", method="GET", headers=(),
        allow_incomplete=False):
    c = server.connect()
    c.send(raw_request(method, target, headers, version=version))
    r = c.read_response(method=method, allow_incomplete=allow_incomplete)
    return c, r


def closed_marker(server, ident, timeout=5.0):
    path = server.state_path("closed-" + ident)
    return wait_for(lambda: os.path.exists(path), timeout)


# ------------------------------------------------------------------ framing

def test_content_length_from_app_honoured(routes_server):
    c, r = get(routes_server, "/hello")
    assert r.status == 200
    assert r.header("Content-Length") == "14"
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"Hello, World!\n"
    c.close()


def test_content_length_from_app_with_generator(routes_server):
    c, r = get(routes_server, "/cl")
    assert r.header("Content-Length") == "20"
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"0123456789abcdefghij"
    # keep-alive still works after a CL-framed generator response
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_one_element_list_gets_content_length(routes_server):
    for version in ("HTTP/1.1", "HTTP/1.0"):
        c, r = get(routes_server, "/list1", version=version)
        assert r.status == 200
        assert r.header("Content-Length") == str(len(b"one element body")), r.headers
        assert r.header("Transfer-Encoding") is None
        assert r.body == b"one element body"
        c.close()


def test_empty_list(routes_server):
    c, r = get(routes_server, "/empty")
    assert r.status == 200
    assert r.body == b""
    assert r.complete
    te = r.header("Transfer-Encoding")
    assert r.header("Content-Length") == "0" or (te and "chunked" in te)
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_multi_element_list(routes_server):
    c, r = get(routes_server, "/listn")
    assert r.status == 200 and r.complete
    assert r.body == b"part1-part2-part3"
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_generator_http11_chunked(routes_server):
    c, r = get(routes_server, "/gen?n=5&id=g11")
    assert r.status == 200
    assert (r.header("Transfer-Encoding") or "").lower() == "chunked"
    assert r.header("Content-Length") is None
    assert r.chunked and r.complete
    assert r.body == b"".join(b"chunk-%d\n" % i for i in range(1, 6))
    # connection stays usable
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()
    assert closed_marker(routes_server, "g11")


def test_generator_http10_close_delimited(routes_server):
    c, r = get(routes_server, "/gen?n=4&id=g10", version="HTTP/1.0")
    assert r.status == 200
    assert r.header("Transfer-Encoding") is None
    assert r.header("Content-Length") is None
    assert r.close_delimited
    assert r.body == b"".join(b"chunk-%d\n" % i for i in range(1, 5))
    c.close()
    assert closed_marker(routes_server, "g10")


def test_generator_http10_keepalive_request_still_closes(routes_server):
    """HTTP/1.0 + Connection: keep-alive, but no Content-Length is known:
    the body must be close-delimited (never chunked)."""
    c, r = get(routes_server, "/gen?n=3&id=g10ka", version="HTTP/1.0",
               headers=[("Connection", "keep-alive")])
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"chunk-1\nchunk-2\nchunk-3\n"
    assert r.close_delimited
    c.close()


def test_generator_with_empty_chunks(routes_server):
    c, r = get(routes_server, "/gen_empty_chunks")
    assert r.status == 200 and r.complete
    assert r.body == b"ab"
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_requests_library_streaming(routes_server):
    r = requests.get(routes_server.url + "/gen?n=50&id=req", timeout=10)
    assert r.status_code == 200
    assert r.text == "".join("chunk-%d\n" % i for i in range(1, 51))


def test_custom_reason_phrase(routes_server):
    c, r = get(routes_server, "/custom_reason")
    assert r.status == 299
    assert r.reason == "Custom Reason Here"
    c.close()


def test_multiple_headers_same_name(routes_server):
    c, r = get(routes_server, "/multi_header")
    assert r.header_all("Set-Cookie") == ["a=1", "b=2"]
    assert r.header("X-Multi") == "x"
    c.close()


def test_large_response_header(routes_server):
    with routes_server.connect() as c:
        c.send(raw_request("GET", "/big_header?size=60000") + raw_request("GET", "/hello"))
        r = c.read_response()
        assert r.status == 200
        assert r.header("X-Big") == "v" * 60000
        assert r.body == b"ok"
        assert c.read_response().body == b"Hello, World!\n"


def test_many_small_chunks(routes_server):
    c, r = get(routes_server, "/gen?n=5000&id=many")
    c.close()
    assert r.complete
    assert r.body == b"".join(b"chunk-%d\n" % i for i in range(1, 5001))


# ------------------------------------------------------------ HEAD, 204, 304

def test_head_has_headers_no_body(routes_server):
    c = routes_server.connect()
    c.send(raw_request("HEAD", "/head") + raw_request("GET", "/hello"))
    r1 = c.read_response(method="HEAD")
    assert r1.status == 200
    assert r1.header("X-Head-Test") == "1"
    assert r1.header("Content-Length") == str(len(b"head-body-content"))
    r2 = c.read_response()
    assert r2.status == 200 and r2.body == b"Hello, World!\n", \
        "HEAD body bytes leaked into the next response: %r" % r2.raw_head
    c.close()


def test_head_generator_no_body(routes_server):
    c = routes_server.connect()
    c.send(raw_request("HEAD", "/head_gen?id=hg") + raw_request("GET", "/hello"))
    r1 = c.read_response(method="HEAD")
    assert r1.status == 200
    assert r1.header("X-Head-Test") == "1"
    r2 = c.read_response()
    assert r2.status == 200 and r2.body == b"Hello, World!\n", r2.raw_head
    c.close()
    assert closed_marker(routes_server, "hg")


def test_head_http10(routes_server):
    c = routes_server.connect()
    c.send(raw_request("HEAD", "/head", version="HTTP/1.0"))
    r = c.read_response(method="HEAD")
    assert r.status == 200
    assert c.read_until_close() == b""
    c.close()


@pytest.mark.parametrize("code", ["204", "304"])
@pytest.mark.parametrize("gen", ["0", "1"])
@pytest.mark.parametrize("body", ["", "illegal-body"])
def test_no_body_statuses(routes_server, code, gen, body):
    c = routes_server.connect()
    target = "/status?code=%s&gen=%s&body=%s" % (code, gen, body)
    c.send(raw_request("GET", target) + raw_request("GET", "/hello"))
    r1 = c.read_response()
    assert r1.status == int(code)
    assert r1.header("X-Status-Test") == code
    assert r1.header("Transfer-Encoding") is None, r1.headers
    if code == "204":
        assert r1.header("Content-Length") is None, r1.headers
    r2 = c.read_response()
    assert r2.status == 200 and r2.body == b"Hello, World!\n", \
        "bytes after the %s response: %r" % (code, r2.raw_head)
    c.close()


def test_no_body_status_http10(routes_server):
    c = routes_server.connect()
    c.send(raw_request("GET", "/status?code=204&gen=1", version="HTTP/1.0"))
    r = c.read_response()
    assert r.status == 204
    assert r.header("Transfer-Encoding") is None
    assert c.read_until_close() == b""
    c.close()


def test_100_continue_interim_has_no_body(routes_server):
    c = routes_server.connect()
    c.send(b"POST /expect_read?delay=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.read_response(skip_interim=False)
    assert r.status == 100
    assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None
    c.send(b"data")
    r2 = c.read_response()
    assert r2.status == 200 and r2.body == b"read 4"
    c.close()


# ------------------------------------------------------------ std headers

def test_date_header(routes_server):
    c, r = get(routes_server, "/hello")
    c.close()
    d = r.header("Date")
    assert d, r.headers
    assert d.endswith(" GMT"), d
    parsed = email.utils.parsedate_to_datetime(d)
    now = datetime.now(timezone.utc)
    assert abs((now - parsed).total_seconds()) < 60, (d, now)
    assert len(r.header_all("Date")) == 1


def test_date_header_on_streaming_and_errors(routes_server):
    for target in ("/gen?n=1&id=dh", "/raise_before", "/nope-404"):
        c, r = get(routes_server, target)
        c.close()
        assert r.header("Date"), (target, r.headers)


def test_server_header(routes_server):
    for target in ("/hello", "/gen?n=1&id=sh", "/raise_before"):
        c, r = get(routes_server, target)
        c.close()
        assert r.header_all("Server") == ["srv"], (target, r.headers)


def test_no_server_header(server_factory):
    s = server_factory("routes:app", "--no-server-header")
    for target in ("/hello", "/gen?n=1&id=nsh", "/raise_before"):
        c, r = get(s, target)
        c.close()
        assert r.header("Server") is None, (target, r.headers)
        assert r.header("Date")


def test_error_responses_carry_server_header(routes_server):
    c = routes_server.connect()
    c.send(b"GARBAGE\r\n\r\n")
    r = c.read_response()
    c.close()
    assert r.status == 400
    assert r.header_all("Server") == ["srv"]


# ----------------------------------------------------------------- write()

def test_write_before_iterable(routes_server):
    for version in ("HTTP/1.1", "HTTP/1.0"):
        c, r = get(routes_server, "/write", version=version)
        assert r.status == 200, r
        assert r.body == b"write1-write2-iter1-iter2"
        c.close()


def test_write_with_content_length(routes_server):
    c, r = get(routes_server, "/write_cl")
    assert r.header("Content-Length") == "12"
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"write-iter-!"
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_write_only(routes_server):
    c, r = get(routes_server, "/write_only")
    assert r.body == b"w0;w1;w2;"
    assert r.complete
    c.close()


@pytest.mark.parametrize("what", ["write", "sr", "both"])
def test_kept_callables_stay_with_their_request(routes_server, what):
    """srv hands each keep-alive connection's requests the same
    start_response while the app keeps no reference to it: a start_response
    or write() that an app did keep from an earlier request must raise, on
    the same connection and on another, and never reach the response of the
    request that is running."""
    c = routes_server.connect()
    try:
        c.send(raw_request("GET", "/keep-callables?what=" + what))
        r = c.read_response()
        assert r.status == 200 and r.body == b"kept " + what.encode(), r
        for conn in (c, None):
            own = conn is None
            conn = conn or routes_server.connect()
            try:
                conn.send(raw_request("GET", "/use-kept"))
                r = conn.read_response()
                conn.send(raw_request("GET", "/hello"))
                after = conn.read_response()
            finally:
                if own:
                    conn.close()
            assert r.status == 200, r
            assert b"LEAKED" not in r.body and b"Stolen" not in r.body, r.body
            out = r.json()
            expect = {"write": {"write": "RuntimeError"}, "sr": {"sr": "RuntimeError"},
                      "both": {"write": "RuntimeError", "sr": "RuntimeError"}}[what]
            assert out == expect
            assert after.status == 200 and after.body == b"Hello, World!\n"
    finally:
        c.close()


# ------------------------------------------------------------------ close()

def test_close_called_on_success(routes_server):
    c, r = get(routes_server, "/gen?n=3&id=ok1")
    assert r.complete
    c.close()
    assert closed_marker(routes_server, "ok1")


def test_close_called_on_plain_iterable(routes_server):
    c, r = get(routes_server, "/closing_list?id=cl1")
    assert r.body == b"closing-list"
    c.close()
    assert closed_marker(routes_server, "cl1")


def test_close_called_when_app_raises_in_iteration(routes_server):
    c, r = get(routes_server, "/raise_after_headers?id=rai", allow_incomplete=True)
    c.close()
    assert closed_marker(routes_server, "rai")


def test_close_called_when_first_next_raises(routes_server):
    c, r = get(routes_server, "/raise_in_first_next?id=rfn")
    c.close()
    assert r.status == 500
    assert closed_marker(routes_server, "rfn")


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_close_called_on_client_disconnect(routes_server, how):
    ident = "disc-" + how
    c = routes_server.connect()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c.send(raw_request("GET", "/gen?n=100000&size=16384&delay=0.005&id=%s" % ident))
    r = c.read_head()
    assert r.status == 200
    c.sock.recv(10000)
    if how == "rst":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    assert closed_marker(routes_server, ident, timeout=10), \
        "close() not called after the client went away"
    # and it stopped producing: the generator did not run to the end
    yielded = open(routes_server.state_path("yielded-" + ident)).read()
    assert len(yielded) < 100000
    routes_server.assert_healthy()


def test_close_called_on_disconnect_while_app_sleeps(routes_server):
    """Client goes away while the generator is paused in srv.sleep between
    chunks; close() still runs."""
    ident = "disc-sleep"
    c = routes_server.connect()
    c.send(raw_request("GET", "/gen?n=300&delay=0.1&id=%s" % ident))
    r = c.read_head()
    assert r.status == 200
    time.sleep(0.3)
    c.close()
    assert closed_marker(routes_server, ident, timeout=10)
    routes_server.assert_healthy()


# ------------------------------------------------------------ big / slow

def slow_read_all(c, step=65536, pause=0.002):
    """Read one response slowly (pauses between small recv calls);
    returns (response head, decoded body)."""
    r = c.read_head()
    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    raw = bytearray(c.buf)
    c.buf = b""
    while True:
        if cl is not None and len(raw) >= int(cl):
            break
        if te == "chunked" and raw.endswith(b"\r\n0\r\n\r\n"):
            break
        try:
            d = c.sock.recv(step)
        except ConnectionResetError:
            d = b""
        if not d:
            break
        raw += d
        time.sleep(pause)
    if te == "chunked":
        body, complete = decode_chunked(bytes(raw))
        assert complete, "chunked body not terminated"
        return r, body
    return r, bytes(raw)


@pytest.mark.parametrize("target", [
    "/big?size=8388608&chunk=65536&id=big1",
    "/big?size=8388608&chunk=1000000&cl=1&id=big2",
    "/biglist?size=8388608",
])
def test_large_response_read_slowly(routes_server, target):
    c = routes_server.connect(timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    c.send(raw_request("GET", target))
    r, body = slow_read_all(c, step=32768, pause=0.0005)
    assert r.status == 200
    assert len(body) == 8388608
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(pattern_bytes(8388608)).hexdigest()
    # keep-alive still fine
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_large_response_requests(routes_server):
    r = requests.get(routes_server.url + "/big?size=6000000&chunk=100000&id=big3", timeout=30)
    assert r.status_code == 200
    assert r.content == pattern_bytes(6000000)


def test_several_large_responses_concurrently(routes_server):
    import threading
    errs = []
    ref = pattern_bytes(3 << 20)

    def worker(i):
        try:
            c = routes_server.connect(timeout=30)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            c.send(raw_request("GET", "/big?size=%d&chunk=50000&id=cc%d" % (3 << 20, i)))
            r, body = slow_read_all(c, step=16384, pause=0.0005)
            c.close()
            if body != ref:
                errs.append("worker %d: body mismatch (%d bytes)" % (i, len(body)))
        except Exception as e:  # noqa: BLE001
            errs.append("worker %d: %r" % (i, e))
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errs, errs


def test_write_big_read_slowly(routes_server):
    c = routes_server.connect(timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    c.send(raw_request("GET", "/write_big?size=8388608"))
    r, body = slow_read_all(c, step=32768, pause=0.0005)
    assert r.status == 200
    assert len(body) == 8388608
    assert body == pattern_bytes(8388608)
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_app_content_length_too_long(routes_server):
    """The app declares 5 bytes but yields 15: only 5 may be sent; the extra
    bytes must never be taken for the next response."""
    with routes_server.connect() as c:
        c.send(raw_request("GET", "/cl_too_long") + raw_request("GET", "/hello"))
        r1 = c.read_response()
        assert r1.status == 200
        assert r1.body == b"12345"
        try:
            r2 = c.read_response()
        except Closed:  # closing the connection is fine, garbage is not
            r2 = None
        if r2 is not None:
            assert r2.body == b"Hello, World!\n"


def test_app_content_length_too_short(routes_server):
    """The app declares 100 bytes but yields 10: the connection must be
    closed so the client sees the truncation instead of hanging."""
    with routes_server.connect(timeout=5) as c:
        c.send(raw_request("GET", "/cl_too_short"))
        r = c.read_response(allow_incomplete=True)
        assert r.status == 200
        assert r.body == b"onlyten..."
        assert not r.complete
    routes_server.assert_healthy()


def test_close_raising_is_logged(routes_server):
    mark = len(routes_server.stderr_text())
    c, r = get(routes_server, "/close_raises?id=cr1")
    assert r.status == 200 and r.complete
    assert r.body == b"body-complete"
    c.close()
    assert wait_for(lambda: os.path.exists(routes_server.state_path("close-raised-cr1")), 3)
    assert wait_for(lambda: "close-raises-MARKER" in routes_server.stderr_text()[mark:], 3)
    routes_server.assert_healthy()


def test_date_header_advances(routes_server):
    c, r1 = get(routes_server, "/hello")
    c.close()
    time.sleep(1.1)
    c, r2 = get(routes_server, "/hello")
    c.close()
    d1 = email.utils.parsedate_to_datetime(r1.header("Date"))
    d2 = email.utils.parsedate_to_datetime(r2.header("Date"))
    assert d2 > d1, (r1.header("Date"), r2.header("Date"))


# ----------------------------------------------------------- file_wrapper

@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("files") / "data.bin"
    data = pattern_bytes(3 * 1024 * 1024 + 12345, seed=11)
    p.write_bytes(data)
    return str(p), data


@pytest.mark.parametrize("extra", ["", "&cl=1", "&block=4096", "&cl=1&block=100000"])
def test_file_wrapper_real_file(routes_server, data_file, extra):
    path, data = data_file
    ident = "fw" + extra.replace("&", "_").replace("=", "")
    c = routes_server.connect(timeout=30)
    c.send(raw_request("GET", "/file?path=%s&id=%s%s" % (path, ident, extra)))
    r = c.read_response()
    assert r.status == 200
    assert len(r.body) == len(data)
    assert r.body == data
    if "cl=1" in extra:
        assert r.header("Content-Length") == str(len(data))
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()
    assert closed_marker(routes_server, ident)


@pytest.mark.parametrize("extra", ["", "&cl=1"])
def test_file_wrapper_respects_file_position(routes_server, data_file, extra):
    path, data = data_file
    c = routes_server.connect(timeout=30)
    c.send(raw_request("GET", "/file?path=%s&id=fwseek%s&seek=1000%s" % (path, extra, extra)))
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert r.body == data[1000:]


def test_file_wrapper_http10(routes_server, data_file):
    path, data = data_file
    c = routes_server.connect(timeout=30)
    c.send(raw_request("GET", "/file?path=%s&id=fw10" % path, version="HTTP/1.0"))
    r = c.read_response()
    c.close()
    assert r.body == data


def test_file_wrapper_read_slowly(routes_server, data_file):
    path, data = data_file
    c = routes_server.connect(timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    c.send(raw_request("GET", "/file?path=%s&id=fwslow&cl=1" % path))
    r, body = slow_read_all(c, step=32768, pause=0.0005)
    c.close()
    assert body == data


def test_file_wrapper_head(routes_server, data_file):
    path, data = data_file
    c = routes_server.connect()
    c.send(raw_request("HEAD", "/file?path=%s&id=fwhead&cl=1" % path)
           + raw_request("GET", "/hello"))
    r = c.read_response(method="HEAD")
    assert r.status == 200
    assert r.header("Content-Length") == str(len(data))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()
    assert closed_marker(routes_server, "fwhead")


def test_file_wrapper_client_disconnect(routes_server, tmp_path):
    p = tmp_path / "huge.bin"
    with open(p, "wb") as f:
        f.truncate(64 << 20)  # sparse 64 MiB
    c = routes_server.connect()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c.send(raw_request("GET", "/file?path=%s&id=fwdisc&cl=1" % p))
    r = c.read_head()
    assert r.status == 200
    c.sock.recv(8192)
    c.close()
    assert closed_marker(routes_server, "fwdisc", timeout=10)
    routes_server.assert_healthy()


@pytest.mark.parametrize("extra", ["", "&cl=1"])
def test_file_wrapper_bytesio(routes_server, extra):
    size = 1000003
    ident = "bio" + extra.replace("&", "_").replace("=", "")
    c = routes_server.connect(timeout=30)
    c.send(raw_request("GET", "/filelike?size=%d&id=%s%s" % (size, ident, extra)))
    r = c.read_response()
    assert r.status == 200
    assert r.body == pattern_bytes(size, seed=7)
    c.send(raw_request("GET", "/hello"))
    assert c.read_response().body == b"Hello, World!\n"
    c.close()
    assert closed_marker(routes_server, ident)


# ------------------------------------------------------------ held output
#
# The last bytes of a keep-alive response may be held until the loop's pass
# ends (conn.c), and sent later, when the socket has room, if the client is
# not reading.  Whatever the client does, the bytes leave in order.

def mixed_requests(kinds, path, tag):
    """Pipelined GETs, one per kind: "file" (sendfile of path), "gen" (a
    chunked body; ids tagged with tag) or "n" (a held /n?i= answer)."""
    return b"".join(raw_request("GET", "/file?cl=1&path=%s" % path if k == "file" else
                                "/gen?n=3&id=%s%d" % (tag, i) if k == "gen" else "/n?i=%d" % i)
                    for i, k in enumerate(kinds))


def check_mixed_response(r, i, kind, data):
    """Response i of mixed_requests(): whole, and the one asked for."""
    assert r.status == 200, (i, r.status)
    if kind == "file":
        assert r.body == data, i
    elif kind == "gen":
        assert r.body == b"chunk-1\nchunk-2\nchunk-3\n", (i, r.body[:80])
    else:
        assert r.body == b"n=%d\n" % i, (i, r.body[:80])


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_pipelined_responses_in_order_when_the_client_reads_late(server_factory, tmp_path, mode):
    """2,000 pipelined requests from a client with a 4 KiB receive buffer
    that reads nothing for half a second, then reads slowly at times: held
    responses, files sent with sendfile (12 MB in all, more than the
    kernel's buffers take) and chunked bodies all arrive whole and in
    order."""
    srv = server_factory("routes:app", "--mode", mode)
    srv.warm_up("/hello")
    data = pattern_bytes(300000, seed=7)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    kinds = ["file" if i % 50 == 25 else "gen" if i % 7 == 3 else "n" for i in range(2000)]
    reqs = mixed_requests(kinds, path, "held")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect((srv.host, srv.port))
    sender = threading.Thread(target=s.sendall, args=(reqs,), daemon=True)
    sender.start()
    time.sleep(0.5)
    c = RawConn(s, 30)
    for i, k in enumerate(kinds):
        if k == "file" and i % 200 == 25:
            time.sleep(0.2)   # the server's socket fills up again
        check_mixed_response(c.read_response(), i, k, data)
    sender.join(5)
    c.close()
    srv.assert_healthy()


def segments_received(sock):
    """tcpi_segs_in of the socket's TCP_INFO (struct tcp_info, offset 140):
    every segment it has received, data or not."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 192)
    return struct.unpack_from("I", info, 140)[0]


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_an_iterator_body_whose_length_is_known_is_held_like_a_list(server_factory, mode):
    """Ten pipelined requests whose bodies are one-item iterators with a
    Content-Length (what Flask and Django return) are answered in the pass
    that read them: the bytes that complete each length are held, so the
    ten answers leave in one send instead of ten, and the client is woken
    once.  Counted at the client as TCP segments received."""
    srv = server_factory("routes:app", "--mode", mode)
    srv.warm_up("/hello")
    with srv.connect(timeout=5) as c:
        c.send(raw_request("GET", "/hello"))   # the connection is known to be up
        c.read_response()
        before = segments_received(c.sock)
        c.send(b"".join(raw_request("GET", "/cl_iter?i=%d" % i) for i in range(10)))
        for i in range(10):
            r = c.read_response()
            assert (r.status, r.body) == (200, b"framework-like body"), i
        time.sleep(0.2)   # a late segment would count too
        got = segments_received(c.sock) - before
    assert got <= 3, "%d segments for 10 answers" % got
    srv.assert_healthy()


def held_output_full_at(*hits):
    """SRV_FAULT_INJECT for srv: at each of these sends of held output, the
    socket takes one byte and is then full (a partial write, then EAGAIN)."""
    return {"SRV_FAULT_INJECT": ",".join("held_output_full:%d" % n for n in hits)}


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_held_output_the_socket_cannot_take_goes_when_it_is_writable(server_factory, mode):
    """A held response the socket takes only one byte of goes out, the rest
    when the socket is writable, with nothing else to push it: one request
    at a time on a keep-alive connection, the client waiting for each whole
    answer before it asks again.  Sends 1-5 cut the first response a byte at
    a time, the later ones every other response or so."""
    srv = server_factory("routes:app", "--mode", mode, "--log-level", "warning",
                         env=held_output_full_at(1, 2, 3, 4, 6, 9, 12, 15))
    with srv.connect(timeout=5) as c:
        for i in range(12):
            c.send(raw_request("GET", "/n?i=%d" % i))
            r = c.read_response()
            assert (r.status, r.body) == (200, b"n=%d\n" % i), i
    srv.assert_healthy()


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_held_output_cut_short_still_goes_before_what_follows(server_factory, tmp_path, mode):
    """Pipelined requests whose held responses the socket takes only a byte
    of at times (SRV_FAULT_INJECT): the rest of each still leaves before the
    responses after it, held ones, files sent with sendfile and chunked
    bodies, on the same connection."""
    srv = server_factory("routes:app", "--mode", mode, "--log-level", "warning",
                         env=held_output_full_at(1, 2, 4, 7, 11, 16, 22, 29))
    data = pattern_bytes(200000, seed=11)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    kinds = ["file" if i % 9 == 4 else "gen" if i % 5 == 2 else "n" for i in range(60)]
    reqs = mixed_requests(kinds, path, "cut")
    with srv.connect(timeout=10) as c:
        c.send(reqs)
        for i, k in enumerate(kinds):
            check_mixed_response(c.read_response(), i, k, data)
    srv.assert_healthy()
