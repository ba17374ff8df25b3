"""The Debian package (`make deb`, packaging/deb.cmake): built here from
the source tree into a temporary directory (or $SRV_DEB, a .deb built
already), then checked: control fields, file list, man page, systemd
units, lintian's errors (when lintian is installed), and the extracted
/usr/bin/srv serving a request."""

import http.client
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import APPS_DIR, REPO, _can_connect, free_port

TOOLS = ("cmake", "cpack", "dpkg-deb", "dpkg", "help2man")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw).stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    given = os.environ.get("SRV_DEB")
    if given:
        return given
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip("cannot build the package without %s (apt-get install cmake dpkg-dev "
                    "help2man)" % ", ".join(missing))
    build = tmp_path_factory.mktemp("build-deb")
    run(["cmake", "-S", str(REPO), "-B", str(build), "-DSRV_PYTHON=/usr/bin/python3",
         "-DSRV_DEB=ON", "-DCMAKE_INSTALL_PREFIX=/usr"])
    run(["cmake", "--build", str(build), "-j", "2"])
    run(["cpack", "-G", "DEB"], cwd=str(build))
    debs = [p for p in os.listdir(str(build)) if p.endswith(".deb")]
    assert len(debs) == 1, debs
    return str(build / debs[0])


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory):
    r = tmp_path_factory.mktemp("root")
    run(["dpkg-deb", "-x", deb, str(r)])
    return r


def field(deb, name):
    return run(["dpkg-deb", "-f", deb, name]).strip()


def test_control_fields(deb):
    arch = run(["dpkg", "--print-architecture"]).strip()
    version = field(deb, "Version")
    assert os.path.basename(deb) == "srv_%s_%s.deb" % (version, arch)
    assert field(deb, "Package") == "srv"
    assert field(deb, "Architecture") == arch
    depends = [d.strip().split(" ")[0] for d in field(deb, "Depends").split(",")]
    libpython = "libpython%d.%d" % sys.version_info[:2]
    for name in ("libc6", "libev4", libpython, "python3-greenlet"):
        assert name in depends, (name, depends)
    assert field(deb, "Recommends") == "python3-gevent"
    assert field(deb, "Maintainer")
    assert field(deb, "Description")


def test_file_list(deb):
    listing = run(["dpkg-deb", "-c", deb])
    entries = {}
    for line in listing.splitlines():
        parts = line.split()
        entries[parts[-1]] = parts[0]
    assert entries.get("./usr/bin/srv") == "-rwxr-xr-x"
    for path in ("./usr/share/man/man1/srv.1.gz",
                 "./lib/systemd/system/srv@.service",
                 "./lib/systemd/system/srv@.socket",
                 "./usr/share/doc/srv/copyright",
                 "./usr/share/doc/srv/examples/example.conf"):
        assert entries.get(path) == "-rw-r--r--", (path, entries.get(path))
    assert entries.get("./etc/srv/") == "drwxr-xr-x"
    # Nothing in the build tree's or /usr/local's places.
    assert not [p for p in entries if p.startswith("./usr/local") or "/build" in p]


def test_man_page_is_generated_from_help(root):
    with gzip.open(str(root / "usr/share/man/man1/srv.1.gz"), "rt") as f:
        page = f.read()
    assert re.search(r'^\.TH SRV "1"', page, re.M), page[:300]
    for text in (r"\-\-config", r"\-\-check\-config", r"\-\-max\-body", "CONFIGURATION FILE",
                 "SIGNALS", "/etc/srv/NAME.conf"):
        assert text in page, text


def test_example_config_parses(root):
    """Its only problems are its placeholders (/srv/myapp, myapp.wsgi)."""
    example = str(root / "usr/share/doc/srv/examples/example.conf")
    r = subprocess.run([str(root / "usr/bin/srv"), "--check-config", "--config", example],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"srv: error: (--chdir /srv/myapp: .*|cannot import module .*)", last), last


def test_systemd_units(root):
    unit_dir = root / "lib/systemd/system"
    service = (unit_dir / "srv@.service").read_text()
    assert "\nExecStart=/usr/bin/srv --config /etc/srv/%i.conf\n" in service
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in service
    socket_unit = (unit_dir / "srv@.socket").read_text()
    assert re.search(r"^ListenStream=/run/srv/%i\.sock$", socket_unit, re.M)


def test_lintian_finds_no_errors(deb):
    lintian = shutil.which("lintian")
    if lintian is None:
        pytest.skip("lintian is not installed (apt-get install lintian)")
    r = subprocess.run([lintian, "--no-tag-display-limit", deb], capture_output=True,
                       text=True, timeout=120)
    tags = [line for line in r.stdout.splitlines() if re.match(r"[EW]: ", line)]
    print("\n".join(tags))
    errors = [t for t in tags if t.startswith("E: ")]
    assert not errors, "\n".join(errors)


def test_extracted_binary_runs_and_serves(root, tmp_path):
    srv = str(root / "usr/bin/srv")
    out = run([srv, "--version"])
    assert re.fullmatch(r"srv \d+\.\d+\.\d+\n", out), out
    port = free_port()
    conf = tmp_path / "app.conf"
    conf.write_text("app = hello:app\nchdir = %s\nbind = 127.0.0.1:%d\nmode = native\n"
                    % (APPS_DIR, port))
    r = subprocess.run([srv, "--check-config", "--config", str(conf)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.Popen([srv, "--config", str(conf)], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not _can_connect(("127.0.0.1", port)):
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, "the packaged srv did not listen"
            time.sleep(0.05)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        resp = c.getresponse()
        body = resp.read()
        c.close()
        assert resp.status == 200, (resp.status, body)
        assert resp.getheader("Server") == "srv"
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(15) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
