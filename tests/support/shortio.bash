# tests/support/shortio.bash - short writes and EAGAIN on demand.
#
#     load support/helpers
#     load support/shortio
#
# short_io PROG [MAX_BYTES] [EAGAIN_PERCENT]: from here to the end of the
# test, every program started has tests/support/shortio.c preloaded; in
# the one named PROG (the basename of the lesson program), each write to
# a socket passes at most MAX_BYTES bytes (default 7) and, on a
# non-blocking socket, EAGAIN_PERCENT percent of them fail with EAGAIN
# first (default 0). Both are what a kernel may do; on loopback it
# rarely does, so this is how a test proves a full-send loop is a loop.
short_io() {
    local lib=$REPO_ROOT/build/support/shortio.so
    [[ -f $lib ]] || { fail "the test library $lib is not built: run 'make'"; return 1; }
    [[ $(uname) == Linux ]] || skip "the short-write library is Linux-only"
    export LD_PRELOAD=$lib SHORTIO_PROG=$1 SHORTIO_MAX=${2:-7} SHORTIO_EAGAIN=${3:-0}
    # A sanitized build wants its runtime first among the loaded
    # libraries; this one comes first, harmlessly.
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
    log_cmd export LD_PRELOAD=build/support/shortio.so SHORTIO_PROG="$1" SHORTIO_MAX="${2:-7}" SHORTIO_EAGAIN="${3:-0}"
}
