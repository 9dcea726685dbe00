#!/usr/bin/env bats
# Lesson 08: chat_server relays lines between many clients, with one
# thread and poll(); a slow or misbehaving client hurts nobody else.
#
# Chat clients are the C test peer (build/support/peer), each recording
# what it receives into $T/NAME.rec, and, for crowds and floods,
# tests/support/chat.py. A client waits for its welcome line before the
# next one connects, so the order of connections is certain.

load support/helpers

CHAT_PY=$REPO_ROOT/tests/support/chat.py
WELCOME_RE='^welcome, you are \[[0-9]+\]$'
# A peer that hears nothing for this long gives up ("done: ... timeout").
# It guards correct code (a client waits while others come and go), so it
# stretches with TIME_SCALE: at 5000 ms flat, 4 copies graded at once
# (load average 36 on 2 cores) failed "a client that closes or resets ...".
CHAT_IDLE_MS=5000
[[ ${TIME_SCALE:-1} =~ ^([0-9]+)(\.([0-9]))? ]] &&
    CHAT_IDLE_MS=$((5000 * (10#${BASH_REMATCH[1]} * 10 + 10#${BASH_REMATCH[3]:-0}) / 10))
((CHAT_IDLE_MS >= 5000)) || CHAT_IDLE_MS=5000

### helpers ###

# show_lines FILE: FILE's lines, indented, long ones cut short.
show_lines() {
    if [[ ! -s $1 ]]; then
        echo "    (nothing)"
        return
    fi
    LC_ALL=C awk '{ if (length($0) > 72) printf "    %s... (%d bytes)\n", substr($0, 1, 60), length($0) + 1;
                    else printf "    %s\n", $0 }
                  END { if (NR == 0) print "    (nothing)" }' "$1"
}

# server_said: the last lines chat_server wrote on stderr, for a failure message.
server_said() {
    printf 'chat_server said on stderr (last lines):\n%s' "$(indent "$(tail -5 "$T/chat_server.err" 2>/dev/null)")"
}

# has_line FILE REGEX: FILE has a complete line (newline-terminated)
# matching the extended REGEX. Pure bash: no process to start each time.
has_line() {
    local line
    [[ -f $1 ]] || return 1
    while IFS= read -r line; do
        [[ $line =~ $2 ]] && return 0
    done <"$1"
    return 1
}

# await_file_line NAME FILE REGEX [SECS]: waits until FILE (what the peer
# NAME records) has a line matching the extended REGEX. Fails if the time
# runs out, or NAME ends without it, showing what FILE holds.
await_file_line() {
    local name=$1 file=$2 regex=$3 secs=${4:-$RUN_TIMEOUT} pid
    pid=$(pid_of "$name")
    local deadline=$((SECONDS + secs))
    until has_line "$file" "$regex"; do
        if ! is_running "$pid"; then
            has_line "$file" "$regex" && return 0
            local how
            how=$(cat "$T/$name.err" 2>/dev/null)
            [[ -n $how ]] || how=$(tail -1 "$T/$name.out")
            fail "$(printf 'client %s never received a line matching /%s/: its connection ended first (%s).\nIt received:\n%s\n%s' \
                "$name" "$regex" "$how" "$(show_lines "$file")" "$(server_said)")"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            fail "$(printf 'client %s did not receive a line matching /%s/ within %s s.\nIt received:\n%s\n%s' \
                "$name" "$regex" "$secs" "$(show_lines "$file")" "$(server_said)")"
            return 1
        fi
        sleep 0.02
    done
}

# join_chat NAME [PEER_OPTIONS...]: connects a test peer to the server as
# chat client NAME, recording into $T/NAME.rec, and waits for its welcome
# line. Sets CHAT_ID to the ID the welcome announces.
join_chat() {
    local name=$1
    shift
    spawn "$name" "$PEER" -t "$CHAT_IDLE_MS" -r "$T/$name.rec" "$@" -C 127.0.0.1 "$SERVER_PORT"
    await_file_line "$name" "$T/$name.rec" "$WELCOME_RE"
    local welcome
    IFS= read -r welcome <"$T/$name.rec"
    [[ $welcome =~ $WELCOME_RE ]] ||
        fail "$(printf "client %s's first line must be its welcome, 'welcome, you are [ID]'. It received:\n%s" \
            "$name" "$(show_lines "$T/$name.rec")")"
    CHAT_ID=${welcome##*[}
    CHAT_ID=${CHAT_ID%]}
}

# end_of_chat NAME...: one last client says "over"; waits until each
# named client has received it. Each client's queue is first in, first
# out, so everything sent to them before has arrived too: their records
# are complete. Sets OVER_ID to the last client's ID.
end_of_chat() {
    printf 'over\n' >"$T/over"
    join_chat last -H -s "$T/over"
    OVER_ID=$CHAT_ID
    local name
    for name in "$@"; do
        await_file_line "$name" "$T/$name.rec" "^\\[$OVER_ID\\] over\$"
    done
}

# expect_record NAME LINE...: client NAME received exactly these lines.
expect_record() {
    local name=$1 want got=""
    shift
    printf -v want '%s\n' "$@"
    IFS= read -r -d '' got <"$T/$name.rec" || true
    if [[ $got != "$want" ]]; then
        printf '%s' "$want" >"$T/$name.want"
        fail "$(printf 'client %s should have received exactly:\n%s\nit received:\n%s' \
            "$name" "$(show_lines "$T/$name.want")" "$(show_lines "$T/$name.rec")")"
    fi
}

# expect_left NAME WHY: the peer NAME has ended because the server closed
# (or reset) its connection, not because it gave up waiting.
expect_left() {
    peer_done "$1" $((CHAT_IDLE_MS / 1000 + 3))
    [[ $PEER_HOW == eof || $PEER_HOW == peer-reset ]] ||
        fail "$(printf 'the server should have closed the connection of client %s (%s),\nbut it stayed open: the client gave up (%s).' "$1" "$2" "$PEER_HOW")"
}

# start_chat_with_fd_limit N: start_server chat_server, under ulimit -n N.
start_chat_with_fd_limit() {
    local path
    path=$(prog chat_server)
    spawn chat_server bash -c 'ulimit -n "$1" && exec "$0" -p 0' "$path" "$1"
    SERVER_PID=$SPAWNED_PID
    listening_port chat_server
    SERVER_PORT=$LISTEN_PORT
}

expect_server_running() {
    is_running "$SERVER_PID" ||
        fail "$(printf 'chat_server died; one client must never take the server down.\n%s' "$(server_said)")"
}

### the tests ###

@test "gives each client an ID in connection order, from 1, in a welcome line" {
    start_server chat_server
    local name want=1
    for name in ann bob cy; do
        join_chat "$name"
        [[ $CHAT_ID == "$want" ]] ||
            fail "client number $want to connect was welcomed as [$CHAT_ID]: IDs count from 1, in the order clients connect"
        want=$((want + 1))
    done
}

@test "sends each complete line to every other client as '[ID] line', not back to the sender" {
    start_server chat_server
    join_chat bob
    local bob=$CHAT_ID
    join_chat cy
    local cy=$CHAT_ID
    printf 'hello, everyone\nhow are you?\n' >"$T/lines"
    # -H: ann stays connected, so an echo of her lines would reach her.
    join_chat ann -H -s "$T/lines"
    local ann=$CHAT_ID
    await_file_line bob "$T/bob.rec" "^\\[$ann\\] how are you\\?\$"
    await_file_line cy "$T/cy.rec" "^\\[$ann\\] how are you\\?\$"
    end_of_chat ann bob cy
    expect_record bob "welcome, you are [$bob]" "[$ann] hello, everyone" "[$ann] how are you?" "[$OVER_ID] over"
    expect_record cy "welcome, you are [$cy]" "[$ann] hello, everyone" "[$ann] how are you?" "[$OVER_ID] over"
    expect_record ann "welcome, you are [$ann]" "[$OVER_ID] over"
}

@test "delivers lines that arrive 3 bytes at a time once each, whole" {
    start_server chat_server
    join_chat bob
    local bob=$CHAT_ID
    printf 'in pieces,\nbut whole\nover\n' >"$T/lines"
    join_chat ann -H -k 3 -d 20 -s "$T/lines"
    local ann=$CHAT_ID
    await_file_line bob "$T/bob.rec" "^\\[$ann\\] over\$"
    expect_record bob "welcome, you are [$bob]" "[$ann] in pieces," "[$ann] but whole" "[$ann] over"
}

@test "splits several lines that arrive in one packet" {
    start_server chat_server
    join_chat bob
    local bob=$CHAT_ID
    printf 'one\ntwo\nthree\n\nfive\nover\n' >"$T/lines"
    join_chat ann -H -s "$T/lines"
    local ann=$CHAT_ID
    await_file_line bob "$T/bob.rec" "^\\[$ann\\] over\$"
    expect_record bob "welcome, you are [$bob]" "[$ann] one" "[$ann] two" "[$ann] three" "[$ann] " "[$ann] five" "[$ann] over"
}

@test "a line over 4096 bytes gets its sender 'error: line too long' and a disconnect; nobody else sees it" {
    start_server chat_server
    join_chat bob
    local bob=$CHAT_ID
    local max long
    max=$(printf '%4096s' '' | tr ' ' m)     # exactly MAX_LINE: allowed
    long=$(printf '%4097s' '' | tr ' ' L)    # one byte more: refused
    printf '%s\n%s\n' "$max" "$long" >"$T/lines"
    # -H: ann keeps her connection open; only the server can end it.
    join_chat ann -H -s "$T/lines"
    local ann=$CHAT_ID
    expect_left ann "its line was too long"
    expect_record ann "welcome, you are [$ann]" "error: line too long"
    end_of_chat bob
    expect_record bob "welcome, you are [$bob]" "[$ann] $max" "[$OVER_ID] over"
    expect_server_running
}

@test "drops a client that never reads once its bounded queue overflows; the others get every line" {
    start_server chat_server
    # Two readers keep up with a sender of 1 MB of lines while a third
    # client never reads: the server must queue a bounded amount for it,
    # then drop it, and never make the others wait for it.
    run_limited 20 python3 "$CHAT_PY" flood "$SERVER_PORT" 1000000
    [[ $status == 0 ]] ||
        fail "$(printf '%s\nwhat the clients saw:\n%s\n%s' "$stderr" "$(indent "$output")" "$(server_said)")"
    expect_server_running
}

@test "serves 200 clients connected at once: each one gets a broadcast" {
    start_server chat_server
    run_limited 20 python3 "$CHAT_PY" crowd "$SERVER_PORT" 200
    [[ $status == 0 && $output == *"welcomed 200"* ]] ||
        fail "$(printf '200 clients connected at once; each should be welcomed and hear two broadcasts.\n%s\nwhat the clients saw:\n%s' "$stderr" "$(indent "$output")")"
    expect_server_running
}

@test "turns newcomers away with 'error: server full' when out of file descriptors" {
    # Under ulimit -n 64 at most ~60 clients fit: the rest must be refused
    # politely (a line, then close), while the welcomed ones still chat.
    start_chat_with_fd_limit 64
    run_limited 20 python3 "$CHAT_PY" crowd "$SERVER_PORT" 80
    [[ $status == 0 ]] ||
        fail "$(printf '80 clients connected to a server allowed 64 fds.\n%s\nwhat the clients saw:\n%s' "$stderr" "$(indent "$output")")"
    [[ $output == *"refused "[1-9]* && $output != *"welcomed 0"* ]] ||
        fail "$(printf 'expected some clients welcomed and the rest refused with "error: server full"; the clients saw:\n%s' "$(indent "$output")")"
    expect_server_running
}

@test "a client that closes or resets its connection just leaves; the others carry on" {
    start_server chat_server
    join_chat bob
    local bob=$CHAT_ID
    # quitter sends nothing and closes its end at once (FIN).
    spawn quitter "$PEER" -s /dev/null -t "$CHAT_IDLE_MS" -C 127.0.0.1 "$SERVER_PORT"
    expect_left quitter "it closed its end: the client left"
    # rude reads one byte of its welcome, then resets (RST, not FIN).
    spawn rude "$PEER" -R 1 -t "$CHAT_IDLE_MS" -C 127.0.0.1 "$SERVER_PORT"
    peer_done rude $((CHAT_IDLE_MS / 1000 + 3))
    printf 'still here\n' >"$T/lines"
    join_chat ann -H -s "$T/lines"
    local ann=$CHAT_ID
    await_file_line bob "$T/bob.rec" "^\\[$ann\\] still here\$"
    expect_record bob "welcome, you are [$bob]" "[$ann] still here"
    expect_server_running
}

@test "exits 0 on SIGTERM, closing its clients' connections, and exits 0 on SIGINT" {
    start_server chat_server
    join_chat bob
    stop_server_with TERM || return 1
    expect_left bob "the server was shutting down"
    start_server chat_server
    stop_server_with INT
}

@test "-h prints usage to stdout and exits 0" {
    run_prog chat_server -h
    assert_status 0
    assert_output --partial "usage: chat_server"
}

@test "bad arguments are a usage error: 'usage: ...' on stderr, exit 2" {
    local args
    for args in "-x" "-p 65536" "extra"; do
        # shellcheck disable=SC2086 # split on purpose
        run_prog chat_server $args
        [[ $status == 2 ]] || fail "chat_server $args: expected exit status 2, got $status (stderr: $stderr)"
        assert_stderr_matches '^usage: chat_server' "for: chat_server $args"
    done
}
