#!/usr/bin/env bats
# Lesson 11: hello_server, the origin's HTTP server done right: 200 and
# "Hello, world!" for every GET, the right error for everything else, and
# no client can stop it serving the next one.

load support/helpers
load support/http
load support/hostile

# ask TEXT [PEER_OPTIONS...]: sends TEXT (bash $'...' quoting) to the
# server as raw bytes through the peer, records and splits the reply.
ask() {
    printf '%s' "$1" >"$T/req"
    shift
    http_exchange "$SERVER_PORT" "$T/req" "$@"
}

# assert_body TEXT: the body of the last reply is exactly TEXT.
assert_body() {
    printf '%s' "$1" >"$T/want"
    assert_same_bytes "$T/want" "$T/reply.body" "the response body"
}

# assert_hello: the last reply is the whole hello response.
assert_hello() {
    [[ $HTTP_STATUS_LINE == "HTTP/1.1 200 OK" ]] ||
        fail "$(printf 'expected the status line "HTTP/1.1 200 OK", got:\n%s' "$(http_head_shown)")"
    assert_http_header Content-Type text/html
    assert_http_header Content-Length 13
}

# assert_error CODE: the last reply is a CODE with a correct Content-Length
# and Connection: close (the server closes after it).
assert_error() {
    assert_http_status "$1"
    assert_http_header Connection close
    http_header_get Content-Length ||
        fail "$(printf 'a %s response needs a Content-Length too; the head:\n%s' "$1" "$(http_head_shown)")"
    ((HTTP_BODY_BYTES == HTTP_VALUE)) ||
        fail "the $1 response says Content-Length: $HTTP_VALUE but its body has $HTTP_BODY_BYTES bytes"
}

# assert_still_serving: a fresh client (curl) still gets the hello page.
assert_still_serving() {
    is_running "$SERVER_PID" || fail "$(printf 'the server died.\nits stderr:\n%s' "$(indent "$(cat "$T/hello_server.err")")")"
    curl_http "http://127.0.0.1:$SERVER_PORT/"
    [[ $status == 0 ]] || fail "$(printf 'the server no longer serves: curl exited %s:\n%s' "$status" "$(indent "$stderr")")"
    assert_hello
}

### what the origin promised, checked by real clients ###

@test "curl gets 200 OK, text/html, Content-Length 13 and Hello, world!" {
    start_server hello_server
    curl_http "http://127.0.0.1:$SERVER_PORT/"
    [[ $status == 0 ]] ||
        fail "$(printf 'curl got no proper response (exit %s):\n%s\nthe server logged:\n%s' "$status" "$(indent "$stderr")" "$(indent "$(cat "$T/hello_server.err")")")"
    assert_hello
    printf 'Hello, world!' >"$T/want"
    assert_same_bytes "$T/want" "$T/curl.resp.body" "the body curl received"
}

@test "python's http.client gets the same answer, on any path" {
    start_server hello_server
    py_http "$SERVER_PORT" GET "/any/path/at/all?x=1"
    assert_status 0
    [[ $output == $'200 OK\n'* ]] || fail "$(printf 'expected "200 OK" from http.client, got:\n%s' "$(indent "$output")")"
    # Header names are case-insensitive: compare in lower case.
    local seen=${output,,}$'\n'
    [[ $seen == *$'\ncontent-type: text/html\n'* ]] ||
        fail "$(printf 'expected the header "Content-Type: text/html"; http.client saw:\n%s' "$(indent "$output")")"
    [[ $seen == *$'\ncontent-length: 13\n'* ]] ||
        fail "$(printf 'expected the header "Content-Length: 13"; http.client saw:\n%s' "$(indent "$output")")"
    printf 'Hello, world!' >"$T/want"
    assert_same_bytes "$T/want" "$T/py.body" "the body http.client read"
}

@test "HEAD gets the same headers and no body" {
    start_server hello_server
    ask $'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n'
    assert_hello
    [[ ! -s $T/reply.body ]] ||
        fail "$(printf 'a HEAD response has no body, but after the blank line came:\n%s' "$(indent "$(head -c 200 "$T/reply.body")")")"
}

@test "says Connection: close and closes after answering" {
    start_server hello_server
    # -H: the peer does not half-close; it waits for the server to close.
    ask $'GET / HTTP/1.1\r\nHost: x\r\n\r\n' -H
    assert_hello
    assert_http_header Connection close
    assert_body "Hello, world!"
}

### reading the request ###

@test "reads a request that arrives one byte at a time" {
    start_server hello_server
    ask $'GET /slowly HTTP/1.1\r\nHost: x\r\n\r\n' -k 1 -d 1
    assert_hello
    assert_body "Hello, world!"
}

@test "accepts bare LF line ends and skips empty lines before the request line" {
    start_server hello_server
    ask $'\r\n\nGET / HTTP/1.1\nHost: x\nAccept: */*\n\n'
    assert_hello
    assert_body "Hello, world!"
}

### the right error for every bad request ###

@test "a malformed request line gets 400 with a Content-Length and Connection: close" {
    start_server hello_server
    local line
    for line in "GET /" "GET  / HTTP/1.1" "GET / HTTP/1.1 extra" "GET / http/1.1" "G(T / HTTP/1.1" \
        "GET /a"$'\x01'"b HTTP/1.1"; do
        ask "$line"$'\r\nHost: x\r\n\r\n'
        [[ $HTTP_STATUS == 400 ]] ||
            fail "$(printf 'the request line %q is malformed: expected 400, got:\n%s' "$line" "$(http_head_shown)")"
        assert_error 400
    done
}

@test "an unknown method gets 501" {
    start_server hello_server
    ask $'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n'
    assert_error 501
}

@test "an HTTP version other than 1.0 and 1.1 gets 505" {
    start_server hello_server
    local v
    for v in HTTP/2.0 HTTP/1.2 HTTP/0.9; do
        ask "GET / $v"$'\r\nHost: x\r\n\r\n'
        [[ $HTTP_STATUS == 505 ]] || fail "$(printf 'version %s: expected 505, got:\n%s' "$v" "$(http_head_shown)")"
    done
    assert_error 505
}

@test "HTTP/1.1 without Host, or with two, gets 400; HTTP/1.0 without Host is fine" {
    start_server hello_server
    ask $'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'
    assert_error 400
    ask $'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'
    assert_error 400
    ask $'GET / HTTP/1.0\r\n\r\n'
    assert_hello
}

@test "malformed header lines get 400 (space before the colon, obs-fold, bad Content-Length)" {
    start_server hello_server
    local fields
    for fields in $'Host : x' $'Host: x\r\nX-A: 1\r\n  folded' $'Host: x\r\nno colon here' \
        $'Host: x\r\nContent-Length: 1x' $'Host: x\r\nContent-Length: 1\r\nContent-Length: 2' \
        $'Host: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked'; do
        ask "GET / HTTP/1.1"$'\r\n'"$fields"$'\r\n\r\n'
        [[ $HTTP_STATUS == 400 ]] ||
            fail "$(printf 'these header lines are malformed:\n%s\nexpected 400, got:\n%s' "$(indent "${fields//$'\r'/}")" "$(http_head_shown)")"
    done
}

@test "a request line over 8 KiB gets 414; one just under gets 200" {
    start_server hello_server
    local long
    long=$(printf '%08000d' 0)
    ask "GET /$long HTTP/1.1"$'\r\nHost: x\r\n\r\n'
    assert_hello
    long=$(printf '%09000d' 0)
    ask "GET /$long HTTP/1.1"$'\r\nHost: x\r\n\r\n'
    assert_error 414
}

@test "oversized headers get 431 (one 9 KiB line, or 40 KiB in all), a body over 1 MiB 413" {
    start_server hello_server
    local pad i fields=""
    pad=$(printf '%09000d' 0)
    ask "GET / HTTP/1.1"$'\r\nHost: x\r\nX-Big: '"$pad"$'\r\n\r\n'
    assert_error 431
    # 40 lines of 1000 bytes: each is fine, together they are too many.
    pad=$(printf '%0986d' 0)
    for i in {10..49}; do fields+="X-Field-$i: $pad"$'\r\n'; done
    ask "GET / HTTP/1.1"$'\r\nHost: x\r\n'"$fields"$'\r\n'
    assert_error 431
    # 20 of them (20 KB) are within the limit.
    fields=${fields:0:20000}
    ask "GET / HTTP/1.1"$'\r\nHost: x\r\n'"$fields"$'\r\n'
    assert_hello
    # The body never comes: 413 must not wait for it.
    ask $'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n'
    assert_error 413
}

### no client stops the next one ###

@test "64 KB of garbage gets a 4xx or a close, and the next client is served" {
    start_server hello_server
    make_random "$T/garbage" 65536
    http_exchange "$SERVER_PORT" "$T/garbage"
    if [[ -s $T/reply ]]; then
        [[ $HTTP_STATUS == 4[0-9][0-9] ]] ||
            fail "$(printf 'garbage must get a 4xx (or just a close); it got:\n%s' "$(http_head_shown)")"
    fi
    assert_still_serving
}

@test "a client that closes before the blank line does not hang the server (CS:APP Tiny's bug)" {
    # -t 30: the server must notice the EOF, not wait for its timeout.
    start_server hello_server -t 30
    ask $'GET / HTTP/1.1\r\nHost: x\r\n'
    assert_still_serving
}

@test "a client that sends nothing delays the next one by the timeout at most (-t 0.5)" {
    start_server hello_server -t 0.5
    spawn silent "$PEER" -C 127.0.0.1 "$SERVER_PORT"
    await_line silent '^connected to '
    assert_still_serving
}

@test "survives clients that reset the connection instead of reading the answer" {
    start_server hello_server
    # SO_LINGER 0 makes close() send RST: the server's send() then fails
    # (EPIPE or ECONNRESET), which must not kill it (SIGPIPE).
    run_limited "$RUN_TIMEOUT" python3 -S -c '
import socket, struct, sys
for i in range(10):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()' "$SERVER_PORT"
    assert_status 0
    assert_still_serving
}

### the command line and signals ###

@test "handles the shared hostile-input corpus (tests/hostile/cases.txt) and keeps serving" {
    start_server hello_server
    assert_survives_hostile_corpus /
}

@test "-b ::1 listens on the IPv6 loopback and says so" {
    start_server hello_server -b ::1
    [[ $AWAITED_LINE == "listening on ::1:$SERVER_PORT" ]] ||
        fail "expected the line 'listening on ::1:$SERVER_PORT', got '$AWAITED_LINE'"
    curl_http "http://[::1]:$SERVER_PORT/" -g
    [[ $status == 0 ]] || fail "$(printf 'curl could not fetch http://[::1]:%s/ (exit %s):\n%s' "$SERVER_PORT" "$status" "$(indent "$stderr")")"
    assert_hello
}

@test "exits 0 on SIGTERM and on SIGINT" {
    local sig
    for sig in TERM INT; do
        start_server hello_server
        stop_server_with "$sig" || return 1
    done
}

@test "-h prints usage to stdout and exits 0; an unknown option is a usage error, exit 2" {
    run_prog hello_server -h
    assert_status 0
    assert_output --partial "usage: hello_server"
    run_prog hello_server --bogus
    assert_status 2
    assert_stderr_matches '^usage: hello_server'
}
