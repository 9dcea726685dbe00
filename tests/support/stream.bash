# tests/support/stream.bash - helpers for the client lessons that move a
# byte stream (04-recv, 05-close). A bats file loads it after the shared
# helpers and the client helpers (hold_refused_port, fake_hosts):
#     load support/helpers
#     load support/client
#     load support/stream

# run_to_file [-s SECS] FILE NAME ARGS...: runs the lesson program NAME
# like run_prog does (time limit, signals explained), but its stdout goes
# byte for byte into FILE: bash's $output would drop NUL bytes and
# trailing newlines. Sets $status and $stderr; $output says where stdout
# went and how many bytes it got.
# After fake_hosts (support/client), the program sees its host names.
run_to_file() {
    local secs=$RUN_TIMEOUT
    if [[ $1 == -s ]]; then secs=$2; shift 2; fi
    local file=$1 name=$2
    prog_path "$name" || return 1
    shift 2
    local cmd=("$PROG_PATH" "$@")
    [[ -n ${FAKE_HOSTS_ENV+set} ]] && cmd=(env "${FAKE_HOSTS_ENV[@]}" "${cmd[@]}")
    LOG_SUFFIX=" >${file/#"$T"/\$T}" log_cmd "${cmd[@]}"
    # stdout straight into FILE (the output cap applies to it too).
    limited_exec "$secs" "$file" "$T/.run.err" "${cmd[@]}"
    read_capture /dev/null "$T/.run.err"
    local n
    n=$(wc -c <"$file")
    output="(stdout went to ${file/#"$T"/\$T}: $((n)) bytes)"
    explain_abnormal_exit "$name" "$secs"
}

# assert_same_stream WANT GOT WHAT: the file GOT holds exactly the bytes
# of the file WANT. If not, names the usual mistakes: stopping at the
# first recv(), stopping at or dropping NUL bytes, adding bytes at the end.
assert_same_stream() {
    local want=$1 got=$2 what=$3 nwant ngot
    cmp -s "$want" "$got" && return 0
    nwant=$(wc -c <"$want" | tr -d ' ')
    ngot=$(wc -c <"$got" | tr -d ' ')
    if ((ngot < nwant)) && head -c "$ngot" "$want" | cmp -s - "$got"; then
        if [[ $(tail -c +"$((ngot + 1))" "$want" | head -c 1 | od -An -tx1 | tr -d ' ') == 00 ]]; then
            fail "$(printf 'stdout stops after %s of the %s bytes sent, just before a NUL byte.\nprintf("%%s"), fputs() and strlen() stop at the first NUL: the data is bytes, not a C string.\nWrite exactly the n bytes each recv() returned, with write().' "$ngot" "$nwant")"
        fi
        fail "$(printf 'stdout got only the first %s of the %s bytes sent.\nOne recv() returns what has arrived so far, never more than you ask for (the origin'"'"'s client\ndoes a single recv(sock, buf, 1024, 0)): call recv() again until it returns 0, the FIN.' "$ngot" "$nwant")"
    fi
    if ((ngot > nwant)) && head -c "$nwant" "$got" | cmp -s - "$want"; then
        fail "$(printf 'stdout has all %s bytes sent, and then %s bytes more:\n%s\nPrint exactly the n bytes each recv() returned: nothing added (no newline), and never\nprintf("%%s") a buffer that has no NUL at its end.' \
            "$nwant" "$((ngot - nwant))" "$(tail -c +"$((nwant + 1))" "$got" | head -c 32 | od -An -c)")"
    fi
    if ((ngot < nwant)) && tr -d '\000' <"$want" | cmp -s - "$got"; then
        fail "$(printf 'stdout has the %s bytes sent except every NUL byte (%s bytes in all).\nprintf("%%s") and fputs() skip or stop at NUL: the data is bytes, not a C string.\nWrite exactly the n bytes each recv() returned, with write().' "$nwant" "$ngot")"
    fi
    assert_same_bytes "$want" "$got" "$what"
}

# use_two_addresses NAME: from now on, in this test, NAME resolves to
# 127.0.0.2 first and 127.0.0.1 second (fake_hosts). Start the server on
# 127.0.0.1 first: while it listens on 127.0.0.1:PORT, nothing can listen
# on 127.0.0.2:PORT, so a client reaches it only if it goes on to the
# second address after the first one refuses.
use_two_addresses() {
    fake_hosts "127.0.0.2 $1" "127.0.0.1 $1"
}

# explain_two_addresses NAME PORT: after a run, if the client gave up with
# "Connection refused" on NAME (see use_two_addresses), fails the test
# saying why.
explain_two_addresses() {
    [[ $status != 0 && $stderr == *refused* ]] || return 0
    fail "$(printf '%s resolves to two addresses: 127.0.0.2 (nothing listens there: refused) and then\n127.0.0.1 (the test server, port %s). The program had to go on to the second one.\nTry every address getaddrinfo() returns, with a new socket for each, until one connects.\nexit status %s, stderr:\n%s' \
        "$1" "$2" "$status" "$(indent "$stderr")")"
}

# skip_without_ipv6: skips the test on a machine with IPv6 turned off.
skip_without_ipv6() {
    if [[ -d /proc/net && ! -e /proc/net/if_inet6 ]]; then
        skip "IPv6 is turned off on this machine"
    fi
}

# run_closed_stdout NAME ARGS...: runs the lesson program NAME with its
# stdout a pipe whose reader has gone (it exits at once without reading),
# and SIGPIPE at its default action, as in `NAME ... | head -c 0`. Once the
# pipe's 64 KiB buffer is full, or the reader is gone, write() raises
# SIGPIPE: a program that ignores it gets EPIPE instead. Feed it more than
# 64 KiB. Sets $status and $stderr; a hang or a crash fails the test, and
# death by SIGPIPE fails it with an explanation.
run_closed_stdout() {
    local name=$1 path
    path=$(prog "$name") || return 1
    shift
    local cmd=("$path" "$@")
    [[ -n ${FAKE_HOSTS_ENV+set} ]] && cmd=(env "${FAKE_HOSTS_ENV[@]}" "${cmd[@]}")
    log_cmd "${cmd[@]}"
    printf '%s | head -c 0\n' "$(tail -n 1 "$T/transcript")" >"$T/transcript.last"
    { sed '$d' "$T/transcript"; cat "$T/transcript.last"; } >"$T/transcript.new" && mv "$T/transcript.new" "$T/transcript"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 "$RUN_TIMEOUT" bash -c 'exec "$@" > >(exec true)' _ \
        "${WITH_DEFAULT_SIGPIPE[@]}" "${cmd[@]}"
    output=""
    if [[ $status == 141 ]]; then
        fail "$(printf '%s was killed by SIGPIPE (exit status 141), without a word.\nIts stdout was a pipe whose reader had quit (as in "%s ... | head -c 0"): write() to it raises\nSIGPIPE, and the default action of SIGPIPE is to end the process. Ignore it once at the\nstart, signal(SIGPIPE, SIG_IGN), and write() fails with EPIPE instead: report that as\n"%s: stdout: Broken pipe" and exit 1. (A socket whose peer has gone does the same to send().)' \
            "$name" "$name" "$name")"
        return 1
    fi
    explain_abnormal_exit "$name" "$RUN_TIMEOUT"
}

# run_to_socket SINK_PORT NAME ARGS...: runs the lesson program NAME with
# its stdout a TCP connection to 127.0.0.1:SINK_PORT (a peer that records
# what arrives), not a file: together with short_io (support/shortio),
# write() to stdout then takes only a few bytes at a time. Sets $status
# and $stderr, like run_to_file.
run_to_socket() {
    local sink=$1 name=$2 path
    path=$(prog "$name") || return 1
    shift 2
    log_cmd "$path" "$@"
    printf '%s >/dev/tcp/127.0.0.1/%s\n' "$(tail -n 1 "$T/transcript")" "$sink" >"$T/transcript.last"
    { sed '$d' "$T/transcript"; cat "$T/transcript.last"; } >"$T/transcript.new" && mv "$T/transcript.new" "$T/transcript"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 "$RUN_TIMEOUT" bash -c 'exec "$@" >/dev/tcp/127.0.0.1/"$0"' "$sink" "$path" "$@"
    output=""
    explain_abnormal_exit "$name" "$RUN_TIMEOUT"
}
