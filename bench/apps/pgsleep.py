"""B9: each request runs SELECT pg_sleep(0.01) on PostgreSQL via psycopg2.

As a real gevent app does it: psycogreen's patch_psycopg() makes libpq's
waits yield to gevent's hub (applied when gevent has patched the stdlib,
which every server in B9 does before importing the app), and connections
come from a small pool: at most BENCH_PG_POOL (default 200, one per wrk
connection) are opened, lazily, kept in autocommit and reused; a request
that finds them all busy waits for one.  The server is bench/run's own
throwaway PostgreSQL (BENCH_PG_DSN).
"""
import os
import queue
import sys
import threading

import psycopg2

_monkey = sys.modules.get("gevent.monkey")
if _monkey and _monkey.is_module_patched("socket"):
    from psycogreen.gevent import patch_psycopg
    patch_psycopg()

DSN = os.environ.get("BENCH_PG_DSN", "")
POOL = int(os.environ.get("BENCH_PG_POOL", "200"))
BODY = b"pg_sleep 0.01\n"

_idle = queue.LifoQueue()
_slots = threading.BoundedSemaphore(POOL)


def _query():
    with _slots:
        try:
            conn = _idle.get_nowait()
        except queue.Empty:
            conn = psycopg2.connect(DSN)
            conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(0.01)")
                cur.fetchone()
        except BaseException:
            conn.close()
            raise
        _idle.put(conn)


def app(environ, start_response):
    _query()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
