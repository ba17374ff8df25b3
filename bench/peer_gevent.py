"""gevent.pywsgi serving a WSGI app (default examples/hello.py:app), the peer
srv is compared with.

    /usr/bin/python3 bench/peer_gevent.py --port 8001 [--host 127.0.0.1]
        [--app MODULE:CALLABLE] [--chdir DIR] [--websocket]

--websocket serves with gevent-websocket's WebSocketHandler (the peer of
bench/ws_echo.py: srv's environ["wsgi.websocket"] has the same API).

--app names the application like srv does; --chdir changes to DIR and puts
it first on sys.path before the app is imported (default: examples/).

Access logging is off and TCP_NODELAY is set on every accepted socket, so
the comparison with srv is like for like.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "examples"))


def load_app(spec, chdir):
    os.chdir(chdir)
    sys.path.insert(0, os.path.abspath(chdir))
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "app")


class NoDelayWSGIServer(WSGIServer):
    def handle(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return super().handle(sock, address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--backlog", type=int, default=1024)
    ap.add_argument("--app", default="hello:app")
    ap.add_argument("--chdir", default=EXAMPLES)
    ap.add_argument("--websocket", action="store_true",
                    help="gevent-websocket's WebSocketHandler")
    a = ap.parse_args()
    app = load_app(a.app, a.chdir)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.host, a.port))
    listener.listen(a.backlog)
    extra = {}
    if a.websocket:
        from geventwebsocket.handler import WebSocketHandler
        extra["handler_class"] = WebSocketHandler
    server = NoDelayWSGIServer(listener, app, log=None, **extra)
    sys.stderr.write("%s listening on %s:%d\n" % ("gevent-websocket" if a.websocket
                                                  else "gevent.pywsgi", a.host, a.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
