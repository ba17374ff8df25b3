"""WebSocket (RFC 6455): the upgrade handshake, environ["wsgi.websocket"]
with gevent-websocket's API, framing, fragmentation, control frames, close
codes, limits, misbehaving clients, concurrency, graceful stop, and apps
written for gevent-websocket.

Clients are raw sockets (tests/wsclient.py) so that any frame, valid or
not, can be sent and everything the server sends is checked strictly; the
compatibility tests also use Debian's python3-websocket.  Apps are in
tests/apps/ws_app.py.

The core tests run in gevent mode and in --mode native.  With
WS_TEST_SERVER=gevent-websocket the tests not marked srv-only run against
gevent.pywsgi + geventwebsocket's WebSocketHandler instead: a check that
the tests themselves are right.
"""
import itertools
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import APPS_DIR, PYTHON, Server, free_port, raw_request, wait_for
import wsclient  # noqa: E402
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      ConnectionClosed, Reader, WSClient, accept_for, binary,
                      close_frame, close_payload, frame, handshake_request,
                      make_key, text)

AGAINST_GWS = os.environ.get("WS_TEST_SERVER") == "gevent-websocket"
srv_only = pytest.mark.skipif(AGAINST_GWS, reason="srv behaviour that gevent-websocket's "
                                                  "own server does not have")
MODES = ["gws"] if AGAINST_GWS else ["gevent", "native"]
GEVENT = "gws" if AGAINST_GWS else "gevent"
SLOW = 3.0 if os.environ.get("SRV_SANITIZED") else 1.0
MiB = 1 << 20

_tags = itertools.count()


def new_tag():
    return "t%d" % next(_tags)


# ---------------------------------------------------------------- servers

class GwsServer(Server):
    """The reference: tests/apps/ws_app.py run as a script, serving with
    gevent.pywsgi and geventwebsocket's WebSocketHandler."""

    def __init__(self, spec):
        self.app = spec
        self.state_dir = tempfile.mkdtemp(prefix="srv-test-state-")
        self.port = free_port()
        self.binds = ["127.0.0.1:%d" % self.port]
        self.host = "127.0.0.1"
        self.cmd = [PYTHON, str(APPS_DIR / "ws_app.py"), spec, str(self.port)]
        self._stderr = tempfile.NamedTemporaryFile(prefix="gws-stderr-", delete=False)
        self._stdout = tempfile.NamedTemporaryFile(prefix="gws-stdout-", delete=False)
        env = dict(os.environ, SRV_TEST_STATE=self.state_dir, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(self.cmd, cwd=str(APPS_DIR), env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._stdout,
                                     stderr=self._stderr)
        self.pid = self.proc.pid
        self.wait_ready()

    def worker_pid(self, timeout=10.0):
        return self.pid


@pytest.fixture(scope="module")
def pool(module_server_factory):
    """pool(mode, *extra_args, app=...) -> a server, started once per module."""
    cache = {}

    def get(mode, *extra, app="ws_app:app"):
        key = (mode, app) + extra
        if key not in cache:
            if mode == "gws":
                s = GwsServer(app.split(":", 1)[1])
                module_server_factory.servers.append(s)
            else:
                s = module_server_factory(app, "--mode", mode, *extra)
            s.warm_up("/http")
            cache[key] = s
        return cache[key]
    return get


@pytest.fixture(params=MODES)
def ws(request, pool):
    """The ws_app server, in gevent mode and in native mode."""
    return pool(request.param)


@pytest.fixture
def gsrv(pool):
    """The ws_app server in gevent mode."""
    return pool(GEVENT)


@pytest.fixture(params=MODES)
def compat(request, pool):
    """An unmodified gevent-websocket Resource app."""
    return pool(request.param, app="ws_app:make_compat_app()")


# ---------------------------------------------------------------- helpers

def connect(s, path="/echo", **kw):
    return WSClient.connect(s.host, s.port, path, **kw)


def raw_open(s, request_bytes, timeout=10.0):
    """Send a handshake request as given; returns (client, response head)."""
    c = WSClient.open(s.host, s.port, timeout=timeout)
    c.send_raw(request_bytes)
    return c, c.read_http_head()


def state_json(s, name, timeout=5.0):
    path = s.state_path(name)

    def ready():
        try:
            with open(path) as f:
                data = f.read()
            return json.loads(data) if data else None
        except (OSError, ValueError):
            return None
    v = wait_for(ready, timeout=timeout)
    assert v is not None, "the app did not record %s within %ss; server stderr:\n%s" % (
        name, timeout, s.stderr_text()[-3000:])
    return v


def called_paths(s):
    try:
        with open(s.state_path("calls.log")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def echo_works(s, msg="still alive"):
    with connect(s) as c:
        c.send_text(msg)
        assert c.recv_data() == msg
        c.send_binary(msg.encode())
        assert c.recv_data() == msg.encode()


def assert_server_ok(s, pid):
    """Alive, same worker, plain HTTP and a new websocket echo work."""
    assert s.alive(), "server died:\n" + s.stderr_text()[-3000:]
    assert s.worker_pid() == pid, "the worker was replaced (it crashed or wedged):\n" + \
        s.stderr_text()[-3000:]
    status, _, body = s.get("/http")
    assert status == 200 and body == b"plain http\n", (status, body)
    echo_works(s)
    assert s.worker_pid() == pid


def fail_and_close(s, data, expected, path="/echo", check_app=True):
    """Send data on a fresh websocket; the server must fail the connection
    with close code ``expected`` and then close TCP; the app's receive()
    must have returned None."""
    tag = new_tag()
    c = connect(s, "%s?tag=%s" % (path, tag))
    try:
        if isinstance(data, tuple):
            # (a good message, its echo, the bad bytes): the echo is awaited
            # first, else the app's send() may meet the already-failed
            # connection (and rightly raise)
            good, echoed, data = data
            c.send_raw(good)
            assert c.recv_data(timeout=10) == echoed
        c.try_send_raw(data)
        while True:   # data echoed before the bad frame is fine
            try:
                m = c.recv_message(timeout=10)
            except ConnectionClosed:
                raise AssertionError("server closed TCP without a close frame (expected %d)"
                                     % expected)
            if m.kind == "close":
                break
        assert m.code == expected, "close code %r (reason %r), expected %d" % (
            m.code, m.reason, expected)
        c.assert_eof(5)
    finally:
        c.abort()
    if check_app:
        res = state_json(s, "echo-" + tag)
        assert res["end"] == "none", "receive() did not return None: %r" % res


def cont(payload, fin=True, **kw):
    return frame(OP_CONT, payload, fin=fin, **kw)


def pattern_text(n):
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (n // len(alphabet) + 1))[:n]


def pattern_bin(n):
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n)) if n < 70000 else \
        (bytes(range(256)) * (n // 256 + 1))[:n]


# ================================================================ handshake

def test_accept_key_of_rfc_example():
    # RFC 6455 section 1.3: the helper itself must be right
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_101(ws):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    c = connect(ws, key=key)
    r = c.response
    assert r.status == 101
    assert r.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert r.header("Upgrade").lower() == "websocket"
    assert r.header("Connection").lower() == "upgrade"
    assert r.header("Transfer-Encoding") is None, r.headers
    assert r.header("Content-Length") is None, r.headers
    assert r.header("Sec-WebSocket-Protocol") is None, r.headers
    c.send_text("hi")
    assert c.recv_data() == "hi"
    c.abort()


@pytest.mark.parametrize("kw", [
    {"connection": "keep-alive, Upgrade"},
    {"connection": "upgrade"},
    {"connection": "Upgrade, HTTP2-Settings"},
    {"upgrade": "WebSocket"},
    {"headers": [("Origin", "http://example.test")]},
], ids=["conn-list", "conn-lower", "conn-list-first", "upgrade-case", "origin"])
def test_handshake_variants(ws, kw):
    c = connect(ws, **kw)
    c.send_text("variant")
    assert c.recv_data() == "variant"
    c.abort()


def test_plain_request_has_no_websocket(ws):
    status, _, body = ws.get("/echo")
    assert status == 200
    assert json.loads(body) == {"websocket": False, "path": "/echo", "keys": []}


@pytest.mark.parametrize("kw", [
    {"connection": "keep-alive"},
    {"upgrade": "h2c"},
    {"method": "POST"},
], ids=["no-upgrade-token", "other-upgrade", "post"])
def test_non_websocket_upgrade_is_plain_request(ws, kw):
    path = "/plain_%s" % new_tag()
    c, r = raw_open(ws, handshake_request(path, key=make_key(), **kw))
    assert r.status == 200, r
    body = json.loads(c.read_http_body())
    assert body["websocket"] is False and body["keys"] == [], body
    c.abort()


HANDSHAKE_REJECTS = [
    ("no-version", {"version": None}, 426),
    ("version-8", {"version": "8"}, 426),
    ("version-14", {"version": "14"}, 426),
    ("no-key", {"key": None}, 400),
    ("empty-key", {"key": ""}, 400),
    ("key-3-bytes", {"key": "YWJj"}, 400),
    ("key-15-bytes", {"key": "AAAAAAAAAAAAAAAAAAAA"}, 400),
    ("key-17-bytes", {"key": "AAAAAAAAAAAAAAAAAAAAAAA="}, 400),
    ("key-not-base64", {"key": "!!!!!!!!!!!!!!!!!!!!!!!!"}, 400),
    ("http-1.0", {"http_version": "HTTP/1.0"}, 400),
]


@srv_only
@pytest.mark.parametrize("name,kw,status", HANDSHAKE_REJECTS,
                         ids=[h[0] for h in HANDSHAKE_REJECTS])
def test_handshake_rejected(ws, name, kw, status):
    path = "/rejected_%s_%s" % (name, new_tag())
    args = {"key": make_key()}
    args.update(kw)
    c, r = raw_open(ws, handshake_request(path, **args))
    try:
        assert r.status == status, r
        if status == 426:
            assert r.header("Sec-WebSocket-Version") == "13", r.headers
        c.read_http_body()
        assert c.wait_eof(5), "connection stayed open after %d" % status
    finally:
        c.abort()
    ws.get("/http")        # the app has certainly been called by now if it was
    assert path not in called_paths(ws), "the app was called for a rejected upgrade"


@srv_only
def test_app_rejects_with_403(ws):
    c, r = raw_open(ws, handshake_request("/reject", key=make_key()))
    try:
        assert r.status == 403, "expected the app's 403 instead of a 101: %r" % r
        assert (r.header("Connection") or "").lower() == "close", r.headers
        assert c.read_http_body() == b"forbidden\n"
        assert c.wait_eof(5), "connection stayed open after the app's 403"
    finally:
        c.abort()
    assert "/reject" in called_paths(ws)


@srv_only
def test_app_101_headers_go_into_handshake(ws):
    c = connect(ws, "/proto", protocols=["chat", "superchat"])
    assert c.response.header_all("Sec-WebSocket-Protocol") == ["chat"], c.response.headers
    c.send_text("p")
    assert c.recv_data() == "p"
    assert c.close() == 1000


@pytest.mark.parametrize("path,requested,expected", [
    ("/negotiate", ["chat", "superchat"], "superchat"),
    ("/negotiate", ["superchat"], "superchat"),
    ("/negotiate", ["chat"], None),
    ("/negotiate", None, None),
    ("/echo", ["superchat"], None),
    # a token match, not gevent-websocket's substring test
    pytest.param("/negotiate", ["superchat2"], None, marks=srv_only),
])
def test_app_protocol_negotiation(ws, path, requested, expected):
    c = connect(ws, path, protocols=requested)
    assert c.response.header("Sec-WebSocket-Protocol") == expected, c.response.headers
    c.send_text("n")
    assert c.recv_data() == "n"
    c.abort()


@srv_only
def test_app_that_never_uses_websocket_gets_101_then_close(ws):
    c = connect(ws, "/noop")
    assert c.recv_message(timeout=10).code == 1000
    c.try_send_raw(close_frame(1000))
    c.assert_eof(5)
    c.abort()


def test_upgrade_after_keepalive_request(ws):
    c = WSClient.open(ws.host, ws.port)
    c.send_raw(raw_request("GET", "/http"))
    r = c.read_http_head()
    assert r.status == 200
    assert c.read_http_body() == b"plain http\n"
    c.key = make_key()
    c.send_raw(handshake_request("/echo", key=c.key))
    c.check_101(c.read_http_head())
    c.send_text("after keep-alive")
    assert c.recv_data() == "after keep-alive"
    c.abort()


def test_upgrade_pipelined_after_plain_request(ws):
    c = WSClient.open(ws.host, ws.port)
    c.key = make_key()
    c.send_raw(raw_request("GET", "/http") + handshake_request("/echo", key=c.key)
               + text("piped"))
    assert c.read_http_head().status == 200
    assert c.read_http_body() == b"plain http\n"
    c.check_101(c.read_http_head())
    assert c.recv_data() == "piped"
    c.abort()


def test_frames_in_same_packet_as_handshake(ws):
    c = connect(ws, first_data=text("one") + binary(b"two") + text("three"))
    assert [c.recv_data() for _ in range(3)] == ["one", b"two", "three"]
    c.abort()


# ================================================================ the API

def test_info(ws):
    c = connect(ws, "/info?x=1", origin="http://example.test", protocols=["p1", "p2"])
    info = json.loads(c.recv_data())
    c.abort()
    assert info["path"] == "/info"
    assert info["origin"] == "http://example.test"
    assert info["version"] == "13"
    assert info["protocol"] == "p1, p2"       # gevent-websocket: the requested header
    assert info["closed"] is False
    assert info["environ_is_environ"] is True
    assert info["websocket_version"] == "13"
    assert info["websocket_keys"] == ["wsgi.websocket", "wsgi.websocket_version"]
    assert info["query"] == "x=1"
    assert "geventwebsocket.exceptions.WebSocketError" in info["error_mro"], info["error_mro"]
    assert info["error_is_oserror"] is True
    if not AGAINST_GWS:
        assert info["error_module"] == "srv", info["error_mro"]


def test_receive_none_then_errors(ws):
    tag = new_tag()
    c = connect(ws, "/echo?tag=" + tag)
    c.send_text("a")
    assert c.recv_data() == "a"
    code = c.close(1000)
    if not AGAINST_GWS:
        assert code == 1000
    res = state_json(ws, "echo-" + tag)
    assert res["end"] == "none", res
    assert res["closed"] is True, res
    for what in ("receive_again", "send_after"):
        assert res[what].get("is_websocket_error") is True, (what, res)
        assert res[what].get("is_gws_error") is True, (what, res)
        assert res[what].get("is_oserror") is True, (what, res)


def test_websocket_used_after_its_request_ended(ws):
    """An app kept the websocket object (as chat apps do) and another
    request uses it after the first one returned: WebSocketError, never a
    crash."""
    pid = ws.worker_pid()
    name = new_tag()
    c = connect(ws, "/stash?name=" + name)
    assert c.recv_data() == "stashed"
    code = c.expect_close(10)
    assert code == 1000 or AGAINST_GWS, code
    c.abort()
    time.sleep(0.1)
    c = connect(ws, "/use_stash?name=" + name)
    res = json.loads(c.recv_data())
    c.abort()
    assert res["closed"] == "True", res
    for call in ("send", "send_binary", "receive_again"):
        assert res[call].get("is_websocket_error") is True, (call, res)
    # the first receive() on it may still return None (never returned before)
    assert res["receive"] == {"returned": "None"} or \
        res["receive"].get("is_websocket_error") is True, res
    assert "returned" in res["close"] or res["close"].get("is_websocket_error"), res
    assert_server_ok(ws, pid)


def test_message_types(ws):
    c = connect(ws, "/types")
    c.send_text("héllo")
    assert json.loads(c.recv_data()) == {"type": "str", "len": 5}
    c.send_binary(b"\x00\x01\x02")
    got = json.loads(c.recv_data())
    assert got["len"] == 3
    assert got["type"] == ("bytearray" if AGAINST_GWS else "bytes"), got
    c.send_text("")
    assert json.loads(c.recv_data()) == {"type": "str", "len": 0}
    c.abort()


@srv_only
def test_send_types(ws):
    c = connect(ws, "/send_types")
    got = [c.recv_message() for _ in range(6)]
    assert [(m.kind, m.data) for m in got] == [
        ("binary", b"bytes"), ("binary", b"bytearray"), ("binary", b"memoryview"),
        ("text", "str \u00e9\u20ac"), ("binary", b"str-as-binary"), ("text", "bytes-as-text")]
    c.abort()


@srv_only
def test_send_binary_flag(ws):
    c = connect(ws, "/echo_binary")
    c.send_text("as binary ✓")
    m = c.recv_message()
    assert (m.kind, m.data) == ("binary", "as binary ✓".encode())
    c.abort()
    c = connect(ws, "/echo_text")
    c.send_binary("as text ✓".encode())
    m = c.recv_message()
    assert (m.kind, m.data) == ("text", "as text ✓")
    c.abort()


# ================================================================ echo / sizes

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1000000]


@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("size", SIZES)
def test_echo_sizes(ws, size, kind):
    c = connect(ws, timeout=20)
    if kind == "text":
        payload = pattern_text(size)
        c.send_text(payload)
    else:
        payload = pattern_bin(size)
        c.send_binary(payload)
    m = c.recv_message(timeout=20)
    assert m.kind == kind
    assert len(m.data) == size and m.data == payload
    c.abort()


def test_server_frames_unmasked_minimal(ws):
    """The strict reader already checks every frame; here the length
    encodings are checked explicitly too."""
    c = connect(ws)
    for size, nbytes in ((125, 0), (126, 2), (65535, 2), (65536, 8)):
        c.send_binary(b"z" * size)
        f = c.recv_frame()
        assert f.opcode == OP_BINARY and not f.masked and f.rsv == 0
        assert f.fin and len(f.payload) == size and f.length_bytes == nbytes
    c.abort()


def test_unicode_text(ws):
    c = connect(ws)
    s = "héllo wörld ✓ 😀 \u0000 \U0010FFFF"
    c.send_text(s)
    assert c.recv_data() == s
    c.abort()


def test_many_frames_in_one_write(ws):
    c = connect(ws)
    c.send_raw(b"".join(text("m%d" % i) for i in range(200)))
    assert [c.recv_data() for _ in range(200)] == ["m%d" % i for i in range(200)]
    c.abort()


def test_frame_sent_byte_by_byte(ws):
    c = connect(ws)
    data = text("trickled") + binary(b"x" * 300)
    for i in range(len(data)):
        c.send_raw(data[i:i + 1])
        if i < 40:
            time.sleep(0.002)
    assert c.recv_data() == "trickled"
    assert c.recv_data() == b"x" * 300
    c.abort()


# ================================================================ fragmentation

FRAGMENTED = [
    ("text-3", OP_TEXT, [b"Hel", b"lo, ", b"World"], "Hello, World"),
    ("binary-5-empties", OP_BINARY, [b"", b"\x00\x01", b"", b"\xff", b""], b"\x00\x01\xff"),
    ("utf8-split", OP_TEXT, [b"\xf0", b"\x9f\x98", b"\x80 \xce", b"\xba"], "😀 κ"),
    ("empty-text", OP_TEXT, [b"", b""], ""),
    ("big-64", OP_BINARY, [bytes([i]) * 16000 for i in range(64)],
     b"".join(bytes([i]) * 16000 for i in range(64))),
]


@pytest.mark.parametrize("name,opcode,parts,expected", FRAGMENTED,
                         ids=[f[0] for f in FRAGMENTED])
def test_fragmented_message(ws, name, opcode, parts, expected):
    c = connect(ws)
    c.send_fragments(opcode, parts)
    assert c.recv_data() == expected
    c.abort()


def test_control_frames_between_fragments(ws):
    c = connect(ws)
    c.send_raw(text("Hel", fin=False) + frame(OP_PING, b"mid-1") + cont(b"lo ", fin=False)
               + frame(OP_PONG, b"unsolicited") + frame(OP_PING, b"mid-2")
               + cont(b"World"))
    assert c.recv_data() == "Hello World"
    pongs = [f.payload for f in c.reader.controls if f.opcode == OP_PONG]
    assert pongs == [b"mid-1", b"mid-2"], c.reader.controls
    c.abort()


def test_fragmented_messages_back_to_back(ws):
    c = connect(ws)
    c.send_raw(text("a", fin=False) + cont(b"b") + binary(b"c", fin=False) + cont(b"d")
               + text("e"))
    assert [c.recv_data() for _ in range(3)] == ["ab", b"cd", "e"]
    c.abort()


# ================================================================ ping / pong

@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))],
                         ids=["empty", "short", "125"])
def test_ping_pong(ws, payload):
    c = connect(ws)
    c.ping(payload)
    f = c.recv_frame(timeout=10)
    assert f.opcode == OP_PONG and f.payload == payload, f
    c.send_text("after ping")
    assert c.recv_data() == "after ping"
    c.abort()


def test_unsolicited_pong_ignored(ws):
    c = connect(ws)
    c.pong(b"nobody asked")
    c.send_text("after pong")
    f = c.recv_frame(timeout=10)
    assert f.opcode == OP_TEXT and f.payload == b"after pong", f
    c.abort()


@srv_only
def test_ping_answered_while_app_sleeps(ws):
    """The app sleeps 2 s after sending "ready": the pong must come before
    "awake", i.e. from the server, not from a later receive()."""
    c = connect(ws, "/sleep_then_echo")
    assert c.recv_data() == "ready"
    c.ping(b"are you there")
    frames = []
    while True:
        f = c.recv_frame(timeout=10)
        frames.append(f)
        if f.opcode == OP_TEXT:
            break
    assert frames[-1].payload == b"awake", frames
    assert [(f.opcode, f.payload) for f in frames[:-1]] == [(OP_PONG, b"are you there")], \
        "no pong while the app slept: %r" % frames
    c.send_text("x")
    assert c.recv_data() == "x"
    c.abort()


@srv_only
def test_ping_answered_while_app_only_sends(ws):
    n = 40
    c = connect(ws, "/send_only?n=%d&delay=0.05" % n)
    assert c.recv_data() == "msg 0"
    c.ping(b"busy?")
    seen = []
    pong_after = None
    while True:
        f = c.recv_frame(timeout=10)
        if f.opcode == OP_PONG:
            assert f.payload == b"busy?"
            pong_after = len(seen)
        elif f.opcode == OP_TEXT:
            seen.append(f.payload.decode())
        elif f.opcode == OP_CLOSE:
            break
    assert seen == ["msg %d" % i for i in range(1, n)]
    assert pong_after is not None, "never answered the ping"
    assert pong_after < n - 1, "the pong came only after the app stopped sending"


# ================================================================ closing

@srv_only
@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_client_close_code_echoed(ws, code):
    tag = new_tag()
    c = connect(ws, "/echo?tag=" + tag)
    c.send_text("x")
    assert c.recv_data() == "x"
    assert c.close(code) == code
    assert state_json(ws, "echo-" + tag)["end"] == "none"


@srv_only
def test_client_close_with_reason(ws):
    c = connect(ws)
    assert c.close(1000, "bye ✓".encode()) == 1000


@srv_only
def test_client_close_empty_gets_1000(ws):
    c = connect(ws)
    c.send_raw(frame(OP_CLOSE, b""))
    assert c.expect_close(10) == 1000
    c.assert_eof(5)
    c.abort()


@srv_only
def test_close_between_fragments(ws):
    c = connect(ws)
    c.send_raw(text("half", fin=False) + close_frame(1000))
    assert c.expect_close(10) == 1000
    c.assert_eof(5)
    c.abort()


@srv_only
def test_app_return_sends_close_1000(ws):
    c = connect(ws, "/send_only?n=3")
    assert [c.recv_data() for _ in range(3)] == ["msg 0", "msg 1", "msg 2"]
    assert c.expect_close(10) == 1000
    c.try_send_raw(close_frame(1000))
    c.assert_eof(5)
    c.abort()


@srv_only
@pytest.mark.parametrize("code,reason", [(None, ""), (1000, ""), (1001, "going"),
                                         (3000, ""), (4001, "custom ✓")])
def test_app_close_code(ws, code, reason):
    """ws.close(code, reason); ws.close() means 1000.  Nothing may follow
    the close frame, and send() then raises WebSocketError."""
    tag = new_tag()
    path = "/close_code?tag=%s" % tag
    if code is not None:
        path += "&code=%d&reason=%s" % (code, reason.replace(" ", "%20").replace("✓", "%E2%9C%93"))
    c = connect(ws, path)
    m = c.recv_message(timeout=10)
    assert m.kind == "close" and m.code == (code or 1000), m
    assert m.reason == reason.encode(), m
    c.try_send_raw(close_frame(code or 1000))
    c.assert_eof(5)
    c.abort()
    res = state_json(ws, "close_code-" + tag)
    assert res["closed"] is True, res
    assert res["send_after"].get("is_websocket_error") is True, res


# ================================================================ failures

def _len64(first_byte, n, payload=b"x" * 8):
    return bytes([first_byte, 0xFF]) + struct.pack("!Q", n) + b"\x00\x00\x00\x00" + payload


PROTOCOL_ERRORS = [
    ("unmasked-text", text("hello", mask=False)),
    ("unmasked-binary", binary(b"hello", mask=False)),
    ("unmasked-ping", frame(OP_PING, b"p", mask=False)),
    ("unmasked-close", close_frame(1000, mask=False)),
    ("rsv1", text("x", rsv=4)),
    ("rsv2", text("x", rsv=2)),
    ("rsv3", binary(b"x", rsv=1)),
    ("rsv1-ping", frame(OP_PING, b"", rsv=4)),
    ("rsv2-continuation", text("a", fin=False) + cont(b"b", rsv=2)),
] + [("opcode-%d" % op, frame(op, b"x")) for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)] + [
    ("reserved-opcode-mid-message", text("a", fin=False) + frame(0xB, b"x")),
    ("fragmented-ping", frame(OP_PING, b"p", fin=False) + cont(b"q")),
    ("fragmented-pong", frame(OP_PONG, b"p", fin=False)),
    ("fragmented-close", frame(OP_CLOSE, close_payload(1000), fin=False)),
    ("ping-126", frame(OP_PING, b"x" * 126)),
    ("pong-126", frame(OP_PONG, b"x" * 126)),
    ("close-126", frame(OP_CLOSE, close_payload(1000, b"r" * 124))),
    ("ping-64bit-len", bytes([0x89, 0xFF]) + struct.pack("!Q", 5) + b"\x00" * 4 + b"ppppp"),
    ("continuation-first", cont(b"x")),
    ("continuation-first-nonfinal", cont(b"x", fin=False)),
    ("continuation-after-complete", (text("done"), "done", cont(b"x"))),
    ("text-inside-text", text("a", fin=False) + text("b")),
    ("binary-inside-text", text("a", fin=False) + binary(b"b")),
    ("text-inside-binary", binary(b"a", fin=False) + text("b", fin=False)),
    ("close-1-byte", frame(OP_CLOSE, b"\x03")),
] + [("close-code-%d" % code, close_frame(code))
     for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)] + [
    ("len64-top-bit", _len64(0x82, (1 << 63) | 8)),
    ("len64-all-ones", _len64(0x81, (1 << 64) - 1)),
]


@srv_only
@pytest.mark.parametrize("name,data", PROTOCOL_ERRORS, ids=[p[0] for p in PROTOCOL_ERRORS])
def test_protocol_error_1002(ws, name, data):
    fail_and_close(ws, data, 1002)


UTF8_ERRORS = [
    ("text-ff", text(b"\xff")),
    ("text-overlong", text(b"\xc0\xaf")),
    ("text-surrogate", text(b"ok \xed\xa0\x80")),
    ("text-above-10ffff", text(b"\xf4\x90\x80\x80")),
    ("text-truncated", text(b"abc\xe2\x82")),
    ("text-bad-continuation", text(b"\xe2\x28\xa1")),
    ("fragments-invalid-across", text(b"\xce", fin=False) + cont(b"\xba\xff")),
    ("fragments-invalid-first", text(b"\xff", fin=False) + cont(b"ok")),
    ("fragments-truncated-end", text(b"ok", fin=False) + cont(b"\xe2\x82")),
    ("fragments-ping-between", text(b"\xe2", fin=False) + frame(OP_PING, b"p")
     + cont(b"\x28\xa1")),
    ("close-reason", close_frame(1000, b"\xff\xfe")),
    ("close-reason-truncated", close_frame(1000, b"bye \xe2\x82")),
]


@srv_only
@pytest.mark.parametrize("name,data", UTF8_ERRORS, ids=[u[0] for u in UTF8_ERRORS])
def test_invalid_utf8_1007(ws, name, data):
    fail_and_close(ws, data, 1007)


TOO_BIG = [
    ("header-announces-8GiB", frame(OP_BINARY, b"x" * 100, length=1 << 33)[:100]),
    ("header-announces-limit+1", frame(OP_TEXT, b"", length=MiB + 1)),
    ("frame-limit+1", binary(b"b" * (MiB + 1))),
    ("text-limit+1", text("t" * (MiB + 1))),
    ("two-fragments", binary(b"a" * (600 * 1024), fin=False) + cont(b"b" * (600 * 1024))),
    ("many-fragments", binary(b"a" * 1000, fin=False)
     + b"".join(cont(b"b" * 1000, fin=False) for _ in range(1100)) + cont(b"end")),
]


@srv_only
@pytest.mark.parametrize("name,data", TOO_BIG, ids=[t[0] for t in TOO_BIG])
def test_message_too_big_1009(ws, name, data):
    fail_and_close(ws, data, 1009)


def test_message_at_limit_accepted(ws):
    c = connect(ws, timeout=20)
    c.send_binary(b"L" * MiB)
    assert c.recv_data(timeout=20) == b"L" * MiB
    c.send_fragments(OP_TEXT, [b"f" * (MiB // 2), b"g" * (MiB // 2)])
    assert c.recv_data(timeout=20) == "f" * (MiB // 2) + "g" * (MiB // 2)
    c.abort()


@srv_only
def test_ws_max_message_flag(pool):
    s = pool("gevent", "--ws-max-message", "1000")
    c = connect(s)
    c.send_binary(b"a" * 1000)
    assert c.recv_data() == b"a" * 1000
    c.send_fragments(OP_TEXT, [b"b" * 500, b"c" * 500])
    assert c.recv_data() == "b" * 500 + "c" * 500
    c.abort()
    fail_and_close(s, binary(b"a" * 1001), 1009)
    fail_and_close(s, text("b" * 1001), 1009)
    fail_and_close(s, text("b" * 500, fin=False) + cont(b"c" * 501), 1009)


# ================================================================ robustness

@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_half_frame_then_disconnect(ws, rst):
    pid = ws.worker_pid()
    for cut in (1, 2, 5, 9):
        tag = new_tag()
        c = connect(ws, "/echo?tag=" + tag)
        c.send_raw(text("this frame never ends")[:cut])
        time.sleep(0.05)
        c.reset() if rst else c.abort()
        assert state_json(ws, "echo-" + tag)["end"] == "none"
    assert_server_ok(ws, pid)


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_vanish_mid_message(ws, rst):
    pid = ws.worker_pid()
    tag = new_tag()
    c = connect(ws, "/echo?tag=" + tag)
    c.send_raw(text("first part", fin=False) + cont(b"second part", fin=False)
               + frame(OP_BINARY, b"x" * 1000, length=100000)[:500])
    time.sleep(0.05)
    c.reset() if rst else c.abort()
    assert state_json(ws, "echo-" + tag)["end"] == "none"
    assert_server_ok(ws, pid)


def test_client_that_never_reads(ws):
    """The app blocks in send() on a client that reads nothing: only that
    greenlet waits; when the client goes, send() raises WebSocketError."""
    pid = ws.worker_pid()
    tag = new_tag()
    c = WSClient.open(ws.host, ws.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.key = make_key()
    c.send_raw(handshake_request("/send_only?n=100000&size=65536&tag=" + tag, key=c.key))
    time.sleep(0.5)
    t0 = time.monotonic()
    for _ in range(3):
        status, _, _ = ws.get("/http")
        assert status == 200
        echo_works(ws)
    other = connect(ws, "/send_only?n=5")
    assert [other.recv_data() for _ in range(5)] == ["msg %d" % i for i in range(5)]
    other.abort()
    assert time.monotonic() - t0 < 10 * SLOW
    assert not os.path.exists(ws.state_path("send_only-" + tag)), \
        "the app finished sending 6.5 GB to a client that reads nothing?"
    c.reset()
    res = state_json(ws, "send_only-" + tag, timeout=10)
    assert res["end"] == "raised", res
    assert res["error"]["is_websocket_error"] is True, res
    assert_server_ok(ws, pid)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_garbage_after_handshake(ws, seed):
    import random
    pid = ws.worker_pid()
    rnd = random.Random(seed)
    c = connect(ws)
    c.try_send_raw(bytes(rnd.randrange(256) for _ in range(3000)))
    try:
        c.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    assert c.wait_eof(10), "server kept a connection open after garbage and EOF"
    c.abort()
    assert_server_ok(ws, pid)


@srv_only
def test_http_request_as_frames(ws):
    # 'G' = 0x47: FIN=0, RSV1 set, opcode 7
    fail_and_close(ws, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1002)


def test_app_raises_after_upgrade(ws):
    pid = ws.worker_pid()
    c = connect(ws, "/raise_after")
    assert c.recv_data() == "about to raise"
    try:
        while True:
            m = c.recv_message(timeout=10)
            if m.kind == "close":
                break
    except ConnectionClosed:
        pass
    assert c.wait_eof(5), "connection left open after the app raised"
    c.abort()
    assert_server_ok(ws, pid)


@srv_only
def test_no_fd_leak(gsrv):
    base = gsrv.fd_baseline("/http")
    for i in range(60):
        c = connect(gsrv)
        c.send_text("x")
        assert c.recv_data() == "x"
        if i % 3 == 0:
            c.close()
        elif i % 3 == 1:
            c.reset()
        else:
            c.send_raw(text("x", mask=False))
            c.expect_close(10)
            c.abort()
    assert wait_for(lambda: gsrv.fd_count() <= base, timeout=5), \
        "fds: %d before, %d after 60 websockets" % (base, gsrv.fd_count())


@srv_only
def test_idle_websocket_outlives_http_timeouts(pool):
    s = pool("gevent", "--keepalive", "1", "--header-timeout", "1")
    c = connect(s)
    c.send_text("before")
    assert c.recv_data() == "before"
    time.sleep(2.5)
    c.send_text("after idle")
    assert c.recv_data() == "after idle"
    assert c.close() == 1000


@srv_only
@pytest.mark.parametrize("query,frames", [
    ("use=0", []),
    ("use=1", ["used"]),
    ("use=1&sr=1", ["used"]),
], ids=["unused", "used", "used-then-start_response"])
def test_wsgi_body_after_upgrade_is_not_sent(ws, query, frames):
    c = connect(ws, "/returns_body?" + query)
    assert [c.recv_data() for _ in frames] == frames
    assert c.expect_close(10) == 1000
    c.try_send_raw(close_frame(1000))
    c.assert_eof(5)
    c.abort()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _flood(c, data, seconds):
    """Send data over and over for a while without reading; returns the
    bytes the server (and the kernel buffers) took."""
    c.sock.setblocking(False)
    sent, pending = 0, b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not pending:
            pending = data
        try:
            n = c.sock.send(pending)
        except BlockingIOError:
            time.sleep(0.005)
            continue
        pending = pending[n:]
        sent += n
    return sent


FLOODS = [
    ("pings-app-busy", "/sleep_then_echo?s=3", True),
    ("pings-app-in-receive", "/echo", False),
    ("messages-app-busy", "/sleep_then_echo?s=3", True),
]


@pytest.mark.parametrize("name,path,busy", FLOODS, ids=[f[0] for f in FLOODS])
def test_flood_without_reading_is_bounded(ws, name, path, busy):
    """A client floods pings without reading the pongs (while the app
    sleeps, or sits in receive()), or floods messages while the app sleeps.
    The worker's memory must stay bounded: stop reading (backpressure), or
    answer only the latest ping (RFC 6455 5.5.3 allows it); never queue
    every pong or message."""
    pid = ws.worker_pid()
    rss0 = _rss_kib(pid)
    c = connect(ws, path, rcvbuf=4096)
    if busy:
        assert c.recv_data() == "ready"
    if name.startswith("pings"):
        data = frame(OP_PING, b"p" * 125) * 500
    else:
        data = binary(b"d" * 65536)
    sent = _flood(c, data, 1.5)
    grew = _rss_kib(pid) - rss0
    c.reset()
    assert grew < 64 * 1024, (
        "worker RSS grew by %d MiB while a client sent %d MiB of %s and read nothing"
        % (grew // 1024, sent // MiB, name))
    assert_server_ok(ws, pid)


@srv_only
def test_two_writer_greenlets_do_not_interleave_frames(gsrv):
    """Two greenlets send 1 MB messages to one slow reader at once: whole
    messages, in each writer's order (the strict reader catches torn frames)."""
    n, size = 8, 1000000
    c = connect(gsrv, "/two_writers?n=%d&size=%d" % (n, size), timeout=20, rcvbuf=4096)
    time.sleep(0.3)
    seen = {"text": [], "binary": []}
    for _ in range(2 * n):
        m = c.recv_message(timeout=20)
        ch = "a" if m.kind == "text" else b"b"
        i = len(seen[m.kind])
        head = ch * 2 + (("%d" % i) if m.kind == "text" else (b"%d" % i))
        assert m.data[:len(head)] == head, (m.kind, m.data[:20], i)
        assert m.data[len(head):] == ch * size, "message %s %d torn" % (m.kind, i)
        seen[m.kind].append(i)
    assert len(seen["text"]) == len(seen["binary"]) == n
    c.send_text("done")
    assert c.recv_data() == "done"
    assert c.close() == 1000


# ================================================================ concurrency

def test_200_concurrent_echo_clients(ws):
    n, rounds = 200, 20
    clients = [connect(ws) for _ in range(n)]
    sel = selectors.DefaultSelector()
    readers, got = [], [0] * n
    try:
        for i, c in enumerate(clients):
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, i)
            readers.append(Reader())
            c.sock.send(text("c%d m0" % i))
        done = 0
        deadline = time.monotonic() + 60 * SLOW
        while done < n:
            assert time.monotonic() < deadline, "%d of %d clients finished" % (done, n)
            for key, _ in sel.select(timeout=1):
                i = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                assert data, "client %d: connection closed after %d echoes" % (i, got[i])
                readers[i].feed(data)
                while True:
                    m = readers[i].next_message()
                    if m is None:
                        break
                    assert (m.kind, m.data) == ("text", "c%d m%d" % (i, got[i])), m
                    got[i] += 1
                    if got[i] < rounds:
                        key.fileobj.send(text("c%d m%d" % (i, got[i])))
                    else:
                        sel.unregister(key.fileobj)
                        done += 1
    finally:
        sel.close()
        for c in clients:
            c.abort()
    assert got == [rounds] * n


def test_broadcast(ws):
    room = new_tag()
    cs = []
    for i in range(5):
        c = connect(ws, "/broadcast?room=" + room)
        assert c.recv_data() == "welcome %d" % (i + 1)
        cs.append(c)
    cs[0].send_text("hello from 0")
    for c in cs[1:]:
        assert c.recv_data() == "hello from 0"
    cs[1].send_binary(b"bin from 1")
    for i, c in enumerate(cs):
        if i != 1:
            # client 0 gets this first: it never got its own message back
            assert c.recv_data() == b"bin from 1", i
    cs[4].reset()
    time.sleep(0.1)
    cs[2].send_text("after 4 left")
    for i in (0, 1, 3):
        assert cs[i].recv_data() == "after 4 left"
    for c in cs[:4]:
        c.abort()


def test_reader_and_writer_greenlets(gsrv):
    tag = new_tag()
    c = connect(gsrv, "/rw?tag=" + tag)
    c.send_text("go")
    assert [c.recv_data() for _ in range(5)] == ["tick %d" % i for i in range(5)]
    c.send_text("x")
    assert c.recv_data() == "w:x"
    c.send_text("go")
    c.send_text("y")
    got = [c.recv_data() for _ in range(6)]
    assert sorted(got) == sorted(["tick %d" % i for i in range(5)] + ["w:y"]), got
    c.close()
    assert wait_for(lambda: os.path.exists(gsrv.state_path("rw-" + tag)), timeout=5), \
        gsrv.stderr_text()[-3000:]


def test_receive_interrupted_by_gevent_timeout(gsrv):
    """with gevent.Timeout(0.1): ws.receive() -- a heartbeat loop; the
    websocket keeps working after each interruption."""
    c = connect(gsrv, "/timeout_receive?t=0.1")
    assert c.recv_data() == "tick 1"
    assert c.recv_data() == "tick 2"
    for word in ("x", "y"):
        c.send_text(word)
        while True:
            d = c.recv_data()
            if not d.startswith("tick"):
                break
        assert d == "got:" + word
    assert c.close() == 1000 or AGAINST_GWS


def test_sleeping_websockets_overlap(ws):
    n = 20
    t0 = time.monotonic()
    cs = [connect(ws, "/sleep_then_echo?s=1") for _ in range(n)]
    for c in cs:
        assert c.recv_data() == "ready"
    for c in cs:
        assert c.recv_data(timeout=15) == "awake"
    elapsed = time.monotonic() - t0
    for c in cs:
        c.abort()
    assert elapsed < 8 * SLOW, "20 websockets sleeping 1 s took %.1f s" % elapsed


# ================================================================ graceful stop

@srv_only
@pytest.mark.parametrize("mode", ["gevent", "native"])
def test_sigterm_closes_websockets_with_1001(server_factory, mode):
    s = server_factory("ws_app:app", "--mode", mode, "--graceful-timeout", "60")
    s.warm_up("/http")
    cs = [connect(s, timeout=20) for _ in range(3)]
    for i, c in enumerate(cs):
        c.send_text("hi %d" % i)
        assert c.recv_data() == "hi %d" % i
    # an app that never calls receive(): it learns of the stop from send()
    sender = connect(s, "/send_only?n=100000&delay=0.2&tag=term", timeout=20)
    assert sender.recv_data() == "msg 0"
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    for c in cs + [sender]:
        while True:
            m = c.recv_message(timeout=20)
            if m.kind == "close":
                break
        assert m.code == 1001, m
        c.try_send_raw(close_frame(1001))
    for c in cs + [sender]:
        assert c.wait_eof(10)
        c.abort()
    rc = s.proc.wait(timeout=20)
    assert rc == 0, s.stderr_text()[-3000:]
    assert time.monotonic() - t0 < 20, "graceful stop waited for --graceful-timeout"
    res = state_json(s, "send_only-term")
    assert res["end"] == "raised" and res["error"]["is_websocket_error"], res


# ================================================================ compatibility

def test_compat_raw_echo_and_hooks(compat):
    c = connect(compat, "/echo")
    assert c.recv_data() == "hello from on_open"
    c.send_text("raw")
    assert c.recv_data() == "raw"
    c.send_binary(b"\x00raw")
    assert c.recv_data() == b"\x00raw"
    c.send_close(1000)
    c.recv_message(timeout=10)
    assert c.wait_eof(5)
    c.abort()
    closed = wait_for(lambda: "close" in _compat_log(compat), timeout=5)
    log = _compat_log(compat)
    assert "open /echo" in log, log
    assert closed, "on_close never ran (srv.WebSocketError not caught as " \
        "geventwebsocket's WebSocketError?): log %r\n%s" % (log, compat.stderr_text()[-3000:])


def _compat_log(s):
    try:
        with open(s.state_path("compat.log")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_compat_plain_route(compat):
    status, _, body = compat.get("/some/page")
    assert status == 200 and body == b"plain route /some/page\n"


def test_compat_subprotocol_raw(compat):
    c = connect(compat, "/chat", protocols=["other", "chat.v1"])
    assert c.response.header("Sec-WebSocket-Protocol") == "chat.v1", c.response.headers
    assert c.recv_data() == "hello from on_open"
    c.send_text("x")
    assert c.recv_data() == "chat:x"
    c.abort()
    c = connect(compat, "/chat", protocols=["other"])
    assert c.response.header("Sec-WebSocket-Protocol") is None, c.response.headers
    c.abort()
    c = connect(compat, "/echo", protocols=["chat.v1"])
    assert c.response.header("Sec-WebSocket-Protocol") is None, c.response.headers
    c.abort()


def test_websocket_client_echo(compat):
    import websocket
    url = "ws://%s:%d" % (compat.host, compat.port)
    w = websocket.create_connection(url + "/echo", timeout=10)
    try:
        assert w.recv() == "hello from on_open"
        w.send("from websocket-client ✓")
        assert w.recv() == "from websocket-client ✓"
        w.send_binary(b"\x00\x01\xfe")
        assert w.recv() == b"\x00\x01\xfe"
        big = "B" * 200000
        w.send(big)
        assert w.recv() == big
    finally:
        w.close()


def test_websocket_client_subprotocol(compat):
    import websocket
    w = websocket.create_connection("ws://%s:%d/chat" % (compat.host, compat.port),
                                    timeout=10, subprotocols=["chat.v1"])
    try:
        assert w.subprotocol == "chat.v1"
        assert w.recv() == "hello from on_open"
        w.send("hi")
        assert w.recv() == "chat:hi"
    finally:
        w.close()


def test_websocket_client_ping_pong(compat):
    import websocket
    from websocket import ABNF
    w = websocket.create_connection("ws://%s:%d/echo" % (compat.host, compat.port),
                                    timeout=10)
    try:
        assert w.recv() == "hello from on_open"
        w.ping("are you there")
        opcode, f = w.recv_data_frame(True)
        assert opcode == ABNF.OPCODE_PONG and f.data == b"are you there"
        w.send("after ping")
        assert w.recv() == "after ping"
    finally:
        w.close()


def test_websocket_client_close(compat):
    import websocket
    from websocket import ABNF
    w = websocket.create_connection("ws://%s:%d/echo" % (compat.host, compat.port),
                                    timeout=10)
    assert w.recv() == "hello from on_open"
    w.send_close(1000)
    f = w.recv_frame()
    assert f.opcode == ABNF.OPCODE_CLOSE
    if not AGAINST_GWS:
        assert struct.unpack("!H", f.data[:2])[0] == 1000
    w.shutdown()


def test_websocket_client_on_main_app(ws):
    import websocket
    w = websocket.create_connection("ws://%s:%d/echo" % (ws.host, ws.port), timeout=10)
    try:
        for size in (0, 125, 126, 65536, 500000):
            w.send("t" * size)
            assert w.recv() == "t" * size
        w.send_binary(b"\x01" * 70000)
        assert w.recv() == b"\x01" * 70000
    finally:
        w.close()


def test_native_mode_imports_no_gevent(server_factory):
    """srv.WebSocketError must not pull gevent (through gevent-websocket)
    into a native-mode worker whose app never imports it."""
    s = server_factory("modules_app:app", "--mode", "native")
    status, _, body = s.get("/")
    assert status == 200
    assert json.loads(body) == []


def test_messages_sent_before_a_close_are_still_answered(ws):
    """Messages and a close frame in one write: the app reads and answers
    the messages first, and the close reply comes after the echoes (as
    with gevent-websocket, which reads the close only when the app does)."""
    c = connect(ws, "/echo")
    c.send_raw(wsclient.text("one") + wsclient.binary(b"two" * 1000)
               + wsclient.text("th", fin=False) + wsclient.frame(0x9, b"p")
               + wsclient.frame(0x0, b"ree") + wsclient.close_frame(3001))
    got = []
    while True:
        m = c.recv_message(timeout=10)
        got.append((m.kind, m.data if m.kind != "close" else m.code))
        if m.kind == "close":
            break
    assert got == [("text", "one"), ("binary", b"two" * 1000), ("text", "three"),
                   ("close", 3001)], got
