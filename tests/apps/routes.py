"""The main test app, routed by PATH_INFO.  See each handler's docstring.

Every request's PATH_INFO is appended to $SRV_TEST_STATE/seen.log.
Markers (e.g. "an iterable's close() ran") are files in $SRV_TEST_STATE.
"""
import io
import json
import hashlib
import sys
import time

from _testdata import pattern_bytes, query, record

try:
    import srv
except ImportError:  # lets the module import under other servers
    srv = None


def _sleep(t):
    if srv is not None:
        srv.sleep(t)
    else:
        time.sleep(t)


def text(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def as_json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {}


def route(path):
    def deco(fn):
        ROUTES[path] = fn
        return fn
    return deco


# ---------------------------------------------------------------- basics

@route("/__health__")
@route("/hello")
def hello(environ, start_response):
    return text(start_response, b"Hello, World!\n")


@route("/list1")
def list1(environ, start_response):
    """One-element list, no Content-Length from the app."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"one element body"]


@route("/listn")
def listn(environ, start_response):
    """Three-element list, no Content-Length from the app."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"part1-", b"part2-", b"part3"]


@route("/cl")
def cl(environ, start_response):
    """Content-Length set by the app on a generator body."""
    def gen():
        yield b"0123456789"
        yield b"abcdefghij"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "20")])
    return gen()


@route("/cl_iter")
def cl_iter(environ, start_response):
    """Content-Length and a one-item iterator, as Flask's and Django's
    responses are: srv sees the body end only by its length."""
    body = b"framework-like body"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return iter([body])


@route("/empty")
def empty(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


@route("/custom_reason")
def custom_reason(environ, start_response):
    start_response("299 Custom Reason Here", [("Content-Type", "text/plain"),
                                              ("Content-Length", "2")])
    return [b"ok"]


@route("/multi_header")
def multi_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Set-Cookie", "a=1"),
                              ("Set-Cookie", "b=2"),
                              ("X-Multi", "x"),
                              ("Content-Length", "2")])
    return [b"ok"]


@route("/big_header")
def big_header(environ, start_response):
    """?size=N: one response header with an N-byte value."""
    size = int(query(environ).get("size", "50000"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Big", "v" * size),
                              ("Content-Length", "2")])
    return [b"ok"]


@route("/gc")
def gc_state(environ, start_response):
    import gc
    return text(start_response, "frozen %d enabled %s" % (gc.get_freeze_count(), gc.isenabled()))


@route("/version")
def version(environ, start_response):
    return text(start_response, srv.__version__)


@route("/sleep")
def sleep(environ, start_response):
    """?t=: srv.sleep(t); ?spin=: first keep the CPU busy that long without
    yielding (the loop's idea of "now" goes stale meanwhile)."""
    t = float(query(environ).get("t", "0.5"))
    spin_end = time.monotonic() + float(query(environ).get("spin", "0"))
    while time.monotonic() < spin_end:
        pass
    t0 = time.monotonic()
    _sleep(t)
    return text(start_response, "slept %.3f" % (time.monotonic() - t0))


@route("/errors")
def errors(environ, start_response):
    """Writes a marker to wsgi.errors."""
    err = environ["wsgi.errors"]
    err.write("wsgi-errors-marker-%s\n" % query(environ).get("m", "x"))
    err.flush()
    return text(start_response, b"logged")


# ------------------------------------------------------- streaming bodies

class ClosingIter:
    """Iterable (not a generator) that records close()."""

    def __init__(self, items, ident):
        self.items = items
        self.ident = ident

    def __iter__(self):
        return iter(self.items)

    def close(self):
        record("closed-" + self.ident)


@route("/closing_list")
def closing_list(environ, start_response):
    ident = query(environ).get("id", "x")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIter([b"closing-", b"list"], ident)


class Gen:
    """Generator-like iterable with a recording close()."""

    def __init__(self, ident, n=5, raise_at=None, delay=0.0, size=None,
                 total=None, first_raise=False):
        self.ident = ident
        self.n = n
        self.i = 0
        self.raise_at = raise_at
        self.delay = delay
        self.size = size
        self.total = total
        self.sent = 0
        self.first_raise = first_raise
        self.data = pattern_bytes(total) if total is not None else None

    def __iter__(self):
        return self

    def __next__(self):
        if self.first_raise:
            raise RuntimeError("boom-in-first-next-MARKER")
        if self.raise_at is not None and self.i == self.raise_at:
            raise RuntimeError("boom-in-iteration-MARKER")
        if self.data is not None:
            if self.sent >= len(self.data):
                raise StopIteration
            chunk = self.data[self.sent:self.sent + (self.size or 65536)]
            self.sent += len(chunk)
            self.i += 1
            if self.delay:
                _sleep(self.delay)
            return chunk
        if self.i >= self.n:
            raise StopIteration
        if self.delay and self.i:
            _sleep(self.delay)
        self.i += 1
        record("yielded-" + self.ident, ".")
        if self.size:
            return (b"%06d" % self.i) + b"x" * (self.size - 6)
        return b"chunk-%d\n" % self.i

    def close(self):
        record("closed-" + self.ident)


@route("/gen")
def gen(environ, start_response):
    """?n=5&id=X[&size=N][&delay=S]: generator of n chunks, no CL."""
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Gen(q.get("id", "gen"), n=int(q.get("n", "5")),
               size=int(q["size"]) if "size" in q else None,
               delay=float(q.get("delay", "0")))


@route("/gen_empty_chunks")
def gen_empty_chunks(environ, start_response):
    def g():
        yield b""
        yield b"a"
        yield b""
        yield b"b"
        yield b""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return g()


@route("/big")
def big(environ, start_response):
    """?size=N[&chunk=K][&id=X][&delay=S]: N bytes of pattern_bytes, streamed."""
    q = query(environ)
    size = int(q.get("size", str(8 << 20)))
    hdrs = [("Content-Type", "application/octet-stream")]
    if q.get("cl") == "1":
        hdrs.append(("Content-Length", str(size)))
    start_response("200 OK", hdrs)
    return Gen(q.get("id", "big"), total=size, size=int(q.get("chunk", "65536")),
               delay=float(q.get("delay", "0")))


@route("/biglist")
def biglist(environ, start_response):
    """?size=N: one-element list of N pattern bytes, no CL from the app."""
    size = int(query(environ).get("size", str(4 << 20)))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [pattern_bytes(size)]


@route("/write")
def write(environ, start_response):
    """write() callable then an iterable."""
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    w(b"write1-")
    w(b"write2-")
    return [b"iter1-", b"iter2"]


@route("/write_cl")
def write_cl(environ, start_response):
    w = start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "12")])
    w(b"write-")
    return [b"iter-!"]


@route("/write_only")
def write_only(environ, start_response):
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(3):
        w(b"w%d;" % i)
    return []


_KEPT = {}


@route("/keep-callables")
def keep_callables(environ, start_response):
    """Keeps this request's start_response and/or its write() (?what=sr,
    write or both) for /use-kept to call during a later request."""
    what = query(environ).get("what", "both")
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    _KEPT.clear()
    if what in ("sr", "both"):
        _KEPT["sr"] = start_response
    if what in ("write", "both"):
        _KEPT["write"] = w
    return [b"kept " + what.encode()]


@route("/use-kept")
def use_kept(environ, start_response):
    """Calls what /keep-callables kept, then answers through its own
    start_response and write(): JSON naming each outcome."""
    out = {}
    if "sr" in _KEPT:   # before this request's own start_response
        try:
            _KEPT["sr"]("500 Stolen", [])
            out["sr"] = "started"
        except Exception as e:  # noqa: BLE001 - the outcome is the answer
            out["sr"] = type(e).__name__
    w = start_response("200 OK", [("Content-Type", "application/json")])
    if "write" in _KEPT:   # after it, when a write() could send
        try:
            _KEPT["write"](b"LEAKED-INTO-ANOTHER-RESPONSE")
            out["write"] = "wrote"
        except Exception as e:  # noqa: BLE001
            out["write"] = type(e).__name__
    w(json.dumps(out, sort_keys=True).encode())
    return []


@route("/keep-input")
def keep_input(environ, start_response):
    """Keeps this request's wsgi.input for /read-kept-input."""
    _KEPT.clear()
    _KEPT["input"] = environ["wsgi.input"]
    return text(start_response, b"kept input")


@route("/read-kept-input")
def read_kept_input(environ, start_response):
    """Reads what the kept wsgi.input gives now (a finished request's: b""),
    then this request's own body: JSON {"kept": ..., "own": ...}."""
    kept = _KEPT["input"].read()
    n = int(environ.get("CONTENT_LENGTH") or 0)
    own = environ["wsgi.input"].read(n)
    return as_json(start_response, {"kept": kept.decode("latin-1"),
                                    "own": own.decode("latin-1")})


@route("/write_big")
def write_big(environ, start_response):
    """?size=N: the whole body goes through write(), 1 MiB at a time."""
    size = int(query(environ).get("size", str(8 << 20)))
    data = pattern_bytes(size)
    w = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for i in range(0, size, 1 << 20):
        w(data[i:i + (1 << 20)])
    return []


@route("/cl_too_long")
def cl_too_long(environ, start_response):
    """Declares Content-Length: 5 but produces 15 bytes."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"12345", b"EXTRA", b"bytes"]


@route("/cl_too_short")
def cl_too_short(environ, start_response):
    """Declares Content-Length: 100 but produces 10 bytes."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
    return [b"only", b"ten...", b""]


class CloseRaises:
    def __init__(self, ident):
        self.ident = ident

    def __iter__(self):
        yield b"body-"
        yield b"complete"

    def close(self):
        record("close-raised-" + self.ident)
        raise RuntimeError("close-raises-MARKER")


@route("/close_raises")
def close_raises(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return CloseRaises(query(environ).get("id", "cr"))


# ---------------------------------------------------------- HEAD / status

@route("/head")
def head(environ, start_response):
    return text(start_response, b"head-body-content", extra=[("X-Head-Test", "1")])


@route("/head_gen")
def head_gen(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Head-Test", "1")])
    return Gen(query(environ).get("id", "headgen"), n=3)


@route("/n")
def numbered(environ, start_response):
    """?i=: answers "n=<i>", so a client can tell pipelined answers apart."""
    return text(start_response, "n=%s\n" % query(environ).get("i", ""))


@route("/status")
def status(environ, start_response):
    """?code=204[&body=xyz][&gen=1]: bare status, optional (illegal) body."""
    q = query(environ)
    code = q.get("code", "204")
    reasons = {"204": "No Content", "304": "Not Modified", "200": "OK"}
    body = q.get("body", "").encode()
    start_response("%s %s" % (code, reasons.get(code, "Whatever")),
                   [("X-Status-Test", code)])
    if q.get("gen") == "1":
        def g():
            if body:
                yield body
        return g()
    return [body] if body else []


# ------------------------------------------------------------ file_wrapper

class RecFileIO(io.FileIO):
    ident = "file"

    def close(self):
        if not self.closed:
            record("closed-" + self.ident)
        super().close()


class RecBytesIO(io.BytesIO):
    ident = "bytesio"

    def close(self):
        if not self.closed:
            record("closed-" + self.ident)
        super().close()


@route("/file")
def file(environ, start_response):
    """?path=P[&id=X][&seek=N][&cl=1][&block=K]: file_wrapper over a real file."""
    q = query(environ)
    f = RecFileIO(q["path"], "r")
    f.ident = q.get("id", "file")
    import os
    size = os.fstat(f.fileno()).st_size
    seek = int(q.get("seek", "0"))
    if seek:
        f.seek(seek)
    hdrs = [("Content-Type", "application/octet-stream")]
    if q.get("cl") == "1":
        hdrs.append(("Content-Length", str(size - seek)))
    start_response("200 OK", hdrs)
    fw = environ["wsgi.file_wrapper"]
    if "block" in q:
        return fw(f, int(q["block"]))
    return fw(f)


@route("/filelike")
def filelike(environ, start_response):
    """?size=N[&id=X][&cl=1]: file_wrapper over an io.BytesIO (no fileno)."""
    q = query(environ)
    size = int(q.get("size", "100000"))
    f = RecBytesIO(pattern_bytes(size, seed=7))
    f.ident = q.get("id", "bytesio")
    hdrs = [("Content-Type", "application/octet-stream")]
    if q.get("cl") == "1":
        hdrs.append(("Content-Length", str(size)))
    start_response("200 OK", hdrs)
    return environ["wsgi.file_wrapper"](f, 8192)


# ----------------------------------------------------------- wsgi.input

def _lines(xs):
    return [x.decode("latin-1") for x in xs]


@route("/input")
def input_(environ, start_response):
    """?op=...: exercise wsgi.input; returns JSON."""
    q = query(environ)
    op = q.get("op", "read_all")
    inp = environ["wsgi.input"]
    res = {"op": op}
    if op == "read_n":
        n = int(q.get("n", "1000"))
        sizes, parts = [], []
        while True:
            d = inp.read(n)
            assert isinstance(d, bytes), type(d)
            if not d:
                break
            sizes.append(len(d))
            parts.append(d)
        data = b"".join(parts)
        res["sizes"] = sizes
    elif op == "read_all":
        data = inp.read()
        res["again"] = _lines([inp.read()])[0]
    elif op == "readline":
        limit = int(q["limit"]) if "limit" in q else None
        lines = []
        while True:
            line = inp.readline(limit) if limit is not None else inp.readline()
            if not line:
                break
            lines.append(line)
            if len(lines) > 100000:
                break
        data = b"".join(lines)
        res["lines"] = _lines(lines)
    elif op == "readlines":
        lines = inp.readlines()
        data = b"".join(lines)
        res["lines"] = _lines(lines)
    elif op == "iter":
        lines = [line for line in inp]
        data = b"".join(lines)
        res["lines"] = _lines(lines)
    elif op == "mixed":
        a = inp.readline()
        b = inp.read(5)
        c = inp.readline(3)
        d = inp.read()
        data = a + b + c + d
        res["parts"] = _lines([a, b, c, d])
    elif op == "past_end":
        cl = int(environ.get("CONTENT_LENGTH") or 0)
        data = inp.read(cl) if cl else inp.read()
        res["after_read_n"] = _lines([inp.read(10)])[0]
        res["after_read"] = _lines([inp.read()])[0]
        res["after_readline"] = _lines([inp.readline()])[0]
        res["after_readlines"] = _lines(inp.readlines())
    else:
        return text(start_response, "unknown op", status="400 Bad Request")
    res["len"] = len(data)
    res["sha256"] = hashlib.sha256(data).hexdigest()
    if len(data) <= 65536:
        res["data"] = data.decode("latin-1")
    return as_json(start_response, res)


@route("/read_partial")
def read_partial(environ, start_response):
    """Reads only ?n bytes of the body (default 5) and returns them."""
    n = int(query(environ).get("n", "5"))
    data = environ["wsgi.input"].read(n)
    return text(start_response, b"partial:" + data)


@route("/stream_echo")
def stream_echo(environ, start_response):
    """Starts the response, then reads the body line by line while
    streaming each line back (input reads interleaved with output)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        inp = environ["wsgi.input"]
        yield b"start\n"
        while True:
            line = inp.readline()
            if not line:
                break
            yield line
        yield b"end\n"
    return gen()


@route("/ignore_body")
def ignore_body(environ, start_response):
    return text(start_response, b"ignored")


@route("/expect_read")
def expect_read(environ, start_response):
    """Sleeps ?delay seconds (cooperatively), then reads the body."""
    delay = float(query(environ).get("delay", "0.5"))
    _sleep(delay)
    data = environ["wsgi.input"].read()
    return text(start_response, "read %d" % len(data))


@route("/expect_noread")
def expect_noread(environ, start_response):
    return text(start_response, b"did not read", status="403 Forbidden")


# --------------------------------------------------------------- errors

@route("/raise_before")
def raise_before(environ, start_response):
    raise RuntimeError("boom-before-start-response-MARKER")


@route("/raise_after_start")
def raise_after_start(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Should-Not-Appear", "1")])
    raise RuntimeError("boom-after-start-response-MARKER")


@route("/raise_in_first_next")
def raise_in_first_next(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Should-Not-Appear", "1")])
    return Gen(query(environ).get("id", "firstnext"), first_raise=True)


@route("/raise_after_headers")
def raise_after_headers(environ, start_response):
    """Yields two chunks, then raises (headers already sent)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Gen(query(environ).get("id", "rah"), n=10, raise_at=2)


@route("/raise_after_headers_cl")
def raise_after_headers_cl(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "1000")])
    return Gen(query(environ).get("id", "rahcl"), n=10, raise_at=2)


@route("/exc_info_replace")
def exc_info_replace(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
    try:
        raise ValueError("handled")
    except ValueError:
        start_response("503 Service Unavailable",
                       [("Content-Type", "text/plain"), ("X-Second", "1")],
                       sys.exc_info())
    return [b"replaced"]


@route("/exc_info_after_headers")
def exc_info_after_headers(environ, start_response):
    """Headers are sent (write()), then start_response(exc_info) must re-raise."""
    ident = query(environ).get("id", "eiah")
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    w(b"partial-")
    try:
        raise ValueError("late-error-MARKER")
    except ValueError:
        try:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        except ValueError:
            record("reraised-" + ident)
            raise
        record("not-reraised-" + ident)
    return [b"should-not-appear"]


@route("/start_twice")
def start_twice(environ, start_response):
    """start_response twice without exc_info: an error per PEP 3333."""
    ident = query(environ).get("id", "twice")
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        start_response("201 Created", [("Content-Type", "text/plain")])
    except Exception:
        record("twice-raised-" + ident)
        raise
    record("twice-accepted-" + ident)
    return [b"second start_response accepted"]


@route("/no_start_response")
def no_start_response(environ, start_response):
    return [b"body without start_response"]


BAD_STATUS = {
    "noreason": "200",
    "alpha": "abc OK",
    "short": "20 OK",
    "crlf": "200 OK\r\nX-Injected: 1",
    "lf": "200 OK\nX-Injected: 1",
    "bytes": b"200 OK",
    "nonlatin": "200 \u20ac",
    "int": 200,
}

BAD_HEADERS = {
    "crlf_value": [("X-A", "a\r\nX-Injected: 1")],
    "lf_value": [("X-A", "a\nX-Injected: 1")],
    "cr_value": [("X-A", "a\rX-Injected: 1")],
    "crlf_name": [("X-A\r\nX-Injected", "1")],
    "colon_name": [("X-A:B", "1")],
    "space_name": [("X A", "1")],
    "empty_name": [("", "1")],
    "int_value": [("X-A", 1)],
    "bytes_value": [("X-A", b"1")],
    "bytes_name": [(b"X-A", "1")],
    "nonlatin_value": [("X-A", "\u20ac")],
    "nonlatin_name": [("X-\u00e9\u20ac", "1")],
    "not_pair": [("X-A", "1", "2")],
    "not_list": "X-A: 1",
    "none": None,
}


@route("/bad_status")
def bad_status(environ, start_response):
    kind = query(environ)["kind"]
    start_response(BAD_STATUS[kind], [("Content-Type", "text/plain"),
                                      ("Content-Length", "13")])
    return [b"should-not-be"]


@route("/bad_header")
def bad_header(environ, start_response):
    kind = query(environ)["kind"]
    hdrs = BAD_HEADERS[kind]
    if isinstance(hdrs, list):
        hdrs = [("Content-Type", "text/plain")] + hdrs
    start_response("200 OK", hdrs)
    return [b"should-not-be"]


@route("/bad_body")
def bad_body(environ, start_response):
    """The iterable yields str (not bytes)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str is not bytes"]


@route("/bad_iterable")
def bad_iterable(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return 42


# ---------------------------------------------------------------- environ

_LAST_VALUES = {}


@route("/value-identity")
def value_identity(environ, start_response):
    """For each HTTP_* key: is its value the very str the previous request
    to this route had (srv shares repeated short header values)?"""
    same = {}
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            same[k] = _LAST_VALUES.get(k) is v
            _LAST_VALUES[k] = v
    return as_json(start_response, same)


# ------------------------------------------------------------------ app

def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    record("seen.log", path + "\n")
    handler = ROUTES.get(path)
    if handler is None:
        return text(start_response, "not found: " + path, status="404 Not Found")
    return handler(environ, start_response)
