"""Echo app: returns a JSON description of the WSGI environ and the body.

Query flags (parsed from QUERY_STRING, which is otherwise echoed raw):
  noread=1   do not read wsgi.input at all
"""
import hashlib
import json

KEYS = [
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
    "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "RAW_URI", "REQUEST_URI",
    "wsgi.version", "wsgi.url_scheme", "wsgi.multithread",
    "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated",
]


def describe(environ):
    env = {}
    types = {}
    for k, v in environ.items():
        if k in KEYS or k.startswith("HTTP_"):
            env[k] = list(v) if isinstance(v, tuple) else v
            types[k] = type(v).__name__
    present = sorted(k for k in environ if isinstance(k, str))
    return env, types, present


def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is not None and environ["PATH_INFO"] == "/ws":
        while (message := ws.receive()) is not None:   # echo (tests/valgrind)
            ws.send(message)
        return []
    env, types, present = describe(environ)
    qs = environ.get("QUERY_STRING", "")
    if "noread=1" in qs.split("&"):
        body = b""
    else:
        body = environ["wsgi.input"].read()
    out = {
        "environ": env,
        "types": types,
        "keys": present,
        "has_input": "wsgi.input" in environ,
        "has_errors": "wsgi.errors" in environ,
        "has_file_wrapper": "wsgi.file_wrapper" in environ,
        "body": body.decode("latin-1"),
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    data = json.dumps(out, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
