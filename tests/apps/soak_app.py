"""App for the soak run (bench/soak.py, tests/test_soak.py): one cheap route
per code path, plus /gc, which reports the number of live Python objects
after a full collection, so that the soak can tell a leak from noise."""
import gc

HELLO = b"Hello, World!\n"
BIG = b"b" * (1 << 20)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/gc":
        gc.collect()
        body = b"%d" % len(gc.get_objects())
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk%d\n" % i for i in range(3))
    if path == "/upload":
        n = len(environ["wsgi.input"].read())
        body = b"%d" % n
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/err":
        raise RuntimeError("soak: expected error")
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return [BIG]
    start_response("200 OK", [("Content-Length", str(len(HELLO)))])
    return [HELLO]
