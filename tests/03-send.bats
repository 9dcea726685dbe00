#!/usr/bin/env bats
# Lesson 03: tcp_send sends all of stdin over a TCP connection, every
# byte, however the kernel takes it, and survives a peer that leaves.

load support/helpers
load support/client
load support/shortio

# expect_all_sent FILE: tcp_send exited 0 saying "sent N bytes" (N the
# size of FILE), and the peer received exactly FILE, then end of file.
expect_all_sent() {
    local want=$1 size
    size=$(wc -c <"$want" | tr -d ' ')
    assert_status 0
    local said=""
    [[ $stderr =~ ^sent\ ([0-9]+)\ bytes$ ]] && said=${BASH_REMATCH[1]}
    if [[ -n $said && $said != "$size" ]] && peer_done; then
        # What went missing on the way comes first; then what was counted.
        [[ $said == "$PEER_RECEIVED" ]] && expect_peer_got "$want"
        fail "$(printf 'stdin held %s bytes and the peer received %s, but tcp_send said "%s".\nCount what was sent: add the n each read() returned (and send_all() sent), not the size\nof your buffer or of one chunk.' "$size" "$PEER_RECEIVED" "$stderr")"
    fi
    assert_stderr_line "sent $size bytes"
    assert_equal "$output" ""
    expect_peer_got "$want"
}

# expect_peer_got FILE: the peer recorded exactly FILE, then end of file.
expect_peer_got() {
    local want=$1 size
    size=$(wc -c <"$want" | tr -d ' ')
    peer_done
    if [[ $PEER_RECEIVED != "$size" || $PEER_HOW != eof ]]; then
        local why=""
        local nuls_in nuls_got
        nuls_in=$(tr -cd '\000' <"$want" | wc -c | tr -d ' ')
        nuls_got=$(tr -cd '\000' <"$T/got" | wc -c | tr -d ' ')
        local prefix=0
        head -c "$PEER_RECEIVED" "$want" | cmp -s - "$T/got" && prefix=1
        if ((PEER_RECEIVED < size && nuls_in > 0 && nuls_got == 0 && !prefix)); then
            why=$(printf '\n(Your stdin holds %s NUL bytes; the peer received none of them. fgets(), strlen(),\nprintf("%%s") and fputs() treat NUL as the end of a C string, and stdin here is binary.\nread() it, and send exactly the n bytes read() returned.)' "$nuls_in")
        elif ((PEER_RECEIVED < size)) && tr -d '\000' <"$want" | cmp -s - "$T/got"; then
            why=$'\n(The peer got your stdin without its NUL bytes. fgets(), strlen(), printf("%s") and\nfputs() treat NUL as the end of a C string; stdin here is binary. read() it, and send\nexactly the n bytes read() returned.)'
        elif ((PEER_RECEIVED < size)) && grep -q -m1 -a $'\x00' "$want" 2>/dev/null && head -c "$PEER_RECEIVED" "$want" | cmp -s - "$T/got" &&
            [[ $(tail -c +"$((PEER_RECEIVED + 1))" "$want" | head -c 1 | od -An -tx1 | tr -d ' ') == 00 ]]; then
            why=$'\n(The peer got your stdin up to, not including, a NUL byte. strlen(), fgets() and\nprintf("%s") stop at NUL; stdin here is binary: send exactly the n bytes read() returned.)'
        elif ((PEER_RECEIVED < size)); then
            why=$'\n(Bytes went missing. send() returns how many bytes it took, which can be fewer than you gave it: send the rest too.)'
        fi
        fail "$(printf 'expected the peer to receive %s bytes, then end of file (your close).\nthe peer says: %s%s' "$size" "$AWAITED_LINE" "$why")"
    fi
    if ! cmp -s "$want" "$T/got"; then
        fail "$(printf 'the peer received %s bytes, as many as your stdin holds, but not the same bytes:\n%s\nAfter a short send() (it took n of the len bytes you offered), the next send() must\nstart at buf + n with len - n bytes, not at buf again.' \
            "$size" "$(cmp "$want" "$T/got" 2>&1 | head -1 | sed "s|$T|\$T|g")")"
    fi
}

@test "sends 10 MB of random binary byte for byte and says 'sent 10485760 bytes'" {
    make_random "$T/in" 10485760
    start_peer -- -r "$T/got"
    run_prog_stdin "$T/in" tcp_send 127.0.0.1 "$PEER_PORT"
    expect_all_sent "$T/in"
}

@test "with empty stdin, connects, sends nothing, closes, and says 'sent 0 bytes'" {
    : >"$T/in"
    start_peer -- -r "$T/got"
    run_prog_stdin "$T/in" tcp_send 127.0.0.1 "$PEER_PORT"
    expect_all_sent "$T/in"
}

@test "sends all of stdin when it arrives in small pieces through a slow pipe" {
    make_random "$T/in" 20000
    start_peer -- -r "$T/got"
    local path
    path=$(prog tcp_send)
    # 20 pieces of 1000 bytes, 10 ms apart: each read() of the pipe gets
    # one piece, far less than asked for. Only a read() of 0 is the end.
    # A long limit: python3 alone can take seconds to start on a busy machine.
    run_limited 20 bash -c 'python3 -c "
import sys, time
data = open(sys.argv[1], \"rb\").read()
for i in range(0, len(data), 1000):
    sys.stdout.buffer.write(data[i:i + 1000])
    sys.stdout.buffer.flush()
    time.sleep(0.01)" "$1" 2>/dev/null | "$0" 127.0.0.1 "$2"' "$path" "$T/in" "$PEER_PORT"
    if [[ $status == 0 ]]; then
        peer_done
        if ((PEER_RECEIVED < 20000)) && [[ $stderr == "sent $PEER_RECEIVED bytes"* ]]; then
            fail "$(printf 'stdin came through a pipe in 20 pieces of 1000 bytes; tcp_send sent %s and said "%s".\nA read() that returns fewer bytes than you asked for is not the end of stdin: a pipe\nhands over what is there now. Only a read() of 0 is the end: keep reading until then.' "$PEER_RECEIVED" "$stderr")"
        fi
    fi
    expect_all_sent "$T/in"
}

@test "every byte arrives in order when each send() takes at most 7 bytes" {
    make_random "$T/in" 65536
    start_peer -- -r "$T/got"
    # From here on, each send() or write() of tcp_send to its socket takes
    # 1 to 7 bytes, as a kernel may: only a full-send loop gets it all there.
    short_io tcp_send 7
    run_prog_stdin "$T/in" tcp_send 127.0.0.1 "$PEER_PORT"
    expect_all_sent "$T/in"
}

@test "every byte reaches a slow reader, even when send() takes only part of a buffer" {
    make_random "$T/in" 5242880
    # The peer reads 32 KB at a time, 2 ms apart: once the socket buffers
    # (a few MB) are full, tcp_send waits inside send().
    start_peer -- -K 32768 -w 2 -r "$T/got"
    local path pid
    path=$(prog tcp_send)
    SPAWN_STDIN=$T/in spawn sender "$path" 127.0.0.1 "$PEER_PORT"
    pid=$(pid_of sender)
    # Meanwhile we stop and continue it, over and over. A send() that has
    # taken some bytes and is waiting for room when a signal arrives
    # returns early with that count: a short write. A program that
    # assumes send() took everything loses the rest.
    local deadline=$((SECONDS + RUN_TIMEOUT))
    while is_running "$pid" && ((SECONDS < deadline)); do
        kill -STOP "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
        sleep 0.005
    done
    await_exit sender
    status=$EXIT_STATUS output=$(cat "$T/sender.out") stderr=$(cat "$T/sender.err")
    explain_abnormal_exit tcp_send "$RUN_TIMEOUT"
    expect_all_sent "$T/in"
}

# expect_peer_gone_error: tcp_send exited 1 with one line saying the
# peer is gone, and the peer closed after 1024 bytes as told.
expect_peer_gone_error() {
    if [[ $status == 0 ]]; then
        fail "$(printf 'the peer closed the connection after 1024 bytes, so it did not get all of stdin,\nyet tcp_send exited 0 (stderr: %s).\nWhen send() fails (-1, errno EPIPE or ECONNRESET) the data did not arrive: a failed\nsend() is a failure. Say so on stderr and exit 1.' "${stderr:-nothing}")"
    fi
    assert_status 1
    assert_stderr_matches '^tcp_send: .+: (Broken pipe|Connection reset by peer)$' \
        'send() fails with EPIPE or ECONNRESET once the peer is gone: say so and stop'
    assert_equal "$output" ""
    peer_done
    [[ $PEER_RECEIVED == 1024 && $PEER_HOW == closed ]] || fail "unexpected peer line: $AWAITED_LINE"
}

@test "a peer that closes after 1 KB while data keeps coming: one error line, exit 1" {
    start_peer -- -c 1024
    # stdin never ends: tcp_send is still sending when the peer closes,
    # with bytes it never read, so its kernel answers with a reset.
    local path
    path=$(prog tcp_send)
    printf '$ %s 127.0.0.1 %s < /dev/zero\n' "${path#"$REPO_ROOT"/}" "$PEER_PORT" >>"$T/transcript"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 "$RUN_TIMEOUT" "${WITH_DEFAULT_SIGPIPE[@]}" "$path" 127.0.0.1 "$PEER_PORT" </dev/zero
    if [[ $status == 124 || $status == 137 ]]; then
        fail "$(printf 'the peer closed after 1024 bytes, and tcp_send was still running %s s later.\nFrom then on every send() fails: it returns -1 (errno EPIPE or ECONNRESET). Check for -1\nbefore using n as a count (len -= -1 only makes len larger), and stop on the error.\nstderr so far:\n%s' "$RUN_TIMEOUT" "$(indent "$stderr")")"
    fi
    explain_abnormal_exit tcp_send "$RUN_TIMEOUT"
    expect_peer_gone_error
}

@test "sending after the peer has closed: one error line and exit 1, not death by SIGPIPE" {
    start_peer -- -c 1024
    local path
    path=$(prog tcp_send)
    # 1 KB, a pause until the peer has closed (cleanly: it read all there
    # was), then endless bytes. The first send() after that goes out and
    # draws a reset; the next one fails with EPIPE and raises SIGPIPE.
    local feed='head -c 1024 /dev/zero
        deadline=$((SECONDS + 5))
        until grep -q "^done:" "$0" || ((SECONDS > deadline)); do sleep 0.01; done
        exec cat /dev/zero'
    log_cmd bash -c "{ $feed; } | \"\$@\"" "$T/peer.out" "$path" 127.0.0.1 "$PEER_PORT"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 "$RUN_TIMEOUT" bash -c "{ $feed; } | \"\$@\"" \
        "$T/peer.out" "${WITH_DEFAULT_SIGPIPE[@]}" "$path" 127.0.0.1 "$PEER_PORT"
    explain_abnormal_exit tcp_send "$RUN_TIMEOUT"
    expect_peer_gone_error
}

@test "a refused connection is one line, 'tcp_send: connect to HOST port PORT: Connection refused', exit 1" {
    hold_refused_port
    run_prog_stdin /dev/null tcp_send 127.0.0.1 "$REFUSED_PORT"
    assert_status 1
    assert_stderr_line "tcp_send: connect to 127.0.0.1 port $REFUSED_PORT: Connection refused"
}

@test "-h prints usage to stdout and exits 0" {
    run_prog tcp_send -h
    assert_status 0
    assert_output --partial "usage: tcp_send HOST PORT"
}

@test "wrong arguments or a port that is not a number 1-65535 are usage errors: 'usage: ...', exit 2" {
    local args
    for args in "" "localhost" "localhost 80 extra" "localhost 0" "localhost 65536" "localhost http"; do
        # shellcheck disable=SC2086 # split on purpose: the arguments
        run_prog tcp_send $args
        [[ $status == 2 ]] || fail "$(printf "with arguments '%s': expected exit status 2, got %s.\nstderr:\n%s" "$args" "$status" "$(indent "$stderr")")"
        assert_stderr_matches '^usage: tcp_send' "with arguments '$args'"
    done
}
