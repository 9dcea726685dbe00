#!/usr/bin/env bats
# Lesson 10: http_get, the origin's HTTP client done right: one GET with
# Host and Connection: close, the body to stdout byte for byte, curl's
# exit codes.

load support/helpers
load support/http

# get ARGS...: runs http_get ARGS with a time limit, stdout to $T/out
# (byte-exact: binary survives), stderr in $stderr; sets $status.
get() {
    local path
    path=$(prog http_get) || return 1
    local args=""
    (($#)) && printf -v args ' %q' "$@"
    printf '$ %s%s >$T/out\n' "${path#"$REPO_ROOT"/}" "$args" >>"$T/transcript"
    # limited_exec: the time limit (x TIME_SCALE) and the output cap; the
    # bodies here are up to 5 MB, so the cap is 16 MiB.
    OUTPUT_CAP=16M limited_exec "$RUN_TIMEOUT" "$T/out" "$T/err" "$path" "$@" </dev/null
    output="" stderr=""
    IFS= read -r -d '' stderr <"$T/err" || true
    stderr=${stderr%$'\n'}
    explain_abnormal_exit http_get "$RUN_TIMEOUT"
}

# response NAME TEXT: writes TEXT (bash $'...' quoting) to $T/NAME.
response() { printf '%s' "$2" >"$T/$1"; }

# assert_out TEXT: what http_get wrote to stdout is exactly TEXT.
assert_out() {
    printf '%s' "$1" >"$T/want"
    assert_same_bytes "$T/want" "$T/out" "what http_get wrote to stdout and the body the server sent"
}

OK_HELLO=$'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\nHello, world!'

### bodies from a real server ###

@test "prints a text file and a 5 MB binary file from python's http.server byte for byte" {
    mkdir "$T/www"
    printf 'line one\nline two\r\n\nno newline at the end' >"$T/www/note.txt"
    make_random "$T/www/blob.bin" 5000000
    start_file_server "$T/www"
    get "http://127.0.0.1:$FILES_PORT/note.txt"
    assert_status 0
    assert_same_bytes "$T/www/note.txt" "$T/out" "the body printed and the text file served"
    get "http://127.0.0.1:$FILES_PORT/blob.bin"
    assert_status 0
    assert_same_bytes "$T/www/blob.bin" "$T/out" "the body printed and the binary file served (Content-Length: 5000000)"
}

@test "reads a body with no Content-Length until the server closes" {
    mkdir "$T/www"
    make_random "$T/www/blob.bin" 1000000
    start_file_server -c "$T/www"
    get "http://127.0.0.1:$FILES_PORT/blob.bin"
    assert_status 0
    assert_same_bytes "$T/www/blob.bin" "$T/out" "the body printed and the file served (no Content-Length: the body ends when the server closes)"
}

@test "stops after Content-Length bytes without waiting for the server to close" {
    # -H: the peer keeps the connection open after sending; 13 bytes are
    # the body, "EXTRA" is not. Waiting for EOF would hang.
    response resp "${OK_HELLO}EXTRA"
    serve_response "$T/resp" -H
    get "http://127.0.0.1:$PEER_PORT/"
    assert_status 0
    assert_out "Hello, world!"
}

### a head in pieces, odd but legal heads ###

@test "reads the response when it arrives one byte, or three bytes, at a time" {
    # Three bytes at a time, the blank line that ends the head is split
    # across two reads: a reader that looks for it in each read alone
    # never finds it.
    response resp $'HTTP/1.1 200 OK\r\nServer: peer\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz'
    local k
    for k in 1 3; do
        serve_response "$T/resp" -k "$k" -d 1
        get "http://127.0.0.1:$PEER_PORT/"
        assert_status 0
        assert_out "abcdefghijklmnopqrstuvwxyz"
    done
}

@test "accepts reason phrases with spaces, empty, or missing" {
    local line
    for line in "HTTP/1.1 200 Very Much OK Indeed" "HTTP/1.1 200 " "HTTP/1.1 200" "HTTP/1.0 200 OK"; do
        response resp "$line"$'\r\nContent-Length: 5\r\n\r\nhello'
        serve_response "$T/resp"
        get "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 0 ]] ||
            fail "$(printf 'the status line "%s" is legal, but http_get exited %s.\nstderr:\n%s' "$line" "$status" "$(indent "$stderr")")"
        assert_out "hello"
    done
}

@test "accepts lines that end in a bare LF" {
    response resp $'HTTP/1.1 200 OK\nContent-Length: 6\n\nbare\n\n'
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/"
    assert_status 0
    assert_out $'bare\n\n'
}

@test "-i prints the status line and headers exactly as received, then the body" {
    response resp $'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Odd-Case: KeEp Me\r\nContent-Length: 5\r\n\r\nhello'
    serve_response "$T/resp"
    get -i "http://127.0.0.1:$PEER_PORT/"
    assert_status 0
    assert_same_bytes "$T/resp" "$T/out" "what http_get -i printed and the whole response the server sent"
}

### the request ###

@test "sends GET /path HTTP/1.1 with Host and Connection: close, ending in a blank line" {
    response resp "$OK_HELLO"
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/some/path?q=1"
    assert_status 0
    peer_done
    local req
    req=$(cat "$T/request"; echo x)
    req=${req%x}
    local shown
    shown=$(indent "$(od -An -c "$T/request" | head -20)")
    [[ ${req%%$'\r\n'*} == "GET /some/path?q=1 HTTP/1.1" ]] ||
        fail "$(printf 'the request line must be exactly\n    GET /some/path?q=1 HTTP/1.1\nfollowed by CRLF; the server received:\n%s' "$shown")"
    [[ $req == *$'\r\n\r\n' ]] ||
        fail "$(printf 'the request must end with an empty line (CRLF CRLF) and nothing after it; the server received:\n%s' "$shown")"
    [[ $req == *$'\r\n'[Hh][Oo][Ss][Tt]": 127.0.0.1:$PEER_PORT"$'\r\n'* ]] ||
        fail "$(printf 'expected a header line "Host: 127.0.0.1:%s" (HTTP/1.1 requires Host); the server received:\n%s' "$PEER_PORT" "$shown")"
    [[ ${req,,} == *$'\r\nconnection: close\r\n'* ]] ||
        fail "$(printf 'expected a header line "Connection: close"; the server received:\n%s' "$shown")"
    local body=${req#*$'\r\n\r\n'}
    [[ -z $body ]] || fail "$(printf 'a GET has no body, but after the blank line came more bytes; the server received:\n%s' "$shown")"
}

@test "asks for / when the URL has no path" {
    response resp "$OK_HELLO"
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT"
    assert_status 0
    peer_done
    local first
    first=$(head -1 "$T/request")
    [[ $first == $'GET / HTTP/1.1\r' ]] ||
        fail "$(printf 'expected the request line "GET / HTTP/1.1", got:\n%s' "$(indent "$first")")"
}

### HTTP errors ###

@test "prints the body of a 404 and exits 0 without -f" {
    response resp $'HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nno such...'
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/nope"
    assert_status 0
    assert_out "no such..."
}

@test "-f exits 22 on a 404, prints no body, and names the status and reason on stderr" {
    response resp $'HTTP/1.1 404 Not Found Here\r\nContent-Length: 10\r\n\r\nno such...'
    serve_response "$T/resp"
    get -f "http://127.0.0.1:$PEER_PORT/nope"
    assert_status 22
    [[ ! -s $T/out ]] || fail "$(printf 'with -f, the body of an error must not be printed; stdout was:\n%s' "$(indent "$(cat "$T/out")")")"
    assert_stderr_matches '^http_get: .*404 Not Found Here$' "one line naming the status and the whole reason phrase"
}

### bad URLs ###

@test "an https:// URL gets one clear line and exit 2" {
    get "https://127.0.0.1/"
    assert_status 2
    assert_stderr_line "http_get: unsupported URL scheme 'https' (only http://)"
}

@test "a malformed URL gets one clear line and exit 2" {
    local url
    for url in "127.0.0.1/" "http://" "http:///path" "http://:80/" "http://127.0.0.1:http/" \
        "http://127.0.0.1:99999/" "http://127.0.0.1:8080/a b"; do
        get "$url"
        [[ $status == 2 ]] ||
            fail "$(printf 'the URL "%s" is malformed: expected exit 2, got %s.\nstderr:\n%s' "$url" "$status" "$(indent "$stderr")")"
        [[ $stderr == http_get:* && $stderr != *$'\n'* ]] ||
            fail "$(printf 'for the URL "%s", expected one line on stderr starting with "http_get:", got:\n%s' "$url" "$(indent "$stderr")")"
    done
}

### network failures: curl's exit codes ###

@test "a refused connection exits 7 with one line" {
    closed_port
    get "http://127.0.0.1:$CLOSED_PORT/"
    assert_status 7
    assert_stderr_matches '^http_get: .*Connection refused$'
}

@test "an unknown host exits 6 with one line" {
    # .invalid never resolves (RFC 6761); RES_OPTIONS bounds a slow resolver.
    RES_OPTIONS="timeout:1 attempts:1" get "http://no-such-host.invalid/"
    assert_status 6
    assert_stderr_matches '^http_get: no-such-host\.invalid: '
}

@test "a server that never answers times out with exit 28 (-t 0.3)" {
    start_peer -- -r "$T/request"
    get -t 0.3 "http://127.0.0.1:$PEER_PORT/"
    assert_status 28
    assert_stderr_matches '^http_get: '
}

@test "a broken reply gets curl's code: 52 empty, 18 cut short, 56 reset" {
    : >"$T/empty"
    serve_response "$T/empty"
    get "http://127.0.0.1:$PEER_PORT/"
    [[ $status == 52 ]] || fail "$(printf 'the server closed without a byte: expected exit 52, got %s.\nstderr:\n%s' "$status" "$(indent "$stderr")")"
    assert_stderr_matches '^http_get: '

    response resp $'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly forty bytes of the hundred promised'
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/"
    [[ $status == 18 ]] || fail "$(printf 'Content-Length said 100, 40 came, then the server closed: expected exit 18, got %s.\nstderr:\n%s' "$status" "$(indent "$stderr")")"
    assert_stderr_matches '^http_get: '
    assert_out "only forty bytes of the hundred promised"

    # This peer resets the connection (RST, not FIN) when the request's
    # first byte arrives, before it sends anything.
    start_peer -- -R 1
    get "http://127.0.0.1:$PEER_PORT/"
    [[ $status == 56 ]] || fail "$(printf 'the server reset the connection: expected exit 56, got %s.\nstderr:\n%s' "$status" "$(indent "$stderr")")"
    assert_stderr_matches '^http_get: .*reset'
}

### malformed responses ###

@test "a malformed head is refused with exit 8: not a status line, or a bad Content-Length" {
    local resp
    for resp in $'hello there\r\n\r\nthis is not HTTP' $'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello' \
        $'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'; do
        response resp "$resp"
        serve_response "$T/resp"
        get "http://127.0.0.1:$PEER_PORT/"
        [[ $status == 8 ]] ||
            fail "$(printf 'for this response:\n%s\nexpected exit 8 (a head we cannot parse), got %s.\nstderr:\n%s' "$(indent "${resp//$'\r'/}")" "$status" "$(indent "$stderr")")"
        assert_stderr_matches '^http_get: '
        [[ ! -s $T/out ]] || fail "nothing may be printed for a head we cannot parse; stdout had $(wc -c <"$T/out") bytes"
    done
}

@test "a response head over 64 KiB is refused with exit 56, not buffered without end" {
    {
        printf 'HTTP/1.1 200 OK\r\n'
        printf 'X-Filler-%04d: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n' {1..1000}
        printf 'Content-Length: 2\r\n\r\nok'
    } >"$T/resp"
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/"
    assert_status 56
    assert_stderr_matches '^http_get: .*header'
}

@test "a chunked response is refused with one clear line (lesson 13 decodes it)" {
    response resp $'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
    serve_response "$T/resp"
    get "http://127.0.0.1:$PEER_PORT/"
    assert_status 1
    assert_stderr_matches '^http_get: .*(chunked|Transfer-Encoding)'
}

### the command line ###

@test "-h prints usage to stdout and exits 0; no URL is a usage error, exit 2" {
    run_prog http_get -h
    assert_status 0
    assert_output --partial "usage: http_get"
    run_prog http_get
    assert_status 2
    assert_stderr_matches '^usage: http_get'
}
