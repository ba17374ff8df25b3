"""Control app for the overhead study: hello world plus pure-Python arithmetic
(SPIN iterations, default 1500: about what Flask costs in-process), no
framework.  See bench/README.md, "What the overhead is made of"."""
import os
N = int(os.environ.get("SPIN", "1500"))
BODY = b"Hello, World!\n"
def app(environ, start_response):
    x = 0
    for i in range(N):
        x += i
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [BODY]
