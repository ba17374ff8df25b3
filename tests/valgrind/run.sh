#!/bin/sh
# make test-valgrind: a short mixed load against srv under memcheck.
# Fails if memcheck reports any error outside the suppressed CPython noise.
# --embedded-python: srv stays in the process memcheck watches, in its own
# libpython, instead of handing it over to the interpreter (handover.h).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${SRV_BIN:-$repo/build/srv}
log=$(mktemp /tmp/srv-valgrind.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cd "$repo/tests/apps"
PYTHONMALLOC=malloc valgrind --suppressions="$here/python.supp" --num-callers=40 \
    --error-limit=no --leak-check=no "$bin" --app echo:app --bind "127.0.0.1:$port" --embedded-python \
    2>"$log" &
vg=$!
trap 'kill $vg 2>/dev/null || true' EXIT
/usr/bin/python3 "$here/load.py" "$port"
kill -TERM $vg
wait $vg || true
trap - EXIT
errors=$(grep -E "ERROR SUMMARY: [0-9]+" "$log" | sed -E 's/.*ERROR SUMMARY: ([0-9]+).*/\1/' | sort -n | tail -1)
grep "ERROR SUMMARY" "$log"
if [ "${errors:-1}" != 0 ]; then
    echo "memcheck found errors; log: $log" >&2
    exit 1
fi
rm -f "$log"
echo "valgrind: 0 errors"
