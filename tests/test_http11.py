"""HTTP/1.1 connection handling: keep-alive, close, pipelining,
Expect: 100-continue, unread bodies, requests split into small pieces."""

import http.client
import json
import os
import time

import pytest

from conftest import Closed, chunked_body, raw_request


@pytest.fixture(scope="module")
def echo(module_server_factory):
    return module_server_factory("echo:app")


@pytest.fixture(scope="module")
def routes(module_server_factory):
    return module_server_factory("routes:app")


def seen_paths(server):
    p = server.state_path("seen.log")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return f.read().splitlines()


# --------------------------------------------------------------- keep-alive

def test_keepalive_http_client(echo):
    c = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=10)
    ports = set()
    socks = set()
    for i in range(5):
        c.request("GET", "/ka/%d" % i)
        r = c.getresponse()
        assert r.status == 200
        data = json.loads(r.read())
        assert data["environ"]["PATH_INFO"] == "/ka/%d" % i
        ports.add(data["environ"]["REMOTE_PORT"])
        socks.add(id(c.sock))
        assert c.sock is not None, "server closed a keep-alive connection"
    c.request("POST", "/ka/post", body=b"x" * 100)
    r = c.getresponse()
    assert json.loads(r.read())["body_len"] == 100
    socks.add(id(c.sock))
    c.close()
    assert len(ports) == 1, ports
    assert len(socks) == 1


def test_keepalive_raw_many(routes):
    with routes.connect() as c:
        for i in range(50):
            c.send(raw_request("GET", "/hello"))
            r = c.read_response()
            assert r.status == 200 and r.body == b"Hello, World!\n"


def test_keepalive_survives_idle_second(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/hello"))
        assert c.read_response().status == 200
        time.sleep(1.0)
        c.send(raw_request("GET", "/hello"))
        assert c.read_response().status == 200


def test_http10_keepalive(echo):
    with echo.connect() as c:
        c.send(b"GET /ka10/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r1 = c.read_response()
        assert r1.status == 200
        assert r1.header("Content-Length") is not None
        assert (r1.header("Connection") or "").lower() == "keep-alive", r1.headers
        assert not c.is_closed(0.3), "HTTP/1.0 keep-alive connection was closed"
        c.send(b"GET /ka10/2 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200
        assert r1.json()["environ"]["REMOTE_PORT"] == r2.json()["environ"]["REMOTE_PORT"]
        assert r2.json()["environ"]["PATH_INFO"] == "/ka10/2"
        # and a final HTTP/1.0 request without keep-alive closes it
        c.send(b"GET /ka10/3 HTTP/1.0\r\n\r\n")
        r3 = c.read_response()
        assert r3.status == 200
        assert c.is_closed(3)


def test_http10_default_close(routes):
    with routes.connect() as c:
        c.send(b"GET /hello HTTP/1.0\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"Hello, World!\n"
        assert c.is_closed(3), "server kept an HTTP/1.0 connection open"


def test_connection_close_honoured(routes):
    with routes.connect() as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"Hello, World!\n"
        assert c.is_closed(3), "server ignored Connection: close"


def test_connection_close_stops_pipeline(routes):
    with routes.connect() as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               b"GET /after-close-marker HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.is_closed(3)
    time.sleep(0.2)
    assert "/after-close-marker" not in seen_paths(routes)


def test_connection_close_streaming(routes):
    with routes.connect() as c:
        c.send(b"GET /gen?n=3&id=cc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.body == b"chunk-1\nchunk-2\nchunk-3\n"
        assert c.is_closed(3)


def test_connection_header_case_and_list(routes):
    with routes.connect() as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: foo, CLOSE\r\n\r\n")
        assert c.read_response().status == 200
        assert c.is_closed(3)


# ---------------------------------------------------------------- pipelining

def test_pipelining_gets(echo):
    reqs = b"".join(raw_request("GET", "/pipe/%d?i=%d" % (i, i)) for i in range(10))
    with echo.connect() as c:
        c.send(reqs)
        rs = c.read_responses(10)
    for i, r in enumerate(rs):
        assert r.status == 200
        env = r.json()["environ"]
        assert env["PATH_INFO"] == "/pipe/%d" % i
        assert env["QUERY_STRING"] == "i=%d" % i


def test_pipelining_with_bodies(echo):
    reqs = [
        raw_request("GET", "/p/0"),
        raw_request("POST", "/p/1", body=b"body-one"),
        raw_request("GET", "/p/2"),
        raw_request("POST", "/p/3", [("Transfer-Encoding", "chunked")])
        + chunked_body([b"chunk", b"ed-", b"three"]),
        raw_request("PUT", "/p/4", body=b"GET /p/evil HTTP/1.1\r\n\r\n"),
        raw_request("GET", "/p/5"),
        raw_request("POST", "/p/6", body=b""),
        raw_request("POST", "/p/7", [("Content-Length", "0")]),
        raw_request("DELETE", "/p/8"),
        raw_request("GET", "/p/9"),
    ]
    expect_bodies = ["", "body-one", "", "chunked-three", "GET /p/evil HTTP/1.1\r\n\r\n",
                     "", "", "", "", ""]
    with echo.connect() as c:
        c.send(b"".join(reqs))
        rs = c.read_responses(10)
    for i, r in enumerate(rs):
        assert r.status == 200, (i, r)
        d = r.json()
        assert d["environ"]["PATH_INFO"] == "/p/%d" % i
        assert d["body"] == expect_bodies[i], i


def test_pipelining_preserves_order_with_slow_first(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/sleep?t=0.3") + raw_request("GET", "/hello")
               + raw_request("GET", "/sleep?t=0.1") + raw_request("GET", "/hello"))
        r1, r2, r3, r4 = c.read_responses(4)
    assert r1.body.startswith(b"slept")
    assert r2.body == b"Hello, World!\n"
    assert r3.body.startswith(b"slept")
    assert r4.body == b"Hello, World!\n"


def test_pipelining_streaming_responses(routes):
    with routes.connect() as c:
        c.send(b"".join(raw_request("GET", "/gen?n=%d&id=ps%d" % (i + 1, i)) for i in range(5)))
        rs = c.read_responses(5)
    for i, r in enumerate(rs):
        assert r.body == b"".join(b"chunk-%d\n" % k for k in range(1, i + 2))


def test_pipelining_200(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/hello") * 200)
        rs = c.read_responses(200)
    assert all(r.status == 200 and r.body == b"Hello, World!\n" for r in rs)


def test_pipelined_head_and_get(routes):
    with routes.connect() as c:
        c.send(raw_request("HEAD", "/hello") + raw_request("GET", "/hello")
               + raw_request("HEAD", "/gen?n=2&id=phg") + raw_request("GET", "/hello"))
        rs = c.read_responses(4, methods=["HEAD", "GET", "HEAD", "GET"])
    assert [r.status for r in rs] == [200] * 4
    assert rs[1].body == rs[3].body == b"Hello, World!\n"


# ------------------------------------------------------------ 100-continue

def test_expect_100_sent_when_app_reads(routes):
    with routes.connect() as c:
        t0 = time.monotonic()
        c.send(b"POST /expect_read?delay=0.5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        c.settimeout(5)
        interim = c.read_response(skip_interim=False)
        elapsed = time.monotonic() - t0
        assert interim.status == 100, interim
        assert interim.version == "HTTP/1.1"
        assert elapsed >= 0.4, ("100 Continue sent %.3fs after the request, before the app "
                                "started reading the body" % elapsed)
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.body == b"read 5"
        # connection reusable
        c.send(raw_request("GET", "/hello"))
        assert c.read_response().body == b"Hello, World!\n"


def test_expect_100_chunked(routes):
    with routes.connect() as c:
        c.send(b"POST /expect_read?delay=0.2 HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100
        c.send(chunked_body([b"abc", b"defg"]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"read 7"


def test_expect_100_not_sent_when_app_does_not_read(routes):
    with routes.connect() as c:
        c.send(b"POST /expect_noread HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
               b"Expect: 100-continue\r\n\r\n")
        c.settimeout(5)
        r = c.read_response(skip_interim=False)
        assert r.status == 403, "expected the final response, got %r" % r
        assert r.body == b"did not read"


def test_expect_100_not_sent_to_http10(routes):
    with routes.connect() as c:
        c.send(b"POST /expect_read?delay=0 HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\n\r\nabc")
        r = c.read_response(skip_interim=False)
        assert r.status == 200 and r.body == b"read 3"


def test_expect_100_body_sent_anyway(routes):
    """A client that does not wait for 100 and sends the body at once."""
    with routes.connect() as c:
        c.send(b"POST /expect_read?delay=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\n\r\nxyz")
        r = c.read_response()  # a 100 may or may not precede it
        assert r.status == 200 and r.body == b"read 3"
        c.send(raw_request("GET", "/hello"))
        assert c.read_response().body == b"Hello, World!\n"


# ---------------------------------------------------- unread request bodies

def _smuggle(routes, marker, chunked, follow=True, pad=0):
    smuggled = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % marker.encode()
    payload = smuggled + b"P" * pad
    if chunked:
        req = (b"POST /ignore_body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked_body([payload]))
    else:
        req = (b"POST /ignore_body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(payload) + payload)
    after = b"/after-" + marker.encode()
    with routes.connect() as c:
        c.send(req)
        r = c.read_response()
        assert r.status == 200 and r.body == b"ignored"
        if follow and not c.is_closed(0.3):
            c.try_send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % after)
            try:
                r2 = c.read_response()
            except Exception:
                r2 = None
            if r2 is not None:
                assert r2.body == b"not found: " + after, \
                    "next response on the connection was %r" % r2.body
    time.sleep(0.3)
    seen = seen_paths(routes)
    assert "/" + marker not in seen, "the unread body was parsed as a request"


def test_unread_body_not_parsed_as_request_cl(routes):
    _smuggle(routes, "smuggled-cl", chunked=False)


def test_unread_body_not_parsed_as_request_chunked(routes):
    _smuggle(routes, "smuggled-chunked", chunked=True)


def test_unread_large_body_not_parsed_as_request(routes):
    _smuggle(routes, "smuggled-large", chunked=False, pad=300000)


def test_unread_body_pipelined(routes):
    """The smuggled bytes and a real next request arrive in one packet."""
    payload = b"GET /smuggled-pipe HTTP/1.1\r\nHost: x\r\n\r\n"
    req = (b"POST /ignore_body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
           % len(payload) + payload + b"GET /after-pipe HTTP/1.1\r\nHost: x\r\n\r\n")
    with routes.connect() as c:
        c.send(req)
        r = c.read_response()
        assert r.body == b"ignored"
        try:
            r2 = c.read_response()
        except Exception:
            r2 = None
        if r2 is not None:
            assert r2.body == b"not found: /after-pipe", r2.body
    time.sleep(0.3)
    assert "/smuggled-pipe" not in seen_paths(routes)


@pytest.mark.parametrize("chunked", [False, True])
def test_partially_read_body_not_parsed_as_request(routes, chunked):
    """The app reads 5 bytes of a body whose remainder looks like a request."""
    rest = b"GET /smuggled-partial-%d HTTP/1.1\r\nHost: x\r\n\r\n" % chunked
    payload = b"12345" + rest
    if chunked:
        req = (b"POST /read_partial?n=5 HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunked_body([payload[:8], payload[8:]]))
    else:
        req = (b"POST /read_partial?n=5 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(payload) + payload)
    with routes.connect() as c:
        c.send(req + b"GET /after-partial HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"partial:12345"
        try:
            r2 = c.read_response()
        except Closed:
            r2 = None
        if r2 is not None:
            assert r2.body == b"not found: /after-partial", r2.body
    time.sleep(0.3)
    assert "/smuggled-partial-%d" % chunked not in seen_paths(routes)


def test_input_read_while_streaming_response(routes):
    body = b"".join(b"line %d\n" % i for i in range(2000))
    for chunked in (False, True):
        with routes.connect() as c:
            if chunked:
                c.send(raw_request("POST", "/stream_echo", [("Transfer-Encoding", "chunked")])
                       + chunked_body([body[i:i + 777] for i in range(0, len(body), 777)]))
            else:
                c.send(raw_request("POST", "/stream_echo", body=body))
            r = c.read_response()
            assert r.status == 200 and r.complete
            assert r.body == b"start\n" + body + b"end\n"
            c.send(raw_request("GET", "/hello"))
            assert c.read_response().body == b"Hello, World!\n"


def test_input_read_while_streaming_response_interactive(routes):
    """Each body line is echoed before the client sends the next one."""
    with routes.connect(timeout=5) as c:
        c.send(raw_request("POST", "/stream_echo", [("Transfer-Encoding", "chunked")]))
        head = c.read_head()
        assert head.status == 200
        got = b""

        def read_until(want):
            nonlocal got
            while want not in got:
                line = c.read_line()
                size = int(line.strip(), 16)
                got += c.read_exact(size)
                assert c.read_exact(2) == b"\r\n"
        read_until(b"start\n")
        for i in range(5):
            line = b"ping %d\n" % i
            c.send(b"%x\r\n" % len(line) + line + b"\r\n")
            read_until(line)
        c.send(b"0\r\n\r\n")
        read_until(b"end\n")
        assert c.read_line() == b"0\r\n"


# ------------------------------------------ whole / line by line / bytewise

REQS = {
    "get": raw_request("GET", "/split/path?a=1&b=two",
                       [("X-One", "1"), ("X-Two", "two words"), ("Accept", "*/*")]),
    "post_cl": raw_request("POST", "/split/post?x=y",
                           [("Content-Type", "text/plain"), ("X-A", "a")],
                           body=b"line1\nline2\r\nline3"),
    "post_chunked": (raw_request("POST", "/split/chunked",
                                 [("Content-Type", "text/plain"),
                                  ("Transfer-Encoding", "chunked")])
                     + chunked_body([b"abc\n", b"\r\n", b"defghij" * 3])),
}


def _environ_via(server, raw, mode):
    with server.connect() as c:
        if mode == "whole":
            c.send(raw)
        elif mode == "lines":
            c.send_lines(raw, delay=0.01)
        else:
            c.send_bytewise(raw, delay=0.001)
        r = c.read_response()
        assert r.status == 200, r
        d = r.json()
        d["environ"].pop("REMOTE_PORT", None)
        return d


@pytest.mark.parametrize("name", sorted(REQS))
def test_split_requests_same_environ(echo, name):
    raw = REQS[name]
    whole = _environ_via(echo, raw, "whole")
    lines = _environ_via(echo, raw, "lines")
    byte = _environ_via(echo, raw, "bytes")
    assert whole == lines
    assert whole == byte
    if name != "get":
        assert whole["body_len"] > 0


def test_split_two_requests_bytewise_keepalive(echo):
    raw = REQS["post_cl"] + REQS["get"]
    with echo.connect() as c:
        c.send_bytewise(raw, delay=0.0005)
        r1, r2 = c.read_responses(2)
    assert r1.json()["body"] == "line1\nline2\r\nline3"
    assert r2.json()["environ"]["PATH_INFO"] == "/split/path"


# ------------------------------------------------------------ misc

def test_absolute_form_target(echo):
    with echo.connect() as c:
        c.send(b"GET http://example.com/abs/path?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    env = r.json()["environ"]
    assert env["PATH_INFO"] == "/abs/path"
    assert env["QUERY_STRING"] == "q=1"


def test_http11_response_version(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/hello"))
        r = c.read_response()
    assert r.version == "HTTP/1.1"


def test_lf_only_line_endings_tolerated_or_rejected(routes):
    """Bare-LF requests: either served or rejected with 400, never a hang."""
    with routes.connect(timeout=5) as c:
        c.send(b"GET /hello HTTP/1.1\nHost: x\n\n")
        r = c.read_response()
    assert r.status in (200, 400)
