"""wsgi.input: Content-Length and chunked bodies, every read method, large
uploads, and cooperative waiting for slow bodies."""

import hashlib
import io
import threading
import time

import pytest
import requests

from conftest import chunked_body, pattern_bytes, raw_request

BODY = (b"first line\n"
        b"second line is a good deal longer than the first one\n"
        b"\n"
        b"x\n"
        b"tail without newline")


def post(server, target, body, chunked=False, pieces=None, delay=0.0, headers=()):
    c = server.connect()
    try:
        hdrs = list(headers)
        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
            head = raw_request("POST", target, hdrs)
            c.send(head)
            parts = pieces or [body]
            enc = chunked_body(parts)
            if delay:
                # send each chunk frame separately, with pauses
                frames = [b"%x\r\n" % len(p) + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]
                c.send_pieces(frames, delay)
            else:
                c.send(enc)
        else:
            hdrs.append(("Content-Length", str(len(body))))
            head = raw_request("POST", target, hdrs)
            c.send(head)
            if delay and pieces:
                c.send_pieces(pieces, delay)
            else:
                c.send(body)
        r = c.read_response()
        assert r.status == 200, (r, r.body[:300])
        return r.json()
    finally:
        c.close()


def ref_readlines_limit(data, limit):
    b = io.BytesIO(data)
    out = []
    while True:
        ln = b.readline(limit) if limit is not None else b.readline()
        if not ln:
            return out
        out.append(ln)


def lat(xs):
    return [x.decode("latin-1") for x in xs]


MODES = ["cl", "chunked", "chunked_slow"]


def send_mode(server, target, body, mode):
    if mode == "cl":
        return post(server, target, body)
    if mode == "chunked":
        return post(server, target, body, chunked=True,
                    pieces=[body[:7], body[7:30], body[30:]])
    if mode == "chunked_slow":
        return post(server, target, body, chunked=True,
                    pieces=[body[:3], body[3:40], body[40:41], body[41:]], delay=0.05)
    if mode == "cl_slow":
        return post(server, target, body, pieces=[body[:5], body[5:60], body[60:]],
                    delay=0.05)
    raise ValueError(mode)


@pytest.mark.parametrize("mode", MODES + ["cl_slow"])
@pytest.mark.parametrize("n", [1, 7, 64, 100000])
def test_read_n(routes_server, mode, n):
    res = send_mode(routes_server, "/input?op=read_n&n=%d" % n, BODY, mode)
    assert res["data"] == BODY.decode("latin-1")
    assert res["len"] == len(BODY)
    assert all(0 < s <= n for s in res["sizes"]), res["sizes"]
    assert sum(res["sizes"]) == len(BODY)


@pytest.mark.parametrize("mode", MODES)
def test_read_all(routes_server, mode):
    res = send_mode(routes_server, "/input?op=read_all", BODY, mode)
    assert res["data"] == BODY.decode("latin-1")
    assert res["again"] == ""


@pytest.mark.parametrize("mode", MODES + ["cl_slow"])
@pytest.mark.parametrize("limit", [None, 1, 5, 11, 12, 1000])
def test_readline(routes_server, mode, limit):
    q = "/input?op=readline" + ("&limit=%d" % limit if limit is not None else "")
    res = send_mode(routes_server, q, BODY, mode)
    assert res["lines"] == lat(ref_readlines_limit(BODY, limit))


@pytest.mark.parametrize("mode", MODES)
def test_readlines(routes_server, mode):
    res = send_mode(routes_server, "/input?op=readlines", BODY, mode)
    assert res["lines"] == lat(io.BytesIO(BODY).readlines())


@pytest.mark.parametrize("mode", MODES)
def test_iteration(routes_server, mode):
    res = send_mode(routes_server, "/input?op=iter", BODY, mode)
    assert res["lines"] == lat(list(io.BytesIO(BODY)))


@pytest.mark.parametrize("mode", MODES)
def test_mixed_reads(routes_server, mode):
    res = send_mode(routes_server, "/input?op=mixed", BODY, mode)
    b = io.BytesIO(BODY)
    expect = [b.readline(), b.read(5), b.readline(3), b.read()]
    assert res["parts"] == lat(expect)


@pytest.mark.parametrize("mode", MODES)
def test_read_past_end(routes_server, mode):
    res = send_mode(routes_server, "/input?op=past_end", BODY, mode)
    assert res["data"] == BODY.decode("latin-1")
    assert res["after_read_n"] == ""
    assert res["after_read"] == ""
    assert res["after_readline"] == ""
    assert res["after_readlines"] == []


def test_empty_body_content_length_zero(routes_server):
    res = post(routes_server, "/input?op=past_end", b"")
    assert res["len"] == 0
    assert res["after_read"] == ""


def test_get_without_body_reads_empty(routes_server):
    """read() on a request without a body returns b'' at once (no hang)."""
    c = routes_server.connect(timeout=5)
    t0 = time.monotonic()
    c.send(b"GET /input?op=read_all HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert r.json()["len"] == 0
    assert time.monotonic() - t0 < 2


def test_chunked_with_extensions_and_trailers(routes_server):
    c = routes_server.connect()
    c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;name=value\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 200
    assert r.json()["data"] == "abcdefg"
    # the connection is still usable afterwards
    c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().body == b"Hello, World!\n"
    c.close()


def test_chunked_uppercase_hex_sizes(routes_server):
    data = b"Z" * 0x1A + b"y" * 0xFF
    c = routes_server.connect()
    c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"1A\r\n" + data[:0x1A] + b"\r\nfF\r\n" + data[0x1A:] + b"\r\n0\r\n\r\n")
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert r.json()["len"] == len(data)


def test_upload_5mib_content_length(routes_server):
    data = pattern_bytes(5 << 20, seed=3)
    r = requests.post(routes_server.url + "/input?op=read_n&n=65536", data=data, timeout=30)
    assert r.status_code == 200
    res = r.json()
    assert res["len"] == len(data)
    assert res["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_5mib_read_all(routes_server):
    data = pattern_bytes(5 << 20, seed=4)
    r = requests.post(routes_server.url + "/input?op=read_all", data=data, timeout=30)
    assert r.status_code == 200
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_5mib_chunked(routes_server):
    data = pattern_bytes(5 << 20, seed=5)

    def gen():
        for i in range(0, len(data), 100003):
            yield data[i:i + 100003]
    r = requests.post(routes_server.url + "/input?op=read_n&n=10000", data=gen(), timeout=30)
    assert r.status_code == 200
    res = r.json()
    assert res["len"] == len(data)
    assert res["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_readline_large(routes_server):
    lines = [b"%d:" % i + b"q" * (i % 300) + b"\n" for i in range(20000)]
    data = b"".join(lines)
    r = requests.post(routes_server.url + "/input?op=readline&limit=100", data=data,
                      timeout=30)
    assert r.status_code == 200
    res = r.json()
    assert res["len"] == len(data)
    assert res["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(res["lines"]) == len(ref_readlines_limit(data, 100))


def _slow_body_while_others_served(server, chunked):
    body = b"s" * 3000
    c = server.connect(timeout=15)
    if chunked:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        c.send(b"%x\r\n" % 1000 + body[:1000] + b"\r\n")
    else:
        c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body))
        c.send(body[:1000])
    time.sleep(0.2)  # the app is now blocked in read()
    # other requests are served while that request waits for its body
    for i in range(5):
        t0 = time.monotonic()
        status, _, b = server.get("/hello", timeout=5)
        assert status == 200 and b == b"Hello, World!\n"
        assert time.monotonic() - t0 < 1.0
    c.settimeout(0.3)
    # and no response for the slow request yet
    import socket
    with pytest.raises(socket.timeout):
        c.sock.recv(1)
    c.settimeout(15)
    if chunked:
        c.send(b"%x\r\n" % 2000 + body[1000:] + b"\r\n")
        time.sleep(0.2)
        c.send(b"0\r\n\r\n")
    else:
        c.send(body[1000:2000])
        time.sleep(0.2)
        c.send(body[2000:])
    r = c.read_response()
    c.close()
    assert r.status == 200
    res = r.json()
    assert res["len"] == 3000 and res["data"] == body.decode()


def test_slow_body_does_not_block_others(routes_server):
    _slow_body_while_others_served(routes_server, chunked=False)


def test_slow_chunked_body_does_not_block_others(routes_server):
    _slow_body_while_others_served(routes_server, chunked=True)


def test_many_slow_uploads_in_parallel(routes_server):
    """10 uploads trickling in at once finish in about the time of one."""
    n = 10
    results = [None] * n
    errors = []

    def worker(i):
        try:
            body = (b"%02d" % i) * 500
            c = routes_server.connect(timeout=20)
            c.send(b"POST /input?op=read_n&n=100 HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
            for k in range(0, len(body), 100):
                c.send(body[k:k + 100])
                time.sleep(0.05)
            r = c.read_response()
            c.close()
            results[i] = (r.status, r.json()["sha256"] == hashlib.sha256(body).hexdigest())
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert results == [(200, True)] * n
    # each upload takes ~0.5 s of sending; serial would be >= 5 s
    assert elapsed < 3.0, elapsed


def test_body_read_across_keepalive(routes_server):
    """Several POSTs with bodies on one connection; each sees only its own body."""
    c = routes_server.connect()
    for i in range(5):
        body = (b"req%d-" % i) * (i * 50 + 1)
        c.send(raw_request("POST", "/input?op=read_all", body=body))
        r = c.read_response()
        assert r.status == 200
        assert r.json()["data"] == body.decode()
    c.close()


def test_chunk_sizes_with_leading_zeros(routes_server):
    c = routes_server.connect()
    c.send(b"POST /input?op=read_all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0005\r\nabcde\r\n00\r\n\r\n")
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert r.json()["data"] == "abcde"


def test_many_tiny_chunks(routes_server):
    data = pattern_bytes(20000, seed=9)
    raw = (b"POST /input?op=read_n&n=1000 HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           + chunked_body([data[i:i + 1] for i in range(len(data))]))
    c = routes_server.connect(timeout=20)
    c.send(raw)
    r = c.read_response()
    c.close()
    assert r.status == 200
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("chunked", [False, True])
def test_readline_very_long_line(routes_server, chunked):
    data = b"L" * (1 << 20) + b"\nshort\n"
    c = routes_server.connect(timeout=20)
    if chunked:
        c.send(raw_request("POST", "/input?op=readline", [("Transfer-Encoding", "chunked")])
               + chunked_body([data[i:i + 65536] for i in range(0, len(data), 65536)]))
    else:
        c.send(raw_request("POST", "/input?op=readline", body=data))
    r = c.read_response()
    c.close()
    assert r.status == 200
    res = r.json()
    assert [len(x) for x in res["lines"]] == [(1 << 20) + 1, 6]


def test_kept_input_reads_nothing_of_a_later_request(routes_server):
    """srv hands each keep-alive connection's requests the same wsgi.input
    object while the app keeps no reference to it: one that an app did keep
    from an earlier request reads b"", on the same connection and on
    another, and the later request's body goes to its own wsgi.input."""
    c = routes_server.connect()
    try:
        c.send(raw_request("POST", "/keep-input", body=b"first-body"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"kept input", r
        for conn in (c, None):
            own = conn is None
            conn = conn or routes_server.connect()
            try:
                conn.send(raw_request("POST", "/read-kept-input", body=b"second-body"))
                r = conn.read_response()
            finally:
                if own:
                    conn.close()
            assert r.status == 200, r
            assert r.json() == {"kept": "", "own": "second-body"}
    finally:
        c.close()
