# tests/support/client.bash - what the tests of client programs share
# (lesson 02 tcp_connect, lesson 03 tcp_send, ...): a port where nobody
# listens, made-up host names with the addresses a test chooses, and
# running a program with its stdin from a file.
#
# Load it after the common helpers:
#     load support/helpers
#     load support/client

# hold_refused_port: sets REFUSED_PORT to a port of 127.0.0.1 where a
# connection is refused for the rest of the test. A background process
# keeps a socket bound there without listening: a port we merely saw
# free could be taken by another program on this busy machine by the
# time we connect to it; a bound one cannot (no SO_REUSEADDR).
hold_refused_port() {
    spawn holder python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print("bound to 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    time.sleep(3600)'
    # python3 can take seconds to start on a loaded machine: a long limit.
    await_line holder '^bound to 127\.0\.0\.1:[0-9]+$' 15 || return 1
    REFUSED_PORT=${AWAITED_LINE##*:}
}

### made-up host names ###

# Prints the path of nss_wrapper's library, if it is installed.
nss_wrapper_lib() {
    local lib
    lib=$(/sbin/ldconfig -p 2>/dev/null | awk '$1 == "libnss_wrapper.so" { print $NF; exit }')
    if [[ -z $lib ]]; then
        # ldconfig's cache can be older than the package: look where it goes.
        for lib in /usr/lib/*/libnss_wrapper.so /usr/lib64/libnss_wrapper.so \
            /usr/lib/libnss_wrapper.so /usr/local/lib/libnss_wrapper.so ""; do
            [[ -f $lib ]] && break
        done
    fi
    [[ -n $lib ]] && printf '%s' "$lib"
}

# fake_hosts LINE...: makes the host names in LINEs (hosts(5) lines, such
# as "127.0.0.2 multi.test") resolvable, in that order, for commands run
# with run_prog_fake_hosts. This uses nss_wrapper (cwrap.org), a library
# preloaded into the program that answers getaddrinfo() from our own
# hosts file: no root, no change to /etc/hosts. Only names in LINEs go
# through it; ask nothing else of it (under ASan, a name it does not know
# sends it to the real resolver through dlopen, which ASan dislikes).
# Skips the test on macOS, where nss_wrapper does not exist.
fake_hosts() {
    local lib
    if ! lib=$(nss_wrapper_lib); then
        [[ $(uname) == Darwin ]] && skip "needs nss_wrapper, which does not exist on macOS"
        fail "this test needs nss_wrapper (Debian/Ubuntu package libnss-wrapper): run 'make deps'"
    fi
    printf '%s\n' "$@" >"$T/hosts"
    # ASan insists on being the first library loaded; nss_wrapper comes
    # first here, which is fine for this use: tell ASan not to check.
    FAKE_HOSTS_ENV=(LD_PRELOAD="$lib" NSS_WRAPPER_HOSTS="$T/hosts"
        NSS_WRAPPER_PASSWD=/etc/passwd NSS_WRAPPER_GROUP=/etc/group
        NSS_WRAPPER_DISABLE_DEEPBIND=1
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
}

# run_prog_fake_hosts NAME ARGS...: run_prog with the names of fake_hosts.
run_prog_fake_hosts() {
    local name=$1
    prog_path "$name" || return 1
    shift
    run_limited "$RUN_TIMEOUT" env "${FAKE_HOSTS_ENV[@]}" "$PROG_PATH" "$@"
}

# gai_error_texts: what gai_strerror(3) says here for the codes an unknown
# name can get (EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_NODATA), one a line.
# Which one a name gets depends on the network (none: EAI_AGAIN, a
# resolver that answers: EAI_NONAME), the words on the C library.
gai_error_texts() {
    python3 -c '
import ctypes, socket
gai_strerror = ctypes.CDLL(None).gai_strerror
gai_strerror.restype = ctypes.c_char_p
gai_strerror.argtypes = [ctypes.c_int]
for name in ("EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA"):
    if hasattr(socket, name):
        print(gai_strerror(getattr(socket, name)).decode())'
}

### stdin ###

# run_prog_stdin FILE NAME ARGS...: run_prog with stdin read from FILE.
# The program runs with SIGPIPE at its default action even if this shell
# inherited it ignored (an ignored signal stays ignored across exec): a
# program that forgets to ignore SIGPIPE must die of it here as it would
# in a terminal, and be told so.
run_prog_stdin() {
    local in=$1 name=$2
    prog_path "$name" || return 1
    shift 2
    # The transcript line gets "< FILE"; the run itself is run_limited's.
    LOG_SUFFIX=" < ${in//"$T"/\$T}" log_cmd "$PROG_PATH" "$@"
    limited_exec "$RUN_TIMEOUT" "$T/.run.out" "$T/.run.err" "${WITH_DEFAULT_SIGPIPE[@]}" "$PROG_PATH" "$@" <"$in"
    read_capture "$T/.run.out" "$T/.run.err"
    explain_abnormal_exit "$name" "$RUN_TIMEOUT"
}

# A command prefix that runs a program with SIGPIPE at its default action:
# GNU env (coreutils 8.31 and later) can, elsewhere python3 does it.
# (Asked once a run: the answer is kept in BATS_RUN_TMPDIR.)
helpers_env_sig=${BATS_RUN_TMPDIR:-$T}/.helpers-env-default-signal
if [[ ! -f $helpers_env_sig ]]; then
    if env --default-signal=PIPE true 2>/dev/null; then echo yes; else echo no; fi >"$helpers_env_sig"
fi
read -r helpers_env_sig <"$helpers_env_sig" || helpers_env_sig=no
if [[ $helpers_env_sig == yes ]]; then
    WITH_DEFAULT_SIGPIPE=(env --default-signal=PIPE)
else
    WITH_DEFAULT_SIGPIPE=(python3 -c 'import os, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])')
fi

# hold_port_on ADDR PORT: keeps ADDR:PORT bound, without listening, for the
# rest of the test, so that a connection there is refused even if another
# program would like to listen there. Fails if ADDR:PORT is already taken.
hold_port_on() {
    spawn holder_on python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print("cannot bind: %s" % e, flush=True)
    sys.exit(1)
print("bound", flush=True)
while True:
    time.sleep(3600)' "$1" "$2"
    await_line holder_on '^bound$' 15 || return 1
}

# run_traced_fake_hosts TRACE SYSCALLS NAME ARGS...: runs the lesson program
# NAME under strace (-e trace=SYSCALLS, written to TRACE) with the names of
# fake_hosts. Sets $status, $output, $stderr like run_prog. Linux only.
run_traced_fake_hosts() {
    command -v strace >/dev/null || skip "needs strace (Linux; make deps installs it)"
    local trace=$1 calls=$2 name=$3 path
    path=$(prog "$name") || return 1
    shift 3
    # LeakSanitizer cannot run under ptrace: switch it off for this run.
    run_limited 10 strace -o "$trace" -e trace="$calls" env "${FAKE_HOSTS_ENV[@]}" \
        "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0" "$path" "$@"
}
