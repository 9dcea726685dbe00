#!/usr/bin/env bash
# bench/14-http_server.sh - lesson 14's http_server against nginx and
# python's http.server, measured in one run on loopback with wrk
# (2 threads, 50 keep-alive connections, BENCH_SECONDS each):
#   - a 13-byte file and a 1 MiB file, ours vs nginx (1 worker, sendfile
#     on, access_log off, same files, started here from its own config);
#   - the 13-byte file, ours vs python3 -m http.server;
#   - ours again while 10,000 idle keep-alive connections are held open:
#     its RSS, and the throughput it keeps.
# Prints tab-separated rows for bench/run. Every server is started on
# 127.0.0.1 and killed on exit.
set -u
cd "$(dirname "$0")/.." || exit 2
secs=${BENCH_SECONDS:-5}
server=build/solutions/14-event-server/http_server

row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
PATH=$PATH:/usr/sbin:/usr/local/sbin # where Debian and brew put nginx
for tool in wrk nginx python3; do
    if ! command -v "$tool" >/dev/null; then
        row "http_server" "-" "$tool" "missing" "-" "-" "skipped: run make deps (bench tools)"
        exit 0
    fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# nginx's worker runs as an unprivileged user: it must be able to read.
chmod 755 "$tmp"
mkdir -p "$tmp/www"
printf 'Hello, world!' >"$tmp/www/hello.txt"
head -c 1048576 /dev/urandom >"$tmp/www/1m.bin"
chmod 644 "$tmp/www"/*

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: until something accepts there (10 s at most).
wait_port() {
    local i
    for i in $(seq 200); do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# rps URL: wrk's requests per second (integer); 0 if any response was not
# a 2xx/3xx (a fast 403 is not a fast server). Socket errors alone do not
# count: python's HTTP/1.0 server closes every connection, and wrk calls
# that a read error.
rps() {
    wrk -t2 -c50 -d"${secs}s" "$1" 2>/dev/null | awk '
        /^Requests\/sec:/ { r = $2 }
        /Non-2xx or 3xx responses/ { bad = 1 }
        END { printf "%d", bad ? 0 : r }'
}

# best_of_two URL_A URL_B: measures A, B, A, B (the machine is shared and
# noisy: interleaving spreads the noise over both), prints "bestA bestB".
best_of_two() {
    local a1 b1 a2 b2
    a1=$(rps "$1"); b1=$(rps "$2"); a2=$(rps "$1"); b2=$(rps "$2")
    echo "$((a1 > a2 ? a1 : a2)) $((b1 > b2 ? b1 : b2))"
}

# check_url URL SIZE: 200 and exactly SIZE bytes, or the bench stops.
check_url() {
    local got
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$1")
    if [[ $got != "200 $2" ]]; then
        row "$1" "-" "-" "-" "-" "-" "FAILED: expected '200 $2', got '$got'"
        exit 1
    fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
verdict() { awk -v a="$1" -v b="$2" -v g="$3" 'BEGIN { print (b > 0 && a / b >= g) ? "ok" : "MISSED" }'; }

# ours
: >"$tmp/ours.out"
"$server" -p 0 -d "$tmp/www" >"$tmp/ours.out" 2>"$tmp/ours.err" &
ours_pid=$!
pids+=("$ours_pid")
for _ in $(seq 100); do grep -q '^listening on' "$tmp/ours.out" && break; sleep 0.05; done
ours=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/ours.out")

# nginx: one worker, its own config, an ordinary foreground process
nport=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
worker_rlimit_nofile 30000;
events { worker_connections 20000; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { text/plain txt; application/octet-stream bin; }
    server { listen 127.0.0.1:$nport; root $tmp/www; }
}
CONF
nginx -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" 2>>"$tmp/nginx/error.log" &
pids+=($!)

pport=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$pport" >/dev/null 2>&1 &
pids+=($!)

if ! wait_port "$ours" || ! wait_port "$nport" || ! wait_port "$pport"; then
    row "http_server" "-" "nginx/python" "did not start" "-" "-" "FAILED: $(tail -2 "$tmp/nginx/error.log" "$tmp/ours.err" | tr '\n' ' ')"
    exit 1
fi

for port in "$ours" "$nport" "$pport"; do
    check_url "http://127.0.0.1:$port/hello.txt" 13
    check_url "http://127.0.0.1:$port/1m.bin" 1048576
done
read -r small_ours small_nginx < <(best_of_two "http://127.0.0.1:$ours/hello.txt" "http://127.0.0.1:$nport/hello.txt")
read -r big_ours big_nginx < <(best_of_two "http://127.0.0.1:$ours/1m.bin" "http://127.0.0.1:$nport/1m.bin")
small_python=$(rps "http://127.0.0.1:$pport/hello.txt")

row "14 http_server: 13 B, req/s (wrk -c50)" "$small_ours" "nginx (1 worker)" "$small_nginx" "$(ratio "$small_ours" "$small_nginx")" ">= 1.0x nginx" "$(verdict "$small_ours" "$small_nginx" 1.0)"
row "14 http_server: 1 MiB, req/s (wrk -c50)" "$big_ours" "nginx (1 worker)" "$big_nginx" "$(ratio "$big_ours" "$big_nginx")" ">= 0.9x nginx" "$(verdict "$big_ours" "$big_nginx" 0.9)"
row "14 http_server: 13 B, req/s (wrk -c50)" "$small_ours" "python3 -m http.server" "$small_python" "$(ratio "$small_ours" "$small_python")" ">= 25x python" "$(verdict "$small_ours" "$small_python" 25)"

# 10,000 idle keep-alive connections (each made one request, then idles)
python3 - "$ours" 10000 >"$tmp/idle.out" 2>&1 <<'PY' &
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
socks = []
req = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    got = b""
    while not got.endswith(b"Hello, world!"):
        got += s.recv(4096)
    socks.append(s)
print("holding", len(socks), flush=True)
time.sleep(600)
PY
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 600); do grep -q '^holding' "$tmp/idle.out" && break; sleep 0.1; done
if ! grep -q '^holding 10000' "$tmp/idle.out"; then
    row "http_server, 10k idle conns" "-" "-" "-" "-" "-" "FAILED: $(tail -1 "$tmp/idle.out")"
    exit 1
fi
idle_rss_kb=$(ps -o rss= -p "$ours_pid" | tr -d ' ')
small_idle=$(rps "http://127.0.0.1:$ours/hello.txt")
small_idle2=$(rps "http://127.0.0.1:$ours/hello.txt")
small_idle=$((small_idle > small_idle2 ? small_idle : small_idle2))
row "14 http_server: RSS with 10k idle conns" "$((idle_rss_kb / 1024)) MB" "-" "-" "-" "< 64 MB" "$( ((idle_rss_kb < 65536)) && echo ok || echo MISSED)"
row "14 http_server: 13 B + 10k idle, req/s" "$small_idle" "itself, no idle" "$small_ours" "$(ratio "$small_idle" "$small_ours")" ">= 0.5x" "$(verdict "$small_idle" "$small_ours" 0.5)"
