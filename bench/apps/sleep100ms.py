"""B3: a handler that blocks in time.sleep(0.1).

Servers that monkey-patch the stdlib (gevent) turn the sleep into a
cooperative wait; the others hold a worker (or thread) for 0.1 s.
"""
import time

BODY = b"slept 0.1 s\n"


def app(environ, start_response):
    time.sleep(0.1)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
