"""C10K bench app: every request waits one second (time.sleep, which is
cooperative once gevent has patched it), then answers 'ok'."""
import time


def app(environ, start_response):
    time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
