"""bench/appcost.sh: the in-process baseline loop, run inside srv's worker.

GET /?N calls the app named by $SRV_INPROC_APP (default flaskhello:app) N
times the way bench/baseline.py does (a copy of the same environ, a fresh
wsgi.input, the body joined, close() called), inside this one request, and
answers "ok N".  Counted by callgrind at two values of N, it gives what one
call of the app costs in the interpreter srv embeds, to set against the same
loop under the system's python3 and against a request served by srv.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import baseline  # noqa: E402  (bench/baseline.py)

_app = baseline.load(os.environ.get("SRV_INPROC_APP", "flaskhello:app"),
                     os.path.dirname(os.path.abspath(__file__)))
_template = baseline.environ_like_srv()
_start_response = baseline.make_start_response()
for _ in range(200):   # warm-up: imports and caches that the first calls fill
    baseline.one_call(_app, _template, _start_response)


def app(environ, start_response):
    n = int(environ.get("QUERY_STRING") or 0)
    for _ in range(n):
        baseline.one_call(_app, _template, _start_response)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok %d\n" % n]
