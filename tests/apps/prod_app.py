"""The production-operations test app (tests/test_master.py, test_limits.py,
test_sockets.py, test_logging.py, test_proxy.py, test_nginx.py).

Routes (by PATH_INFO; query parameters in parentheses):

  /info, /        JSON: pid, ppid, REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme,
                  VERSION, method, path, query, the request headers
  /sleep (t)      sleep t seconds (time.sleep: cooperative in gevent mode),
                  then /info's JSON
  /errors (msg)   write msg + "\\n" to environ['wsgi.errors'], then 200
  /stream (n, delay, size)
                  n chunks of `size` bytes, sleeping `delay` between them
                  (chunked: no Content-Length)
  /big (size, chunk)
                  `size` bytes of b"x" from a generator with Content-Length;
                  the generator's close() is recorded as big-closed
  /echo           reads the whole body; JSON: length, sha256, CONTENT_LENGTH,
                  HTTP_TRANSFER_ENCODING, REMOTE_ADDR, REMOTE_PORT
  /read           reads the body with wsgi.input.read(); 200 "read N"
  /status (code)  an empty response with that status (e.g. 204)
  /fail           raises (500)
  /exit           os._exit(1): the worker dies
  /hang (t)       busy-loops t seconds without yielding (heartbeat test)

Every request's PATH_INFO is appended to $SRV_TEST_STATE/prod_seen.log
before the app does anything else, so tests can tell whether the app ever
saw a request.

VERSION: if $PROD_VERSION_MODULE names a module, it is imported when this
module is imported and its VERSION attribute is used (tests put that module
in a temporary --pythonpath directory and rewrite it before a SIGHUP
reload); else $PROD_VERSION, else "builtin".
"""
import hashlib
import importlib
import json
import os
import time
from urllib.parse import parse_qs

_mod = os.environ.get("PROD_VERSION_MODULE")
if _mod:
    VERSION = str(importlib.import_module(_mod).VERSION)
else:
    VERSION = os.environ.get("PROD_VERSION", "builtin")

STATE = os.environ.get("SRV_TEST_STATE")


def _record(name, text):
    if not STATE:
        return
    with open(os.path.join(STATE, name), "a") as f:
        f.write(text)


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _text(start_response, body, status="200 OK"):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _info(environ):
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "remote_port": environ.get("REMOTE_PORT"),
        "scheme": environ.get("wsgi.url_scheme"),
        "version": VERSION,
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }


def info(environ, start_response):
    return _json(start_response, _info(environ))


def sleep(environ, start_response):
    t = float(_q(environ).get("t", "1"))
    time.sleep(t)
    return _json(start_response, _info(environ))


def errors(environ, start_response):
    msg = _q(environ).get("msg", "wsgi.errors message")
    err = environ["wsgi.errors"]
    err.write(msg + "\n")
    err.flush()
    return _text(start_response, b"logged\n")


def stream(environ, start_response):
    q = _q(environ)
    n = int(q.get("n", "5"))
    delay = float(q.get("delay", "0.1"))
    size = int(q.get("size", "16"))

    def gen():
        for i in range(n):
            if i:
                time.sleep(delay)
            piece = (b"%d:" % i).ljust(size, b".")[:size]
            yield piece
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return gen()


def big(environ, start_response):
    q = _q(environ)
    size = int(q.get("size", str(1 << 20)))
    chunk = int(q.get("chunk", "65536"))
    block = b"x" * chunk

    def gen():
        left = size
        try:
            while left > 0:
                n = min(left, chunk)
                yield block if n == chunk else block[:n]
                left -= n
        finally:
            _record("big-closed", "%d\n" % (size - left))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return gen()


def echo(environ, start_response):
    data = environ["wsgi.input"].read()
    return _json(start_response, {
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "remote_port": environ.get("REMOTE_PORT"),
        "pid": os.getpid(),
    })


def read(environ, start_response):
    data = environ["wsgi.input"].read()
    _record("read-done", "%d\n" % len(data))
    return _text(start_response, b"read %d\n" % len(data))


def status(environ, start_response):
    code = int(_q(environ).get("code", "204"))
    reasons = {204: "No Content", 404: "Not Found", 201: "Created"}
    start_response("%d %s" % (code, reasons.get(code, "Status")), [])
    return []


def fail(environ, start_response):
    raise RuntimeError("prod_app /fail: deliberate error")


def exit_(environ, start_response):
    os._exit(1)


def hang(environ, start_response):
    t = float(_q(environ).get("t", "5"))
    end = time.monotonic() + t
    x = 0
    while time.monotonic() < end:   # never yields to the loop
        x += 1
    return _text(start_response, b"hung %d\n" % (x > 0))


ROUTES = {
    "/": info,
    "/info": info,
    "/__health__": info,
    "/sleep": sleep,
    "/errors": errors,
    "/stream": stream,
    "/big": big,
    "/echo": echo,
    "/read": read,
    "/status": status,
    "/fail": fail,
    "/exit": exit_,
    "/hang": hang,
}


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    _record("prod_seen.log", path + "\n")
    handler = ROUTES.get(path)
    if handler is None:
        return _text(start_response, b"not found\n", "404 Not Found")
    return handler(environ, start_response)
