# tests/support/helpers.bash - what every lesson's tests share.
#
# A lesson's bats file starts with
#     load support/helpers
# and then reads as a specification: start a peer, run the student's
# program with a time limit, compare what arrived. Every helper here
# fails the test with a message a student can act on (what was
# expected, what happened) and, when a test fails, teardown prints the
# one command that reproduces it and the commands the test ran.
#
# Rules these helpers enforce for every test:
#   - every program runs under a time limit; a hang is reported as one;
#   - a program killed by a signal is reported with the signal's name;
#   - every background process gets its own process group and is killed
#     by PID in teardown; none inherits fd 3 (bats would hang on it);
#   - servers start on port 0 and we read the port from their
#     "listening on ADDR:PORT" line, never sleep and hope.

bats_require_minimum_version 1.5.0

# load_bats_lib NAME: loads bats-support or bats-assert. Their load.bash
# runs dirname(1) for each of its files: 15 processes for every test, 8,000
# in a make test. Where their src/ is found, its files are sourced directly.
load_bats_lib() {
    local dir f dirs
    IFS=: read -r -a dirs <<<"${BATS_LIB_PATH:-/usr/lib/bats}"
    for dir in "${dirs[@]}"; do
        [[ -f $dir/$1/load.bash ]] || continue
        [[ -d $dir/$1/src ]] || break # another layout: let bats load it
        for f in "$dir/$1"/src/*.bash; do
            source "$f" || return 1
        done
        return 0
    done
    bats_load_library "$1"
}
if ! load_bats_lib bats-support 2>/dev/null || ! load_bats_lib bats-assert 2>/dev/null; then
    echo "bats-support or bats-assert is missing: run 'make deps'" >&2
    exit 1
fi

REPO_ROOT=${BATS_TEST_DIRNAME%/*}
[[ $REPO_ROOT == /* ]] || REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
LESSON=${BATS_TEST_FILENAME##*/}
LESSON=${LESSON%.bats}
: "${PROG_ROOT:=build/lessons}"
case "$PROG_ROOT" in /*) PROG_DIR=$PROG_ROOT ;; *) PROG_DIR=$REPO_ROOT/$PROG_ROOT ;; esac
PEER=$REPO_ROOT/build/support/peer
T=$BATS_TEST_TMPDIR

# How long one program may run before we call it hung (seconds).
: "${RUN_TIMEOUT:=5}"
# How long a server may take to print its "listening on" line.
: "${START_TIMEOUT:=5}"

if command -v timeout >/dev/null; then TIMEOUT_CMD=timeout; else TIMEOUT_CMD=gtimeout; fi

SPAWNED_PIDS=()
# The start time of each spawned PID (see proc_start_time), or "gone",
# indexed by PID.
SPAWN_START=()

setup() { helpers_setup; }
teardown() { helpers_teardown; }

helpers_setup() {
    # bats's DEBUG trap records a stack trace before every bash command
    # (about 0.2 ms each): in the helpers' wait loops that was 40% of the
    # whole suite's CPU. Record only the lines of the test file itself: a
    # failure inside a helper is then reported at the line that called it.
    trap '[[ ${BASH_SOURCE[0]} != "$BATS_RUN_TMPDIR"/*.src ]] || bats_debug_trap "$BASH_SOURCE"' DEBUG
    : >"$T/transcript"
    [[ -x $PEER ]] || { fail "the test peer $PEER is not built: run 'make'"; return 1; }
}

helpers_teardown() {
    kill_spawned
    if [[ -z ${BATS_TEST_COMPLETED:-} ]]; then
        print_reproduce_hint
    fi
}

### naming programs and logging what ran ###

# prog NAME: the path of the lesson program NAME under test.
prog() {
    local path=$PROG_DIR/$LESSON/$1
    if [[ ! -x $path ]]; then
        fail "$(printf '%s is not built.\nRun make (compiler errors are shown there), then run the tests again.' "${path#"$REPO_ROOT"/}")"
        return 1
    fi
    printf '%s' "$path"
}

# Appends a command line to the test's transcript, with paths shortened.
log_cmd() {
    local line="\$" arg
    for arg in "$@"; do
        [[ $arg == "&" ]] && { line+=" &"; continue; }
        arg=${arg#"$REPO_ROOT"/}
        arg=${arg//"$T"/\$T}
        if [[ $arg =~ [[:space:]\'\"\<\>\|\&\;\$] && $arg != '$T'* ]]; then arg="'$arg'"; fi
        line+=" $arg"
    done
    printf '%s\n' "$line" >>"$T/transcript"
}

print_reproduce_hint() {
    # -f takes a regex: every character that might be special becomes "."
    local name
    name=$(printf '%s' "$BATS_TEST_DESCRIPTION" | sed 's/[^[:alnum:] _,=-]/./g')
    echo
    echo "reproduce with:"
    echo "  PROG_ROOT=${PROG_ROOT} bats tests/$LESSON.bats -f '^${name}\$'"
    if [[ -s $T/transcript ]]; then
        echo "this test ran (\$T is its scratch directory):"
        sed 's/^/  /' "$T/transcript"
    fi
}

### running a program in the foreground ###

# run_prog [-s SECS] NAME ARGS... : runs the lesson program NAME with a time
# limit, like bats' run --separate-stderr: sets $status, $output, $stderr.
# Fails the test at once if the program hung or was killed by a signal.
run_prog() {
    local secs=$RUN_TIMEOUT
    if [[ $1 == -s ]]; then secs=$2; shift 2; fi
    local name=$1 path
    path=$(prog "$name") || return 1
    shift
    run_limited "$secs" "$path" "$@"
}

# run_limited SECS CMD ARGS...: the same for any command.
run_limited() {
    local secs=$1
    shift
    log_cmd "$@"
    run --separate-stderr "$TIMEOUT_CMD" -k 1 "$secs" "$@"
    explain_abnormal_exit "${1##*/}" "$secs"
}

# Turns the exit statuses of timeout(1) and of signals into words.
explain_abnormal_exit() {
    local name=$1 secs=$2
    case $status in
    126 | 127)
        fail "$(printf '%s could not be run (exit %s): it is not built, or not executable. Run make.\nstderr:\n%s' "$name" "$status" "$(indent "$stderr")")"
        return 1
        ;;
    124 | 137)
        fail "$(printf '%s did not finish within %s s: it hung.\n(Is it waiting for input that never comes, or for an EOF it never asked for?)\nstdout so far:\n%s\nstderr so far:\n%s' \
            "$name" "$secs" "$(indent "$output")" "$(indent "$stderr")")"
        return 1
        ;;
    12[5-9] | 1[3-9][0-9])
        local sig
        sig=$(kill -l $((status - 128)) 2>/dev/null || echo "?")
        local why=""
        [[ $sig == PIPE ]] && why=$'\n(SIGPIPE kills a program that writes to a closed socket: ignore it with signal(SIGPIPE, SIG_IGN) and handle EPIPE.)'
        [[ $sig == SEGV || $sig == BUS || $sig == ABRT ]] && why=$'\n(A crash: run it under gdb or valgrind, or build with make test, which adds sanitizers.)'
        fail "$(printf '%s was killed by signal SIG%s (exit status %s).%s\nstderr:\n%s' "$name" "$sig" "$status" "$why" "$(indent "$stderr")")"
        return 1
        ;;
    esac
    return 0
}

indent() {
    if [[ -z $1 ]]; then echo "    (nothing)"; else printf '%s\n' "$1" | sed 's/^/    /'; fi
}

### background processes ###

# spawn NAME CMD ARGS...: starts CMD in the background in its own process
# group, stdout to $T/NAME.out, stderr to $T/NAME.err, stdin from
# /dev/null unless SPAWN_STDIN names a file. Sets SPAWNED_PID.
spawn() {
    local name=$1
    shift
    log_cmd "$@" "&"
    local in=${SPAWN_STDIN:-/dev/null}
    # Empty them now, in the parent: the redirections below happen in the
    # child after the fork, and await_line must never read the lines of an
    # earlier process of the same NAME (a dead port).
    : >"$T/$name.out"
    : >"$T/$name.err"
    if command -v setsid >/dev/null; then
        setsid "$@" <"$in" >"$T/$name.out" 2>"$T/$name.err" 3>&- &
    else
        python3 -c 'import os,sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' "$@" \
            <"$in" >"$T/$name.out" 2>"$T/$name.err" 3>&- &
    fi
    SPAWNED_PID=$!
    SPAWNED_PIDS+=("$SPAWNED_PID")
    if proc_start_time "$SPAWNED_PID"; then
        SPAWN_START[$SPAWNED_PID]=$PROC_START
    elif [[ -d /proc/self ]]; then
        SPAWN_START[$SPAWNED_PID]=gone # exited and reaped already
    fi
    eval "PID_$name=$SPAWNED_PID"
}

# pid_of NAME: the PID of what spawn NAME started.
pid_of() {
    local var=PID_$1
    printf '%s' "${!var}"
}

# PIDs are reused: with Linux's pid_max at 32768 (the kernel default,
# without systemd's 4194304) the whole suite wraps them within a minute,
# so a PID that exited a while ago may name another test's process. Each
# spawned PID is therefore checked against its start time (field 22 of
# /proc/PID/stat) before it counts as running or gets a signal.

# proc_start_time PID: sets PROC_START; fails if there is no such process.
proc_start_time() {
    local stat fields
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    read -r -a fields <<<"${stat##*) }" # the name, in (), may hold anything
    PROC_START=${fields[19]}
}

# is_running PID: PID is alive and, if spawn started it, still the same process.
is_running() {
    kill -0 "$1" 2>/dev/null || return 1
    local want=${SPAWN_START[$1]-}
    [[ -z $want ]] && return 0
    proc_start_time "$1" && [[ $PROC_START == "$want" ]]
}

# signal_spawned SIG PID: SIG to the process group spawn started as PID.
# A number now held by another process is left alone; one held by no
# process may still be the group of our server's orphaned children.
signal_spawned() {
    local sig=$1 pid=$2 want=${SPAWN_START[$2]-}
    if [[ -n $want ]] && kill -0 "$pid" 2>/dev/null && proc_start_time "$pid" && [[ $PROC_START != "$want" ]]; then
        return 0
    fi
    kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null || true
}

# Kills every process group we started: TERM, a moment's grace, then KILL.
kill_spawned() {
    local pid
    for pid in "${SPAWNED_PIDS[@]}"; do
        signal_spawned TERM "$pid"
    done
    local deadline=$((SECONDS + 2))
    for pid in "${SPAWNED_PIDS[@]}"; do
        while is_running "$pid" && ((SECONDS < deadline)); do sleep 0.02; done
        signal_spawned KILL "$pid"
        wait "$pid" 2>/dev/null || true
    done
    SPAWNED_PIDS=()
}

# await_line NAME REGEX [SECS]: waits until $T/NAME.out has a line matching
# the extended REGEX; sets AWAITED_LINE. Fails if NAME exits first or the
# time runs out, showing what it printed.
await_line() {
    local name=$1 regex=$2 secs=${3:-$START_TIMEOUT} pid
    pid=$(pid_of "$name")
    local deadline=$((SECONDS + secs)) line
    while :; do
        line=$(grep -E -m1 -- "$regex" "$T/$name.out" 2>/dev/null) && break
        if ! is_running "$pid"; then
            line=$(grep -E -m1 -- "$regex" "$T/$name.out" 2>/dev/null) && break
            local st=0
            wait "$pid" 2>/dev/null || st=$?
            fail "$(printf '%s exited (status %s) before printing a line matching /%s/.\nstdout:\n%s\nstderr:\n%s' \
                "$name" "$st" "$regex" "$(indent "$(cat "$T/$name.out")")" "$(indent "$(cat "$T/$name.err")")")"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            fail "$(printf '%s did not print a line matching /%s/ within %s s.\nstdout so far:\n%s\nstderr so far:\n%s' \
                "$name" "$regex" "$secs" "$(indent "$(cat "$T/$name.out")")" "$(indent "$(cat "$T/$name.err")")")"
            return 1
        fi
        sleep 0.02
    done
    AWAITED_LINE=$line
}

# exited_within PID SECS: waits up to SECS for PID to exit; fails if it
# is still running then.
exited_within() {
    local deadline=$((SECONDS + $2))
    while is_running "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
    done
}

# await_exit NAME [SECS]: waits for what spawn NAME started to exit; sets
# EXIT_STATUS. Fails if it is still running when the time is up.
await_exit() {
    local name=$1 secs=${2:-$RUN_TIMEOUT} pid
    pid=$(pid_of "$name")
    if ! exited_within "$pid" "$secs"; then
        fail "$(printf '%s was still running after %s s.\nstdout so far:\n%s\nstderr so far:\n%s' \
            "$name" "$secs" "$(indent "$(cat "$T/$name.out")")" "$(indent "$(cat "$T/$name.err")")")"
        return 1
    fi
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
}

# port_of NAME: waits for NAME's "listening on ADDR:PORT" line; prints PORT.
listening_port() {
    await_line "$1" '^listening on .+:[0-9]+$' "${2:-$START_TIMEOUT}" || return 1
    LISTEN_PORT=${AWAITED_LINE##*:}
}

### the test peer ###

# start_peer [NAME] -- PEER_OPTIONS...: starts the scriptable peer
# (tests/support/peer.c, `build/support/peer -h` lists its options) in
# listen mode and sets PEER_PORT. NAME defaults to "peer".
start_peer() {
    local name=peer
    if [[ $1 != -* && $# -gt 0 ]]; then name=$1; shift; fi
    [[ ${1:-} == -- ]] && shift
    spawn "$name" "$PEER" "$@"
    listening_port "$name"
    PEER_PORT=$LISTEN_PORT
}

# peer_done [NAME] [SECS]: waits for the peer's "done: ..." line and sets
# PEER_RECEIVED, PEER_SENT and PEER_HOW (eof, closed, reset, peer-reset,
# peer-closed, no-eof, timeout).
peer_done() {
    local name=${1:-peer} secs=${2:-$RUN_TIMEOUT}
    await_line "$name" '^done: ' "$secs" || return 1
    [[ $AWAITED_LINE =~ ^done:\ received\ ([0-9]+)\ bytes,\ sent\ ([0-9]+)\ bytes,\ (.+)$ ]] ||
        { fail "unexpected peer line: $AWAITED_LINE"; return 1; }
    PEER_RECEIVED=${BASH_REMATCH[1]}
    PEER_SENT=${BASH_REMATCH[2]}
    PEER_HOW=${BASH_REMATCH[3]}
}

### servers under test ###

# start_server NAME ARGS...: starts the lesson server NAME with -p 0 and
# ARGS, waits for its "listening on ADDR:PORT" line, sets SERVER_PORT,
# SERVER_PID and SERVER_NAME (its output is in $T/NAME.out and .err).
start_server() {
    local name=$1 path
    path=$(prog "$name") || return 1
    shift
    spawn "$name" "$path" -p 0 "$@"
    SERVER_PID=$SPAWNED_PID SERVER_NAME=$name
    listening_port "$name"
    SERVER_PORT=$LISTEN_PORT
}

# stop_server_with SIG: sends SIG (TERM, INT) to the server start_server
# started and expects it to exit 0 within RUN_TIMEOUT.
stop_server_with() {
    local sig=$1
    log_cmd kill "-$sig" "$SERVER_PID"
    kill "-$sig" "$SERVER_PID" 2>/dev/null || true
    if ! exited_within "$SERVER_PID" "$RUN_TIMEOUT"; then
        local hint=""
        [[ $sig == INT ]] && hint=$'\n(A program started in the background by a script begins with SIGINT ignored:\nit must install its own handler with sigaction.)'
        fail "$(printf 'after SIG%s the server was still running %s s later: it should close its sockets and exit 0.\n(With SA_RESTART, a blocked accept() or recv() restarts instead of failing with EINTR,\nso a loop that checks a flag never sees it: install the handler without SA_RESTART,\nor wait for the signal itself with sigwait() or a self-pipe.)%s\nserver stderr:\n%s' \
            "$sig" "$RUN_TIMEOUT" "$hint" "$(indent "$(cat "$T/$SERVER_NAME.err")")")"
        return 1
    fi
    local st=0
    wait "$SERVER_PID" 2>/dev/null || st=$?
    if ((st != 0)); then
        local what="exit status $st"
        ((st > 128)) && what="death by signal SIG$(kill -l $((st - 128)) 2>/dev/null) (no handler for it?)"
        fail "$(printf 'after SIG%s the server should exit 0; got %s.\nserver stderr:\n%s' \
            "$sig" "$what" "$(indent "$(cat "$T/$SERVER_NAME.err")")")"
    fi
}

### checking results ###

# assert_status N: the last run's exit status is N; shows both streams if not.
assert_status() {
    local want=$1
    if [[ $status != "$want" ]]; then
        fail "$(printf 'expected exit status %s, got %s.\nstdout:\n%s\nstderr:\n%s' \
            "$want" "$status" "$(indent "$output")" "$(indent "$stderr")")"
        return 1
    fi
}

# assert_stderr_line TEXT: stderr is exactly one line, TEXT.
assert_stderr_line() {
    local want=$1
    if [[ $stderr != "$want" ]]; then
        fail "$(printf 'expected exactly this one line on stderr:\n    %s\ngot:\n%s' "$want" "$(indent "$stderr")")"
        return 1
    fi
}

# assert_stderr_matches REGEX [WHY]: stderr is one line matching the
# extended REGEX.
assert_stderr_matches() {
    local regex=$1 why=${2:-}
    if [[ $stderr == *$'\n'* || ! $stderr =~ $regex ]]; then
        fail "$(printf 'expected one line on stderr matching /%s/%s\ngot:\n%s' "$regex" "${why:+ ($why)}" "$(indent "$stderr")")"
        return 1
    fi
}

# assert_stdout_line TEXT: stdout is exactly one line, TEXT.
assert_stdout_is() {
    local want=$1
    if [[ $output != "$want" ]]; then
        fail "$(printf 'expected stdout:\n%s\ngot:\n%s' "$(indent "$want")" "$(indent "$output")")"
        return 1
    fi
}

# make_random FILE SIZE: SIZE bytes of random binary (NUL bytes included).
make_random() {
    head -c "$2" /dev/urandom >"$1"
}

# describe_bytes FILE: "N bytes, sha256 abc…"
describe_bytes() {
    local size sum
    size=$(wc -c <"$1" | tr -d ' ')
    sum=$( (sha256sum "$1" 2>/dev/null || shasum -a 256 "$1") | cut -c1-16)
    printf '%s bytes, sha256 %s…' "$size" "$sum"
}

# assert_same_bytes EXPECTED ACTUAL [WHAT]: the two files are byte-identical;
# otherwise says where they first differ and shows the bytes around it.
assert_same_bytes() {
    local want=$1 got=$2 what=${3:-the bytes}
    [[ -f $got ]] || { fail "$what: nothing was written to ${got/#$T/\$T}"; return 1; }
    cmp -s "$want" "$got" && return 0
    local where offset
    where=$(cmp "$want" "$got" 2>&1 | head -1)
    offset=$(printf '%s' "$where" | sed -n 's/.* byte \([0-9]*\).*/\1/p')
    local msg
    msg=$(printf '%s differ.\nexpected: %s\nactual:   %s\n%s' "$what" \
        "$(describe_bytes "$want")" "$(describe_bytes "$got")" "${where//"$T"/\$T}")
    if [[ -n $offset ]]; then
        local from=$((offset > 8 ? offset - 8 : 1))
        msg+=$(printf '\nexpected bytes from offset %s:\n%s\nactual bytes from offset %s:\n%s' \
            $((from - 1)) "$(tail -c +"$from" "$want" | head -c 24 | od -An -c | head -2)" \
            $((from - 1)) "$(tail -c +"$from" "$got" | head -c 24 | od -An -c | head -2)")
    fi
    fail "$msg"
    return 1
}
