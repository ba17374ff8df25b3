"""App for tests/test_review_defects.py (issue 11's reproduced defects).

Routes (PATH_INFO):
  /readwrite   gevent mode: a spawned greenlet writes 8 MiB through write()
               while the request's greenlet reads wsgi.input; both must end
  /locale      sets LC_TIME to de_DE.UTF-8 (LOCPATH from the test), answers
  /ws-close    WebSocket: close(code, reason) from the query; the outcome
               (None or the exception) is recorded in $SRV_TEST_STATE
  /info        {"pid": the worker's pid} (for produtil.Load)
  anything else: 200 "ok"
"""
import json
import locale
import os
from urllib.parse import parse_qs

BIG = 32 << 20


def _record(name, obj):
    d = os.environ.get("SRV_TEST_STATE")
    if d:
        with open(os.path.join(d, name), "w") as f:
            json.dump(obj, f)


def readwrite(environ, start_response):
    import gevent
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    wrote = []

    def writer():
        write(b"w" * BIG)
        wrote.append(BIG)

    g = gevent.spawn(writer)
    gevent.sleep(0.1)            # the writer is blocked on the client by now
    body = environ["wsgi.input"].read()
    g.join()
    return [b"|read=%d|wrote=%d" % (len(body), sum(wrote))]


def set_locale(environ, start_response):
    try:
        locale.setlocale(locale.LC_TIME, "de_DE.UTF-8")
        got = "de"
    except locale.Error as e:
        got = "error: %s" % e
    body = got.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def ws_close(environ, start_response):
    ws = environ.get("wsgi.websocket")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        ws.close(int(q["code"]), q.get("reason", "").encode("utf-8"))
        outcome = None
    except Exception as e:
        outcome = type(e).__name__ + ": " + str(e)
    _record("ws-close", {"outcome": outcome})
    return []


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/readwrite":
        return readwrite(environ, start_response)
    if path == "/locale":
        return set_locale(environ, start_response)
    if path == "/ws-close":
        return ws_close(environ, start_response)
    if path == "/info":
        body = json.dumps({"pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
