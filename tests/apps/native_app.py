"""An app for --mode native: srv.sleep is the cooperative sleep.  It must not
import gevent, so that it also serves where gevent cannot be imported."""
import json

import srv


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        srv.sleep(0.5)
    body = json.dumps({"version": srv.__version__}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
