"""Short soak (50,000 requests mixed across code paths and client faults):
RSS, fds and live Python objects must not grow.  bench/soak.py runs the
1,000,000-request version."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import soak  # noqa: E402


def test_soak_50k_nothing_grows():
    r = soak.soak(50000, clients=4, log=print)
    assert r["requests"] >= 50000
    assert not r["problems"], r
