#!/usr/bin/python3
"""In-process baseline: a WSGI app called in a loop, no server.

    bench/baseline.py --app flaskhello:app [--seconds 2] [--rounds 5] [--json]

Builds once the environ srv builds for one of wrk's requests (GET / with only
a Host header) and, per call, copies it, gives it a fresh wsgi.input
(io.BytesIO) and sys.stderr as wsgi.errors, calls the app with a
start_response that checks its arguments, joins the body and calls close()
when the result has one: what every server does at least.  Prints the CPU
(process_time: utime+stime) per call in µs, the median over --rounds runs of
--seconds each, after a warm-up.  bench/run pins it like the server
(taskset -c 0) and subtracts it from each server's µs per request: the
server's overhead on that app.
"""
import argparse
import io
import json
import os
import statistics
import sys
import time


def environ_like_srv(port=8080):
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
        "RAW_URI": "/", "REQUEST_URI": "/", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": "srv",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:%d" % port,
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.input": None,
        "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.input_terminated": True,
        "wsgi.file_wrapper": None,
    }


def load(spec, chdir):
    if chdir:
        os.chdir(chdir)
        sys.path.insert(0, chdir)
    mod, _, attr = spec.partition(":")
    obj = __import__(mod)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    return obj


def make_start_response():
    def start_response(status, headers, exc_info=None):
        if not isinstance(status, str) or not isinstance(headers, list):
            raise TypeError("bad start_response arguments")
        return None
    return start_response


def one_call(app, template, start_response):
    env = template.copy()
    env["wsgi.input"] = io.BytesIO(b"")
    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return body


def measure(app, template, seconds):
    sr = make_start_response()
    n = 0
    t0 = time.process_time()
    w0 = time.monotonic()
    batch = 200
    while True:
        for _ in range(batch):
            one_call(app, template, sr)
        n += batch
        if time.monotonic() - w0 >= seconds:
            break
    return (time.process_time() - t0) * 1e6 / n, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--app", required=True)
    ap.add_argument("--chdir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "apps"))
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--expect", help="expected body (checked once)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int,
                    help="make exactly this many calls after 200 to warm up, and no timing "
                         "(for instruction counts: bench/appcost.sh)")
    a = ap.parse_args()
    app = load(a.app, a.chdir)
    template = environ_like_srv()
    body = one_call(app, template, make_start_response())
    if a.expect is not None and body != a.expect.encode():
        print("baseline: unexpected body %r" % body[:200], file=sys.stderr)
        return 1
    if a.calls is not None:
        sr = make_start_response()
        for _ in range(200 + a.calls):
            one_call(app, template, sr)
        print("%s: %d calls" % (a.app, a.calls))
        return 0
    measure(app, template, min(1.0, a.seconds))   # warm-up
    per = [measure(app, template, a.seconds) for _ in range(a.rounds)]
    us = [p[0] for p in per]
    out = {"app": a.app, "us_per_call": round(statistics.median(us), 2),
           "us_rounds": [round(u, 2) for u in us],
           "calls": sum(p[1] for p in per)}
    if a.json:
        print(json.dumps(out))
    else:
        print("%s: %.2f µs CPU per call (rounds: %s)" % (
            a.app, out["us_per_call"], " ".join("%.2f" % u for u in us)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
