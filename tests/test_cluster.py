"""Three srv hosts behind one nginx (issue 16, "Several hosts behind nginx").

Each "host" is a Linux network namespace with one address on a private
subnet (10.213.7.0/24, which exists only inside these namespaces) and runs
``srv --workers 2``.  A fourth namespace holds the bridge that joins them,
nginx (examples/nginx-cluster.conf, addresses and paths rewritten, so the
example itself is what is tested) and the load generator (produtil.Load's
keep-alive and fresh-connection threads, whose sockets are made in that
namespace with setns(2)).  Every namespace carries a per-run prefix and is
deleted, with whatever runs in it, when the module ends, pass or fail.

Under a steady load the tests prove, and print (``make test-cluster`` or
``pytest -s``):
  1. the load spreads over the three hosts (each 25-42 %);
  2. a rolling reload (SIGHUP to each master in turn) answers every
     request with 200: nothing lost, nothing reset;
  3. a host killed with SIGKILL costs at most the requests in flight on it
     (nginx retries GETs on the next host), and after fail_timeout nginx
     only probes it (once per fail_timeout) instead of sending it traffic;
  4. the host restarted gets its share again after fail_timeout.

Needs root, iproute2 and nginx; skips otherwise (or where namespaces cannot
be made)."""

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import http.client

import pytest

from conftest import Server, _can_connect, wait_for
from produtil import PROD_APP, Load, children, pid_alive, read_text, wait_children
from test_nginx import Nginx, nginx_bin

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "nginx-cluster.conf")

PREFIX = "srvcl-%d-%s" % (os.getpid(), secrets.token_hex(2))
SUBNET = "10.213.7"
LB_ADDR = SUBNET + ".1"
HOSTS = ("h1", "h2", "h3")
HOST_ADDR = {h: "%s.%d" % (SUBNET, 11 + i) for i, h in enumerate(HOSTS)}
SRV_PORT = 8000
NGINX_PORT = 8080
FAIL_TIMEOUT = 3          # seconds, nginx's fail_timeout in this test
WORKERS = 2
LOAD_KEEPALIVE = 3        # load threads reusing one connection each
LOAD_FRESH = 1            # load threads opening a connection per request
CONCURRENCY = LOAD_KEEPALIVE + LOAD_FRESH
# Each request spends 10 ms in the app (a cooperative sleep): the load is
# steady but modest (a few hundred requests/s), and a host killed under it
# has requests in flight.
LOAD_PATH = "/sleep?t=0.01"

CLONE_NEWNET = 0x40000000


def report(text):
    print("[cluster] " + text, flush=True)


# ---------------------------------------------------------------- namespaces

def ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode("utf-8", "replace").strip()
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), out))
    return p.returncode, out


def ns_name(short):
    return "%s-%s" % (PREFIX, short)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


@contextlib.contextmanager
def in_netns(ns):
    """Run the calling thread (only it) in network namespace ns: sockets it
    makes and processes it starts belong there.  Restores the old one."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def netns_pids(ns):
    rc, out = ip("netns", "pids", ns, check=False)
    return [int(x) for x in out.split()] if rc == 0 else []


def kill_netns_processes(ns, timeout=10.0):
    """SIGKILL everything in ns until nothing is left."""
    deadline = time.monotonic() + timeout
    while True:
        pids = netns_pids(ns)
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def delete_netns(ns):
    kill_netns_processes(ns)
    ip("netns", "del", ns, check=False)


def remove_stale_namespaces():
    """Namespaces of earlier runs whose pytest process is gone (a run that
    was killed before its finalizer)."""
    rc, out = ip("netns", "list", check=False)
    if rc != 0:
        return
    for line in out.splitlines():
        m = re.match(r"(srvcl-(\d+)-[0-9a-f]+-\w+)", line)
        if m and int(m.group(2)) != os.getpid() and not os.path.exists("/proc/" + m.group(2)):
            delete_netns(m.group(1))


def preflight():
    """A reason to skip, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, as CI does)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) not installed: apt-get install iproute2"
    if nginx_bin() is None:
        return "nginx not installed"
    probe = ns_name("probe")
    rc, out = ip("netns", "add", probe, check=False)
    if rc != 0:
        return "cannot create a network namespace here: " + out
    ip("netns", "del", probe, check=False)
    return None


def build_network():
    """The load-balancer namespace with bridge br0 (LB_ADDR/24) and one
    namespace per host with eth0 (a veth whose peer is on br0)."""
    lb = ns_name("lb")
    ip("netns", "add", lb)
    ip("-n", lb, "link", "set", "lo", "up")
    ip("-n", lb, "link", "add", "br0", "type", "bridge")
    ip("-n", lb, "addr", "add", LB_ADDR + "/24", "dev", "br0")
    ip("-n", lb, "link", "set", "br0", "up")
    for h in HOSTS:
        ns = ns_name(h)
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", lb, "link", "add", "v" + h, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        ip("-n", lb, "link", "set", "v" + h, "master", "br0")
        ip("-n", lb, "link", "set", "v" + h, "up")
        ip("-n", ns, "addr", "add", HOST_ADDR[h] + "/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")


# ---------------------------------------------------------------- hosts

class Host:
    """One srv master (and its workers) in its own namespace."""

    def __init__(self, name):
        self.name = name
        self.ns = ns_name(name)
        self.addr = HOST_ADDR[name]
        self.srv = None
        self.old = []           # Server objects of killed runs (for cleanup)

    def start(self):
        with in_netns(self.ns):
            s = Server(PROD_APP, binds=["%s:%d" % (self.addr, SRV_PORT)],
                       args=["--workers", str(WORKERS),
                             "--forwarded-allow-ips", LB_ADDR],
                       env={"PROD_VERSION": self.name}, ready_timeout=30)
            self.srv = s
            s.host = self.addr
            wait_children(s, WORKERS, timeout=30)
            info = s.get_json("/info", timeout=15)
        assert info["version"] == self.name, info
        assert s.pid in netns_pids(self.ns), "srv is not in namespace " + self.ns

    def reloads_done(self):
        return self.srv.stderr_text().count("reload: %d new worker(s) ready" % WORKERS)

    def reload(self, timeout=30.0):
        """SIGHUP and wait until the master says the new workers are ready
        and the old ones are gone.  Returns (old pids, new pids)."""
        s = self.srv
        before = set(children(s.pid))
        done = self.reloads_done()
        s.proc.send_signal(signal.SIGHUP)
        ok = wait_for(lambda: self.reloads_done() > done
                      and not (set(children(s.pid)) & before)
                      and len(children(s.pid)) == WORKERS, timeout=timeout, interval=0.05)
        assert ok, "%s: reload did not finish:\n%s" % (self.name, s.stderr_text()[-3000:])
        return before, set(children(s.pid))

    def kill(self):
        """SIGKILL the master first (so nothing respawns), then everything
        else in the namespace (its workers)."""
        s = self.srv
        workers = children(s.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(s.pid, signal.SIGKILL)
        assert kill_netns_processes(self.ns), "%s: processes survive SIGKILL" % self.name
        s.proc.wait(10)
        assert not any(pid_alive(p) for p in workers)
        self.old.append(s)
        self.srv = None

    def cleanup(self):
        for s in self.old + ([self.srv] if self.srv else []):
            s.cleanup()
        self.old, self.srv = [], None


# ---------------------------------------------------------------- nginx

def adapt_example(d):
    text = read_text(EXAMPLE)
    assert text, EXAMPLE
    servers = re.findall(r"^\s*server\s+10\.0\.0\.(\d+):8000\s[^;]*;", text, flags=re.M)
    assert len(servers) == 3, servers
    text = re.sub(r"\b10\.0\.0\.(\d+):8000", lambda m: "%s.%s:%d" % (SUBNET, m.group(1), SRV_PORT),
                  text)
    assert set(re.findall(r"%s\.\d+:%d" % (re.escape(SUBNET), SRV_PORT), text)) == \
        {"%s:%d" % (HOST_ADDR[h], SRV_PORT) for h in HOSTS}
    text, n = re.subn(r"^(\s*server\s[^;#]*)fail_timeout=\d+s", r"\g<1>fail_timeout=%ds" % FAIL_TIMEOUT,
                      text, flags=re.M)
    assert n == 3
    text = re.sub(r"^\s*user\s+[^;]+;", "", text, flags=re.M)
    text = re.sub(r"^(\s*)listen\s+80;", r"\1listen 127.0.0.1:%d;" % NGINX_PORT, text, flags=re.M)
    text = re.sub(r"^\s*listen\s+\[::\]:80;", "", text, flags=re.M)
    text = re.sub(r"^\s*worker_processes\s+[^;]+;",
                  "daemon off;\nmaster_process off;\nworker_processes 1;", text, flags=re.M)
    text = text.replace("/run/nginx.pid", os.path.join(d, "nginx.pid"))
    text = text.replace("/var/log/nginx/", d + "/")
    temps = "".join("    %s_temp_path %s/%s;\n" % (k, d, k)
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = re.sub(r"^http\s*\{", "http {\n" + temps, text, count=1, flags=re.M)
    return text


ACCESS_RE = re.compile(r'\s(\d{3})\s.*msec=([\d.]+) up="([^"]*)" us="([^"]*)"')


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="srvcl-", dir="/tmp")
        self.lb = ns_name("lb")
        self.hosts = {h: Host(h) for h in HOSTS}
        self.nginx = None

    def start(self):
        build_network()
        for h in self.hosts.values():
            h.start()
        with in_netns(self.lb):
            for h in HOSTS:     # the bridge forwards between host and nginx
                assert wait_for(lambda: _can_connect((HOST_ADDR[h], SRV_PORT)), timeout=10), h
            self.nginx = Nginx(adapt_example(self.dir), self.dir, NGINX_PORT)

    def connector(self):
        """For Load: connections made from the load-balancer namespace.
        Each load thread moves itself there once (setns is per thread)."""
        lb = self.lb
        local = threading.local()

        def connect():
            if not getattr(local, "moved", False):
                fd = os.open("/run/netns/" + lb, os.O_RDONLY)
                try:
                    _setns(fd)
                finally:
                    os.close(fd)
                local.moved = True
            return http.client.HTTPConnection("127.0.0.1", NGINX_PORT, timeout=20)
        return connect

    def load(self):
        return Load(self.connector(), path=LOAD_PATH, keepalive=LOAD_KEEPALIVE,
                    fresh=LOAD_FRESH, timeout=20).start()

    def access(self, t0=0.0, t1=float("inf")):
        """nginx access log entries with t0 <= msec < t1: (msec, status,
        [upstream addresses tried, in order], [their statuses])."""
        out = []
        for line in read_text(os.path.join(self.dir, "access.log")).splitlines():
            m = ACCESS_RE.search(line)
            if m and t0 <= float(m.group(2)) < t1:
                out.append((float(m.group(2)), int(m.group(1)),
                            [a.strip() for a in m.group(3).split(",")],
                            [s.strip() for s in m.group(4).split(",")]))
        return out

    def error_log(self):
        return read_text(os.path.join(self.dir, "error.log"))

    def diag(self):
        parts = ["nginx error.log (tail):\n" + self.error_log()[-2000:]]
        for h in self.hosts.values():
            if h.srv:
                parts.append("%s stderr (tail):\n%s" % (h.name, h.srv.stderr_text()[-1500:]))
        return "\n".join(parts)

    def cleanup(self):
        if self.nginx:
            self.nginx.stop()
        for h in self.hosts.values():
            with contextlib.suppress(Exception):
                kill_netns_processes(h.ns)
            h.cleanup()
        for h in HOSTS:
            delete_netns(ns_name(h))
        delete_netns(self.lb)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    why = preflight()
    if why:
        pytest.skip(why)
    remove_stale_namespaces()
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.cleanup()
        rc, out = ip("netns", "list", check=False)
        assert PREFIX not in out, "namespaces left behind:\n" + out


# ---------------------------------------------------------------- helpers

def mark(load):
    with load.lock:
        return len(load.bodies), len(load.failures)


def per_host(bodies):
    counts = {h: 0 for h in HOSTS}
    for b in bodies:
        counts[b["version"]] = counts.get(b["version"], 0) + 1
    return counts


def shares(counts):
    total = sum(counts.values())
    return {h: (counts[h] / total if total else 0.0) for h in counts}


def fmt(counts):
    total = sum(counts.values())
    return " ".join("%s=%d (%.0f%%)" % (h, n, 100.0 * n / total if total else 0)
                    for h, n in sorted(counts.items()))


def assert_spread(counts, what, diag=""):
    total = sum(counts.values())
    assert total >= 60, "%s: too few requests to judge: %r" % (what, counts)
    for h, share in shares(counts).items():
        assert 0.25 <= share <= 0.42, "%s: %s served %.1f%% (%s)\n%s" % (
            what, h, 100 * share, fmt(counts), diag)


# ---------------------------------------------------------------- tests

def test_load_spreads_over_hosts(cluster):
    load = cluster.load()
    try:
        time.sleep(3.0)
    finally:
        load.stop()
    counts = per_host(load.bodies)
    report("spread: %d requests in 3 s: %s; failures=%d" % (load.ok, fmt(counts),
                                                           len(load.failures)))
    assert not load.failures, load.summary() + "\n" + cluster.diag()
    assert_spread(counts, "spread", cluster.diag())
    # nginx passes the client's address on and srv trusts it (and only it).
    assert {b["remote_addr"] for b in load.bodies} == {"127.0.0.1"}
    assert {b["headers"].get("HTTP_X_FORWARDED_FOR") for b in load.bodies} == {"127.0.0.1"}


def test_rolling_reload_loses_nothing(cluster):
    err_before = len(cluster.error_log())
    load = cluster.load()
    new_pids = {}
    try:
        time.sleep(1.0)
        for h in HOSTS:
            old, new = cluster.hosts[h].reload()
            new_pids[h] = new
            time.sleep(0.7)
    finally:
        load.stop()
    counts = per_host(load.bodies)
    answered = {b["pid"] for b in load.bodies}
    nginx_errors = [ln for ln in cluster.error_log()[err_before:].splitlines() if ln.strip()]
    report("rolling reload: %d requests: %s; failures=%d resets=%d statuses=%r "
           "nginx errors=%d" % (load.ok, fmt(counts), len(load.failures), load.resets,
                                load.statuses, len(nginx_errors)))
    assert load.ok >= 60, load.summary()
    assert not load.failures and load.resets == 0, load.summary() + "\n" + cluster.diag()
    assert set(load.statuses) == {200}, load.summary()
    assert not nginx_errors, "\n".join(nginx_errors[:20])
    for h in HOSTS:
        assert counts[h] > 0, counts
        assert answered & new_pids[h], "%s: no new worker answered after its reload" % h


def test_killed_host_drops_out_and_rejoins(cluster):
    victim = cluster.hosts["h2"]
    addr = "%s:%d" % (victim.addr, SRV_PORT)
    load = cluster.load()
    try:
        time.sleep(1.5)
        a0, _ = mark(load)

        t_kill = time.time()
        victim.kill()
        b_start = t_kill + FAIL_TIMEOUT + 0.5
        time.sleep(b_start - time.time())
        b0, _ = mark(load)
        time.sleep(3.0)
        b1, _ = mark(load)
        b_end = time.time()

        t_restart = time.time()
        victim.start()
        t_ready = time.time()
        # nginx counts fail_timeout in whole seconds: its next probe comes
        # at most fail_timeout + 1 s after the last failed one.
        c_start = t_ready + FAIL_TIMEOUT + 2.0
        time.sleep(max(0.0, c_start - time.time()))
        c0, _ = mark(load)
        time.sleep(3.0)
        c1, _ = mark(load)
    finally:
        load.stop()
    bodies = load.bodies
    before = per_host(bodies[:a0])
    after_kill = per_host(bodies[b0:b1])
    rejoined = per_host(bodies[c0:c1])

    # What nginx sent to the dead host: everything from the kill until it
    # was back (the killed host's own answers cannot show this).
    tried = [e for e in cluster.access(t_kill, b_end) if addr in e[2]]
    tried_b = [e for e in cluster.access(b_start, b_end) if addr in e[2]]
    first_back = min((e[0] for e in cluster.access(t_restart)
                      if e[2][-1] == addr and e[3][-1] == "200"), default=None)
    retried = [e for e in cluster.access(t_kill, b_end) if len(e[2]) > 1]

    report("kill: before: %s" % fmt(before))
    report("kill: h2 SIGKILLed; failed requests=%d (in-flight bound %d) statuses=%r; "
           "requests nginx retried on another host=%d" % (
               len(load.failures), CONCURRENCY, load.statuses, len(retried)))
    report("kill: %.1f-%.1f s after the kill: %s; nginx attempts on h2 in that window=%d "
           "(probes, at most one per fail_timeout=%ds); all attempts on h2 since the kill, "
           "s after it: %s" % (
               b_start - t_kill, b_end - t_kill, fmt(after_kill), len(tried_b),
               FAIL_TIMEOUT, " ".join("%.2f" % (e[0] - t_kill) for e in tried)))
    report("rejoin: h2 restarted (ready after %.2f s); first 200 from it through nginx "
           "%s after it was ready; %.1f-%.1f s after that: %s" % (
               t_ready - t_restart,
               "%.2f s" % (first_back - t_ready) if first_back else "never",
               c_start - t_ready, c_start - t_ready + 3.0, fmt(rejoined)))

    diag = load.summary() + "\n" + cluster.diag()
    assert_spread(before, "before the kill", diag)
    # (3) at most the requests in flight on the killed host could be lost
    # (at most one per load thread); with proxy_next_upstream nginx retries
    # those GETs on another host, so none is.
    assert retried, "nothing was in flight on h2 or nginx never noticed:\n" + diag
    assert len(load.failures) <= CONCURRENCY, diag
    assert not load.failures, diag
    assert all(s in (200, 502) for s in load.statuses), diag
    assert load.resets == 0, diag
    assert after_kill["h2"] == 0, after_kill
    assert after_kill["h1"] > 0 and after_kill["h3"] > 0, after_kill
    total_b = sum(after_kill.values())
    assert total_b >= 40, after_kill
    # nginx stopped sending it traffic: at most its probes, once per
    # fail_timeout, instead of a third of the requests.
    window = b_end - b_start
    assert len(tried_b) <= int(window / FAIL_TIMEOUT) + 1, (tried_b, window)
    # ... and from the first failures on: later attempts are single probes,
    # fail_timeout apart.
    late = [e[0] for e in tried if e[0] > t_kill + 1.0]
    assert all(b - a >= FAIL_TIMEOUT - 0.5 for a, b in zip(late, late[1:])), \
        [round(t - t_kill, 2) for t in late]
    assert len(tried_b) < total_b / 10, (len(tried_b), total_b)
    # (4) back within fail_timeout of its restart, then its full share.
    assert first_back is not None and first_back - t_ready <= FAIL_TIMEOUT + 2.0, \
        (first_back, t_ready, diag)
    assert_spread(rejoined, "after the restart", diag)
