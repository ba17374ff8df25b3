#!/usr/bin/python3
"""Many suspended requests on one worker: srv against gevent's servers.

    bench/c10k.py [--servers srv,gevent,gunicorn-gevent] [--duration 10]

Two cells per server, one worker pinned to CPU 0, wrk pinned to CPU 1:
  sleep100ms: a handler sleeping 0.1 s,  wrk -t1 -c1000  --timeout 5s
  sleep1s:    a handler sleeping 1 s,    wrk -t1 -c10000 --timeout 5s
Reports requests/s, p99, errors (socket errors + timeouts + non-2xx), the
worker's peak RSS and RSS per 1,000 connections.  Needs `ulimit -n` above
20,000 (the script raises its own soft limit to the hard limit).
"""
import argparse
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "bench", "apps")
PY = "/usr/bin/python3"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def server_cmd(name, app, port):
    srv = os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv")
    if name == "srv":
        return [srv, "--app", app, "--bind", "127.0.0.1:%d" % port, "--backlog", "16384",
                "--max-connections", "20000"]
    if name == "gevent":
        return [PY, os.path.join(REPO, "bench", "peer_gevent.py"), "--port", str(port),
                "--app", app, "--chdir", APPS, "--backlog", "16384"]
    if name == "gunicorn-gevent":
        return [PY, "-m", "gunicorn", "-k", "gevent", "-w", "1", "--worker-connections", "20000",
                "--backlog", "16384", "-b", "127.0.0.1:%d" % port, "--log-level", "warning", app]
    raise ValueError(name)


def tree(pid):
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            for k in f.read().split():
                out += tree(int(k))
    except OSError:
        pass
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total = max(total, int(line.split()[1]))
        except OSError:
            pass
    return total


def parse_wrk(text):
    def num(pattern, default=0.0):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    def ms(value, unit):
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = num(r"Non-2xx or 3xx responses: (\d+)")
    return {
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "p99_ms": ms(*p99.groups()) if p99 else None,
        "errors": int(non2xx + (sum(int(x) for x in errs.groups()) if errs else 0)),
    }


def run_cell(name, app, conns, duration):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0"] + server_cmd(name, app, port), cwd=APPS,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1)
        wrk = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c%d" % conns,
                                "-d%ds" % duration, "--timeout", "5s", "--latency",
                                "http://127.0.0.1:%d/" % port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = 0
        while wrk.poll() is None:
            peak = max(peak, rss_kib(tree(proc.pid)))
            time.sleep(0.5)
        r = parse_wrk(wrk.stdout.read())
        r["rss_mib"] = round(peak / 1024, 1)
        r["kib_per_1000_conns"] = round(peak / (conns / 1000), 0)
        return r
    finally:
        for p in reversed(tree(proc.pid)):
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            for p in tree(proc.pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="srv,gevent,gunicorn-gevent")
    ap.add_argument("--duration", type=int, default=10)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cells = [("sleep100ms:app", 1000), ("sleep1s:app", 10000)]
    print("| server | app | conns | req/s | p99 ms | errors | peak RSS MiB | KiB per 1000 conns |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.servers.split(","):
        for app, conns in cells:
            r = run_cell(name, app, conns, a.duration)
            print("| %s | %s | %d | %.0f | %s | %d | %.1f | %.0f |" % (
                name, app.split(":")[0], conns, r["rps"],
                "%.0f" % r["p99_ms"] if r["p99_ms"] is not None else "-", r["errors"],
                r["rss_mib"], r["kib_per_1000_conns"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
