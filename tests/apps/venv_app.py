"""Reports which Python installation serves it: sys.prefix, sys.executable
and where `srv_venv_marker` (a module only the test's virtualenv has) and
the `srv` module come from."""
import json
import os
import sys

import srv


def app(environ, start_response):
    try:
        import srv_venv_marker
        marker = srv_venv_marker.__file__
    except ImportError:
        marker = None
    body = json.dumps({
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "exe": os.path.realpath("/proc/self/exe"),
        "marker": marker,
        # srv's own module, built in or (handed over: srv's handover.h)
        # created by srv's finder, never a file from the virtualenv
        "srv_builtin": getattr(srv.__spec__, "origin", None) == "built-in"
                       and not hasattr(srv, "__file__"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
