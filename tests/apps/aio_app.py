"""asyncio inside WSGI requests, through srv.run_async (tests/test_asyncio.py).

Routes by PATH_INFO; the query string carries parameters.  Side effects
that happen after a response (call_later, cancelled tasks) are recorded as
files in $SRV_TEST_STATE.
"""
import asyncio
import contextvars
import json
import os
import socket
import threading
import time
from urllib.parse import parse_qs

import srv

STATE = os.environ.get("SRV_TEST_STATE", "/tmp")
TASKS = {}


def mark(name, text="1"):
    """Records a side effect; the file appears whole (tests poll for it)."""
    path = os.path.join(STATE, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


async def sleep_then(value, seconds):
    await asyncio.sleep(seconds)
    return value


async def gather(n, seconds):
    t0 = time.monotonic()
    got = await asyncio.gather(*(sleep_then(i, seconds) for i in range(n)))
    return {"n": len(got), "sum": sum(got), "elapsed": time.monotonic() - t0}


async def wait_for_times_out():
    try:
        await asyncio.wait_for(asyncio.sleep(5), 0.2)
    except asyncio.TimeoutError:
        return "timed out"
    return "did not time out"


async def echo(port, data):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    got = await reader.readexactly(len(data))
    writer.close()
    await writer.wait_closed()
    return got


async def getaddrinfo():
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def blocking(seconds):
    time.sleep(seconds)
    return threading.current_thread().name


async def executor(seconds):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, blocking, seconds)


async def boom():
    await asyncio.sleep(0)
    raise ValueError("boom from a coroutine")


async def slow(name):
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        mark(name, "cancelled")
        raise


async def aiohttp_get(url):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, await resp.text()


async def redis_roundtrip(port, key):
    import redis.asyncio as aredis
    r = aredis.Redis(host="127.0.0.1", port=port)
    try:
        await r.set(key, "v-" + key)
        await r.incr(key + ":n")
        value = (await r.get(key)).decode()
        n = int(await r.get(key + ":n"))
        return {"value": value, "n": n}
    finally:
        await r.close()


async def pg_query(dsn, x):
    import asyncpg
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT $1::int * 2 AS doubled, pg_sleep(0.3) IS NULL AS slept", x)
        return {"doubled": row["doubled"], "version": conn.get_server_version().major}
    finally:
        await conn.close()


async def small():
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    return "ok"


async def busy(name, seconds):
    """Always has work: every step ends with a callback ready to run."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    steps = 0
    while loop.time() < end:
        await asyncio.sleep(0)
        steps += 1
    mark(name, str(steps))


CV = contextvars.ContextVar("cv", default="unset")


def bad_soon_callback(arg):
    raise ValueError("boom from call_soon " + arg)


async def core_semantics():
    """The loop's own call_soon/call_at/call_later: order, arguments,
    contexts, cancelling, and no timer before its time."""
    loop = asyncio.get_running_loop()
    out = {}
    seen = []
    done = loop.create_future()
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(lambda: done.set_result(None))
    await done
    out["soon_order"] = seen

    ctx = contextvars.copy_context()
    ctx.run(CV.set, "in-ctx")
    got = loop.create_future()
    loop.call_soon(lambda: got.set_result(CV.get()), context=ctx)
    out["soon_context"] = await got

    fired = []
    t0 = loop.time()
    handles = []
    for delay in (0.06, 0.02, 0.04, 0.0):
        when = t0 + delay
        handles.append(loop.call_at(when, lambda w=when, d=delay: fired.append((d, loop.time() >= w))))
    cancelled = loop.call_later(0.03, fired.append, "cancelled one ran")
    cancelled.cancel()
    late = loop.call_later(0.08, lambda: None)
    await asyncio.sleep(0.1)
    out["timer_order"] = [d for d, _ in fired]
    out["never_early"] = all(ok for _, ok in fired)
    out["when"] = abs(handles[0].when() - (t0 + 0.06)) < 1e-9
    out["cancelled"] = [cancelled.cancelled(), handles[0].cancelled()]
    out["repr"] = repr(late).split()[0]
    out["handle_types"] = [type(handles[0]).__name__, type(loop.call_soon(lambda: None)).__name__]
    return out


async def woken_from_thread(seconds):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def other():
        time.sleep(seconds)
        loop.call_soon_threadsafe(fut.set_result, "woken")
    start_real_thread(other)
    return await fut


def start_real_thread(fn):
    """An OS thread even when gevent has patched threading."""
    try:
        from gevent import monkey
        start = monkey.get_original("_thread", "start_new_thread")
    except ImportError:
        import _thread
        start = _thread.start_new_thread
    start(fn, ())


def route(path, q):
    loop = srv.get_event_loop()
    if path == "/leak":
        return srv.run_async(small())
    if path == "/sleep":
        return srv.run_async(sleep_then("slept", float(q.get("s", "0.2"))))
    if path == "/gather":
        return srv.run_async(gather(int(q.get("n", "100")), float(q.get("s", "0.5"))))
    if path == "/wait_for":
        return srv.run_async(wait_for_times_out())
    if path == "/run_async_timeout":
        try:
            srv.run_async(asyncio.sleep(5), timeout=0.2)
        except TimeoutError:
            return "TimeoutError"
        return "no timeout"
    if path == "/cancelled":
        fut = loop.create_future()
        loop.call_later(0.05, fut.cancel)
        try:
            srv.run_async(fut)
        except asyncio.CancelledError:
            return "CancelledError"
        return "not cancelled"
    if path == "/echo":
        return srv.run_async(echo(int(q["port"]), q.get("data", "hello").encode())).decode()
    if path == "/getaddrinfo":
        return srv.run_async(getaddrinfo())
    if path == "/executor":
        return srv.run_async(executor(float(q.get("s", "0.1"))))
    if path == "/task/create":
        TASKS[q["name"]] = loop.create_task(sleep_then("task " + q["name"], float(q.get("s", "0.3"))))
        return "created"
    if path == "/task/await":
        task = TASKS.pop(q["name"])
        return {"done_before": task.done(), "result": srv.run_async(task)}
    if path == "/call_later":
        asyncio.get_event_loop().call_later(float(q.get("s", "0.3")), mark, q["name"], "fired")
        return "scheduled"
    if path == "/fire_and_forget":
        loop.create_task(slow(q["name"]))
        return "started"
    if path == "/raise":
        return srv.run_async(boom())
    if path == "/slow":
        return srv.run_async(slow(q["name"]))
    if path == "/loops":
        return {
            "running": asyncio.get_running_loop() is loop,
            "get_event_loop": asyncio.get_event_loop() is loop,
            "type": type(loop).__name__,
            "is_srv_loop": isinstance(loop, srv.EventLoop),
            "is_selector_loop": isinstance(loop, asyncio.SelectorEventLoop),
        }
    if path == "/signal":
        try:
            loop.add_signal_handler(15, lambda: None)
        except NotImplementedError as e:
            return "NotImplementedError: %s" % e
        return "accepted"
    if path == "/bad_callback":
        loop.call_soon(lambda: 1 / 0)
        return "scheduled"
    if path == "/nested":
        async def inner():
            try:
                srv.run_async(asyncio.sleep(0))
            except RuntimeError as e:
                return "RuntimeError: %s" % e
            return "nested ran"
        return srv.run_async(inner())
    if path == "/run_until_complete":
        # old-style code: get_event_loop().run_until_complete() in a request
        return asyncio.get_event_loop().run_until_complete(sleep_then("ruc", float(q.get("s", "0.5"))))
    if path == "/asyncio_run":
        try:
            asyncio.run(sleep_then("ran", 0))
        except RuntimeError as e:
            return "RuntimeError: %s" % e
        return "asyncio.run ran"
    if path == "/from_thread":
        # another OS thread: asyncio's own rules, and run_async refuses clearly
        out = {}

        def other():
            try:
                asyncio.get_event_loop()
                out["get_event_loop"] = "returned a loop"
            except RuntimeError as e:
                out["get_event_loop"] = "RuntimeError"
            try:
                srv.run_async(asyncio.sleep(0))
                out["run_async"] = "ran"
            except RuntimeError as e:
                out["run_async"] = str(e)
            fut = asyncio.run_coroutine_threadsafe(sleep_then("threadsafe", 0.05), loop)
            out["threadsafe"] = fut.result(5)
        import threading as _t
        t = _t.Thread(target=other)
        t.start()
        while t.is_alive():
            srv.run_async(asyncio.sleep(0.01))
        return out
    if path == "/core":
        return srv.run_async(core_semantics())
    if path == "/threadsafe_wake":
        # a real OS thread (not a gevent one) wakes an otherwise idle loop
        return srv.run_async(woken_from_thread(float(q.get("s", "0.1"))))
    if path == "/bad_soon":
        loop.call_soon(bad_soon_callback, "soon-arg")
        srv.run_async(asyncio.sleep(0.05))
        return "scheduled"
    if path == "/kill_loop":
        # a BaseException out of a callback ends run_forever(); srv restarts it
        def stop():
            raise SystemExit("callback raised SystemExit")
        loop.call_soon(stop)
        srv.run_async(asyncio.sleep(0.05))
        return "survived"
    if path == "/block_in_coroutine":
        # A coroutine that blocks the asyncio loop (time.sleep: in gevent
        # mode a gevent wait) while a registered fd is readable: srv must
        # not spin on that fd meanwhile.
        async def blocked(port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")               # sent at once; the echo comes back
            time.sleep(float(q.get("s", "1")))  # while this blocks the asyncio loop
            got = await reader.readexactly(4)
            writer.close()
            return got.decode()
        return srv.run_async(blocked(int(q["port"])))
    if path == "/idle_setup":
        loop.call_later(600, lambda: None)
        loop.create_task(asyncio.sleep(600))
        return "idle"
    if path == "/busy":
        loop.create_task(busy(q["name"], float(q.get("s", "2"))))
        return "busy"
    if path == "/tasks":
        return {"tasks": len(asyncio.all_tasks(loop))}
    if path == "/aiohttp":
        status, text = srv.run_async(aiohttp_get(q["url"]))
        return {"status": status, "text": text}
    if path == "/redis":
        return srv.run_async(redis_roundtrip(int(q["port"]), q["key"]))
    if path == "/pg":
        return srv.run_async(pg_query(q["dsn"], int(q["x"])))
    if path == "/":
        return "hello"
    return None


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    result = route(environ["PATH_INFO"], q)
    if result is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
