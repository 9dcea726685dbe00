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
# Every time limit a helper applies (RUN_TIMEOUT, START_TIMEOUT and each
# SECS argument) is multiplied by TIME_SCALE (a decimal, e.g. 2.5; grade
# sets it from a calibration, an instructor may set it by hand). Limits
# a program receives as an argument (-t 1, -m 2) are not scaled. A scale
# below 1 counts as 1: the limits are the least a quiet machine needs.
[[ ${TIME_SCALE:-1} =~ ^[0-9]+(\.[0-9]+)?$ && ${TIME_SCALE:-1} != 0* ]] || TIME_SCALE=1
[[ ${TIME_SCALE:-1} =~ ^0*1(\.0*)?$ ]] && TIME_SCALE=1
# How much a program under test may write to each file (its stdout, its
# stderr, any file it writes), in bytes; K and M suffixes are KiB and
# MiB. Past it the kernel stops the program with SIGXFSZ. A test that
# moves big data through a program sets OUTPUT_CAP=... for that call.
: "${OUTPUT_CAP:=1M}"

if command -v timeout >/dev/null; then TIMEOUT_CMD=timeout; else TIMEOUT_CMD=gtimeout; fi

# python3 behind a pyenv (or similar) shim is a bash script that runs ~35
# processes before python starts, for each of the tests' python peers.
# The peers need only the standard library: the first python3 in PATH
# that is not a shim is linked, once a run, into a directory put first
# in PATH (for the tests and their children).
helpers_direct_python() {
    local bin=${BATS_RUN_TMPDIR:-$T}/.helpers-bin dir dirs
    if [[ ! -x $bin/python3 ]]; then
        IFS=: read -r -a dirs <<<"$PATH"
        for dir in "${dirs[@]}"; do
            [[ $dir == */shims || ! -x $dir/python3 ]] && continue
            mkdir -p "$bin" && ln -sf "$dir/python3" "$bin/python3" 2>/dev/null
            break
        done
        [[ -x $bin/python3 ]] || return 0
    fi
    PATH=$bin:$PATH
}
if [[ -x ${BATS_RUN_TMPDIR:-$T}/.helpers-bin/python3 || ":$PATH:" == *:*/shims:* ]]; then
    helpers_direct_python
fi

# A FIFO nobody ever writes: `read -t` on it waits without a process
# (sleep(1) is a fork and an exec, ~5 ms here, in every wait loop).
NAP_FIFO=${BATS_RUN_TMPDIR:-$T}/.helpers-nap
[[ -p $NAP_FIFO ]] || mkfifo "$NAP_FIFO" 2>/dev/null || [[ -p $NAP_FIFO ]] || NAP_FIFO=
# nap [SECS]: waits SECS (default 0.02) seconds.
nap() {
    if [[ -n $NAP_FIFO ]]; then
        read -r -t "${1:-0.02}" _ <>"$NAP_FIFO" || true
    else
        sleep "${1:-0.02}"
    fi
}

# The tests' own wait loops say `sleep 0.05`: in the test's shell that is
# nap too (sleep(1) itself for anything else, and in child shells).
sleep() {
    if [[ $# == 1 && $1 =~ ^[0-9]*\.?[0-9]+$ && -n $NAP_FIFO ]]; then
        nap "$1"
    else
        command sleep "$@"
    fi
}

# to_us DECIMAL: sets US to DECIMAL seconds in microseconds.
to_us() {
    local int=${1%%.*} frac=0
    [[ $1 == *.* ]] && frac=${1#*.}
    frac=${frac}000000
    US=$((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

# scale_secs SECS: sets SCALED (SECS x TIME_SCALE, a decimal for
# timeout(1)), SCALED_US (the same in microseconds) and SCALE_NOTE (""
# or " (time limits here are x2.5: it had 12.5 s)", for messages, which
# keep naming the limit the test asked for).
scale_secs() {
    to_us "$1"
    if [[ $TIME_SCALE == 1 ]]; then
        SCALED=$1 SCALED_US=$US SCALE_NOTE=""
        return
    fi
    local secs_us=$US
    to_us "$TIME_SCALE"
    SCALED_US=$((secs_us * US / 1000000))
    printf -v SCALED '%d.%03d' $((SCALED_US / 1000000)) $((SCALED_US % 1000000 / 1000))
    local shown=$SCALED
    while [[ $shown == *.*0 ]]; do shown=${shown%0}; done
    shown=${shown%.}
    SCALE_NOTE=" (time limits here are x$TIME_SCALE: it had $shown s)"
}

# now_us: sets NOW_US, the time in microseconds.
now_us() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then NOW_US=${EPOCHREALTIME//[!0-9]/}; else NOW_US=$((SECONDS * 1000000)); fi
}

# deadline_in SECS: sets DEADLINE_US, SECS (scaled) from now; past_deadline
# succeeds once it has passed.
deadline_in() {
    scale_secs "$1"
    now_us
    DEADLINE_US=$((NOW_US + SCALED_US))
}
past_deadline() {
    now_us
    ((NOW_US >= DEADLINE_US))
}

# cap_blocks: sets CAP_BLOCKS (OUTPUT_CAP in ulimit -f's 1024-byte
# blocks) and CAP_TEXT ("1 MiB").
cap_blocks() {
    local c=${OUTPUT_CAP:-1M} n
    case $c in
    *[Mm]) n=$((${c%?} * 1048576)) ;;
    *[Kk]) n=$((${c%?} * 1024)) ;;
    *) n=$((c)) ;;
    esac
    CAP_BYTES=$n
    CAP_BLOCKS=$(((n + 1023) / 1024))
    if ((n % 1048576 == 0)); then CAP_TEXT="$((n / 1048576)) MiB"; else CAP_TEXT="$n bytes"; fi
}

# under_test ARGS...: succeeds if one of ARGS is a program under test
# (a path below $PROG_DIR); sets UNDER_TEST to its name. Only those get
# the output cap and the crash check: test equipment (the peer, python,
# curl) does not.
under_test() {
    local a
    for a in "$@"; do
        if [[ $a == "$PROG_DIR"/* ]]; then
            UNDER_TEST=${a##*/}
            return 0
        fi
    done
    return 1
}

# A trapped signal is reset to its default in every child at exec, but
# bash does not print its own "line 91: 20274 Segmentation fault setsid
# ..." for a background job killed by a signal it traps: the helpers name
# the crash themselves (crash_report).
trap ':' SEGV BUS ABRT FPE ILL XFSZ SYS TRAP

SPAWNED_PIDS=()
# The start time of each spawned PID (see proc_start_time), or "gone",
# indexed by PID.
SPAWN_START=()
# The program name of each spawned PID that is a program under test.
SPAWN_UNDER_TEST=()
# The exit status of each spawned PID, once reap has collected it.
SPAWN_STATUS=()

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
    # A program under test that crashed in the background fails the test,
    # even one that otherwise passed, and is named with its signal.
    local crashed="" rc=0
    crash_report "during the test, before teardown" && crashed=$CRASH_REPORT
    kill_spawned
    crash_report "after the test's SIGTERM, in teardown" && crashed+=${crashed:+$'\n'}$CRASH_REPORT
    if [[ -n $crashed ]]; then
        printf '%s\n' "$crashed" >&2
        [[ -n ${BATS_TEST_COMPLETED:-} ]] && rc=1
    fi
    if [[ -z ${BATS_TEST_COMPLETED:-} || $rc != 0 ]]; then
        print_reproduce_hint
    fi
    return $rc
}

# reap PID: collects the exit status of a spawned PID that has exited
# into SPAWN_STATUS[PID] (once: bash can wait for a PID only once) and
# REAPED.
reap() {
    if [[ -z ${SPAWN_STATUS[$1]-} ]]; then
        local st=0
        wait "$1" 2>/dev/null || st=$?
        SPAWN_STATUS[$1]=$st
    fi
    REAPED=${SPAWN_STATUS[$1]}
}

# signal_name STATUS: sets SIG_NAME (SEGV ...) for a status above 128.
signal_name() {
    SIG_NAME=$(kill -l $(($1 - 128)) 2>/dev/null) || SIG_NAME="?"
}

# crash_report WHEN: sets CRASH_REPORT to a line for each program under
# test spawned in this test that has died of a crash signal (not one of
# the TERM, INT, KILL the test sends) or of a sanitizer report, not yet
# reported; fails if there is none.
CRASH_SIGNALS=" SEGV BUS ABRT FPE ILL PIPE XFSZ SYS TRAP QUIT "
crash_report() {
    local when=$1 pid name st
    CRASH_REPORT=""
    for pid in "${!SPAWN_UNDER_TEST[@]}"; do
        name=${SPAWN_UNDER_TEST[$pid]}
        [[ -n $name ]] || continue
        if [[ -z ${SPAWN_STATUS[$pid]-} ]]; then
            is_running "$pid" && continue
            reap "$pid"
        fi
        st=${SPAWN_STATUS[$pid]}
        SPAWN_UNDER_TEST[$pid]="" # reported once
        crash_words "$name" "$st" "$(spawn_file_of "$pid").err" || continue
        CRASH_REPORT+=${CRASH_REPORT:+$'\n'}"$CRASH_WORDS ($when)$CRASH_HINT"
    done
    [[ -n $CRASH_REPORT ]]
}

# crash_words NAME STATUS ERRFILE: sets CRASH_WORDS if STATUS is a crash.
crash_words() {
    local name=$1 st=$2 err=$3
    CRASH_HINT=""
    if ((st > 128)); then
        signal_name "$st"
        [[ $CRASH_SIGNALS == *" $SIG_NAME "* ]] || return 1
        if [[ $SIG_NAME == XFSZ ]]; then
            cap_blocks
            CRASH_WORDS="$name printed more than $CAP_TEXT: an output loop? (or wrote a file past the test's limit; the kernel stopped it with SIGXFSZ)"
        else
            CRASH_WORDS="$name was killed by signal SIG$SIG_NAME"
            CRASH_HINT=" (a crash: make check SAN=1 rebuilds the lessons with sanitizers, which name the line)"
            [[ $SIG_NAME == PIPE ]] && CRASH_HINT=" (it wrote to a closed socket: ignore SIGPIPE with signal(SIGPIPE, SIG_IGN) and handle EPIPE)"
        fi
        return 0
    fi
    if [[ $st == 86 ]] && sanitizer_said "$err"; then
        CRASH_WORDS="$name was stopped by a sanitizer: $SANITIZER_LINE"
        return 0
    fi
    return 1
}

# sanitizer_said FILE: FILE holds an AddressSanitizer/UBSan report; sets
# SANITIZER_LINE to its first line.
sanitizer_said() {
    local line n=0
    SANITIZER_LINE=""
    [[ -f $1 ]] || return 1
    local text=""
    IFS= read -r -N 65536 -d '' text <"$1" || true
    sanitizer_text "$text"
}

# spawn_file_of PID: prints $T/NAME of the spawn that started PID.
spawn_file_of() {
    local v
    for v in ${!PID_*}; do
        [[ ${!v} == "$1" ]] && { printf '%s' "$T/${v#PID_}"; return; }
    done
}

# fail: bats-support's fail, but a program under test that crashed in
# the background is named first: that is the cause, what a peer saw
# after it is only the consequence.
# (bats-support's own is: batslib_err "$@"; return 1.)
fail() {
    if ((${#SPAWN_UNDER_TEST[@]})) && crash_report "during the test"; then
        printf '%s\n' "$CRASH_REPORT" >&2
    fi
    (($# == 0)) && batslib_err || batslib_err "$@"
    return 1
}

### naming programs and logging what ran ###

# prog NAME: the path of the lesson program NAME under test.
prog() {
    prog_path "$1" || return 1
    printf '%s' "$PROG_PATH"
}

# prog_path NAME: the same into PROG_PATH, without a subshell.
prog_path() {
    PROG_PATH=$PROG_DIR/$LESSON/$1
    if [[ ! -x $PROG_PATH ]]; then
        fail "$(printf '%s is not built.\nRun make (compiler errors are shown there), then run the tests again.' "${PROG_PATH#"$REPO_ROOT"/}")"
        return 1
    fi
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
    printf '%s%s\n' "$line" "${LOG_SUFFIX:-}" >>"$T/transcript"
}

print_reproduce_hint() {
    # -f takes a regex: every character that might be special becomes "."
    local name=${BATS_TEST_DESCRIPTION//[^[:alnum:] _,=-]/.}
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
# limit, like bats' run --separate-stderr: sets $status, $output, $stderr
# (and $lines, $stderr_lines). Fails the test at once if the program hung,
# was killed by a signal or printed more than OUTPUT_CAP.
run_prog() {
    local secs=$RUN_TIMEOUT
    if [[ $1 == -s ]]; then secs=$2; shift 2; fi
    prog_path "$1" || return 1
    shift
    run_limited "$secs" "$PROG_PATH" "$@"
}

# run_limited SECS CMD ARGS...: the same for any command. Its stdout and
# stderr go to files ($T/.run.out, $T/.run.err), never into the shell
# unbounded; a program under test among CMD ARGS gets the OUTPUT_CAP.
run_limited() {
    local secs=$1
    shift
    log_cmd "$@"
    limited_exec "$secs" "$T/.run.out" "$T/.run.err" "$@"
    read_capture "$T/.run.out" "$T/.run.err"
    local name=${1##*/}
    under_test "$@" && name=$UNDER_TEST
    explain_abnormal_exit "$name" "$secs"
}

# limited_exec SECS OUT ERR CMD ARGS...: runs CMD under timeout(1) (SECS
# x TIME_SCALE), stdout to OUT, stderr to ERR, fd 3 closed; a program
# under test runs with RLIMIT_FSIZE at OUTPUT_CAP, so it dies of SIGXFSZ
# when it floods (and adds no process: the subshell execs timeout). Sets
# $status.
limited_exec() {
    local secs=$1 out=$2 err=$3
    shift 3
    scale_secs "$secs"
    status=0
    RUN_CAP_TEXT=""
    # The outer 2>/dev/null takes bash's own "File size limit exceeded"
    # or "Segmentation fault" line: the helpers say it in words.
    if under_test "$@"; then
        cap_blocks
        RUN_CAP_TEXT=$CAP_TEXT
        {
            (
                ulimit -f "$CAP_BLOCKS" 2>/dev/null
                exec "$TIMEOUT_CMD" -k 1 "$SCALED" "$@"
            ) >"$out" 2>"$err" 3>&- || status=$?
        } 2>/dev/null
    else
        { "$TIMEOUT_CMD" -k 1 "$SCALED" "$@" >"$out" 2>"$err" 3>&- || status=$?; } 2>/dev/null
    fi
}

# read_capture OUT ERR: sets $output, $lines, $stderr, $stderr_lines from
# the files as bats' run does ($output: NUL bytes and trailing newlines
# dropped; $stderr: surrounding blanks trimmed; $lines without empty
# lines), from at most the first MiB of each.
read_capture() {
    local LC_ALL=C
    output="" stderr=""
    IFS= read -r -N 1048576 -d '' output <"$1" || true
    output=${output%"${output##*[!$'\n']}"}
    IFS= read -r -N 1048576 -d '' stderr <"$2" || true
    stderr=${stderr%"${stderr##*[!$' \t\n']}"}
    stderr=${stderr#"${stderr%%[!$' \t\n']*}"}
    lines=() stderr_lines=()
    [[ -z $output ]] || IFS=$'\n' read -d '' -r -a lines <<<"$output" || true
    [[ -z $stderr ]] || IFS=$'\n' read -d '' -r -a stderr_lines <<<"$stderr" || true
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
        scale_secs "$secs"
        fail "$(printf '%s did not finish within %s s: it hung.%s\n(Is it waiting for input that never comes, or for an EOF it never asked for?)\nstdout so far:\n%s\nstderr so far:\n%s' \
            "$name" "$secs" "$SCALE_NOTE" "$(indent "$output")" "$(indent "$stderr")")"
        return 1
        ;;
    153)
        cap_blocks
        CAP_TEXT=${RUN_CAP_TEXT:-$CAP_TEXT}
        fail "$(printf '%s printed more than %s: an output loop? (The kernel stopped it with SIGXFSZ at the test'"'"'s limit, %s a file.)\nits first lines on stdout:\n%s\non stderr:\n%s' \
            "$name" "$CAP_TEXT" "$CAP_TEXT" "$(indent "$output")" "$(indent "$stderr")")"
        return 1
        ;;
    12[5-9] | 1[3-9][0-9])
        local sig
        signal_name "$status"
        sig=$SIG_NAME
        local why=""
        [[ $sig == PIPE ]] && why=$'\n(SIGPIPE kills a program that writes to a closed socket: ignore it with signal(SIGPIPE, SIG_IGN) and handle EPIPE.)'
        [[ $sig == SEGV || $sig == BUS || $sig == ABRT || $sig == FPE || $sig == ILL ]] && why=$'\n(A crash: run it under gdb or valgrind, or grade with make check SAN=1, which rebuilds the lessons with sanitizers that name the faulty line.)'
        fail "$(printf '%s was killed by signal SIG%s (exit status %s).%s\nstderr:\n%s' "$name" "$sig" "$status" "$why" "$(indent "$stderr")")"
        return 1
        ;;
    86)
        if sanitizer_text "$stderr"; then
            fail "$(printf '%s was stopped by a sanitizer: %s\nstderr:\n%s' "$name" "$SANITIZER_LINE" "$(indent "$stderr")")"
            return 1
        fi
        ;;
    esac
    return 0
}

# sanitizer_text TEXT: TEXT holds a sanitizer report; sets SANITIZER_LINE.
# The line is the report's first, with the first frame in a .c file
# (e.g. "AddressSanitizer: SEGV on unknown address ... at echo_client
# echo_server.c:285").
sanitizer_text() {
    local nl=$'\n'
    local re="((Address|Leak)Sanitizer: [^$nl]*|[^$nl ]*runtime error:[^$nl]*)"
    [[ $1 =~ $re ]] || return 1
    SANITIZER_LINE=${BASH_REMATCH[1]:0:200}
    re="#[0-9]+ 0x[0-9a-f]+ in ([^ $nl]+) ([^ $nl]*\.c:[0-9]+)"
    [[ $1 =~ $re ]] && SANITIZER_LINE+=" (at ${BASH_REMATCH[1]} ${BASH_REMATCH[2]##*/})"
    return 0
}

# indent TEXT: TEXT with four spaces before each line, for messages; at
# most INDENT_LINES (40) lines of at most 500 characters: the rest is
# counted, not shown (a flooding program's output stays readable).
INDENT_LINES=40
indent() {
    if [[ -z $1 ]]; then
        echo "    (nothing)"
        return
    fi
    local LC_ALL=C arr n i line out=""
    mapfile -t arr <<<"$1"
    n=${#arr[@]}
    for ((i = 0; i < n && i < INDENT_LINES; i++)); do
        line=${arr[i]}
        ((${#line} > 500)) && line="${line:0:500} [... $((${#line} - 500)) more characters]"
        out+="    $line"$'\n'
    done
    ((n > INDENT_LINES)) && out+="    [... $((n - INDENT_LINES)) more lines not shown]"$'\n'
    printf '%s' "$out"
}

# indent_file FILE: indent of the first 64 KiB of FILE.
indent_file() {
    local LC_ALL=C text=""
    [[ -f $1 ]] && { IFS= read -r -N 65536 -d '' text <"$1" || true; }
    indent "${text%"${text##*[!$'\n']}"}"
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
    local setsid=(setsid) blocks=unlimited under=""
    [[ -n ${HAVE_SETSID:-} ]] || { command -v setsid >/dev/null && HAVE_SETSID=1 || HAVE_SETSID=0; }
    ((HAVE_SETSID)) || setsid=(python3 -c 'import os,sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])')
    # A program under test gets the output cap (see limited_exec); the
    # subshell only sets it and execs, as `cmd &` would fork anyway.
    if under_test "$@"; then
        under=$UNDER_TEST
        cap_blocks
        blocks=$CAP_BLOCKS
    fi
    (
        [[ $blocks == unlimited ]] || ulimit -f "$blocks" 2>/dev/null
        exec "${setsid[@]}" "$@"
    ) <"$in" >"$T/$name.out" 2>"$T/$name.err" 3>&- &
    SPAWNED_PID=$!
    SPAWNED_PIDS+=("$SPAWNED_PID")
    [[ -n $under ]] && SPAWN_UNDER_TEST[$SPAWNED_PID]=$under
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
        [[ -n ${SPAWN_STATUS[$pid]-} ]] || signal_spawned TERM "$pid"
    done
    deadline_in 2
    for pid in "${SPAWNED_PIDS[@]}"; do
        while [[ -z ${SPAWN_STATUS[$pid]-} ]] && is_running "$pid" && ! past_deadline; do nap; done
        [[ -n ${SPAWN_STATUS[$pid]-} ]] || signal_spawned KILL "$pid"
        reap "$pid"
    done
    SPAWNED_PIDS=()
}

# await_line NAME REGEX [SECS]: waits until $T/NAME.out has a line matching
# the extended REGEX; sets AWAITED_LINE. Fails if NAME exits first or the
# time runs out, showing what it printed. (Reads the file with bash's
# read, resuming where it stopped: no grep, no sleep process.)
await_line() {
    local name=$1 regex=$2 secs=${3:-$START_TIMEOUT} pidvar=PID_$1
    local pid=${!pidvar} fd chunk="" part="" exited=0
    deadline_in "$secs"
    exec {fd}<"$T/$name.out"
    while :; do
        while IFS= read -r -u "$fd" chunk; do
            chunk=$part$chunk part=""
            if [[ $chunk =~ $regex ]]; then
                exec {fd}<&-
                AWAITED_LINE=$chunk
                return 0
            fi
        done
        part+=$chunk
        # A last line without its newline counts, as it did for grep.
        if [[ -n $part && $part =~ $regex ]]; then
            exec {fd}<&-
            AWAITED_LINE=$part
            return 0
        fi
        ((exited)) && break
        if ! is_running "$pid"; then
            exited=1 # read what it printed last, then report
            continue
        fi
        if past_deadline; then
            exec {fd}<&-
            scale_secs "$secs"
            fail "$(printf '%s did not print a line matching /%s/ within %s s.%s\nstdout so far:\n%s\nstderr so far:\n%s' \
                "$name" "$regex" "$secs" "$SCALE_NOTE" "$(indent_file "$T/$name.out")" "$(indent_file "$T/$name.err")")"
            return 1
        fi
        nap
    done
    exec {fd}<&-
    reap "$pid"
    local st=$REAPED who=$name
    [[ -n ${SPAWN_UNDER_TEST[$pid]-} ]] && who=${SPAWN_UNDER_TEST[$pid]}
    if crash_words "$who" "$st" "$T/$name.err"; then
        SPAWN_UNDER_TEST[$pid]="" # reported here
        fail "$(printf '%s before printing a line matching /%s/.%s\nstdout:\n%s\nstderr:\n%s' \
            "$CRASH_WORDS" "$regex" "$CRASH_HINT" "$(indent_file "$T/$name.out")" "$(indent_file "$T/$name.err")")"
        return 1
    fi
    fail "$(printf '%s exited (status %s) before printing a line matching /%s/.\nstdout:\n%s\nstderr:\n%s' \
        "$name" "$st" "$regex" "$(indent_file "$T/$name.out")" "$(indent_file "$T/$name.err")")"
    return 1
}

# exited_within PID SECS: waits up to SECS (x TIME_SCALE) for PID to
# exit; fails if it is still running then.
exited_within() {
    deadline_in "$2"
    while [[ -z ${SPAWN_STATUS[$1]-} ]] && is_running "$1"; do
        past_deadline && return 1
        nap
    done
    return 0
}

# await_exit NAME [SECS]: waits for what spawn NAME started to exit; sets
# EXIT_STATUS. Fails if it is still running when the time is up.
await_exit() {
    local name=$1 secs=${2:-$RUN_TIMEOUT} pidvar=PID_$1
    local pid=${!pidvar}
    if ! exited_within "$pid" "$secs"; then
        scale_secs "$secs"
        fail "$(printf '%s was still running after %s s.%s\nstdout so far:\n%s\nstderr so far:\n%s' \
            "$name" "$secs" "$SCALE_NOTE" "$(indent_file "$T/$name.out")" "$(indent_file "$T/$name.err")")"
        return 1
    fi
    reap "$pid"
    EXIT_STATUS=$REAPED
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
    local name=$1
    prog_path "$name" || return 1
    shift
    spawn "$name" "$PROG_PATH" -p 0 "$@"
    SERVER_PID=$SPAWNED_PID SERVER_NAME=$name
    listening_port "$name" || return 1
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
        scale_secs "$RUN_TIMEOUT"
        fail "$(printf 'after SIG%s the server was still running %s s later: it should close its sockets and exit 0.%s\n(With SA_RESTART, a blocked accept() or recv() restarts instead of failing with EINTR,\nso a loop that checks a flag never sees it: install the handler without SA_RESTART,\nor wait for the signal itself with sigwait() or a self-pipe.)%s\nserver stderr:\n%s' \
            "$sig" "$RUN_TIMEOUT" "$SCALE_NOTE" "$hint" "$(indent_file "$T/$SERVER_NAME.err")")"
        return 1
    fi
    reap "$SERVER_PID"
    local st=$REAPED
    if ((st != 0)); then
        # Its death is reported here, not again by teardown.
        local who=${SPAWN_UNDER_TEST[$SERVER_PID]-}
        SPAWN_UNDER_TEST[$SERVER_PID]=""
        if crash_words "${who:-$SERVER_NAME}" "$st" "$T/$SERVER_NAME.err"; then
            fail "$(printf '%s (after SIG%s, which it should answer by exiting 0).%s\nserver stderr:\n%s' \
                "$CRASH_WORDS" "$sig" "$CRASH_HINT" "$(indent_file "$T/$SERVER_NAME.err")")"
            return 1
        fi
        local what="exit status $st"
        if ((st > 128)); then
            signal_name "$st"
            what="death by signal SIG$SIG_NAME (no handler for it?)"
        fi
        fail "$(printf 'after SIG%s the server should exit 0; got %s.\nserver stderr:\n%s' \
            "$sig" "$what" "$(indent_file "$T/$SERVER_NAME.err")")"
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
