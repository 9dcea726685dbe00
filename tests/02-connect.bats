#!/usr/bin/env bats
# Lesson 02: tcp_connect looks a name up, tries each of its addresses in
# order, and prints both ends of the connection it gets.

load support/helpers
load support/client

# expect_connected_to IP: the run printed exactly
#     connected to IP port $PEER_PORT from IP port LPORT
# on stdout, nothing on stderr, exited 0, and the peer accepted a
# connection from that same IP and LPORT.
expect_connected_to() {
    local ip=$1
    assert_status 0
    local re="^connected to ${ip//./\\.} port $PEER_PORT from ${ip//./\\.} port ([0-9]+)\$"
    [[ $output =~ $re ]] ||
        fail "$(printf 'expected stdout to be one line:\n    connected to %s port %s from %s port <the port the kernel gave you>\ngot:\n%s' \
            "$ip" "$PEER_PORT" "$ip" "$(indent "$output")")"
    local lport=${BASH_REMATCH[1]}
    assert_equal "$stderr" ""
    await_line peer '^accepted from '
    [[ $AWAITED_LINE == "accepted from $ip port $lport" ]] ||
        fail "$(printf 'you printed\n    %s\nbut the peer says\n    %s\nboth ends must be what getpeername() and getsockname() say.' "$output" "$AWAITED_LINE")"
}

@test "connects to 127.0.0.1 and prints both ends as the peer saw them" {
    start_peer
    run_prog tcp_connect 127.0.0.1 "$PEER_PORT"
    expect_connected_to 127.0.0.1
}

@test "connects to the name 'localhost', looked up with getaddrinfo" {
    start_peer
    run_prog tcp_connect localhost "$PEER_PORT"
    # The peer listens on 127.0.0.1 only: if localhost also names ::1
    # here, that address refuses and 127.0.0.1 must be tried next.
    expect_connected_to 127.0.0.1
}

@test "connects to ::1 and prints IPv6 addresses" {
    python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null ||
        skip "this machine has no IPv6 loopback (::1)"
    start_peer -b ::1
    run_prog tcp_connect ::1 "$PEER_PORT"
    expect_connected_to ::1
}

@test "tries every address: when the first refuses, connects to the next" {
    start_peer
    # multi.test has two addresses, in this order. Nothing listens on
    # 127.0.0.2, so connecting there is refused at once.
    fake_hosts "127.0.0.2 multi.test" "127.0.0.1 multi.test"
    run_prog_fake_hosts tcp_connect multi.test "$PEER_PORT"
    [[ $status == 0 ]] ||
        fail "$(printf 'multi.test has two addresses, 127.0.0.2 (refuses) then 127.0.0.1 (the peer listens there).\nExpected a connection to the second after the first refused; got exit status %s.\nstdout:\n%s\nstderr:\n%s\n(Loop over the whole list getaddrinfo() returns, ai_next after ai_next, with a new socket for each try.)' \
            "$status" "$(indent "$output")" "$(indent "$stderr")")"
    expect_connected_to 127.0.0.1
}

@test "when every address refuses, says so in one line and exits 1" {
    hold_refused_port
    fake_hosts "127.0.0.2 multi.test" "127.0.0.1 multi.test"
    run_prog_fake_hosts tcp_connect multi.test "$REFUSED_PORT"
    assert_status 1
    assert_stderr_line "tcp_connect: connect to multi.test port $REFUSED_PORT: Connection refused"
    assert_equal "$output" ""
}

@test "a refused connection is one line, 'tcp_connect: connect to HOST port PORT: Connection refused', exit 1" {
    hold_refused_port
    run_prog tcp_connect 127.0.0.1 "$REFUSED_PORT"
    assert_status 1
    assert_stderr_line "tcp_connect: connect to 127.0.0.1 port $REFUSED_PORT: Connection refused"
    assert_equal "$output" ""
}

@test "an unknown host is one line, 'tcp_connect: HOST: ' and getaddrinfo's reason (gai_strerror), exit 1" {
    # .invalid names never exist (RFC 2606). Without a network the lookup
    # fails as "temporary", with one as "unknown": either is right, and
    # either way, one attempt of at most a second per query.
    export RES_OPTIONS="timeout:1 attempts:1"
    local name=no-such-host.invalid
    run_prog -s 10 tcp_connect "$name" 80
    assert_status 1
    local texts
    texts=$(gai_error_texts)
    local prefix="tcp_connect: $name: "
    if [[ $stderr == *$'\n'* || $stderr != "$prefix"* ]] || ! grep -qxF -- "${stderr#"$prefix"}" <<<"$texts"; then
        fail "$(printf 'expected one line on stderr: %s<what gai_strerror() says>, one of\n%s\ngot:\n%s\n(getaddrinfo() does not set errno: strerror(errno) says nothing useful.)' \
            "$prefix" "$(indent "$texts")" "$(indent "$stderr")")"
    fi
    assert_equal "$output" ""
}

@test "a port that is not a number 1-65535 is a usage error: one 'usage: ...' line, exit 2" {
    local port
    for port in 0 65536 99999999999999999999 http 80x -1 ""; do
        run_prog tcp_connect 127.0.0.1 "$port"
        [[ $status == 2 ]] || fail "$(printf "with port '%s': expected exit status 2, got %s.\nstderr:\n%s" "$port" "$status" "$(indent "$stderr")")"
        assert_stderr_matches '^usage: tcp_connect' "with port '$port'"
        assert_equal "$output" ""
    done
}

@test "-h prints usage to stdout and exits 0" {
    run_prog tcp_connect -h
    assert_status 0
    assert_output --partial "usage: tcp_connect HOST PORT"
}

@test "a wrong number of arguments is a usage error: 'usage: ...' on stderr, exit 2" {
    local args
    for args in "" "localhost" "localhost 80 extra"; do
        # shellcheck disable=SC2086 # split on purpose: the arguments
        run_prog tcp_connect $args
        [[ $status == 2 ]] || fail "$(printf "with arguments '%s': expected exit status 2, got %s.\nstderr:\n%s" "$args" "$status" "$(indent "$stderr")")"
        assert_stderr_matches '^usage: tcp_connect' "with arguments '$args'"
    done
}
