"""Recorder app for the request-smuggling suite (tests/test_smuggling.py).

Every request the app is called for appends one JSON line to
``$SRV_TEST_STATE/seen.jsonl``:

    {"method": ..., "path": PATH_INFO, "query": QUERY_STRING, "host": HTTP_HOST,
     "body": <the bytes wsgi.input.read() returned, latin-1 decoded>,
     "body_len": ..., "exc": <exception class name or null>,
     "pid": <worker pid>}

The line is written after the body read finished (or failed) and before the
response is returned, so by the time a client has a response (or the
connection is gone) the line is on disk.

The response is ``200`` with ``PATH_INFO`` as the body.  ``/noread`` answers
without touching wsgi.input (srv must drain or refuse the unread body).
"""
import json
import os


def _state_file():
    d = os.environ.get("SRV_TEST_STATE")
    return os.path.join(d, "seen.jsonl") if d else None


def _record(entry):
    path = _state_file()
    if path is None:
        return
    line = json.dumps(entry, sort_keys=True) + "\n"
    # One write() of one line in append mode: lines never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    entry = {
        "method": environ.get("REQUEST_METHOD", ""),
        "path": path,
        "query": environ.get("QUERY_STRING", ""),
        "host": environ.get("HTTP_HOST"),
        "body": "",
        "body_len": 0,
        "exc": None,
        "pid": os.getpid(),
    }
    try:
        if path != "/noread":
            try:
                body = environ["wsgi.input"].read()
            except Exception as e:  # recorded, not raised: the test checks it
                entry["exc"] = type(e).__name__
            else:
                entry["body"] = body.decode("latin-1")
                entry["body_len"] = len(body)
    finally:
        _record(entry)
    out = path.encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]
