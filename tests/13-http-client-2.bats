#!/usr/bin/env bats
# Lesson 13: http_fetch, a small curl: chunked bodies, keep-alive, -L
# redirects, -d POST, -o, -m timeouts, -v/-i, curl's exit statuses.
#
# Peers: python's http.server for a real download, our keep-alive server
# (tests/support/http_keepalive_server.py), which logs every connection
# and request so connections can be counted, and the C peer for canned
# responses split and cut exactly as a test needs.

load support/helpers
load support/http

### helpers for this file ###

# start_keepalive: the keep-alive server, its log in $T/ka.out; sets
# KA_URL (http://IP:PORT).
start_keepalive() {
    spawn ka python3 -S "$REPO_ROOT/tests/support/http_keepalive_server.py"
    listening_port ka || return 1
    KA_URL=http://127.0.0.1:$LISTEN_PORT
}

# How many connections and requests the keep-alive server logged.
connections_seen() { grep -c '^connection ' "$T/ka.out" || true; }
requests_seen() { grep -c '^request ' "$T/ka.out" || true; }

# assert_connections N WHY: the keep-alive server saw N connections.
assert_connections() {
    local want=$1 why=$2 got
    got=$(connections_seen)
    [[ $got == "$want" ]] ||
        fail "$(printf 'expected %s connection(s) to the server (%s), it saw %s:\n%s' \
            "$want" "$why" "$got" "$(indent "$(grep -v '^listening' "$T/ka.out")")")"
}

# A canned response for the C peer: the printf FORMAT goes to $T/NAME.
canned() {
    local name=$1
    shift
    # shellcheck disable=SC2059
    printf "$@" >"$T/$name"
}

# assert_file_is FILE TEXT: FILE holds exactly TEXT.
assert_file_is() {
    local file=$1 want=$2 got
    got=$(cat "$file" 2>/dev/null; echo x)
    got=${got%x}
    [[ $got == "$want" ]] ||
        fail "$(printf 'expected %s to hold:\n%s\ngot:\n%s' "${file/#$T/\$T}" "$(indent "$want")" "$(indent "$got")")"
}

# assert_stderr_has LINE: one line of stderr is exactly LINE.
assert_stderr_has() {
    grep -qxF -- "$1" <<<"$stderr" ||
        fail "$(printf 'expected this line on stderr:\n    %s\nstderr was:\n%s' "$1" "$(indent "$stderr")")"
}

### plain bodies ###

@test "writes a Content-Length body byte for byte: 5 MB of binary from python's http.server" {
    mkdir -p "$T/www"
    make_random "$T/www/big.bin" 5000000
    start_file_server "$T/www"
    local path
    path=$(prog http_fetch)
    # 5 MB to stdout: past the usual 1 MiB output cap (helpers.bash).
    OUTPUT_CAP=16M run_limited 10 bash -c '"$0" "$1" >"$2"' "$path" "http://127.0.0.1:$FILES_PORT/big.bin" "$T/got"
    assert_status 0
    assert_same_bytes "$T/www/big.bin" "$T/got" "the body on stdout"
}

@test "-o FILE puts the body in FILE and nothing on stdout, replacing what FILE held" {
    canned resp 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n'
    serve_response "$T/resp"
    # An older, longer FILE: its tail must not survive (O_TRUNC, as curl).
    printf 'an older and longer file\n' >"$T/out"
    run_prog http_fetch -o "$T/out" "http://127.0.0.1:$PEER_PORT/"
    assert_status 0
    assert_stdout_is ""
    [[ $(wc -c <"$T/out") -le 6 ]] ||
        fail "$(printf 'FILE held 25 bytes before, and after -o it still holds %s bytes:\n%s\n-o must replace the file, not write over its start: open it with O_TRUNC, as curl does.' \
            "$(wc -c <"$T/out")" "$(indent "$(cat -v "$T/out")")")"
    assert_file_is "$T/out" $'hello\n'
}

@test "stops at Content-Length: bytes after the body are not part of it" {
    # The body and what follows it arrive in one segment: a client that
    # writes whatever its recv() returned prints the extra bytes too.
    canned resp 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\nGARBAGE AFTER THE BODY'
    serve_response "$T/resp"
    run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
    [[ $output == hello ]] ||
        fail "$(printf 'the response said Content-Length: 6 and its 6 bytes were "hello\\n", then more bytes came in the same recv():\n%s\nexpected stdout "hello", got:\n%s\nWrite at most the bytes Content-Length still allows; what follows is not body.' \
            "$(indent "$(cat -v "$T/resp")")" "$(indent "$output")")"
}

### chunked bodies ###

# Upper and lower case hex, leading zeros, extensions with and without
# values, spaces before ";", and a trailer field after the last chunk.
chunked_response() {
    canned chunked 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;name=value\r\nHello\r\n8 ; a ; b="x y"\r\n, world!\r\n000a\r\n0123456789\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 42\r\n\r\n'
}
CHUNKED_BODY="Hello, world!0123456789abcdefghijklmnopqrstuvwxyz"

@test "decodes a chunked body with extensions and a trailer, even one byte at a time" {
    chunked_response
    local how
    for how in "in one piece" "one byte at a time"; do
        if [[ $how == "in one piece" ]]; then
            start_peer whole -- -s "$T/chunked"
        else
            # Each byte in its own segment, 1 ms apart: chunk sizes, CR LF
            # pairs and the trailer all split up.
            start_peer split -- -s "$T/chunked" -k 1 -d 1
        fi
        run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 0 && $output == "$CHUNKED_BODY" ]] ||
            fail "$(printf 'sent this response %s:\n%s\nexpected exit 0 and the body\n    %s\ngot exit %s, stdout:\n%s\nstderr:\n%s' \
                "$how" "$(indent "$(cat -v "$T/chunked")")" "$CHUNKED_BODY" "$status" "$(indent "$output")" "$(indent "$stderr")")"
    done
}

@test "refuses a chunk size that is not hex, or overflows, with exit 56" {
    canned nothex 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'
    # 2^64 + 5: a parser without an overflow check wraps it to 5 and
    # happily decodes "hello".
    canned huge 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n'
    local name
    for name in nothex huge; do
        start_peer "$name" -- -s "$T/$name"
        run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 56 ]] ||
            fail "$(printf 'for this chunked body, expected exit 56 (a receive error, as curl):\n%s\ngot exit %s, stderr:\n%s' \
                "$(indent "$(cat -v "$T/$name")")" "$status" "$(indent "$stderr")")"
    done
}

@test "refuses a chunk whose data runs past its size: exit 56" {
    # After SIZE bytes of data must come CRLF. "HelloXY" is 7 bytes for a
    # chunk of 5: a decoder that skips two bytes blindly reads "5" next
    # and goes on; one that skips to the next LF takes ", world" as junk.
    canned skip2 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHelloXY5\r\nworld\r\n0\r\n\r\n'
    canned toline 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello, world\r\n0\r\n\r\n'
    local name
    for name in skip2 toline; do
        start_peer "$name" -- -s "$T/$name"
        run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 56 ]] ||
            fail "$(printf 'this chunk says 5 bytes, but more than 5 come before its CR LF:\n%s\nexpected exit 56 (the chunked framing is broken: after the data, CR LF and nothing else),\ngot exit %s, stdout:\n%s\nstderr:\n%s' \
                "$(indent "$(cat -v "$T/$name")")" "$status" "$(indent "$output")" "$(indent "$stderr")")"
    done
}

### keep-alive ###

@test "fetches three URLs on one host over one connection, a chunked one included" {
    start_keepalive
    run_prog http_fetch "$KA_URL/one" "$KA_URL/chunked/two" "$KA_URL/three"
    assert_status 0
    assert_stdout_is $'/one\n/chunked/two\n/three'
    assert_connections 1 "HTTP/1.1 keeps a connection open unless the server says Connection: close; a chunked body ends at its last chunk and trailer"
}

@test "never reuses a connection after Connection: close or an HTTP/1.0 response, even one the server leaves open" {
    start_keepalive
    # The server says "close" (or answers as HTTP/1.0) but leaves the
    # connection open, so a client that reuses it is seen doing so; a
    # server that closed would hide the mistake behind the reconnect.
    run_prog http_fetch "$KA_URL/close/1" "$KA_URL/close/2" "$KA_URL/http10/3" "$KA_URL/http10/4" \
        "$KA_URL/http10-keep/5" "$KA_URL/http10-keep/6"
    assert_status 0
    assert_stdout_is $'/close/1\n/close/2\n/http10/3\n/http10/4\n/http10-keep/5\n/http10-keep/6'
    # The first request that went on a connection it must not have used.
    local bad
    bad=$(awk '$1 == "request" {
            if ($2 in done) { print done[$2] " " $4; exit }
            if ($4 ~ /^\/close\//) done[$2] = "close " $4
            else if ($4 ~ /^\/http10\//) done[$2] = "http10 " $4
        }' "$T/ka.out")
    if [[ $bad == close* ]]; then
        read -r _ first next <<<"$bad"
        fail "$(printf 'the server answered %s with "Connection: close", and http_fetch sent GET %s on that same connection.\n"Connection: close" means no more requests on it, whatever the version: close it and connect again.\nthe server saw:\n%s' \
            "$first" "$next" "$(indent "$(grep -v '^listening' "$T/ka.out")")")"
    elif [[ $bad == http10* ]]; then
        read -r _ first next <<<"$bad"
        fail "$(printf 'the server answered %s as HTTP/1.0 without "Connection: keep-alive", and http_fetch sent GET %s on that same connection.\nAn HTTP/1.0 response keeps the connection only when it says "Connection: keep-alive".\nthe server saw:\n%s' \
            "$first" "$next" "$(indent "$(grep -v '^listening' "$T/ka.out")")")"
    fi
    assert_connections 5 "/close/1, /close/2, /http10/3, /http10/4 each need their own; /http10-keep/5 and 6 share one (HTTP/1.0 with Connection: keep-alive)"
}

@test "connects again when the server has closed the kept connection" {
    start_keepalive
    # /drop/ answers, then closes without a word, as an idle timeout would.
    run_prog http_fetch "$KA_URL/drop/1" "$KA_URL/drop/2" "$KA_URL/drop/3"
    assert_status 0
    assert_stdout_is $'/drop/1\n/drop/2\n/drop/3'
    assert_connections 3 "the server closed after each answer: each request needs a new connection"
}

### redirects ###

@test "-L follows 301, 302, 303, 307 and 308 to relative, absolute-path and absolute Locations" {
    canned final 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfinal\n'
    serve_response "$T/final"
    start_keepalive
    # 301 points to a relative path: "next-301" from /redirect/301 is
    # /redirect/next-301. The last one sends us to another server.
    local code urls=("$KA_URL/redirect/301?to=next-301") want=$'/redirect/next-301\n'
    for code in 302 303 307 308; do
        urls+=("$KA_URL/redirect/$code?to=/after-$code?q=1")
        want+="/after-$code?q=1"$'\n'
    done
    urls+=("$KA_URL/redirect/302?to=http://127.0.0.1:$PEER_PORT/final")
    want+="final"
    run_prog http_fetch -L "${urls[@]}"
    [[ ${output%%$'\n'*} != /next-301 ]] ||
        fail "$(printf 'GET /redirect/301 answered "Location: next-301", a relative reference: it means /redirect/next-301\n(it replaces the last segment of the current path), but http_fetch asked for /next-301.\nResolve a relative Location against the directory of the URL it came from (RFC 3986 5.2).')"
    assert_status 0
    assert_stdout_is "$want"
    assert_connections 1 "every redirect but the last points to the same server"
    peer_done
    [[ $(head -1 "$T/request") == "GET /final HTTP/1.1"$'\r' ]] ||
        fail "$(printf 'the second server expected "GET /final HTTP/1.1", it got:\n%s' "$(indent "$(cat -v "$T/request")")")"
}

@test "-L gives up on a redirect loop with exit 47, as curl" {
    start_keepalive
    # -m 4: a client that follows forever is stopped, and told why.
    run_prog -s 8 http_fetch -m 4 -L "$KA_URL/loop"
    local n
    n=$(requests_seen)
    [[ $status == 47 ]] ||
        fail "$(printf '/loop redirects to itself forever. expected http_fetch -L to give up with exit 47 (curl stops after 50 redirects);\ngot exit %s after %s requests. Count the redirects you follow and stop at a limit.\nstderr:\n%s' \
            "$status" "$n" "$(indent "$(tail -5 <<<"$stderr")")")"
    ((n > 2 && n <= 51)) ||
        fail "expected the loop to be followed a while, then given up (curl stops after 50); the server saw $n requests"
}

@test "without -L a redirect is the answer: its body is printed, exit 0" {
    canned resp 'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 12\r\n\r\nredirecting\n'
    serve_response "$T/resp"
    run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
    assert_status 0
    assert_stdout_is "redirecting"
}

@test "-L refuses a Location with a NUL in it (exit 8), and follows nothing" {
    # "/o\0k" read as a C string is "/o": a different URL than the server sent.
    canned resp 'HTTP/1.1 302 Found\r\nLocation: /o\0k\r\nContent-Length: 0\r\n\r\n'
    serve_response "$T/resp"
    run_prog http_fetch -L "http://127.0.0.1:$PEER_PORT/"
    [[ $status == 8 ]] ||
        fail "$(printf 'the redirect said "Location: /o<NUL>k". A NUL byte never belongs in a header; read as a C string the value\nis "/o", another URL than the one sent. expected exit 8 (weird server reply), got exit %s; stderr:\n%s' \
            "$status" "$(indent "$stderr")")"
}

@test "-L after a POST: 303 asks with GET and no body, 307 repeats the POST and its body" {
    start_keepalive
    run_prog http_fetch -L -d 'a=1&b=2' "$KA_URL/redirect/303?to=/method" "$KA_URL/redirect/307?to=/method"
    assert_status 0
    assert_stdout_is $'GET \nPOST a=1&b=2'
}

### POST, -v, -i ###

@test "-d sends a POST with Content-Length and a form Content-Type, the body exact" {
    canned resp 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n'
    serve_response "$T/resp"
    local data='name=J%C3%B6rg&note=two+words&x=1'
    run_prog http_fetch -d "$data" "http://127.0.0.1:$PEER_PORT/form"
    assert_status 0
    assert_stdout_is "ok"
    peer_done
    local request head body
    request=$(cat "$T/request"; echo x)
    request=${request%x}
    head=${request%%$'\r\n\r\n'*}
    body=${request#*$'\r\n\r\n'}
    head=${head//$'\r'/}
    local shown
    shown=$(indent "$(cat -v "$T/request")")
    [[ ${head%%$'\n'*} == "POST /form HTTP/1.1" ]] ||
        fail "$(printf 'expected the request line "POST /form HTTP/1.1"; the request was:\n%s' "$shown")"
    grep -qix "content-length: ${#data}" <<<"$head" ||
        fail "$(printf 'expected a header "Content-Length: %s"; the request was:\n%s' "${#data}" "$shown")"
    grep -qix 'content-type: application/x-www-form-urlencoded' <<<"$head" ||
        fail "$(printf 'expected "Content-Type: application/x-www-form-urlencoded" (what curl -d sends); the request was:\n%s' "$shown")"
    [[ $body == "$data" ]] ||
        fail "$(printf 'expected the body, exactly:\n    %s\nthe request was:\n%s' "$data" "$shown")"
}

@test "-v shows request and response headers on stderr, curl style; stdout stays the body" {
    canned resp 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nbody\n'
    serve_response "$T/resp"
    run_prog http_fetch -v "http://127.0.0.1:$PEER_PORT/v"
    assert_status 0
    assert_stdout_is "body"
    assert_stderr_has "> GET /v HTTP/1.1"
    assert_stderr_has "> Host: 127.0.0.1:$PEER_PORT"
    assert_stderr_has "< HTTP/1.1 200 OK"
    assert_stderr_has "< X-Test: yes"
}

@test "-i puts the status line and headers before the body, as received" {
    canned resp 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nbody\n'
    serve_response "$T/resp"
    local path
    path=$(prog http_fetch)
    run_limited 5 bash -c '"$0" -i "$1" >"$2"' "$path" "http://127.0.0.1:$PEER_PORT/" "$T/got"
    assert_status 0
    assert_same_bytes "$T/resp" "$T/got" "the output of -i (the response exactly as it arrived)"
}

### timeouts ###

@test "-m 1 gives up on a server that never answers: exit 28 after about a second" {
    # The peer reads the request and says nothing; after 2.5 s of silence
    # it gives up itself ("done: ... timeout").
    start_peer -- -t 2500
    local t0 t1
    t0=$(date +%s%N)
    run_prog -s 4 http_fetch -m 1 "http://127.0.0.1:$PEER_PORT/"
    t1=$(date +%s%N)
    assert_status 28
    local ms=$(((t1 - t0) / 1000000))
    ((ms >= 900)) || fail "exit 28 after $ms ms: -m 1 should wait a whole second first"
    peer_done
    [[ $PEER_HOW == eof ]] ||
        fail "the server gave up on the connection ($PEER_HOW) before http_fetch did: -m 1 should close it after one second"
}

@test "-m 1 bounds the whole transfer: a server that drips a byte every 100 ms is cut off after a second" {
    # About 100 bytes, one every 100 ms: 10 s in all, and never a silence
    # of a whole second. A timeout per recv() never fires.
    canned drip 'HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n%060d' 0
    start_peer -- -s "$T/drip" -k 1 -d 100
    local t0 t1
    t0=$(date +%s%N)
    # Its own limit of 4 s, so a client that never stops is still this
    # test's failure, not a hang.
    run_limited 8 bash -c 'timeout -k 1 4 "$0" -m 1 "$1"; echo "exit $?" >&2' "$(prog http_fetch)" "http://127.0.0.1:$PEER_PORT/"
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    [[ $stderr == *"exit 28"* ]] ||
        fail "$(printf 'the server sent one byte every 100 ms (10 s for the whole response); with -m 1 http_fetch must give up after about 1 s with exit 28.\nit ran %s ms; stderr:\n%s\n-m bounds the whole run: keep one deadline and wait only for what is left of it, not -m afresh for every recv().' \
            "$ms" "$(indent "$stderr")")"
    ((ms < 3000)) || fail "exit 28, but only after $ms ms: -m 1 should stop after about a second"
}

### errors, with curl's exit statuses ###

@test "a refused connection exits 7" {
    closed_port
    run_prog http_fetch "http://127.0.0.1:$CLOSED_PORT/"
    assert_status 7
    assert_stderr_matches '^http_fetch: .*refused' "one line naming the refusal"
}

@test "a malformed or non-http URL exits 2" {
    local url
    for url in "127.0.0.1/" "https://127.0.0.1/" "http:///path" "http://127.0.0.1:99999/" \
        "http://bad host/" "http://127.0.0.1/a b"; do
        run_prog http_fetch "$url"
        [[ $status == 2 ]] ||
            fail "$(printf 'expected exit 2 for the URL "%s", got %s; stderr:\n%s' "$url" "$status" "$(indent "$stderr")")"
    done
}

@test "-f on a 404 exits 22 and prints no body; without -f the body is printed" {
    canned resp 'HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n'
    serve_response "$T/resp" -n 2
    run_prog http_fetch -f "http://127.0.0.1:$PEER_PORT/missing"
    assert_status 22
    assert_stdout_is ""
    run_prog http_fetch "http://127.0.0.1:$PEER_PORT/missing"
    assert_status 0
    assert_stdout_is "not found"
}

@test "a server that closes early: with no reply exits 52, in the body exits 18 with what arrived" {
    : >"$T/empty"
    start_peer empty -- -s "$T/empty"
    run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
    assert_status 52
    # Content-Length promises more than arrives, or a chunk is cut:
    # curl's 18, "partial file", and the bytes that did arrive are kept.
    canned short 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'
    canned shortchunk 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n10\r\nonly this'
    local name want
    for name in short shortchunk; do
        start_peer "$name" -- -s "$T/$name"
        run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 18 ]] ||
            fail "$(printf 'expected exit 18 when the server closes before the end of the body:\n%s\ngot exit %s, stderr:\n%s' \
                "$(indent "$(cat -v "$T/$name")")" "$status" "$(indent "$stderr")")"
        want="only this"
        [[ $name == shortchunk ]] && want="Helloonly this"
        assert_stdout_is "$want"
    done
}

@test "refuses a Content-Length that is not a plain number, or two that differ: exit 8" {
    canned letters 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello'
    canned overflow 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello'
    canned two 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'
    local name
    for name in letters overflow two; do
        start_peer "$name" -- -s "$T/$name"
        run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 8 ]] ||
            fail "$(printf 'expected exit 8 (curl: weird server reply) for:\n%s\ngot exit %s, stdout:\n%s\nstderr:\n%s' \
                "$(indent "$(cat -v "$T/$name")")" "$status" "$(indent "$output")" "$(indent "$stderr")")"
    done
}

@test "refuses response headers over 64 KiB with exit 56" {
    {
        printf 'HTTP/1.1 200 OK\r\n'
        local i
        for ((i = 0; i < 80; i++)); do printf 'X-Filler-%d: %01000d\r\n' "$i" 0; done
        printf 'Content-Length: 2\r\n\r\nok'
    } >"$T/fat"
    serve_response "$T/fat"
    run_prog http_fetch "http://127.0.0.1:$PEER_PORT/"
    assert_status 56
}

### usage ###

@test "-h prints usage to stdout and exits 0" {
    run_prog http_fetch -h
    assert_status 0
    assert_output --partial "usage: http_fetch"
}

@test "an unknown option, or no URL, is a usage error: 'usage: ...' on stderr, exit 2" {
    run_prog http_fetch --bogus http://127.0.0.1/
    assert_status 2
    [[ $stderr == *"usage: http_fetch"* ]] || fail "$(printf 'expected usage on stderr, got:\n%s' "$(indent "$stderr")")"
    run_prog http_fetch
    assert_status 2
}
