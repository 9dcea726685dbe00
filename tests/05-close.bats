#!/usr/bin/env bats
# Lesson 05: hello_client sends its message, half-closes with
# shutdown(SHUT_WR), prints the whole reply until the server closes, and
# closes the socket.

load support/helpers
load support/client
load support/stream

# How long the peer waits for the client's EOF before it gives up.
EOF_WAIT_MS=2000

# start_hello_server REPLY [PEER_OPTIONS...]: a server of the kind this
# client is for: it records what arrives in $T/received, answers only
# once the client has finished sending (EOF; it gives up after
# EOF_WAIT_MS), then sends the file REPLY and closes.
start_hello_server() {
    local reply=$1
    shift
    start_peer -- -e -E "$EOF_WAIT_MS" -r "$T/received" -s "$reply" "$@"
}

# run_hello ARGS...: runs hello_client 127.0.0.1 PEER_PORT ARGS... with
# stdout into $T/got, then reads the peer's "done:" line. Fails with an
# explanation when the client failed, or never told the server that its
# message was complete.
run_hello() {
    run_to_file "$T/got" hello_client 127.0.0.1 "$PEER_PORT" "$@"
    if [[ $status != 0 && $stderr == *"Bad file descriptor"* ]]; then
        fail "$(printf 'hello_client failed with "Bad file descriptor". Did you close() the socket before reading the reply?\nclose() gives the descriptor back for both directions; shutdown(sock, SHUT_WR) ends only the sending half.\nstderr:\n%s' "$(indent "$stderr")")"
    fi
    if [[ $status != 0 && $stderr == *"Connection reset by peer"* ]]; then
        explain_shut_rdwr
    fi
    assert_status 0
    explain_no_eof
}

# explain_no_eof: fails, explaining the half-close, if the server never saw
# the client's EOF (the peer reports "no-eof" when its wait runs out).
explain_no_eof() {
    peer_done
    if [[ $PEER_HOW == no-eof ]]; then
        fail "$(printf 'the server waited %s ms for the end of your message and never saw it, so it never answered\n(it received %s bytes, then gave up and closed: the peer reported "no-eof").\nThe client never called shutdown(sock, SHUT_WR) after sending. TCP has no message boundaries:\nthe only way to say "that was all" is the FIN that shutdown(SHUT_WR) sends; recv() on the\nother side then returns 0.' "$EOF_WAIT_MS" "$PEER_RECEIVED")"
    fi
}

# explain_shut_rdwr: the client shut down both directions.
explain_shut_rdwr() {
    fail "$(printf 'hello_client failed with "Connection reset by peer". Did you shut down both directions, SHUT_RDWR?\nOn Linux, a reply that arrives after SHUT_RD makes the kernel answer with RST, and recv() then\nfails with ECONNRESET. Shut only the sending half: shutdown(sock, SHUT_WR).\nstderr:\n%s' "$(indent "$stderr")")"
}

# assert_received TEXT: the server received exactly TEXT, nothing more.
assert_received() {
    printf '%s' "$1" >"$T/expected-message"
    cmp -s "$T/expected-message" "$T/received" && return 0
    local why=""
    printf '%s\0' "$1" >"$T/with-nul"
    printf '%s\n' "$1" >"$T/with-newline"
    if cmp -s "$T/with-nul" "$T/received"; then
        why=$'\nYou sent the string'"'"$'s terminating NUL too: the length is strlen(message), not sizeof.'
    elif cmp -s "$T/with-newline" "$T/received"; then
        why=$'\nYou sent a newline after the message: send exactly the message, nothing added.'
    fi
    [[ -z $why ]] || fail "$(printf 'the server should receive exactly %s bytes, "%s"; it received %s bytes:\n%s%s' \
        "$(wc -c <"$T/expected-message" | tr -d ' ')" "$1" "$(wc -c <"$T/received" | tr -d ' ')" "$(od -An -c "$T/received" | head -4)" "$why")"
    assert_same_bytes "$T/expected-message" "$T/received" "the message hello_client should send and what the server received"
}

# assert_whole_reply REPLY: stdout holds exactly the file REPLY.
assert_whole_reply() {
    local reply=$1 want got
    cmp -s "$reply" "$T/got" && return 0
    want=$(wc -c <"$reply" | tr -d ' ')
    got=$(wc -c <"$T/got" | tr -d ' ')
    if ((got == 0 && want > 0)); then
        explain_no_eof
        fail "$(printf 'the server sent a %s-byte reply, but hello_client printed nothing.\n(Did you shut down both directions, SHUT_RDWR? Only the sending half, SHUT_WR, should be shut.)' "$want")"
    fi
    assert_same_stream "$reply" "$T/got" "the reply the server sent and what hello_client printed"
}

@test "sends exactly 'Hello, world!' (13 bytes: no NUL, no newline) when no MESSAGE is given" {
    printf 'Hello yourself!' >"$T/reply"
    start_hello_server "$T/reply"
    run_hello
    assert_received "Hello, world!"
}

@test "sends the MESSAGE it is given, byte for byte" {
    printf 'ok' >"$T/reply"
    start_hello_server "$T/reply"
    run_hello "GET /notes: a longer message, with spaces, 'quotes' & UTF-8: héllo"
    assert_received "GET /notes: a longer message, with spaces, 'quotes' & UTF-8: héllo"
}

@test "half-closes after sending, so a server that waits for EOF answers" {
    printf 'Hello, client. I waited for your EOF (your FIN) before answering.\n' >"$T/reply"
    start_hello_server "$T/reply"
    run_hello
    assert_whole_reply "$T/reply"
    [[ $PEER_HOW == eof ]] || fail "the server expected the connection to end with your EOF, but it ended as: $PEER_HOW"
}

@test "prints the whole reply, not only the first 1024 bytes (a 100 KB binary reply)" {
    make_random "$T/reply" 102400
    start_hello_server "$T/reply"
    run_hello
    assert_whole_reply "$T/reply"
}

@test "prints the whole reply even when it arrives one byte at a time" {
    printf '%s' "One byte, then a pause, then the next: each recv() gets one byte. Keep reading until recv() returns 0." >"$T/reply"
    start_hello_server "$T/reply" -k 1 -d 2
    run_hello
    assert_whole_reply "$T/reply"
}

@test "stdout is exactly the reply: NUL bytes kept, no newline added" {
    printf 'line one\nNUL bytes:\0\0 inside\n\nand no newline at the end' >"$T/reply"
    start_hello_server "$T/reply"
    run_hello
    assert_whole_reply "$T/reply"
}

@test "a reply cut off by a reset is an error, not the whole reply: 'recv: Connection reset by peer', exit 1" {
    printf 'The first half of a reply; the server aborts before the rest' >"$T/reply"
    # The server answers after the client's EOF, then resets (RST), no FIN.
    start_hello_server "$T/reply" -X
    run_to_file "$T/got" hello_client 127.0.0.1 "$PEER_PORT"
    if [[ $status == 0 ]]; then
        fail "$(printf 'the server sent %s bytes and then aborted the connection (RST instead of FIN), but\nhello_client exited 0 as if that were the whole reply (stdout got %s bytes).\nrecv() returning -1 with errno ECONNRESET means the reply was cut off: say so and exit 1.\nOnly recv() returning 0 (the FIN) means the reply is complete.\nstderr:\n%s' \
            "$(wc -c <"$T/reply" | tr -d ' ')" "$(wc -c <"$T/got" | tr -d ' ')" "$(indent "$stderr")")"
    fi
    assert_status 1
    [[ $'\n'$stderr$'\n' =~ $'\n'hello_client:\ [a-z]+:\ Connection\ reset\ by\ peer$'\n' ]] ||
        fail "$(printf 'expected a line on stderr like\n    hello_client: recv: Connection reset by peer\ngot:\n%s' "$(indent "$stderr")")"
}

@test "stdout closed by its reader: one error line and exit 1, not death by SIGPIPE" {
    # 1 MB: far more than a pipe holds, so write() must meet the closed pipe.
    make_random "$T/reply" 1048576
    start_hello_server "$T/reply"
    run_closed_stdout hello_client 127.0.0.1 "$PEER_PORT"
    assert_status 1
    assert_stderr_line "hello_client: stdout: Broken pipe"
}

@test "half-closes with shutdown(SHUT_WR), then closes the socket once the reply is in" {
    command -v strace >/dev/null || skip "needs strace (Linux; make deps installs it)"
    printf 'Goodbye.' >"$T/reply"
    start_hello_server "$T/reply"
    local path
    path=$(prog hello_client)
    # LeakSanitizer cannot run under ptrace: switch it off for this run.
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        run_limited 10 strace -o "$T/trace" -e trace=connect,shutdown,recvfrom,read,close "$path" 127.0.0.1 "$PEER_PORT"
    assert_status 0
    # What happened on the socket, from the connect() that succeeded on.
    local trace fd
    sed -n '/^connect(.* = 0$/,$p' "$T/trace" >"$T/after-connect"
    trace=$(cat "$T/after-connect")
    fd=$(sed -n '1s/^connect(\([0-9]*\),.*/\1/p' "$T/after-connect")
    [[ -n $fd ]] || fail "$(printf 'strace saw no connect() that succeeded:\n%s' "$(indent "$(cat "$T/trace")")")"
    local shut closed eof
    shut=$(grep -n "^shutdown($fd, SHUT_WR) *= 0" "$T/after-connect" | cut -d: -f1 | head -1)
    eof=$(grep -n -E "^(recvfrom|read)\($fd, .*\) *= 0$" "$T/after-connect" | cut -d: -f1 | head -1)
    closed=$(grep -n "^close($fd) *= 0" "$T/after-connect" | cut -d: -f1 | head -1)
    [[ -n $shut ]] || fail "$(printf 'no shutdown(%s, SHUT_WR) call on the socket: end the sending half, and only that half.\nstrace saw:\n%s' "$fd" "$(indent "$trace")")"
    [[ -n $eof ]] || fail "$(printf 'no recv() on the socket returned 0: read until the server closes.\nstrace saw:\n%s' "$(indent "$trace")")"
    [[ -n $closed ]] || fail "$(printf 'the socket (fd %s) was never closed: close() it once recv() has returned 0.\nstrace saw:\n%s' "$fd" "$(indent "$trace")")"
    ((shut < eof && eof < closed)) ||
        fail "$(printf 'expected, in this order: shutdown(%s, SHUT_WR), a recv() that returns 0, close(%s).\nstrace saw:\n%s' "$fd" "$fd" "$(indent "$trace")")"
}

@test "connects to localhost, as the origin's client does" {
    printf 'Hello from 127.0.0.1' >"$T/reply"
    start_hello_server "$T/reply"
    run_to_file "$T/got" hello_client localhost "$PEER_PORT"
    [[ $status == 0 || $stderr != *"Connection reset by peer"* ]] || explain_shut_rdwr
    assert_status 0
    assert_whole_reply "$T/reply"
}

@test "tries every address of the name it is given, not only the first" {
    printf 'You found me on the second address.' >"$T/reply"
    start_hello_server "$T/reply"
    use_two_addresses twoaddr.test
    run_to_file "$T/got" hello_client twoaddr.test "$PEER_PORT"
    explain_two_addresses twoaddr.test "$PEER_PORT"
    [[ $status == 0 || $stderr != *"Connection reset by peer"* ]] || explain_shut_rdwr
    assert_status 0
    assert_whole_reply "$T/reply"
}

@test "a refused connection is one error line and exit 1" {
    hold_refused_port
    run_to_file "$T/got" hello_client 127.0.0.1 "$REFUSED_PORT"
    assert_status 1
    assert_stderr_matches '^hello_client: .*Connection refused$' "hello_client: connect to 127.0.0.1 port $REFUSED_PORT: Connection refused"
}

@test "-h prints usage to stdout and exits 0" {
    run_prog hello_client -h
    assert_status 0
    assert_output --partial "usage: hello_client"
}

@test "a missing or extra argument is a usage error: 'usage: ...' on stderr, exit 2" {
    run_prog hello_client 127.0.0.1
    assert_status 2
    assert_stderr_matches '^usage: hello_client'
    run_prog hello_client 127.0.0.1 8080 "a message" extra
    assert_status 2
    assert_stderr_matches '^usage: hello_client'
}
