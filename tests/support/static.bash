# tests/support/static.bash - helpers for the lessons whose servers serve
# files from a directory (12-static-server; 14-event-server may load it too).
# Load it after support/helpers:
#     load support/helpers
#     load support/static
#
#   make_site DIR          builds the standard tree of files to serve (below)
#   site_files DIR         its regular files, one relative path a line
#   url_of PATH...         each PATH percent-encoded for a URL ('/' kept),
#                          one a line
#   quick_run SECS CMD...  run_limited without bats' `run`, for loops (below)
#   quick_exec SECS CMD... the same, without a line in the transcript
#   write_request NAME FMT ARGS...
#                          printf FMT ARGS > $T/NAME.req (raw bytes: \r, \0 ...)
#   raw_requests PORT NAME...
#                          sends each $T/NAME.req with the C peer, on its own
#                          connection, records the answer in $T/NAME.resp;
#                          sets RAW_STATUS and RAW_HOW (below)
#   raw_request PORT NAME  the same for one, and parse_response of it
#   assert_answer I REGEX WHAT NAME
#                          answer I has a status matching REGEX and a clean
#                          close
#   parse_response FILE [SIZE]
#                          sets RESP_STATUS (e.g. 404, or "none"),
#                          RESP_STATUS_LINE, RESP_HEAD (the header lines)
#                          and RESP_BODY_LEN (bytes after the empty line;
#                          -1 if there was no empty line)
#   resp_header NAME       prints the value of header NAME (any case) from
#                          RESP_HEAD; fails if there is none
#   show_response FILE     the first bytes of a response, for messages
#   first_mismatch WANT1 GOT1 [WANT2 GOT2 ...]
#                          the number of the first pair of files that
#                          differ (or GOT is missing); nothing if none does
# and tests/support/check_listing.py PAGE DIR BASE_URL checks an HTML
# directory listing the way a browser reads it (see its header).
#
# Speed: bats runs a DEBUG trap before every bash command of a test, so a
# loop of bash commands is slow (about 1 ms a command). These helpers do
# their work in one awk, python or peer process each.

# make_site DIR: a tree with a bit of everything a static server meets.
#   hello.txt ("Hello, world!\n")   binary.bin (256 KiB, random)
#   types/     one file per MIME type: page.html style.css app.js data.json
#              image.png photo.jpg icon.svg notes.txt blob.xyz README
#   site/      index.html and other.txt (a directory with an index)
#   sub/deep/file.txt
#   listing/   no index; names with spaces, non-ASCII, HTML and URL
#              specials, a directory "my docs"; and "<b>x</b>.txt", which is
#              the file "b>.txt" in the directory "<b>x<" (a name cannot
#              hold a '/')
#   special/   fifo (a FIFO) and sock (a Unix socket): not regular files
make_site() {
    local d=$1 f
    mkdir -p "$d"/types "$d"/site "$d"/sub/deep "$d"/listing/'my docs' "$d"/listing/'<b>x<' "$d"/special
    printf 'Hello, world!\n' >"$d/hello.txt"
    head -c 262144 /dev/urandom >"$d/binary.bin"
    for f in page.html style.css app.js data.json image.png photo.jpg icon.svg notes.txt blob.xyz README; do
        printf 'contents of %s\n' "$f" >"$d/types/$f"
    done
    printf '<!DOCTYPE html>\n<title>site</title>\n<p>the index page</p>\n' >"$d/site/index.html"
    printf 'other\n' >"$d/site/other.txt"
    printf 'deep\n' >"$d/sub/deep/file.txt"
    for f in 'a b.txt' 'ünïcødé 名前.txt' '<b>x</b>.txt' '"q'"'"'&amp;.txt' '100%.txt' 'what?.txt' \
        'hash#.txt' '<img src=x onerror=alert(1)>.txt' 'my docs/readme.txt'; do
        # Some binary too, so a text-mode mistake shows.
        { printf 'file %s\n' "$f"; head -c 300 /dev/urandom; } >"$d/listing/$f"
    done
    mkfifo "$d/special/fifo"
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/special/sock"
}

# site_files DIR: every regular file beneath DIR, as paths relative to it.
site_files() {
    (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
}

# url_of PATH...: percent-encodes every byte but A-Z a-z 0-9 - . _ ~ and '/'.
url_of() {
    python3 -c 'import sys, urllib.parse
for a in sys.argv[1:]:
    print(urllib.parse.quote(a.encode("utf-8", "surrogateescape"), safe="/~"))' "$@"
}

# quick_run SECS CMD ARGS...: like run_limited (sets status, output and
# stderr; fails the test on a hang or a signal, and logs the command),
# without bats' `run`, which costs tens of milliseconds a call.
quick_run() {
    local line="\$ ${*:2}"
    line=${line//"$REPO_ROOT"\//}
    printf '%s\n' "${line//"$T"/\$T}" >>"$T/transcript"
    quick_exec "$@"
}

# quick_exec SECS CMD ARGS...: quick_run without the transcript line.
# shellcheck disable=SC2034 # status, output and stderr are for the caller
quick_exec() {
    local secs=$1
    shift
    # limited_exec: TIME_SCALE, and the output cap for a program under test.
    limited_exec "$secs" "$T/.quick.out" "$T/.quick.err" "$@"
    IFS= read -r -d '' output <"$T/.quick.out" || true
    IFS= read -r -d '' stderr <"$T/.quick.err" || true
    output=${output%$'\n'} stderr=${stderr%$'\n'}
    local name=${1##*/}
    under_test "$@" && name=$UNDER_TEST
    explain_abnormal_exit "$name" "$secs"
}

# write_request NAME FORMAT ARGS...: the raw request bytes, via printf.
write_request() {
    local name=$1
    shift
    # shellcheck disable=SC2059
    printf "$@" >"$T/$name.req"
}

# raw_request PORT NAME: raw_requests for one request (RAW_STATUS[0],
# RAW_HOW[0]), and parse_response of its answer.
raw_request() {
    raw_requests "$1" "$2"
    parse_response "$T/$2.resp"
}

# raw_requests PORT NAME...: sends each $T/NAME.req on a connection of its
# own, one after another, recording $T/NAME.resp. Sets RAW_STATUS[i] to
# the status code of the answer to NAME number i ("none" if there was no
# status line) and RAW_HOW[i] to how the peer's connection ended (eof is
# right; timeout: the server did not close; peer-reset: it reset). A
# child bash runs the loop: it has no bats DEBUG trap, so it is fast.
raw_requests() {
    local port=$1 line
    shift
    # The child logs each request to the transcript as the command that
    # repeats it.
    # shellcheck disable=SC2016 # the script expands its own variables
    quick_exec 60 bash -c '
        peer=$1 port=$2 dir=$3
        shift 3
        for n in "$@"; do
            echo "\$ build/support/peer -t 4000 -s \$T/$n.req -r \$T/$n.resp -C 127.0.0.1 $port" >>"$dir/transcript"
            : >"$dir/$n.resp"
            "$peer" -t 4000 -s "$dir/$n.req" -r "$dir/$n.resp" -C 127.0.0.1 "$port" >"$dir/$n.peer" 2>&1
            how=failed
            while IFS= read -r line; do [[ $line == done:* ]] && how=${line##*, }; done <"$dir/$n.peer"
            first=
            IFS= read -r first <"$dir/$n.resp"
            code=none
            [[ $first =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]] && code=${BASH_REMATCH[1]}
            echo "$code $how"
        done' _ "$PEER" "$port" "$T" "$@"
    RAW_STATUS=() RAW_HOW=()
    while IFS= read -r line; do
        RAW_STATUS+=("${line%% *}")
        RAW_HOW+=("${line#* }")
    done <<<"$output"
    [[ ${#RAW_STATUS[@]} == "$#" ]] ||
        fail "$(printf 'sending %s requests failed after %s:\n%s' "$#" "${#RAW_STATUS[@]}" "$(indent "$stderr")")"
}

# assert_answer I REGEX WHAT NAME: after raw_requests, the answer to
# request number I ($T/NAME.req) has a status matching ^(REGEX)$, and the
# server closed the connection cleanly after it. WHAT names the request
# in the failure message.
assert_answer() {
    local i=$1 want=$2 what=$3 name=$4
    case ${RAW_HOW[i]} in
    eof) ;;
    timeout)
        fail "$(printf '%s: the server neither answered nor closed the connection within 4 s.\nrequest:\n%s\nanswer so far:\n%s' \
            "$what" "$(show_response "$T/$name.req")" "$(show_response "$T/$name.resp")")"
        ;;
    *)
        fail "$(printf '%s: the connection ended with "%s", not a clean close. (Closing a socket with unread input sends RST,\nwhich can destroy the answer before the client reads it: read the rest, or shut down and drain first.)\nrequest:\n%s\nanswer:\n%s' \
            "$what" "${RAW_HOW[i]}" "$(show_response "$T/$name.req")" "$(show_response "$T/$name.resp")")"
        ;;
    esac
    if [[ ! ${RAW_STATUS[i]} =~ ^($want)$ ]]; then
        fail "$(printf '%s: expected status %s, got %s.\nrequest:\n%s\nanswer:\n%s' "$what" "$want" "${RAW_STATUS[i]}" \
            "$(show_response "$T/$name.req")" "$(show_response "$T/$name.resp")")"
    fi
}

# parse_response FILE [SIZE]: SIZE is FILE's size, if the caller knows it.
# shellcheck disable=SC2034 # the RESP_ variables are for the caller
parse_response() {
    local size=${2:-} line n=0 nr=0 ended=0 status="" head="" LC_ALL=C
    RESP_STATUS=none RESP_STATUS_LINE="" RESP_HEAD="" RESP_BODY_LEN=-1
    [[ -s $1 ]] || return 0
    # Bash's read, not awk: the head is a few lines, and a process costs
    # more than reading them (the first 64 KiB at most).
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + ${#line} + 1))
        line=${line%$'\r'}
        if ((++nr == 1)); then
            status=$line
            continue
        fi
        [[ -z $line ]] && { ended=1; break; }
        ((n > 65536)) && break
        head+=$line$'\n'
    done <"$1"
    if ((ended)); then
        if [[ -z $size ]]; then
            size=$(wc -c <"$1")
        fi
        RESP_BODY_LEN=$((size - n))
    fi
    RESP_STATUS_LINE=$status
    RESP_HEAD=${head%"${head##*[!$'\n']}"}
    [[ $RESP_STATUS_LINE =~ ^HTTP/1\.[01]\ ([0-9]{3})( |$) ]] && RESP_STATUS=${BASH_REMATCH[1]}
    return 0
}

resp_header() {
    local line want=${1,,} name value
    while IFS= read -r line; do
        [[ $line == *:* ]] || continue
        name=${line%%:*}
        [[ ${name,,} == "$want" ]] || continue
        value=${line#*:}
        value=${value#"${value%%[!$' \t']*}"}
        value=${value%"${value##*[!$' \t']}"}
        printf '%s\n' "$value"
        return 0
    done <<<"$RESP_HEAD"
    return 1
}

# show_response FILE: up to 12 lines of FILE, made printable, indented.
show_response() {
    if [[ ! -s $1 ]]; then
        echo "    (nothing)"
        return
    fi
    head -c 1200 "$1" | LC_ALL=C tr -d '\r' | LC_ALL=C tr '\000-\010\013-\037\177-\377' '?' | head -12 | sed 's/^/    /'
}

# first_mismatch WANT1 GOT1 [WANT2 GOT2 ...]: compares each pair of files
# in one child process; prints the number (from 0) of the first pair that
# differs, or nothing. Follow it with assert_same_bytes on that pair for
# the message.
first_mismatch() {
    # shellcheck disable=SC2016 # the script expands its own variables
    bash -c 'i=0
        while (($# >= 2)); do
            cmp -s -- "$1" "$2" || { echo "$i"; exit 0; }
            shift 2
            i=$((i + 1))
        done' _ "$@"
}

# stalled_then_get PORT N SECS: opens N connections that each send the
# start of a request head and never finish it (slowloris), then, beside
# them, one normal GET /hello.txt. Prints "answered in MS ms: STATUS-LINE"
# or "no answer within SECS s" (one python process for all of it).
stalled_then_get() {
    python3 -S -c '
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n")   # never the blank line
    held.append(s)
t0 = time.monotonic()
c = socket.create_connection(("127.0.0.1", port), timeout=secs)
c.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    line = c.recv(200).split(b"\r\n")[0].decode("latin-1")
    print("answered in %d ms: %s" % ((time.monotonic() - t0) * 1000, line or "(closed, no answer)"))
except socket.timeout:
    print("no answer within %g s" % secs)' "$@"
}
