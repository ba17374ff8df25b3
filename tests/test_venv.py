"""srv uses the virtualenv it is started from.

A real virtualenv is made with `/usr/bin/python3 -m venv --without-pip
--system-site-packages` (so that it has Debian's greenlet), and a module
only it has is put in its site-packages: the app imports it
and reports sys.prefix, so each test fails if srv ran the system's Python
environment instead.  The virtualenv is found from --virtualenv DIR, from
the srv binary living in DIR/bin (what `pip install` does), or from
$VIRTUAL_ENV; a directory that is not a usable virtualenv is a usage error.
"""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from conftest import PYTHON, run_srv, srv_bin

PY_VERSION = "%d.%d" % sys.version_info[:2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    d = tmp_path_factory.mktemp("venv") / "env"
    r = subprocess.run([PYTHON, "-m", "venv", "--without-pip", "--system-site-packages",
                        str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a virtualenv (python3-venv missing?): " + r.stderr)
    site = subprocess.run([str(d / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "srv_venv_marker.py"), "w") as f:
        f.write("WHERE = 'venv'\n")
    return d.resolve()


def served(s):
    with urllib.request.urlopen(s.url + "/", timeout=10) as r:
        return json.loads(r.read())


def host_module(binary):
    """srv's extension module (handover.h) for this binary, where srv looks
    for it: beside it (a build), or in ../lib/srv (installed, by make install
    or pip); "" when neither has it."""
    d = os.path.dirname(binary)
    return next((m for m in (os.path.join(d, "_srv_host.so"),
                             os.path.join(d, "..", "lib", "srv", "_srv_host.so"))
                 if os.path.exists(m)), "")


def assert_ran_where_expected(info, binary):
    """In the interpreter when srv's module is installed for the binary
    (handover.h), else in the binary's own libpython."""
    handed = host_module(binary) != ""
    assert (info["exe"] != os.path.realpath(binary)) == handed, (info["exe"], binary)


def assert_in_venv(info, venv):
    assert_ran_where_expected(info, os.environ["SRV_BIN"])
    assert info["prefix"] == str(venv)
    assert info["executable"] == str(venv / "bin" / "python")
    assert info["marker"] and info["marker"].startswith(str(venv) + os.sep)
    assert info["base_prefix"] != str(venv)
    assert info["srv_builtin"], "`import srv` must be srv's built-in module"


MODULE = host_module(srv_bin())


@pytest.fixture(params=["embedded", "handed-over"])
def outside_binary(request, tmp_path):
    """A copy of srv in a directory that is no virtualenv's bin/: alone, so
    that it runs in its own libpython, or with _srv_host.so beside it, so
    that it hands the process to the virtualenv's python (handover.h)."""
    p = tmp_path / "srv"
    shutil.copy2(srv_bin(), p)
    if request.param == "handed-over":
        if not os.path.exists(MODULE):
            pytest.skip("built without _srv_host.so")
        shutil.copy2(MODULE, tmp_path / "_srv_host.so")
    return str(p)


def test_virtualenv_flag(server_factory, venv, outside_binary, monkeypatch):
    monkeypatch.setenv("SRV_BIN", outside_binary)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    s = server_factory("venv_app:app", "--mode", "native", "--virtualenv", str(venv))
    assert_in_venv(served(s), venv)


def test_virtual_env_variable(server_factory, venv, outside_binary, monkeypatch):
    monkeypatch.setenv("SRV_BIN", outside_binary)
    s = server_factory("venv_app:app", "--mode", "native", env={"VIRTUAL_ENV": str(venv)})
    assert_in_venv(served(s), venv)


@pytest.mark.parametrize("module", ["embedded", "handed-over"])
def test_binary_in_the_venvs_bin(server_factory, venv, monkeypatch, module):
    """Where `pip install` puts srv: DIR/bin/srv, and _srv_host.so in
    DIR/lib/srv/ (handed over to DIR/bin/python), or no module."""
    inside = venv / "bin" / "srv"
    shutil.copy2(srv_bin(), inside)
    lib = venv / "lib" / "srv"
    shutil.rmtree(lib, ignore_errors=True)
    if module == "handed-over":
        if not os.path.exists(MODULE):
            pytest.skip("built without _srv_host.so")
        lib.mkdir(parents=True)
        shutil.copy2(MODULE, lib / "_srv_host.so")
    monkeypatch.setenv("SRV_BIN", str(inside))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    s = server_factory("venv_app:app", "--mode", "native")
    assert_in_venv(served(s), venv)


def test_no_virtualenv_is_the_system_python(server_factory, outside_binary, monkeypatch):
    monkeypatch.setenv("SRV_BIN", outside_binary)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    s = server_factory("venv_app:app", "--mode", "native")
    info = served(s)
    assert info["marker"] is None
    assert info["prefix"] == info["base_prefix"]


def test_virtualenv_flag_not_a_venv(tmp_path):
    r = run_srv(["--app", "venv_app:app", "--virtualenv", str(tmp_path)])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "srv: error: --virtualenv %s: no pyvenv.cfg there, not a virtualenv" % tmp_path]


def test_virtualenv_of_another_python(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.99.1\n")
    r = run_srv(["--app", "venv_app:app", "--virtualenv", str(tmp_path)])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "made with Python 3.99, but srv embeds Python %s" % PY_VERSION in lines[0]


def test_python_dash_m_srv_runs_the_installed_binary(tmp_path):
    """`python -m srv` (the package `pip install .` installs) execs the srv
    binary installed next to that Python: same version line, same usage
    errors.  Skipped where srv was not installed by pip (a CMake build)."""
    import importlib.util
    spec = importlib.util.find_spec("srv")
    if spec is None or spec.origin is None:
        pytest.skip("srv is not pip-installed for this Python")
    r = subprocess.run([sys.executable, "-m", "srv", "--version"],
                       capture_output=True, text=True, timeout=30)
    mine = subprocess.run([srv_bin(), "--version"], capture_output=True, text=True,
                          timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == mine.stdout and r.stdout.startswith("srv ")
    r = subprocess.run([sys.executable, "-m", "srv", "--no-such-flag"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_virtual_env_of_another_python_is_not_used(server_factory, tmp_path, outside_binary,
                                                   monkeypatch):
    """An activated venv of another Python is ignored, with a warning: its
    site-packages could not be imported by the Python srv embeds."""
    other = tmp_path / "other-venv"
    other.mkdir()
    (other / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.99.1\n")
    monkeypatch.setenv("SRV_BIN", outside_binary)
    s = server_factory("venv_app:app", "--mode", "native", env={"VIRTUAL_ENV": str(other)})
    info = served(s)
    assert info["prefix"] == info["base_prefix"] != str(other)
    # once: not again from the interpreter srv handed the process to
    assert s.stderr_text().count("$VIRTUAL_ENV %s was made with Python 3.99" % other) == 1
