"""Minimal app used by the leak test."""

BODY = b"Hello, World!\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
