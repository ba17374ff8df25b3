"""App for the mixed-workload leak test: a few different code paths of the
server (list / generator / write() / reading a body / file_wrapper /
exception / srv.sleep), each cheap."""
import io

try:
    import srv
except ImportError:
    srv = None

HELLO = b"Hello, World!\n"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"g%d" % i for i in range(3))
    if path == "/post":
        data = environ["wsgi.input"].read()
        body = b"%d" % len(data)
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/write":
        w = start_response("200 OK", [("Content-Type", "text/plain")])
        w(b"w")
        return [b"x"]
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"f" * 100), 32)
    if path == "/err":
        raise ValueError("leak-test error")
    if path == "/sleep":
        srv.sleep(0)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]
