"""Command line: error exits, --version/--help, bind forms, --chdir,
--pythonpath, module:factory(), signals."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

import pytest

from conftest import (RawConn, Server, curl, free_port, needs_curl,
                      needs_ipv6, run_srv, wait_for)


def nonempty_lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def assert_one_line_error(res, *must_contain):
    """rc 2, nothing on stdout that matters, exactly one short line on stderr."""
    assert res.returncode == 2, "rc=%r stderr=%r" % (res.returncode, res.stderr)
    lines = nonempty_lines(res.stderr)
    assert len(lines) == 1, "expected a one-line error, got:\n%s" % res.stderr
    assert len(lines[0]) < 400, lines[0]
    low = lines[0].lower()
    for word in must_contain:
        assert word.lower() in low, "%r not in error line %r" % (word, lines[0])
    return lines[0]


# ---------------------------------------------------------------- exit 2

def test_unknown_flag():
    res = run_srv(["--app", "hello:app", "--bogus-flag"])
    assert_one_line_error(res, "--bogus-flag")


def test_flag_missing_value():
    res = run_srv(["--app", "hello:app", "--bind"])
    assert_one_line_error(res)


@pytest.mark.parametrize("addr", ["127.0.0.1:99999", "nonsense:abc", "127.0.0.1:",
                                  "127.0.0.1:-1", "[::1:80"])
def test_bad_address(addr):
    res = run_srv(["--app", "hello:app", "--bind", addr])
    assert_one_line_error(res)


@pytest.mark.parametrize("args", [["--backlog", "lots"], ["--max-body", "big"],
                                  ["--log-level", "chatty"]])
def test_bad_option_values(args):
    res = run_srv(["--app", "hello:app", "--bind", "127.0.0.1:%d" % free_port()] + args)
    assert_one_line_error(res)


def test_module_raises_at_import():
    res = run_srv(["--app", "import_error:app", "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2, res
    lines = nonempty_lines(res.stderr)
    assert lines, "no error output"
    # a traceback is allowed, and should show the cause
    assert "import-error-MARKER" in res.stderr, res.stderr
    last = lines[-1]
    assert len(last) < 400
    assert not last.startswith(" "), "last line must be the one-line error: %r" % last
    assert "import_error" in last or "import-error-MARKER" in last, last


def test_module_not_found():
    res = run_srv(["--app", "no_such_module_srv_test:app",
                   "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2, res
    lines = nonempty_lines(res.stderr)
    assert lines
    assert "no_such_module_srv_test" in lines[-1], res.stderr
    assert len(lines[-1]) < 400


def test_missing_attribute():
    res = run_srv(["--app", "hello:no_such_attr", "--bind", "127.0.0.1:%d" % free_port()])
    assert_one_line_error(res, "no_such_attr")


@pytest.mark.parametrize("spec", ["not_callable:app", "not_callable:also_not_callable"])
def test_app_not_callable(spec):
    res = run_srv(["--app", spec, "--bind", "127.0.0.1:%d" % free_port()])
    assert_one_line_error(res, spec.split(":")[1])


def test_factory_returning_non_callable():
    res = run_srv(["--app", "not_callable:make_not_callable()",
                   "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2, res
    assert nonempty_lines(res.stderr), res.stderr


def test_address_in_use():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(5)
    port = s.getsockname()[1]
    try:
        res = run_srv(["--app", "hello:app", "--bind", "127.0.0.1:%d" % port])
        line = assert_one_line_error(res)
        assert "in use" in line.lower() or str(port) in line, line
    finally:
        s.close()


# ------------------------------------------------------- version / help

def test_version():
    res = run_srv(["--version"])
    assert res.returncode == 0, res
    out = res.stdout.strip()
    assert re.fullmatch(r"srv \d+\.\d+\.\d+", out), repr(res.stdout)


def test_version_matches_module(server_factory):
    res = run_srv(["--version"])
    s = server_factory("routes:app")
    status, _, body = s.get("/version")
    assert status == 200
    assert re.fullmatch(r"\d+\.\d+\.\d+", body.decode()), body
    assert res.stdout.strip() == "srv " + body.decode()


@pytest.mark.parametrize("mode", ["gevent", "native"])
def test_startup_objects_frozen_unless_no_gc_freeze(server_factory, mode):
    # what the app's import made is gc.freeze()d before serving (the cyclic
    # GC stops walking it); --no-gc-freeze leaves the collector alone
    s = server_factory("routes:app", "--mode", mode)
    status, _, body = s.get("/gc")
    frozen = int(body.split()[1])
    assert status == 200 and frozen > 1000 and body.endswith(b"enabled True"), body
    s2 = server_factory("routes:app", "--mode", mode, "--no-gc-freeze")
    status, _, body = s2.get("/gc")
    assert status == 200 and body == b"frozen 0 enabled True", body


def test_help():
    res = run_srv(["--help"])
    assert res.returncode == 0, res
    text = res.stdout
    for flag in ["--app", "--bind", "--chdir", "--pythonpath", "--backlog",
                 "--max-body", "--no-server-header", "--log-level", "--version", "--help"]:
        assert flag in text, "%s missing from --help output:\n%s" % (flag, text)


# --------------------------------------------------------------- binds

def test_listening_logged(server_factory):
    s = server_factory("hello:app")
    assert wait_for(lambda: "listening on" in s.stderr_text(), 3), s.stderr_text()


@needs_curl
def test_unix_socket(server_factory):
    d = tempfile.mkdtemp(prefix="srv-unix-")
    path = os.path.join(d, "srv.sock")
    s = server_factory("routes:app", binds=["unix:" + path])
    p = curl("--unix-socket", path, "http://localhost/hello")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"Hello, World!\n"
    with RawConn.unix(path) as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r1, r2 = c.read_responses(2)
        assert r1.status == r2.status == 200
        assert r2.body == b"Hello, World!\n"
    s.stop()
    os.path.exists(path) and os.unlink(path)
    os.rmdir(d)


def test_unix_socket_environ(server_factory):
    d = tempfile.mkdtemp(prefix="srv-unix-")
    path = os.path.join(d, "srv.sock")
    s = server_factory("echo:app", binds=["unix:" + path])
    with RawConn.unix(path) as c:
        c.send(b"GET /u?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    env = r.json()["environ"]
    assert env["PATH_INFO"] == "/u"
    assert env["QUERY_STRING"] == "x=1"
    assert isinstance(env["SERVER_PORT"], str)
    s.stop()
    os.path.exists(path) and os.unlink(path)
    os.rmdir(d)


@needs_ipv6
def test_ipv6_bind(server_factory):
    port = free_port("::1", socket.AF_INET6)
    server_factory("echo:app", binds=["[::1]:%d" % port])
    with RawConn.tcp("::1", port) as c:
        c.send(b"GET /v6 HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n" % port)
        r = c.read_response()
    assert r.status == 200
    env = r.json()["environ"]
    assert env["REMOTE_ADDR"] == "::1"
    assert env["PATH_INFO"] == "/v6"
    assert env["SERVER_PORT"] == str(port)
    # not listening on IPv4 for this port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_several_binds(server_factory):
    p1, p2 = free_port(), free_port()
    while p2 == p1:
        p2 = free_port()
    d = tempfile.mkdtemp(prefix="srv-unix-")
    path = os.path.join(d, "srv.sock")
    s = server_factory("echo:app",
                       binds=["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2, "unix:" + path])
    for port in (p1, p2):
        with RawConn.tcp("127.0.0.1", port) as c:
            c.send(b"GET /multi HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
            r = c.read_response()
            assert r.status == 200
            assert r.json()["environ"]["SERVER_PORT"] == str(port)
    with RawConn.unix(path) as c:
        c.send(b"GET /multi HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.read_response().status == 200
    s.stop()
    os.path.exists(path) and os.unlink(path)
    os.rmdir(d)


def test_bind_port_only(server_factory):
    port = free_port()
    s = server_factory("routes:app", binds=[":%d" % port])
    status, _, body = s.get("/hello")
    assert status == 200 and body == b"Hello, World!\n"


def test_default_bind(server_factory):
    try:
        with socket.socket() as t:
            t.bind(("127.0.0.1", 8000))
    except OSError:
        pytest.skip("port 8000 is busy")
    s = server_factory("routes:app", binds=[])
    s.port = 8000
    s.binds = ["127.0.0.1:8000"]
    s.wait_ready()
    status, _, body = s.get("/hello")
    assert status == 200 and body == b"Hello, World!\n"


# ------------------------------------------------- chdir / pythonpath / factory

CWD_APP = textwrap.dedent("""
    import os, sys
    def app(environ, start_response):
        body = ("%s|%s" % (os.getcwd(), MARK)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    """)


def test_chdir(server_factory, tmp_path):
    modname = "srv_chdir_mod_%d" % os.getpid()
    (tmp_path / (modname + ".py")).write_text(CWD_APP + "MARK = 'chdir-ok'\n")
    s = server_factory("%s:app" % modname, "--chdir", str(tmp_path), cwd="/")
    status, _, body = s.get("/")
    assert status == 200
    cwd, mark = body.decode().split("|")
    assert os.path.realpath(cwd) == os.path.realpath(str(tmp_path))
    assert mark == "chdir-ok"


def test_chdir_missing_dir():
    res = run_srv(["--app", "hello:app", "--chdir", "/nonexistent/srv/dir",
                   "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2, res
    assert nonempty_lines(res.stderr)


def test_pythonpath(server_factory, tmp_path):
    libdir = tmp_path / "lib"
    libdir.mkdir()
    modname = "srv_pp_mod_%d" % os.getpid()
    (libdir / (modname + ".py")).write_text(CWD_APP + "MARK = 'pythonpath-ok'\n")
    s = server_factory("%s:app" % modname, "--pythonpath", str(libdir))
    status, _, body = s.get("/")
    assert status == 200
    assert body.decode().split("|")[1] == "pythonpath-ok"


def test_pythonpath_repeated(server_factory, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "srv_pp_helper_a.py").write_text("VALUE = 'from-a'\n")
    (b / "srv_pp_main_b.py").write_text(textwrap.dedent("""
        import srv_pp_helper_a
        def app(environ, start_response):
            body = srv_pp_helper_a.VALUE.encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        """))
    s = server_factory("srv_pp_main_b:app", "--pythonpath", str(a), "--pythonpath", str(b))
    assert s.get("/")[2] == b"from-a"


def test_without_pythonpath_module_not_found(tmp_path):
    modname = "srv_pp_absent_%d" % os.getpid()
    (tmp_path / (modname + ".py")).write_text(CWD_APP + "MARK = 'x'\n")
    res = run_srv(["--app", "%s:app" % modname, "--bind", "127.0.0.1:%d" % free_port()])
    assert res.returncode == 2


def test_factory(server_factory):
    s = server_factory("factory_app:make_app()")
    status, _, body = s.get("/")
    assert status == 200
    assert body == b"made-by-factory calls=1 created=1"
    # the factory is called once, not per request
    assert s.get("/again")[2] == b"made-by-factory calls=1 created=1"


def test_options_accepted(server_factory):
    s = server_factory("routes:app", "--backlog", "16", "--max-body", "1000000",
                       "--log-level", "debug")
    assert s.get("/hello")[0] == 200
    s2 = server_factory("routes:app", "--log-level", "warning")
    assert s2.get("/hello")[0] == 200


# ------------------------------------------------------------- signals

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exit_zero(sig):
    s = Server("routes:app")
    try:
        s.warm_up("/hello")
        assert s.get("/hello")[0] == 200
        # an idle keep-alive connection must not keep it from exiting
        c = s.connect()
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        s.proc.send_signal(sig)
        try:
            rc = s.proc.wait(8)
        except subprocess.TimeoutExpired:
            pytest.fail("srv did not exit within 8s of %s" % sig.name)
        assert rc == 0, "rc=%r stderr:\n%s" % (rc, s.stderr_text())
        c.close()
    finally:
        s.cleanup()


def test_sigterm_right_after_accepting_exit_zero():
    """SIGTERM as soon as the port accepts connections (srv may still be
    loading the app then) still means a clean stop with status 0."""
    s = Server("routes:app")
    try:
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("srv did not exit within 10s of SIGTERM")
        assert rc == 0, "rc=%r (negative: killed by that signal) stderr:\n%s" % (
            rc, s.stderr_text())
    finally:
        s.cleanup()


def test_stop_while_request_in_flight():
    """SIGTERM while a request sleeps: the process still exits (status 0)."""
    s = Server("routes:app")
    try:
        s.warm_up("/hello")
        c = s.connect()
        c.send(b"GET /sleep?t=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("srv did not exit within 10s of SIGTERM")
        assert rc == 0
        c.close()
    finally:
        s.cleanup()
