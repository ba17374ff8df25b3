"""Helpers shared by the test apps (not an app itself)."""
import hashlib
import os
from urllib.parse import parse_qs


def pattern_bytes(n, seed=0):
    """Deterministic test data; tests/conftest.py has the same function."""
    out = bytearray()
    block = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, block)).digest() * 64
        block += 1
    return bytes(out[:n])


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}


def state_dir():
    return os.environ.get("SRV_TEST_STATE")


def record(name, text="1"):
    """Write a marker file into $SRV_TEST_STATE (the tests read it)."""
    d = state_dir()
    if not d:
        return
    with open(os.path.join(d, name), "a") as f:
        f.write(text)
