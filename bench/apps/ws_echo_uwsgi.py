"""WebSocket echo for uwsgi (bench/ws_echo.py): uwsgi's own websocket API,
which blocks through uwsgi's wait hooks, i.e. yields to the hub under
--gevent. websocket_recv() answers pings itself and raises IOError once the
peer has closed. A plain GET gets "ok" (readiness check).
"""
import uwsgi

OK = b"ok\n"


def app(environ, start_response):
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(OK)))])
        return [OK]
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"],
                              environ.get("HTTP_ORIGIN", ""))
    while True:
        try:
            msg = uwsgi.websocket_recv()
        except IOError:
            break
        uwsgi.websocket_send(msg)
    return []
