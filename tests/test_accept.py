"""Accepting: TCP_DEFER_ACCEPT and the first read (--defer-accept).

By default a TCP listener defers accept until a connection's first bytes
arrive, and srv reads them in the pass that accepted the connection, so a
request that is served before the loop polls again never puts its socket in
the worker's epoll set.  These tests look at that set from outside
(/proc/PID/fdinfo of the worker's eventpoll descriptor) and time what a silent
client gets.
"""
import os
import socket
import time

import pytest

from conftest import RawConn, raw_request


def epoll_set(pid):
    """The descriptors registered in any eventpoll instance of `pid`."""
    fds = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:[eventpoll]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                fds.update(int(line.split()[1]) for line in f if line.startswith("tfd:"))
        except OSError:
            continue   # closed meanwhile
    return fds


def server_side_fd(pid, server_port, client_port, timeout=5.0):
    """The worker's descriptor for the connection from `client_port`, once
    the worker has accepted it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _server_side_fd(pid, server_port, client_port)
        except LookupError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _server_side_fd(pid, server_port, client_port):
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            local, remote = cols[1], cols[2]
            if int(local.split(":")[1], 16) == server_port and \
                    int(remote.split(":")[1], 16) == client_port:
                inode = cols[9]
    if inode is None:
        raise LookupError("no server-side socket for client port %d" % client_port)
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                return int(fd)
        except OSError:
            continue
    raise LookupError("the worker holds no descriptor for socket inode %s" % inode)


def in_epoll_while_the_app_runs(srv):
    """Sends a request whose app sleeps 1 s and says whether the worker's
    socket for it is in the epoll set meanwhile; then checks the answer."""
    srv.warm_up("/hello")
    worker = srv.worker_pid()
    with RawConn.tcp("127.0.0.1", srv.port) as c:
        c.send(raw_request("GET", "/sleep?t=1"))
        time.sleep(0.3)   # the app is asleep now
        fd = server_side_fd(worker, srv.port, c.sock.getsockname()[1])
        registered = fd in epoll_set(worker)
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"slept")
    return registered


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_a_request_there_at_accept_is_read_without_asking_epoll(server_factory, mode):
    srv = server_factory("routes:app", "--mode", mode)
    assert not in_epoll_while_the_app_runs(srv)


def test_without_defer_accept_the_connection_waits_in_epoll_first(server_factory):
    srv = server_factory("routes:app", "--defer-accept", "0")
    assert in_epoll_while_the_app_runs(srv)


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_a_head_that_comes_in_pieces_after_the_connect_is_served(server_factory, mode):
    """The first read gets part of the head (or, from a client that waited,
    all of it later): the rest comes through epoll as before."""
    srv = server_factory("routes:app", "--mode", mode)
    srv.warm_up("/hello")
    head = raw_request("GET", "/hello", headers=[("X-Long", "v" * 3000)])
    for pause_first in (0, 0.2):
        with RawConn.tcp("127.0.0.1", srv.port) as c:
            time.sleep(pause_first)   # connected, silent
            c.send_pieces([head[:20], head[20:1500], head[1500:]], delay=0.1)
            r = c.read_response()
            assert r.status == 200, r
            assert r.body == b"Hello, World!\n"


def silent_client_closed_after(srv):
    """Seconds until srv closes a connection that never sends a byte."""
    srv.warm_up("/hello")
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    t0 = time.monotonic()
    try:
        assert c.recv(100) == b""   # closed by srv, nothing said
    finally:
        c.close()
    return time.monotonic() - t0


def test_a_silent_client_is_let_go_after_the_defer_period_and_the_header_timeout(server_factory):
    """The kernel hands a silent connection over after the first SYN-ACK
    retransmission (1 s), then --header-timeout runs: nothing hangs."""
    deferred = silent_client_closed_after(
        server_factory("routes:app", "--header-timeout", "1"))
    at_once = silent_client_closed_after(
        server_factory("routes:app", "--header-timeout", "1", "--defer-accept", "0"))
    assert 0.8 < at_once < deferred - 0.5, (at_once, deferred)
    assert 1.8 < deferred < 6.0, deferred


def test_unix_socket_listeners_serve_as_before(server_factory, tmp_path):
    path = str(tmp_path / "srv.sock")
    srv = server_factory("routes:app", binds=["unix:" + path])
    with RawConn.unix(path) as c:
        c.send(raw_request("GET", "/hello", headers=[("Connection", "close")]))
        assert c.read_response().status == 200
