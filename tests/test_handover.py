"""The hand-over (include/srv/handover.h): srv execs the Python it was built
for, with its core as the extension module _srv_host.so, so that apps run
in that interpreter's build (LTO-linked /usr/bin/python3.11) instead of in
the libpython srv links.  Without the module beside the executable, or with
--embedded-python, srv stays in its own libpython.  Both must serve the
same way: srv's own modules, the app's sys.path, its sys.argv."""
import os
import shutil
import subprocess
import pytest

from conftest import APPS_DIR, PYTHON, run_srv, srv_bin

MODULE = os.path.join(os.path.dirname(srv_bin()), "_srv_host.so")
needs_module = pytest.mark.skipif(not os.path.exists(MODULE),
                                  reason="built without _srv_host.so (sanitizers, fuzzing)")


def built_for():
    """The interpreter srv was built for (CMake's SRV_PYTHON)."""
    cache = os.path.join(os.path.dirname(srv_bin()), "CMakeCache.txt")
    with open(cache) as f:
        for line in f:
            if line.startswith("SRV_PYTHON:"):
                return os.path.realpath(line.split("=", 1)[1].strip())
    return os.path.realpath("/usr/bin/python3")


def info(server):
    return server.get_json("/")


def check_served_the_same_way(i):
    assert i["srv_origin"] == "built-in" and i["srv_file"] is None, i   # srv's own module
    assert i["sleep"], i
    assert i["argv"] == [""], i
    assert str(APPS_DIR) in i["path"], i
    assert "" not in i["path"] and os.path.dirname(MODULE) not in i["path"], i["path"]


@needs_module
@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_worker_runs_in_the_interpreter_srv_was_built_for(server_factory, mode):
    s = server_factory("handover_app:app", "--mode", mode)
    i = info(s)
    assert i["exe"] == built_for(), i
    assert os.path.realpath(i["executable"]) == built_for(), i
    assert i["ppid"] == s.pid   # the master kept the pid it was started with
    assert os.path.realpath("/proc/%d/exe" % s.pid) == built_for()
    with open("/proc/%d/cmdline" % s.pid, "rb") as f:
        cmdline = f.read().split(b"\0")
    assert srv_bin().encode() in cmdline and b"handover_app:app" in cmdline, cmdline
    check_served_the_same_way(i)
    s.assert_healthy()


@pytest.mark.parametrize("mode", ["native", "gevent"])
def test_embedded_python_flag_keeps_the_linked_interpreter(server_factory, mode):
    s = server_factory("handover_app:app", "--mode", mode, "--embedded-python")
    i = info(s)
    assert i["exe"] == os.path.realpath(srv_bin()), i
    check_served_the_same_way(i)


def test_without_the_module_srv_runs_in_its_own_libpython(server_factory, tmp_path, monkeypatch):
    """A copy of the executable with no _srv_host.so beside it (nor in
    ../lib/srv) serves from its own libpython, the same way."""
    alone = tmp_path / "bin" / "srv"
    alone.parent.mkdir()
    shutil.copy2(srv_bin(), alone)
    monkeypatch.setenv("SRV_BIN", str(alone))
    s = server_factory("handover_app:app", "--mode", "native")
    i = info(s)
    assert i["exe"] == str(alone), i
    check_served_the_same_way(i)


@needs_module
def test_bad_flag_is_refused_before_the_hand_over():
    """A usage error is one line and exit 2 from srv itself, before any
    interpreter starts."""
    r = run_srv(["--app", "handover_app:app", "--no-such-flag"])
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr


@needs_module
def test_check_config_after_the_hand_over():
    r = run_srv(["--app", "handover_app:app", "--check-config", "--mode", "native"])
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout, r.stdout


@needs_module
def test_an_interpreter_that_cannot_run_leaves_srv_in_its_own_libpython(server_factory, tmp_path):
    """--virtualenv DIR whose bin/python is gone: the exec fails, srv says
    so in one line and serves from its own libpython, in that venv."""
    venv = tmp_path / "venv"
    r = subprocess.run([PYTHON, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a virtualenv (python3-venv missing?): " + r.stderr)
    for p in (venv / "bin").glob("python*"):
        p.unlink()
    venv = venv.resolve()
    s = server_factory("venv_app:app", "--mode", "native", "--virtualenv", str(venv))
    i = s.get_json("/")
    assert i["exe"] == os.path.realpath(srv_bin()), i
    assert i["prefix"] == str(venv), i
    assert s.stderr_text().count("cannot run %s/bin/python" % venv) == 1, s.stderr_text()
    s.assert_healthy()
