#!/usr/bin/env bash
# bench/13-http_fetch.sh - lesson 13's http_fetch against curl: one 512 MiB
# download from a local server, each client writing to /dev/null.
#
# The server is neither client's: a few lines of python that answer every
# request with the file through sendfile(2), so the kernel does the sending
# and the clients are what we measure (python's http.server copies through
# user space: about half as fast here, it would be the bottleneck). The
# file is sparse, in /dev/shm when there is one: no disk, no page cache
# misses.
#
# Each client runs BENCH_ROUNDS times (3), interleaved, under
# /usr/bin/time (wall seconds, max RSS KiB, user + system CPU seconds); we
# keep the best of each. Rows (tab-separated, see bench/run):
#     what  ours  peer-name  peer-result  ratio  goal  verdict
# Goals: wall <= 1.2x curl's; max RSS no more than curl's. The CPU row has
# the same goal as wall: on a busy machine wall times of ~0.1 s are mostly
# scheduling noise (best of 3 can flip), while CPU time still says which
# client does less work. BENCH_ROUNDS=7 steadies the wall figure.
set -u
cd "$(dirname "$0")/.." || exit 2
: "${BENCH_ROUNDS:=3}"
SIZE_MIB=512
PROG=build/solutions/13-http-client-2/http_fetch
WHAT="13 http_fetch: ${SIZE_MIB} MiB download"

cannot() {
    printf '%s\t-\tcurl\t-\t-\t-\tnot run: %s\n' "$WHAT" "$1"
    exit 0
}

[[ -x $PROG ]] || cannot "$PROG is not built (make solutions)"
command -v curl >/dev/null || cannot "curl is missing (make deps)"
command -v python3 >/dev/null || cannot "python3 is missing (make deps)"
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%e %M %U %S' true 2>/dev/null; then
    cannot "GNU time is missing (apt-get install time)"
fi

base=/dev/shm
[[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/bench13.XXXXXX") || cannot "mktemp failed"
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

python3 -c 'import sys; open(sys.argv[1], "wb").truncate(int(sys.argv[2]) << 20)' \
    "$dir/big" "$SIZE_MIB" || cannot "cannot create the test file"

# The server: one thread a connection; reads the request head, sends a
# Content-Length head and the file with sendfile, closes.
cat >"$dir/server.py" <<'EOF'
import os, socket, sys, threading
path = sys.argv[1]
head = ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % os.path.getsize(path)).encode()
lsock = socket.create_server(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % lsock.getsockname()[1], flush=True)
def serve(conn):
    with conn:
        req = b""
        while b"\r\n\r\n" not in req:
            data = conn.recv(65536)
            if not data:
                return
            req += data
        conn.sendall(head)
        with open(path, "rb") as f:
            conn.sendfile(f)
while True:
    conn, _ = lsock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
python3 -S "$dir/server.py" "$dir/big" >"$dir/server.out" 2>&1 3>&- &
server_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/server.out")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
[[ -n $port ]] || cannot "the sendfile server did not start: $(head -c 200 "$dir/server.out")"
url=http://127.0.0.1:$port/big

# Both clients must really receive every byte before their times mean
# anything (the sparse file makes the transfer fast: its pages are all
# the same cached zero page, so it measures the clients, not the disk).
want=$((SIZE_MIB << 20))
got_curl=$(curl -s -o /dev/null -w '%{size_download}' "$url")
got_ours=$("$PROG" "$url" | wc -c | tr -d ' ')
if [[ $got_curl != "$want" || $got_ours != "$want" ]]; then
    printf '%s	-	curl	-	-	-	FAILED: expected %s bytes, curl got %s, http_fetch got %s\n' \
        "$WHAT" "$want" "$got_curl" "$got_ours"
    exit 1
fi

# measure NAME CMD...: one timed run; appends "WALL RSS CPU" to
# $dir/NAME, or "fail" if the client failed.
measure() {
    local name=$1
    shift
    if /usr/bin/time -f '%e %M %U %S' -o "$dir/t" "$@" >/dev/null 2>"$dir/$name.err"; then
        tail -1 "$dir/t" | awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' >>"$dir/$name"
    else
        echo fail >>"$dir/$name"
    fi
}
for _ in $(seq "$BENCH_ROUNDS"); do
    measure curl curl -s -S -o /dev/null "$url"
    measure ours "$PROG" -o /dev/null "$url"
done

# best NAME: "WALL RSS CPU" (lowest of each), or "fail".
best() {
    if grep -q fail "$dir/$1"; then echo fail; return; fi
    awk 'NR == 1 || $1 < w { w = $1 } NR == 1 || $2 < r { r = $2 } NR == 1 || $3 < c { c = $3 }
         END { print w, r, c }' "$dir/$1"
}
read -r ours_wall ours_rss ours_cpu <<<"$(best ours)"
read -r curl_wall curl_rss curl_cpu <<<"$(best curl)"
if [[ $ours_wall == fail || $curl_wall == fail ]]; then
    printf '%s\t%s\tcurl\t%s\t-\t-\tFAILED: %s\n' "$WHAT" "$ours_wall" "$curl_wall" \
        "$(cat "$dir/ours.err" "$dir/curl.err" | head -c 200 | tr '\n\t' '  ')"
    exit 1
fi

# row LABEL OURS PEER UNIT LIMIT GOAL: ratio ours/peer, verdict against LIMIT.
row() {
    local label=$1 ours=$2 peer=$3 unit=$4 limit=$5 goal=$6
    awk -v w="$WHAT, $label" -v o="$ours" -v p="$peer" -v u="$unit" -v l="$limit" -v g="$goal" 'BEGIN {
        # 10 ms is /usr/bin/time resolution: never divide by zero.
        r = o / (p > 0 ? p : 0.01)
        printf "%s\t%s %s\tcurl\t%s %s\t%.2fx\t%s\t%s\n", w, o, u, p, u, r, g, (r <= l ? "ok" : "MISSED")
    }'
}
row "wall, best of $BENCH_ROUNDS" "$ours_wall" "$curl_wall" s 1.2 "<= 1.2x curl"
row "max RSS" "$ours_rss" "$curl_rss" KiB 1.0 "<= 1.0x curl"
row "CPU user+sys, best of $BENCH_ROUNDS" "$ours_cpu" "$curl_cpu" s 1.2 "<= 1.2x curl"
