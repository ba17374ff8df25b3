#!/usr/bin/python3
"""Network-level fuzzing: random and mutated requests against a running srv.

    tests/fuzz/netfuzz.py [--seconds 1800] [--clients 4] [--workers 1]

Starts srv on tests/apps/recorder.py, then several client threads send
mutations of the seed corpus (tests/fuzz/corpus): bit flips, byte
insertions and deletions, splices of two seeds, repeated fragments, random
split points and delays, abrupt closes.  Every few hundred inputs a health
probe must get 200 within 5 s, the worker must be the same process (no
crash), and srv's log must show no crash.  Exits 1 on a failure, after
saving the last inputs of every client to netfuzz-failure-*.bin.
"""
import argparse
import glob
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(REPO, "tests", "apps")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mutate(rng, seeds):
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if not data:
            data += rng.choice(seeds)
        i = rng.randrange(len(data) + 1)
        if op < 0.25 and data:
            j = min(len(data) - 1, i)
            data[j] ^= 1 << rng.randrange(8)
        elif op < 0.45:
            data[i:i] = bytes([rng.choice(b"\r\n :;,\t\x00\x7f0aF-_\"") for _ in range(rng.randint(1, 4))])
        elif op < 0.6 and data:
            del data[i:i + rng.randint(1, 8)]
        elif op < 0.75:
            other = rng.choice(seeds)
            k = rng.randrange(len(other) + 1)
            data[i:] = other[k:]
        elif op < 0.85 and data:
            j = rng.randrange(len(data))
            frag = data[j:j + rng.randint(1, 16)]
            data[i:i] = frag * rng.randint(2, 50)
        else:
            data[i:i] = str(rng.choice([0, 1, -1, 2**31, 2**63, 2**64, 10**30])).encode()
    return bytes(data)


def send(port, data, rng):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        pos = 0
        while pos < len(data):
            n = rng.choice([len(data), 1, rng.randint(1, 64)])
            s.sendall(data[pos:pos + n])
            pos += n
            if rng.random() < 0.05:
                time.sleep(0.01)
        if rng.random() < 0.3:
            s.shutdown(socket.SHUT_WR)
        if rng.random() < 0.2:
            return   # abrupt close
        s.settimeout(2)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    finally:
        s.close()


def probe(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    s.sendall(b"GET /__probe__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data.startswith(b"HTTP/1.1 200")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    seeds = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(HERE, "corpus", "*")))]
    seeds = [s for s in seeds if len(s) < 100000] or [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]
    port = free_port()
    state = os.path.join("/tmp", "netfuzz-state-%d" % os.getpid())
    os.makedirs(state, exist_ok=True)
    log = open(os.path.join(state, "srv.log"), "wb")
    srv = os.environ.get("SRV_BIN") or os.path.join(REPO, "build", "srv")
    proc = subprocess.Popen([srv, "--app", "recorder:app", "--bind", "127.0.0.1:%d" % port,
                             "--max-body", "100000", "--header-timeout", "3",
                             "--io-timeout", "3"],
                            cwd=APPS, stdout=log, stderr=log,
                            env=dict(os.environ, SRV_TEST_STATE=state))
    for _ in range(300):
        try:
            if probe(port):
                break
        except OSError:
            time.sleep(0.05)
    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
        worker = f.read().split()[0]
    deadline = time.monotonic() + a.seconds
    count = [0]
    failure = []
    last = {}

    def client(i):
        rng = random.Random(a.seed * 1000 + i)
        while time.monotonic() < deadline and not failure:
            data = mutate(rng, seeds)
            last[i] = data
            try:
                send(port, data, rng)
            except OSError:
                pass
            count[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        try:
            ok = probe(port)
        except OSError as e:
            ok = False
            print("probe error:", e)
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            now_worker = f.read().split()
        if not ok or now_worker != [worker] or proc.poll() is not None:
            failure.append("probe=%s worker %s -> %s" % (ok, worker, now_worker))
    for t in threads:
        t.join()
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    log.close()
    text = open(os.path.join(state, "srv.log"), "rb").read().decode("latin-1")
    for needle in ("Segmentation", "AddressSanitizer", "runtime error:", "died from signal",
                   "Fatal Python error"):
        if needle in text:
            failure.append("log has %r" % needle)
    print("netfuzz: %d inputs in %.0f s, seed %d, %s" % (
        count[0], a.seconds, a.seed, "FAILED: %s" % failure if failure else "no failure"))
    if failure:
        for i, data in last.items():
            with open("netfuzz-failure-%d.bin" % i, "wb") as f:
                f.write(data)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
