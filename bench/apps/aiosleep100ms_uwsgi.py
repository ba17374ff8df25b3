"""B8 for uWSGI's asyncio mode (--asyncio N --greenlet): the same
asyncio.sleep(0.1) coroutine, scheduled as a Task the way uWSGI's asyncio
documentation shows (the request greenlet switches to the loop's greenlet
and the coroutine switches back when done)."""
import asyncio

import greenlet

BODY = b"slept 0.1 s\n"


async def sleep_then_resume(me):
    await asyncio.sleep(0.1)
    me.switch()


def app(environ, start_response):
    me = greenlet.getcurrent()
    asyncio.ensure_future(sleep_then_resume(me))
    me.parent.switch()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
