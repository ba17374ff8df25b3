"""For `--app factory_app:make_app()`.  The factory is called once, with no
arguments; the app it returns reports how many times that happened."""

CALLS = 0


def make_app():
    global CALLS
    CALLS += 1
    calls_at_creation = CALLS

    def app(environ, start_response):
        body = ("made-by-factory calls=%d created=%d"
                % (CALLS, calls_at_creation)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return app


# `--app factory_app:make_app` (no parentheses) would use make_app itself as
# the WSGI app; calling it with (environ, start_response) raises TypeError.
