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
    [[ $output =~ $re ]] || explain_wrong_ends "$ip"
    local lport=${BASH_REMATCH[1]}
    assert_equal "$stderr" ""
    await_line peer '^accepted from '
    [[ $AWAITED_LINE == "accepted from $ip port $lport" ]] ||
        fail "$(printf 'you printed\n    %s\nbut the peer says\n    %s\nboth ends must be what getpeername() and getsockname() say.' "$output" "$AWAITED_LINE")"
}

# explain_wrong_ends IP: fails, saying what is wrong with the line printed
# (see expect_connected_to): a port in network byte order, the two ends
# swapped, or anything else.
explain_wrong_ends() {
    local ip=$1 why=""
    local any="^connected to ([^ ]+) port ([0-9]+) from ([^ ]+) port ([0-9]+)\$"
    if [[ $output =~ $any ]]; then
        local to_port=${BASH_REMATCH[2]} from_port=${BASH_REMATCH[4]}
        local swapped=$(((PEER_PORT >> 8 | PEER_PORT << 8) & 0xffff))
        if [[ $to_port == "$swapped" && $PEER_PORT != "$swapped" ]]; then
            why=$(printf '\nThe peer listens on port %s; you printed %s, the same two bytes the other way round:\nsin_port is in network byte order (big-endian). Convert it with ntohs() before printing.' "$PEER_PORT" "$to_port")
        elif [[ $from_port == "$PEER_PORT" ]]; then
            why=$'\nThe peer'"'"$'s port is printed as the local one: getpeername() gives the other end (the\nserver), getsockname() your own end. "connected to" is the peer, "from" is you.'
        fi
    fi
    fail "$(printf 'expected stdout to be one line:\n    connected to %s port %s from %s port <the port the kernel gave you>\ngot:\n%s%s' \
        "$ip" "$PEER_PORT" "$ip" "$(indent "$output")" "$why")"
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
    [[ $status == 0 ]] ||
        fail "$(printf 'the peer listens on ::1 (IPv6) port %s: expected "connected to ::1 port %s from ::1 port ...",\ngot exit status %s.\nstderr:\n%s\nAsk getaddrinfo() for any family (hints.ai_family = AF_UNSPEC, not AF_INET), make the socket\nwith the family of the address it returned, and print addresses with inet_ntop() for\nAF_INET6 as well as AF_INET (a sockaddr_storage holds either).' \
            "$PEER_PORT" "$PEER_PORT" "$status" "$(indent "$stderr")")"
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

@test "tries the next address with a new socket of its own family: ::1 refuses, then 127.0.0.1" {
    [[ -e /proc/net/if_inet6 || ! -d /proc/net ]] || skip "IPv6 is turned off on this machine"
    start_peer
    # Nothing may listen on [::1]:PORT: we hold it bound ourselves.
    hold_port_on ::1 "$PEER_PORT"
    fake_hosts "::1 mixed.test" "127.0.0.1 mixed.test"
    run_prog_fake_hosts tcp_connect mixed.test "$PEER_PORT"
    [[ $status == 0 ]] ||
        fail "$(printf 'mixed.test has two addresses: ::1 (IPv6, refuses) and then 127.0.0.1 (IPv4, the peer listens there).\nExpected a connection to the second; got exit status %s.\nstdout:\n%s\nstderr:\n%s\nA socket is made for one family: an AF_INET6 socket cannot connect to an IPv4 address, and\na socket whose connect() failed is not to be used again. For each address, make a new\nsocket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), and close it if connect() fails.' \
            "$status" "$(indent "$output")" "$(indent "$stderr")")"
    expect_connected_to 127.0.0.1
}

@test "closes the socket of every address that refused" {
    start_peer
    fake_hosts "127.0.0.2 three.test" "127.0.0.3 three.test" "127.0.0.1 three.test"
    run_traced_fake_hosts "$T/trace" socket,connect,close tcp_connect three.test "$PEER_PORT"
    assert_status 0
    # The sockets of the program (nss_wrapper's files are not sockets).
    local fd made=() unclosed=()
    for fd in $(sed -n 's/^socket(AF_INET6\{0,1\}, SOCK_STREAM.*) = \([0-9]*\)$/\1/p' "$T/trace"); do
        made+=("$fd")
    done
    # Each socket() is closed before the next socket() that returns its number.
    local line open=" "
    while IFS= read -r line; do
        if [[ $line =~ ^socket\(AF_INET6?,\ SOCK_STREAM.*\)\ =\ ([0-9]+)$ ]]; then
            open+="${BASH_REMATCH[1]} "
        elif [[ $line =~ ^close\(([0-9]+)\)\ +=\ 0$ ]]; then
            open=${open/ ${BASH_REMATCH[1]} / }
        fi
    done <"$T/trace"
    read -r -a unclosed <<<"$open"
    local calls
    calls=$(grep -E '^(socket\(AF_INET|connect\(|close\()' "$T/trace" | sed -n '/^socket(/,$p')
    ((${#made[@]} == 3)) ||
        fail "$(printf 'three.test has three addresses: 127.0.0.2 and 127.0.0.3 refuse, 127.0.0.1 accepts.\nExpected three socket() calls, one for each address tried; strace saw %s:\n%s\n(A socket whose connect() failed is not to be reused: make a new one for the next address.)' \
            "${#made[@]}" "$(indent "$calls")")"
    ((${#unclosed[@]} == 0)) ||
        fail "$(printf 'these sockets were never closed: fd %s.\nEach address that refuses leaves you a socket that is good for nothing: close() it before\nyou try the next address, or a name with many addresses leaks one descriptor per refusal.\nstrace saw, from the first socket() on:\n%s' \
            "${unclosed[*]}" "$(indent "$calls")")"
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
