#!/bin/sh
# How evenly connections spread over workers: srv --workers 2 with the
# shared listening socket (default) and with --reuse-port, under
# wrk -t2 -c100 (keep-alive) and ab -c50 (a new connection per request).
# Reports req/s and each worker's share of the CPU time it used.
#
#   bench/spread.sh        (env: SRV_BIN, DURATION=8)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${SRV_BIN:-$repo/build/srv}
dur=${DURATION:-8}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

run() {   # label, load command, srv flags...
    label=$1; load=$2; shift 2
    (cd "$repo/examples" && exec "$bin" --app hello:app --bind "127.0.0.1:$port" --workers 2 "$@" 2>/dev/null) &
    m=$!
    sleep 2
    kids=$(cat /proc/$m/task/$m/children)
    set -- $kids
    a0=$(ticks $1); b0=$(ticks $2)
    out=$(sh -c "$load" 2>&1)
    a1=$(ticks $1); b1=$(ticks $2)
    kill -TERM $m; wait $m 2>/dev/null || true
    rate=$(echo "$out" | grep -E "Requests/sec|Requests per second" | awk '{print $(NF>3?4:2)}' | head -1)
    da=$((a1 - a0)); db=$((b1 - b0)); tot=$((da + db))
    [ $tot -gt 0 ] || tot=1
    echo "$label: $rate req/s; worker CPU split $((100 * da / tot))% / $((100 * db / tot))%"
}

url="http://127.0.0.1:$port/"
run "shared socket, keep-alive " "wrk -t2 -c100 -d${dur}s $url | grep Requests/sec"
run "reuse-port,    keep-alive " "wrk -t2 -c100 -d${dur}s $url | grep Requests/sec" --reuse-port
run "shared socket, new conns  " "ab -q -c50 -t $dur -n 1000000 $url | grep 'Requests per second'"
run "reuse-port,    new conns  " "ab -q -c50 -t $dur -n 1000000 $url | grep 'Requests per second'" --reuse-port
