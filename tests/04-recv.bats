#!/usr/bin/env bats
# Lesson 04: tcp_recv receives until the server closes, copies every byte
# to stdout, and says how many bytes came.

load support/helpers
load support/client
load support/stream
load support/shortio

# recv_from_peer FILE PEER_OPTIONS...: a peer sends FILE with the given
# options; tcp_recv receives it into $T/got.
recv_from_peer() {
    local file=$1
    shift
    start_peer -- -s "$file" "$@"
    run_to_file "$T/got" tcp_recv 127.0.0.1 "$PEER_PORT"
}

# assert_received WANT: stdout was WANT byte for byte, the exit status 0,
# and stderr the one line "received N bytes".
assert_received() {
    local want=$1 n
    n=$(wc -c <"$want" | tr -d ' ')
    assert_status 0
    assert_same_stream "$want" "$T/got" "what the server sent and what tcp_recv printed"
    if [[ $stderr =~ ^received\ ([0-9]+)\ bytes$ && ${BASH_REMATCH[1]} != "$n" ]]; then
        fail "$(printf 'stdout has all %s bytes the server sent, but tcp_recv said "%s".\nCount the n each recv() returned, not the size of your buffer.' "$n" "$stderr")"
    fi
    assert_stderr_line "received $n bytes"
}

@test "receives a 10 MB binary stream byte for byte and says 'received 10485760 bytes'" {
    make_random "$T/want" 10485760
    # 10 MB to stdout: past the usual 1 MiB output cap (helpers.bash).
    OUTPUT_CAP=16M recv_from_peer "$T/want"
    assert_received "$T/want"
}

@test "receives the whole stream even when it arrives one byte at a time" {
    make_random "$T/want" 200
    recv_from_peer "$T/want" -k 1 -d 2
    assert_received "$T/want"
}

@test "passes NUL bytes and a missing final newline through intact" {
    printf 'before\0\0after\0\nno newline at the end' >"$T/want"
    recv_from_peer "$T/want"
    assert_received "$T/want"
}

@test "an empty stream prints nothing and says 'received 0 bytes'" {
    : >"$T/want"
    recv_from_peer "$T/want"
    assert_received "$T/want"
}

@test "a connection reset by the server is an error: 'recv: Connection reset by peer', exit 1" {
    # The peer sends a few bytes, then aborts: RST instead of FIN.
    printf 'the start of a reply that never ends\n' >"$T/start"
    start_peer -- -s "$T/start" -X
    run_to_file "$T/got" tcp_recv 127.0.0.1 "$PEER_PORT"
    if [[ $status == 0 ]]; then
        fail "$(printf 'the server aborted the connection (RST), but tcp_recv exited 0 as if the stream had ended normally.\nrecv() returning -1 with errno ECONNRESET is an error: what arrived may be cut short. Only 0 means the end.\nstderr:\n%s' "$(indent "$stderr")")"
    fi
    assert_status 1
    [[ $'\n'$stderr$'\n' =~ $'\n'tcp_recv:\ [a-z]+:\ Connection\ reset\ by\ peer$'\n' ]] ||
        fail "$(printf 'expected a line on stderr like\n    tcp_recv: recv: Connection reset by peer\ngot:\n%s' "$(indent "$stderr")")"
}

@test "writes every byte to stdout even when each write() takes at most 7 bytes" {
    make_random "$T/want" 30000
    start_peer -- -s "$T/want"
    local server_port=$PEER_PORT
    # stdout is a TCP connection to a second peer that records it.
    start_peer sink -- -r "$T/got"
    local sink_port=$PEER_PORT
    short_io tcp_recv 7
    run_to_socket "$sink_port" tcp_recv 127.0.0.1 "$server_port"
    assert_status 0
    peer_done sink
    local n
    n=$(wc -c <"$T/got" | tr -d ' ')
    if ((n < 30000)); then
        fail "$(printf 'the server sent 30000 bytes; stdout (a socket here, where write() may take only part of\nwhat it is given) got %s.\nwrite() returns how many bytes it took: loop until all n bytes of each recv() are\nwritten, as send_all() does for a socket (a pipe or a socket as stdout does this too).' "$n")"
    fi
    assert_same_stream "$T/want" "$T/got" "what the server sent and what tcp_recv wrote"
}

@test "stdout closed by its reader: one error line and exit 1, not death by SIGPIPE" {
    # 1 MB: far more than a pipe holds, so write() must meet the closed pipe.
    make_random "$T/want" 1048576
    start_peer -- -s "$T/want"
    run_closed_stdout tcp_recv 127.0.0.1 "$PEER_PORT"
    assert_status 1
    assert_stderr_line "tcp_recv: stdout: Broken pipe"
}

@test "a refused connection is one error line and exit 1" {
    hold_refused_port
    run_to_file "$T/got" tcp_recv 127.0.0.1 "$REFUSED_PORT"
    assert_status 1
    assert_stderr_matches '^tcp_recv: .*Connection refused$' "tcp_recv: connect to 127.0.0.1 port $REFUSED_PORT: Connection refused"
}

@test "tries every address of the name it is given, not only the first" {
    start_peer -- -s "$BATS_TEST_FILENAME"
    use_two_addresses twoaddr.test
    run_to_file "$T/got" tcp_recv twoaddr.test "$PEER_PORT"
    explain_two_addresses twoaddr.test "$PEER_PORT"
    assert_status 0
    assert_same_stream "$BATS_TEST_FILENAME" "$T/got" "the bytes the peer sent and the bytes tcp_recv wrote"
}

@test "receives over IPv6 too: tcp_recv ::1 PORT" {
    skip_without_ipv6
    start_peer -- -b ::1 -s "$BATS_TEST_FILENAME"
    run_to_file "$T/got" tcp_recv ::1 "$PEER_PORT"
    assert_status 0
    assert_same_stream "$BATS_TEST_FILENAME" "$T/got" "the bytes the peer sent over IPv6 and the bytes tcp_recv wrote"
}

@test "-h prints usage to stdout and exits 0" {
    run_prog tcp_recv -h
    assert_status 0
    assert_output --partial "usage: tcp_recv"
}

@test "a missing or extra argument is a usage error: 'usage: ...' on stderr, exit 2" {
    run_prog tcp_recv 127.0.0.1
    assert_status 2
    assert_stderr_matches '^usage: tcp_recv'
    run_prog tcp_recv 127.0.0.1 8080 extra
    assert_status 2
    assert_stderr_matches '^usage: tcp_recv'
}
