"""asyncio inside WSGI requests: srv's asyncio loop on its libev loop, and
the srv.run_async bridge, in gevent and native mode.

The app is tests/apps/aio_app.py.  Every test talks to srv over real
sockets; the echo server, redis-server and PostgreSQL are real servers the
test starts.  Timing bounds are loose (several times the ideal) but far
below what a serialised or blocking implementation would take.
"""
import concurrent.futures
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import free_port, run_srv, wait_for
from produtil import tcp_echo_server

SLOW = 3.0 if os.environ.get("SRV_SANITIZED") else 1.0
MODES = ["gevent", "native"]


def get(port, path, timeout=20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def get_json(port, path, timeout=20):
    status, body = get(port, path, timeout)
    assert status == 200, (status, body)
    return json.loads(body)


@pytest.fixture(scope="module", params=MODES)
def aio(request, module_server_factory):
    return module_server_factory("aio_app:app", "--mode", request.param)


# -- basics -------------------------------------------------------------------

def test_sleep(aio):
    t0 = time.monotonic()
    assert get_json(aio.port, "/sleep?s=0.2") == "slept"
    assert time.monotonic() - t0 >= 0.19


def test_loop_is_srvs_inside_requests(aio):
    got = get_json(aio.port, "/loops")
    assert got == {"running": True, "get_event_loop": True, "type": "EventLoop",
                   "is_srv_loop": True, "is_selector_loop": True}


def test_requests_awaiting_at_once_do_not_serialise(aio):
    n = 40
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        got = list(ex.map(lambda _: get_json(aio.port, "/sleep?s=0.5"), range(n)))
    elapsed = time.monotonic() - t0
    assert got == ["slept"] * n
    assert elapsed < 2.5 * SLOW, "%d requests awaiting 0.5 s took %.2f s" % (n, elapsed)


def test_gather_of_100_sleeps_takes_one_sleep(aio):
    got = get_json(aio.port, "/gather?n=100&s=0.5")
    assert got["n"] == 100 and got["sum"] == sum(range(100))
    assert 0.49 <= got["elapsed"] < 1.5 * SLOW, got


def test_wait_for_times_out(aio):
    assert get_json(aio.port, "/wait_for") == "timed out"


def test_run_async_timeout_raises_timeouterror(aio):
    t0 = time.monotonic()
    assert get_json(aio.port, "/run_async_timeout") == "TimeoutError"
    assert time.monotonic() - t0 < 3 * SLOW


def test_cancelled_future_raises_cancellederror(aio):
    assert get_json(aio.port, "/cancelled") == "CancelledError"


@pytest.fixture(scope="module")
def echo_server():
    with tcp_echo_server() as port:
        yield port


def test_open_connection_to_echo_server(aio, echo_server):
    for data in ("hello", "x" * 5000):
        assert get_json(aio.port, "/echo?port=%d&data=%s" % (echo_server, data)) == data


def test_getaddrinfo(aio):
    addrs = get_json(aio.port, "/getaddrinfo")
    assert "127.0.0.1" in addrs or "::1" in addrs, addrs


def test_run_in_executor(aio):
    name = get_json(aio.port, "/executor?s=0.1")
    assert name.startswith("asyncio_"), name


def test_task_created_in_one_request_awaited_by_a_later_one(aio):
    assert get_json(aio.port, "/task/create?name=t1&s=0.5") == "created"
    got = get_json(aio.port, "/task/await?name=t1")
    assert got == {"done_before": False, "result": "task t1"}
    # and a task that finished before it was awaited
    assert get_json(aio.port, "/task/create?name=t2&s=0.01") == "created"
    time.sleep(0.3)
    assert get_json(aio.port, "/task/await?name=t2") == {"done_before": True, "result": "task t2"}


def test_call_later_fires_after_the_response(aio):
    name = "later-%d" % time.monotonic_ns()
    assert get_json(aio.port, "/call_later?s=0.4&name=" + name) == "scheduled"
    path = aio.state_path(name)
    assert not os.path.exists(path), "fired before the response"
    assert wait_for(lambda: os.path.exists(path), 5), "call_later never fired"
    with open(path) as f:
        assert f.read() == "fired"


def test_busy_asyncio_loop_does_not_starve_requests(aio):
    # A task that always has a callback ready (await asyncio.sleep(0) in a
    # loop): each select(0) of the asyncio loop still gives srv's loop a
    # turn, so plain requests are answered while the task runs, not after.
    name = "busy-%d" % time.monotonic_ns()
    assert get_json(aio.port, "/busy?s=3&name=" + name) == "busy"
    path = aio.state_path(name)
    for _ in range(5):
        t0 = time.monotonic()
        assert get_json(aio.port, "/") == "hello"
        assert time.monotonic() - t0 < 1.0, "a plain request waited for the busy task"
    assert not os.path.exists(path), "the busy task ended before the requests were answered"
    assert wait_for(lambda: os.path.exists(path), 10), "the busy task never ended"
    with open(path) as f:
        assert int(f.read()) > 100   # and it did run meanwhile


@pytest.mark.parametrize("mode", MODES)
def test_call_later_wakes_an_idle_loop(server_factory, mode):
    # The asyncio loop idles in select() with no timeout: a call_later (or
    # create_task) made by a request must wake it.
    s = server_factory("aio_app:app", "--mode", mode)
    assert get_json(s.port, "/sleep?s=0.05") == "slept"
    time.sleep(0.3)
    assert get_json(s.port, "/call_later?s=0.2&name=idle") == "scheduled"
    assert wait_for(lambda: os.path.exists(s.state_path("idle")), 3), "call_later never fired"
    assert get_json(s.port, "/task/create?name=w&s=0.01") == "created"
    time.sleep(0.5)
    assert get_json(s.port, "/task/await?name=w") == {"done_before": True, "result": "task w"}


def test_exception_in_coroutine_is_500_with_traceback(aio):
    status, body = get(aio.port, "/raise")
    assert status == 500, body
    assert wait_for(lambda: "ValueError: boom from a coroutine" in aio.stderr_text())
    log = aio.stderr_text()
    assert 'in boom' in log and 'raise ValueError("boom from a coroutine")' in log


def test_exception_handler_logs_to_error_log(aio):
    assert get_json(aio.port, "/bad_callback") == "scheduled"
    assert wait_for(lambda: "asyncio: Exception in callback" in aio.stderr_text()), aio.stderr_text()
    assert "ZeroDivisionError" in aio.stderr_text()


def test_add_signal_handler_refused(aio):
    got = get_json(aio.port, "/signal")
    assert got.startswith("NotImplementedError:") and "master process owns signals" in got


def test_run_async_inside_a_coroutine_refused(aio):
    got = get_json(aio.port, "/nested")
    assert got.startswith("RuntimeError:") and "await" in got


def test_run_until_complete_in_a_request_suspends_only_that_request(aio):
    n = 20
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        got = list(ex.map(lambda _: get_json(aio.port, "/run_until_complete?s=0.5"), range(n)))
    assert got == ["ruc"] * n
    assert time.monotonic() - t0 < 2.5 * SLOW


def test_asyncio_run_in_a_request_refused(aio):
    got = get_json(aio.port, "/asyncio_run")
    assert got.startswith("RuntimeError:") and "running event loop" in got, got


def test_other_threads(aio):
    got = get_json(aio.port, "/from_thread")
    if "gevent" in aio.cmd:
        # monkey-patched threads are greenlets of the worker's one thread
        assert got == {"get_event_loop": "returned a loop", "run_async": "ran",
                       "threadsafe": "threadsafe"}, got
    else:
        # a real thread: asyncio's rules (no loop), and run_async says what to use
        assert got["get_event_loop"] == "RuntimeError", got
        assert "run_coroutine_threadsafe" in got["run_async"], got
        assert got["threadsafe"] == "threadsafe", got


def test_callbacks_and_timers_keep_asyncio_semantics(aio):
    # srv's loop runs call_soon, call_at and call_later in C on libev timers:
    # FIFO order, contexts, timers in time order and never before their
    # time, cancel() that sticks, asyncio's Handle interface
    got = get_json(aio.port, "/core")
    assert got["soon_order"] == [0, 1, 2, 3, 4], got
    assert got["soon_context"] == "in-ctx", got
    assert got["timer_order"] == [0.0, 0.02, 0.04, 0.06], got
    assert got["never_early"] is True, got
    assert got["when"] is True, got
    assert got["cancelled"] == [True, False], got
    assert got["repr"] == "<TimerHandle", got
    assert got["handle_types"] == ["TimerHandle", "Handle"], got


@pytest.mark.parametrize("mode", MODES)
def test_call_soon_threadsafe_from_an_os_thread_wakes_an_idle_loop(server_factory, mode):
    # a fresh server: nothing else would wake its asyncio loop, which waits
    # with no timer at all; the OS thread's call_soon_threadsafe must
    s = server_factory("aio_app:app", "--mode", mode)
    for _ in range(3):
        assert get_json(s.port, "/threadsafe_wake?s=0.2", timeout=10) == "woken"


def test_exception_in_a_callback_is_logged_with_its_traceback(aio):
    assert get_json(aio.port, "/bad_soon") == "scheduled"
    wait_for(lambda: "boom from call_soon soon-arg" in aio.stderr_text(), timeout=5)
    text = aio.stderr_text()
    assert "Exception in callback bad_soon_callback('soon-arg')" in text, text[-2000:]
    assert "ValueError: boom from call_soon soon-arg" in text, text[-2000:]


def test_loop_restarts_after_run_forever_ended(aio):
    assert get_json(aio.port, "/kill_loop", timeout=10) == "survived"
    assert get_json(aio.port, "/sleep?s=0.05") == "slept"
    assert "srv's asyncio loop stopped running; starting it again" in aio.stderr_text()


def _worker_cpu_seconds(server):
    with open("/proc/%d/stat" % server.worker_pid()) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_asyncio_loop_costs_no_cpu(server_factory):
    # a fresh server: nothing else in flight.  A pending task and a timer
    # far away, and the loop waits on one libev timer: no busy wake-ups.
    s = server_factory("aio_app:app", "--mode", "native")
    assert get_json(s.port, "/idle_setup") == "idle"
    time.sleep(0.3)
    before = _worker_cpu_seconds(s)
    time.sleep(2)
    used = _worker_cpu_seconds(s) - before
    assert used <= 0.05, "idle worker used %.2f s of CPU in 2 s" % used


def test_readable_fd_while_the_loop_is_blocked_does_not_spin(server_factory, echo_server):
    # gevent mode: time.sleep in a coroutine is a gevent wait, so srv's
    # loop keeps turning while the asyncio loop is blocked, and the readable
    # fd must not be reported to it over and over.
    s = server_factory("aio_app:app", "--mode", "gevent")
    assert get_json(s.port, "/") == "hello"
    before = _worker_cpu_seconds(s)
    assert get_json(s.port, "/block_in_coroutine?s=1.5&port=%d" % echo_server) == "ping"
    used = _worker_cpu_seconds(s) - before
    assert used <= 0.3, "the worker used %.2f s of CPU while the asyncio loop was blocked" % used


def test_server_still_healthy(aio):
    assert get_json(aio.port, "/tasks") == {"tasks": 0}
    assert aio.alive()


# -- timeouts, stop, start-up ------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_request_timeout_cancels_the_coroutine(server_factory, mode):
    s = server_factory("aio_app:app", "--mode", mode, "--request-timeout", "1")
    t0 = time.monotonic()
    status, _ = get(s.port, "/slow?name=rt")
    assert status == 504
    assert time.monotonic() - t0 < 5 * SLOW
    path = s.state_path("rt")
    assert wait_for(lambda: os.path.exists(path), 3), "the task was not cancelled"
    with open(path) as f:
        assert f.read() == "cancelled"
    assert get_json(s.port, "/tasks") == {"tasks": 0}


@pytest.mark.parametrize("mode", MODES)
def test_graceful_stop_waits_then_cancels_tasks(server_factory, mode):
    s = server_factory("aio_app:app", "--mode", mode, "--graceful-timeout", "1.5")
    assert get_json(s.port, "/fire_and_forget?name=ff") == "started"
    assert get_json(s.port, "/tasks") == {"tasks": 1}
    path = s.state_path("ff")
    t0 = time.monotonic()
    assert s.stop(signal.SIGTERM, timeout=15) == 0
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.4, "the worker did not wait for the pending task (%.2fs)" % elapsed
    assert os.path.exists(path), "the task was not cancelled:\n" + s.stderr_text()
    with open(path) as f:
        assert f.read() == "cancelled"
    assert "cancelling 1 asyncio task(s) still pending" in s.stderr_text()


@pytest.mark.parametrize("mode", MODES)
def test_graceful_timeout_with_a_request_in_run_async(server_factory, mode):
    s = server_factory("aio_app:app", "--mode", mode, "--graceful-timeout", "1")
    results = []
    t = threading.Thread(target=lambda: results.append(_get_or_error(s.port, "/slow?name=inflight")))
    t.start()
    assert wait_for(lambda: "tasks\": 1" in get(s.port, "/tasks")[1].decode(), 5)
    assert s.stop(signal.SIGTERM, timeout=15) == 0, s.stderr_text()
    t.join(10)
    with open(s.state_path("inflight")) as f:
        assert f.read() == "cancelled"
    assert "Fatal" not in s.stderr_text() and "Segmentation" not in s.stderr_text()


def _get_or_error(port, path):
    try:
        return get(port, path)
    except (OSError, http.client.HTTPException) as e:
        return e


@pytest.mark.parametrize("mode", MODES)
def test_get_event_loop_in_a_request_is_srvs_loop(server_factory, mode):
    # the app imports asyncio but never names srv
    s = server_factory("aio_policy_app:app", "--mode", mode)
    got = get_json(s.port, "/schedule")
    assert got == {"type": "EventLoop", "module": "srv", "running": True}, got
    path = s.state_path("later")
    assert not os.path.exists(path)
    assert wait_for(lambda: os.path.exists(path), 5), "call_later never fired"
    with open(path) as f:
        assert f.read() == "srv"


@pytest.mark.parametrize("mode", MODES)
def test_run_async_at_import_time(server_factory, mode):
    s = server_factory("aio_import_app:app", "--mode", mode)
    got = get_json(s.port, "/")
    assert got == {"import": {"value": 42, "loop_is_srv": True},
                   "request": {"value": 42, "loop_is_srv": True}}


@pytest.mark.parametrize("spec", ["aio_async_app:app", "aio_async_app:callable_app"])
def test_async_def_app_refused(spec):
    p = run_srv(["--app", spec, "--bind", "127.0.0.1:%d" % free_port(), "--mode", "native"])
    assert p.returncode == 2, p.stderr
    assert "srv.run_async" in p.stderr and "async def" in p.stderr, p.stderr


# -- real asyncio libraries ---------------------------------------------------

def test_aiohttp_client_against_srv(aio):
    pytest.importorskip("aiohttp", reason="python3-aiohttp not installed")
    got = get_json(aio.port, "/aiohttp?url=http://127.0.0.1:%d/sleep%%3Fs%%3D0.1" % aio.port)
    assert got == {"status": 200, "text": '"slept"'}


def test_aiohttp_client_many_at_once(aio):
    pytest.importorskip("aiohttp", reason="python3-aiohttp not installed")
    url = "/aiohttp?url=http://127.0.0.1:%d/sleep%%3Fs%%3D0.5" % aio.port
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        got = list(ex.map(lambda _: get_json(aio.port, url), range(20)))
    assert all(g["status"] == 200 for g in got)
    assert time.monotonic() - t0 < 3 * SLOW


@pytest.fixture(scope="module")
def redis_port():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    pytest.importorskip("redis.asyncio", reason="python3-redis not installed")
    port = free_port()
    d = tempfile.mkdtemp(prefix="srv-redis-")
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", d],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _can_connect(port), 10), "redis-server did not start"
        yield port
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def _can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_redis_asyncio(aio, redis_port):
    key = "k%d" % time.monotonic_ns()
    assert get_json(aio.port, "/redis?port=%d&key=%s" % (redis_port, key)) == {"value": "v-" + key, "n": 1}
    assert get_json(aio.port, "/redis?port=%d&key=%s" % (redis_port, key)) == {"value": "v-" + key, "n": 2}


def _pg_bindir():
    base = "/usr/lib/postgresql"
    if not os.path.isdir(base):
        return None
    for v in sorted(os.listdir(base), reverse=True):
        d = os.path.join(base, v, "bin")
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


@pytest.fixture(scope="module")
def pg_dsn():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    pytest.importorskip("asyncpg", reason="python3-asyncpg not installed")
    # initdb refuses to run as root: run the cluster as an unprivileged user.
    user = "nobody"
    if os.getuid() == 0:
        ent = pwd.getpwnam(user)
        uid, gid = ent.pw_uid, ent.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()

    def demote():
        if os.getuid() == 0:
            os.setgid(gid)
            os.setuid(uid)

    d = tempfile.mkdtemp(prefix="srv-pg-")
    os.chmod(d, 0o755)
    data = os.path.join(d, "data")
    os.chown(d, uid, gid)
    port = free_port()
    env = dict(os.environ, LC_ALL="C.UTF-8", HOME=d)
    subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "srvtest", "-A", "trust",
                    "--no-sync"], check=True, preexec_fn=demote, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-l", os.path.join(d, "log"),
                    "-o", "-h 127.0.0.1 -p %d -k %s -F" % (port, d), "start"],
                   check=True, preexec_fn=demote, env=env, stdout=subprocess.DEVNULL)
    try:
        yield "postgresql://srvtest@127.0.0.1:%d/postgres" % port
    finally:
        subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       preexec_fn=demote, env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


def test_asyncpg(aio, pg_dsn):
    got = get_json(aio.port, "/pg?dsn=%s&x=21" % pg_dsn.replace(":", "%3A").replace("/", "%2F")
                   .replace("@", "%40"))
    assert got["doubled"] == 42 and got["version"] >= 10, got


def test_asyncpg_many_at_once(aio, pg_dsn):
    q = pg_dsn.replace(":", "%3A").replace("/", "%2F").replace("@", "%40")
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        got = list(ex.map(lambda i: get_json(aio.port, "/pg?dsn=%s&x=%d" % (q, i)), range(10)))
    assert [g["doubled"] for g in got] == [2 * i for i in range(10)]
    # each query sleeps 0.3 s in the server: serialised would be >= 3 s
    assert time.monotonic() - t0 < 2.0 * SLOW


# -- leaks --------------------------------------------------------------------

LEAK_REQUESTS = int(os.environ.get("SRV_AIO_LEAK_REQUESTS", "100000"))


def aio_load(port, total):
    from test_leak import hello_load
    hello_load(port, total, threads=8, req=b"GET /leak HTTP/1.1\r\nHost: x\r\n\r\n",
               expect=b'"ok"', join_timeout=600)


@pytest.mark.parametrize("mode", MODES)
def test_no_leak_through_run_async(server_factory, mode):
    """LEAK_REQUESTS requests, each awaiting a coroutine (two asyncio sleeps)
    through srv.run_async: RSS, fds and live tasks do not grow."""
    s = server_factory("aio_app:app", "--mode", mode)
    fd_base = s.fd_baseline("/leak")
    warm = LEAK_REQUESTS // 10
    t0 = time.monotonic()
    aio_load(s.port, warm)
    assert wait_for(lambda: s.fd_count() <= fd_base, 3)
    rss1 = s.rss_kib()
    aio_load(s.port, LEAK_REQUESTS - warm)
    elapsed = time.monotonic() - t0
    assert wait_for(lambda: s.fd_count() <= fd_base, 5), "fds: %d -> %d" % (fd_base, s.fd_count())
    rss2 = s.rss_kib()
    print("\n%s: %d run_async requests in %.1fs (%.0f req/s); RSS %d -> %d KiB (%+d KiB)"
          % (mode, LEAK_REQUESTS, elapsed, LEAK_REQUESTS / elapsed, rss1, rss2, rss2 - rss1))
    assert get_json(s.port, "/tasks") == {"tasks": 0}
    if not os.environ.get("SRV_SANITIZED"):
        assert rss2 - rss1 < 4 * 1024, "RSS grew by %d KiB" % (rss2 - rss1)
    assert s.alive()
