"""Throwaway database servers for the tests and bench/run.

Owns starting and stopping real PostgreSQL, Redis and MariaDB servers, each
in its own temporary directory, reachable only locally (PostgreSQL and
MariaDB on a unix socket in that directory, Redis on 127.0.0.1), with every
start bounded in time and every stop certain (TERM, then KILL to the
server's whole process group, then the directory removed).

PostgreSQL and MariaDB refuse to run as root; when we are root the servers
run as the unprivileged user ``nobody`` (its directory is chowned to it).

    with dbservers.postgres(max_connections=300) as pg:
        psycopg2.connect(pg.dsn)

A server whose binaries are not installed raises ``Unavailable`` (the tests
skip on it); one that is installed but does not come up raises
``StartError`` with the tail of its log (the tests fail on it).
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

RUN_AS = "nobody"
START_TIMEOUT = 60.0
INIT_TIMEOUT = 120.0
STOP_GRACE = 10.0


class Unavailable(Exception):
    """The server's binaries are not installed."""


class StartError(Exception):
    """The server is installed but did not come up in time."""


def _as_root():
    return os.geteuid() == 0


def _user_kw():
    """subprocess keyword arguments that drop root for the server."""
    if not _as_root():
        return {}
    pw = pwd.getpwnam(RUN_AS)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _make_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    if _as_root():
        pw = pwd.getpwnam(RUN_AS)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def _env(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PG", "MYSQL", "REDIS"))}
    env["HOME"] = home
    env["LC_ALL"] = "C"
    return env


def _log_tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:])


def _run(argv, home, log, timeout):
    """Runs a set-up command (initdb, ...) as the server user, bounded."""
    with open(log, "ab") as out:
        try:
            r = subprocess.run(argv, cwd=home, env=_env(home), stdout=out,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout,
                               start_new_session=True, **_user_kw())
        except subprocess.TimeoutExpired:
            raise StartError("%s did not finish within %.0fs: %s"
                             % (argv[0], timeout, _log_tail(log))) from None
    if r.returncode != 0:
        raise StartError("%s failed with status %d: %s"
                         % (argv[0], r.returncode, _log_tail(log)))


class DbServer:
    """One running server process (the leader of its own process group)."""

    def __init__(self, kind, home, argv, log, stop_signal=signal.SIGTERM):
        self.kind = kind
        self.home = home
        self.log = log
        self.stop_signal = stop_signal
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, cwd=home, env=_env(home), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **_user_kw())

    def wait_ready(self, ready, timeout=START_TIMEOUT):
        """Polls ready() until it is true; StartError if the server exits or
        the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StartError("%s exited with status %s while starting: %s"
                                 % (self.kind, self.proc.returncode,
                                    _log_tail(self.log)))
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartError("%s not ready within %.0fs: %s"
                                 % (self.kind, timeout, _log_tail(self.log)))
            time.sleep(0.1)

    def log_tail(self):
        return _log_tail(self.log)

    def stop(self):
        """Stops the server (its whole process group) for certain."""
        pgid = self.proc.pid  # start_new_session: the group is ours alone
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


@contextlib.contextmanager
def _lifetime(prefix, start):
    """A temporary directory, the server start() makes in it, and the
    certain clean-up of both."""
    home = _make_dir(prefix)
    server = None
    try:
        server = start(home)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------- PostgreSQL

def postgres_bindir():
    """The newest /usr/lib/postgresql/N/bin with initdb and postgres."""
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    dirs = [d for d in dirs if os.access(os.path.join(d, "initdb"), os.X_OK)
            and os.access(os.path.join(d, "postgres"), os.X_OK)]
    if not dirs:
        return None
    return max(dirs, key=lambda d: int(d.split("/")[-2].split(".")[0]))


class Postgres(DbServer):
    port = 5432  # only names the socket file: no TCP listener

    @property
    def dsn(self):
        return "host=%s port=%d dbname=postgres user=postgres" % (
            self.home, self.port)


def _pg_ready(bindir, home, port):
    def ready():
        r = subprocess.run([os.path.join(bindir, "pg_isready"), "-q", "-h",
                            home, "-p", str(port), "-t", "1"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        return r.returncode == 0
    return ready


def postgres(max_connections=300):
    """Context manager: a PostgreSQL server on a unix socket in its own
    directory (trust authentication, user and database ``postgres``, no
    fsync: nothing here needs to survive)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise Unavailable("PostgreSQL is not installed (no initdb/postgres "
                          "under /usr/lib/postgresql/*/bin; apt-get install "
                          "postgresql)")

    def start(home):
        data = os.path.join(home, "data")
        log = os.path.join(home, "postgres.log")
        _run([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust",
              "-U", "postgres", "-E", "UTF8", "--no-sync"], home, log,
             INIT_TIMEOUT)
        pg = Postgres("postgres", home, [
            os.path.join(bindir, "postgres"), "-D", data, "-k", home,
            "-p", str(Postgres.port),
            "-c", "listen_addresses=",
            "-c", "max_connections=%d" % max_connections,
            "-c", "shared_buffers=16MB",
            "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "logging_collector=off"], log, stop_signal=signal.SIGINT)
        try:
            pg.wait_ready(_pg_ready(bindir, home, Postgres.port))
        except BaseException:
            pg.stop()
            raise
        return pg

    return _lifetime("srv-pg.", start)


# --------------------------------------------------------------------- Redis

class Redis(DbServer):
    host = "127.0.0.1"
    port = None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_ready(port):
    def ready():
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    return ready


def redis(maxclients=1000):
    """Context manager: a Redis server on 127.0.0.1 (a free port), no
    persistence."""
    exe = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
        else None)
    if exe is None:
        raise Unavailable("redis-server is not installed "
                          "(apt-get install redis-server)")

    def start(home):
        port = _free_port()
        log = os.path.join(home, "redis.log")
        r = Redis("redis", home, [
            exe, "--bind", "127.0.0.1", "--port", str(port),
            "--dir", home, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--maxclients", str(maxclients),
            "--logfile", ""], log)
        r.port = port
        try:
            r.wait_ready(_redis_ready(port))
        except BaseException:
            r.stop()
            raise
        return r

    return _lifetime("srv-redis.", start)


# ------------------------------------------------------------------- MariaDB

class MariaDB(DbServer):
    @property
    def socket(self):
        return os.path.join(self.home, "mysqld.sock")


def _mariadb_ready(path):
    def ready():
        # the server's greeting (protocol version 10) once it accepts
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(path)
            head = s.recv(5)
            return len(head) == 5 and head[4] == 10
    return ready


def _find(names):
    for n in names:
        p = shutil.which(n, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
        if p:
            return p
    return None


def mariadb(max_connections=300):
    """Context manager: a MariaDB server on a unix socket in its own
    directory, networking off, user root with an empty password."""
    mysqld = _find(["mariadbd", "mysqld"])
    install = _find(["mariadb-install-db", "mysql_install_db"])
    if mysqld is None or install is None:
        raise Unavailable("MariaDB is not installed (no mariadbd / "
                          "mariadb-install-db; apt-get install mariadb-server)")

    def start(home):
        data = os.path.join(home, "data")
        log = os.path.join(home, "mariadb.log")
        _run([install, "--no-defaults", "--datadir=" + data,
              "--auth-root-authentication-method=normal", "--skip-test-db",
              "--skip-name-resolve"], home, log, INIT_TIMEOUT)
        m = MariaDB("mariadb", home, [
            mysqld, "--no-defaults", "--datadir=" + data,
            "--socket=" + os.path.join(home, "mysqld.sock"),
            "--pid-file=" + os.path.join(home, "mysqld.pid"),
            "--skip-networking", "--skip-name-resolve",
            "--max-connections=%d" % max_connections,
            "--innodb-buffer-pool-size=16M"], log)
        try:
            m.wait_ready(_mariadb_ready(m.socket))
        except BaseException:
            m.stop()
            raise
        return m

    return _lifetime("srv-mariadb.", start)
