"""Blocking database drivers yield in gevent mode (issue 16).

Real servers, started by module-scoped fixtures in temporary directories
(tests/dbservers.py): PostgreSQL and MariaDB on unix sockets, Redis on
127.0.0.1.  The app (apps/db_app.py) uses the drivers as real apps do:
psycopg2 made cooperative by psycogreen, redis-py's pool, PyMySQL.

200 requests at once, each waiting 0.1 s on the database server, must all
be answered by ONE srv worker in about 0.1 s (bound: 1.5 s; serial would be
20 s), with the app seeing most of them in flight at once.  In native mode
the same calls block the worker, and srv says so when it starts.
"""

import importlib.util
import json
import selectors
import socket
import time

import pytest

import dbservers
from conftest import wait_for

N = 200
SLEEP = 0.1
WALL_BOUND = 1.5          # serial: N * SLEEP = 20 s
CLIENT_TIMEOUT = 60.0


def _need_modules(*mods):
    missing = [m for m in mods if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip("python module(s) %s not installed for /usr/bin/python3 "
                    "(scripts/install-deps)" % ", ".join(missing))


def _server_fixture(start, *modules):
    _need_modules(*modules)
    try:
        cm = start()
    except dbservers.Unavailable as e:
        pytest.skip(str(e))
    return cm


@pytest.fixture(scope="module")
def pg():
    with _server_fixture(lambda: dbservers.postgres(max_connections=N + 50),
                         "psycopg2", "psycogreen") as s:
        yield {"DB_PG_DSN": s.dsn}


@pytest.fixture(scope="module")
def redis_server():
    with _server_fixture(dbservers.redis, "redis") as s:
        yield {"DB_REDIS_PORT": str(s.port)}


@pytest.fixture(scope="module")
def mariadb():
    with _server_fixture(lambda: dbservers.mariadb(max_connections=N + 50),
                         "pymysql") as s:
        yield {"DB_MYSQL_SOCKET": s.socket}


# ------------------------------------------------------------------- client

def concurrent_get(port, path, n, timeout=CLIENT_TIMEOUT):
    """n GET requests at once, each on its own connection (Connection:
    close), from one thread.  Returns (wall seconds from the first connect
    to the last response, [(status, body) ...])."""
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
           % path).encode()
    sel = selectors.DefaultSelector()
    bufs = {}
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            s.sendall(req)
            s.setblocking(False)
            bufs[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
        pending = set(socks)
        deadline = t0 + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%d of %d responses not complete after "
                                     "%.0fs" % (len(pending), n, timeout))
            for key, _ in sel.select(left):
                s = key.fileobj
                data = s.recv(65536)
                if data:
                    bufs[s] += data
                else:
                    sel.unregister(s)
                    pending.discard(s)
        wall = time.monotonic() - t0
    finally:
        sel.close()
        for s in socks:
            s.close()
    out = []
    for s in socks:
        head, _, body = bytes(bufs[s]).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
        out.append((status, body))
    return wall, out


def stats(server):
    return server.get_json("/stats")


def start_srv(server_factory, env, mode="gevent"):
    return server_factory("db_app:app", "--workers", "1", "--mode", mode,
                          env=dict(env, DB_SLEEP=str(SLEEP)))


def check_concurrent(srv, path, n=N):
    stats(srv)  # resets the peak
    wall, responses = concurrent_get(srv.port, path, n)
    bad = [(st, b[:200]) for st, b in responses if st != 200]
    assert not bad, "%d of %d requests failed, e.g. %r; srv log:\n%s" % (
        len(bad), n, bad[:3], srv.stderr_text()[-2000:])
    bodies = [json.loads(b) for _, b in responses]
    # each query really waited on the database server
    short = [b["elapsed"] for b in bodies if b["elapsed"] < SLEEP * 0.9]
    assert not short, "queries returned early: %r" % short[:5]
    return wall, bodies, stats(srv)


# -------------------------------------------------------------------- tests

def _gevent_proof(srv, path):
    wall, bodies, st = check_concurrent(srv, path)
    assert st["gevent_patched"] is True
    assert wall < WALL_BOUND, (
        "%d concurrent %.1f s queries took %.2f s on one worker (serial "
        "would be %.0f s): the driver blocked the loop" % (
            N, SLEEP, wall, N * SLEEP))
    print("%s: %d requests in %.3f s, peak %d in flight" % (
        path, N, wall, st["peak"]))
    # most of them were waiting at the same time (serial: 1)
    assert st["peak"] >= N // 2, st
    return bodies


def test_postgres_pg_sleep_yields(server_factory, pg):
    srv = start_srv(server_factory, pg)
    bodies = _gevent_proof(srv, "/pg")
    # a connection per request: as many backends as requests, at once
    assert len({b["result"] for b in bodies}) >= N // 2


def test_redis_blpop_yields(server_factory, redis_server):
    srv = start_srv(server_factory, redis_server)
    bodies = _gevent_proof(srv, "/redis")
    assert all(b["result"] is None for b in bodies)  # BLPOP timed out


def test_mariadb_sleep_yields(server_factory, mariadb):
    srv = start_srv(server_factory, mariadb)
    bodies = _gevent_proof(srv, "/mysql")
    assert all(b["result"] == 0 for b in bodies)  # SLEEP() ran to its end


def test_native_mode_warns_and_blocks(server_factory, redis_server):
    srv = start_srv(server_factory, redis_server, mode="native")
    # the worker logs it once it has loaded the app
    assert wait_for(lambda: "native mode" in srv.stderr_text(), timeout=10), \
        srv.stderr_text()
    log = srv.stderr_text()
    line = next(ln for ln in log.splitlines() if "native mode" in ln)
    assert "database drivers" in line and "block the whole worker" in line, line
    # and it is true: the same driver call serialises the worker
    n = 5
    wall, _, st = check_concurrent(srv, "/redis", n)
    assert st["gevent_patched"] is False
    assert st["peak"] == 1, st
    assert wall >= n * SLEEP * 0.9, wall
