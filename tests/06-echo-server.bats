#!/usr/bin/env bats
# Lesson 06: echo_server binds, listens, accepts, and echoes every byte
# back to one client at a time, until the client closes.

load support/helpers
load support/echo

@test "prints 'listening on 127.0.0.1:PORT' with the real port, echoes a client, prints nothing else" {
    check_listening_line
}

@test "echoes a 10 MB binary file byte for byte" {
    start_echo_server
    echo_file big 10485760
}

@test "serves the next client once the current one leaves (clients queue, one at a time)" {
    start_echo_server
    make_random "$T/a.in" 100000
    make_random "$T/b.in" 100000
    echo_client a "$T/a.in" -H -t 0   # a keeps its connection open
    await_echo a 100000
    echo_client b "$T/b.in"
    await_line b '^connected to '     # b waits in the listen queue
    log_cmd kill "$(pid_of a)"
    kill "$(pid_of a)"                 # a goes away: its kernel closes the connection
    assert_echoed b "$T/b.in"
}

@test "survives clients that reset or vanish, and serves the next one" {
    start_echo_server
    # 8 MB: more than the socket buffers between us hold once the client
    # stops reading, so the server is still sending when the reset comes.
    head -c 8388608 /dev/zero >"$T/big"
    printf 'a few bytes\n' >"$T/small"

    # Resets after 4 KiB have come back, while the server is still sending.
    echo_client reset_while_sending "$T/big" -R 4096
    await_peer reset_while_sending
    # Keeps its side open and resets as soon as its echo is back, while
    # the server waits in recv().
    echo_client reset_while_idle "$T/small" -H -R "$(size_of "$T/small")"
    await_peer reset_while_idle
    # Connects and closes without sending a byte.
    echo_client vanish /dev/null
    await_peer vanish

    echo_file after 100000
    assert_server_alive "three clients that reset or vanished"
}

@test "exits 0 on SIGINT with a client connected, and restarts on the same port at once (SO_REUSEADDR)" {
    check_restart_same_port INT
}

@test "listens on IPv6 with -b ::1 and echoes there too" {
    have_ipv6_loopback || skip "this machine has no IPv6 loopback"
    start_echo_server -b ::1
    [[ $AWAITED_LINE =~ ^listening\ on\ ::1:[0-9]+$ ]] ||
        fail "expected 'listening on ::1:PORT', got '$AWAITED_LINE'"
    ECHO_HOST=::1
    echo_file six 100000
}

@test "exits 0 on SIGTERM while waiting for a client" {
    start_echo_server
    stop_server_with TERM
}

@test "a port already in use gives 'echo_server: bind: Address already in use' and exit 1" {
    check_port_in_use
}

@test "-h prints usage and exits 0; a bad option, port or argument prints 'usage: ...' and exits 2" {
    check_command_line
}
