"""Logging: the access log (off by default; Apache combined by default;
every --access-log-format token; buffered but flushed within a second and
at exit; whole lines from several workers), the error log (--error-log,
wsgi.errors) and --log-level."""

import datetime
import http.client
import json
import re
import threading
import time
import uuid

import pytest

from conftest import wait_for
from produtil import PROD_APP, read_text, wait_file_lines

COMBINED = re.compile(
    r'^(?P<h>\S+) (?P<l>\S+) (?P<u>\S+) \[(?P<t>[^\]]+)\] "(?P<r>[^"]*)" '
    r'(?P<s>\d{3}) (?P<b>\d+|-) "(?P<ref>[^"]*)" "(?P<ua>[^"]*)"$')

TIME_FMT = "%d/%b/%Y:%H:%M:%S %z"


def parse_time(t):
    return datetime.datetime.strptime(t, TIME_FMT)


def assert_recent(t):
    when = parse_time(t)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 300, (t, now)


def request(server, method, path, headers=None, body=None, version=None):
    c = http.client.HTTPConnection(server.host, server.port, timeout=10)
    if version == "HTTP/1.0":
        c._http_vsn, c._http_vsn_str = 10, "HTTP/1.0"
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


# ---------------------------------------------------------------- access log

def test_access_log_off_by_default(server_factory):
    marker = uuid.uuid4().hex
    s = server_factory(PROD_APP)
    for _ in range(3):
        assert s.get("/info?m=" + marker)[0] == 200
    time.sleep(1.5)     # past a flush interval
    assert s.stop() == 0
    assert marker not in s.stdout_text()
    assert marker not in s.stderr_text()


def test_access_log_default_combined_format(server_factory, tmp_path):
    log = tmp_path / "access.log"
    s = server_factory(PROD_APP, "--access-log", str(log))
    st, body = request(s, "GET", "/info?x=1&y=%20z",
                       headers={"Referer": "http://ref.example/page",
                                "User-Agent": "prodtest/1.0 (combined)"})
    assert st == 200
    st2, body2 = request(s, "GET", "/nope")
    assert st2 == 404
    lines = wait_file_lines(str(log), lambda ls: len(ls) >= 2)
    assert len(lines) == 2, lines
    m = COMBINED.match(lines[0])
    assert m, "not combined format: %r" % lines[0]
    assert m["h"] == "127.0.0.1"
    assert m["l"] == "-" and m["u"] == "-"
    assert_recent(m["t"])
    assert m["r"] == "GET /info?x=1&y=%20z HTTP/1.1"
    assert m["s"] == "200"
    assert m["b"] == str(len(body))
    assert m["ref"] == "http://ref.example/page"
    assert m["ua"] == "prodtest/1.0 (combined)"
    m2 = COMBINED.match(lines[1])
    assert m2, lines[1]
    assert m2["r"] == "GET /nope HTTP/1.1" and m2["s"] == "404"
    assert m2["ref"] == "-"


FMT = "|".join([
    "h=%h", "l=%l", "u=%u", "t=%t", "r=%r", "s=%s", "S=%>s", "b=%b", "B=%B",
    "D=%D", "T=%T", "P=%P", "m=%m", "U=%U", "q=%q", "H=%H",
    "ua=%{User-Agent}i", "none=%{X-Absent-Header}i", "R=%R", "pct=%%",
])


def parse_custom(line):
    out = {}
    for field in line.split("|"):
        k, sep, v = field.partition("=")
        assert sep, "bad field %r in %r" % (field, line)
        out[k] = v
    return out


@pytest.fixture
def custom_log(server_factory, tmp_path):
    log = tmp_path / "access.log"
    s = server_factory(PROD_APP, "--access-log", str(log), "--access-log-format", FMT)
    return s, str(log)


def test_access_log_format_tokens(custom_log):
    s, log = custom_log
    st, body = request(s, "GET", "/info?a=1&b=2",
                       headers={"User-Agent": "tok-agent", "X-Request-ID": "req-abc-123"})
    assert st == 200
    info = json.loads(body)
    st, _ = request(s, "GET", "/status?code=204")
    assert st == 204
    st, _ = request(s, "GET", "/info")
    assert st == 200
    st, _ = request(s, "HEAD", "/info?head=1")
    assert st == 200
    st, _ = request(s, "GET", "/info?v10=1", version="HTTP/1.0")
    assert st == 200
    st, _ = request(s, "POST", "/echo?post=1", body=b"p" * 123,
                    headers={"Content-Type": "application/octet-stream"})
    assert st == 200

    lines = wait_file_lines(log, lambda ls: len(ls) >= 6)
    assert len(lines) == 6, lines
    recs = [parse_custom(ln) for ln in lines]
    by_q = {r["q"]: r for r in recs}

    r = by_q["?a=1&b=2"]
    assert r["h"] == "127.0.0.1"
    assert r["l"] == "-" and r["u"] == "-"
    assert r["t"].startswith("[") and r["t"].endswith("]"), r["t"]
    assert_recent(r["t"][1:-1])
    assert r["r"] == "GET /info?a=1&b=2 HTTP/1.1"
    assert r["s"] == r["S"] == "200"
    assert r["b"] == r["B"] == str(len(body))
    assert r["D"].isdigit() and r["T"].isdigit(), r
    assert int(r["T"]) <= int(r["D"]) // 1000000 + 1
    assert r["P"] == str(info["pid"])
    assert r["m"] == "GET"
    assert r["U"] == "/info"
    assert r["H"] == "HTTP/1.1"
    assert r["ua"] == "tok-agent"
    assert r["none"] == "-"
    assert r["R"] == "req-abc-123"
    assert r["pct"] == "%"

    r = by_q["?code=204"]
    assert r["s"] == r["S"] == "204"
    assert r["b"] == "-", r
    assert r["B"] == "0", r
    assert r["U"] == "/status"

    r = by_q[""]
    assert r["r"] == "GET /info HTTP/1.1"
    assert re.fullmatch(r"[0-9a-f]{16}", r["R"]), "generated request id %r" % r["R"]
    assert r["R"] != by_q["?v10=1"]["R"], "generated request ids repeat"

    r = by_q["?head=1"]
    assert r["m"] == "HEAD"
    assert r["b"] == "-" and r["B"] == "0", r

    r = by_q["?v10=1"]
    assert r["H"] == "HTTP/1.0"
    assert r["r"] == "GET /info?v10=1 HTTP/1.0"

    r = by_q["?post=1"]
    assert r["m"] == "POST"
    assert r["U"] == "/echo"


def test_access_log_request_time(custom_log):
    s, log = custom_log
    st, _ = request(s, "GET", "/sleep?t=0.3")
    assert st == 200
    lines = wait_file_lines(log, lambda ls: len(ls) >= 1)
    r = parse_custom(lines[0])
    assert int(r["D"]) >= 250000, "%%D=%s for a 0.3 s request" % r["D"]
    assert int(r["D"]) < 30 * 1000000
    assert r["T"] in ("0", "1"), r["T"]


def test_access_log_flushed_within_a_second_or_so(server_factory, tmp_path):
    log = tmp_path / "access.log"
    s = server_factory(PROD_APP, "--access-log", str(log))
    assert s.get("/info?flush=1")[0] == 200
    lines = wait_file_lines(str(log), lambda ls: len(ls) >= 1, timeout=4)
    assert len(lines) == 1 and "flush=1" in lines[0], lines
    assert s.alive()


def test_access_log_flushed_at_exit(server_factory, tmp_path):
    log = tmp_path / "access.log"
    s = server_factory(PROD_APP, "--access-log", str(log), "--workers", "2")
    for i in range(5):
        assert s.get("/info?exit=%d" % i)[0] == 200
    assert s.stop() == 0
    lines = [ln for ln in read_text(str(log)).splitlines() if ln.strip()]
    assert len(lines) == 5, lines
    assert all(COMBINED.match(ln) for ln in lines), lines


def test_access_log_to_stdout(server_factory):
    marker = uuid.uuid4().hex
    s = server_factory(PROD_APP, "--access-log", "-")
    assert s.get("/info?m=" + marker)[0] == 200
    assert wait_for(lambda: marker in s.stdout_text(), timeout=4), \
        "access line not on stdout; stderr:\n" + s.stderr_text()
    line = [ln for ln in s.stdout_text().splitlines() if marker in ln][0]
    assert COMBINED.match(line), line


def test_access_log_whole_lines_from_several_workers(server_factory, tmp_path):
    log = tmp_path / "access.log"
    s = server_factory(PROD_APP, "--access-log", str(log), "--workers", "2",
                       "--access-log-format", '%R %P "%r" %>s %b')
    ids = ["id%013d" % i for i in range(200)]
    errors = []

    def worker(chunk):
        c = http.client.HTTPConnection(s.host, s.port, timeout=10)
        try:
            for rid in chunk:
                try:
                    c.request("GET", "/info?pad=" + "p" * 300, headers={"X-Request-ID": rid})
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
                    c.close()
                    c = http.client.HTTPConnection(s.host, s.port, timeout=10)
        finally:
            c.close()
    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    lines = wait_file_lines(str(log), lambda ls: len(ls) >= 200, timeout=5)
    line_re = re.compile(r'^(id\d{13}) (\d+) "GET /info\?pad=p{300} HTTP/1\.1" 200 \d+$')
    bad = [ln for ln in lines if not line_re.match(ln)]
    assert not bad, "garbled access lines: %r" % bad[:3]
    assert sorted(line_re.match(ln).group(1) for ln in lines) == sorted(ids)


# ---------------------------------------------------------------- error log

def test_wsgi_errors_reach_stderr_by_default(server_factory):
    marker = "wsgi-errors-" + uuid.uuid4().hex
    s = server_factory(PROD_APP)
    assert s.get("/errors?msg=" + marker)[0] == 200
    assert wait_for(lambda: marker in s.stderr_text(), timeout=4), s.stderr_text()


def test_error_log_file(server_factory, tmp_path):
    log = tmp_path / "error.log"
    marker = "wsgi-errors-" + uuid.uuid4().hex
    s = server_factory(PROD_APP, "--error-log", str(log))
    assert s.get("/errors?msg=" + marker)[0] == 200
    assert s.get("/fail")[0] == 500
    assert wait_for(lambda: marker in read_text(str(log)), timeout=4), read_text(str(log))
    assert wait_for(lambda: "deliberate error" in read_text(str(log)), timeout=4)
    text = read_text(str(log))
    assert "INFO" in text, "srv's own lines are not in --error-log FILE:\n" + text
    assert s.stop() == 0
    assert marker not in s.stderr_text()
    assert "deliberate error" not in s.stderr_text()


def test_error_log_dash_is_stderr(server_factory):
    marker = "wsgi-errors-" + uuid.uuid4().hex
    s = server_factory(PROD_APP, "--error-log", "-")
    assert s.get("/errors?msg=" + marker)[0] == 200
    assert wait_for(lambda: marker in s.stderr_text(), timeout=4), s.stderr_text()


def level_lines(text, level):
    return [ln for ln in text.splitlines() if "[%s]" % level in ln]


def test_log_level_warning_hides_info(server_factory):
    s = server_factory(PROD_APP, "--log-level", "warning")
    assert s.get("/info")[0] == 200
    assert s.get("/fail")[0] == 500
    assert wait_for(lambda: "deliberate error" in s.stderr_text(), timeout=4), \
        "errors must still be logged at --log-level warning:\n" + s.stderr_text()
    assert s.stop() == 0
    text = s.stderr_text()
    assert not level_lines(text, "INFO"), text
    assert not level_lines(text, "DEBUG"), text


def test_log_level_info_default(server_factory):
    s = server_factory(PROD_APP)
    s.warm_up("/info")
    assert s.stop() == 0
    text = s.stderr_text()
    assert level_lines(text, "INFO"), text
    assert not level_lines(text, "DEBUG"), text


def test_log_level_debug(server_factory):
    s = server_factory(PROD_APP, "--log-level", "debug")
    s.warm_up("/info")
    assert s.stop() == 0
    assert level_lines(s.stderr_text(), "DEBUG"), s.stderr_text()


def test_log_level_error_hides_warnings(server_factory):
    # a worker crash loop logs a warning ("crash loop"), the crash an error
    s = server_factory(PROD_APP, "--log-level", "error")
    s.warm_up("/info")
    try:
        s.get("/exit", timeout=10)
    except (http.client.HTTPException, OSError):
        pass
    assert wait_for(lambda: level_lines(s.stderr_text(), "ERROR"), timeout=5), \
        s.stderr_text()
    text = s.stderr_text()
    assert not level_lines(text, "WARNING"), text
    assert not level_lines(text, "INFO"), text
