#!/usr/bin/env bats
# Lesson 01: socket_info creates three sockets and asks the kernel what
# each one is.

load support/helpers

# Runs socket_info under strace, keeping the socket-related system calls
# in $T/trace (Linux only: strace does not exist elsewhere).
trace_socket_info() {
    command -v strace >/dev/null || skip "needs strace (Linux; make deps installs it)"
    local path
    path=$(prog socket_info)
    # LeakSanitizer cannot run under ptrace: switch it off for this run.
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        run_limited 10 strace -o "$T/trace" -e trace=socket,getsockopt,close "$path"
    assert_status 0
}

@test "prints TCP/IPv4, TCP/IPv6 and UDP/IPv4 with their fds, in that order" {
    run_prog socket_info
    if [[ $stderr == *"getsockopt: Bad address"* || $stderr == *"getsockopt: Invalid argument"* ]]; then
        fail "$(printf 'getsockopt failed: %s\nIts last argument is a socklen_t *: the address of a variable holding sizeof your int,\nnot the size itself (your compiler warned about it: scroll up in make'"'"'s output).' "$stderr")"
    fi
    assert_status 0
    [[ $output =~ ^TCP/IPv4\ fd=[0-9]+$'\n'TCP/IPv6\ fd=[0-9]+$'\n'UDP/IPv4\ fd=[0-9]+$ ]] ||
        fail "$(printf 'expected three lines like these (the fd numbers may differ)\n    TCP/IPv4 fd=3\n    TCP/IPv6 fd=4\n    UDP/IPv4 fd=5\ngot:\n%s' "$(indent "$output")")"
    assert_equal "$stderr" ""
}

@test "each fd it prints really is the socket its line names" {
    trace_socket_info
    local line fd kind
    while IFS= read -r line; do
        fd=${line##*fd=} kind=${line% fd=*}
        # strace writes e.g.: socket(AF_INET6, SOCK_STREAM, IPPROTO_IP) = 4
        local call
        call=$(grep -E "^socket\(.*\) = $fd\$" "$T/trace") ||
            fail "the program printed '$line', but no socket() call returned fd $fd. strace saw:$(printf '\n%s' "$(indent "$(cat "$T/trace")")")"
        local family=IPv4 type=TCP
        [[ $call == *AF_INET6* ]] && family=IPv6
        [[ $call == *SOCK_DGRAM* ]] && type=UDP
        [[ $kind == "$type/$family" ]] ||
            fail "the program printed '$line', but fd $fd came from: $call (that is $type/$family)"
    done <<<"$output"
}

@test "asks the kernel for each socket's type with getsockopt(SO_TYPE)" {
    trace_socket_info
    local fd
    for fd in $(sed -n 's/^socket(.*) = \([0-9]*\)$/\1/p' "$T/trace"); do
        grep -q "^getsockopt($fd, SOL_SOCKET, SO_TYPE," "$T/trace" ||
            fail "$(printf 'no getsockopt(%s, SOL_SOCKET, SO_TYPE, ...) call: the type must come from the kernel, not from what you meant to create.\nstrace saw:\n%s' "$fd" "$(indent "$(cat "$T/trace")")")"
    done
}

@test "closes every socket it created" {
    trace_socket_info
    local fd unclosed=()
    for fd in $(sed -n 's/^socket(.*) = \([0-9]*\)$/\1/p' "$T/trace"); do
        # Only a close() AFTER this socket() counts: the dynamic loader
        # closes the same small numbers before main() runs.
        sed -n "/^socket(.*) = $fd\$/,\$p" "$T/trace" | grep -q "^close($fd) *= 0" || unclosed+=("$fd")
    done
    ((${#unclosed[@]} == 0)) ||
        fail "$(printf 'these sockets were never closed: fd %s\nclose() each one when you are done with it (exit would do it for you here, but a\nlong-running program that forgets runs out of descriptors).\nstrace saw, from your first socket() on (the close() calls before it are the dynamic\nloader'"'"'s, closing the library files it opened before main()):\n%s' \
            "${unclosed[*]}" "$(indent "$(sockets_and_closes "$T/trace")")")"
}

# sockets_and_closes TRACE: the socket() and close() lines of an strace
# file, from the first socket() on: the close() calls before it are the
# dynamic loader's, closing the libraries it read before main().
sockets_and_closes() {
    sed -n '/^socket(/,$p' "$1" | grep -E '^(socket|close)\('
}

# trace_with_fd_limit N: runs socket_info under strace with every inherited
# descriptor above 2 closed and at most N descriptors (ulimit -n N): fds 0,
# 1, 2 and N - 3 sockets. Keeps the socket() and close() calls in $T/trace.
trace_with_fd_limit() {
    command -v strace >/dev/null || skip "needs strace (Linux; make deps installs it)"
    local path
    path=$(prog socket_info)
    # strace writes its trace through an fd of its own, outside the limit.
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        run_limited 10 strace -o "$T/trace" -e trace=execve,socket,close \
        bash -c 'for fd in {3..19}; do eval "exec $fd>&-"; done; ulimit -n "$1" && exec "$0"' "$path" "$1"
}

@test "when a later socket fails, closes the ones it already opened" {
    # Room for two sockets (fds 3 and 4): the third socket() fails.
    trace_with_fd_limit 5
    assert_status 1
    assert_stderr_line "socket_info: socket: Too many open files"
    # Only the program's own calls: from its execve on, from its first socket() on.
    sed -n '/^execve(.*socket_info"/,$p' "$T/trace" >"$T/own"
    local fd opened=() unclosed=()
    for fd in $(sed -n 's/^socket(.*) = \([0-9]*\)$/\1/p' "$T/own"); do
        opened+=("$fd")
        sed -n "/^socket(.*) = $fd\$/,\$p" "$T/own" | grep -q "^close($fd) *= 0" || unclosed+=("$fd")
    done
    ((${#opened[@]} == 2)) ||
        fail "$(printf 'with ulimit -n 5 the first two socket() calls should succeed (fds 3 and 4) and the third fail;\nstrace saw %s that succeeded:\n%s' "${#opened[@]}" "$(indent "$(sockets_and_closes "$T/own")")")"
    ((${#unclosed[@]} == 0)) ||
        fail "$(printf 'the third socket() failed (EMFILE) and the program exited with fd %s still open.\nOn an error, close what you already opened before you return: the same code path as\nsuccess, not an early exit() (in a server that keeps running, each such exit path is a leak).\nstrace saw, from your first socket() on:\n%s' \
            "${unclosed[*]}" "$(indent "$(sockets_and_closes "$T/own")")")"
}

@test "with exactly enough descriptors for three sockets (ulimit -n 6), all three are made" {
    local path
    path=$(prog socket_info)
    # fds 0, 1, 2 and three sockets: 6. The limit, not one more.
    run_limited 5 bash -c 'for fd in {3..19}; do eval "exec $fd>&-"; done; ulimit -n 6 && exec "$0"' "$path"
    [[ $status == 0 ]] ||
        fail "$(printf 'with ulimit -n 6 there is room for fds 3, 4 and 5, the three sockets: expected exit status 0, got %s.\nDo you open a descriptor more than the three sockets, or one socket twice?\nstdout:\n%s\nstderr:\n%s' \
            "$status" "$(indent "$output")" "$(indent "$stderr")")"
    assert_equal "$output" $'TCP/IPv4 fd=3\nTCP/IPv6 fd=4\nUDP/IPv4 fd=5'
}

@test "with too few file descriptors, says 'socket: Too many open files' and exits 1" {
    local path
    path=$(prog socket_info)
    # Close every inherited descriptor above 2, then allow only 4: the
    # first socket gets fd 3, the second cannot get one (EMFILE).
    run_limited 5 bash -c 'for fd in {3..19}; do eval "exec $fd>&-"; done; ulimit -n 4 && exec "$0"' "$path"
    if [[ $status == 255 ]]; then
        fail "$(printf 'expected exit status 1, got 255: did main() return -1? An exit status is one byte,\nso -1 becomes 255. Return 1 (or EXIT_FAILURE) on a runtime error.\nstderr:\n%s' "$(indent "$stderr")")"
    fi
    assert_status 1
    assert_stderr_line "socket_info: socket: Too many open files"
}

@test "-h prints usage to stdout and exits 0" {
    run_prog socket_info -h
    assert_status 0
    assert_output --partial "usage: socket_info"
}

@test "an unknown argument is a usage error: 'usage: ...' on stderr, exit 2" {
    run_prog socket_info --bogus
    assert_status 2
    assert_stderr_matches '^usage: socket_info'
}
