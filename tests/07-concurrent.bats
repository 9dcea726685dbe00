#!/usr/bin/env bats
# Lesson 07: echo_server serves many clients at once (a thread or a
# process per client); a stalled client holds up nobody; nothing is left
# behind: no zombie processes, no threads, no descriptors.

load support/helpers
load support/echo

### what the server has running (Linux /proc) ###

need_proc() {
    [[ -d /proc/$SERVER_PID/task ]] || skip "needs Linux /proc to count processes and threads"
}

# proc_table: "PID STATE PPID PGRP" for every process, from /proc/*/stat.
# The name in its second field may hold spaces and ')': cut at the last ') '.
proc_table() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        pid = $1; rest = $0
        while ((i = index(rest, ") ")) > 0) rest = substr(rest, i + 2)
        split(rest, f, " "); print pid, f[1], f[2], f[3]
    }'
}

zombie_children() { proc_table | awk -v p="$SERVER_PID" '$2 == "Z" && $3 == p { print $1 }'; }
group_members() { proc_table | awk -v g="$1" '$4 == g { print $1 }'; }
thread_count() { ls "/proc/$SERVER_PID/task" 2>/dev/null | wc -l | tr -d ' '; }
fd_count() { ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l | tr -d ' '; }

# settle SECS CHECK WHAT: waits until the command CHECK succeeds; fails
# with WHAT (a printf format for CHECK_OUTPUT) if it never does.
settle() {
    local secs=$1 check=$2 what=$3
    local deadline=$((SECONDS + secs))
    until CHECK_OUTPUT=$($check); do
        if ((SECONDS >= deadline)); then
            fail "$(printf "$what" "$CHECK_OUTPUT")"
            return 1
        fi
        sleep 0.05
    done
}

no_zombies() { local z; z=$(zombie_children); [[ -z $z ]] || { echo "$(wc -l <<<"$z" | tr -d ' ') (PIDs $(head -5 <<<"$z" | tr '\n' ' ')...)"; return 1; }; }
one_thread() { local n; n=$(thread_count); [[ $n == 1 ]] || { echo "$n"; return 1; }; }
group_empty() { local m; m=$(group_members "$SERVER_PID"); [[ -z $m ]] || { echo "$m" | tr '\n' ' '; return 1; }; }
fds_back() { local n; n=$(fd_count); [[ $n == "$FDS_BEFORE" ]] || { echo "$n"; return 1; }; }
# A finished thread that is neither joined nor detached vanishes from
# /proc/PID/task but keeps its stack (8 MiB of address space each):
# after 200 clients that is over a gigabyte of VmSize.
vm_size_kb() { awk '/^VmSize:/ {print $2}' "/proc/$SERVER_PID/status"; }
memory_back() { local n; n=$(vm_size_kb); ((n < VM_BEFORE + 262144)) || { echo "$(((n - VM_BEFORE) / 1024))"; return 1; }; }

# How many clients at once.
CROWD=100

### tests ###

@test "prints 'listening on 127.0.0.1:PORT' with the real port, echoes a client, prints nothing else" {
    check_listening_line
}

@test "echoes 100 clients at once, each its own bytes, byte for byte" {
    start_echo_server
    make_random "$T/all" $((CROWD * 65536))
    split -b 65536 -d -a 3 "$T/all" "$T/in."
    # One spawned shell starts all the peers at once, then waits for them.
    spawn crowd bash -c '
        peer=$1 dir=$2 port=$3 n=$4
        for i in $(seq -f %03g 0 $((n - 1))); do
            "$peer" -s "$dir/in.$i" -r "$dir/got.$i" -C 127.0.0.1 "$port" >"$dir/out.$i" 2>&1 &
        done
        wait' crowd "$PEER" "$T" "$SERVER_PORT" "$CROWD"
    local deadline=$((SECONDS + 20))
    while is_running "$(pid_of crowd)"; do
        if ((SECONDS >= deadline)); then
            server_state
            fail "$(printf 'after 20 s only %s of %s clients were done.\n%s' \
                "$(cat "$T"/out.* | grep -c '^done: ')" "$CROWD" "$SERVER_STATE")"
            return 1
        fi
        sleep 0.05
    done
    # Every client must have seen EOF, and got its own bytes back.
    local unfinished
    unfinished=$(grep -L -- ', eof$' "$T"/out.* || true)
    if [[ -n $unfinished ]]; then
        local first=${unfinished%%$'\n'*}
        server_state
        fail "$(printf '%s of %s clients did not finish with EOF from the server; %s said:\n%s\n%s' \
            "$(wc -l <<<"$unfinished" | tr -d ' ')" "$CROWD" "client ${first##*/out.}" "$(indent "$(cat "$first")")" "$SERVER_STATE")"
        return 1
    fi
    cat "$T"/got.* >"$T/all.got"
    if ! cmp -s "$T/all" "$T/all.got"; then
        local i
        for i in $(seq -f %03g 0 $((CROWD - 1))); do
            assert_same_bytes "$T/in.$i" "$T/got.$i" "what client $i sent and what came back"
        done
    fi
}

@test "a client that connects and never sends blocks nobody" {
    start_echo_server
    # No -s: it sends nothing, never closes, never gives up.
    spawn silent "$PEER" -t 0 -C 127.0.0.1 "$SERVER_PORT"
    await_line silent '^connected to '
    # It was queued first, so a one-at-a-time server is stuck on it now.
    echo_file next 100000
}

@test "a client that sends but never reads blocks nobody" {
    start_echo_server
    # 8 MB, more than the socket buffers on both sides hold: the server's
    # send() to this client blocks for good.
    head -c 8388608 /dev/zero >"$T/flood"
    spawn flood "$PEER" -W -H -t 0 -s "$T/flood" -C 127.0.0.1 "$SERVER_PORT"
    await_line flood '^connected to '
    echo_file next 100000
}

@test "after 200 short connections (some reset, some silent) no zombie, thread or descriptor is left" {
    start_echo_server
    need_proc
    FDS_BEFORE=$(fd_count)
    VM_BEFORE=$(vm_size_kb)
    # One python process makes the 200 connections quickly, one after
    # another: every 4th resets after its echo, every 4th closes without
    # sending; every echo must come back whole.
    run_limited 30 python3 -c '
import socket, struct, sys
port = int(sys.argv[1])
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 4 == 1:
        s.close()
        continue
    msg = b"hello %d\0\xff" % i
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    if got != msg:
        sys.exit("connection %d: sent %r, got %r back" % (i, msg, got))
    if i % 4 == 3:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            sys.exit("connection %d: no EOF after the echo" % i)
    s.close()
' "$SERVER_PORT"
    assert_status 0
    settle 5 no_zombies 'zombie children left after the clients closed: %s\n(a finished child must be reaped with waitpid(): SIGCHLD tells you when)'
    settle 5 one_thread 'the server still has %s threads after every client closed (expected 1, the main thread)\n(a thread per client must end, and be detached or joined, when its client leaves)'
    settle 5 fds_back "the server has %s descriptors open after every client closed; it had $FDS_BEFORE before\n(close each client's socket when it is done, in every process that holds it)"
    settle 5 memory_back 'the server'"'"'s address space grew by %s MiB over 200 short connections and stayed so\n(a thread that is neither detached nor joined keeps its stack after it ends: pthread_detach(3))'
    assert_server_alive "200 short connections"
}

@test "on SIGTERM, closes every client's connection, leaves no process behind and exits 0" {
    start_echo_server
    need_proc
    printf 'still here\n' >"$T/small"
    echo_client busy "$T/small" -H -t 0
    spawn silent "$PEER" -t 0 -C 127.0.0.1 "$SERVER_PORT"
    await_echo busy "$(size_of "$T/small")"
    await_line silent '^connected to '
    stop_server_with TERM
    # spawn started the server as the leader of its own process group:
    # whatever it forked is in that group too, unless it moved out.
    settle 2 group_empty 'the server exited but left processes of its group running: PIDs %s\n(on SIGTERM a forking server must end its children and wait for them)'
    local name
    for name in busy silent; do
        await_peer "$name"
        [[ $PEER_HOW == eof || $PEER_HOW == peer-reset ]] ||
            fail "client $name saw '$PEER_HOW' instead of the connection closing when the server stopped"
    done
}

@test "exits 0 on SIGINT with a client connected, and restarts on the same port at once (SO_REUSEADDR)" {
    check_restart_same_port INT
}

@test "a port already in use gives 'echo_server: bind: Address already in use' and exit 1" {
    check_port_in_use
}

@test "-h prints usage and exits 0; a bad option, port or argument prints 'usage: ...' and exits 2" {
    check_command_line
}
