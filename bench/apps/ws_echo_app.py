"""WebSocket echo (bench/ws_echo.py), for srv and gevent-websocket alike:
both put a gevent-websocket-style object in environ["wsgi.websocket"]
(receive() -> str/bytes, None once closed; send(data)). A plain GET (no
upgrade) gets "ok", which the benchmark uses to see that the server is up.
"""

OK = b"ok\n"


def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(OK)))])
        return [OK]
    while True:
        msg = ws.receive()
        if msg is None:
            break
        ws.send(msg)
    return []
