# tests/support/process.bash - what a program's own state says, where its
# output cannot tell right from wrong: its signal dispositions, its CPU
# time, its open descriptors. Linux's /proc; tests that need it skip
# elsewhere.
#
#     load support/helpers
#     load support/process

# need_proc: skips the test where there is no /proc/PID/status.
need_proc() {
    [[ -r /proc/self/status ]] || skip "needs Linux's /proc"
}

# assert_sigpipe_ignored PID NAME: NAME (running as PID) ignores SIGPIPE.
# Bit 13 (SIGPIPE) of SigIgn in /proc/PID/status is set by
# signal(SIGPIPE, SIG_IGN) or sigaction with SIG_IGN; a handler or the
# default leaves it clear.
assert_sigpipe_ignored() {
    local pid=$1 name=$2 line mask=""
    need_proc
    while IFS= read -r line; do
        [[ $line == SigIgn:* ]] && { mask=${line#SigIgn:}; mask=${mask//[[:space:]]/}; break; }
    done <"/proc/$pid/status" || { fail "$name (pid $pid) is not running: cannot read its signal dispositions"; return 1; }
    if (((16#${mask:-0} >> 12) & 1)); then return 0; fi
    fail "$(printf '%s does not ignore SIGPIPE (SigIgn: %s in /proc/%s/status).\nWriting to a peer that has gone raises SIGPIPE, and its default action kills the\nwhole program, with no message. Ignore it once at start (signal(SIGPIPE, SIG_IGN) or\nsigaction) and handle the EPIPE error that send() then returns instead.' "$name" "${mask:-?}" "$pid")"
    return 1
}

# cpu_ticks PID: sets CPU_TICKS to the CPU time PID has used (user +
# system) in clock ticks (usually 100 a second).
cpu_ticks() {
    local stat fields
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -r -a fields <<<"${stat##*) }" # the name, in (), may hold anything
    CPU_TICKS=$((fields[11] + fields[12]))
}

# assert_idle_cpu PID NAME SECS [WHILE]: over the next SECS seconds NAME uses
# under a tenth of one core. An idle event loop sleeps in poll(); one that
# spins (POLLOUT asked for with nothing to send, a retry on EAGAIN, a zero
# timeout) burns a whole core doing nothing. WHILE says what the test is
# doing meanwhile, for the message.
assert_idle_cpu() {
    local pid=$1 name=$2 secs=$3 what=${4:-while nothing happens} before hz=100
    need_proc
    cpu_ticks "$pid" || { fail "$name (pid $pid) is not running"; return 1; }
    before=$CPU_TICKS
    sleep "$secs"
    cpu_ticks "$pid" || { fail "$name exited during the $secs s it was watched"; return 1; }
    local used=$((CPU_TICKS - before)) limit
    limit=$((secs * hz / 10))
    ((used <= limit)) && return 0
    fail "$(printf '%s used %d.%02d s of CPU in %s s %s: it is spinning, not waiting.\n(An idle loop must sleep in poll()/epoll_wait(): ask for POLLOUT only while there is\nsomething to send, and on EAGAIN wait for the socket instead of retrying at once.)' \
        "$name" $((used / hz)) $((used % hz)) "$secs" "$what")"
    return 1
}

# fd_count PID: sets FD_COUNT to the number of descriptors PID has open.
fd_count() {
    local fds
    need_proc
    fds=(/proc/"$1"/fd/*)
    [[ -e ${fds[0]} ]] || { FD_COUNT=0; return 1; }
    FD_COUNT=${#fds[@]}
}
