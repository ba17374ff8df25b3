"""B8: a handler that awaits asyncio.sleep(0.1) through srv.run_async.

The same wait as B3's time.sleep(0.1), but as a coroutine on srv's asyncio
loop: the request greenlet is suspended while the Task runs.  srv only.
"""
import asyncio

import srv

BODY = b"slept 0.1 s\n"


def app(environ, start_response):
    srv.run_async(asyncio.sleep(0.1))
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
