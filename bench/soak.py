#!/usr/bin/python3
"""Soak: many requests mixed across code paths, checking that nothing grows.

    bench/soak.py [--requests 1000000] [--clients 4]

Starts srv on tests/apps/soak_app.py and drives it from several client
threads with a mix of: pipelined bursts of hello requests, streamed
responses, 64 KiB uploads, app errors (500), clients that abort in the
middle of a request or of a 1 MiB response, Expect: 100-continue uploads,
and HTTP/1.0 requests.  After a warm-up of a tenth of the requests it
records the worker's RSS, open fds and live Python objects (gc), and at the
end checks: RSS within 5 % (plus 1 MiB for allocator noise), fds back to
the baseline, and live objects within 1 % (plus 200).  Exit status 1 on any
growth or error.  tests/test_soak.py runs a short version.
"""
import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(REPO, "tests", "apps")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    def __init__(self, port, rng):
        self.port = port
        self.rng = rng
        self.sock = None
        self.buf = b""
        self.done = 0

    def connect(self):
        if self.sock:
            self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise ConnectionError("closed by server")
        self.buf += d

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if status == 100:
            return status, b""
        if b"content-length" in headers:
            n = int(headers[b"content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            body = self.buf
            while True:
                try:
                    self._fill()
                except ConnectionError:
                    break
            body, self.buf = self.buf, b""
            self.sock.close()
            self.sock = None
        return status, body

    def expect(self, want_status):
        status, body = self.read_response()
        if status != want_status:
            raise AssertionError("expected %d, got %d %r" % (want_status, status, body[:100]))
        return body

    def op(self):
        kind = self.rng.random()
        if self.sock is None or self.rng.random() < 0.01:
            self.connect()
        if kind < 0.55:   # pipelined burst
            n = 16
            self.sock.sendall(b"GET /hello HTTP/1.1\r\nHost: s\r\n\r\n" * n)
            for _ in range(n):
                self.expect(200)
            return n
        if kind < 0.65:
            self.sock.sendall(b"GET /stream HTTP/1.1\r\nHost: s\r\n\r\n")
            self.expect(200)
            return 1
        if kind < 0.75:
            body = b"u" * 65536
            self.sock.sendall(b"POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 65536\r\n\r\n" + body)
            assert self.expect(200) == b"65536"
            return 1
        if kind < 0.82:
            self.sock.sendall(b"GET /err HTTP/1.1\r\nHost: s\r\n\r\n")
            self.expect(500)
            return 1
        if kind < 0.87:   # client aborts mid-request
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            s.close()
            return 1
        if kind < 0.90:   # client aborts mid-response (RST)
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            s.sendall(b"GET /big HTTP/1.1\r\nHost: s\r\n\r\n")
            s.recv(4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            return 1
        if kind < 0.95:   # Expect: 100-continue
            self.sock.sendall(b"POST /upload HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\n"
                              b"Content-Length: 1000\r\n\r\n")
            self.expect(100)
            self.sock.sendall(b"c" * 1000)
            assert self.expect(200) == b"1000"
            return 1
        # HTTP/1.0, close-delimited streaming
        s, self.sock = self.sock, None
        if s:
            s.close()
        self.connect()
        self.sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        self.expect(200)
        return 1


def worker_pid(master):
    for _ in range(500):
        with open("/proc/%d/task/%d/children" % (master, master)) as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
        time.sleep(0.02)
    raise RuntimeError("no worker")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def live_objects(port):
    c = Client(port, random.Random(0))
    c.connect()
    c.sock.sendall(b"GET /gc HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
    n = int(c.expect(200))
    c.sock.close()
    return n


def run_phase(port, total, clients, seed):
    counts = [0] * clients
    errors = []

    def loop(i):
        c = Client(port, random.Random(seed * 100 + i))
        try:
            while counts[i] < total // clients:
                counts[i] += c.op()
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), errors


def soak(requests, clients=4, srv_bin=None, log=print):
    srv_bin = srv_bin or os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv")
    port = free_port()
    proc = subprocess.Popen([srv_bin, "--app", "soak_app:app", "--bind", "127.0.0.1:%d" % port],
                            cwd=APPS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        pid = worker_pid(proc.pid)
        warm = max(requests // 10, 2000)
        t0 = time.monotonic()
        n1, err1 = run_phase(port, warm, clients, 1)
        time.sleep(0.5)
        base = (rss_kib(pid), fds(pid), live_objects(port))
        n2, err2 = run_phase(port, requests - warm, clients, 2)
        time.sleep(3)   # lingering closes finish
        end = (rss_kib(pid), fds(pid), live_objects(port))
        elapsed = time.monotonic() - t0
        result = {
            "requests": n1 + n2, "seconds": round(elapsed, 1),
            "rss_kib": (base[0], end[0]), "fds": (base[1], end[1]),
            "live_objects": (base[2], end[2]), "errors": err1 + err2,
            "alive": proc.poll() is None,
        }
        log("soak: %(requests)d requests in %(seconds)s s; RSS KiB %(rss_kib)s; fds %(fds)s; "
            "live objects %(live_objects)s; errors %(errors)s" % result)
        problems = []
        if not result["alive"]:
            problems.append("srv died")
        if result["errors"]:
            problems.append("client errors: %s" % result["errors"][:3])
        # Under AddressSanitizer freed memory sits in quarantine: RSS is moot.
        if end[0] > base[0] * 1.05 + 1024 and not os.environ.get("SRV_SANITIZED"):
            problems.append("RSS grew from %d to %d KiB" % (base[0], end[0]))
        if end[1] > base[1]:
            problems.append("fds grew from %d to %d" % (base[1], end[1]))
        if end[2] > base[2] * 1.01 + 200:
            problems.append("live objects grew from %d to %d" % (base[2], end[2]))
        result["problems"] = problems
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    r = soak(a.requests, a.clients)
    for p in r["problems"]:
        print("FAIL:", p)
    sys.exit(1 if r["problems"] else 0)


if __name__ == "__main__":
    main()
