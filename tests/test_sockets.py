"""Listening sockets: IPv4, IPv6, unix sockets (stale file replaced,
non-socket file refused, live socket refused, --umask), several binds at
once, --reuse-port with several workers, and systemd socket activation
(LISTEN_PID/LISTEN_FDS)."""

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap

import pytest

from conftest import (APPS_DIR, PYTHON, RawConn, ServerError, _can_connect,
                      free_port, needs_ipv6, run_srv, srv_bin, wait_for)
from produtil import (PROD_APP, children, http_get, pid_alive, raw_info,
                      wait_children)


@pytest.fixture
def sockdir():
    # unix socket paths are limited to ~107 bytes: keep it short
    d = tempfile.mkdtemp(prefix="srvs-", dir="/tmp")
    try:
        yield d
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def unix_info(path):
    with RawConn.unix(path) as c:
        return raw_info(c)


# ---------------------------------------------------------------- TCP

def test_ipv4(server_factory):
    s = server_factory(PROD_APP)
    with RawConn.tcp("127.0.0.1", s.port) as c:
        info = raw_info(c)
        port = c.sock.getsockname()[1]
    assert info["remote_addr"] == "127.0.0.1"
    assert str(info["remote_port"]) == str(port)
    assert info["scheme"] == "http"


@needs_ipv6
def test_ipv6(server_factory):
    port = free_port("::1", socket.AF_INET6)
    server_factory(PROD_APP, binds=["[::1]:%d" % port])
    with RawConn.tcp("::1", port) as c:
        info = raw_info(c, host="[::1]:%d" % port)
        myport = c.sock.getsockname()[1]
    assert info["remote_addr"] == "::1"
    assert str(info["remote_port"]) == str(myport)
    # only ::1 is bound, not IPv4
    assert not _can_connect(("127.0.0.1", port))


# ---------------------------------------------------------------- unix

def test_unix_socket_serves(server_factory, sockdir):
    path = os.path.join(sockdir, "s.sock")
    server_factory(PROD_APP, binds=["unix:" + path])
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    st, _, body = http_get(None, None, "/info", unix=path)
    assert st == 200
    info = json.loads(body)
    assert info["path"] == "/info"
    # a unix socket's peer has no address or port: both are empty strings
    assert (info["remote_addr"], info["remote_port"]) == ("", "")
    # keep-alive over the unix socket
    with RawConn.unix(path) as c:
        a = raw_info(c)
        b = raw_info(c)
    assert a["pid"] == b["pid"]


def test_unix_stale_socket_replaced(server_factory, sockdir):
    path = os.path.join(sockdir, "s.sock")
    first = server_factory(PROD_APP, binds=["unix:" + path])
    kids = wait_children(first, 1)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(5)
    assert wait_for(lambda: not any(pid_alive(p) for p in kids), timeout=5)
    assert os.path.exists(path), "expected the killed server's socket file to remain"
    assert not _can_connect(path), "the stale socket still accepts"
    second = server_factory(PROD_APP, binds=["unix:" + path])
    assert unix_info(path)["ppid"] == second.pid


def test_unix_stale_socket_from_other_program(server_factory, sockdir):
    path = os.path.join(sockdir, "s.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                         # leaves a dead socket file behind
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    srv = server_factory(PROD_APP, binds=["unix:" + path])
    assert unix_info(path)["ppid"] == srv.pid


def test_unix_non_socket_file_refused(sockdir):
    path = os.path.join(sockdir, "precious.txt")
    with open(path, "w") as f:
        f.write("do not delete me\n")
    res = run_srv(["--app", PROD_APP, "--bind", "unix:" + path])
    assert res.returncode == 2, (res.returncode, res.stderr)
    with open(path) as f:
        assert f.read() == "do not delete me\n", "srv overwrote a regular file"
    assert not stat.S_ISSOCK(os.stat(path).st_mode)


def test_unix_live_socket_refused(server_factory, sockdir):
    path = os.path.join(sockdir, "s.sock")
    first = server_factory(PROD_APP, binds=["unix:" + path])
    res = run_srv(["--app", PROD_APP, "--bind", "unix:" + path])
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "in use" in res.stderr.lower(), res.stderr
    # the first server still owns the path and serves
    assert os.path.exists(path)
    assert unix_info(path)["ppid"] == first.pid


def test_umask_077_socket_not_group_or_world_accessible(server_factory, sockdir):
    path = os.path.join(sockdir, "s.sock")
    server_factory(PROD_APP, "--umask", "077", binds=["unix:" + path])
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o077 == 0, "socket mode %o with --umask 077" % mode
    assert unix_info(path)["path"] == "/info"


def test_umask_000_socket_world_accessible(server_factory, sockdir):
    """--umask really sets the umask (the test runs under umask 022)."""
    old = os.umask(0o022)
    try:
        path = os.path.join(sockdir, "s.sock")
        server_factory(PROD_APP, "--umask", "000", binds=["unix:" + path])
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o006 == 0o006, "socket mode %o with --umask 000" % mode


def test_bad_umask_refused():
    res = run_srv(["--app", PROD_APP, "--umask", "999",
                   "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2, (res.returncode, res.stderr)


# ---------------------------------------------------------------- several

def test_several_binds(server_factory, sockdir):
    p4 = free_port()
    path = os.path.join(sockdir, "s.sock")
    binds = ["127.0.0.1:%d" % p4, "unix:" + path]
    v6 = False
    with contextlib.suppress(OSError):
        p6 = free_port("::1", socket.AF_INET6)
        binds.append("[::1]:%d" % p6)
        v6 = True
    srv = server_factory(PROD_APP, "--workers", "2", binds=binds)
    with RawConn.tcp("127.0.0.1", p4) as c:
        assert raw_info(c)["remote_addr"] == "127.0.0.1"
    assert unix_info(path)["ppid"] == srv.pid
    if v6:
        with RawConn.tcp("::1", p6) as c:
            assert raw_info(c)["remote_addr"] == "::1"


def test_reuse_port_two_workers(server_factory):
    s = server_factory(PROD_APP, "--reuse-port", "--workers", "2")
    kids = set(wait_children(s, 2))
    pids = set()
    statuses = []

    def probe():
        for _ in range(20):
            st, _, body = s.get("/info", headers={"Connection": "close"})
            statuses.append(st)
            if st == 200:
                pids.add(json.loads(body)["pid"])
        return len(pids) == 2
    assert wait_for(probe, timeout=15, interval=0.2), \
        "with --reuse-port only %r answered (workers %r)" % (pids, kids)
    assert set(statuses) == {200}, statuses
    assert pids <= kids | set(children(s.pid))
    # each worker has its own listening socket on the port
    n = listening_sockets(s.port)
    assert n >= 2, "%d listening socket(s) on port %d with --reuse-port --workers 2" % (
        n, s.port)


def listening_sockets(port):
    """How many TCP sockets listen on 127.0.0.1:port (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                n += 1
    return n


def test_without_reuse_port_one_shared_socket(server_factory):
    s = server_factory(PROD_APP, "--workers", "2")
    wait_children(s, 2)
    s.warm_up("/info")
    assert listening_sockets(s.port) == 1


# ---------------------------------------------------------------- systemd

LAUNCHER = textwrap.dedent("""\
    import json, os, socket, sys
    specs = json.loads(sys.argv[1])
    argv = sys.argv[2:]
    socks = []
    for spec in specs:
        if spec[0] == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", spec[1]))
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(spec[1])
        s.listen(128)
        socks.append(s)
    # move them to 3, 4, ... (first out of the way, then into place)
    tmp = [os.dup(s.fileno()) for s in socks]
    for s in socks:
        s.close()
    for i, fd in enumerate(tmp):
        os.dup2(fd, 3 + i, inheritable=True)
    for fd in tmp:
        if fd >= 3 + len(tmp):
            os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(specs))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDNAMES"] = ":".join("s%d" % i for i in range(len(specs)))
    os.execv(argv[0], argv)
""")


class Activated:
    def __init__(self, specs, args=()):
        self.state_dir = tempfile.mkdtemp(prefix="srv-test-state-")
        self.err = tempfile.NamedTemporaryFile(prefix="srv-act-", delete=False)
        launcher = os.path.join(self.state_dir, "launch.py")
        with open(launcher, "w") as f:
            f.write(LAUNCHER)
        env = dict(os.environ)
        env["SRV_TEST_STATE"] = self.state_dir
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPATH", None)
        self.cmd = [PYTHON, launcher, json.dumps(specs), srv_bin(), "--app", PROD_APP] + list(args)
        self.proc = subprocess.Popen(self.cmd, cwd=str(APPS_DIR), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        self.pid = self.proc.pid

    def stderr_text(self):
        with open(self.err.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_serving(self, probe, timeout=10):
        def ok():
            if self.proc.poll() is not None:
                raise ServerError("srv exited %s:\n%s" % (self.proc.returncode,
                                                          self.stderr_text()))
            try:
                return probe()
            except OSError:
                return None
        r = wait_for(ok, timeout=timeout, interval=0.1)
        assert r, "socket-activated srv never served:\n" + self.stderr_text()
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        import shutil
        shutil.rmtree(self.state_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(self.err.name)


def test_systemd_socket_activation_tcp():
    port = free_port()
    a = Activated([["tcp", port]])
    try:
        def probe():
            st, _, body = http_get("127.0.0.1", port, "/info", timeout=5)
            return json.loads(body) if st == 200 else None
        info = a.wait_serving(probe)
        assert info["ppid"] == a.pid, "not served by the activated srv"
        assert a.stop() == 0, a.stderr_text()
    finally:
        a.cleanup()


def test_systemd_socket_activation_two_sockets(sockdir):
    port = free_port()
    path = os.path.join(sockdir, "act.sock")
    a = Activated([["tcp", port], ["unix", path]], args=["--workers", "2"])
    try:
        def probe():
            st, _, body = http_get("127.0.0.1", port, "/info", timeout=5)
            return json.loads(body) if st == 200 else None
        assert a.wait_serving(probe)["ppid"] == a.pid
        st, _, body = http_get(None, None, "/info", unix=path)
        assert st == 200 and json.loads(body)["ppid"] == a.pid
        assert a.stop() == 0, a.stderr_text()
    finally:
        a.cleanup()


def test_listen_pid_of_another_process_is_ignored(server_factory):
    """LISTEN_FDS meant for another process (LISTEN_PID differs) must not
    be used: srv listens on its --bind."""
    s = server_factory(PROD_APP, env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    assert s.get_json("/info")["ppid"] == s.pid


def test_streamed_chunks_are_not_held_back_by_nagle(server_factory):
    """Accepted TCP sockets have TCP_NODELAY (set once on the listener, which
    Linux passes on): a response streamed in small chunks, one write each,
    is not held back waiting for the client's delayed ACK (40 ms or more
    per response with Nagle's algorithm on).  30 such responses on one
    keep-alive connection would take well over a second with it."""
    import http.client
    import time
    s = server_factory("routes:app")
    c = http.client.HTTPConnection(s.host, s.port, timeout=10)
    try:
        c.request("GET", "/gen?n=4&size=10")
        c.getresponse().read()
        t0 = time.monotonic()
        for _ in range(30):
            c.request("GET", "/gen?n=4&size=10")
            r = c.getresponse()
            assert r.status == 200 and len(r.read()) == 40
        took = time.monotonic() - t0
    finally:
        c.close()
    assert took < 0.6, "30 streamed responses took %.2f s: Nagle delays?" % took
