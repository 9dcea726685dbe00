#!/usr/bin/env bats
# Lesson 09: file_server and file_client move files with a length-prefixed
# protocol, one request per connection:
#     GET name\n               ->  OK size\n + size bytes
#     PUT name size\n + bytes  ->  OK\n
#     anything wrong           ->  ERR text\n
# The server is tested with the C test peer (so a request can hold any
# byte, NUL included), the client with the peer playing the server; the
# big transfers run the two programs against each other.

load support/helpers
load support/client

# Every test serves $DIR = $T/box/files. $T/box/secret.txt sits next to
# it: it must never be served, and nothing may ever appear beside it.
setup() {
    helpers_setup
    BOX=$T/box DIR=$T/box/files CWD=$T/cwd
    mkdir -p "$DIR" "$CWD"
    SECRET=secret-$RANDOM$RANDOM$RANDOM
    printf '%s\n' "$SECRET" >"$BOX/secret.txt"
}

### helpers for this lesson ###

# show FILE: its first bytes as text, control bytes as ^X, for messages.
show() {
    if [[ -s $1 ]]; then indent "$(head -c 300 "$1" | cat -v)"; else indent ""; fi
}

# ask TAG BYTES: sends BYTES (printf %b escapes: \n, \0) to the server on
# $SERVER_PORT with the test peer, which then half-closes and records the
# reply in $T/TAG.reply until the server closes. Sets REQ and REPLY.
ask() {
    REQ=$T/$1.req REPLY=$T/$1.reply
    printf '%b' "$2" >"$REQ"
    ask_file "$REQ" "$REPLY"
}

# ask_file REQUEST_FILE REPLY_FILE: the same with the request in a file.
ask_file() {
    REQ=$1 REPLY=$2
    run_limited 8 "$PEER" -t 5000 -s "$REQ" -r "$REPLY" -C 127.0.0.1 "$SERVER_PORT"
    check_peer_run
}

# ask_each TAG BYTES...: like ask, for each BYTES in turn, one connection
# each (one time limit for all: it is faster). Request i is $T/TAG.i.req,
# its reply $T/TAG.i.reply; then for_reply TAG i sets REQ and REPLY.
ask_each() {
    local tag=$1 i=0 bytes
    shift
    for bytes in "$@"; do
        printf '%b' "$bytes" >"$T/$tag.$i.req"
        i=$((i + 1))
    done
    # shellcheck disable=SC2016
    run_limited 20 bash -c 'for ((i = 0; i < $4; i++)); do
            "$1" -t 5000 -s "$2.$i.req" -r "$2.$i.reply" -C 127.0.0.1 "$3" || exit
            echo "request $i"
        done' peer-each "$PEER" "$T/$tag" "$SERVER_PORT" "$#"
    REQ=$T/$tag.$(grep -c '^request ' <<<"$output").req REPLY=/dev/null
    check_peer_run
}

for_reply() { REQ=$T/$1.$2.req REPLY=$T/$1.$2.reply; }

# Fails unless the peer run just made ended well.
check_peer_run() {
    [[ $status == 0 ]] ||
        fail "$(printf 'the test peer could not talk to the server (exit %s).\nrequest:\n%s\npeer said:\n%s\n%s' \
            "$status" "$(show "$REQ")" "$(indent "$output")" "$(indent "$stderr")")"
    [[ $output != *", timeout"* ]] ||
        fail "$(printf 'the server neither answered nor closed the connection within 5 s.\nrequest:\n%s\nreply so far:\n%s' \
            "$(show "$REQ")" "$(show "$REPLY")")"
}

# assert_err_reply: $REPLY is exactly one line "ERR text\n".
assert_err_reply() {
    local body=""
    IFS= read -r -d '' body <"$REPLY" || true   # stops at a NUL: then no match
    [[ $body =~ ^ERR\ [^[:cntrl:]]+$'\n'$ ]] ||
        fail "$(printf 'expected the reply to be one line "ERR text\\n".\nrequest:\n%s\nreply:\n%s' \
            "$(show "$REQ")" "$(show "$REPLY")")"
}

# assert_reply_is TEXT: $REPLY holds exactly the bytes of TEXT (printf %b).
assert_reply_is() {
    printf '%b' "$1" >"$T/want.reply"
    cmp -s "$T/want.reply" "$REPLY" ||
        fail "$(printf 'expected the reply:\n%s\ngot:\n%s\nrequest:\n%s' \
            "$(show "$T/want.reply")" "$(show "$REPLY")" "$(show "$REQ")")"
}

# snapshot: every path under $BOX with a checksum of every file.
snapshot() {
    (cd "$BOX" && find . | LC_ALL=C sort && find . -type f -exec cksum {} + | LC_ALL=C sort)
}

# assert_box_unchanged BEFORE WHY: nothing under $BOX was added, removed
# or changed since BEFORE was taken.
assert_box_unchanged() {
    local now
    now=$(snapshot)
    [[ $now == "$1" ]] ||
        fail "$(printf '%s, but the files changed (+ new, - gone; $T/box/files is DIR):\n%s' "$2" \
            "$(indent "$(diff <(printf '%s\n' "$1") <(printf '%s\n' "$now") | grep '^[<>]' | sed 's/^</-/; s/^>/+/')")")"
}

# assert_dir_holds NAMES...: DIR holds exactly these names (no temporaries).
assert_dir_holds() {
    local got want
    got=$(shopt -s nullglob dotglob; cd "$DIR" && printf '%s\n' *)
    want=$(printf '%s\n' "$@")
    [[ $got == "$want" ]] ||
        fail "$(printf 'expected DIR to hold exactly:\n%s\nit holds:\n%s' "$(indent "$want")" "$(indent "$got")")"
}

# long_name N: N times "a".
long_name() { printf 'a%.0s' $(seq "$1"); }

# in_cwd: the client runs in $CWD, where get writes ./NAME.
in_cwd() {
    cd "$CWD" || fail "cannot cd to $CWD"
    log_cmd cd "$CWD"
}

### the server, byte by byte ###

@test "GET answers 'OK size' and then exactly the file's bytes, and 'ERR text' for a missing file" {
    make_random "$DIR/data.bin" 70000
    start_server file_server -d "$DIR"
    ask get 'GET data.bin\n'
    { printf 'OK 70000\n'; cat "$DIR/data.bin"; } >"$T/want"
    assert_same_bytes "$T/want" "$REPLY" "the reply to 'GET data.bin' (OK 70000, then the file)"
    ask missing 'GET no-such-file.txt\n'
    assert_err_reply
}

@test "PUT stores exactly the announced bytes under the name and answers 'OK'" {
    make_random "$T/up.bin" 70000
    start_server file_server -d "$DIR"
    { printf 'PUT up.bin 70000\n'; cat "$T/up.bin"; } >"$T/put.req"
    ask_file "$T/put.req" "$T/put.reply"
    assert_reply_is 'OK\n'
    assert_same_bytes "$T/up.bin" "$DIR/up.bin" "the stored file DIR/up.bin"
    assert_dir_holds up.bin
}

@test "an empty file goes both ways: 'OK 0', and file_client gets and puts it" {
    : >"$DIR/empty"
    : >"$CWD/empty-up"
    start_server file_server -d "$DIR"
    ask get 'GET empty\n'
    assert_reply_is 'OK 0\n'
    in_cwd
    run_prog file_client 127.0.0.1 "$SERVER_PORT" get empty
    assert_status 0
    [[ -f $CWD/empty && ! -s $CWD/empty ]] || fail "'get empty' exited 0 but did not leave an empty file ./empty"
    run_prog file_client 127.0.0.1 "$SERVER_PORT" put empty-up
    assert_status 0
    [[ -f $DIR/empty-up && ! -s $DIR/empty-up ]] || fail "'put empty-up' exited 0 but DIR holds no empty file empty-up"
    assert_dir_holds empty empty-up
}

### 100 MB both ways ###

# small_transfer_works get|put: the same transfer with an 11-byte file
# first, so that a program that cannot move 11 bytes fails here, before
# 100 MB are made for it. Leaves DIR and ./ empty.
small_transfer_works() {
    local from=$DIR to=$CWD
    [[ $1 == put ]] && from=$CWD to=$DIR
    printf 'small file\n' >"$from/small.txt"
    run_prog file_client 127.0.0.1 "$SERVER_PORT" "$1" small.txt
    [[ $status == 0 ]] && cmp -s "$from/small.txt" "$to/small.txt" ||
        fail "$(printf 'file_client could not %s an 11-byte file (exit %s); the other tests say why.\nstderr:\n%s' "$1" "$status" "$(indent "$stderr")")"
    rm -f "$from/small.txt" "$to/small.txt"
}

@test "file_client gets a 100 MB binary file byte-exact" {
    # file_client writes a 100 MB file: past the usual 1 MiB cap a program
    # under test may write to one file (helpers.bash, OUTPUT_CAP).
    local OUTPUT_CAP=128M
    start_server file_server -d "$DIR"
    in_cwd
    small_transfer_works get
    make_random "$DIR/big.bin" $((100 * 1000 * 1000))
    run_prog -s 30 file_client 127.0.0.1 "$SERVER_PORT" get big.bin
    assert_status 0
    assert_same_bytes "$DIR/big.bin" "$CWD/big.bin" "./big.bin after 'get big.bin'"
    [[ $(ls -A "$CWD") == big.bin ]] || fail "get left more than ./big.bin behind: $(ls -A "$CWD" | tr '\n' ' ')"
    rm -f "$DIR/big.bin" "$CWD/big.bin"
}

@test "file_client puts a 100 MB binary file byte-exact" {
    # file_server writes a 100 MB file: past the usual 1 MiB cap a program
    # under test may write to one file (helpers.bash, OUTPUT_CAP).
    local OUTPUT_CAP=128M
    start_server file_server -d "$DIR"
    in_cwd
    small_transfer_works put
    make_random "$CWD/big.bin" $((100 * 1000 * 1000))
    run_prog -s 30 file_client 127.0.0.1 "$SERVER_PORT" put big.bin
    assert_status 0
    assert_same_bytes "$CWD/big.bin" "$DIR/big.bin" "DIR/big.bin after 'put big.bin'"
    assert_dir_holds big.bin
    rm -f "$DIR/big.bin" "$CWD/big.bin"
}

### names outside DIR ###

@test "names with '/', '..', a NUL byte or over 255 bytes are refused with 'ERR text'; nothing outside DIR is read or written" {
    printf 'fine\n' >"$DIR/ok.txt"
    start_server file_server -d "$DIR"
    local before
    before=$(snapshot)
    local cases=(
        'GET ../secret.txt\n' "GET $BOX/secret.txt\n" 'GET ./../secret.txt\n'
        'GET ..\n' 'GET .\n' 'GET ok.txt\0../secret.txt\n' 'GET ../secret.txt\0\n'
        "GET $(long_name 256)\n"
        'PUT ../escaped.txt 5\nhello' "PUT $BOX/escaped.txt 5\nhello" 'PUT ../secret.txt 5\nhello'
        'PUT .. 5\nhello' 'PUT . 5\nhello' 'PUT ok.txt\0../escaped.txt 5\nhello'
        "PUT $(long_name 256) 5\nhello"
    )
    ask_each name "${cases[@]}"
    local i
    for i in "${!cases[@]}"; do
        for_reply name "$i"
        ! grep -q "$SECRET" "$REPLY" ||
            fail "$(printf 'the server sent the contents of $T/box/secret.txt, a file outside DIR.\nrequest:\n%s' "$(show "$REQ")")"
        assert_err_reply
    done
    assert_box_unchanged "$before" "every one of these requests should have been refused:$(printf '\n    %s' "${cases[@]}")"$'\n'
}

### uploads that do not finish ###

@test "an upload cut off half-way (closed, or reset) leaves no file under its name and no temporary" {
    start_server file_server -d "$DIR"
    local before
    before=$(snapshot)
    { printf 'PUT half.bin 1000000\n'; head -c 500000 /dev/urandom; } >"$T/half.req"
    # The peer sends the header and half the bytes, then closes its side;
    # it returns once the server has closed the connection, and the
    # server must have cleaned up before it closes.
    ask_file "$T/half.req" "$T/half.reply"
    assert_box_unchanged "$before" "the upload announced 1000000 bytes, sent 500000 and closed
(write an upload to a mkstemp temporary in DIR, rename it when complete, and unlink it
on failure before closing the connection)"

    # Python sends half the bytes, waits until the server's temporary file
    # shows up in DIR (so the server is mid-upload), then resets.
    log_cmd python3 -c '<send PUT half.bin 1000000 + 500000 bytes, wait for a temporary in DIR, reset>' "$SERVER_PORT" "$DIR"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 10 python3 -c '
import os, socket, struct, sys, time
port, d = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PUT half.bin 1000000\n" + os.urandom(500000))
s.setblocking(False)
deadline = time.monotonic() + 5
while not os.listdir(d):
    try:
        got = s.recv(300)
        print("the server %s before the upload was complete" %
              ("answered %r" % got if got else "closed the connection"))
        sys.exit(3)
    except BlockingIOError:
        pass
    if time.monotonic() > deadline:
        print("no temporary file appeared in DIR within 5 s of sending half the upload")
        sys.exit(3)
    time.sleep(0.01)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
' "$SERVER_PORT" "$DIR"
    [[ $status == 0 ]] ||
        fail "$(printf 'an upload must be written to a temporary file in DIR as it arrives, and renamed when complete.\n%s\n%s' "$output" "$stderr")"
    # The temporary existed; now it must go, and nothing may take its place.
    local deadline=$((SECONDS + 5))
    while [[ -n $(ls -A "$DIR") ]] && ((SECONDS < deadline)); do sleep 0.02; done
    assert_box_unchanged "$before" "the upload was reset after 500000 of 1000000 bytes and 5 s have passed"
}

### concurrency and robustness ###

@test "three clients at once: one stalled mid-request and one reading slowly hold up nobody" {
    printf 'small file\n' >"$DIR/small.txt"
    make_random "$DIR/slow.bin" 4000000
    start_server file_server -d "$DIR"
    printf 'GET sma' >"$T/stalled.req"
    spawn stalled "$PEER" -t 20000 -H -s "$T/stalled.req" -C 127.0.0.1 "$SERVER_PORT"
    await_line stalled '^connected to'
    printf 'GET slow.bin\n' >"$T/slow.req"
    spawn slow "$PEER" -t 20000 -K 1024 -w 200 -s "$T/slow.req" -C 127.0.0.1 "$SERVER_PORT"
    await_line slow '^connected to'
    printf 'GET small.txt\n' >"$T/third.req"
    spawn third "$PEER" -t 10000 -s "$T/third.req" -r "$T/third.reply" -C 127.0.0.1 "$SERVER_PORT"
    local deadline=$((SECONDS + RUN_TIMEOUT))
    until grep -q '^done: ' "$T/third.out" || ((SECONDS >= deadline)); do sleep 0.02; done
    grep -q '^done: ' "$T/third.out" ||
        fail "$(printf 'while one client had sent half a request line and another was reading slowly,\na third client (GET small.txt) waited %s s without an answer.\nServe each client in its own process (fork) or thread.' "$RUN_TIMEOUT")"
    REQ=$T/third.req REPLY=$T/third.reply
    assert_reply_is 'OK 11\nsmall file\n'
    is_running "$(pid_of stalled)" || fail "the stalled client was disconnected already: $(cat "$T/stalled.out")"
}

@test "survives garbage, empty connections and half-sent lines, answering 'ERR text', and still serves" {
    printf 'fine\n' >"$DIR/ok.txt"
    start_server file_server -d "$DIR"
    local i cases=(
        '' 'HELLO\n' 'GET\n' 'GET \n' 'get ok.txt\n' 'PUT\n' 'PUT ok.txt\n'
        'GET ok.txt' "$(long_name 600)" "GET $(long_name 600)\n"
    )
    ask_each bad "${cases[@]}"
    for ((i = 1; i < ${#cases[@]}; i++)); do   # 0: connected, sent nothing
        for_reply bad "$i"
        assert_err_reply
    done
    make_random "$T/noise.req" 100000
    ask_file "$T/noise.req" "$T/noise.reply"
    assert_err_reply
    is_running "$SERVER_PID" || fail "the server died: $(cat "$T/file_server.err")"
    ask get 'GET ok.txt\n'
    assert_reply_is 'OK 5\nfine\n'
}

@test "PUT sizes are parsed strictly: no sign, no space, no letters, no overflow" {
    start_server file_server -d "$DIR"
    local i sizes=(
        '-5\nhello' '+5\nhello' '5x\nhello' '0x5\nhello' '5 \nhello' '\nhello' '5.0\nhello'
        '18446744073709551621\nhello' '9223372036854775813\nhello' '99999999999999999999999999\nhello'
    )
    ask_each size "${sizes[@]/#/PUT x }"
    for i in "${!sizes[@]}"; do
        for_reply size "$i"
        assert_err_reply
    done
    assert_dir_holds
}

@test "SIGTERM and SIGINT make the server exit 0" {
    local sig
    for sig in TERM INT; do
        start_server file_server -d "$DIR"
        stop_server_with "$sig" || return 1
    done
}


### the client against a scripted server ###

@test "file_client sends exactly 'GET NAME\\n' or 'PUT NAME SIZE\\n' + bytes, and takes a reply however it arrives" {
    make_random "$T/data.bin" 5000
    { printf 'OK 5000\n'; cat "$T/data.bin"; } >"$T/get.reply"
    start_peer get -- -k 3 -s "$T/get.reply" -r "$T/get.request"
    in_cwd
    run_prog file_client 127.0.0.1 "$PEER_PORT" get data.bin
    assert_status 0
    assert_same_bytes "$T/data.bin" "$CWD/data.bin" "./data.bin (the server sent 'OK 5000' and the bytes 3 at a time)"
    peer_done get
    printf 'GET data.bin\n' >"$T/want"
    assert_same_bytes "$T/want" "$T/get.request" "the request 'get data.bin' sent"

    make_random "$CWD/up.bin" 70000
    printf 'OK\n' >"$T/put.reply"
    start_peer put -- -k 1 -s "$T/put.reply" -r "$T/put.request"
    run_prog file_client 127.0.0.1 "$PEER_PORT" put up.bin
    assert_status 0
    peer_done put
    { printf 'PUT up.bin 70000\n'; cat "$CWD/up.bin"; } >"$T/want"
    assert_same_bytes "$T/want" "$T/put.request" "the request 'put up.bin' sent"
}

@test "the server's 'ERR text' becomes 'file_client: server: text', exit 1, for get and for put" {
    printf 'ERR disk on fire\n' >"$T/reply"
    printf 'data\n' >"$CWD/up.txt"
    start_peer -- -s "$T/reply"
    in_cwd
    run_prog file_client 127.0.0.1 "$PEER_PORT" put up.txt
    assert_status 1
    assert_stderr_line "file_client: server: disk on fire"
    start_server file_server -d "$DIR"
    run_prog file_client 127.0.0.1 "$SERVER_PORT" get no-such-file
    assert_status 1
    assert_stderr_matches '^file_client: server: .+'
    [[ $(ls -A "$CWD") == up.txt ]] || fail "a get answered with ERR left files behind: $(ls -A "$CWD" | tr '\n' ' ')"
}



@test "a reply cut off half-way or malformed is one error line, exit 1, and leaves the old ./NAME as it was, no temporary" {
    local i replies=("OK 100000\n$(long_name 1000)" 'OK 12abc\n' 'HELLO\n')
    printf 'old contents\n' >"$CWD/data.bin"
    cp "$CWD/data.bin" "$T/old"
    in_cwd
    for i in "${!replies[@]}"; do
        printf '%b' "${replies[$i]}" >"$T/reply$i"
        start_peer "srv$i" -- -s "$T/reply$i"
        run_prog file_client 127.0.0.1 "$PEER_PORT" get data.bin
        [[ $status == 1 && $stderr =~ ^file_client:\ [^$'\n']+$ ]] ||
            fail "$(printf 'expected exit 1 and one line "file_client: ..." for the reply:\n%s\ngot exit %s, stderr:\n%s' \
                "$(show "$T/reply$i")" "$status" "$(indent "$stderr")")"
        assert_same_bytes "$T/old" "$CWD/data.bin" "./data.bin, which existed before the failed get"
        [[ $(ls -A "$CWD") == data.bin ]] ||
            fail "$(printf 'the reply\n%s\nleft files behind: %s' "$(show "$T/reply$i")" "$(ls -A "$CWD" | tr '\n' ' ')")"
    done
}

@test "file_client: a missing local file and a refused connection are one line each, exit 1" {
    hold_refused_port
    in_cwd
    run_prog file_client 127.0.0.1 "$REFUSED_PORT" put no-such-file
    assert_status 1
    assert_stderr_line "file_client: no-such-file: No such file or directory"
    run_prog file_client 127.0.0.1 "$REFUSED_PORT" get x
    assert_status 1
    assert_stderr_line "file_client: connect: Connection refused"
}

### the command line ###

@test "-h prints usage to stdout and exits 0; a usage error prints 'usage: ...' on stderr and exits 2; a missing DIR exits 1" {
    run_prog file_server -h
    assert_status 0
    assert_output --partial "usage: file_server"
    run_prog file_client -h
    assert_status 0
    assert_output --partial "usage: file_client"
    local args
    for args in "-p 0" "-d $DIR -p 70000"; do
        # shellcheck disable=SC2086
        run_prog file_server $args
        assert_status 2
        assert_stderr_matches '^usage: file_server' "for: file_server $args"
    done
    for args in "127.0.0.1 80 list x" "127.0.0.1 99999 get x"; do
        # shellcheck disable=SC2086
        run_prog file_client $args
        assert_status 2
        assert_stderr_matches '^usage: file_client' "for: file_client $args"
    done
    run_prog file_server -p 0 -d "$T/no-such-dir"
    assert_status 1
    assert_stderr_line "file_server: $T/no-such-dir: No such file or directory"
}
