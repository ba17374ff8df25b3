#!/usr/bin/python3
"""18,000 long-polls on one worker, and a normal request meanwhile.

    bench/longpoll.py [--modes gevent,native] [--peer | --peers LIST]
                      [--step 1000] [--conns 18000] [--requests 2000] [--rate 400]
                      [--wrk-duration 10] [--sleep 60] [--nice -10]

For each server (srv --mode gevent, srv --mode native, and with --peer
gevent.pywsgi via bench/peer_gevent.py and uWSGI's gevent mode, `uwsgi
--gevent N`, which answers one request per connection), one worker pinned
to CPU 0 serving tests/apps/longpoll_app.py; this script and wrk are pinned to CPU 1 (--cpus):

 0. the latency of normal requests with no one waiting (as in 2.), for
    comparison (--no-baseline skips it);
 1. the worker's RSS (VmRSS) once warmed up, then --conns connections are
    opened in steps of --step, each sending one long-poll
    (gevent: GET /wait/event?timeout=60, native: GET /wait/sleep?s=60), and
    RSS is sampled at each step once /stats shows that many handlers waiting;
 2. while they all wait: --requests GET /hello on one keep-alive connection
    at a steady --rate (latency counted from each request's scheduled send
    time, so a stall is not hidden), then wrk -t1 -c10 --latency on /hello;
 3. the waiters are released (gevent: GET /publish?event=1; native: their
    sleep ends) and every connection must get its answer ("fired"/"slept");
    RSS again, and after --idle-wait s (srv retires idle request greenlets
    on a 10 s timer).

Before 0. and 1. it waits (up to --quiet-wait s) for both CPUs to be quiet;
the table shows what other processes took of the server's CPU during each
measurement, which is the first thing to read on a shared machine.  srv
runs from a copy of build/srv (or $SRV_BIN) taken at the start.

Prints tables (p50/p99/max ms; KiB of RSS per waiting client at 1,000 and
at --conns waiting, and MiB per 1,000 waiting)
and writes bench/results/longpoll-<timestamp>.json.  Needs `ulimit -n`
above --conns + a few hundred: the script raises its soft limit to the hard
limit (and, as root, the hard limit too).  Takes about 3.5 minutes with
--peer (the native waiters sleep their full 60 s).  Never part of `make test`.
"""
import argparse
import datetime
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from procstat import (children, cpu_busy_s, free_port, proc_cpu_s, status_kib, tree_pids,
                      uwsgi_missing)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "tests", "apps")
RESULTS = os.path.join(REPO, "bench", "results")
PY = "/usr/bin/python3"
PIN = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER_CPU, CLIENT_CPU = 0, 1   # --cpus
NICE = 0                        # --nice
SRV_COPY = None                 # build/srv copied at the start (a rebuild cannot touch the run)

HELLO = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"
HELLO_BODY = b"Hello, World!\n"


# ------------------------------------------------------------------ helpers

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def raise_nofile(need):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < need:
        try:   # root may raise the hard limit (up to fs.nr_open)
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            hard = need
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def my_cpu_s():
    """utime+stime of this script and of the children it has waited for (wrk)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def others_busy_pct(seconds=1.0):
    """The busier of the two pinned CPUs over `seconds`, in %, while this
    script and the server sit idle: what other processes take."""
    cpus = (SERVER_CPU, CLIENT_CPU)
    a = [cpu_busy_s("cpu%d" % c) for c in cpus]
    time.sleep(seconds)
    return max((cpu_busy_s("cpu%d" % c) - x) * 100 / seconds for c, x in zip(cpus, a))


def wait_quiet(limit_s, threshold=15.0):
    """Waits (at most limit_s) until neither CPU is busier than threshold %
    with others' work; returns (that %, seconds waited)."""
    t0 = time.monotonic()
    while True:
        busy = others_busy_pct()
        waited = time.monotonic() - t0
        if busy < threshold or waited >= limit_s:
            if busy >= threshold:
                log("  the machine is not quiet (%.0f%% busy); measuring anyway" % busy)
            return round(busy, 1), round(waited, 1)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[i]


def http_get(port, path, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        raise RuntimeError("unexpected chunked answer for %s" % path)
    return status, body


def stats(port):
    status, body = http_get(port, "/stats")
    if status != 200:
        raise RuntimeError("/stats: %d %r" % (status, body[:200]))
    return json.loads(body)


# ------------------------------------------------------------------ servers

SERVERS = {
    # name: (wait target, stats key, released by publish?)
    "srv-gevent": ("/wait/event?timeout={sleep}", "event_waiters", True),
    "srv-native": ("/wait/sleep?s={sleep}", "sleepers", False),
    "gevent.pywsgi": ("/wait/event?timeout={sleep}", "event_waiters", True),
    "uwsgi-gevent": ("/wait/event?timeout={sleep}", "event_waiters", True),
}

# uWSGI 2.0's gevent loop crashes on --http11-socket with gevent 22 (see
# bench/run), so its peer closes every connection after one answer: the
# latency client then connects once per request.
NO_KEEPALIVE = {"uwsgi-gevent"}


def peer_missing(name):
    """Why a peer cannot run here, or None."""
    if name == "uwsgi-gevent":
        return uwsgi_missing(("python3", "gevent_python3"))
    return None


def server_cmd(name, port, conns):
    pin = ["taskset", "-c", str(SERVER_CPU)] if PIN else []
    if NICE:
        pin = ["nice", "-n", str(NICE)] + pin
    if name.startswith("srv-"):
        return pin + [SRV_COPY, "--app", "longpoll_app:app", "--bind", "127.0.0.1:%d" % port,
                      "--workers", "1", "--mode", name[4:], "--backlog", "16384",
                      "--max-connections", str(conns + 1000), "--log-level", "warning"]
    if name == "uwsgi-gevent":
        # One process (no --master): it is the worker.  --gevent N is its
        # number of async cores, so N must cover every waiter plus the
        # measuring requests; --listen is capped by net.core.somaxconn.
        return pin + ["uwsgi", "--plugins", "python3,gevent_python3",
                      "--http-socket", "127.0.0.1:%d" % port,
                      "--add-header", "Connection: close",
                      "--chdir", APPS, "--module", "longpoll_app:app", "--need-app",
                      "--processes", "1", "--disable-logging", "--die-on-term",
                      "--listen", str(min(4096, somaxconn())), "--tcp-nodelay",
                      "--gevent", str(conns + 1000), "--gevent-early-monkey-patch"]
    return pin + [PY, os.path.join(REPO, "bench", "peer_gevent.py"), "--port", str(port),
                  "--app", "longpoll_app:app", "--chdir", APPS, "--backlog", "16384"]


def somaxconn():
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 128


def start_server(name, conns):
    port = free_port()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(server_cmd(name, port, conns), cwd=APPS, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError("%s exited: %s" % (name, proc.stderr.read().decode()[-2000:]))
        try:
            if http_get(port, "/hello", timeout=2) == (200, HELLO_BODY):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError("%s did not answer within 20 s" % name)
        time.sleep(0.05)
    # srv: the master forks the worker; the peer is one process.
    worker = proc.pid
    if name.startswith("srv-"):
        for _ in range(100):
            kids = children(proc.pid)
            if kids:
                worker = kids[0]
                break
            time.sleep(0.05)
    return proc, port, worker


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            for p in reversed(tree_pids(proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()


# ------------------------------------------------------------------ load

def open_waiters(port, target, n):
    req = (b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % target.encode())
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
    return socks


def wait_stat(port, key, value, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = stats(port)[key]
        if v >= value or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def keepalive_latency(port, n, rate, keepalive=True):
    """n GET /hello on one keep-alive connection, one every 1/rate s; the
    latency of each is counted from its scheduled send time.  With
    keepalive=False (a server that closes after each answer) each request
    gets a connection of its own, its connect counted in its latency."""
    def connect():
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c
    s = connect() if keepalive else None
    lat = []
    bad = 0
    t0 = time.perf_counter() + 0.05
    try:
        for i in range(n):
            sched = t0 + i / rate
            delay = sched - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if not keepalive:
                if s is not None:
                    s.close()
                s = connect()
            s.sendall(HELLO)
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    raise RuntimeError("keep-alive connection closed after %d requests" % i)
                buf += d
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", buf[:end])
                    if m and len(buf) >= end + 4 + int(m.group(1)):
                        break
            lat.append(time.perf_counter() - sched)
            if not buf.startswith(b"HTTP/1.1 200") or not buf.endswith(HELLO_BODY):
                bad += 1
    finally:
        if s is not None:
            s.close()
    lat.sort()
    return {
        "requests": n, "rate": rate, "bad": bad, "keepalive": keepalive,
        "p50_ms": round(pct(lat, 50) * 1e3, 3), "p90_ms": round(pct(lat, 90) * 1e3, 3),
        "p99_ms": round(pct(lat, 99) * 1e3, 3), "max_ms": round(lat[-1] * 1e3, 3),
    }


def wrk_latency(port, duration):
    if not shutil.which("wrk"):
        return {"skipped": "wrk not installed"}
    cmd = (["taskset", "-c", str(CLIENT_CPU)] if PIN else []) + [
        "wrk", "-t1", "-c10", "-d%ds" % duration, "--timeout", "5s", "--latency",
        "http://127.0.0.1:%d/hello" % port]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=duration + 30).stdout

    def ms(v, unit):
        return round(float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 3)

    r = {"cmd": " ".join(cmd), "output": out}
    m = re.search(r"Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)\b", out)
    if m:
        r["max_ms"] = ms(*m.groups())
    for p in ("50", "90", "99"):
        m = re.search(r"\b%s%%\s+([\d.]+)(us|ms|s|m)\b" % p, out)
        if m:
            r["p%s_ms" % p] = ms(*m.groups())
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["errors"] = ((sum(int(x) for x in errs.groups()) if errs else 0)
                   + (int(non2xx.group(1)) if non2xx else 0))
    return r


def measure(port, proc, a, keepalive=True):
    """The keep-alive client, then wrk; and how much of the server's CPU
    other processes took meanwhile."""
    cpu_a, srv_a, t_a = cpu_busy_s("cpu%d" % SERVER_CPU), sum(proc_cpu_s(p) for p in tree_pids(proc.pid)), \
        time.monotonic()
    ccpu_a, mine_a = cpu_busy_s("cpu%d" % CLIENT_CPU), my_cpu_s()
    m = {"loadavg_before": loadavg()}
    log("  keep-alive client: %d requests at %d/s" % (a.requests, a.rate))
    m["keepalive"] = keepalive_latency(port, a.requests, a.rate, keepalive)
    log("  wrk -t1 -c10 -d%ds" % a.wrk_duration)
    m["wrk"] = wrk_latency(port, a.wrk_duration)
    wall = time.monotonic() - t_a
    busy = cpu_busy_s("cpu%d" % SERVER_CPU) - cpu_a
    srv_cpu = sum(proc_cpu_s(p) for p in tree_pids(proc.pid)) - srv_a
    m["server_cpu_pct"] = round(srv_cpu * 100 / wall, 1)
    m["cpu_other_pct"] = round(max(0.0, busy - srv_cpu) * 100 / wall, 1) if PIN else None
    cbusy = cpu_busy_s("cpu%d" % CLIENT_CPU) - ccpu_a
    mine = my_cpu_s() - mine_a
    m["client_cpu_pct"] = round(mine * 100 / wall, 1)
    m["client_cpu_other_pct"] = round(max(0.0, cbusy - mine) * 100 / wall, 1) if PIN else None
    return m


def collect(socks, expect, timeout):
    """Reads every waiter's answer to EOF; returns (ok, bad, missing)."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    ok = bad = 0
    deadline = time.monotonic() + timeout
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                d = b""
            if d:
                bufs[s] += d
                continue
            sel.unregister(s)
            pending -= 1
            b = bufs[s]
            if b.startswith(b"HTTP/1.1 200") and b.endswith(b"\r\n\r\n" + expect):
                ok += 1
            else:
                bad += 1
    sel.close()
    for s in socks:
        s.close()
    return ok, bad, pending


# ------------------------------------------------------------------ one server

def run_one(name, a):
    target_tpl, key, publish = SERVERS[name]
    target = target_tpl.format(sleep=a.sleep)
    expect = b"fired" if publish else b"slept"
    keepalive = name not in NO_KEEPALIVE
    proc, port, worker = start_server(name, a.conns)
    r = {"server": name, "conns": a.conns, "target": target, "keepalive": keepalive}
    socks = []
    try:
        for _ in range(200):
            http_get(port, "/hello")
        time.sleep(0.3)
        if a.baseline:
            r["quiet_before_idle"] = wait_quiet(a.quiet_wait)
            log("%s: latency with no one waiting" % name)
            r["idle"] = measure(port, proc, a, keepalive)
            time.sleep(0.3)
        r["quiet_before_open"] = wait_quiet(a.quiet_wait)
        base = status_kib(worker, "VmRSS")
        steps = [{"waiting": 0, "rss_kib": base}]
        log("%s: worker %d, RSS %d KiB idle; opening %d long-polls %s"
            % (name, worker, base, a.conns, target))
        t_open = time.monotonic()
        while len(socks) < a.conns:
            n = min(a.step, a.conns - len(socks))
            socks += open_waiters(port, target, n)
            got = wait_stat(port, key, len(socks), timeout=30)
            if got < len(socks):
                raise RuntimeError("only %d of %d handlers waiting" % (got, len(socks)))
            time.sleep(0.2)
            rss = status_kib(worker, "VmRSS")
            steps.append({"waiting": len(socks), "rss_kib": rss})
            log("  %5d waiting: RSS %d KiB" % (len(socks), rss))
        r["open_s"] = round(time.monotonic() - t_open, 2)
        r["rss_steps"] = steps
        top = steps[-1]["rss_kib"]
        r["rss_base_kib"] = base
        r["rss_at_n_kib"] = top
        r["kib_per_1000"] = round((top - base) / (a.conns / 1000.0), 1)
        # KiB per waiting client at 1,000 waiting (the first sample at or
        # past 1,000) and at --conns: the figure issue 15 sets targets for.
        first = next((s for s in steps[1:] if s["waiting"] >= 1000), steps[-1])
        r["kib_per_client_1000"] = round((first["rss_kib"] - base) / first["waiting"], 2)
        r["kib_per_client_n"] = round((top - base) / a.conns, 2)
        incr = [s2["rss_kib"] - s1["rss_kib"] for s1, s2 in zip(steps, steps[1:])]
        r["kib_per_step"] = incr
        r["fds"] = len(os.listdir("/proc/%d/fd" % worker))

        # Latency of normal requests while everyone waits.
        r["loaded"] = measure(port, proc, a, keepalive)
        still = stats(port)[key]
        r["waiting_after_measurement"] = still
        r["rss_after_measurement_kib"] = status_kib(worker, "VmRSS")
        r["hwm_kib"] = status_kib(worker, "VmHWM")

        # Release.
        t_rel = time.monotonic()
        if publish:
            status, body = http_get(port, "/publish?event=1")
            r["publish"] = json.loads(body)
            timeout = 60
        else:
            timeout = a.sleep - (t_rel - t_open) + 60
            log("  waiting up to %.0f s for the sleeps to end" % (a.sleep - (t_rel - t_open)))
        ok, bad, missing = collect(socks, expect, timeout)
        socks = []
        r["release_s"] = round(time.monotonic() - t_rel, 2)
        r["released"] = {"ok": ok, "bad": bad, "missing": missing}
        time.sleep(0.5)
        r["rss_after_release_kib"] = status_kib(worker, "VmRSS")
        r["waiting_after_release"] = stats(port)[key]
        status, body = http_get(port, "/hello")
        r["healthy_after"] = (status, body) == (200, HELLO_BODY)
        if a.idle_wait > 0:
            # srv retires pooled request greenlets the recent peak no longer
            # needs on a 10 s timer; see what RSS does once that has run.
            log("  idle for %d s, then RSS again" % a.idle_wait)
            time.sleep(a.idle_wait)
            r["rss_after_idle_kib"] = status_kib(worker, "VmRSS")
            r["idle_wait_s"] = a.idle_wait
    finally:
        for s in socks:
            s.close()
        stop_server(proc)
        err = proc.stderr.read().decode("utf-8", "replace")
        r["server_stderr_tail"] = err[-2000:]
    return r


def srv_version():
    try:
        return subprocess.run([SRV_COPY, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v) if isinstance(v, float) else str(v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--modes", default="gevent,native",
                    help="srv modes to run, comma-separated (gevent, native)")
    ap.add_argument("--peer", action="store_true",
                    help="also gevent.pywsgi (bench/peer_gevent.py) and uWSGI's gevent mode "
                         "(uwsgi --gevent) on the same app")
    ap.add_argument("--peers", default="",
                    help="peers to run, comma-separated (gevent.pywsgi, uwsgi-gevent); "
                         "--peer is both")
    ap.add_argument("--conns", type=int, default=18000,
                    help="long-polls to open (18,000: under this machine's 20,000 descriptors)")
    ap.add_argument("--step", type=int, default=1000, help="RSS is sampled every STEP")
    ap.add_argument("--requests", type=int, default=2000,
                    help="keep-alive requests measured")
    ap.add_argument("--rate", type=int, default=400, help="keep-alive requests per second")
    ap.add_argument("--wrk-duration", type=int, default=10, help="seconds")
    ap.add_argument("--sleep", type=int, default=60, help="how long each long-poll waits (s)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip the latency measurement with no one waiting")
    ap.add_argument("--cpus", default="0,1",
                    help="SERVER,CLIENT: the CPUs the server and the load are pinned to")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the server, this script and wrk at this nice level (negative "
                         "needs root): on a shared machine, less noise from neighbours")
    ap.add_argument("--quiet-wait", type=int, default=60,
                    help="wait up to this long for the CPUs to be quiet (others' load under "
                         "15%%) before each measurement")
    ap.add_argument("--idle-wait", type=int, default=22,
                    help="seconds idle after the release before a last RSS sample (0: none)")
    a = ap.parse_args()

    limit = raise_nofile(a.conns + 1000)
    if limit != resource.RLIM_INFINITY and limit < a.conns + 200:
        sys.exit("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (limit, a.conns))
    global SERVER_CPU, CLIENT_CPU, NICE
    if a.nice:
        try:
            os.nice(a.nice)
            NICE = a.nice
        except OSError as e:
            log("--nice %d: %s; running at the default priority" % (a.nice, e))
    SERVER_CPU, CLIENT_CPU = (int(x) for x in a.cpus.split(","))
    if PIN:
        os.sched_setaffinity(0, {CLIENT_CPU})
    global SRV_COPY
    tmp = tempfile.mkdtemp(prefix="srv-longpoll.")
    SRV_COPY = os.path.join(tmp, "srv")
    shutil.copy2(os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv"), SRV_COPY)
    names = ["srv-" + m.strip() for m in a.modes.split(",") if m.strip()]
    skipped = []
    peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    if a.peer:
        peers += [p for p in ("gevent.pywsgi", "uwsgi-gevent") if p not in peers]
    for p in peers:
        why = peer_missing(p)
        if why:
            skipped.append("%s: %s" % (p, why))
        else:
            names.append(p)
    for n in names:
        if n not in SERVERS:
            sys.exit("unknown mode/server %r" % n)

    results = []
    try:
        for name in names:
            try:
                results.append(run_one(name, a))
            except Exception as e:  # noqa: BLE001 - report and go on with the next server
                log("%s failed: %r" % (name, e))
                results.append({"server": name, "error": repr(e)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    where = (" pinned to CPU %d (client and wrk on CPU %d)" % (SERVER_CPU, CLIENT_CPU)
             if PIN else "")
    ok = [r for r in results if "error" not in r]
    print()
    for why in skipped:
        print("skipped %s" % why)
    if NICE:
        where += ", nice %d" % NICE
    print("Normal requests (GET /hello) on one worker%s, with no one waiting and with %d "
          "long-polls waiting; keep-alive: %d requests at %d/s, latency from the scheduled "
          "send time; wrk -t1 -c10 -d%ds" % (where, a.conns, a.requests, a.rate, a.wrk_duration))
    print()
    print("| server | waiting | keep-alive p50 / p99 / max ms | wrk p50 / p99 / max ms | "
          "wrk req/s | server CPU % | others on server's CPU % | others on client's CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print("| %s | failed: %s |" % (r["server"], r["error"]))
            continue
        for label, m in (("0", r.get("idle")), (str(r["waiting_after_measurement"]), r["loaded"])):
            if m is None:
                continue
            k, w = m["keepalive"], m["wrk"]
            print("| %s | %s | %s / %s / %s | %s / %s / %s | %s | %s | %s | %s |" % (
                r["server"] + ("" if r["keepalive"] else " (a connection per request)"), label, fmt(k["p50_ms"]), fmt(k["p99_ms"]), fmt(k["max_ms"]),
                fmt(w.get("p50_ms")), fmt(w.get("p99_ms")), fmt(w.get("max_ms")),
                fmt(w.get("rps"), 0), fmt(m["server_cpu_pct"], 1), fmt(m["cpu_other_pct"], 1),
                fmt(m["client_cpu_other_pct"], 1)))
    print()
    print("Worker memory (VmRSS):")
    print()
    print("| server | idle MiB | %d waiting MiB | KiB per client at 1,000 | KiB per client at %d "
          "| MiB per 1,000 waiting | after release MiB | after %d s idle MiB | released ok "
          "| release s |" % (a.conns, a.conns, a.idle_wait))
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in ok:
        print("| %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.1f | %s | %d/%d | %.2f |" % (
            r["server"], r["rss_base_kib"] / 1024, r["rss_at_n_kib"] / 1024,
            r["kib_per_client_1000"], r["kib_per_client_n"], r["kib_per_1000"] / 1024,
            r["rss_after_release_kib"] / 1024,
            "%.1f" % (r["rss_after_idle_kib"] / 1024) if "rss_after_idle_kib" in r else "-",
            r["released"]["ok"], r["conns"], r["release_s"]))
    print()
    print("VmRSS (KiB) as connections wait:")
    print()
    if ok:
        print("| waiting | " + " | ".join(r["server"] for r in ok) + " |")
        print("|---" * (len(ok) + 1) + "|")
        for i in range(len(ok[0]["rss_steps"])):
            print("| %d | " % ok[0]["rss_steps"][i]["waiting"]
                  + " | ".join(str(r["rss_steps"][i]["rss_kib"]) if i < len(r["rss_steps"]) else "-"
                               for r in ok) + " |")
    print()
    for r in ok:
        notes = []
        if r["released"]["bad"] or r["released"]["missing"]:
            notes.append("release: %r" % r["released"])
        for m in (r.get("idle"), r["loaded"]):
            if m and m["keepalive"]["bad"]:
                notes.append("%d bad keep-alive answers" % m["keepalive"]["bad"])
            if m and m["wrk"].get("errors"):
                notes.append("wrk errors: %d" % m["wrk"]["errors"])
        if r["waiting_after_measurement"] != r["conns"]:
            notes.append("only %d still waiting after the measurement"
                         % r["waiting_after_measurement"])
        if not r["healthy_after"]:
            notes.append("NOT healthy after release")
        idle = ("" if "rss_after_idle_kib" not in r else
                ", %d KiB after %d s idle" % (r["rss_after_idle_kib"], r["idle_wait_s"]))
        print("%s: opened in %.1f s, released in %.2f s, worker fds %d; RSS after release "
              "%d KiB%s, VmHWM %d KiB%s" % (r["server"], r["open_s"], r["release_s"], r["fds"],
                                            r["rss_after_release_kib"], idle, r["hwm_kib"],
                                            ("; " + "; ".join(notes)) if notes else ""))

    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(RESULTS, "longpoll-%s.json" % stamp)
    with open(path, "w") as f:
        json.dump({"when": stamp, "args": vars(a), "pinned": PIN, "nproc": os.cpu_count(),
                   "srv_bin": os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv"),
                   "srv_version": srv_version(),
                   "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU, "nice": NICE,
                   "results": results}, f, indent=1)
    print("\nwrote %s" % os.path.relpath(path, REPO))
    failed = any("error" in r or r["released"]["ok"] != r["conns"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
