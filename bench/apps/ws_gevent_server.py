"""gevent-websocket on gevent.pywsgi, the peer bench/ws_echo.py compares
srv's WebSocket support with (same app code: srv mirrors its API).

    /usr/bin/python3 bench/apps/ws_gevent_server.py --port 8001 \
        [--app ws_echo_app:app] [--chdir bench/apps]

Like bench/peer_gevent.py: monkey.patch_all() first (srv's gevent mode
patches too), no access log, TCP_NODELAY on every accepted socket.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


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
    ap.add_argument("--backlog", type=int, default=2048)
    ap.add_argument("--app", default="ws_echo_app:app")
    ap.add_argument("--chdir", default=HERE)
    a = ap.parse_args()
    os.chdir(a.chdir)
    sys.path.insert(0, os.path.abspath(a.chdir))
    module, _, name = a.app.partition(":")
    app = getattr(importlib.import_module(module), name or "app")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.host, a.port))
    listener.listen(a.backlog)
    server = NoDelayWSGIServer(listener, app, log=None,
                               handler_class=WebSocketHandler)
    sys.stderr.write("gevent-websocket listening on %s:%d\n" % (a.host, a.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
