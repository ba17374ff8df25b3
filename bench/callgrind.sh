#!/bin/sh
# Instructions per request on the hello-world hot path, counted by callgrind
# (repeatable on a noisy machine).  Runs srv's worker under callgrind twice,
# with N1 and N2 keep-alive requests (ab -k), and reports
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and shut-down cancel out.
#
#   bench/callgrind.sh [extra srv flags...]      (env: SRV_BIN, N1, N2, APP, CHDIR, KEEP, KEEPALIVE)
#
# APP (default hello:app) and CHDIR (default examples/) pick the app, e.g.
# APP=djangohello:app CHDIR=bench/apps; KEEP=DIR keeps the worker's callgrind
# file of the N2 run there (callgrind_annotate DIR/cg.N2).
#
# Python's string hashes are seeded at random per process, and where the
# environ's keys land in its table moves a count by up to ~250 instructions
# from run to run; the seed is fixed (PYTHONHASHSEED=0 unless set) so that
# two builds compare like for like.  What is left moves by about 1%: srv
# hands out the requests of a loop pass together (hub.c), so the count
# depends on how many of ab's requests share a pass; run it a few times.
set -eu
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${SRV_BIN:-$repo/build/srv}
N1=${N1:-2000}
N2=${N2:-12000}
APP=${APP:-hello:app}
CHDIR=${CHDIR:-$repo/examples}
KEEP=${KEEP:-}
KA=-k; [ "${KEEPALIVE:-1}" = 0 ] && KA=
tmp=$(mktemp -d /tmp/srv-callgrind.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

run() {  # requests -> prints the worker's total Ir
    n=$1; shift
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (cd "$CHDIR" && valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cg.%p" \
        "$bin" --app "$APP" --bind "127.0.0.1:$port" "$@" 2>"$tmp/log.$n") &
    vg=$!
    /usr/bin/python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if b"200 OK" in s.recv(4096):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("srv did not start under callgrind")
PY
    ab -q $KA -c 10 -n "$n" "http://127.0.0.1:$port/" > "$tmp/ab.$n"
    kill -TERM $vg
    wait $vg || true
    worker=$(ls -S "$tmp"/cg.* | head -1)
    total=$(grep -E "^(summary|totals):" "$worker" | head -1 | awk '{print $2}')
    if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$worker" "$KEEP/cg.$n"; fi
    rm -f "$tmp"/cg.*
    echo "$total"
}

i1=$(run "$N1" "$@")
i2=$(run "$N2" "$@")
echo "Ir($N1 requests) = $i1, Ir($N2 requests) = $i2"
echo "instructions per request: $(( (i2 - i1) / (N2 - N1) ))"
