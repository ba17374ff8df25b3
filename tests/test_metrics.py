"""--metrics-bind: the master's Prometheus endpoint and the figures that the
workers count.

Every scrape is checked twice: by prometheus_client's own parser, and by a
strict hand check of the text format (each sample line matches the
exposition grammar, each family has HELP then TYPE before its samples,
histogram buckets are listed in order, cumulative, and le="+Inf" equals
_count).  Figures are compared as deltas between scrapes, and waited for
(a worker counts a request just after its last byte leaves), but always
asserted exactly."""

import http.client
import math
import os
import re
import signal
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import RawConn, free_port, raw_request, run_srv, wait_for

APP = "metrics_app:app"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HISTOGRAM = "srv_request_duration_seconds"

FAMILIES = {
    "srv_requests_total": "counter",
    HISTOGRAM: "histogram",
    "srv_parse_errors_total": "counter",
    "srv_received_bytes_total": "counter",
    "srv_sent_bytes_total": "counter",
    "srv_connections_accepted_total": "counter",
    "srv_connections": "gauge",
    "srv_requests_in_flight": "gauge",
    "srv_greenlets_suspended": "gauge",
    "srv_greenlets_pooled": "gauge",
    "srv_workers": "gauge",
    "srv_worker_restarts_total": "counter",
    "srv_websocket_connections": "gauge",
    "srv_websocket_messages_received_total": "counter",
    "srv_websocket_messages_sent_total": "counter",
}
PARSE_ERROR_KINDS = {"bad_request", "header_timeout", "body_too_large", "uri_too_long",
                     "expectation_failed", "header_too_large", "not_implemented",
                     "version_not_supported"}
LE = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
      "0.5", "1", "2.5", "5", "10", "+Inf"]

# ---------------------------------------------------------------------------
# the exposition format, checked by hand
# ---------------------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN"
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?,?\})? (%s)(?: -?[0-9]+)?$"
                       % (NAME, LABEL, LABEL, VALUE))
HELP_RE = re.compile(r"^# HELP (%s) (\S.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def check_exposition(text):
    """Returns ({family: type}, {(name, labels): value}) in text order."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families, samples = {}, {}
    helped = current = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            m = HELP_RE.match(line)
            assert m, "bad HELP line %r" % line
            assert m.group(1) not in families and m.group(1) != helped, "HELP twice: %r" % line
            helped, current = m.group(1), None
            continue
        if line.startswith("# TYPE "):
            m = TYPE_RE.match(line)
            assert m, "bad TYPE line %r" % line
            name, kind = m.groups()
            assert name == helped, "TYPE %s not right after its HELP" % name
            assert name not in families, "TYPE twice: %r" % line
            families[name], current = kind, name
            continue
        assert not line.startswith("#"), "unexpected comment %r" % line
        m = SAMPLE_RE.match(line)
        assert m, "sample line does not match the grammar: %r" % line
        name, labels, value = m.groups()
        assert current is not None, "sample before its family's HELP and TYPE: %r" % line
        if families[current] == "histogram":
            allowed = {current + "_bucket", current + "_sum", current + "_count"}
        else:
            allowed = {current}
        assert name in allowed, "sample %r outside its family %s" % (line, current)
        key = (name, tuple(sorted(LABEL_RE.findall(labels or ""))))
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = float(value)
    for name, kind in families.items():
        if kind == "histogram":
            check_histogram(name, samples)
    return families, samples


def check_histogram(name, samples):
    buckets = [(dict(labels)["le"], v) for (n, labels), v in samples.items()
               if n == name + "_bucket"]
    les = [float(le) for le, _ in buckets]
    counts = [v for _, v in buckets]
    assert les == sorted(les) and len(set(les)) == len(les), "buckets out of order: %r" % buckets
    assert buckets[-1][0] == "+Inf", "the last bucket must be +Inf"
    assert counts == sorted(counts), "buckets not cumulative: %r" % buckets
    assert all(c == int(c) and c >= 0 for c in counts)
    assert counts[-1] == samples[(name + "_count", ())], "+Inf bucket != _count"
    total = samples[(name + "_sum", ())]
    assert total >= 0 and not math.isnan(total)


def parse_with_client(text):
    """prometheus_client's view: ({family: type}, {(name, labels): value})."""
    families, samples = {}, {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


class Metrics:
    """One scrape, checked both ways."""

    def __init__(self, text):
        self.text = text
        self.families, self.samples = check_exposition(text)
        cfams, csamples = parse_with_client(text)
        assert csamples == self.samples, "prometheus_client reads other samples"
        for name, kind in self.families.items():
            # The client names a counter family without its _total suffix.
            cname = name[:-6] if kind == "counter" and name.endswith("_total") else name
            assert cfams.get(cname) == kind, (name, kind, cfams.get(cname))

    def __call__(self, name, **labels):
        return self.samples[(name, tuple(sorted(labels.items())))]

    def status(self, cls):
        return self("srv_requests_total", status=cls)

    def parse_errors(self, kind):
        return self("srv_parse_errors_total", kind=kind)

    def bucket(self, le):
        return self(HISTOGRAM + "_bucket", le=le)

    def count(self):
        return self(HISTOGRAM + "_count")

    def counters(self):
        return {k: v for k, v in self.samples.items()
                if self.families.get(k[0]) == "counter"
                or k[0].startswith(HISTOGRAM)}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def start(server_factory, *args):
    mport = free_port()
    s = server_factory(APP, "--metrics-bind", "127.0.0.1:%d" % mport, *args)
    s.mport = mport
    s.warm_up("/pid")   # the app is loaded
    # The worker counts a request when the app is done, and the bytes of its
    # answer once send() has returned; the client may read them in between
    # (a waking client can preempt the worker right at that return).  Wait
    # for both, so that every test starts from a settled scrape.
    m = wait_metrics(s, lambda m: m.status("2xx") >= 1 and m("srv_sent_bytes_total") > 0)
    assert m.status("2xx") == 1 and m("srv_sent_bytes_total") > 0
    return s


def fetch(port, path="/metrics", method="GET", timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def scrape(server):
    status, headers, body = fetch(server.mport)
    assert status == 200, (status, body)
    assert headers["content-type"] == CONTENT_TYPE
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"].lower() == "close"
    return Metrics(body.decode("utf-8"))


def wait_metrics(server, pred, timeout=5.0):
    """Scrapes until pred(metrics) holds or time is up; returns the last
    scrape (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(server)
        if pred(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def app_get(server, path, timeout=10.0):
    status, _, body = server.get(path, timeout=timeout)
    return status, body


def in_thread(fn, *args):
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def exchange(server, raw):
    """Sends raw bytes on a fresh connection, reads until the server closes;
    returns what came back."""
    with server.connect() as c:
        c.send(raw)
        return c.read_until_close()


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

def test_exposition_families_and_headers(server_factory):
    s = start(server_factory)
    m = scrape(s)
    assert m.families == FAMILIES
    assert {dict(k[1])["status"] for k in m.samples if k[0] == "srv_requests_total"} \
        == {"1xx", "2xx", "3xx", "4xx", "5xx"}
    assert {dict(k[1])["kind"] for k in m.samples if k[0] == "srv_parse_errors_total"} \
        == PARSE_ERROR_KINDS
    assert [dict(k[1])["le"] for k in m.samples if k[0] == HISTOGRAM + "_bucket"] == LE
    assert m("srv_workers") == 1
    assert m("srv_worker_restarts_total") == 0
    assert m.status("2xx") == 1   # the warm-up request
    # "/" is the same page.
    status, headers, body = fetch(s.mport, "/")
    assert status == 200 and headers["content-type"] == CONTENT_TYPE
    assert Metrics(body.decode()).families == FAMILIES
    # HEAD: the length of the page, and no body.
    with RawConn.tcp("127.0.0.1", s.mport) as c:
        c.send(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(method="HEAD")
        assert r.status == 200 and int(r.header("content-length")) > 1000
        assert c.read_until_close() == b""


def test_requests_by_status_class_and_histogram_count(server_factory):
    s = start(server_factory)
    before = scrape(s)
    for path, status in [("/pid", 200)] * 3 + [("/nope", 404)] * 2 + [("/raise", 500)]:
        assert app_get(s, path)[0] == status
    m = wait_metrics(s, lambda m: m.count() - before.count() >= 6)
    assert m.status("1xx") - before.status("1xx") == 0
    assert m.status("2xx") - before.status("2xx") == 3
    assert m.status("3xx") - before.status("3xx") == 0
    assert m.status("4xx") - before.status("4xx") == 2
    assert m.status("5xx") - before.status("5xx") == 1
    assert m.count() - before.count() == 6
    assert m.bucket("+Inf") - before.bucket("+Inf") == 6
    assert m(HISTOGRAM + "_sum") > before(HISTOGRAM + "_sum")
    assert m("srv_requests_in_flight") == 0
    assert "deliberate error" in s.stderr_text()


def test_bytes_received_and_sent_are_exact(server_factory):
    s = start(server_factory)
    before = scrape(s)
    get = raw_request("GET", "/bytes?n=100000", headers=[("Connection", "close")])
    answer = exchange(s, get)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"x" * 100000)
    # A body the app never reads: srv still reads (discards) all of it.
    post = raw_request("POST", "/pid", headers=[("Connection", "close")], body=b"b" * 50000)
    answer2 = exchange(s, post)
    assert answer2.startswith(b"HTTP/1.1 200")
    want_in = len(get) + len(post)
    want_out = len(answer) + len(answer2)
    m = wait_metrics(s, lambda m: m("srv_received_bytes_total") - before("srv_received_bytes_total")
                     >= want_in and m("srv_connections") == 0)
    assert m("srv_received_bytes_total") - before("srv_received_bytes_total") == want_in
    assert m("srv_sent_bytes_total") - before("srv_sent_bytes_total") == want_out
    assert m("srv_connections_accepted_total") - before("srv_connections_accepted_total") == 2
    assert m("srv_connections") == 0


def test_parse_errors_by_kind(server_factory):
    s = start(server_factory, "--max-header-size", "1024", "--max-uri", "256",
              "--max-body", "100", "--header-timeout", "0.5")
    before = scrape(s)
    cases = [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /pid HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         400, "bad_request"),
        (b"GET /pid HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 2000 + b"\r\n\r\n",
         431, "header_too_large"),
        (b"GET /" + b"u" * 500 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET /pid HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
        (b"POST /pid HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\nabc",
         501, "not_implemented"),
        (b"GET /pid HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417, "expectation_failed"),
        (b"POST /pid HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413, "body_too_large"),
        # Too large a chunked body, found while the app reads it.
        (b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"c8\r\n" + b"c" * 200 + b"\r\n0\r\n\r\n", 413, "body_too_large"),
        # Half a head, then silence past --header-timeout.
        (b"GET /pid HTTP/1.1\r\nHost: x\r\n", 408, "header_timeout"),
    ]
    want = {kind: 0 for kind in PARSE_ERROR_KINDS}
    classes = {"4xx": 0, "5xx": 0}
    for raw, status, kind in cases:
        with s.connect() as c:
            c.try_send(raw)
            r = c.read_response()
            assert r.status == status, (raw[:60], r)
        want[kind] += 1
        classes["%dxx" % (status // 100)] += 1
    m = wait_metrics(s, lambda m: sum(m.parse_errors(k) - before.parse_errors(k)
                                      for k in PARSE_ERROR_KINDS) >= len(cases))
    assert {k: m.parse_errors(k) - before.parse_errors(k) for k in PARSE_ERROR_KINDS} == want
    assert m.status("4xx") - before.status("4xx") == classes["4xx"]
    assert m.status("5xx") - before.status("5xx") == classes["5xx"]
    assert m.status("2xx") == before.status("2xx")


def test_in_flight_and_suspended_gauges(server_factory):
    s = start(server_factory)
    before = scrape(s)
    assert before("srv_requests_in_flight") == 0
    assert before("srv_greenlets_suspended") == 0
    sleepers = [in_thread(app_get, s, "/sleep?t=2") for _ in range(3)]
    m = wait_metrics(s, lambda m: m("srv_greenlets_suspended") >= 3, timeout=1.5)
    assert m("srv_requests_in_flight") == 3
    assert m("srv_greenlets_suspended") == 3
    assert m("srv_connections") == 3
    assert m("srv_greenlets_pooled") >= 3
    for t, result in sleepers:
        t.join(10)
        assert result.get("value", (None,))[0] == 200, result
    m = wait_metrics(s, lambda m: m("srv_requests_in_flight") == 0
                     and m("srv_connections") == 0)
    assert m("srv_requests_in_flight") == 0
    assert m("srv_greenlets_suspended") == 0
    assert m("srv_connections") == 0
    assert m("srv_greenlets_pooled") >= 3   # parked, not gone
    # Two seconds each: above the 1 s bucket, within 2.5 s.
    assert m.bucket("1") == before.bucket("1")
    assert m.bucket("2.5") - before.bucket("2.5") == 3
    assert m.count() - before.count() == 3


def test_histogram_buckets(server_factory):
    s = start(server_factory)
    before = scrape(s)
    for path in ["/pid", "/sleep?t=0.3", "/pid", "/sleep?t=0.3"]:
        assert app_get(s, path)[0] == 200
    m = wait_metrics(s, lambda m: m.count() - before.count() >= 4)
    assert m.count() - before.count() == 4
    assert m.bucket("0.25") - before.bucket("0.25") == 2
    assert m.bucket("0.5") - before.bucket("0.5") == 4
    assert m.bucket("+Inf") - before.bucket("+Inf") == 4
    took = m(HISTOGRAM + "_sum") - before(HISTOGRAM + "_sum")
    assert 0.6 <= took < 1.1


def test_figures_sum_over_two_workers(server_factory):
    s = start(server_factory, "--workers", "2")
    assert wait_for(lambda: s.stderr_text().count("serving " + APP) == 2, timeout=10), \
        s.stderr_text()
    before = scrape(s)
    # One worker spins (its loop is blocked), so the other serves the rest.
    spin, spun = in_thread(app_get, s, "/spin?t=1.5")
    time.sleep(0.3)
    pids = set()
    for _ in range(5):
        status, body = app_get(s, "/pid")
        assert status == 200
        pids.add(int(body))
    spin.join(10)
    assert spun["value"][0] == 200, spun
    pids.add(int(spun["value"][1]))
    assert len(pids) == 2, "both workers should have served: %r" % pids
    m = wait_metrics(s, lambda m: m.status("2xx") - before.status("2xx") >= 6)
    assert m.status("2xx") - before.status("2xx") == 6
    assert m.count() - before.count() == 6
    assert m("srv_workers") == 2
    assert m("srv_worker_restarts_total") == 0


def test_worker_restart_is_counted_and_counters_never_go_back(server_factory):
    s = start(server_factory)
    for _ in range(4):
        assert app_get(s, "/pid")[0] == 200
    old = int(app_get(s, "/pid")[1])
    # A request is in flight in the worker when it dies.
    sleeper, _ = in_thread(app_get, s, "/sleep?t=5")
    before = wait_metrics(s, lambda m: m("srv_requests_in_flight") == 1)
    assert before("srv_requests_in_flight") == 1
    assert before("srv_worker_restarts_total") == 0
    os.kill(old, signal.SIGKILL)
    status, body = app_get(s, "/pid")   # waits in the backlog for the new worker
    assert status == 200 and int(body) != old
    m = wait_metrics(s, lambda m: m("srv_worker_restarts_total") >= 1
                     and m.status("2xx") > before.status("2xx")
                     and m("srv_connections") == 0)
    assert m("srv_worker_restarts_total") == 1
    assert m("srv_workers") == 1
    assert m.status("2xx") - before.status("2xx") == 1   # the dead worker's 6 are kept
    assert m("srv_requests_in_flight") == 0              # its gauges are not
    assert m("srv_connections") == 0
    for key, value in before.counters().items():
        assert m.samples[key] >= value, "counter went backwards: %r %s -> %s" % (
            key, value, m.samples[key])
    sleeper.join(10)


def test_metrics_port_is_separate_from_the_app(server_factory):
    s = start(server_factory)
    before = scrape(s)
    # On the app's port, /metrics and / are the app's.
    for path in ["/metrics", "/"]:
        status, body = app_get(s, path)
        assert status == 404 and body.startswith(b"app 404: " + path.encode()), body
        assert b"srv_requests_total" not in body
    # On the metrics port, the app's paths are not served.
    status, _, body = fetch(s.mport, "/pid")
    assert status == 404 and not body.startswith(b"app")
    m = wait_metrics(s, lambda m: m.status("4xx") - before.status("4xx") >= 2)
    assert m.status("4xx") - before.status("4xx") == 2   # the app's two 404s only
    assert m.status("2xx") == before.status("2xx")


def test_other_paths_methods_and_bad_requests(server_factory):
    s = start(server_factory)
    status, headers, body = fetch(s.mport, "/nope")
    assert status == 404 and headers["connection"].lower() == "close"
    assert int(headers["content-length"]) == len(body)
    assert fetch(s.mport, "/metrics/x")[0] == 404
    assert fetch(s.mport, "/metrics?name[]=x")[0] == 200   # a query is ignored
    status, headers, _ = fetch(s.mport, "/metrics", method="POST")
    assert status == 405 and "GET" in headers["allow"]
    for raw in [b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n", b"GET metrics HTTP/1.1\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 5000 + b"\r\n\r\n"]:
        with RawConn.tcp("127.0.0.1", s.mport) as c:
            c.try_send(raw)
            r = c.read_response()
            assert r.status == 400, (raw[:40], r)
    assert scrape(s).status("4xx") == 0   # none of that reached a worker


# What the endpoint answers to each kind of bad request, and that it closes
# the connection after the answer, within a second (not at the 5 s deadline).
BAD_REQUESTS = [
    (b"GARBAGE\r\n\r\n", 400),                                        # no target
    (b"GET /metrics\r\n\r\n", 400),                                    # no version
    (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
    (b"FOO /metrics HTTP/1.1\r\n\r\n", 400),                           # not an HTTP method
    (b"GET /metrics HTTP/2.0\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\nHost: x\n\n", 400),                        # bare LF
    (b"GET /metrics HTTP/1.1\r\nHost: x\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX : y\r\n\r\n", 400),                   # space before ':'
    (b"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET /me\xfftrics HTTP/1.1\r\n\r\n", 400),
    (b"OPTIONS * HTTP/1.1\r\n\r\n", 400),                                # not a path
    (b"GET http://x/metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 2100 + b"\r\n\r\n", 400),    # head > 2048 bytes
    (b"GET /" + b"m" * 3000 + b" HTTP/1.1\r\n\r\n", 400),                  # so is this line
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
    (b"PUT /nope HTTP/1.1\r\n\r\n", 404),                               # the path first
    (b"HEAD /nope HTTP/1.1\r\n\r\n", 404),
]


@pytest.mark.parametrize("raw,status", BAD_REQUESTS, ids=[r[:24].decode("latin-1")
                                                          for r, _ in BAD_REQUESTS])
def test_each_bad_request_gets_its_status_and_the_connection_closes(server_factory, raw, status):
    mport = free_port()
    s = server_factory(APP, "--metrics-bind", "127.0.0.1:%d" % mport)
    with RawConn.tcp("127.0.0.1", mport) as c:
        c.try_send(raw)
        r = c.read_response(method="HEAD" if raw.startswith(b"HEAD") else "GET")
        assert r.status == status, (raw[:60], r)
        assert r.header("connection").lower() == "close"
        if status == 405:
            assert r.header("allow") == "GET, HEAD"
        assert c.is_closed(1.0)
    assert fetch(mport)[0] == 200   # the master serves on


def test_a_request_in_pieces_and_one_that_just_fits(server_factory):
    s = start(server_factory)
    # The target and the head arrive over many reads.
    with RawConn.tcp("127.0.0.1", s.mport) as c:
        c.send_bytewise(b"GET /metrics?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", delay=0.002)
        r = c.read_response()
        assert r.status == 200 and Metrics(r.body.decode()).families == FAMILIES
    with RawConn.tcp("127.0.0.1", s.mport) as c:
        c.send_pieces([b"GET /met", b"rics/x HT", b"TP/1.1\r\n", b"\r\n"])
        assert c.read_response().status == 404
    # 2048 bytes of head in all are taken; a blank line first is skipped.
    head = b"\r\nGET /metrics HTTP/1.1\r\nX: \r\n\r\n"
    head = head.replace(b"X: ", b"X: " + b"x" * (2048 - len(head)))
    assert len(head) == 2048
    with RawConn.tcp("127.0.0.1", s.mport) as c:
        c.send(head)
        assert c.read_response().status == 200


def test_a_silent_client_blocks_neither_scrapes_nor_signals(server_factory):
    s = start(server_factory)
    silent = socket.create_connection(("127.0.0.1", s.mport))
    connected = time.monotonic()
    partial = RawConn.tcp("127.0.0.1", s.mport)
    partial.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")   # and never the blank line
    time.sleep(0.2)
    t0 = time.monotonic()
    scrape(s)
    assert time.monotonic() - t0 < 1.0
    # The master still takes signals: one worker more.
    os.kill(s.pid, signal.SIGTTIN)
    m = wait_metrics(s, lambda m: m("srv_workers") == 2, timeout=10)
    assert m("srv_workers") == 2
    # Both idle clients are dropped at their 5 s deadline, not before.
    silent.settimeout(8)
    assert silent.recv(100) == b""
    waited = time.monotonic() - connected
    assert 4.5 <= waited < 7.5, waited
    assert partial.is_closed(3)
    silent.close()
    partial.close()
    scrape(s)


def test_metrics_on_a_unix_socket(server_factory, tmp_path):
    path = str(tmp_path / "metrics.sock")
    s = server_factory(APP, "--metrics-bind", "unix:" + path)
    s.warm_up("/pid")

    def unix_scrape():
        with RawConn.unix(path) as c:
            c.send(b"GET /metrics HTTP/1.0\r\n\r\n")
            r = c.read_response()
        assert r.status == 200 and r.header("content-type") == CONTENT_TYPE
        return Metrics(r.body.decode())
    assert wait_for(lambda: unix_scrape().status("2xx") == 1)
    assert "metrics on unix:%s/metrics" % path in s.stderr_text()
    assert s.stop() == 0
    assert not os.path.exists(path)


def test_metrics_bind_errors_are_usage_errors():
    app_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        for addr, words in [("127.0.0.1:%d" % port, "address already in use"),
                            ("127.0.0.1:%d" % app_port, "address already in use"),
                            ("nonsense", "expected HOST:PORT")]:
            p = run_srv(["--app", APP, "--bind", "127.0.0.1:%d" % app_port,
                         "--metrics-bind", addr])
            assert p.returncode == 2, (addr, p.stderr)
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1, p.stderr
            assert "--metrics-bind %s" % addr in lines[0] and words in lines[0], lines[0]
    p = run_srv(["--help"])
    assert p.returncode == 0 and "--metrics-bind ADDR" in p.stdout


def test_websocket_figures(server_factory):
    """An open WebSocket shows in the gauge; its messages in the counters;
    the app waiting in receive() is a suspended greenlet."""
    from wsclient import WSClient
    mport = free_port()
    s = server_factory("ws_app:app", "--metrics-bind", "127.0.0.1:%d" % mport)
    s.mport = mport
    c = WSClient.connect(s.host, s.port, "/echo")
    try:
        for text in ("one", "two", "three"):
            c.send_text(text)
            assert c.recv_data() == text
        m = wait_metrics(s, lambda m: m("srv_websocket_messages_sent_total") == 3)
        assert m("srv_websocket_connections") == 1
        assert m("srv_websocket_messages_received_total") == 3
        assert m("srv_websocket_messages_sent_total") == 3
        assert m("srv_greenlets_suspended") >= 1   # the app, in receive()
    finally:
        c.close()
    m = wait_metrics(s, lambda m: m("srv_websocket_connections") == 0)
    assert m("srv_websocket_connections") == 0
    assert m("srv_websocket_messages_received_total") == 3
    m = wait_metrics(s, lambda m: m.status("1xx") == 1)
    assert m.status("1xx") == 1   # the 101, counted when the session ends
