"""HTTP/1.1 conformance and request-smuggling suite.

Every case of tests/smuggling_cases.py is sent over a fresh connection to one
srv (app: apps/recorder.py, --max-body 1024) in three delivery modes:

  whole   one send
  lines   one send per line (split after every LF), a short pause between
  bytes   one send per byte (TCP_NODELAY, no pause); only cases up to
          smuggling_cases.BYTEWISE_MAX bytes

While sending, whatever the server answers is collected, so an early error
response is never lost to a reset.  Then the test checks:

  * the status of the first response (and of any further ones the case
    lists), or that the connection closed without a response;
  * that the server closes the connection (expect_close), or keeps it and
    still serves a clean request on it (the GET /__probe__ that follows);
  * from $SRV_TEST_STATE/seen.jsonl, that the app saw only the case's
    allowed paths, never "/smuggled", and (expect_body) read the exact body;
  * that the worker process is still the same one (no crash).

``test_policy_summary`` prints every (case, mode) outcome; run with -s.
To refresh the fuzz seeds after editing the table:
``/usr/bin/python3 tests/smuggling_cases.py``.
"""

import json
import os
import select
import socket
import time
from pathlib import Path

import pytest

from conftest import Closed, RawConn
import smuggling_cases as sc

CORPUS = Path(__file__).resolve().parent / "fuzz" / "corpus"

READ_TIMEOUT = 3.0     # for a response that should come
CLOSE_TIMEOUT = 2.0    # for the close that should follow
LINE_DELAY = 0.002     # between lines in "lines" mode
SETTLE = 0.05          # let the app finish writing seen.jsonl
PROBE = b"GET /__probe__ HTTP/1.1\r\nHost: x\r\n\r\n"

OUTCOMES = {}          # (case id, mode) -> outcome string, for the summary


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------

class Target:
    def __init__(self, server):
        self.server = server
        self.seen_path = server.state_path("seen.jsonl")
        self.worker = server.worker_pid()

    def seen_offset(self):
        try:
            return os.path.getsize(self.seen_path)
        except FileNotFoundError:
            return 0

    def seen_since(self, offset):
        try:
            with open(self.seen_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in data.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def target(module_server_factory):
    s = module_server_factory("recorder:app", "--max-body", str(sc.MAX_BODY))
    s.warm_up("/__warmup__")
    return Target(s)


@pytest.fixture(scope="module")
def big_target(module_server_factory):
    """For the cases marked server="big": srv's default --max-body."""
    s = module_server_factory("recorder:app")
    s.warm_up("/__warmup__")
    return Target(s)


def target_for(request, case):
    if case.get("server") == "big":
        return request.getfixturevalue("big_target")
    return request.getfixturevalue("target")


# ---------------------------------------------------------------------------
# sending and reading
# ---------------------------------------------------------------------------

def _pump(conn):
    """Move whatever the server has sent into conn.buf without blocking."""
    while not conn.eof:
        r, _, _ = select.select([conn.sock], [], [], 0)
        if not r:
            return
        try:
            d = conn.sock.recv(262144)
        except ConnectionResetError:
            d = b""
        if not d:
            conn.eof = True
            return
        conn.buf += d


def _pieces(data, mode):
    if mode == "whole":
        return [data]
    if mode == "lines":
        out, start = [], 0
        while start < len(data):
            i = data.find(b"\n", start)
            end = len(data) if i < 0 else i + 1
            out.append(data[start:end])
            start = end
        return out
    if mode == "bytes":
        return [data[i:i + 1] for i in range(len(data))]
    raise ValueError(mode)


def deliver(conn, data, mode):
    """Send data in the given mode, collecting responses as they come.
    Returns False if the server stopped taking bytes (reset) early."""
    pieces = _pieces(data, mode)
    for i, p in enumerate(pieces):
        try:
            conn.sock.sendall(p)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False
        _pump(conn)
        if mode == "lines" and i + 1 < len(pieces) and not conn.eof:
            time.sleep(LINE_DELAY)
    return True


def _fmt(statuses, closed):
    s = ",".join("-" if x is None else str(x) for x in statuses) or "-"
    return "%s %s" % (s, closed)


def _status_ok(got, want):
    if isinstance(want, (set, frozenset)):
        return got in want
    return got == want


def _want_str(want):
    if isinstance(want, (set, frozenset)):
        return "{%s}" % ",".join(sorted("-" if x is None else str(x) for x in want))
    return "-" if want is None else str(want)


def run_case(t, case, mode):
    """Runs one case; returns a dict describing what happened."""
    offset = t.seen_offset()
    res = {"statuses": [], "bodies": [], "closed": None, "probe": None, "sent_all": None,
           "timeout": False, "extra": b""}
    conn = RawConn.tcp(t.server.host, t.server.port, timeout=READ_TIMEOUT)
    server_done = False
    try:
        res["sent_all"] = deliver(conn, case["raw"], mode)
        if case.get("half_close"):
            conn.shutdown_write()
        wanted = 1 + len(case["more"])
        for i in range(wanted):
            method = case.get("method", "GET") if i == 0 else "GET"
            try:
                r = conn.read_response(method=method)
            except Closed:
                break
            except socket.timeout:
                res["timeout"] = True
                break
            res["statuses"].append(r.status)
            res["bodies"].append(r.body)
        if not res["timeout"]:
            if case["expect_close"] is None and len(res["statuses"]) == wanted:
                # either way is fine: see whether it closes, probe it if not
                if conn.is_closed(0.2):
                    res["closed"] = "closed"
                    server_done = True
                elif conn.buf:
                    res["closed"] = "open"
                    res["extra"] = conn.buf[:200]
            if res["closed"] is not None:
                pass
            elif case["expect_close"] or len(res["statuses"]) < wanted:
                closed = conn.is_closed(CLOSE_TIMEOUT)
                res["closed"] = "closed" if closed else "open"
                if closed:
                    server_done = True
                else:
                    _pump(conn)
                    res["extra"] = conn.buf[:200]
            else:
                # must still be usable: one clean request on the same connection
                try:
                    conn.send(PROBE)
                    r = conn.read_response()
                    res["probe"] = (r.status, r.body)
                    res["closed"] = "open"
                    server_done = True
                except (Closed, OSError) as e:
                    res["probe"] = repr(e)
                    res["closed"] = "closed"
                    server_done = conn.eof
    finally:
        conn.close()
    # The recorder writes its line before it answers, and srv serves a
    # connection's requests in order and closes only after the app returned,
    # so once the server has closed (or answered the probe) every line for this
    # connection is on disk; otherwise (we gave up first) give the app SETTLE.
    time.sleep(0.005 if server_done else SETTLE)
    res["seen"] = t.seen_since(offset)
    pid_now = None
    try:
        pid_now = t.server.worker_pid(timeout=2)
    except Exception:
        pass
    res["worker_changed"] = pid_now != t.worker
    res["worker_pid"] = pid_now
    res["outcome"] = _fmt(res["statuses"], res["closed"]) + (" TIMEOUT" if res["timeout"] else "")
    if res["probe"] is not None and res["probe"] != (200, b"/__probe__"):
        p = res["probe"]
        res["outcome"] += " probe:%s" % (p[0] if isinstance(p, tuple) else "failed")
    return res


def check_case(t, case, mode, res):
    problems = []
    raw = case["raw"]
    shown = raw if len(raw) <= 300 else raw[:300] + b"...(%d bytes)" % len(raw)
    statuses = res["statuses"]

    if res["worker_changed"]:
        problems.append("the worker process changed (%s -> %s): srv crashed?"
                        % (t.worker, res["worker_pid"]))
        t.worker = res["worker_pid"]
    if not t.server.alive():
        problems.append("srv exited:\n" + t.server.stderr_text()[-2000:])
    if res["timeout"]:
        problems.append("timed out (%.0fs) waiting for a response" % READ_TIMEOUT)

    wants = [case["status"]] + list(case["more"])
    for i, want in enumerate(wants):
        got = statuses[i] if i < len(statuses) else None
        if i > 0 and i >= len(statuses) and not _status_ok(None, want):
            problems.append("response #%d missing (want %s)" % (i + 1, _want_str(want)))
            break
        if not _status_ok(got, want):
            problems.append("response #%d: status %s, want %s"
                            % (i + 1, "none (closed)" if got is None else got, _want_str(want)))
        if got is None:
            break

    if case["expect_close"] is True:
        if res["closed"] != "closed":
            problems.append("connection not closed after the response(s) (extra bytes: %r)"
                            % res["extra"])
    elif len(statuses) == len(wants) and not res["timeout"]:
        # expect_close False: must stay usable.  None: may close, but if it
        # stays open it must be usable.
        if res["extra"]:
            problems.append("unexpected bytes after the response(s): %r" % res["extra"])
        elif case["expect_close"] is False or res["closed"] != "closed":
            if not isinstance(res["probe"], tuple):
                problems.append("connection unusable after the response(s): %s"
                                % (res["probe"],))
            elif res["probe"] != (200, b"/__probe__"):
                problems.append("probe request on the same connection got %r (leftover "
                                "bytes parsed as a request?)" % (res["probe"],))

    allowed = set(case["allowed_paths"])
    if res["probe"] is not None:
        allowed.add("/__probe__")
    for entry in res["seen"]:
        blob = "%s %s %s" % (entry["method"], entry["path"], entry["query"])
        if "smuggled" in blob:
            problems.append("SMUGGLED request reached the app: %r" % entry)
        elif entry["path"] not in allowed:
            problems.append("the app saw path %r (allowed: %r)" % (entry["path"], sorted(allowed)))
    for i, st in enumerate(statuses):
        if i == 0 and case.get("method") == "HEAD":
            continue
        if st == 200 and i < len(res["bodies"]):
            path = res["bodies"][i].decode("latin-1")
            if path not in allowed or "smuggled" in path:
                problems.append("response #%d is a 200 for path %r" % (i + 1, path))

    if "expect_body" in case:
        first = [e for e in res["seen"] if e["path"] != "/__probe__"][:1]
        if not first:
            problems.append("the app never saw the request")
        else:
            e = first[0]
            want = case["expect_body"].decode("latin-1")
            if e["exc"] is not None or e["body"] != want:
                problems.append("app read body %r (exc %s), want %r"
                                % (e["body"][:100], e["exc"], want[:100]))
    if case.get("clean"):
        bad = [e for e in res["seen"] if e["exc"] is not None]
        if bad:
            problems.append("the app's wsgi.input.read() failed: %r" % bad)

    if problems:
        if case.get("bug") and os.environ.get("SRV_SMUGGLING_XFAIL_KNOWN"):
            pytest.xfail("known: %s" % case["bug"])
        pytest.fail("case %s, mode %s: outcome %s\nbytes: %r\n  - %s%s"
                    % (case["id"], mode, res["outcome"], shown, "\n  - ".join(problems),
                       "\nSUSPECTED SERVER BUG: %s" % case["bug"] if case.get("bug") else ""),
                    pytrace=False)


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

PARAMS = [pytest.param(c, m, id="%s-%s" % (m, c["id"]))
          for m in sc.MODES for c in sc.CASES if m in sc.modes_for(c)]


@pytest.mark.parametrize("case,mode", PARAMS)
def test_case(request, case, mode):
    target = target_for(request, case)
    res = run_case(target, case, mode)
    OUTCOMES[(case["id"], mode)] = res["outcome"]
    check_case(target, case, mode, res)


def test_table_shape():
    ids = [c["id"] for c in sc.CASES]
    assert len(ids) == len(set(ids))
    assert len(sc.CASES) >= 150, len(sc.CASES)
    all_three = [c for c in sc.CASES if set(sc.modes_for(c)) == set(sc.MODES)]
    assert len(all_three) >= 100, len(all_three)
    for c in sc.CASES:
        assert "smuggled" not in " ".join(c["allowed_paths"]), c["id"]
        assert c["status"] is None or isinstance(c["status"], (int, frozenset)), c["id"]


def test_corpus_matches_cases():
    """Every case (and every extra valid request) has its fuzz seed, byte for
    byte.  Regenerate with ``/usr/bin/python3 tests/smuggling_cases.py``."""
    names = [name for name, _ in sc.corpus_items()]
    assert len(names) == len(set(names))
    stale = []
    for name, raw in sc.corpus_items():
        p = CORPUS / ("%s.http" % name)
        if not p.is_file() or p.read_bytes() != raw:
            stale.append(p.name)
    assert not stale, "stale or missing seeds (regenerate them): %s" % stale[:20]


def _expect_interim(t, version, wait):
    """Sends an Expect: 100-continue head alone, waits up to ``wait`` seconds
    for the server to say something, and returns that; then sends the body and
    returns the final response too."""
    with RawConn.tcp(t.server.host, t.server.port, timeout=READ_TIMEOUT) as c:
        c.send(b"POST / HTTP/%s\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n" % version)
        early = b""
        if not c.is_closed(wait):
            early = c.buf
        c.send(b"hello")
        r = c.read_response()
        return early, r


def test_expect_100_http11_gets_interim(target):
    early, r = _expect_interim(target, b"1.1", 3.0)
    assert early.startswith(b"HTTP/1.1 100 Continue\r\n"), early
    assert r.status == 200


def test_expect_100_http10_ignored(target):
    """RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an
    HTTP/1.0 request (an HTTP/1.0 client may take a 1xx for the response)."""
    early, r = _expect_interim(target, b"1.0", 0.5)
    if early and os.environ.get("SRV_SMUGGLING_XFAIL_KNOWN"):
        pytest.xfail("known: 100 Continue sent to an HTTP/1.0 client")
    assert early == b"", ("SUSPECTED SERVER BUG: srv sent an interim response to an "
                          "HTTP/1.0 client: %r" % early)
    assert r.status == 200


def test_policy_summary(request, target):
    """Prints the outcome of every case in every mode it ran in (pytest -s).
    Cases not run in this session (e.g. -k) are run once whole."""
    fmt = "%-38s %-26s %-20s %-20s %-20s"
    lines = ["", fmt % ("case", "expected", "whole", "lines", "bytes")]
    for c in sc.CASES:
        if not any((c["id"], m) in OUTCOMES for m in sc.MODES):
            OUTCOMES[(c["id"], "whole")] = run_case(target_for(request, c), c,
                                                    "whole")["outcome"]
        want = ",".join([_want_str(c["status"])] + [_want_str(m) for m in c["more"]])
        want += {True: " close", False: " keep", None: " either"}[c["expect_close"]]
        cols = [OUTCOMES.get((c["id"], m), "n/a") for m in sc.MODES]
        lines.append(fmt % (c["id"], want, *cols))
        if c.get("note"):
            lines.append("%38s   note: %s" % ("", c["note"]))
        if c.get("bug"):
            lines.append("%38s   SUSPECTED BUG: %s" % ("", c["bug"]))
    print("\n".join(lines))
    assert target.server.alive()


def test_server_logs_clean(target):
    """Nothing in the suite may make srv log a crash, a sanitizer report or an
    app traceback (the recorder app never raises)."""
    text = target.server.stderr_text()
    for needle in ("AddressSanitizer", "runtime error:", "Traceback", "Segmentation",
                   "Fatal Python error", "died from signal", "exited with status",
                   "no heartbeat", "[ERROR]"):
        assert needle not in text, "srv stderr has %r:\n%s" % (needle, text[-3000:])
    assert target.server.alive()
