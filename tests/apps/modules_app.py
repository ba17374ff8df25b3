"""Answers with the gevent-related modules this worker has imported."""
import json
import sys


def app(environ, start_response):
    body = json.dumps(sorted(m for m in sys.modules if m.startswith("gevent"))).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
