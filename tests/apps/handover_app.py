"""Reports which interpreter runs the worker (tests/test_handover.py)."""
import json
import os
import sys

import srv


def app(environ, start_response):
    body = json.dumps({
        "executable": sys.executable,
        "exe": os.path.realpath("/proc/self/exe"),
        "argv": sys.argv,
        "path": sys.path,
        "srv_origin": getattr(srv.__spec__, "origin", None),
        "srv_file": getattr(srv, "__file__", None),
        "sleep": callable(getattr(srv, "sleep", None)),
        "pid": os.getpid(),
        "ppid": os.getppid(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
