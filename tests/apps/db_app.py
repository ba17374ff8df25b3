"""Blocking database drivers inside srv (tests/test_databases.py).

Each route runs one query that takes SLEEP seconds on the database server,
with a driver as real apps use it:

    /pg      psycopg2, a connection per request: SELECT pg_sleep(SLEEP)
             (made cooperative by psycogreen's patch_psycopg(), called
             below when gevent has patched the stdlib)
    /redis   redis-py, its connection pool: BLPOP on an empty list with a
             SLEEP timeout
    /mysql   PyMySQL, a connection per request: SELECT SLEEP(SLEEP)
    /stats   {"peak": most queries in flight at once since the last /stats,
              "inflight": now} (then the peak is reset)

The body of a query route is JSON: {"elapsed": seconds the query took,
"result": what the server returned}.  Where the servers are comes from the
environment: DB_PG_DSN, DB_REDIS_PORT (on 127.0.0.1), DB_MYSQL_SOCKET;
DB_SLEEP (default 0.1).
"""

import itertools
import json
import os
import sys
import time

SLEEP = float(os.environ.get("DB_SLEEP", "0.1"))

_monkey = sys.modules.get("gevent.monkey")
GEVENT_PATCHED = bool(_monkey and _monkey.is_module_patched("socket"))

if GEVENT_PATCHED:
    # psycopg2 talks to the server from C (libpq), which gevent cannot
    # patch: psycogreen installs a wait callback that yields to the hub.
    from psycogreen.gevent import patch_psycopg
    patch_psycopg()

_inflight = 0
_peak = 0
_keys = itertools.count()
_redis = None


def _pg():
    import psycopg2
    conn = psycopg2.connect(os.environ["DB_PG_DSN"], connect_timeout=30)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s), pg_backend_pid()", (SLEEP,))
            return cur.fetchone()[1]
    finally:
        conn.close()


def _redis_blpop():
    global _redis
    if _redis is None:
        import redis
        _redis = redis.Redis(host="127.0.0.1",
                             port=int(os.environ["DB_REDIS_PORT"]),
                             socket_timeout=30, socket_connect_timeout=30)
    # a fresh, empty list: BLPOP waits out its whole timeout, returns None
    return _redis.blpop("srv-test-%d-%d" % (os.getpid(), next(_keys)),
                        timeout=SLEEP)


def _mysql():
    import pymysql
    conn = pymysql.connect(unix_socket=os.environ["DB_MYSQL_SOCKET"],
                           user="root", password="", connect_timeout=30)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SLEEP(%s)", (SLEEP,))
            return cur.fetchone()[0]
    finally:
        conn.close()


QUERIES = {"/pg": _pg, "/redis": _redis_blpop, "/mysql": _mysql}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    global _inflight, _peak
    path = environ.get("PATH_INFO", "")
    if path == "/stats":
        stats = {"peak": _peak, "inflight": _inflight,
                 "gevent_patched": GEVENT_PATCHED}
        _peak = 0
        return _json(start_response, stats)
    query = QUERIES.get(path)
    if query is None:
        return _json(start_response, {"error": "no route"}, "404 Not Found")
    _inflight += 1
    _peak = max(_peak, _inflight)
    t0 = time.monotonic()
    try:
        result = query()
    finally:
        _inflight -= 1
    return _json(start_response, {"elapsed": time.monotonic() - t0,
                                  "result": result})
