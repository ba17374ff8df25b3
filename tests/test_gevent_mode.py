"""gevent mode: blocking calls in handlers yield to the one shared loop.

srv runs on gevent's hub; its own watchers sit on gevent's libev loop.
These tests make handlers block in the ways real apps do (time.sleep,
urllib, requests, raw sockets, DNS, gevent.Timeout, gevent.spawn) and check
that everyone else is served meanwhile.  Timing bounds are loose (several
times the ideal) but far below the serial time, so each test can fail.
"""
import http.client
import http.server
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import APPS_DIR, run_srv, wait_for
from produtil import tcp_echo_server

# Sanitizer builds (make test-asan) run several times slower: the loose
# wall-clock bounds below are scaled, never dropped.
SLOW = 3.0 if os.environ.get("SRV_SANITIZED") else 1.0


def get_json(port, path, timeout=20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


@pytest.fixture(scope="module")
def gsrv(module_server_factory):
    return module_server_factory("gevent_app:app", "--mode", "gevent")


@pytest.fixture(scope="module")
def slow_peer():
    """A plain threaded HTTP server in the test process that answers after
    0.5 s: the 'remote service' a handler calls."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.5)
            body = b"peer says hi"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d/" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def echo_peer():
    with tcp_echo_server(delay=0.3) as port:
        yield port


def test_startup_line_names_mode_and_shared_loop(gsrv):
    gsrv.warm_up("/__health__")
    err = gsrv.stderr_text()
    assert "gevent mode" in err
    assert "ev_default_loop" in err
    assert "monkey-patched" in err


def test_200_concurrent_sleeps_overlap(gsrv):
    """200 handlers each doing time.sleep(0.5): serially 100 s."""
    n = 200
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda i: get_json(gsrv.port, "/sleep?s=0.5"), range(n)))
    elapsed = time.monotonic() - t0
    assert all(status == 200 for status, _ in results)
    assert all(body["slept"] >= 0.45 for _, body in results)
    assert elapsed < 10 * SLOW, "200 x 0.5 s sleeps took %.1f s: they did not overlap" % elapsed


def test_request_greenlet_is_current_and_child_of_hub(gsrv):
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda i: get_json(gsrv.port, "/whoami?s=0.2"), range(5)))
    ids = set()
    for status, body in results:
        assert status == 200
        assert body["is_raw_current"] and body["parent_is_hub"] and body["still_me"]
        ids.add(body["id"])
    assert len(ids) == 5, "concurrent requests shared a greenlet"


def _fast_requests_during(port, slow_path, n_fast=10):
    """Runs the slow request and, meanwhile, n_fast quick ones; returns the
    slow result and the slowest quick latency."""
    with ThreadPoolExecutor(max_workers=n_fast + 1) as pool:
        slow = pool.submit(get_json, port, slow_path)
        time.sleep(0.1)
        lat = []

        def quick(_):
            t0 = time.monotonic()
            status, _ = get_json(port, "/__health__")
            lat.append(time.monotonic() - t0)
            return status

        statuses = list(pool.map(quick, range(n_fast)))
        return slow.result(), statuses, max(lat)


@pytest.mark.parametrize("client", ["urllib", "requests"])
def test_handler_calls_another_http_server(gsrv, slow_peer, client):
    from urllib.parse import quote
    (status, body), statuses, worst = _fast_requests_during(
        gsrv.port, "/%s?url=%s" % (client, quote(slow_peer, safe="")))
    assert status == 200 and body == {"status": 200, "body": "peer says hi"}
    assert statuses == [200] * len(statuses)
    assert worst < 0.4 * SLOW, "a quick request waited %.2f s behind an outgoing call" % worst


def test_handler_talks_raw_tcp(gsrv, echo_peer):
    (status, body), statuses, worst = _fast_requests_during(
        gsrv.port, "/echo-tcp?port=%d&msg=hello-echo" % echo_peer)
    assert status == 200 and body == {"echo": "hello-echo"}
    assert statuses == [200] * len(statuses)
    assert worst < 0.25 * SLOW


def test_dns_through_patched_resolver(gsrv):
    status, body = get_json(gsrv.port, "/dns")
    assert status == 200
    assert "127.0.0.1" in body["addrs"]
    assert body["patched"], "socket.getaddrinfo is not gevent's"


def test_spawned_work_outlives_response(gsrv):
    name = "spawn-%d" % os.getpid()
    t0 = time.monotonic()
    status, body = get_json(gsrv.port, "/spawn?name=" + name)
    assert status == 200 and body == {"spawned": True}
    assert time.monotonic() - t0 < 0.3 * SLOW, "the response waited for the spawned greenlet"
    path = gsrv.state_path(name)
    assert wait_for(lambda: os.path.exists(path), timeout=5), "spawned greenlet never ran"
    with open(path) as f:
        assert f.read() == "done"


def test_gevent_timeout_in_handler(gsrv):
    t0 = time.monotonic()
    status, body = get_json(gsrv.port, "/timeout")
    assert status == 200 and body == {"outcome": "timeout"}
    assert time.monotonic() - t0 < 2 * SLOW


def test_threading_local_isolated_between_concurrent_requests(gsrv):
    vals = ["v%d" % i for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda v: get_json(gsrv.port, "/local?s=0.2&v=" + v), vals))
    for v, (status, body) in zip(vals, results):
        assert status == 200
        assert body["after"] == v, "another request's threading.local value leaked in"
        assert body["before"] is None, "a previous request's value was visible"
    # Sequential requests reuse pooled greenlets: still nothing leaks.
    for i in range(5):
        status, body = get_json(gsrv.port, "/local?s=0&v=seq%d" % i)
        assert body["before"] is None


def test_threading_rlock_is_srvs_greenlet_lock_with_rlock_semantics(gsrv):
    # gevent's patching leaves threading.RLock() to CPython's Python _RLock;
    # srv makes it a C lock owned by the greenlet, with the same behaviour
    status, got = get_json(gsrv.port, "/rlock")
    assert status == 200, got
    assert got["type"] == "srv.RLock", got
    # get_ident(): the greenlet's id, as gevent's, from C
    assert got["get_ident"] == [True, True, True, True, "builtin_function_or_method"], got
    assert got["reentrant"] == [True, True, True], got
    # acquire() reads its arguments as CPython's C RLock does, errors included
    args = got["arguments"]
    assert args["srv"] == args["cpython"], args
    assert True in args["cpython"] and "TypeError" in args["cpython"] \
        and "ValueError" in args["cpython"], args
    assert got["release_unowned"] == "cannot release un-acquired lock", got
    assert got["nonblocking_while_held"] is False, got
    assert got["timeout_while_held"] is False and got["timeout_waited"], got
    assert got["release_others"] == "cannot release un-acquired lock", got
    assert got["blocking_after_release"] is True and got["blocking_waited"], got
    assert got["condition"] is True, got


def test_threading_lock_is_srvs_c_lock_with_lock_semantics(gsrv):
    # gevent's patched Lock is its Cython BoundedSemaphore; srv puts a C lock
    # in its places (threading.Lock, _thread.allocate_lock, ...), which
    # behaves as a thread lock does, between greenlets
    status, got = get_json(gsrv.port, "/lock")
    assert status == 200, got
    assert got["types"] == ["srv.Lock"], got
    assert got["is_LockType"] is True, got
    args = got["arguments"]
    assert args["srv"] == args["cpython"], args
    assert True in args["cpython"] and "TypeError" in args["cpython"], args
    assert got["not_reentrant"] == [True, False, True], got
    assert got["released_by_other"] is False, got
    assert got["release_unlocked"] == "release unlocked lock", got
    assert got["timeout_while_held"] is False and got["timeout_waited"], got
    assert got["blocking_after_release"] is True and got["blocking_waited"], got
    assert got["spin_acquired"] is True, got
    assert got["event"] is True and got["queue"] == "item", got
    assert got["max_inside"] == 1, got


def test_rlock_held_across_a_sleep_serialises_only_its_holders(gsrv):
    # 10 requests take one shared RLock (twice each) around a 0.1 s sleep:
    # they queue on it one by one, never overlap inside, and none fails;
    # a request that does not take the lock is answered meanwhile
    with ThreadPoolExecutor(max_workers=11) as pool:
        held = [pool.submit(get_json, gsrv.port, "/rlock-hold?s=0.1") for _ in range(10)]
        time.sleep(0.15)
        t0 = time.monotonic()
        status, _ = get_json(gsrv.port, "/__health__")
        free_latency = time.monotonic() - t0
        results = [f.result() for f in held]
    assert status == 200
    assert free_latency < 0.5 * SLOW, free_latency
    for status, body in results:
        assert status == 200, body
        assert body["overlapped"] is False, body
    waits = sorted(body["waited"] for _, body in results)
    assert waits[-1] >= 0.9, waits    # the last one queued behind nine others


def test_killed_request_greenlet_ends_its_connection(gsrv):
    name = "park-%d" % os.getpid()
    c = http.client.HTTPConnection("127.0.0.1", gsrv.port, timeout=10)
    c.request("GET", "/park?name=" + name)
    time.sleep(0.3)
    status, body = get_json(gsrv.port, "/kill?name=" + name)
    assert status == 200 and body == {"killed": True}
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.getresponse()
    c.close()
    assert wait_for(lambda: os.path.exists(gsrv.state_path(name)), timeout=5)
    gsrv.assert_healthy()


def test_request_timeout_gives_504_or_closes(server_factory):
    s = server_factory("gevent_app:app", "--mode", "gevent", "--request-timeout", "0.5")
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", "/slow-head?s=5")
    r = c.getresponse()
    assert r.status == 504
    r.read()
    assert time.monotonic() - t0 < 3 * SLOW
    c.close()
    # Headers already sent: the connection is cut short.
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", "/slow-body?s=5")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    assert "RequestTimeout" in s.stderr_text()
    s.assert_healthy()


def test_shutdown_kills_remaining_request_greenlets(server_factory):
    s = server_factory("gevent_app:app", "--mode", "gevent", "--graceful-timeout", "0.5")
    s.warm_up("/__health__")
    name = "linger-%d" % os.getpid()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", "/linger?name=" + name)
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = s.stop(timeout=10)
    assert rc == 0, s.stderr_text()
    assert time.monotonic() - t0 < 5 * SLOW
    with open(s.state_path(name)) as f:
        assert f.read() == "finally ran"
    c.close()


def test_native_mode_with_srv_sleep(server_factory):
    s = server_factory("native_app:app", "--mode", "native")
    s.warm_up("/")
    assert "native mode" in s.stderr_text()
    assert "block" in s.stderr_text()
    n = 50
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda i: get_json(s.port, "/sleep"), range(n)))
    assert all(status == 200 for status, _ in results)
    assert time.monotonic() - t0 < 6 * SLOW, "srv.sleep did not overlap in native mode"


def test_refuses_gevent_that_cannot_take_a_loop_class():
    r = run_srv(["--app", "gevent_app:app", "--mode", "gevent",
                 "--pythonpath", str(APPS_DIR / "fake_gevent_old")])
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "no gevent.config" in last
    assert "--mode native" in last


def test_auto_mode_falls_back_to_native_without_gevent(server_factory):
    s = server_factory("native_app:app",
                       "--pythonpath", str(APPS_DIR / "fake_gevent_broken"))
    s.warm_up("/")
    assert "native mode" in s.stderr_text()


def test_mode_gevent_without_gevent_is_a_usage_error():
    r = run_srv(["--app", "native_app:app", "--mode", "gevent",
                 "--pythonpath", str(APPS_DIR / "fake_gevent_broken")])
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert "python3-gevent" in last


def test_refuses_greenlet_with_another_c_api():
    """srv checks the greenlet C API table it imports against the one it was
    compiled against, and stops in one line instead of calling into it."""
    r = run_srv(["--app", "native_app:app", "--mode", "native",
                 "--pythonpath", str(APPS_DIR / "fake_greenlet_other_api")])
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "greenlet 99.0 (test stand-in) does not match the greenlet C API" in last
    assert "rebuild srv" in last


def test_hub_runs_srvs_loop(gsrv):
    """gevent's hub runs srv's loop class, whichever gevent this is (in a
    virtualenv: the virtualenv's own gevent, with its embedded libev)."""
    status, info = get_json(gsrv.port, "/loop")
    assert status == 200
    assert info["loop_type"] == "_srv_gevent.loop"
    assert info["default"] is True
    if info["prefix"] != info["base_prefix"]:
        assert info["gevent_file"].startswith(info["prefix"] + os.sep), info


def test_every_kind_of_watcher_works(gsrv):
    """callbacks, timers, io, idle, async (threadpool), signal and child
    watchers, reached through gevent's own APIs inside a request."""
    status, out = get_json(gsrv.port, "/loop-api")
    assert status == 200, out
    assert out == {
        "pending_before": [True, False],
        "callbacks": ["cb"],
        "spawn_later": "later",
        "timeout": "raised",
        "event_wait": False,
        "repeats": 3,
        "stopped_timer_active": False,
        "select": 1,
        "poll": [1],
        "selector": 1,
        "fileobject": "piped",
        "queue": "empty",
        "pool": [0, 2, 4, 6, 8],
        "async_result": "async",
        "idle": True,
        "threadpool": 42,
        "signal": ["usr2"],
        "child_status": 3,
        "after_error": True,
    }
    assert "ZeroDivisionError" in gsrv.stderr_text()
    gsrv.assert_healthy()
