"""What the bench scripts read from /proc, in one place: free ports,
process trees, their CPU time and memory, and how busy each CPU is; and
whether uWSGI, a peer of both, is installed with the plugins it needs.
Imported by bench/ws_echo.py and bench/longpoll.py (run from bench/)."""
import os
import shutil
import socket

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uwsgi_missing(plugins):
    """Why uwsgi with these plugins (e.g. "python3", "gevent_python3")
    cannot run here, or None."""
    if shutil.which("uwsgi") is None:
        return "uwsgi not installed"
    for p in plugins:
        if not os.path.exists("/usr/lib/uwsgi/plugins/%s_plugin.so" % p):
            return "uwsgi plugin %s not installed" % p
    return None


def status_kib(pid, key):
    """A "<key>: N kB" line of /proc/PID/status (VmRSS, VmHWM), or 0."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """The direct children of pid, forked from any of its threads."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_pids(root):
    """root and all its descendants."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children(pid))
    return out


def proc_cpu_s(pid, reaped_children=False):
    """utime+stime of pid in seconds (plus cutime+cstime of the children it
    has reaped, if asked), or 0."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15 if reaped_children else 13]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_busy_s(cpu="cpu0"):
    """user+nice+system+steal seconds of one CPU ("cpu0") or of all ("cpu"),
    irq/softirq left out; None if /proc/stat cannot say."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(cpu + " "):
                    v = [int(x) for x in line.split()[1:]]
                    return (v[0] + v[1] + v[2] + v[7]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        pass
    return None
