"""`python -m srv ARGS`: runs the srv executable installed with this package
(the same binary as `srv ARGS`), replacing this process."""
import os
import sys
import sysconfig


def executable():
    dirs = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    try:
        dirs.append(sysconfig.get_path("scripts", "%s_user" % os.name))
    except KeyError:
        pass
    for d in dirs:
        p = os.path.join(d, "srv")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def main():
    exe = executable()
    if exe is None:
        sys.stderr.write("srv: error: the srv executable is not installed next to %s\n"
                         % sys.executable)
        sys.exit(2)
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
