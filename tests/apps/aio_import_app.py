"""srv.run_async at import time runs srv's asyncio loop until the awaitable
is done; the loop then serves requests as usual."""
import asyncio
import json

import srv


async def compute():
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    return {"value": 42, "loop_is_srv": loop is srv.get_event_loop()}


AT_IMPORT = srv.run_async(compute())


def app(environ, start_response):
    now = srv.run_async(compute())
    body = json.dumps({"import": AT_IMPORT, "request": now}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
