#!/usr/bin/python3
"""B8 peer: aiohttp's own server, one process, a handler that awaits
asyncio.sleep(0.1) (bench/run starts it)."""
import argparse
import asyncio

from aiohttp import web

BODY = b"slept 0.1 s\n"


async def handler(request):
    await asyncio.sleep(0.1)
    return web.Response(body=BODY, content_type="text/plain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--backlog", type=int, default=2048)
    a = ap.parse_args()
    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, host="127.0.0.1", port=a.port, backlog=a.backlog,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
