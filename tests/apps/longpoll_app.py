"""Long polling and Server-Sent Events, for tests/test_longpoll.py and
bench/longpoll.py.

Handlers that wait a long time on something other than a socket: a gevent
Event or Queue, or srv.sleep.  Routes (query parameters in brackets):

  /hello, /__health__      a normal, fast request
  /wait/event[timeout=S]   waits on the module-level gevent Event for up to
                           S seconds (default 60): "fired" or "timeout"
  /wait/queue[timeout=S&ch=C]
                           Queue.get(timeout=S) on channel C (default
                           "default"): the item, or "timeout"
  /wait/sleep[s=S]         srv.sleep(S), then "slept"
  /publish[event=1]        sets the Event and clears it again at once: every
                           handler waiting at that moment gets "fired"
  /publish[item=X&n=N&ch=C]
                           puts X on channel C; with n, puts N distinct
                           items X.0 ... X.(N-1)
  /sse[n=N&interval=S&id=I]
                           text/event-stream: N events "data: I/k", srv.sleep(S)
                           between them
  /sse/queue[ch=C&hb=S&id=I]
                           text/event-stream fed from channel C: an "open"
                           event at once, then one "data: ITEM" event per item
                           until the item "close"; with hb, a ": hb" comment
                           after each S seconds without an item
  /stats[reset_gc=1]       JSON: how many handlers wait on what, SSE streams
                           open/ended, channel sizes, and garbage-collector
                           pauses (counts and the longest, per generation,
                           since the last reset_gc)

The gevent routes need gevent mode (srv starts gevent's hub before it
imports the app).  In --mode native this module does not import gevent;
those routes answer 501 and only /hello, /wait/sleep, /sse and /stats apply.  Under another server
(bench/peer_gevent.py), gevent.sleep stands in for srv.sleep.
"""
import gc
import json
import sys
import time
import urllib.parse

try:
    import srv
except ImportError:   # gevent.pywsgi as a peer in bench/longpoll.py
    srv = None



def _gevent_mode():
    """srv's gevent mode starts gevent's hub before it imports the app.  In
    native mode gevent may be imported all the same (srv imports
    gevent-websocket's exceptions when it is installed), but no hub runs."""
    if "gevent" not in sys.modules:
        return False
    if srv is None:     # another gevent server: bench/peer_gevent.py
        return True
    from gevent._hub_local import get_hub_if_exists
    return get_hub_if_exists() is not None


GEVENT = _gevent_mode()

if GEVENT:
    import gevent
    import gevent.event
    import gevent.queue

    EVENT = gevent.event.Event()
    _channels = {}

    def channel(name):
        q = _channels.get(name)
        if q is None:
            q = _channels[name] = gevent.queue.Queue()
        return q


def sleep(seconds):
    if srv is not None:
        srv.sleep(seconds)
    elif GEVENT:
        gevent.sleep(seconds)
    else:
        time.sleep(seconds)


STATS = {
    "event_waiters": 0,     # handlers inside EVENT.wait()
    "queue_waiters": 0,     # handlers inside Queue.get()
    "sleepers": 0,          # handlers inside /wait/sleep
    "fired": 0, "timeouts": 0, "items_taken": 0, "slept": 0,
    "sse_open": 0,          # SSE generators started and not yet finished
    "sse_done": 0,          # ... that ran to their end
    "sse_closed": 0,        # ... that were closed early (GeneratorExit)
    "sse_events": 0,        # data events yielded, all streams
    "published_events": 0, "published_items": 0,
}
PROGRESS = {}   # SSE id -> events yielded so far

# Garbage-collector pauses, for bench/longpoll.py: a full collection walks
# every suspended request's frames, so it grows with the number waiting.
GC = {"collections": [0, 0, 0], "max_ms": [0.0, 0.0, 0.0], "total_ms": 0.0}
_gc_t0 = [0.0]


def _gc_callback(phase, info):
    if phase == "start":
        _gc_t0[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _gc_t0[0]) * 1e3
    g = info["generation"]
    GC["collections"][g] += 1
    GC["max_ms"][g] = max(GC["max_ms"][g], round(ms, 3))
    GC["total_ms"] = round(GC["total_ms"] + ms, 3)


gc.callbacks.append(_gc_callback)


def _text(start_response, body, status="200 OK"):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def _need_gevent(start_response):
    return _text(start_response, "this route needs gevent mode\n", "501 Not Implemented")


SSE_HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]


def _sse_timed(n, interval, sid):
    STATS["sse_open"] += 1
    PROGRESS[sid] = 0
    ended = False
    try:
        for k in range(n):
            if k:
                sleep(interval)
            STATS["sse_events"] += 1
            PROGRESS[sid] = k + 1
            yield ("id: %d\ndata: %s/%d\n\n" % (k, sid, k)).encode()
        ended = True
    finally:
        STATS["sse_open"] -= 1
        STATS["sse_done" if ended else "sse_closed"] += 1


def _sse_queue(q, hb, sid):
    STATS["sse_open"] += 1
    PROGRESS[sid] = 0
    ended = False
    try:
        yield b"event: open\ndata: " + sid.encode() + b"\n\n"
        while True:
            try:
                item = q.get(timeout=hb)
            except gevent.queue.Empty:
                yield b": hb\n\n"
                continue
            if item == "close":
                break
            STATS["sse_events"] += 1
            PROGRESS[sid] += 1
            yield ("data: %s\n\n" % item).encode()
        ended = True
    finally:
        STATS["sse_open"] -= 1
        STATS["sse_done" if ended else "sse_closed"] += 1


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))

    if path in ("/hello", "/__health__"):
        return _text(start_response, b"Hello, World!\n")

    if path == "/wait/sleep":
        STATS["sleepers"] += 1
        try:
            sleep(float(q.get("s", "1")))
        finally:
            STATS["sleepers"] -= 1
        STATS["slept"] += 1
        return _text(start_response, "slept")

    if path == "/sse":
        n = int(q.get("n", "5"))
        interval = float(q.get("interval", "0.5"))
        start_response("200 OK", SSE_HEADERS)
        return _sse_timed(n, interval, q.get("id", "sse"))

    if path == "/stats":
        out = dict(STATS)
        out["mode"] = "gevent" if GEVENT else "native"
        out["gevent_imported"] = "gevent" in sys.modules
        out["gevent_hub"] = False
        if "gevent" in sys.modules:
            from gevent._hub_local import get_hub_if_exists
            out["gevent_hub"] = get_hub_if_exists() is not None
        out["progress"] = PROGRESS
        out["gc"] = {k: list(v) if isinstance(v, list) else v for k, v in GC.items()}
        out["gc"]["objects"] = len(gc.get_objects())
        if q.get("reset_gc"):
            GC.update(collections=[0, 0, 0], max_ms=[0.0, 0.0, 0.0], total_ms=0.0)
        if GEVENT:
            out["channels"] = {k: v.qsize() for k, v in _channels.items()}
            out["event_set"] = EVENT.is_set()
        return _json(start_response, out)

    if not GEVENT:
        return _need_gevent(start_response)

    if path == "/wait/event":
        STATS["event_waiters"] += 1
        try:
            fired = EVENT.wait(float(q.get("timeout", "60")))
        finally:
            STATS["event_waiters"] -= 1
        STATS["fired" if fired else "timeouts"] += 1
        return _text(start_response, "fired" if fired else "timeout")

    if path == "/wait/queue":
        ch = channel(q.get("ch", "default"))
        STATS["queue_waiters"] += 1
        try:
            item = ch.get(timeout=float(q.get("timeout", "60")))
        except gevent.queue.Empty:
            item = None
        finally:
            STATS["queue_waiters"] -= 1
        if item is None:
            STATS["timeouts"] += 1
            return _text(start_response, "timeout")
        STATS["items_taken"] += 1
        return _text(start_response, item)

    if path == "/publish":
        out = {}
        if q.get("event"):
            out["event_waiters"] = STATS["event_waiters"]
            EVENT.set()
            EVENT.clear()
            STATS["published_events"] += 1
        if "item" in q:
            ch = channel(q.get("ch", "default"))
            if "n" in q:
                items = ["%s.%d" % (q["item"], i) for i in range(int(q["n"]))]
            else:
                items = [q["item"]]
            for it in items:
                ch.put(it)
            STATS["published_items"] += len(items)
            out["items"] = len(items)
        return _json(start_response, out)

    if path == "/sse/queue":
        hb = float(q["hb"]) if "hb" in q else None
        start_response("200 OK", SSE_HEADERS)
        return _sse_queue(channel(q.get("ch", "default")), hb, q.get("id", "sseq"))

    return _text(start_response, "no such route\n", "404 Not Found")
