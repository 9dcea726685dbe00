# tests/support/echo.bash - what the echo-server lessons (06, 07) share.
#
#     load support/helpers
#     load support/echo
#
# The server under test is the lesson's `echo_server`; its clients are
# tests/support's peer in connect mode (`peer -s FILE -r OUT -C HOST PORT`
# sends FILE, half-closes, and records what comes back until EOF, reading
# and writing at the same time, so a big echo cannot deadlock).
#
# The check_* functions are whole tests that both lessons run: each
# lesson's bats file names the behaviour and calls one of them.

# Where the clients connect (a test that starts the server on ::1 sets it).
ECHO_HOST=127.0.0.1
# The spawn name of the server the helpers below talk about.
SERVER_NAME=echo_server

### the server ###

# Every fail below is followed by return 1: inside a function called on
# the left of || bash ignores set -e, and a fail alone would not stop a
# waiting loop.

# start_echo_server [ARGS...]: starts echo_server -p 0 ARGS, waits for its
# "listening on" line; sets SERVER_PID, SERVER_PORT.
start_echo_server() {
    prog_path echo_server || return 1
    SERVER_NAME=echo_server
    spawn echo_server "$PROG_PATH" -p 0 "$@"
    SERVER_PID=$SPAWNED_PID
    await_line echo_server '^listening on .+:[0-9]+$' || return 1
    SERVER_PORT=${AWAITED_LINE##*:}
}

# server_state: sets SERVER_STATE, a paragraph on how the server is doing,
# for messages. Call it in the test's own shell, not in $(...): only the
# shell that started the server can wait for it and learn its status.
server_state() {
    if is_running "$SERVER_PID"; then
        SERVER_STATE='The server is still running.'
    else
        reap "$SERVER_PID"
        SERVER_EXIT=$REAPED SERVER_EXIT_PID=$SERVER_PID
        if ((SERVER_EXIT > 128)); then
            local sig why=""
            signal_name "$SERVER_EXIT"
            sig=$SIG_NAME
            [[ $sig == PIPE ]] && why=$'\nWriting to a client that has gone away raises SIGPIPE, which kills:\nignore it (sigaction with SIG_IGN) and handle the EPIPE error instead.'
            SERVER_STATE="The server was killed by signal SIG$sig.$why"
        else
            SERVER_STATE="The server has exited (status $SERVER_EXIT)."
        fi
    fi
    SERVER_STATE+=$'\nserver stderr:\n'$(indent_file "$T/$SERVER_NAME.err")
}

# assert_server_alive WHAT: the server is still running after WHAT.
assert_server_alive() {
    if ! is_running "$SERVER_PID"; then
        server_state
        fail "$(printf 'the server must survive %s, but it is gone.\n%s' "$1" "$SERVER_STATE")"
        return 1
    fi
}

### clients ###

# echo_client NAME FILE [PEER_OPTIONS...]: starts a peer that connects to
# the server, sends FILE (then half-closes, unless -H), and records every
# byte that comes back in $T/NAME.got.
echo_client() {
    local name=$1 file=$2
    shift 2
    : >"$T/$name.got"
    spawn "$name" "$PEER" "$@" -s "$file" -r "$T/$name.got" -C "$ECHO_HOST" "$SERVER_PORT"
}

# size_of FILE: its size in bytes.
size_of() {
    local n
    n=$(wc -c <"$1") || return 1
    printf '%s' $((n))
}

# file_has_line FILE PREFIX: FILE has a line starting with PREFIX; sets
# FOUND_LINE (bash's read: no grep process).
file_has_line() {
    local line
    [[ -f $1 ]] || return 1
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line == "$2"* ]] && { FOUND_LINE=$line; return 0; }
    done <"$1"
    return 1
}

# await_peer NAME [SECS]: waits for client NAME's "done: ..." line; sets
# PEER_RECEIVED, PEER_SENT, PEER_HOW. Fails, saying how far it got and
# how the server is doing, if it stops or the time runs out first.
await_peer() {
    local name=$1 secs=${2:-$RUN_TIMEOUT} pidvar=PID_$1 line
    local pid=${!pidvar}
    deadline_in "$secs"
    while ! file_has_line "$T/$name.out" 'done: '; do
        if ! is_running "$pid"; then
            file_has_line "$T/$name.out" 'done: ' && break
            server_state
            fail "$(printf 'client %s stopped before finishing its exchange with the server.\nits output:\n%s\nits errors:\n%s\n%s' \
                "$name" "$(indent_file "$T/$name.out")" "$(indent_file "$T/$name.err")" "$SERVER_STATE")"
            return 1
        fi
        if past_deadline; then
            scale_secs "$secs"
            server_state
            fail "$(printf 'client %s was not done within %s s%s: %s bytes had come back, and the server had not closed the connection.\n%s' \
                "$name" "$secs" "$SCALE_NOTE" "$(size_of "$T/$name.got" 2>/dev/null || echo 0)" "$SERVER_STATE")"
            return 1
        fi
        nap
    done
    line=$FOUND_LINE
    [[ $line =~ ^done:\ received\ ([0-9]+)\ bytes,\ sent\ ([0-9]+)\ bytes,\ (.+)$ ]] ||
        fail "unexpected peer line: $line"
    PEER_RECEIVED=${BASH_REMATCH[1]} PEER_SENT=${BASH_REMATCH[2]} PEER_HOW=${BASH_REMATCH[3]}
}

# assert_echoed NAME FILE [SECS]: client NAME got FILE back byte for byte,
# then saw the server close the connection (EOF).
assert_echoed() {
    local name=$1 file=$2 secs=${3:-$RUN_TIMEOUT}
    await_peer "$name" "$secs"
    assert_same_bytes "$file" "$T/$name.got" "what client $name sent and what came back"
    case $PEER_HOW in
    eof) ;;
    peer-reset) fail "client $name got its bytes back, but then the server reset the connection instead of closing it (close() with unread data sends RST)" ;;
    *) fail "client $name got its bytes back, but the exchange ended with '$PEER_HOW', not the server's EOF" ;;
    esac
}

# echo_file NAME SIZE: makes $T/NAME.in, SIZE random bytes, echoes it
# through the server and checks it came back whole.
echo_file() {
    make_random "$T/$1.in" "$2"
    echo_client "$1" "$T/$1.in"
    assert_echoed "$1" "$T/$1.in"
}

# await_echo NAME SIZE [SECS]: waits until client NAME (which holds its
# connection open) has SIZE bytes back; fails at once if it stops first.
await_echo() {
    local name=$1 size=$2 secs=${3:-$RUN_TIMEOUT} have pidvar=PID_$1
    local pid=${!pidvar}
    deadline_in "$secs"
    while have=$(wc -c <"$T/$name.got" 2>/dev/null) && ((have < size)); do
        if ! is_running "$pid" || file_has_line "$T/$name.out" 'done: ' || past_deadline; then
            server_state
            fail "$(printf 'client %s (connected, not closing) expected %s bytes back, got %s; it said:\n%s\n%s' \
                "$name" "$size" "$(size_of "$T/$name.got")" "$(indent "$(cat "$T/$name.out" "$T/$name.err")")" "$SERVER_STATE")"
            return 1
        fi
        nap
    done
}

# have_ipv6_loopback: can we bind ::1 here? (/proc on Linux, else python)
have_ipv6_loopback() {
    if [[ -r /proc/net/if_inet6 ]]; then
        grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
    else
        python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null
    fi
}

### whole checks both lessons run ###

check_listening_line() {
    start_echo_server
    [[ $AWAITED_LINE =~ ^listening\ on\ 127\.0\.0\.1:[0-9]+$ ]] ||
        fail "expected 'listening on 127.0.0.1:PORT' (the default address is 127.0.0.1), got '$AWAITED_LINE'"
    ((SERVER_PORT != 0)) ||
        fail "the line says port 0: print the port the kernel chose, which getsockname() tells you"
    echo_file client 1048576
    local out=""
    IFS= read -r -N 65536 -d '' out <"$T/$SERVER_NAME.out" || true
    out=${out%"${out##*[!$'\n']}"}
    [[ $out == "$AWAITED_LINE" ]] ||
        fail "$(printf 'stdout must hold only the listening line; after serving a client it was:\n%s' "$(indent "$out")")"
}

# check_restart_same_port SIG: a client is connected, SIG stops the
# server, which closes that connection first, so its end of it waits in
# TIME_WAIT. Restarting on the same port then needs SO_REUSEADDR.
check_restart_same_port() {
    local sig=$1
    start_echo_server
    local port=$SERVER_PORT
    printf 'hello, are you still there?\n' >"$T/small"
    echo_client held "$T/small" -H -t 0
    await_echo held "$(size_of "$T/small")"
    stop_server_with "$sig"
    await_peer held
    [[ $PEER_HOW == eof || $PEER_HOW == peer-reset ]] ||
        fail "the server exited, but its client saw '$PEER_HOW' instead of the connection closing"

    prog_path echo_server || return 1
    SERVER_NAME=second
    spawn second "$PROG_PATH" -p "$port"
    SERVER_PID=$SPAWNED_PID
    deadline_in "$START_TIMEOUT"
    until file_has_line "$T/second.out" "listening on 127.0.0.1:$port" && [[ $FOUND_LINE == "listening on 127.0.0.1:$port" ]]; do
        if ! is_running "$SERVER_PID" || past_deadline; then
            server_state
            fail "$(printf 'restarted on port %s right after serving a client, the server did not print "listening on 127.0.0.1:%s".\nThe old connection waits in TIME_WAIT on that port: set SO_REUSEADDR before bind().\n%s' \
                "$port" "$port" "$SERVER_STATE")"
            return 1
        fi
        nap
    done
    echo_file after 1000
}

check_port_in_use() {
    spawn blocker "$PEER" -t 0   # a listening peer holds the port
    await_line blocker '^listening on .+:[0-9]+$'
    run_prog echo_server -p "${AWAITED_LINE##*:}"
    assert_status 1
    assert_stderr_line "echo_server: bind: Address already in use"
}

check_command_line() {
    run_prog echo_server -h
    if [[ $status != 0 || $output != *"usage: echo_server"* || -n $stderr ]]; then
        fail "$(printf "echo_server -h: expected 'usage: echo_server ...' on stdout, nothing on stderr, exit status 0;\ngot status %s, stdout:\n%s\nstderr:\n%s" \
            "$status" "$(indent "$output")" "$(indent "$stderr")")"
        return 1
    fi
    local args
    for args in "-x" "-p 65536" "-p http" "-p 8080 extra"; do
        # shellcheck disable=SC2086 # split the arguments on purpose
        run_prog echo_server $args
        if [[ $status != 2 || ! $stderr =~ ^usage:\ echo_server || $stderr == *$'\n'* ]]; then
            fail "$(printf "echo_server %s: expected one line 'usage: echo_server ...' on stderr and exit status 2;\ngot status %s, stderr:\n%s" \
                "$args" "$status" "$(indent "$stderr")")"
            return 1
        fi
    done
}
