#!/usr/bin/env bats
# Lesson 14: http_server, the event-loop HTTP server. It serves what
# lesson 12 serves, keeps connections alive, answers pipelined requests in
# order, enforces limits and timeouts, caps its connections, and drains
# gracefully on SIGTERM.

load support/helpers
load support/http
load support/hostile
load support/shortio

setup() {
    helpers_setup
    WWW=$T/www
    mkdir -p "$WWW/sub" "$WWW/docs" "$WWW/empty dir"
    printf 'Hello, world!' >"$WWW/hello.txt"
    printf '<h1>sub</h1>\n' >"$WWW/sub/index.html"
    printf 'body { color: red }\n' >"$WWW/docs/style.css"
    printf 'x' >"$WWW/docs/<b>&amp;.txt"
    printf 'the secret outside DIR' >"$T/secret.txt"
}

# serve [ARGS...]: starts http_server on $WWW with -t 2 unless ARGS say.
serve() {
    start_server http_server -d "$WWW" "$@"
}

# exchange NAME FILE [PEER_OPTIONS...]: sends the request bytes in FILE on
# one connection (then half-closes), records the answer in $T/NAME.got.
exchange() {
    local name=$1 req=$2
    shift 2
    spawn "$name" "$PEER" -s "$req" -r "$T/$name.got" "$@" -C 127.0.0.1 "$SERVER_PORT"
    peer_done "$name" 10
}

# assert_serves_hello: the server answers a plain GET at all. Tests that
# then wait for something subtler call it first, so a server that cannot
# answer yet fails at once instead of at their deadline.
assert_serves_hello() {
    run_limited 5 curl -sS "http://127.0.0.1:$SERVER_PORT/hello.txt"
    [[ $status == 0 && $output == "Hello, world!" ]] ||
        fail "$(printf 'a plain GET /hello.txt got no answer (curl exit %s):\n%s' "$status" "$(indent "$stderr")")"
}

# count_responses FILE: how many status lines FILE holds (a response
# follows the previous body directly, not on a line of its own).
count_responses() {
    grep -o -a 'HTTP/1\.1 [0-9][0-9][0-9] ' "$1" | wc -l | tr -d ' '
}

@test "serves a file byte-exact, with Content-Type and Content-Length (curl)" {
    make_random "$WWW/big.bin" 5000000
    serve
    run_limited 10 curl -sS -D "$T/headers" -o "$T/got" "http://127.0.0.1:$SERVER_PORT/big.bin"
    assert_status 0
    if [[ $(wc -c <"$T/got") == 5000000 ]] && ! cmp -s "$WWW/big.bin" "$T/got"; then
        local at
        at=$(cmp "$WWW/big.bin" "$T/got" | sed -n 's/.* byte \([0-9]*\).*/\1/p')
        fail "$(printf 'the server sent 5000000 bytes, as promised, but not the file: they differ from byte %s on.\nThe first bytes are right and a later piece is not: after each sendfile()/send() the file offset\n(c->file_off) must advance by what was sent, or the next piece starts from the wrong place.' "$at")"
    fi
    assert_same_bytes "$WWW/big.bin" "$T/got" "the 5 MB file"
    grep -qi '^Content-Length: 5000000' "$T/headers" || fail "no Content-Length: 5000000 in: $(cat "$T/headers")"
    grep -qi '^Content-Type: application/octet-stream' "$T/headers" || fail "wrong Content-Type in: $(cat "$T/headers")"
}

@test "answers like lesson 12: index.html, escaped listings, 301, 404, 403, HEAD, 304, MIME types" {
    mkfifo "$WWW/fifo"
    serve
    local base=http://127.0.0.1:$SERVER_PORT
    run_limited 5 curl -sS "$base/sub/"
    assert_output "<h1>sub</h1>"
    run_limited 5 curl -sS "$base/docs/"
    assert_output --partial '<a href="%3Cb%3E%26amp%3B.txt">&lt;b&gt;&amp;amp;.txt</a>'
    run_limited 5 curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$base/docs"
    assert_output "301 $base/docs/"
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "$base/missing.txt"
    assert_output 404
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "$base/fifo"
    assert_output 403
    run_limited 5 curl -sS -I "$base/hello.txt"
    assert_output --partial "Content-Length: 13"
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $(date -u -d '+1 day' '+%a, %d %b %Y %H:%M:%S GMT')" "$base/hello.txt"
    assert_output 304
    run_limited 5 curl -sS -o /dev/null -w '%{content_type}' "$base/docs/style.css"
    assert_output "text/css"
}

@test "accepts the absolute-form target a proxy is sent (RFC 9112, 3.2.2)" {
    serve
    local t
    for t in "http://127.0.0.1:$SERVER_PORT/hello.txt" "HTTPS://example.com/hello.txt?q=1"; do
        run_limited 5 curl -sS --request-target "$t" "http://127.0.0.1:$SERVER_PORT/"
        [[ $status == 0 && $output == "Hello, world!" ]] ||
            fail "$(printf 'GET %s HTTP/1.1 must serve /hello.txt; got (curl exit %s):\n%s\n%s' "$t" "$status" "$(indent "$output")" "$(indent "$stderr")")"
    done
    # No path at all means "/": here, DIR's listing.
    run_limited 5 curl -sS --request-target "http://example.com" "http://127.0.0.1:$SERVER_PORT/"
    assert_output --partial 'hello.txt'
}

@test "keeps an HTTP/1.1 connection open: three URLs, one connection (curl)" {
    serve
    local u=http://127.0.0.1:$SERVER_PORT/hello.txt
    run_limited 5 curl -sS -w '%{num_connects}\n' -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u"
    assert_status 0
    [[ $output == $'1\n0\n0' ]] ||
        fail "$(printf 'curl fetched three URLs and counted new connections per URL: expected 1 0 0, got %s.\nThe server closed the connection after a response: HTTP/1.1 keeps it (keep-alive) unless the\nrequest says Connection: close; go back to reading the next request on the same socket.' "$(echo $output)")"
}

@test "HTTP/1.0 keeps the connection only when asked with Connection: keep-alive" {
    serve
    printf 'GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n' >"$T/req"
    exchange ten "$T/req"
    local n
    n=$(count_responses "$T/ten.got")
    local why="" shown
    shown=$(head -c 600 "$T/ten.got")
    if [[ $n == 1 ]] && grep -qai '^Connection: keep-alive' "$T/ten.got"; then
        why="The first response said keep-alive, then nothing: the three requests came in ONE write (pipelined),
so the second was already in the input buffer, and the server dropped it (see the pipelining test)."
    elif [[ $n == 1 ]]; then
        why="The server closed after the first request, which asked for Connection: keep-alive (HTTP/1.0 may ask)."
    elif ((n > 2)); then
        why="The second HTTP/1.0 request did not ask for keep-alive: HTTP/1.0 closes after it unless asked (without asking = close)."
    fi
    [[ $n == 2 ]] || fail "$(printf 'three HTTP/1.0 requests in one write (keep-alive asked, then not asked, then a third): expected 2 responses\n(the keep-alive one, then one that closes), got %s.\n%s\nWhat came back:\n%s' "$n" "$why" "$(indent "$shown")")"
    grep -qa '^Connection: close' "$T/ten.got" || fail "the last HTTP/1.0 response must say Connection: close"
}

@test "100 pipelined requests in one write get 100 responses, in order" {
    local i
    for i in $(seq 1 100); do
        printf 'file %d\n' "$i" >"$WWW/f$i.txt"
        printf 'GET /f%d.txt HTTP/1.1\r\nHost: x\r\n\r\n' "$i"
    done >"$T/req"
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >>"$T/req"
    serve
    exchange pipe "$T/req"
    local n
    n=$(count_responses "$T/pipe.got")
    [[ $n == 101 ]] || fail "$(printf '101 requests sent in ONE write (pipelined): expected 101 responses, got %s.\nA recv() can hold several requests: after answering one, keep the bytes after it (memmove)\nand answer the next from the buffer before reading again.' "$n")"
    grep -a '^file ' "$T/pipe.got" >"$T/bodies"
    seq 1 100 | sed 's/^/file /' >"$T/expected"
    assert_same_bytes "$T/expected" "$T/bodies" "the bodies, in request order"
}

@test "refuses oversize parts: request line 414, headers 431, a body 413, each then closes" {
    serve
    local long
    long=$(head -c 9000 /dev/zero | tr '\0' a)
    printf 'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' "$long" >"$T/r414"
    exchange a "$T/r414"
    head -1 "$T/a.got" | grep -q '^HTTP/1.1 414 ' || fail "a 9000-byte target: expected 414, got: $(head -1 "$T/a.got")"
    { printf 'GET / HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 40); do printf 'X-Pad-%d: %s\r\n' "$i" "${long:0:1000}"; done; printf '\r\n'; } >"$T/r431"
    exchange b "$T/r431"
    head -1 "$T/b.got" | grep -q '^HTTP/1.1 431 ' || fail "40 KB of headers: expected 431, got: $(head -1 "$T/b.got")"
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/r413"
    exchange c "$T/r413"
    head -1 "$T/c.got" | grep -q '^HTTP/1.1 413 ' || fail "a GET with a body: expected 413, got: $(head -1 "$T/c.got")"
    [[ $(count_responses "$T/c.got") == 1 ]] || fail "after a 413 the connection must close (one response), got $(count_responses "$T/c.got")"
}

@test "limits sit exactly at 8 KiB: a request line or header line of 8192 bytes is served, 8193 is 414 or 431" {
    serve
    local q
    # "GET " + target + " HTTP/1.1\r\n" = 8192 bytes: the target is 8177.
    q=$(head -c 8166 /dev/zero | tr '\0' q)
    printf 'GET /hello.txt?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$q" >"$T/line8192"
    printf 'GET /hello.txt?%sq HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$q" >"$T/line8193"
    # "X-Pad: " + value + "\r\n" = 8192 bytes: the value is 8183.
    q=$(head -c 8183 /dev/zero | tr '\0' v)
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nConnection: close\r\n\r\n' "$q" >"$T/hdr8192"
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Pad: %sv\r\nConnection: close\r\n\r\n' "$q" >"$T/hdr8193"
    local f want what
    for f in line8192:200:"a request line of exactly 8192 bytes (with its CRLF) is within the 8 KiB limit" \
        line8193:414:"a request line of 8193 bytes (with its CRLF) is one byte over the 8 KiB limit" \
        hdr8192:200:"a header line of exactly 8192 bytes (with its CRLF) is within the 8 KiB limit" \
        hdr8193:431:"a header line of 8193 bytes (with its CRLF) is one byte over the 8 KiB limit"; do
        what=${f#*:*:} want=${f#*:} want=${want%%:*} f=${f%%:*}
        http_exchange "$SERVER_PORT" "$T/$f"
        [[ $HTTP_STATUS == "$want" ]] ||
            fail "$(printf '%s: expected %s, got:\n%s\n(The limit counts the whole line, line end included: 8192 passes, 8193 does not.)' "$what" "$want" "$(http_head_shown)")"
    done
}

@test "a client that stops reading a large download stalls nobody, and is reset after -t SECONDS" {
    truncate -s 32M "$WWW/huge.bin"
    serve -t 1 -v
    assert_serves_hello
    printf 'GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/req"
    spawn stalled "$PEER" -s "$T/req" -H -W -t 0 -C 127.0.0.1 "$SERVER_PORT"
    # The access-log line comes before the first send(): from then on the
    # server is sending 32 MB to a client that reads nothing.
    local deadline=$((SECONDS + 5))
    until grep -q '"GET /huge.bin ' "$T/$SERVER_NAME.err"; do
        ((SECONDS < deadline)) || fail "the server never logged the request for /huge.bin (-v)"
        sleep 0.02
    done
    local start=$EPOCHREALTIME
    run_limited 10 curl -sS --max-time 3 "http://127.0.0.1:$SERVER_PORT/hello.txt"
    [[ $status == 0 && $output == "Hello, world!" ]] ||
        fail "$(printf 'while one client was not reading its 32 MB download, a second client'"'"'s GET /hello.txt got no answer within 3 s\n(curl exit %s: %s).\nThe server is stuck sending to the first client: when send()/sendfile() fails with EAGAIN the socket\nbuffer is full; do not retry at once, wait for EPOLLOUT/POLLOUT (conn_want EV_WRITE) and serve the others.' "$status" "$stderr")"
    deadline=$((SECONDS + 6))
    until grep -q '^done: ' "$T/stalled.out"; do
        ((SECONDS < deadline)) || fail "$(printf 'the client that stopped reading was never cut off: still connected %s s later.\nWith -t 1 the server must reset it about 1 s after its last progress (a deadline while writing:\nlast_progress_ms + timeout), or any client can hold a connection and a file open forever.' "$((SECONDS - deadline + 6))")"
        sleep 0.02
    done
    local took
    took=$(((${EPOCHREALTIME/./} - ${start/./}) / 1000))
    grep -q 'peer-reset$' "$T/stalled.out" ||
        fail "expected the stalled client to be reset (RST: SO_LINGER 0), it saw: $(cat "$T/stalled.out")"
    ((took >= 500)) || fail "the stalled client was cut off after only $took ms: -t 1 gives it 1 s without progress"
}

@test "sends whole responses even when each send() takes a few hundred bytes or fails with EAGAIN" {
    make_random "$WWW/mid.bin" 300000
    make_random "$WWW/small.bin" 20000
    short_io http_server 700 30
    serve
    local base=http://127.0.0.1:$SERVER_PORT url what
    for url in hello.txt small.bin mid.bin; do
        run_limited 12 curl -sS --max-time 8 -o "$T/got" "$base/$url"
        what="with every send() cut to at most 700 bytes, and 30% of them failing with EAGAIN first, GET /$url"
        [[ $status == 0 ]] || fail "$(printf '%s failed (curl exit %s: %s).\nsend() and sendfile() may take fewer bytes than offered (advance by what it returned and send the rest),\nor none (EAGAIN: keep what is left and send it when the socket is writable again); neither is an error.' "$what" "$status" "$stderr")"
        cp "$WWW/$url" "$T/want"
        cmp -s "$T/want" "$T/got" ||
            fail "$(printf '%s: the body is not what was sent (%s bytes expected, %s received).\nA short send() took only part of the buffer: advance by what it returned and send the rest.' "$what" "$(wc -c <"$T/want")" "$(wc -c <"$T/got")")"
    done
}

@test "never echoes the request into a redirect: no open redirect, no limit on the query" {
    serve
    run_limited 5 curl -sS --path-as-is -o /dev/null -w '%{http_code} %header{location}' "http://127.0.0.1:$SERVER_PORT//evil.example/../docs"
    assert_output "301 /docs/"
    local query
    query=$(head -c 3000 /dev/zero | tr '\0' q)
    run_limited 5 curl -sS -o /dev/null -w '%{http_code} %header{location}' "http://127.0.0.1:$SERVER_PORT/docs?$query"
    assert_output "301 /docs/"
}

@test "reads a target exactly as long as it is: a listing request followed by 50 KB of bytes" {
    serve
    # 50176 bytes in all: exactly the solution's input buffer, so a server
    # that treats the target as a C string reads past the buffer's end
    # (the sanitizer build of make test reports it).
    { printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; head -c 50130 /dev/zero | tr '\0' A; } >"$T/req"
    exchange listing "$T/req"
    head -1 "$T/listing.got" | grep -q '^HTTP/1.1 200 ' || fail "expected 200 for the listing, got: $(head -1 "$T/listing.got")"
    assert_serves_hello
}

@test "handles the hostile-input corpus and keeps serving" {
    serve
    assert_survives_hostile_corpus /hello.txt
}

@test "never serves a byte from outside DIR, however the path is encoded" {
    serve
    assert_never_leaks "the secret outside DIR"
}

@test "cuts off a slowloris client after -t SECONDS while serving others" {
    serve -t 1
    # A request head trickling in, 5 bytes every 200 ms: ~6 s to finish.
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n' >"$T/slow"
    spawn slow "$PEER" -s "$T/slow" -k 5 -d 200 -H -t 8000 -r "$T/slow.got" -C 127.0.0.1 "$SERVER_PORT"
    run_limited 5 curl -sS "http://127.0.0.1:$SERVER_PORT/hello.txt"
    assert_output "Hello, world!"
    peer_done slow 5
    [[ $PEER_HOW != timeout && $PEER_SENT -lt $(wc -c <"$T/slow") ]] ||
        fail "the slow client was not cut off: it sent $PEER_SENT of $(wc -c <"$T/slow") bytes and ended with '$PEER_HOW'"
    ! grep -qa '^HTTP/1.1 200' "$T/slow.got" || fail "the slow client got a 200"
}

@test "closes a keep-alive connection left idle for -t SECONDS" {
    serve -t 1
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/req"
    spawn idle "$PEER" -s "$T/req" -H -t 8000 -r "$T/idle.got" -C 127.0.0.1 "$SERVER_PORT"
    peer_done idle 5
    [[ $PEER_HOW == eof ]] || fail "expected the server to close the idle connection (eof), the client saw: $PEER_HOW"
    [[ $(count_responses "$T/idle.got") == 1 ]] || fail "expected one response before the close"
}

@test "with -c 2, a third connection gets 503 and the server recovers when one leaves" {
    serve -c 2
    assert_serves_hello
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/req"
    spawn one "$PEER" -s "$T/req" -H -t 0 -C 127.0.0.1 "$SERVER_PORT"
    spawn two "$PEER" -s "$T/req" -H -t 0 -C 127.0.0.1 "$SERVER_PORT"
    await_line one '^connected'
    await_line two '^connected'
    # Both are held open: sooner or later a third connection must get 503.
    local deadline=$((SECONDS + 5))
    until run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT/hello.txt" && [[ $output == 503 ]]; do
        ((SECONDS < deadline)) || fail "expected 503 with two connections held open under -c 2, got: $output"
        sleep 0.05
    done
    kill "$(pid_of one)"
    deadline=$((SECONDS + 5))
    until run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT/hello.txt" && [[ $output == 200 ]]; do
        ((SECONDS < deadline)) || fail "after one connection left, expected 200 again, got: $output"
        sleep 0.05
    done
}

@test "SIGTERM finishes the response in flight, closes idle connections, exits 0" {
    make_random "$WWW/big.bin" 8000000
    serve
    assert_serves_hello
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/idle"
    spawn idle "$PEER" -s "$T/idle" -H -t 0 -r "$T/idle.got" -C 127.0.0.1 "$SERVER_PORT"
    printf 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/big"
    # A slow reader: 64 KiB every 5 ms, so the download is still going.
    spawn slow "$PEER" -s "$T/big" -H -K 65536 -w 5 -t 10000 -r "$T/slow.got" -C 127.0.0.1 "$SERVER_PORT"
    local deadline=$((SECONDS + 5))
    until [[ -s $T/slow.got && -s $T/idle.got ]]; do
        ((SECONDS < deadline)) || fail "the download never started"
        sleep 0.02
    done
    kill -TERM "$SERVER_PID"
    await_exit "$SERVER_NAME" 10
    [[ $EXIT_STATUS == 0 ]] || fail "expected exit status 0 after SIGTERM, got $EXIT_STATUS"
    peer_done slow 5
    # The body is whatever follows the blank line after the head.
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d[d.index(b"\r\n\r\n")+4:])' "$T/slow.got" >"$T/body"
    assert_same_bytes "$WWW/big.bin" "$T/body" "the download that was in flight at SIGTERM"
    peer_done idle 5
    [[ $PEER_HOW == eof ]] || fail "the idle keep-alive connection should have been closed, it saw: $PEER_HOW"
}

@test "-v logs one line per request to stderr" {
    serve -v
    run_limited 5 curl -sS -o /dev/null "http://127.0.0.1:$SERVER_PORT/hello.txt" -o /dev/null "http://127.0.0.1:$SERVER_PORT/nope"
    local deadline=$((SECONDS + 3))
    until [[ $(grep -c '"GET ' "$T/$SERVER_NAME.err") == 2 ]]; do
        ((SECONDS < deadline)) || fail "expected two log lines, stderr has:$(printf '\n%s' "$(cat "$T/$SERVER_NAME.err")")"
        sleep 0.02
    done
    grep -q '^127\.0\.0\.1 "GET /hello.txt HTTP/1.1" 200 13$' "$T/$SERVER_NAME.err" || fail "no line like: 127.0.0.1 \"GET /hello.txt HTTP/1.1\" 200 13"
    grep -q '"GET /nope HTTP/1.1" 404 ' "$T/$SERVER_NAME.err" || fail "no 404 line for /nope"
}

@test "a request that can never be valid gets 400 at once, not a silence until -t" {
    serve
    printf 'GET /x\r\n' >"$T/noversion"
    printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >"$T/tls"
    printf '\x00\x01\x02 binary' >"$T/binary"
    local f
    for f in noversion tls binary; do
        # -H: the client keeps its side open and waits, as a real one does.
        http_exchange "$SERVER_PORT" "$T/$f" -H -t 4000
        [[ $PEER_HOW != timeout && $HTTP_STATUS == 400 ]] ||
            fail "$(printf '%s: expected 400 and a close as soon as the request line is complete (or its first byte\ncannot begin a method); the client waited 4 s and saw: %s, status line "%s".\nA request line that can never become valid is answered now: waiting for the blank line\n(or for -t) keeps a connection for nothing.' "$(od -An -c "$T/$f" | head -1 | tr -s ' ')" "$PEER_HOW" "$HTTP_STATUS_LINE")"
    done
}

@test "an error found before the method is known still has no body for HEAD" {
    serve
    local long
    long=$(head -c 9000 /dev/zero | tr '\0' a)
    printf 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nX-Long: %s\r\n\r\n' "$long" >"$T/req"
    http_exchange "$SERVER_PORT" "$T/req"
    assert_http_status 431
    [[ $HTTP_BODY_BYTES == 0 ]] ||
        fail "$(printf 'HEAD with a 9000-byte header line got 431 and %s bytes of body: the answer to HEAD never has a body,\neven for an error found before the method was read (look at the request line first).' "$HTTP_BODY_BYTES")"
    http_header_get Content-Length || fail "the 431 to HEAD should still say its Content-Length"
}

@test "an invalid Host or a malformed absolute-form target gets 400 (RFC 9112 3.2)" {
    serve
    local h i=0
    for h in 'a b' 'x, y' 'a/b' '..' '::: x' 'u@x'; do
        i=$((i + 1))
        printf 'GET /hello.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" >"$T/host$i"
        http_exchange "$SERVER_PORT" "$T/host$i"
        [[ $HTTP_STATUS == 400 ]] || fail "$(printf 'Host: %s is not a host[:port]: expected 400, got:\n%s' "$h" "$(http_head_shown)")"
    done
    for h in localhost:8080 '[::1]:80' 127.0.0.1 example.com; do
        printf 'GET /hello.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" >"$T/good"
        http_exchange "$SERVER_PORT" "$T/good"
        [[ $HTTP_STATUS == 200 ]] || fail "$(printf 'Host: %s is valid: expected 200, got:\n%s' "$h" "$(http_head_shown)")"
    done
    for h in 'http://u:p@x' 'http://a"b<c' 'http://x#f' 'http://x{P'; do
        printf 'GET %s/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$h" >"$T/abs"
        http_exchange "$SERVER_PORT" "$T/abs"
        [[ $HTTP_STATUS == 400 ]] || fail "$(printf 'GET %s/hello.txt: the authority of an absolute-form target is host[:port] only\n(no userinfo, no fragment, no bytes a host cannot have): expected 400, got:\n%s' "$h" "$(http_head_shown)")"
    done
}

@test "DIR itself by any name is DIR (never Location: //), and a file asked for as a directory is 404" {
    serve
    local p
    for p in /. /%2e /sub/.. /sub/%2e%2e /docs/../; do
        run_limited 5 curl -sS --path-as-is -o /dev/null -w '%{http_code} %header{location}' "http://127.0.0.1:$SERVER_PORT$p"
        [[ $output == "200 " ]] ||
            fail "$(printf 'GET %s names DIR itself: expected 200 with its listing and no Location, got "%s".\n("Location: //" is not a path but a host: a client cannot follow it.)' "$p" "$output")"
    done
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT/hello.txt/"
    [[ $output == 404 ]] || fail "GET /hello.txt/ asks for a directory named hello.txt: expected 404 (a file is not a directory), got $output"
}

@test "follows a symlink in DIR by default (as nginx does); with -S refuses every symlink with 403" {
    ln -s ../secret.txt "$WWW/out.txt"
    ln -s hello.txt "$WWW/in.txt"
    ln -s sub "$WWW/subl"
    serve
    run_limited 5 curl -sS "http://127.0.0.1:$SERVER_PORT/in.txt"
    [[ $output == "Hello, world!" ]] || fail "without -S a symlink inside DIR is followed: GET /in.txt should serve hello.txt, got: $output"
    serve -S
    local p
    for p in /out.txt /in.txt /subl/ /subl/index.html; do
        run_limited 5 curl -sS -o "$T/got" -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT$p"
        [[ $output == 403 ]] ||
            fail "$(printf 'with -S, GET %s goes through a symlink: expected 403, got %s:\n%s\n(open each path component with O_NOFOLLOW; ELOOP means a symlink was in the way)' "$p" "$output" "$(indent "$(head -c 300 "$T/got")")")"
    done
    for p in /hello.txt /sub/ /; do
        run_limited 5 curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVER_PORT$p"
        [[ $output == 200 ]] || fail "with -S, GET $p (no symlink on the way) should still be 200, got $output"
    done
}

@test "follows the CLI conventions: -h, usage errors, a bad DIR" {
    run_prog http_server -h
    assert_status 0
    assert_output --partial "usage: http_server"
    run_prog http_server -p notaport
    assert_status 2
    run_prog http_server -p 0 -d "$T/no-such-dir"
    assert_status 1
    assert_stderr_line "http_server: $T/no-such-dir: No such file or directory"
}
