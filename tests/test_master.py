"""The pre-fork master: --workers, signals (TERM/INT/QUIT/HUP/TTIN/TTOU),
respawning, the heartbeat (--timeout), --max-requests(-jitter), --pid, and
a reload under steady load that must lose no request."""

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import free_port, run_srv, wait_for
from produtil import (PROD_APP, Load, children, get_info, pid_alive,
                      tcp_connector, wait_children, wait_worker_pids)


def write_version_module(directory, name, version, broken=False):
    path = os.path.join(str(directory), name + ".py")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        if broken:
            f.write("VERSION = (  # a syntax error: the reload must be abandoned\n")
        else:
            f.write("VERSION = %r\n" % version)
    os.replace(tmp, path)
    return path


def versioned_server(server_factory, tmp_path, *args, version="v1"):
    name = "prodver_" + uuid.uuid4().hex[:12]
    write_version_module(tmp_path, name, version)
    s = server_factory(PROD_APP, "--pythonpath", str(tmp_path), *args,
                       env={"PROD_VERSION_MODULE": name})
    # Every worker has loaded the app (so rewriting the module now can only
    # affect the workers a SIGHUP starts).
    n = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    kids = wait_children(s, n)
    assert wait_worker_pids(s, n) == set(kids)
    return s, name


def in_flight(server, path, timeout=10.0):
    """Start GET path in a thread; returns (thread, result dict).  The
    result gets 'status'/'body' or 'error'."""
    result = {}

    def run():
        try:
            result["status"], _, result["body"] = server.get(path, timeout=timeout)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def wait_seen(server, path, timeout=5.0):
    """Wait until the app has seen a request for path (prod_seen.log)."""
    log = server.state_path("prod_seen.log")

    def seen():
        try:
            with open(log) as f:
                return path in f.read().split()
        except OSError:
            return False
    assert wait_for(seen, timeout=timeout), "the app never saw %s" % path


def wait_exit(server, timeout):
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("srv did not exit within %ss\nstderr:\n%s"
                    % (timeout, server.stderr_text()))


# ---------------------------------------------------------------- workers

def test_two_workers_answer(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    kids = wait_children(s, 2)
    pids = wait_worker_pids(s, 2)
    assert len(pids) == 2, "only %r answered; workers %r" % (pids, kids)
    assert pids == set(kids), (pids, kids)
    assert s.pid not in pids
    info = get_info(s)
    assert info["ppid"] == s.pid


def test_workers_auto(server_factory):
    s = server_factory(PROD_APP, "--workers", "auto")
    expected = {len(os.sched_getaffinity(0)), os.cpu_count()}
    ok = wait_for(lambda: len(children(s.pid)) in expected, timeout=10)
    assert ok, "--workers auto: %d workers, expected one per CPU %r" % (
        len(children(s.pid)), expected)
    s.assert_healthy()


# ---------------------------------------------------------------- signals

def test_sigterm_lets_in_flight_request_finish(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    s.warm_up("/info")
    t, res = in_flight(s, "/sleep?t=2")
    wait_seen(s, "/sleep")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = wait_exit(s, 20)
    t.join(10)
    assert "error" not in res, "in-flight request failed: %r\nstderr:\n%s" % (
        res.get("error"), s.stderr_text())
    assert res.get("status") == 200, res
    assert rc == 0, "rc=%r\nstderr:\n%s" % (rc, s.stderr_text())
    # It waited for the request (which had ~2 s left), loosely.
    assert time.monotonic() - t0 > 0.5


def test_sigint_graceful_exit_zero(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    s.warm_up("/info")
    t, res = in_flight(s, "/sleep?t=1")
    wait_seen(s, "/sleep")
    s.proc.send_signal(signal.SIGINT)
    rc = wait_exit(s, 20)
    t.join(10)
    assert res.get("status") == 200, res
    assert rc == 0, "rc=%r\nstderr:\n%s" % (rc, s.stderr_text())


def test_graceful_timeout_bounds_the_wait(server_factory):
    s = server_factory(PROD_APP, "--graceful-timeout", "1")
    s.warm_up("/info")
    t, res = in_flight(s, "/sleep?t=60", timeout=60)
    wait_seen(s, "/sleep")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    wait_exit(s, 15)
    elapsed = time.monotonic() - t0
    t.join(5)
    assert res.get("status") != 200, res
    assert elapsed < 12, "with --graceful-timeout 1 srv took %.1fs to stop" % elapsed
    assert not children(s.pid)


def test_sigquit_stops_at_once(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    s.warm_up("/info")
    kids = wait_children(s, 2)
    t, res = in_flight(s, "/sleep?t=60", timeout=60)
    wait_seen(s, "/sleep")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGQUIT)
    wait_exit(s, 10)
    elapsed = time.monotonic() - t0
    t.join(5)
    assert elapsed < 6, "SIGQUIT took %.1fs" % elapsed
    assert res.get("status") != 200, "a 60 s request completed after SIGQUIT: %r" % res
    assert wait_for(lambda: not any(pid_alive(p) for p in kids), timeout=5), \
        "workers outlived the master after SIGQUIT"


def test_sighup_reload_picks_up_changed_code(server_factory, tmp_path):
    s, name = versioned_server(server_factory, tmp_path, "--workers", "2")
    old = set(wait_children(s, 2))
    assert get_info(s)["version"] == "v1"
    write_version_module(tmp_path, name, "v2")
    s.proc.send_signal(signal.SIGHUP)

    def reloaded():
        kids = set(children(s.pid))
        return len(kids) == 2 and not (kids & old)
    assert wait_for(reloaded, timeout=15), \
        "old workers %r still there after SIGHUP: %r\nstderr:\n%s" % (
            old, children(s.pid), s.stderr_text())
    for _ in range(6):
        info = get_info(s)
        assert info["version"] == "v2", info
        assert info["pid"] not in old
    assert wait_for(lambda: not any(pid_alive(p) for p in old), timeout=5)
    assert s.alive()
    assert s.stop() == 0


def test_reload_with_broken_code_keeps_old_workers(server_factory, tmp_path):
    s, name = versioned_server(server_factory, tmp_path, "--workers", "2")
    old = set(wait_children(s, 2))
    write_version_module(tmp_path, name, None, broken=True)
    s.proc.send_signal(signal.SIGHUP)
    time.sleep(3)
    assert s.alive(), s.stderr_text()
    for _ in range(4):
        info = get_info(s)
        assert info["version"] == "v1", info
        assert info["pid"] in old
    # Fixed: the next reload works.
    write_version_module(tmp_path, name, "v3")
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: get_info(s)["version"] == "v3", timeout=15), s.stderr_text()


def test_reload_under_steady_load_loses_nothing(server_factory, tmp_path):
    s, name = versioned_server(server_factory, tmp_path, "--workers", "2")
    wait_children(s, 2)
    s.warm_up("/info")
    load = Load(tcp_connector(s.host, s.port), keepalive=3, fresh=2).start()
    try:
        for version in ("v2", "v3"):
            time.sleep(0.8)
            before = set(children(s.pid))
            write_version_module(tmp_path, name, version)
            s.proc.send_signal(signal.SIGHUP)
            ok = wait_for(lambda: not (set(children(s.pid)) & before)
                          and len(children(s.pid)) == 2, timeout=15)
            assert ok, "reload to %s did not finish: %r\n%s" % (
                version, children(s.pid), s.stderr_text())
        time.sleep(0.8)
    finally:
        load.stop()
    summary = load.summary()
    assert load.ok > 100, summary
    assert not load.failures, summary
    assert load.resets == 0, summary
    versions = [b["version"] for b in load.bodies]
    assert {"v1", "v2", "v3"} <= set(versions), (set(versions), summary)
    assert versions[-1] == "v3"
    assert s.alive()


def test_ttin_ttou_change_worker_count(server_factory):
    s = server_factory(PROD_APP)
    wait_children(s, 1)
    s.proc.send_signal(signal.SIGTTIN)
    kids = wait_children(s, 2)
    pids = wait_worker_pids(s, 2)
    assert pids == set(kids), (pids, kids)
    s.proc.send_signal(signal.SIGTTIN)
    wait_children(s, 3)
    s.proc.send_signal(signal.SIGTTOU)
    wait_children(s, 2)
    s.proc.send_signal(signal.SIGTTOU)
    wait_children(s, 1)
    # never below one
    s.proc.send_signal(signal.SIGTTOU)
    time.sleep(1.0)
    wait_children(s, 1, timeout=5)
    s.assert_healthy()


# ---------------------------------------------------------------- deaths

def _kill_worker_via_exit(s):
    with contextlib.suppress(http.client.HTTPException, OSError):
        st, _, body = s.get("/exit", timeout=10)
        assert st != 200, "/exit answered 200: %r" % body


def test_crashed_worker_is_respawned(server_factory):
    s = server_factory(PROD_APP)
    s.warm_up("/info")
    first = get_info(s)["pid"]
    _kill_worker_via_exit(s)
    assert wait_for(lambda: not pid_alive(first), timeout=5)
    info = get_info(s, timeout=20)
    assert info["pid"] != first
    assert info["ppid"] == s.pid
    assert s.alive()


def test_worker_killed_from_outside_is_respawned(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    kids = wait_children(s, 2)
    time.sleep(0.2)
    os.kill(kids[0], signal.SIGKILL)

    def replaced():
        now = set(children(s.pid))
        return len(now) == 2 and kids[0] not in now
    assert wait_for(replaced, timeout=15), (kids, children(s.pid), s.stderr_text())
    assert wait_worker_pids(s, 2) == set(children(s.pid))


def test_crash_loop_backs_off(server_factory):
    s = server_factory(PROD_APP)
    s.warm_up("/info")
    for _ in range(3):
        pid = get_info(s, timeout=20)["pid"]
        _kill_worker_via_exit(s)
        assert wait_for(lambda: not pid_alive(pid), timeout=5)
    assert wait_for(lambda: "crash loop" in s.stderr_text(), timeout=5), s.stderr_text()
    # and it recovers
    info = get_info(s, timeout=30)
    assert info["ppid"] == s.pid


def test_heartbeat_kills_a_stuck_worker(server_factory):
    s = server_factory(PROD_APP, "--timeout", "2")
    s.warm_up("/info")
    stuck = get_info(s)["pid"]
    t, res = in_flight(s, "/hang?t=30", timeout=40)
    wait_seen(s, "/hang")
    t0 = time.monotonic()
    assert wait_for(lambda: not pid_alive(stuck), timeout=15), \
        "a worker stuck for 15 s with --timeout 2 was not killed\n" + s.stderr_text()
    killed_after = time.monotonic() - t0
    info = get_info(s, timeout=20)
    assert info["pid"] != stuck
    t.join(10)
    assert res.get("status") != 200, res
    assert "no heartbeat" in s.stderr_text(), s.stderr_text()
    assert killed_after < 12, killed_after


def test_heartbeat_spares_a_cooperative_sleeper(server_factory):
    s = server_factory(PROD_APP, "--timeout", "1")
    s.warm_up("/info")
    pid = get_info(s)["pid"]
    st, _, body = s.get("/sleep?t=2.5", timeout=20)
    assert st == 200, body
    assert get_info(s)["pid"] == pid
    assert "no heartbeat" not in s.stderr_text()


# ---------------------------------------------------------------- retiring

def _runs(pids):
    runs = []
    for p in pids:
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return runs


def test_max_requests_retires_workers(server_factory):
    s = server_factory(PROD_APP, "--max-requests", "5")
    pids = [get_info(s, timeout=20)["pid"] for _ in range(17)]
    runs = _runs(pids)
    assert len(runs) >= 4, runs
    assert all(n == 5 for _, n in runs[:-1]), "runs of (pid, requests): %r" % runs
    assert len({p for p, _ in runs}) == len(runs), runs
    err = s.stderr_text()
    assert "retiring" in err and "retired" in err, err
    assert "exited with status" not in err and "died" not in err, err
    assert s.alive()


def test_max_requests_jitter(server_factory):
    s = server_factory(PROD_APP, "--max-requests", "3", "--max-requests-jitter", "3")
    pids = [get_info(s, timeout=20)["pid"] for _ in range(24)]
    runs = _runs(pids)
    assert len(runs) >= 4, runs
    assert all(3 <= n <= 6 for _, n in runs[:-1]), runs
    assert s.alive()


# ---------------------------------------------------------------- misc

def test_pid_file(server_factory, tmp_path):
    pidfile = tmp_path / "srv.pid"
    s = server_factory(PROD_APP, "--pid", str(pidfile), "--workers", "2")
    assert wait_for(pidfile.exists, timeout=5)
    assert pidfile.read_text().strip() == str(s.pid)
    assert s.stop() == 0
    assert not pidfile.exists(), "pid file left behind after exit"


def test_bad_app_at_boot_exits_2_with_workers():
    port = free_port()
    res = run_srv(["--app", "import_error:app", "--workers", "2",
                   "--bind", "127.0.0.1:%d" % port])
    assert res.returncode == 2, (res.returncode, res.stderr)
