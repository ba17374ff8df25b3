"""srv behind Debian's nginx: GET, POST, chunked uploads, streamed responses,
upstream keep-alive, X-Forwarded-For, and a graceful reload (SIGHUP to
srv's master) under steady load with no 5xx.  Also checks that
examples/nginx.conf is a complete config nginx accepts (and that works in
front of srv), and the keys of examples/srv.service and examples/srv.socket."""

import contextlib
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import RawConn, Server, _can_connect, free_port, raw_request, wait_for
from produtil import PROD_APP, Load, children, http_get, tcp_connector

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")


def nginx_bin():
    for p in ("/usr/sbin/nginx", shutil.which("nginx")):
        if p and os.access(p, os.X_OK):
            return p
    return None


pytestmark = pytest.mark.skipif(nginx_bin() is None, reason="nginx not installed")

PROXY_COMMON = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
"""

TEMPLATE = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    upstream srv_unix {{
        server unix:{sock} fail_timeout=0;
        keepalive 16;
    }}
    upstream srv_tcp {{
        server 127.0.0.1:{tcp} fail_timeout=0;
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64m;

        location / {{
            proxy_pass http://srv_unix;
{common}
        }}
        location /stream {{
            proxy_pass http://srv_unix;
{common}
            proxy_buffering off;
        }}
        location /echo {{
            proxy_pass http://srv_unix;
{common}
            proxy_request_buffering off;
        }}
        location /buffered/ {{
            proxy_pass http://srv_unix/;
{common}
            proxy_request_buffering on;
        }}
        location /tcp/ {{
            proxy_pass http://srv_tcp/;
{common}
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, conf_text, d, port):
        self.dir = d
        self.port = port
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.proc = subprocess.Popen(
            [nginx_bin(), "-c", self.conf, "-p", d + "/", "-e", os.path.join(d, "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "stderr.log"), "wb"))
        ok = wait_for(lambda: self.proc.poll() is not None
                      or _can_connect(("127.0.0.1", port)), timeout=10)
        if self.proc.poll() is not None or not ok:
            log = self.log()
            self.stop()
            pytest.fail("nginx did not start:\n" + log)

    def log(self):
        out = ""
        for name in ("error.log", "stderr.log"):
            with contextlib.suppress(OSError):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Stack:
    """srv (unix socket + TCP) behind a private nginx."""

    def __init__(self, srv_args=("--workers", "2")):
        self.dir = tempfile.mkdtemp(prefix="srvng-", dir="/tmp")
        self.sock = os.path.join(self.dir, "srv.sock")
        self.tcp = free_port()
        self.port = free_port()
        self.srv = None
        self.nginx = None
        try:
            self.srv = Server(PROD_APP, args=list(srv_args),
                              binds=["unix:" + self.sock, "127.0.0.1:%d" % self.tcp])
            conf = TEMPLATE.format(d=self.dir, sock=self.sock, tcp=self.tcp,
                                   port=self.port, common=PROXY_COMMON)
            self.nginx = Nginx(conf, self.dir, self.port)
        except BaseException:
            self.cleanup()
            raise

    def conn(self, timeout=15):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def cleanup(self):
        if self.nginx:
            self.nginx.stop()
        if self.srv:
            self.srv.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    try:
        yield s
    finally:
        s.cleanup()


def assert_ok(stack, status, body):
    assert status == 200, "%s %r\nnginx log:\n%s\nsrv stderr:\n%s" % (
        status, body[:300], stack.nginx.log()[-3000:], stack.srv.stderr_text()[-3000:])


# ---------------------------------------------------------------- basics

def test_get_through_nginx(stack):
    st, h, body = stack.request("GET", "/info?x=1")
    assert_ok(stack, st, body)
    info = json.loads(body)
    assert info["path"] == "/info" and info["query"] == "x=1"
    assert info["ppid"] == stack.srv.pid
    # nginx talks to srv over the unix socket; srv takes the client address
    # from nginx's X-Forwarded-For (unix peers are trusted)
    assert info["remote_addr"] == "127.0.0.1"
    assert info["scheme"] == "http"
    assert info["headers"]["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"


def test_fake_xff_from_client_does_not_become_remote_addr(stack):
    st, _, body = stack.request("GET", "/info", headers={"X-Forwarded-For": "203.0.113.7"})
    assert_ok(stack, st, body)
    info = json.loads(body)
    assert info["headers"]["HTTP_X_FORWARDED_FOR"] == "203.0.113.7, 127.0.0.1"
    assert info["remote_addr"] == "127.0.0.1", info


def test_post_body(stack):
    data = os.urandom(3 * 1024 * 1024 + 17)
    st, _, body = stack.request("POST", "/buffered/echo", body=data,
                                headers={"Content-Type": "application/octet-stream"})
    assert_ok(stack, st, body)
    info = json.loads(body)
    assert info["length"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def _chunked_upload(stack, path, pieces):
    with RawConn.tcp("127.0.0.1", stack.port, timeout=20) as c:
        c.send(raw_request("POST", path, headers=[("Transfer-Encoding", "chunked"),
                                                  ("Content-Type", "application/octet-stream")]))
        for i, p in enumerate(pieces):
            c.send(b"%x\r\n" % len(p) + p + b"\r\n")
            if i % 8 == 7:
                time.sleep(0.02)
        c.send(b"0\r\n\r\n")
        return c.read_response()


@pytest.mark.parametrize("path", ["/echo", "/buffered/echo"],
                         ids=["request-buffering-off", "request-buffering-on"])
def test_chunked_upload(stack, path):
    pieces = [os.urandom(1000 + 37 * i) for i in range(40)]
    data = b"".join(pieces)
    r = _chunked_upload(stack, path, pieces)
    assert_ok(stack, r.status, r.body)
    info = r.json()
    assert info["length"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_streamed_response_not_buffered(stack):
    n, delay = 5, 0.4
    with RawConn.tcp("127.0.0.1", stack.port, timeout=20) as c:
        t0 = time.monotonic()
        c.send(raw_request("GET", "/stream?n=%d&delay=%g&size=100" % (n, delay)))
        head = c.read_head()
        assert head.status == 200
        assert "chunked" in (head.header("transfer-encoding") or "").lower(), head.headers
        pieces = []
        t_first = None
        while True:
            size = int(c.read_line().split(b";")[0].strip(), 16)
            if size == 0:
                c.read_line()
                break
            pieces.append(c.read_exact(size))
            c.read_exact(2)
            if t_first is None:
                t_first = time.monotonic() - t0
        t_all = time.monotonic() - t0
    body = b"".join(pieces)
    assert body == b"".join((b"%d:" % i).ljust(100, b".") for i in range(n))
    assert t_all >= (n - 1) * delay * 0.8
    assert t_first < t_all - 2 * delay, \
        "first chunk after %.2fs of %.2fs: the stream was buffered" % (t_first, t_all)


def test_big_response(stack):
    size = 8 * 1024 * 1024 + 3
    st, _, body = stack.request("GET", "/big?size=%d" % size)
    assert_ok(stack, st, body[:100])
    assert len(body) == size and body == b"x" * size


def test_upstream_keepalive_reused_over_tcp(stack):
    ports = []
    addrs = set()
    for _ in range(12):
        st, _, body = stack.request("GET", "/tcp/info")
        assert_ok(stack, st, body)
        info = json.loads(body)
        ports.append(info["remote_port"])
        addrs.add(info["remote_addr"])
        assert info["path"] == "/info"
    assert addrs == {"127.0.0.1"}
    assert len(set(ports)) <= 3, "nginx opened a new upstream connection per request: %r" % ports


def test_post_after_srv_closed_idle_upstream_connection():
    """srv closes idle upstream keep-alive connections (--keepalive 1)
    cleanly: nginx notices and a later POST (never retried by nginx) still
    works."""
    s = Stack(srv_args=("--keepalive", "1"))
    try:
        for _ in range(3):
            data = os.urandom(5000)
            st, _, body = s.request("POST", "/tcp/echo", body=data)
            assert_ok(s, st, body)
            assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()
            time.sleep(1.8)
    finally:
        s.cleanup()


# ---------------------------------------------------------------- reload

def test_reload_behind_nginx_under_load_no_5xx():
    s = Stack(srv_args=("--workers", "2"))
    try:
        s.request("GET", "/info")
        load = Load(tcp_connector("127.0.0.1", s.port), path="/info",
                    keepalive=3, fresh=2).start()
        try:
            for _ in range(2):
                time.sleep(0.8)
                before = set(children(s.srv.pid))
                s.srv.proc.send_signal(signal.SIGHUP)
                ok = wait_for(lambda: not (set(children(s.srv.pid)) & before)
                              and len(children(s.srv.pid)) == 2, timeout=15)
                assert ok, "reload did not finish:\n" + s.srv.stderr_text()
            time.sleep(0.8)
        finally:
            load.stop()
        summary = load.summary()
        assert load.ok > 100, summary
        assert not any(k >= 500 for k in load.statuses), summary
        assert not load.failures, summary + "\nnginx log:\n" + s.nginx.log()[-3000:]
        assert "upstream" not in s.nginx.log(), s.nginx.log()[-3000:]
        pids = {b["pid"] for b in load.bodies}
        assert len(pids) >= 4, "expected old and new workers to answer: %r" % pids
    finally:
        s.cleanup()


# ---------------------------------------------------------------- examples

def _example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def _adapt_example_nginx(d, port, sock):
    text = _example("nginx.conf")
    assert "unix:/run/srv/srv.sock" in text
    text = text.replace("/run/srv/srv.sock", sock)
    text = text.replace("/run/nginx.pid", os.path.join(d, "nginx.pid"))
    text = text.replace("/var/log/nginx/", d + "/")
    text = re.sub(r"^\s*user\s+[^;]+;", "", text, flags=re.M)
    text = re.sub(r"^(\s*)listen\s+80;", r"\1listen 127.0.0.1:%d;" % port, text, flags=re.M)
    text = re.sub(r"^\s*listen\s+\[::\]:80;", "", text, flags=re.M)
    text = re.sub(r"^\s*worker_processes\s+[^;]+;",
                  "daemon off;\nmaster_process off;\nworker_processes 1;", text, flags=re.M)
    temps = "".join("    %s_temp_path %s/%s;\n" % (k, d, k)
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = re.sub(r"^http\s*\{", "http {\n" + temps, text, count=1, flags=re.M)
    return text


def test_example_nginx_conf_is_complete_and_valid(tmp_path):
    text = _example("nginx.conf")
    for needle in ("events", "http", "upstream", "keepalive", "proxy_http_version 1.1",
                   'proxy_set_header Connection ""', "$proxy_add_x_forwarded_for",
                   "X-Forwarded-Proto", "proxy_buffering off", "proxy_request_buffering"):
        assert needle in text, needle
    d = tempfile.mkdtemp(prefix="srvex-", dir="/tmp")
    try:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(_adapt_example_nginx(d, free_port(), os.path.join(d, "srv.sock")))
        p = subprocess.run([nginx_bin(), "-t", "-c", conf, "-p", d + "/",
                            "-e", os.path.join(d, "error.log")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, out
        assert "syntax is ok" in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_example_nginx_conf_serves_srv():
    d = tempfile.mkdtemp(prefix="srvex-", dir="/tmp")
    sock = os.path.join(d, "srv.sock")
    port = free_port()
    srv = ng = None
    try:
        srv = Server(PROD_APP, binds=["unix:" + sock])
        ng = Nginx(_adapt_example_nginx(d, port, sock), d, port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            c.request("GET", "/info", headers={"X-Forwarded-For": "203.0.113.7"})
            r = c.getresponse()
            body = r.read()
            assert r.status == 200, (r.status, body, ng.log())
            info = json.loads(body)
            assert info["remote_addr"] == "127.0.0.1"
            assert re.fullmatch(r"[0-9a-f]{32}", info["headers"].get("HTTP_X_REQUEST_ID", "")), info
            c.request("GET", "/events/x")           # the streaming location
            r = c.getresponse()
            r.read()
            assert r.status == 404                  # answered by prod_app
            data = os.urandom(100000)
            c.request("POST", "/upload/x", body=data)
            r = c.getresponse()
            r.read()
            assert r.status == 404
        finally:
            c.close()
    finally:
        if ng:
            ng.stop()
        if srv:
            srv.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def parse_unit(text):
    """A small systemd unit parser: {section: {key: [values]}}, with
    backslash continuation lines."""
    units = {}
    section = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if pending:
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            units.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section, "bad unit line %r" % raw
        units[section].setdefault(key.strip(), []).append(value.strip())
    assert not pending, "dangling continuation line"
    return units


def test_example_srv_service():
    u = parse_unit(_example("srv.service"))
    svc = u["Service"]
    assert svc["Type"] == ["simple"]
    start = svc["ExecStart"][-1]
    argv = shlex.split(start)
    assert argv[0] == "/usr/local/bin/srv"
    assert "--app" in argv
    assert argv[argv.index("--bind") + 1] == "unix:/run/srv/srv.sock"
    assert argv[argv.index("--workers") + 1] == "auto"
    assert argv[argv.index("--pid") + 1] == "/run/srv/srv.pid"
    assert re.fullmatch(r"/bin/kill -HUP \$MAINPID", svc["ExecReload"][-1])
    assert svc["KillSignal"] == ["SIGTERM"]
    assert int(svc["TimeoutStopSec"][-1]) > 30      # longer than --graceful-timeout
    assert svc["Restart"] == ["on-failure"]
    assert "multi-user.target" in u["Install"]["WantedBy"][-1]


def test_example_srv_service_flags_are_accepted(tmp_path):
    """Run the example's ExecStart (with a test app and temporary paths):
    every flag in it must be one srv accepts, and it must serve."""
    argv = shlex.split(parse_unit(_example("srv.service"))["Service"]["ExecStart"][-1])
    d = tempfile.mkdtemp(prefix="srvsvc-", dir="/tmp")
    try:
        args = []
        i = 1
        while i < len(argv):
            a = argv[i]
            if a in ("--app", "--bind"):
                i += 2
                continue
            v = a.replace("/run/srv/", d + "/")
            args.append(v)
            i += 1
        sock = os.path.join(d, "srv.sock")
        s = Server(PROD_APP, args=args, binds=["unix:" + sock])
        try:
            st, _, body = http_get(None, None, "/info", unix=sock)
            assert st == 200
            assert os.path.exists(os.path.join(d, "srv.pid"))
        finally:
            rc = s.stop()
            s.cleanup()
        assert rc == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_example_srv_socket():
    u = parse_unit(_example("srv.socket"))
    assert u["Socket"]["ListenStream"] == ["/run/srv/srv.sock"]
    assert "sockets.target" in u["Install"]["WantedBy"][-1]


def test_example_units_verify(tmp_path):
    """systemd-analyze verify, where it is available and usable here."""
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze not installed")
    d = tmp_path / "units"
    d.mkdir()
    fake = tmp_path / "srv"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    for name in ("srv.service", "srv.socket"):
        text = _example(name).replace("/usr/local/bin/srv", str(fake))
        (d / name).write_text(text)
    p = subprocess.run([sa, "verify", str(d / "srv.service"), str(d / "srv.socket")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0 and re.search(r"Failed to (connect|initialize|setup|create)|"
                                       r"System has not been booted with systemd|"
                                       r"Failed to load .*: (No such|Permission)", out) \
            and "srv.s" not in out:
        pytest.skip("systemd-analyze cannot run here: " + out[:300])
    relevant = [ln for ln in out.splitlines() if "srv.s" in ln]
    assert p.returncode == 0 and not relevant, out
