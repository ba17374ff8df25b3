#!/usr/bin/env bash
# Hello-world throughput and CPU cost: srv vs gevent.pywsgi.
#
#   bench/hello.sh            (env: SRV_BIN, BENCH_DURATION=10, BENCH_CONNS=100)
#
# The server is pinned to CPU 0 and wrk to CPU 1 (when there are 2+ CPUs).
# CPU time per request is the server's utime+stime from /proc/PID/stat over
# the measured run divided by the requests wrk completed.
# `make bench` runs this with sh: re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SRV_BIN=${SRV_BIN:-$REPO/build/srv}
PY=/usr/bin/python3
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-100}
WARMUP=${BENCH_WARMUP:-2}
CLK_TCK=$(getconf CLK_TCK)

command -v wrk >/dev/null || { echo "hello.sh: wrk not installed" >&2; exit 1; }
[ -x "$SRV_BIN" ] || { echo "hello.sh: no srv binary at $SRV_BIN (set SRV_BIN)" >&2; exit 1; }

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_SRV="taskset -c 0"
    PIN_WRK="taskset -c 1"
else
    PIN_SRV=""
    PIN_WRK=""
    echo "note: fewer than 2 CPUs (or no taskset): not pinning" >&2
fi

TMP=$(mktemp -d /tmp/srv-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {  # pid port
    $PY - "$1" "$2" <<'PYEOF'
import os, socket, sys, time
pid, port = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("server exited before listening")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("server not listening after 10s")
PYEOF
}

cpu_ticks() {  # utime+stime of PID and its children (srv's master forks the workers)
    t=0
    for p in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo $t
}

# bench NAME PID PORT -> sets RPS, REQS, CPU_US
bench() {
    local name=$1 pid=$2 port=$3 out t0 t1
    wait_port "$pid" "$port"
    if [ "$WARMUP" != 0 ]; then
        $PIN_WRK wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/" >/dev/null
    fi
    t0=$(cpu_ticks "$pid")
    out=$($PIN_WRK wrk -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$port/")
    t1=$(cpu_ticks "$pid")
    echo "---- $name: wrk -t1 -c$CONNS -d${DUR}s"
    echo "$out"
    REQS=$(echo "$out" | awk '/ requests in /{print $1}')
    RPS=$(echo "$out" | awk '/^Requests\/sec:/{print $2}')
    if echo "$out" | grep -q "Non-2xx"; then
        echo "WARNING: $name returned non-2xx responses" >&2
    fi
    CPU_US=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$REQS" \
        'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1e6 / hz / n; else print "nan" }')
    printf '%s: %s req/s, %s requests, %s us CPU/request (server)\n\n' "$name" "$RPS" "$REQS" "$CPU_US"
}

# ---- srv
PORT=$(free_port)
$PIN_SRV "$SRV_BIN" --app hello:app --chdir "$REPO/examples" --bind "127.0.0.1:$PORT" \
    --log-level warning 2>"$TMP/srv.log" &
SRV_PID=$!
PIDS+=("$SRV_PID")
bench srv "$SRV_PID" "$PORT"
SRV_RPS=$RPS
SRV_CPU=$CPU_US
kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true

# ---- gevent.pywsgi
PORT=$(free_port)
$PIN_SRV $PY "$REPO/bench/peer_gevent.py" --port "$PORT" 2>"$TMP/gevent.log" &
GEV_PID=$!
PIDS+=("$GEV_PID")
bench gevent.pywsgi "$GEV_PID" "$PORT"
GEV_RPS=$RPS
GEV_CPU=$CPU_US
kill -TERM "$GEV_PID"; wait "$GEV_PID" 2>/dev/null || true

echo "==== summary"
printf '%-14s %12s %18s\n' server "req/s" "CPU us/request"
printf '%-14s %12s %18s\n' srv "$SRV_RPS" "$SRV_CPU"
printf '%-14s %12s %18s\n' gevent.pywsgi "$GEV_RPS" "$GEV_CPU"
awk -v a="$SRV_RPS" -v b="$GEV_RPS" -v c="$SRV_CPU" -v d="$GEV_CPU" 'BEGIN {
    if (b > 0) printf "throughput ratio srv/gevent: %.2fx\n", a / b
    if (c > 0) printf "CPU per request ratio gevent/srv: %.2fx\n", d / c
}'
