"""routes.app wrapped in wsgiref.validate.validator: the validator checks
srv's side of PEP 3333 (environ, start_response, write, wsgi.input,
close()) on every request; any violation becomes an AssertionError (500 and
a logged traceback) or a warning on stderr."""

import hashlib
import os
import time

import pytest

from conftest import chunked_body, pattern_bytes, raw_request, wait_for


@pytest.fixture(scope="module")
def vsrv(module_server_factory):
    return module_server_factory("validated_app:app")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("vfiles") / "v.bin"
    data = pattern_bytes(500000, seed=21)
    p.write_bytes(data)
    return str(p), data


BAD_WORDS = ("AssertionError", "VALIDATOR-WARNING", "Traceback", "WSGIWarning")


_MARK = {}


@pytest.fixture(autouse=True)
def _stderr_mark(request):
    """Remember where srv's stderr was when the test started, so that each
    test only looks at what it caused."""
    if "vsrv" in request.fixturenames:
        srv = request.getfixturevalue("vsrv")
        _MARK[id(srv)] = len(srv.stderr_text())
    yield


def assert_clean(server):
    # give __del__-time validator checks (close() not called) a chance to run
    time.sleep(0.1)
    text = server.stderr_text()[_MARK.get(id(server), 0):]
    for w in BAD_WORDS:
        assert w not in text, "validator complained:\n%s" % text


def roundtrip(server, raw, method="GET"):
    with server.connect() as c:
        c.send(raw)
        r = c.read_response(method=method)
    return r


def test_validator_get(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/hello?x=1", [("X-Some", "h")]))
    assert r.status == 200, (r, vsrv.stderr_text())
    assert r.body == b"Hello, World!\n"
    assert_clean(vsrv)


def test_validator_get_http10(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/hello", version="HTTP/1.0"))
    assert r.status == 200, vsrv.stderr_text()
    assert_clean(vsrv)


def test_validator_post_read_n(vsrv):
    body = pattern_bytes(100000, seed=1)
    r = roundtrip(vsrv, raw_request("POST", "/input?op=read_n&n=4096", body=body))
    assert r.status == 200, vsrv.stderr_text()
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert_clean(vsrv)


def test_validator_post_readline_and_iter(vsrv):
    body = b"one\ntwo\nthree"
    for op in ("readline&limit=2", "readline", "readlines", "iter"):
        r = roundtrip(vsrv, raw_request("POST", "/input?op=" + op, body=body))
        assert r.status == 200, (op, vsrv.stderr_text())
        assert "".join(r.json()["lines"]) == body.decode()
    assert_clean(vsrv)


def test_validator_chunked_body(vsrv):
    raw = (raw_request("POST", "/input?op=read_n&n=7", [("Transfer-Encoding", "chunked")])
           + chunked_body([b"hello ", b"chunked ", b"world"]))
    r = roundtrip(vsrv, raw)
    assert r.status == 200, vsrv.stderr_text()
    assert r.json()["data"] == "hello chunked world"
    assert_clean(vsrv)


def test_validator_head(vsrv):
    with vsrv.connect() as c:
        c.send(raw_request("HEAD", "/head") + raw_request("GET", "/hello"))
        r = c.read_response(method="HEAD")
        assert r.status == 200, vsrv.stderr_text()
        assert c.read_response().body == b"Hello, World!\n"
    assert_clean(vsrv)


def test_validator_streaming(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/gen?n=5&id=v1"))
    assert r.status == 200
    assert r.body == b"".join(b"chunk-%d\n" % i for i in range(1, 6))
    assert wait_for(lambda: os.path.exists(vsrv.state_path("closed-v1")), 3)
    assert_clean(vsrv)


def test_validator_write_callable(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/write"))
    assert r.status == 200, vsrv.stderr_text()
    assert r.body == b"write1-write2-iter1-iter2"
    assert_clean(vsrv)


def test_validator_file_wrapper(vsrv, data_file):
    path, data = data_file
    r = roundtrip(vsrv, raw_request("GET", "/file?path=%s&id=vf&cl=1" % path))
    assert r.status == 200, vsrv.stderr_text()
    assert r.body == data
    r = roundtrip(vsrv, raw_request("GET", "/filelike?size=20000&id=vb"))
    assert r.status == 200
    assert r.body == pattern_bytes(20000, seed=7)
    assert_clean(vsrv)


def test_validator_keepalive_and_pipelining(vsrv):
    with vsrv.connect() as c:
        c.send(raw_request("GET", "/hello") + raw_request("POST", "/input?op=read_n&n=3",
                                                          body=b"abcdef")
               + raw_request("GET", "/gen?n=2&id=v2"))
        r1, r2, r3 = c.read_responses(3)
    assert [r1.status, r2.status, r3.status] == [200, 200, 200], vsrv.stderr_text()
    assert r2.json()["data"] == "abcdef"
    assert_clean(vsrv)


def test_validator_exc_info_replace(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/exc_info_replace"))
    assert r.status == 503, vsrv.stderr_text()
    assert_clean(vsrv)


def test_validator_not_found(vsrv):
    r = roundtrip(vsrv, raw_request("GET", "/does/not/exist?q=%20"))
    assert r.status == 404
    assert_clean(vsrv)
