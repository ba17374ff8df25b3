"""Apps for tests/test_gevent_mode.py: blocking calls that must yield.

Served by srv in gevent mode, where the stdlib is monkey-patched before this
module is imported.  Each route does one kind of blocking thing and returns
JSON.  SRV_TEST_STATE is a directory the tests read afterwards.
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request

import gevent
import greenlet
import requests   # imported here, not in the handler: an import blocks the loop

STATE = os.environ.get("SRV_TEST_STATE", "/tmp")
local = threading.local()
parked = {}   # name -> greenlet, for the kill test


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _record(name, text):
    with open(os.path.join(STATE, name), "w") as f:
        f.write(text)


SHARED_RLOCK = threading.RLock()
SHARED_COUNT = [0]


RLOCK_CALLS = [((), {}), ((True,), {}), ((1, 0.5), {}), ((), {"timeout": 1}),
               ((), {"blocking": 0}), ((), {"blocking": True, "timeout": 2}),
               ((), {"foo": 1}), ((1, 2, 3), {}), ((), {"timeout": "x"}),
               ((False, 1), {}), ((True, -2), {}), ((True,), {"blocking": True}),
               (([],), {}), ((1.5,), {})]


def rlock_arguments(make):
    """What acquire() answers to each of RLOCK_CALLS on a free lock: its
    result, or the type of the exception it raised."""
    got = []
    for args, kw in RLOCK_CALLS:
        lock = make()
        try:
            r = lock.acquire(*args, **kw)
            got.append(r)
            if r:
                lock.release()
        except Exception as e:
            got.append(type(e).__name__)
    return got


def wait_while_held(lock, free, out):
    """lock is held by someone else: acquire(timeout) gives up in time, and
    a blocking acquire() waits until free() (called 0.05 s later) lets it
    go, then releases it."""
    t0 = time.monotonic()
    out["timeout_while_held"] = lock.acquire(timeout=0.05)
    out["timeout_waited"] = time.monotonic() - t0 >= 0.045
    gevent.spawn_later(0.05, free)
    t0 = time.monotonic()
    out["blocking_after_release"] = lock.acquire()
    out["blocking_waited"] = time.monotonic() - t0 >= 0.04
    lock.release()


def lock_semantics():
    """threading.Lock in gevent mode: srv's C lock, owned by no one."""
    import _thread
    import queue
    from gevent import monkey
    cpython_lock = monkey.get_original("_thread", "allocate_lock")
    lock = threading.Lock()
    out = {"types": sorted({type(x).__module__ + "." + type(x).__name__
                            for x in (lock, _thread.allocate_lock(), threading._allocate_lock())}),
           "is_LockType": isinstance(lock, _thread.LockType),
           "arguments": {"srv": rlock_arguments(threading.Lock),
                         "cpython": rlock_arguments(cpython_lock)}}
    out["not_reentrant"] = [lock.acquire(), lock.acquire(False), lock.locked()]
    # another greenlet may release it, as another thread may a thread lock
    gevent.spawn(lock.release).join()
    out["released_by_other"] = lock.locked()
    try:
        lock.release()
        out["release_unlocked"] = "no error"
    except RuntimeError as e:
        out["release_unlocked"] = str(e)

    # held elsewhere: a timeout expires, a blocking acquire waits for release
    lock.acquire()
    wait_while_held(lock, lock.release, out)

    # a spin loop over acquire(False) lets the holder run and release
    lock.acquire()
    gevent.spawn(lock.release)
    spins = 0
    while not lock.acquire(False):
        spins += 1
        if spins > 1000:
            break
    out["spin_acquired"] = spins <= 1000
    lock.release()

    # Event and Queue (Condition over Lock) across greenlets
    ev = threading.Event()
    gevent.spawn_later(0.02, ev.set)
    out["event"] = ev.wait(5)
    q = queue.Queue()
    gevent.spawn_later(0.02, q.put, "item")
    out["queue"] = q.get(timeout=5)

    # five greenlets that sleep while holding it never overlap
    inside = [0, 0]

    def worker():
        with lock:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
            time.sleep(0.01)
            inside[0] -= 1
    gevent.joinall([gevent.spawn(worker) for _ in range(5)], timeout=5)
    out["max_inside"] = inside[1]
    return out


def rlock_semantics():
    """threading.RLock in gevent mode: srv's C lock owned by a greenlet."""
    out = {"type": type(threading.RLock()).__module__ + "." + type(threading.RLock()).__name__}
    import _thread
    other = []
    gevent.spawn(lambda: other.append(threading.get_ident())).join()
    out["get_ident"] = [threading.get_ident() == id(gevent.getcurrent()),
                        _thread.get_ident() == threading.get_ident(),
                        other[0] != threading.get_ident(),
                        threading.current_thread().ident == threading.get_ident(),
                        type(threading.get_ident).__name__]
    lock = threading.RLock()
    out["reentrant"] = [lock.acquire(), lock.acquire(), lock._is_owned()]
    lock.release()
    lock.release()
    out["arguments"] = {"srv": rlock_arguments(threading.RLock),
                        "cpython": rlock_arguments(_thread.RLock)}
    try:
        lock.release()
        out["release_unowned"] = "no error"
    except RuntimeError as e:
        out["release_unowned"] = str(e)

    # held by another greenlet: non-blocking fails, a timeout expires, and a
    # blocking acquire waits for the release
    held = gevent.event.Event()
    go = gevent.event.Event()

    def holder():
        with lock:
            held.set()
            go.wait()
    g = gevent.spawn(holder)
    held.wait()
    out["nonblocking_while_held"] = lock.acquire(blocking=False)
    try:
        lock.release()
        out["release_others"] = "no error"
    except RuntimeError as e:
        out["release_others"] = str(e)
    wait_while_held(lock, go.set, out)
    g.join()

    # threading.Condition over it, across greenlets
    cond = threading.Condition(threading.RLock())
    box = []

    def producer():
        with cond:
            box.append("item")
            cond.notify()
    with cond:
        with cond:                   # wait() must release both levels
            gevent.spawn_later(0.02, producer)
            out["condition"] = cond.wait_for(lambda: box, timeout=5) == ["item"]
    return out


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = dict(urllib.parse.parse_qsl(environ["QUERY_STRING"]))

    if path == "/__health__":
        return _json(start_response, {"ok": True})

    if path == "/rlock":
        return _json(start_response, rlock_semantics())

    if path == "/lock":
        return _json(start_response, lock_semantics())

    if path == "/rlock-hold":
        # one module-level RLock, held across a cooperative sleep by one
        # request while others queue on it: they must wait, not fail
        t0 = time.monotonic()
        with SHARED_RLOCK:
            with SHARED_RLOCK:       # re-entered by the same greenlet
                inside = SHARED_COUNT[0]
                SHARED_COUNT[0] += 1
                time.sleep(float(q.get("s", "0.1")))
                overlapped = SHARED_COUNT[0] != inside + 1
        return _json(start_response, {"overlapped": overlapped,
                                      "waited": time.monotonic() - t0})

    if path == "/sleep":
        t0 = time.monotonic()
        time.sleep(float(q.get("s", "0.5")))
        return _json(start_response, {"slept": time.monotonic() - t0})

    if path == "/whoami":
        cur = gevent.getcurrent()
        time.sleep(float(q.get("s", "0")))
        return _json(start_response, {
            "id": id(cur),
            "is_raw_current": cur is greenlet.getcurrent(),
            "parent_is_hub": cur.parent is gevent.get_hub(),
            "still_me": gevent.getcurrent() is cur,
        })

    if path == "/urllib":
        with urllib.request.urlopen(q["url"], timeout=10) as r:
            return _json(start_response, {"status": r.status, "body": r.read().decode()})

    if path == "/requests":
        r = requests.get(q["url"], timeout=10)
        return _json(start_response, {"status": r.status_code, "body": r.text})

    if path == "/echo-tcp":
        with socket.create_connection(("127.0.0.1", int(q["port"])), timeout=10) as s:
            msg = q.get("msg", "ping").encode()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        return _json(start_response, {"echo": got.decode()})

    if path == "/dns":
        infos = socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
        return _json(start_response, {
            "addrs": sorted({i[4][0] for i in infos}),
            "patched": socket.getaddrinfo.__module__.startswith("gevent"),
        })

    if path == "/spawn":
        name = q["name"]

        def later():
            time.sleep(0.3)
            _record(name, "done")

        gevent.spawn(later)
        return _json(start_response, {"spawned": True})

    if path == "/timeout":
        try:
            with gevent.Timeout(0.2):
                time.sleep(3)
            outcome = "no timeout"
        except gevent.Timeout:
            outcome = "timeout"
        return _json(start_response, {"outcome": outcome})

    if path == "/local":
        before = getattr(local, "value", None)
        local.value = q["v"]
        time.sleep(float(q.get("s", "0.2")))
        return _json(start_response, {"before": before, "after": local.value})

    if path == "/park":
        name = q["name"]
        parked[name] = gevent.getcurrent()
        try:
            time.sleep(30)
        except greenlet.GreenletExit:
            _record(name, "killed")
            raise
        return _json(start_response, {"parked": "woke up"})

    if path == "/kill":
        g = parked.pop(q["name"], None)
        if g is not None:
            gevent.kill(g)
        return _json(start_response, {"killed": g is not None})

    if path == "/linger":
        # Runs until shut-down kills it; records that it was told.
        try:
            time.sleep(60)
        finally:
            _record(q["name"], "finally ran")
        return _json(start_response, {})

    if path == "/slow-head":
        time.sleep(float(q.get("s", "3")))
        return _json(start_response, {"late": True})

    if path == "/slow-body":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            yield b"first\n"
            time.sleep(float(q.get("s", "3")))
            yield b"second\n"
        return body()

    if path == "/loop":
        loop = gevent.get_hub().loop
        return _json(start_response, {
            "loop_type": "%s.%s" % (type(loop).__module__, type(loop).__name__),
            "default": loop.default,
            "gevent_file": gevent.__file__,
            "prefix": sys.prefix,
            "base_prefix": sys.base_prefix,
        })

    if path == "/loop-api":
        return _json(start_response, _loop_api())

    return _json(start_response, {"path": path}, "404 Not Found")


def _loop_api():
    """gevent features that reach each kind of watcher of the loop srv gives
    gevent; each entry is the observed result."""
    import gevent.event
    import gevent.select
    import gevent.subprocess
    import signal

    out = {}
    hub = gevent.get_hub()
    # run_callback, and a callback stopped before it runs
    ran = []
    cb = hub.loop.run_callback(ran.append, "cb")
    stopped = hub.loop.run_callback(ran.append, "stopped")
    stopped.stop()
    out["pending_before"] = [cb.pending, stopped.pending]
    gevent.sleep(0)
    out["callbacks"] = ran
    # timers: spawn_later, Timeout, Event.wait with a timeout, timer.again
    g = gevent.spawn_later(0.05, lambda: "later")
    out["spawn_later"] = g.get(timeout=5)
    try:
        with gevent.Timeout(0.05):
            gevent.sleep(5)
        out["timeout"] = "no"
    except gevent.Timeout:
        out["timeout"] = "raised"
    out["event_wait"] = gevent.event.Event().wait(0.02)
    fired = []
    t = hub.loop.timer(0.01, 0.01)
    t.again(lambda: fired.append(1) if len(fired) < 3 else t.stop())
    gevent.sleep(0.2)
    out["repeats"] = len(fired)
    out["stopped_timer_active"] = t.active
    t.close()
    # io: select on a socket pair
    a, b = socket.socketpair()
    b.send(b"x")
    r, _, _ = gevent.select.select([a], [], [], 5)
    out["select"] = len(r)
    a.close()
    b.close()
    # io with pass_events (select.poll), the selectors module, a FileObject
    a, b = socket.socketpair()
    b.send(b"y")
    poller = gevent.select.poll()
    poller.register(a.fileno(), gevent.select.POLLIN)
    out["poll"] = [ev for _, ev in poller.poll(5000)]
    import gevent.selectors
    sel = gevent.selectors.DefaultSelector()
    sel.register(a, gevent.selectors.EVENT_READ)
    out["selector"] = len(sel.select(5))
    sel.close()
    a.close()
    b.close()
    import gevent.fileobject
    rfd, wfd = os.pipe()
    reader = gevent.fileobject.FileObject(rfd, "rb")
    gevent.spawn_later(0.02, os.write, wfd, b"piped")
    out["fileobject"] = reader.read1(100).decode()
    reader.close()
    os.close(wfd)
    # queue with a timeout, a pool, AsyncResult from a later greenlet
    import gevent.pool
    import gevent.queue
    try:
        gevent.queue.Queue().get(timeout=0.02)
        out["queue"] = "got"
    except gevent.queue.Empty:
        out["queue"] = "empty"
    out["pool"] = list(gevent.pool.Pool(3).imap(lambda x: x * 2, range(5)))
    result = gevent.event.AsyncResult()
    gevent.spawn_later(0.01, result.set, "async")
    out["async_result"] = result.get(timeout=5)
    # idle
    gevent.idle()
    out["idle"] = True
    # async from another (real) thread: the threadpool
    out["threadpool"] = hub.threadpool.apply(lambda: 6 * 7)
    # signal watcher
    got = []
    h = gevent.signal_handler(signal.SIGUSR2, lambda: got.append("usr2"))
    os.kill(os.getpid(), signal.SIGUSR2)
    gevent.sleep(0.1)
    h.cancel()
    out["signal"] = got
    # child watcher: gevent's subprocess
    p = gevent.subprocess.run(["sh", "-c", "exit 3"])
    out["child_status"] = p.returncode
    # an exception in a callback goes to the hub's error handler, and the
    # loop goes on
    hub.loop.run_callback(lambda: 1 / 0)
    gevent.sleep(0.01)
    out["after_error"] = True
    return out

