#!/usr/bin/python3
"""WebSocket echo at 1,000 connections: srv beside gevent-websocket and uwsgi.

    bench/ws_echo.py                                  all servers, 10 s each
    bench/ws_echo.py --servers srv,gevent-websocket --duration 5
    bench/ws_echo.py --conns 1000 --size 64 --rounds 3

Each server gets one worker, pinned to CPU 0 (taskset -c 0); this script and
the load generator (bench/wsload.c, compiled here into bench/.build/) run
pinned to CPU 1. For each server: start it, wait until a plain GET answers
"ok", check one WebSocket echo (wsload -c 1), read its idle RSS, then run
wsload: CONNS connections, each with exactly one SIZE-byte text message in
flight (send, wait for the echo, check it, send the next), a warm-up, then
the measured run. Server CPU (utime+stime of every process of the server's
tree, from /proc/PID/stat) is read by wsload itself at the start and end of
the measured window, and the tree's summed VmRSS at its end, with every
connection open. Then the server is stopped by pid: SIGTERM (SIGINT for
uwsgi), SIGKILL to the tree after 3 s.

Servers:
  srv               build/srv (or $SRV_BIN), 1 worker, gevent mode
  srv-native        the same with --mode native
  gevent-websocket  gevent.pywsgi + geventwebsocket's WebSocketHandler
                    (bench/peer_gevent.py --websocket); same app as srv
  uwsgi             uwsgi --gevent 1000 --http-socket, the app using
                    uwsgi.websocket_handshake/recv/send (ws_echo_uwsgi.py)

A server that is not installed (or srv without WebSocket support) is skipped
with a note. Results: a table (and ratios against srv) on stdout, every
number in bench/results/ws-echo-<timestamp>.json. Exit status 1 when a
server failed to start or any run had errors.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from procstat import (CLK_TCK, cpu_busy_s, free_port, proc_cpu_s, status_kib, tree_pids,
                      uwsgi_missing)

PY = "/usr/bin/python3"
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
APPS = os.path.join(BENCH, "apps")
RESULTS = os.path.join(BENCH, "results")
BUILD = os.path.join(BENCH, ".build")
WSLOAD_SRC = os.path.join(BENCH, "wsload.c")
WSLOAD = os.path.join(BUILD, "wsload")
NOFILE = 20000
CONNECT_TIMEOUT = 10   # wsload -t
ECHO_TIMEOUT = 5       # wsload -T

# ------------------------------------------------------------------ servers


def srv_bin():
    return os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv")


def check_srv():
    b = srv_bin()
    if not os.access(b, os.X_OK):
        return "no srv binary at %s (cmake --build build -j2, or set SRV_BIN)" % b
    try:
        h = subprocess.run([b, "--help"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s --help failed: %s" % (b, e)
    if "ws-max-message" not in h.stdout + h.stderr:
        return "%s has no WebSocket support yet (no --ws-max-message)" % b
    return None


def check_module(mod):
    r = subprocess.run([PY, "-c", "import " + mod], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        return "python module %s not importable (%s)" % (
            mod, (r.stderr.strip().splitlines() or ["?"])[-1])
    return None


def check_uwsgi():
    return uwsgi_missing(("python3", "gevent_python3"))


def srv_argv(mode):
    def argv(port):
        a = [srv_bin(), "--app", "ws_echo_app:app", "--chdir", APPS,
             "--bind", "127.0.0.1:%d" % port, "--workers", "1",
             "--graceful-timeout", "2", "--log-level", "warning",
             "--max-connections", "19500", "--backlog", "4096"]
        if mode:
            a += ["--mode", mode]
        return a
    return argv


def gevent_ws_argv(port):
    return [PY, os.path.join(BENCH, "peer_gevent.py"), "--websocket", "--port", str(port),
            "--app", "ws_echo_app:app", "--chdir", APPS, "--backlog", "2048"]


def uwsgi_argv(port):
    # --http-socket speaks WebSocket by itself (--http-websockets belongs to
    # the separate http router plugin, which is not used here). Without
    # --master the one process is the worker.
    return ["uwsgi", "--plugins", "python3,gevent_python3",
            "--http-socket", "127.0.0.1:%d" % port,
            "--chdir", APPS, "--module", "ws_echo_uwsgi:app", "--need-app",
            "--processes", "1", "--disable-logging", "--die-on-term",
            "--listen", "2048", "--buffer-size", "65535", "--tcp-nodelay",
            "--gevent", "1000", "--gevent-early-monkey-patch"]


SERVERS = {
    "srv": dict(label="srv (gevent)", argv=srv_argv(None), check=check_srv,
                sig=signal.SIGTERM),
    "srv-native": dict(label="srv --mode native", argv=srv_argv("native"),
                       check=check_srv, sig=signal.SIGTERM),
    "gevent-websocket": dict(label="gevent-websocket (pywsgi)",
                             argv=gevent_ws_argv,
                             check=lambda: check_module("geventwebsocket"),
                             sig=signal.SIGTERM),
    "uwsgi": dict(label="uwsgi --gevent 1000", argv=uwsgi_argv,
                  check=check_uwsgi, sig=signal.SIGINT, max_conns=1000),
}
ORDER = ["srv", "srv-native", "gevent-websocket", "uwsgi"]

# --------------------------------------------------------------- processes


def tree_cpu_s(root):
    return sum(proc_cpu_s(p, reaped_children=True) for p in tree_pids(root))


def tree_rss_kib(root):
    return sum(status_kib(p, "VmRSS") for p in tree_pids(root))


def cpu_breakdown():
    """{cpuN: (busy, irq+softirq, idle+iowait)} seconds from /proc/stat."""
    out = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *v = line.split()
                    v = [int(x) for x in v]
                    out[name] = ((v[0] + v[1] + v[2] + v[7]) / CLK_TCK,
                                 (v[5] + v[6]) / CLK_TCK, (v[3] + v[4]) / CLK_TCK)
    except (OSError, ValueError, IndexError):
        pass
    return out


def self_and_children_cpu_s():
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime, b.ru_utime + b.ru_stime


def wait_quiet(max_wait, limit=0.10):
    """Until the whole machine is busy less than `limit` of a core for two
    seconds in a row (other sessions' benchmarks skew the numbers); at most
    max_wait seconds. -> seconds waited, or None when it never got quiet."""
    t0 = time.monotonic()
    calm = 0
    while True:
        b0 = cpu_busy_s("cpu")
        time.sleep(1.0)
        b1 = cpu_busy_s("cpu")
        if b0 is None or b1 is None:
            return 0.0
        calm = calm + 1 if (b1 - b0) < limit else 0
        if calm >= 2:
            return time.monotonic() - t0
        if time.monotonic() - t0 > max_wait:
            return None


RUNNING = []  # (Popen, stop signal)


def stop_proc(proc, sig, grace=3.0):
    if proc.poll() is not None:
        return
    pids = tree_pids(proc.pid)
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for pid in pids[1:]:
        for _ in range(40):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)


def stop_all():
    while RUNNING:
        proc, sig = RUNNING.pop()
        stop_proc(proc, sig)


def on_signal(signum, frame):
    stop_all()
    sys.stderr.write("ws_echo: interrupted (signal %d)\n" % signum)
    sys.exit(130)


def wait_ready(proc, port, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited with status %s before answering" % proc.returncode
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                        timeout=2) as r:
                body = r.read()
                if r.status == 200 and body == b"ok\n":
                    return None
                last = "HTTP %d %r" % (r.status, body[:40])
        except Exception as e:  # noqa: BLE001 - anything means not ready yet
            last = str(e)
        time.sleep(0.1)
    return "not answering after %.0f s (%s)" % (timeout, last)


def log_tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
        return lines[-n:]
    except OSError:
        return []


def run_bounded(argv, timeout, out_path, sample_root=None):
    """Run argv (stdout+stderr to out_path) for at most timeout seconds;
    sample sample_root's tree RSS meanwhile. -> (rc, text, peak_rss_kib)."""
    peak = 0
    with open(out_path, "w+") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        RUNNING.append((p, signal.SIGINT))
        deadline = time.monotonic() + timeout
        try:
            while p.poll() is None:
                if time.monotonic() > deadline:
                    out.write("\nws_echo: wsload ran past %.0f s, stopped\n" % timeout)
                    stop_proc(p, signal.SIGINT, grace=ECHO_TIMEOUT + 4)
                    break
                if sample_root:
                    peak = max(peak, tree_rss_kib(sample_root))
                time.sleep(0.2)
        finally:
            if (p, signal.SIGINT) in RUNNING:
                RUNNING.remove((p, signal.SIGINT))
            stop_proc(p, signal.SIGINT, grace=2)
        out.seek(0)
        text = out.read()
    return p.returncode, text, peak


def build_wsload():
    if (os.path.exists(WSLOAD) and
            os.path.getmtime(WSLOAD) >= os.path.getmtime(WSLOAD_SRC)):
        return
    os.makedirs(BUILD, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    argv = [cc, "-O2", "-Wall", "-o", WSLOAD, WSLOAD_SRC]
    print("ws_echo: " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True)

# -------------------------------------------------------------------- runs


def one_server(name, args, tmp, pin_srv, pin_load):
    spec = SERVERS[name]
    res = {"server": name, "label": spec["label"]}
    why = spec["check"]()
    if why:
        res.update(status="skipped", reason=why)
        print("---- %s: skipped: %s" % (name, why), flush=True)
        return res
    rounds = []
    for rnd in range(args.rounds):
        port = free_port()
        argv = pin_srv + spec["argv"](port)
        log = os.path.join(tmp, "%s.%d.log" % (name, rnd))
        print("---- %s (round %d/%d): %s" % (name, rnd + 1, args.rounds,
                                             " ".join(argv)), flush=True)
        r = {"argv": argv, "port": port}
        with open(log, "w") as lf:
            proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=APPS)
        RUNNING.append((proc, spec["sig"]))
        try:
            why = wait_ready(proc, port)
            if why:
                r.update(status="failed", reason="server did not start: " + why,
                         log_tail=log_tail(log))
                rounds.append(r)
                print("   FAILED: %s\n   log: %s" % (r["reason"],
                      " | ".join(r["log_tail"])), flush=True)
                break
            url = "ws://127.0.0.1:%d/echo" % port
            # one connection, a few messages: does it speak WebSocket at all?
            rc, text, _ = run_bounded(
                pin_load + [WSLOAD, "-c", "1", "-w", "0", "-d", "0.3",
                            "-t", "5", "-T", str(ECHO_TIMEOUT), "-u", url],
                timeout=20, out_path=os.path.join(tmp, name + ".smoke"))
            if rc != 0:
                r.update(status="failed", reason="WebSocket echo check failed",
                         smoke_output=text, log_tail=log_tail(log))
                rounds.append(r)
                print("   FAILED: WebSocket echo check (wsload -c 1):\n%s\n   "
                      "server log: %s" % (text.rstrip(),
                                          " | ".join(r["log_tail"])), flush=True)
                break
            time.sleep(0.3)
            pids = tree_pids(proc.pid)
            r["pids"] = pids
            r["rss_idle_kib"] = tree_rss_kib(proc.pid)
            jpath = os.path.join(tmp, "%s.%d.json" % (name, rnd))
            load = pin_load + [
                WSLOAD, "-c", str(args.conns), "-d", str(args.duration),
                "-w", str(args.warmup), "-s", str(args.size),
                "-t", str(CONNECT_TIMEOUT), "-T", str(ECHO_TIMEOUT),
                "-p", ",".join(str(p) for p in pids), "-j", jpath, "-u", url]
            r["wsload_argv"] = load
            if args.quiet_wait > 0:
                waited = wait_quiet(args.quiet_wait)
                r["quiet_wait_s"] = waited
                if waited is None:
                    print("   note: the machine did not get quiet within %g s "
                          "(other processes busy): numbers may be skewed"
                          % args.quiet_wait, flush=True)
                elif waited > 3:
                    print("   (waited %.0f s for the machine to get quiet)" % waited,
                          flush=True)
            bound = CONNECT_TIMEOUT + args.warmup + args.duration + ECHO_TIMEOUT + 15
            c0, b0, a0 = tree_cpu_s(proc.pid), cpu_busy_s("cpu0"), cpu_busy_s("cpu")
            s0, k0 = self_and_children_cpu_s()
            bd0 = cpu_breakdown()
            t0 = time.monotonic()
            rc, text, peak = run_bounded(load, bound,
                                         os.path.join(tmp, name + ".out"),
                                         sample_root=proc.pid)
            wall = time.monotonic() - t0
            c1, b1, a1 = tree_cpu_s(proc.pid), cpu_busy_s("cpu0"), cpu_busy_s("cpu")
            s1, k1 = self_and_children_cpu_s()
            bd1 = cpu_breakdown()
            # per CPU over the whole wsload run, % of that CPU: loopback TCP
            # work done in softirq is charged to no process, so a core can be
            # full while the process on it shows less than 100 %
            r["cpus_pct"] = {
                c: dict(zip(("busy", "irq", "idle"),
                            (round((b - a) * 100 / wall, 1)
                             for a, b in zip(bd0[c], bd1[c]))))
                for c in bd1 if c in bd0}
            r["wsload_rc"] = rc
            r["wsload_output"] = text
            r["rss_peak_kib"] = peak
            r["wall_s"] = round(wall, 3)
            # wsload's own CPU (the only child reaped meanwhile): near 100 %
            # means the client, not the server, set the pace
            r["wsload_cpu_pct"] = round((k1 - k0) * 100 / wall, 1)
            if None not in (b0, b1, a0, a1) and wall > 0:
                srv_s = c1 - c0
                # CPU 0 taken by anything but the server, and the whole
                # machine's CPU taken by anything but the server, wsload and
                # this script, in % of one core (both should be ~0)
                r["cpu0_other_pct"] = round(max(0.0, (b1 - b0) - srv_s) * 100 / wall, 1)
                r["other_pct"] = round(max(0.0, (a1 - a0) - srv_s - (k1 - k0) - (s1 - s0))
                                       * 100 / wall, 1)
            try:
                with open(jpath) as f:
                    r["wsload"] = json.load(f)
            except (OSError, ValueError):
                r["wsload"] = None
            alive = proc.poll() is None
            print("   " + text.rstrip().replace("\n", "\n   "), flush=True)
            if not alive:
                r.update(status="failed",
                         reason="server exited (status %s) during the run"
                         % proc.returncode)
            elif r["wsload"] is None:
                r.update(status="failed", reason="wsload wrote no results (rc %s)" % rc)
            elif rc != 0:
                r.update(status="failed", reason="wsload reported errors (rc %d)" % rc)
            else:
                r["status"] = "ok"
            lt = log_tail(log)
            if lt:
                r["log_tail"] = lt
                print("   server log: " + " | ".join(lt), flush=True)
        finally:
            RUNNING.remove((proc, spec["sig"]))
            stop_proc(proc, spec["sig"])
        rounds.append(r)
        if r.get("status") != "ok":
            break
    res["rounds"] = rounds
    bad = [r for r in rounds if r.get("status") != "ok"]
    res["status"] = "failed" if bad else "ok"
    if bad:
        res["reason"] = bad[0].get("reason")
    res["summary"] = summarize(rounds)
    return res

# ------------------------------------------------------------------ idle WebSockets

WS_HANDSHAKE = (b"GET /echo HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
WS_HELLO = bytes([0x81, 0x85, 1, 2, 3, 4]) + bytes(b ^ m for b, m in zip(b"hello", b"\1\2\3\4\1"))


def open_idle_ws(port, n, timeout=30.0):
    """n WebSockets, each exchanging one echo, then left idle: the app sits
    in receive().  Returns the sockets (all handshakes and echoes checked)."""
    import socket
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            s.sendall(WS_HANDSHAKE)
            socks.append(s)
        for s in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(4096)
                if not d:
                    raise RuntimeError("closed during the handshake")
                head += d
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError("handshake answered %r" % head[:40])
            s.sendall(WS_HELLO)
        for s in socks:
            got = b""
            while len(got) < 7:
                d = s.recv(64)
                if not d:
                    raise RuntimeError("closed before the echo")
                got += d
            if got != b"\x81\x05hello":
                raise RuntimeError("bad echo %r" % got)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def idle_server(name, args, tmp, pin_srv):
    """A fresh server; RSS of its tree idle, then with each count of
    --idle-conns WebSockets open and idle (capped at what the server runs
    concurrently).  KiB per idle WebSocket = (RSS with n open - RSS idle) / n."""
    spec = SERVERS[name]
    counts = sorted(set(min(c, spec.get("max_conns", c)) for c in args.idle_conns))
    port = free_port()
    argv = pin_srv + spec["argv"](port)
    log = os.path.join(tmp, "%s.idle.log" % name)
    out = {"argv": argv, "points": []}
    with open(log, "w") as lf:
        proc = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=APPS)
    RUNNING.append((proc, spec["sig"]))
    socks = []
    try:
        why = wait_ready(proc, port)
        if why:
            out["error"] = "server did not start: " + why
            return out
        socks += open_idle_ws(port, 10)   # warm: the first connections
        for s in socks:
            s.close()
        socks = []
        time.sleep(1.0)
        base = tree_rss_kib(proc.pid)
        out["rss_idle_kib"] = base
        for n in counts:
            socks += open_idle_ws(port, n - len(socks))
            time.sleep(1.0)
            rss = tree_rss_kib(proc.pid)
            out["points"].append({"conns": n, "rss_kib": rss,
                                  "kib_per_conn": round((rss - base) / n, 2)})
            print("   %s: %d idle WebSockets: RSS %.1f MiB, %.2f KiB each"
                  % (name, n, rss / 1024, (rss - base) / n), flush=True)
    except (OSError, RuntimeError) as e:
        out["error"] = repr(e)
        print("   %s: idle WebSockets failed: %r" % (name, e), flush=True)
    finally:
        for s in socks:
            s.close()
        RUNNING.remove((proc, spec["sig"]))
        stop_proc(proc, spec["sig"])
    return out


def idle_table(results, args):
    cols = sorted(set(c for r in results for p in r.get("idle", {}).get("points", [])
                      for c in [p["conns"]]))
    lines = ["| server | RSS idle MiB | " + " | ".join("KiB per idle WebSocket at %s" % format(c, ",")
                                                    for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for r in results:
        i = r.get("idle")
        if not i:
            continue
        by = {p["conns"]: p["kib_per_conn"] for p in i.get("points", [])}
        lines.append("| %s | %s | %s |%s" % (
            SERVERS[r["server"]]["label"],
            fmt(i["rss_idle_kib"] / 1024 if "rss_idle_kib" in i else None, ".1f"),
            " | ".join(fmt(by.get(c), ".2f") for c in cols),
            " " + i["error"] if i.get("error") else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------ output

OTHERS_MAX_PCT = 5.0  # a round where others took more CPU than this is noisy


def _median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(rounds):
    """Each number is the median over the clean rounds (others took under
    OTHERS_MAX_PCT of a core); over all rounds that ran when none was
    clean. A failed round's numbers still count (the row is flagged)."""
    ran = [r for r in rounds if r.get("wsload")]
    if not ran:
        return None
    clean = [r for r in ran if r.get("other_pct") is not None
             and r["other_pct"] < OTHERS_MAX_PCT]
    pool = clean or ran

    def med(f):
        return _median([f(r) for r in pool])

    def cpu_pct(r):
        w = r["wsload"]
        if w.get("server_cpu_s") is None or not w["window_s"]:
            return None
        return 100 * w["server_cpu_s"] / w["window_s"]

    def cpus(r, c):
        return r.get("cpus_pct", {}).get(c, {}).get("idle")
    return {
        "msgs_per_s": med(lambda r: r["wsload"]["msgs_per_s"]),
        "cpu_us_per_msg": med(lambda r: r["wsload"].get("server_cpu_us_per_msg")),
        "cpu_pct": med(cpu_pct),
        "p50_ms": med(lambda r: r["wsload"]["lat_ms"]["p50"]),
        "p99_ms": med(lambda r: r["wsload"]["lat_ms"]["p99"]),
        "max_ms": max(r["wsload"]["lat_ms"]["max"] for r in pool),
        "errors": sum(r["wsload"]["errors"] for r in ran),
        "opened": min(r["wsload"]["opened"] for r in ran),
        "close_clean": min(r["wsload"]["close_clean"] for r in ran),
        "rss_idle_kib": med(lambda r: r.get("rss_idle_kib")),
        "rss_conns_kib": med(lambda r: r["wsload"].get("server_rss_kib")),
        "rss_peak_kib": max(r.get("rss_peak_kib", 0) for r in pool),
        "cpu0_other_pct": med(lambda r: r.get("cpu0_other_pct")),
        "other_pct": med(lambda r: r.get("other_pct")),
        "wsload_cpu_pct": med(lambda r: r.get("wsload_cpu_pct")),
        "cpu0_idle_pct": med(lambda r: cpus(r, "cpu0")),
        "cpu1_idle_pct": med(lambda r: cpus(r, "cpu1")),
        "rounds": len(ran), "rounds_clean": len(clean),
        "rounds_msgs_per_s": [round(r["wsload"]["msgs_per_s"]) for r in ran],
        "rounds_cpu_us_per_msg": [r["wsload"].get("server_cpu_us_per_msg") for r in ran],
    }


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(results, args):
    lines = []
    hdr = ("| server | msgs/s | CPU µs/msg | server CPU %% | p50 ms | p99 ms "
           "| errors | RSS idle MiB | RSS @%d conns MiB | KiB/conn | clean closes "
           "| wsload CPU %% | CPU0/CPU1 idle %% | others' CPU %% | clean rounds |" % args.conns)
    lines.append(hdr)
    lines.append("|" + "---|" * 15)
    for res in results:
        s = res.get("summary")
        if not s:
            lines.append("| %s | %s: %s |" % (res["label"], res["status"],
                                              res.get("reason", "")))
            continue
        per_conn = None
        if s["rss_conns_kib"] is not None:
            per_conn = (s["rss_conns_kib"] - s["rss_idle_kib"]) / max(1, s["opened"])
        flag = "" if res["status"] == "ok" else " (FAILED)"
        lines.append("| %s%s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %d/%d | %s | %s/%s | %s | %d/%d |" % (
            res["label"], flag, fmt(s["msgs_per_s"], ",.0f"),
            fmt(s["cpu_us_per_msg"], ".1f"), fmt(s["cpu_pct"], ".0f"),
            fmt(s["p50_ms"], ".1f"), fmt(s["p99_ms"], ".1f"), s["errors"],
            fmt(s["rss_idle_kib"] / 1024, ".1f"),
            fmt(None if s["rss_conns_kib"] is None else s["rss_conns_kib"] / 1024, ".1f"),
            fmt(per_conn, ".1f"), s["close_clean"], s["opened"],
            fmt(s["wsload_cpu_pct"], ".0f"), fmt(s["cpu0_idle_pct"], ".0f"),
            fmt(s["cpu1_idle_pct"], ".0f"), fmt(s["other_pct"], ".1f"),
            s["rounds_clean"], s["rounds"]))
    base = next((r for r in results if r["server"] == "srv" and r.get("summary")), None)
    if base:
        b = base["summary"]
        lines.append("")
        lines.append("Ratios vs srv (gevent): srv msgs/s ÷ peer's, peer's CPU µs/msg "
                     "÷ srv's, peer's RSS @%d ÷ srv's." % args.conns)
        lines.append("")
        lines.append("| peer | throughput srv/peer | CPU per msg peer/srv "
                     "| RSS peer/srv |")
        lines.append("|---|---|---|---|")
        for res in results:
            s = res.get("summary")
            if res is base or not s:
                continue
            thr = b["msgs_per_s"] / s["msgs_per_s"] if s["msgs_per_s"] else None
            cpu = (s["cpu_us_per_msg"] / b["cpu_us_per_msg"]
                   if s["cpu_us_per_msg"] and b["cpu_us_per_msg"] else None)
            rss = (s["rss_conns_kib"] / b["rss_conns_kib"]
                   if s["rss_conns_kib"] and b["rss_conns_kib"] else None)
            lines.append("| %s | %s | %s | %s |" % (
                res["label"], fmt(thr, ".2f") + "x" if thr else "-",
                fmt(cpu, ".2f") + "x" if cpu else "-",
                fmt(rss, ".2f") + "x" if rss else "-"))
    return "\n".join(lines)


def versions():
    v = {"python": platform.python_version(), "kernel": platform.release()}
    for mod in ("gevent", "geventwebsocket", "greenlet"):
        r = subprocess.run([PY, "-c", "import %s as m; print(getattr(m, '__version__', '?'))"
                            % mod], capture_output=True, text=True)
        v[mod] = r.stdout.strip() or None
    for exe, arg in ((srv_bin(), "--version"), ("uwsgi", "--version")):
        try:
            r = subprocess.run([exe, arg], capture_output=True, text=True, timeout=10)
            v[os.path.basename(exe)] = (r.stdout.strip() or r.stderr.strip()) or None
        except (OSError, subprocess.TimeoutExpired):
            v[os.path.basename(exe)] = None
    try:
        v["git"] = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                  capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            v["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f
                             if ln.startswith("model name")), None)
    except OSError:
        pass
    return v


def main():
    ap = argparse.ArgumentParser(
        description="WebSocket echo benchmark: srv vs gevent-websocket and uwsgi")
    ap.add_argument("--servers", default=",".join(ORDER),
                    help="comma-separated, from: " + ",".join(ORDER))
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--idle-conns", default="1000,18000",
                    help="after the echo rounds, a fresh server per peer with this many "
                         "idle WebSockets open (comma-separated counts; 0 skips): KiB each")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=64, help="message bytes")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs per server; the median (by msgs/s) is shown")
    ap.add_argument("--quiet-wait", type=float, default=60,
                    help="before each run, wait up to this many seconds for "
                         "the machine to be idle (0: don't)")
    ap.add_argument("--report", metavar="JSON",
                    help="only print the table of an earlier results file "
                         "(re-summarized)")
    args = ap.parse_args()
    args.idle_conns = [int(x) for x in str(args.idle_conns).split(",") if int(x) > 0] \
        if isinstance(args.idle_conns, str) else args.idle_conns
    if args.report:
        with open(args.report) as f:
            d = json.load(f)
        for k, v in d["args"].items():
            if k != "report":
                setattr(args, k, v)
        for res in d["results"]:
            res["summary"] = summarize(res.get("rounds", []))
        tab = table(d["results"], args)
        if any(r.get("idle") for r in d["results"]):
            tab += "\n\n" + idle_table(d["results"], args)
        print(d.get("title", "") + "\n\n" + tab)
        return 0
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for n in names:
        if n not in SERVERS:
            ap.error("unknown server %r (known: %s)" % (n, ", ".join(ORDER)))
    if args.conns < 1 or args.duration <= 0 or args.rounds < 1 or args.size < 0:
        ap.error("bad --conns/--duration/--rounds/--size")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(NOFILE, args.conns + 1000, max(args.idle_conns or [0]) + 1000)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < max(args.idle_conns or [0]) + 100:
        sys.exit("ws_echo: RLIMIT_NOFILE %d is too low for %d idle connections (--idle-conns)"
                 % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], max(args.idle_conns)))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < args.conns + 100:
        sys.exit("ws_echo: RLIMIT_NOFILE %d is too low for %d connections"
                 % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], args.conns))

    pin_srv, pin_load = [], []
    if os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset"):
        pin_srv, pin_load = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
        os.sched_setaffinity(0, {1})
    else:
        print("ws_echo: note: fewer than 2 CPUs (or no taskset): not pinning",
              flush=True)
    build_wsload()

    vers = versions()
    tmp = tempfile.mkdtemp(prefix="srv-ws-echo.")
    if any(n.startswith("srv") for n in names) and check_srv() is None:
        # run a copy, so that a rebuild of build/srv meanwhile cannot
        # change (or break) srv under the benchmark
        snap = os.path.join(tmp, "srv")
        vers["srv_binary"] = srv_bin()
        shutil.copy2(srv_bin(), snap)
        with open(snap, "rb") as f:
            vers["srv_sha256"] = hashlib.sha256(f.read()).hexdigest()
        os.environ["SRV_BIN"] = snap
    results = []
    started = datetime.datetime.now()
    try:
        for n in names:
            results.append(one_server(n, args, tmp, pin_srv, pin_load))
            if args.idle_conns and results[-1]["status"] == "ok":
                results[-1]["idle"] = idle_server(n, args, tmp, pin_srv)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    title = ("WebSocket echo: %d connections, one %d-byte text message in flight "
             "each, %g s measured after %g s warm-up; one worker on CPU 0, "
             "wsload on CPU 1" % (args.conns, args.size, args.duration, args.warmup))
    tab = table(results, args)
    if any(r.get("idle") for r in results):
        tab += ("\n\nIdle WebSockets (the app in receive() after one echo), a fresh "
                "server each: (tree RSS with n open - RSS idle) / n\n\n" + idle_table(results, args))
    print(title + "\n\n" + tab)
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "ws-echo-%s.json" % started.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump({"date": started.isoformat(timespec="seconds"),
                   "args": vars(args), "versions": vers,
                   "cpus": os.cpu_count(), "title": title, "table_md": tab,
                   "results": results}, f, indent=1)
    print("\nresults: %s" % os.path.relpath(path, os.getcwd()))
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        print("FAILED: %s: %s" % (r["server"], r.get("reason")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
