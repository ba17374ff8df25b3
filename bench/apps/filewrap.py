"""B7: a file sent through environ['wsgi.file_wrapper'].

The file is named by $BENCH_FILE (bench/run creates a 100 KiB file in its
temp dir). A server without wsgi.file_wrapper gets the file read in 64 KiB
blocks instead (gevent.pywsgi has none); the X-File-Wrapper response header
says which path was taken.
"""
import os

PATH = os.environ.get("BENCH_FILE", "")
BLOCK = 65536


def _blocks(f):
    try:
        while True:
            data = f.read(BLOCK)
            if not data:
                break
            yield data
    finally:
        f.close()


def app(environ, start_response):
    f = open(PATH, "rb")
    size = os.fstat(f.fileno()).st_size
    wrapper = environ.get("wsgi.file_wrapper")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size)),
                              ("X-File-Wrapper", "yes" if wrapper else "no")])
    if wrapper is not None:
        return wrapper(f, BLOCK)
    return _blocks(f)
