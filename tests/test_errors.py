"""Application errors, invalid responses from the app, and malformed or
oversized requests.  After every error the server keeps serving."""

import os

import pytest

from conftest import raw_request, wait_for


@pytest.fixture(scope="module")
def routes(module_server_factory):
    return module_server_factory("routes:app")


@pytest.fixture(scope="module")
def limited(module_server_factory):
    return module_server_factory("routes:app", "--max-body", "1000")


def request(server, raw, method="GET", allow_incomplete=False):
    c = server.connect()
    c.send(raw)
    r = c.read_response(method=method, allow_incomplete=allow_incomplete)
    return c, r


def stderr_grows(server, before, needle=None, timeout=3.0):
    def check():
        text = server.stderr_text()
        new = text[before:]
        if needle is None:
            return new.strip() != ""
        return needle in new
    return wait_for(check, timeout)


# ----------------------------------------------------------- app exceptions

def test_exception_before_start_response(routes):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/raise_before"))
    assert r.status == 500
    assert len(r.body) < 1024
    assert b"Traceback" not in r.body and b"MARKER" not in r.body
    assert r.header("Content-Length") is not None or r.chunked
    c.close()
    assert stderr_grows(routes, mark, "boom-before-start-response-MARKER"), routes.stderr_text()
    assert "Traceback" in routes.stderr_text()[mark:]
    routes.assert_healthy()


def test_500_keeps_connection_usable_or_closes_cleanly(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/raise_before"))
        r = c.read_response()
        assert r.status == 500 and r.complete
        if not c.is_closed(0.3):
            c.send(raw_request("GET", "/hello"))
            assert c.read_response().body == b"Hello, World!\n"


def test_exception_after_start_response_before_body(routes):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/raise_after_start"))
    c.close()
    assert r.status == 500
    assert r.header("X-Should-Not-Appear") is None
    assert stderr_grows(routes, mark, "boom-after-start-response-MARKER")
    routes.assert_healthy()


def test_exception_in_first_next(routes):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/raise_in_first_next?id=e1"))
    c.close()
    assert r.status == 500
    assert r.header("X-Should-Not-Appear") is None
    assert stderr_grows(routes, mark, "boom-in-first-next-MARKER")
    routes.assert_healthy()


def test_exception_after_headers_chunked_truncated(routes):
    mark = len(routes.stderr_text())
    with routes.connect() as c:
        c.send(raw_request("GET", "/raise_after_headers?id=e2"))
        r = c.read_response(allow_incomplete=True)
        assert r.status == 200
        assert r.chunked
        assert r.body.startswith(b"chunk-1\nchunk-2\n")
        assert not r.complete, "a truncated response must not end with the 0-size chunk"
        assert c.is_closed(3)
    assert stderr_grows(routes, mark, "boom-in-iteration-MARKER")
    routes.assert_healthy()


def test_exception_after_headers_content_length_truncated(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/raise_after_headers_cl?id=e3"))
        r = c.read_response(allow_incomplete=True)
        assert r.status == 200
        assert r.header("Content-Length") == "1000"
        assert not r.complete
        assert c.is_closed(3)
    routes.assert_healthy()


def test_exception_after_headers_http10(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/raise_after_headers?id=e4", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"chunk-1\nchunk-2\n"
    routes.assert_healthy()


def test_requests_sees_truncation(routes):
    import requests
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(routes.url + "/raise_after_headers?id=e5", timeout=5).content
    routes.assert_healthy()


def test_exc_info_replaces_headers(routes):
    c, r = request(routes, raw_request("GET", "/exc_info_replace"))
    c.close()
    assert r.status == 503
    assert r.header("X-Second") == "1"
    assert r.header("X-First") is None
    assert r.body == b"replaced"


def test_exc_info_after_headers_reraises(routes):
    mark = len(routes.stderr_text())
    with routes.connect() as c:
        c.send(raw_request("GET", "/exc_info_after_headers?id=x1"))
        r = c.read_response(allow_incomplete=True)
        assert r.status == 200
        assert r.body.startswith(b"partial-")
        assert b"should-not-appear" not in r.body
        assert not r.complete
        assert c.is_closed(3)
    assert wait_for(lambda: os.path.exists(routes.state_path("reraised-x1")), 3), \
        "start_response(..., exc_info) after headers were sent did not re-raise"
    assert not os.path.exists(routes.state_path("not-reraised-x1"))
    assert stderr_grows(routes, mark, "late-error-MARKER")
    routes.assert_healthy()


def test_start_response_twice_without_exc_info(routes):
    c, r = request(routes, raw_request("GET", "/start_twice?id=t1"))
    c.close()
    assert r.status == 500, r
    assert os.path.exists(routes.state_path("twice-raised-t1"))
    routes.assert_healthy()


def test_no_start_response(routes):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/no_start_response"))
    c.close()
    assert r.status == 500
    assert b"body without start_response" not in r.body
    assert stderr_grows(routes, mark)
    routes.assert_healthy()


@pytest.mark.parametrize("target", ["/bad_body", "/bad_iterable"])
def test_bad_body_types(routes, target):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", target))
    c.close()
    assert r.status == 500
    assert stderr_grows(routes, mark)
    routes.assert_healthy()


# ---------------------------------------------- invalid status / headers

@pytest.mark.parametrize("kind", ["noreason", "alpha", "short", "crlf", "lf", "bytes",
                                  "nonlatin", "int"])
def test_invalid_status(routes, kind):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/bad_status?kind=" + kind))
    c.close()
    assert r.status == 500, r
    assert r.header("X-Injected") is None
    assert b"should-not-be" not in r.body
    assert stderr_grows(routes, mark), "no error logged for bad status %r" % kind
    routes.assert_healthy()


@pytest.mark.parametrize("kind", ["crlf_value", "lf_value", "cr_value", "crlf_name",
                                  "colon_name", "space_name", "empty_name", "int_value",
                                  "bytes_value", "bytes_name", "nonlatin_value",
                                  "nonlatin_name", "not_pair", "not_list", "none"])
def test_invalid_headers(routes, kind):
    mark = len(routes.stderr_text())
    c, r = request(routes, raw_request("GET", "/bad_header?kind=" + kind))
    c.close()
    assert r.status == 500, r
    assert r.header("X-Injected") is None
    assert b"should-not-be" not in r.body
    assert stderr_grows(routes, mark), "no error logged for bad headers %r" % kind
    routes.assert_healthy()


def test_wsgi_errors_goes_to_stderr(routes):
    status, _, body = routes.get("/errors?m=abc123")
    assert status == 200 and body == b"logged"
    assert wait_for(lambda: "wsgi-errors-marker-abc123" in routes.stderr_text(), 3)


# --------------------------------------------------------- bad requests

def assert_error_and_closed(server, raw, status, send_all=True):
    with server.connect() as c:
        if send_all:
            c.try_send(raw)
        r = c.read_response()
        assert r.status == status, "expected %d, got %r %r" % (status, r, r.body[:200])
        assert c.is_closed(3), "connection not closed after %d" % status
    server.assert_healthy()
    return r


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"GET /has space HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
], ids=["garbage", "no-colon", "bad-cl", "dup-cl", "bad-chunk-size", "space-in-uri",
        "nul-in-name"])
def test_malformed_request_400(routes, raw):
    r = assert_error_and_closed(routes, raw, 400)
    assert len(r.body) < 1024


def test_malformed_after_good_request_on_same_connection(routes):
    with routes.connect() as c:
        c.send(raw_request("GET", "/hello") + b"BROKEN REQUEST LINE\r\n\r\n")
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"Hello, World!\n"
        r2 = c.read_response()
        assert r2.status == 400
        assert c.is_closed(3)


def test_header_section_too_large_431(routes):
    big = b"X-Big: " + b"a" * (100 * 1024) + b"\r\n"
    raw = b"GET /hello HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n"
    assert_error_and_closed(routes, raw, 431)


def test_many_headers_too_large_431(routes):
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(1100))
    raw = b"GET /hello HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n"
    assert_error_and_closed(routes, raw, 431)


def test_uri_too_long_414(routes):
    raw = b"GET /" + b"u" * (100 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_error_and_closed(routes, raw, 414)


def test_query_too_long_414(routes):
    raw = b"GET /hello?" + b"q=1&" * (25 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_error_and_closed(routes, raw, 414)


def test_moderate_header_and_uri_accepted(routes):
    """4 KiB of header and a 2 KiB URI are normal and must be served."""
    with routes.connect() as c:
        c.send(b"GET /hello?" + b"a" * 2048 + b" HTTP/1.1\r\nHost: x\r\nX-Mid: "
               + b"m" * 4096 + b"\r\n\r\n")
        r = c.read_response()
        assert r.status == 200


def test_unknown_transfer_coding_501(routes):
    raw = b"POST /ignore_body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\nabc"
    assert_error_and_closed(routes, raw, 501)


@pytest.mark.parametrize("version", [b"HTTP/3.0", b"HTTP/2.0"])
def test_bad_http_version_505(routes, version):
    raw = b"GET /hello " + version + b"\r\nHost: x\r\n\r\n"
    assert_error_and_closed(routes, raw, 505)


# ------------------------------------------------------------- --max-body

def test_max_body_content_length_413(limited):
    raw = (b"POST /ignore_body HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
           + b"b" * 2000)
    before = len(_seen(limited))
    assert_error_and_closed(limited, raw, 413)
    assert "/ignore_body" not in _seen(limited)[before:], \
        "the app was called for a request over --max-body"


def test_max_body_413_without_sending_body(limited):
    """The 413 comes from the headers alone, without waiting for the body."""
    with limited.connect(timeout=5) as c:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413


def test_max_body_413_with_expect(limited):
    with limited.connect(timeout=5) as c:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response(skip_interim=False)
        assert r.status == 413


def test_max_body_at_limit_ok(limited):
    with limited.connect() as c:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
               + b"k" * 1000)
        r = c.read_response()
        assert r.status == 200
        assert r.json()["len"] == 1000


def test_max_body_chunked_over_limit(limited):
    body = b"".join(b"%x\r\n" % 500 + b"c" * 500 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    with limited.connect() as c:
        c.try_send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + body)
        r = c.read_response(allow_incomplete=True)
        assert r.status == 413, "chunked body of 2000 bytes over --max-body 1000: %r %r" % (
            r, r.body[:200])
    limited.assert_healthy()


def test_max_body_chunked_under_limit_ok(limited):
    body = b"".join(b"%x\r\n" % 300 + b"c" * 300 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    with limited.connect() as c:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + body)
        r = c.read_response()
        assert r.status == 200 and r.json()["len"] == 900


def _seen(server):
    p = server.state_path("seen.log")
    if not os.path.exists(p):
        return []
    return open(p).read().splitlines()


# --------------------------------------------------------- still alive

def test_server_survived_everything(routes, limited):
    for s in (routes, limited):
        assert s.alive()
        with s.connect() as c:
            c.send(raw_request("GET", "/hello") * 3)
            assert [r.status for r in c.read_responses(3)] == [200, 200, 200]
