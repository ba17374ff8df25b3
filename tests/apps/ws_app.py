"""WebSocket apps for tests/test_websocket.py.

``app`` is routed by PATH_INFO.  A websocket route reached by a plain request
(no ``wsgi.websocket`` in the environ) answers 200 JSON {"websocket": false}.
Every call appends its path to $SRV_TEST_STATE/calls.log; routes that take
``?tag=T`` record their outcome in $SRV_TEST_STATE/<route>-T (JSON).

    /http, /__health__      plain WSGI
    /echo                   receive -> send until None; with ?tag records what
                            receive()/send() do after that (they must raise)
    /echo_binary            echo, always as binary (send(m, binary=True))
    /echo_text              echo, always as text (send(m, binary=False))
    /types                  answers each message with JSON {type, len}
    /send_types             sends bytes, bytearray, memoryview, str, then str
                            with binary=True and bytes with binary=False
    /sleep_then_echo        send("ready"), sleep ?s= (2) s, send("awake"), echo
    /send_only              sends ?n= messages (?size= bytes of binary, else
                            text "msg i"), ?delay= between, then returns
    /noop                   returns at once without touching the websocket
    /reject                 start_response 403 before using the websocket
    /proto                  start_response 101 with Sec-WebSocket-Protocol: chat
    /negotiate              echo; app.app_protocol() names "superchat" here
    /broadcast?room=R       chat: each message goes to every other member
    /info                   sends JSON about the websocket object, then echo
    /close_code?code=X      the app closes with X (and ?reason=; no code:
                            ws.close()), then tries send()
    /rw                     gevent: a reader greenlet and a writer greenlet
    /two_writers            gevent: two greenlets send big messages at once
    /returns_body           returns a body after the upgrade (?use=1: sends
                            first; ?sr=1: start_response 200 after use)
    /raise_after            sends one message, then raises

``make_compat_app()`` builds an unmodified gevent-websocket
``Resource`` (WebSocketApplication subclasses plus a plain WSGI route).

Run as a script (``ws_app.py APP PORT``) it serves APP with gevent.pywsgi and
geventwebsocket's WebSocketHandler: the reference the tests can be checked
against (WS_TEST_SERVER=gevent-websocket).
"""
if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()

import json
import sys
import time

from _testdata import query, record

try:
    import srv
except ImportError:  # served by gevent-websocket's own server
    srv = None

# Like any app written for gevent-websocket.  In native mode srv does not
# import it itself (that would import gevent): srv.WebSocketError derives
# from its WebSocketError once the app has.
import geventwebsocket.exceptions  # noqa: E402,F401


def _ws_error_class():
    if srv is not None and hasattr(srv, "WebSocketError"):
        return srv.WebSocketError
    from geventwebsocket.exceptions import WebSocketError
    return WebSocketError


WebSocketError = _ws_error_class()


def _sleep(t):
    if srv is not None:
        srv.sleep(t)
    else:
        time.sleep(t)   # monkey-patched under the gevent-websocket runner


def _body(start_response, body, status="200 OK", ctype="text/plain"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def _json_body(start_response, obj):
    return _body(start_response, json.dumps(obj, sort_keys=True), ctype="application/json")


def _exc_info(e):
    try:
        from geventwebsocket.exceptions import WebSocketError as GWSError
        is_gws = isinstance(e, GWSError)
    except ImportError:
        is_gws = None
    return {"class": type(e).__module__ + "." + type(e).__name__,
            "is_websocket_error": isinstance(e, WebSocketError),
            "is_gws_error": is_gws,
            "is_oserror": isinstance(e, OSError)}


ROUTES = {}


def route(path):
    def deco(fn):
        ROUTES[path] = fn
        return fn
    return deco


def _echo_loop(ws, send=None):
    send = send or ws.send
    while True:
        m = ws.receive()
        if m is None:
            return
        send(m)


def _after_close_report(ws, res):
    """What the API does once receive() has returned None."""
    res["closed"] = ws.closed
    try:
        r = ws.receive()
        res["receive_again"] = {"returned": repr(r)}
    except Exception as e:
        res["receive_again"] = _exc_info(e)
    try:
        ws.send("too late")
        res["send_after"] = {"returned": None}
    except Exception as e:
        res["send_after"] = _exc_info(e)


@route("/echo")
def echo(environ, start_response, ws, q):
    res = {}
    try:
        _echo_loop(ws)
        res["end"] = "none"
    except Exception as e:
        res["end"] = "raised"
        res["error"] = _exc_info(e)
        res["error"]["str"] = str(e)
    if q.get("tag"):
        if res["end"] == "none":
            _after_close_report(ws, res)
        record("echo-" + q["tag"], json.dumps(res))
    return []


@route("/echo_binary")
def echo_binary(environ, start_response, ws, q):
    _echo_loop(ws, lambda m: ws.send(m, binary=True))
    return []


@route("/echo_text")
def echo_text(environ, start_response, ws, q):
    _echo_loop(ws, lambda m: ws.send(m, binary=False))
    return []


@route("/types")
def types(environ, start_response, ws, q):
    while True:
        m = ws.receive()
        if m is None:
            return []
        ws.send(json.dumps({"type": type(m).__name__, "len": len(m)}))


@route("/send_types")
def send_types(environ, start_response, ws, q):
    ws.send(b"bytes")
    ws.send(bytearray(b"bytearray"))
    ws.send(memoryview(b"memoryview"))
    ws.send("str \u00e9\u20ac")
    ws.send("str-as-binary", binary=True)
    ws.send(b"bytes-as-text", binary=False)
    _echo_loop(ws)
    return []


@route("/sleep_then_echo")
def sleep_then_echo(environ, start_response, ws, q):
    ws.send("ready")
    _sleep(float(q.get("s", "2")))
    ws.send("awake")
    _echo_loop(ws)
    return []


@route("/send_only")
def send_only(environ, start_response, ws, q):
    n = int(q.get("n", "10"))
    size = int(q.get("size", "0"))
    delay = float(q.get("delay", "0"))
    chunk = b"x" * size
    res = {"end": "done"}
    i = 0
    try:
        for i in range(n):
            ws.send(chunk if size else "msg %d" % i)
            if delay:
                _sleep(delay)
    except Exception as e:
        res = {"end": "raised", "at": i, "error": _exc_info(e)}
    if q.get("tag"):
        record("send_only-" + q["tag"], json.dumps(res))
    return []


@route("/noop")
def noop(environ, start_response, ws, q):
    return []


@route("/reject")
def reject(environ, start_response, ws, q):
    return _body(start_response, "forbidden\n", status="403 Forbidden")


@route("/proto")
def proto(environ, start_response, ws, q):
    start_response("101 Switching Protocols", [("Sec-WebSocket-Protocol", "chat")])
    _echo_loop(ws)
    return []


@route("/negotiate")
def negotiate(environ, start_response, ws, q):
    _echo_loop(ws)
    return []


ROOMS = {}


@route("/broadcast")
def broadcast(environ, start_response, ws, q):
    members = ROOMS.setdefault(q.get("room", ""), [])
    members.append(ws)
    failures = 0
    try:
        ws.send("welcome %d" % len(members))
        while True:
            m = ws.receive()
            if m is None:
                break
            for other in list(members):
                if other is ws:
                    continue
                try:
                    other.send(m)
                except WebSocketError:
                    failures += 1
    finally:
        members.remove(ws)
    return []


@route("/info")
def info(environ, start_response, ws, q):
    mro = [c.__module__ + "." + c.__name__ for c in WebSocketError.__mro__]
    ws.send(json.dumps({
        "path": ws.path,
        "origin": ws.origin,
        "protocol": ws.protocol,
        "version": ws.version,
        "closed": ws.closed,
        "environ_is_environ": ws.environ is environ,
        "websocket_version": environ.get("wsgi.websocket_version"),
        "websocket_keys": sorted(k for k in environ if k.startswith("wsgi.websocket")),
        "query": environ.get("QUERY_STRING"),
        "error_module": WebSocketError.__module__,
        "error_mro": mro,
        "error_is_oserror": issubclass(WebSocketError, OSError),
    }, sort_keys=True))
    _echo_loop(ws)
    return []


@route("/close_code")
def close_code(environ, start_response, ws, q):
    if "code" in q:
        ws.close(int(q["code"]), q.get("reason", "").encode("utf-8"))
    else:
        ws.close()
    res = {"closed": ws.closed}
    try:
        ws.send("after close")
        res["send_after"] = {"returned": None}
    except Exception as e:
        res["send_after"] = _exc_info(e)
    if q.get("tag"):
        record("close_code-" + q["tag"], json.dumps(res))
    return []


@route("/rw")
def rw(environ, start_response, ws, q):
    """The reader greenlet sits in receive() while the writer sends."""
    import gevent
    import gevent.queue
    inbox = gevent.queue.Queue()

    def reader():
        while True:
            m = ws.receive()
            inbox.put(m)
            if m is None:
                return

    def writer():
        while True:
            m = inbox.get()
            if m is None:
                return
            if m == "go":
                for i in range(5):
                    ws.send("tick %d" % i)
                    gevent.sleep(0.01)
            else:
                ws.send("w:" + m)

    gs = [gevent.spawn(reader), gevent.spawn(writer)]
    gevent.joinall(gs, raise_error=True)
    if q.get("tag"):
        record("rw-" + q["tag"], "ok")
    return []


@route("/two_writers")
def two_writers(environ, start_response, ws, q):
    """Two greenlets send large messages to one websocket at once: the
    frames must not interleave."""
    import gevent
    n, size = int(q.get("n", "10")), int(q.get("size", "300000"))

    def writer(ch):
        for i in range(n):
            ws.send(ch[:0].join([ch * 2, b"%d" % i if ch == b"b" else "%d" % i,
                                 ch * size]))

    gs = [gevent.spawn(writer, "a"), gevent.spawn(writer, b"b")]
    gevent.joinall(gs, raise_error=True)
    _echo_loop(ws)
    return []


@route("/returns_body")
def returns_body(environ, start_response, ws, q):
    """After the upgrade the WSGI body is meaningless: it must never reach
    the wire (gevent-websocket's handler discards it)."""
    if q.get("use") == "1":
        ws.send("used")
    if q.get("sr") == "1":
        start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"THIS BODY MUST NOT BE SENT"]


@route("/timeout_receive")
def timeout_receive(environ, start_response, ws, q):
    """gevent: receive() interrupted by gevent.Timeout, again and again;
    the websocket must keep working."""
    import gevent
    ticks = 0
    while True:
        try:
            with gevent.Timeout(float(q.get("t", "0.1"))):
                m = ws.receive()
        except gevent.Timeout:
            ticks += 1
            ws.send("tick %d" % ticks)
            continue
        if m is None:
            break
        ws.send("got:%s" % m)
    return []


STASH = {}


@route("/stash")
def stash(environ, start_response, ws, q):
    """Keeps the websocket object after the request is over."""
    ws.send("stashed")
    STASH[q["name"]] = ws
    return []


@route("/use_stash")
def use_stash(environ, start_response, ws, q):
    """Uses a websocket object whose request is over: every call must
    raise WebSocketError (or report closed), never crash the worker."""
    old = STASH.pop(q["name"])
    res = {"closed": repr(old.closed)}
    for name, call in (("send", lambda: old.send("to a dead websocket")),
                       ("send_binary", lambda: old.send(b"x" * 100000)),
                       ("receive", old.receive),
                       ("receive_again", old.receive),
                       ("close", old.close)):
        try:
            res[name] = {"returned": repr(call())}
        except Exception as e:
            res[name] = _exc_info(e)
    for attr in ("path", "origin", "protocol", "version"):
        try:
            res[attr] = repr(getattr(old, attr))
        except Exception as e:
            res[attr] = _exc_info(e)
    ws.send(json.dumps(res, sort_keys=True))
    _echo_loop(ws)
    return []


@route("/raise_after")
def raise_after(environ, start_response, ws, q):
    ws.send("about to raise")
    raise RuntimeError("ws_app: deliberate failure after the upgrade")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    record("calls.log", path + "\n")
    if path in ("/http", "/__health__"):
        return _body(start_response, "plain http\n")
    ws = environ.get("wsgi.websocket")
    if ws is None:
        return _json_body(start_response, {
            "websocket": False, "path": path,
            "keys": sorted(k for k in environ if k.startswith("wsgi.websocket"))})
    handler = ROUTES.get(path)
    if handler is None:
        ws.close(4004, b"no such route")
        return []
    return handler(environ, start_response, ws, query(environ))


def _app_protocol(path):
    return "superchat" if path == "/negotiate" else None


app.app_protocol = _app_protocol


# ------------------------------------------------------------ gevent-websocket

def make_compat_app():
    """An app written for gevent-websocket, as its README shows them."""
    from collections import OrderedDict

    from geventwebsocket.protocols.base import BaseProtocol
    from geventwebsocket.resource import Resource, WebSocketApplication

    class EchoApplication(WebSocketApplication):
        def on_open(self):
            record("compat.log", "open %s\n" % self.ws.path)
            self.ws.send("hello from on_open")

        def on_message(self, message):
            if message is None:
                return
            self.ws.send(message)

        def on_close(self, reason):
            record("compat.log", "close %s\n" % self.ws.path if self.ws.path else "close\n")

    class ChatProtocol(BaseProtocol):
        PROTOCOL_NAME = "chat.v1"

    class ChatApplication(EchoApplication):
        protocol_class = ChatProtocol

        def on_message(self, message):
            if message is None:
                return
            self.ws.send("chat:" + message)

    def plain(environ, start_response):
        body = ("plain route %s\n" % environ["PATH_INFO"]).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return Resource(OrderedDict([
        ("^/echo$", EchoApplication),
        ("^/chat$", ChatApplication),
        ("^/.*", plain),
    ]))


if __name__ == "__main__":
    from gevent.pywsgi import WSGIServer
    from geventwebsocket.handler import WebSocketHandler

    spec, port = sys.argv[1], int(sys.argv[2])
    application = make_compat_app() if spec == "make_compat_app()" else globals()[spec]
    WSGIServer(("127.0.0.1", port), application, handler_class=WebSocketHandler,
               log=None).serve_forever()
