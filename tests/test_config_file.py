"""--config FILE / $SRV_CONFIG: `name = value` lines through the same code as
the flags, flags winning over the file; a bad file at start (exit 2 naming
FILE:LINE); SIGHUP re-reading the file (what applies, what is kept and
logged, a broken file keeping the old settings); --check-config."""

import http.client
import os
import signal
import socket
import textwrap

import pytest

from conftest import APPS_DIR, _can_connect, free_port, run_srv, wait_for
from produtil import children, wait_children


def write_conf(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(textwrap.dedent(text))
    os.replace(tmp, str(path))
    return str(path)


def post_status(port, n):
    """POST an n-byte body to a route that reads it; the status."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/expect_read?delay=0", body=b"x" * n)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def start(server_factory, port, *args, **kw):
    """srv with no --bind of its own (the file has it); waits for port."""
    s = server_factory(None, *args, binds=[], **kw)
    s.port = port
    ok = wait_for(lambda: not s.alive() or _can_connect(("127.0.0.1", port)), timeout=15)
    assert ok and s.alive(), "srv did not start:\n" + s.stderr_text()
    return s


def wait_log(server, text, timeout=15.0):
    ok = wait_for(lambda: text in server.stderr_text(), timeout=timeout)
    assert ok, "%r not logged:\n%s" % (text, server.stderr_text())


def reload_and_wait(server, workers):
    """SIGHUP; waits until the new generation took over (old ones gone)."""
    before = server.stderr_text().count("new worker(s) ready; stopping the old ones")
    os.kill(server.pid, signal.SIGHUP)
    assert wait_for(lambda: server.stderr_text().count(
        "new worker(s) ready; stopping the old ones") > before, timeout=20), server.stderr_text()
    return wait_children(server, workers)


def test_serves_from_file(server_factory, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "srv.conf", """\
        # a comment, then a blank line

        app = routes:app            # the app, like --app
        bind = 127.0.0.1:%d
        workers = 2
        max-body = 50
        no-server-header = true
        """ % port)
    s = start(server_factory, port, "--config", conf)
    wait_children(s, 2)
    assert post_status(port, 10) == 200
    assert post_status(port, 100) == 413
    status, headers, _ = s.get("/hello")
    assert status == 200 and "server" not in headers


def test_srv_config_environment_variable(server_factory, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "env.conf", """\
        app = routes:app
        bind = 127.0.0.1:%d
        max-body = 50
        """ % port)
    s = start(server_factory, port, env={"SRV_CONFIG": conf})
    assert post_status(port, 100) == 413


def test_flags_override_the_file(server_factory, tmp_path):
    file_port, flag_port = free_port(), free_port()
    conf = write_conf(tmp_path / "srv.conf", """\
        app = no_such_module:app
        bind = 127.0.0.1:%d
        workers = 3
        max-body = 50
        """ % file_port)
    s = start(server_factory, flag_port, "--config", conf, "routes:app",
              "--bind", "127.0.0.1:%d" % flag_port, "--workers", "1")
    wait_children(s, 1)
    # The command line's --bind replaced the file's list; its app won.
    assert not _can_connect(("127.0.0.1", file_port))
    assert post_status(flag_port, 100) == 413            # the file's max-body
    assert len(children(s.pid)) == 1                     # the flag's workers


def test_boolean_false(server_factory, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "srv.conf", """\
        app = routes:app
        bind = 127.0.0.1:%d
        no-server-header = false
        """ % port)
    s = start(server_factory, port, "--config", conf)
    status, headers, _ = s.get("/hello")
    assert status == 200 and headers.get("server") == "srv"


BAD_FILES = [
    ("app = routes:app\nworkers = many\n", 2, "workers: expected an integer"),
    ("app = routes:app\n\n# fine\nnot-a-setting = 1\n", 4, "unknown setting 'not-a-setting'"),
    ("app = routes:app\nworkers 4\n", 2, "expected 'name = value'"),
    ("workers = 2\nworkers = 3\napp = routes:app\n", 2, "'workers' is set twice (first on line 1)"),
    ("app = routes:app\nconfig = /etc/other.conf\n", 2, "can only be given on the command line"),
    ("app = routes:app\nreuse-port = perhaps\n", 2, "reuse-port: expected true or false"),
    ("app = routes:app\nmax-body =\n", 2, "max-body: missing value"),
    ("app = routes:app\nBind = :80\n", 2, "not a setting name"),
]


@pytest.mark.parametrize("text,line,problem", BAD_FILES)
def test_bad_file_exits_2_naming_file_and_line(tmp_path, text, line, problem):
    conf = str(tmp_path / "bad.conf")
    with open(conf, "w") as f:
        f.write(text)
    r = run_srv(["--config", conf, "--bind", "127.0.0.1:%d" % free_port()])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("srv: error: %s:%d: " % (conf, line)), lines[0]
    assert problem in lines[0], lines[0]


def test_missing_file_exits_2(tmp_path):
    missing = str(tmp_path / "nope.conf")
    for args, env in ((["--config", missing], None), (["routes:app"], {"SRV_CONFIG": missing})):
        r = run_srv(args, env=env)
        assert r.returncode == 2
        assert r.stderr.strip() == "srv: error: %s: No such file or directory" % missing


def test_sighup_applies_the_edited_file(server_factory, tmp_path):
    port = free_port()
    (tmp_path / "work").mkdir()
    log2 = tmp_path / "second.log"
    text = """\
        app = routes:app
        pythonpath = %s
        bind = 127.0.0.1:%d
        chdir = work
        workers = %d
        max-body = %d
        """
    conf = write_conf(tmp_path / "srv.conf", text % (APPS_DIR, port, 1, 50))
    s = start(server_factory, port, "--config", conf, cwd=str(tmp_path))
    wait_children(s, 1)
    assert post_status(port, 100) == 413

    write_conf(conf, text % (APPS_DIR, port, 2, 1000) + "error-log = %s\n" % log2)
    # The master logs into the new error log from the reload on.
    os.kill(s.pid, signal.SIGHUP)
    assert wait_for(lambda: log2.exists() and "stopping the old ones" in log2.read_text(),
                    timeout=20), s.stderr_text()
    kids = wait_children(s, 2)
    assert post_status(port, 500) == 200
    assert "reload: settings read from %s" % conf in log2.read_text()
    # The relative chdir was resolved from where srv started, again.
    for k in kids:
        assert os.readlink("/proc/%d/cwd" % k) == str(tmp_path / "work")


def test_broken_file_at_reload_keeps_old_settings(server_factory, tmp_path):
    port = free_port()
    conf = write_conf(tmp_path / "srv.conf", """\
        app = routes:app
        bind = 127.0.0.1:%d
        workers = 2
        max-body = 50
        """ % port)
    s = start(server_factory, port, "--config", conf)
    kids = sorted(wait_children(s, 2))

    write_conf(conf, """\
        app = routes:app
        bind = 127.0.0.1:%d
        max-body = 5000
        workers = lots
        """ % port)
    os.kill(s.pid, signal.SIGHUP)
    wait_log(s, "reload: %s:4: workers: expected an integer" % conf)
    wait_log(s, "reload abandoned")
    # Same workers, same limits, still serving.
    assert s.alive()
    assert sorted(children(s.pid)) == kids
    assert post_status(port, 100) == 413
    assert post_status(port, 10) == 200

    # Fixed again: now it applies.
    write_conf(conf, """\
        app = routes:app
        bind = 127.0.0.1:%d
        max-body = 5000
        workers = 1
        """ % port)
    reload_and_wait(s, 1)
    assert post_status(port, 100) == 200


def test_bind_change_at_reload_is_logged_not_applied(server_factory, tmp_path):
    port, other = free_port(), free_port()
    text = """\
        app = routes:app
        bind = 127.0.0.1:%d
        max-body = %d
        """
    conf = write_conf(tmp_path / "srv.conf", text % (port, 50))
    s = start(server_factory, port, "--config", conf)
    assert post_status(port, 100) == 413

    write_conf(conf, text % (other, 1000) + "backlog = 16\ndefer-accept = 0\n")
    reload_and_wait(s, 1)
    err = s.stderr_text()
    assert "reload: 'bind' changed in %s: not applied" % conf in err
    assert "reload: 'backlog' changed in %s: not applied" % conf in err
    assert "reload: 'defer-accept' changed in %s: not applied" % conf in err
    # The old address serves, with the new limit; the new one was not bound.
    assert post_status(port, 500) == 200
    assert not _can_connect(("127.0.0.1", other))


def test_check_config_ok_binds_nothing(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        conf = write_conf(tmp_path / "srv.conf", """\
            app = routes:app
            bind = 127.0.0.1:%d
            workers = 4
            """ % busy.getsockname()[1])
        r = run_srv(["--check-config", "--config", conf])
        assert r.returncode == 0, r.stderr
        assert "configuration OK: routes:app" in r.stdout
        assert conf in r.stdout
        r = run_srv(["--check-config", "hello:app", "--mode", "native"])
        assert r.returncode == 0, r.stderr
        assert "native mode" in r.stdout
    finally:
        busy.close()


def test_check_config_errors_exit_2(tmp_path):
    r = run_srv(["--check-config", "import_error:app"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == \
        "srv: error: cannot import module 'import_error' for --app import_error:app"

    conf = write_conf(tmp_path / "srv.conf", "app = routes:app\nmax-uri = 3\n")
    r = run_srv(["--check-config", "--config", conf])
    assert r.returncode == 2
    assert r.stderr.strip().startswith("srv: error: %s:2: max-uri: expected an integer" % conf)

    # The file is checked as a whole, even where a flag overrides a value.
    r = run_srv(["--check-config", "--config", conf, "--max-uri", "100"])
    assert r.returncode == 2
