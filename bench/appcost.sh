#!/bin/sh
# What one request of an app costs in user-space instructions (callgrind),
# split three ways, so that srv's own share shows apart from the app's:
#
#   served   per request served by srv (bench/callgrind.sh: ab -k -c10)
#   in srv   per call of bench/baseline.py's in-process loop, run inside
#            srv's worker (bench/apps/inproc.py): the app alone, in the
#            interpreter srv runs it in (the one srv hands the process to,
#            or with --embedded-python the libpython srv links)
#   python   per call of the same loop under $PYTHON (default /usr/bin/python3)
#
#   srv's own work per request  = served - in srv
#   what srv's worker adds to the app's own cost = in srv - python: the
#   interpreter's build, and the worker's set-up (gevent mode's patching)
#
#   APP=flaskhello:app bench/appcost.sh [srv flags, e.g. --mode native]
#   (env: APP, SRV_BIN, PYTHON, N1, N2; default APP=hello:app, N1=500, N2=3000)
#
# Each figure is (Ir(N2) - Ir(N1)) / (N2 - N1), with PYTHONHASHSEED=0; the
# three runs go one after the other (about 2 minutes for Flask, 4 for Django).
set -eu
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${SRV_BIN:-$repo/build/srv}
PY=${PYTHON:-/usr/bin/python3}
APP=${APP:-hello:app}
N1=${N1:-500}
N2=${N2:-3000}
apps=$repo/bench/apps
tmp=$(mktemp -d /tmp/srv-appcost.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

total() { grep -E "^(summary|totals):" "$1" | head -1 | awk '{print $2}'; }

inside_srv() {  # calls -> the worker's total Ir for one request making that many calls
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (cd "$apps" && SRV_INPROC_APP="$APP" valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/in.%p" \
        "$bin" --app inproc:app --bind "127.0.0.1:$port" "$@" 2>"$tmp/log") &
    vg=$!
    ok=
    for _ in $(seq 600); do
        if curl -sf "http://127.0.0.1:$port/?0" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    [ -n "$ok" ] || { cat "$tmp/log" >&2; echo "appcost: srv did not start under callgrind" >&2; exit 1; }
    curl -sf "http://127.0.0.1:$port/?$calls" >/dev/null
    kill -TERM $vg
    wait $vg || true
    w=$(ls -S "$tmp"/in.* | head -1)
    total "$w"
    rm -f "$tmp"/in.*
}

under_python() {  # calls -> Ir of the whole process
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/py.out" \
        "$PY" "$repo/bench/baseline.py" --app "$APP" --chdir "$apps" --calls "$calls" >/dev/null 2>"$tmp/log" \
        || { cat "$tmp/log" >&2; exit 1; }
    total "$tmp/py.out"
}

per() { echo $(( ($2 - $1) / (N2 - N1) )); }

served=$(APP=$APP CHDIR=$apps N1=$N1 N2=$N2 SRV_BIN=$bin sh "$repo/bench/callgrind.sh" "$@" | tail -1 | awk '{print $NF}')
calls=$N1; a=$(inside_srv "$@"); calls=$N2; b=$(inside_srv "$@")
insrv=$(per "$a" "$b")
calls=$N1; a=$(under_python); calls=$N2; b=$(under_python)
python=$(per "$a" "$b")
echo "$APP $*: served $served, in srv $insrv, under $PY $python instructions per request/call"
echo "srv's own work per request: $((served - insrv)); the worker's interpreter and set-up add to the app: $((insrv - python)) ($(awk "BEGIN { printf \"%.1f\", ($insrv - $python) * 100 / $python }")%)"
