"""uWSGI-asyncio style: the app never names srv; asyncio.get_event_loop()
in a request returns srv's loop (made on that first call), and call_later
fires after the response."""
import asyncio
import json
import os

STATE = os.environ.get("SRV_TEST_STATE", "/tmp")


def mark():
    with open(os.path.join(STATE, "later.tmp"), "w") as f:
        f.write(type(asyncio.get_running_loop()).__module__)
    os.replace(os.path.join(STATE, "later.tmp"), os.path.join(STATE, "later"))


def app(environ, start_response):
    if environ["PATH_INFO"] == "/schedule":
        loop = asyncio.get_event_loop()
        loop.call_later(0.3, mark)
        out = {"type": type(loop).__name__, "module": type(loop).__module__,
               "running": asyncio.get_running_loop() is loop}
    else:
        out = {"hello": True}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
