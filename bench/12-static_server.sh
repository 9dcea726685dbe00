#!/usr/bin/env bash
# bench/12-static_server.sh - lesson 12: static_server against
# `python3 -m http.server`, serving the same 1 KiB file on loopback.
#
# Both servers start on port 0 in this run; wrk loads each in turn with
# the same settings (-t2 -c50 for BENCH_SECONDS, default 5) and we compare
# requests per second. Both close the connection after every response
# (python's handler speaks HTTP/1.0; static_server sends Connection:
# close), so this measures accept-serve-close, not keep-alive.
# Goal: static_server does at least 10x python's requests per second.
#
# Prints one tab-separated row for bench/run:
#     what  ours  peer-name  peer-result  ratio  goal  verdict
set -u
cd "$(dirname "$0")/.." || exit 2
: "${BENCH_SECONDS:=5}"

what="12 static_server: GET 1 KiB file, req/s (wrk -t2 -c50 ${BENCH_SECONDS}s)"
peer_name="python3 -m http.server"
goal=">= 10x"
prog=build/solutions/12-static-server/static_server

row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$what" "$1" "$peer_name" "$2" "$3" "$goal" "$4"; }
skip() {
    row - - - "not run: $1"
    exit 0
}

command -v wrk >/dev/null || skip "wrk is not installed (make deps)"
command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
[[ -x $prog ]] || skip "$prog is not built (make solutions)"

work=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir "$work/www"
head -c 1024 /dev/urandom >"$work/www/file.bin"

# wait_port FILE REGEX: waits up to 10 s for a line of FILE matching the
# extended REGEX, whose first group is the port; prints the port.
wait_port() {
    local i line
    for ((i = 0; i < 200; i++)); do
        line=$(grep -E -m1 -- "$2" "$1" 2>/dev/null) && [[ $line =~ $2 ]] && {
            echo "${BASH_REMATCH[1]}"
            return 0
        }
        sleep 0.05
    done
    return 1
}

# requests_per_second PORT: runs wrk against the file; prints req/s, or
# nothing if wrk failed or saw errors in more than 1% of the responses.
requests_per_second() {
    local out rps non2xx
    out=$(timeout $((BENCH_SECONDS + 30)) wrk -t2 -c50 -d"${BENCH_SECONDS}s" "http://127.0.0.1:$1/file.bin" 2>&1) || return 0
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n $rps ]] || return 0
    if [[ -n $non2xx ]] && awk -v n="$non2xx" -v r="$rps" -v s="$BENCH_SECONDS" 'BEGIN { exit !(n > r * s / 100) }'; then
        echo "bench: $non2xx responses were not 2xx on port $1" >&2
        return 0
    fi
    printf '%.0f' "$rps"
}

"$prog" -p 0 -d "$work/www" >"$work/ours.out" 2>"$work/ours.err" &
pids+=($!)
ours_port=$(wait_port "$work/ours.out" '^listening on .*:([0-9]+)$') || skip "static_server did not start: $(head -1 "$work/ours.err")"

python3 -u -m http.server --bind 127.0.0.1 --directory "$work/www" 0 >"$work/py.out" 2>"$work/py.err" &
pids+=($!)
py_port=$(wait_port "$work/py.out" ' port ([0-9]+) ') || skip "python3 -m http.server did not start: $(head -1 "$work/py.err")"

ours=$(requests_per_second "$ours_port")
theirs=$(requests_per_second "$py_port")
[[ -n $ours ]] || skip "wrk failed against static_server"
[[ -n $theirs && $theirs != 0 ]] || skip "wrk failed against python3 -m http.server"

ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.1fx", a / b }')
verdict=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { print (a >= 10 * b ? "ok" : "BELOW GOAL") }')
row "$ours" "$theirs" "$ratio" "$verdict"
