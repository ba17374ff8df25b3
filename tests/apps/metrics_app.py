"""The app behind tests/test_metrics.py, routed by PATH_INFO.

/pid          200, the worker's pid
/status?code=N  that status, with a short body
/raise        raises before start_response (srv answers 500)
/sleep?t=S    srv.sleep(S) (suspends the greenlet in srv's hub), then 200
/spin?t=S     busy-waits S seconds (blocks the whole worker), then the pid
/bytes?n=N    N bytes of body
/read         reads the whole request body, answers its length
anything else 404 from the app, with "app 404" in the body
"""
import os
import time

import srv

from _testdata import query


def reply(start_response, status, body):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    if path == "/pid":
        return reply(start_response, "200 OK", str(os.getpid()))
    if path == "/status":
        code = int(q.get("code", "200"))
        return reply(start_response, "%d Whatever" % code, "status %d" % code)
    if path == "/raise":
        raise RuntimeError("metrics test: deliberate error")
    if path == "/sleep":
        srv.sleep(float(q.get("t", "0.5")))
        return reply(start_response, "200 OK", "slept")
    if path == "/spin":
        end = time.monotonic() + float(q.get("t", "0.5"))
        while time.monotonic() < end:
            pass
        return reply(start_response, "200 OK", str(os.getpid()))
    if path == "/read":
        return reply(start_response, "200 OK", str(len(environ["wsgi.input"].read())))
    if path == "/bytes":
        return reply(start_response, "200 OK", b"x" * int(q.get("n", "1000")))
    return reply(start_response, "404 Not Found", "app 404: " + path)
