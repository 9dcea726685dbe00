# tests/support/http.bash - HTTP helpers the HTTP lessons (10-15) share.
#
# Load it after the general helpers:
#     load support/helpers
#     load support/http
#
# Peers nobody here wrote:
#   start_file_server [-c] DIR   python's http.server serving DIR on a free
#                                port; sets FILES_PORT. -c: no Content-Length,
#                                bodies end when the server closes.
#   closed_port                  sets CLOSED_PORT: a port on 127.0.0.1 that
#                                refuses connections (bound, not listening,
#                                held by a spawned process so nobody takes it).
#   curl_http URL [CURL_ARGS...] curl as the client (-sS -i, 4 s at most);
#                                sets $status and $stderr, keeps the
#                                response in $T/curl.resp and http_splits it.
#   py_http PORT METHOD PATH     python's http.client as the client; sets
#                                $status, $output ("STATUS REASON", then one
#                                "Name: value" line a header), $stderr; the
#                                body goes to $T/py.body.
#
# Raw HTTP through the C peer (any bytes, split as a test likes):
#   serve_response FILE [PEER_OPTIONS...]
#                                a server that answers one connection with
#                                the bytes of FILE and closes; what the
#                                client sent lands in $T/request. Sets PEER_PORT.
#   http_exchange PORT FILE [PEER_OPTIONS...]
#                                a client that sends the bytes of FILE to
#                                127.0.0.1:PORT (then half-closes, unless
#                                PEER_OPTIONS has -H) and records the reply
#                                into $T/reply until the server closes; runs
#                                in the foreground (RUN_TIMEOUT at most),
#                                sets PEER_RECEIVED/PEER_SENT/PEER_HOW like
#                                peer_done, then http_splits the reply.
#   http_split FILE [SIZE]       splits a recorded response: sets
#                                HTTP_STATUS_LINE, HTTP_STATUS ("200"),
#                                HTTP_HEADERS (one "Name: value" a line, CRs
#                                removed), HTTP_HEAD_COMPLETE (1 or 0); the
#                                body goes to FILE.body. Given FILE's SIZE
#                                (http_exchange knows it), it also sets
#                                HTTP_BODY_BYTES without running wc.
#   http_header NAME             prints the value(s) of header NAME from
#                                HTTP_HEADERS (case-insensitive); status 1
#                                if there is none. http_header_get NAME does
#                                the same into HTTP_VALUE and HTTP_COUNT,
#                                without a subshell.
#   assert_http_status CODE      HTTP_STATUS is CODE, or fail showing the head.
#   assert_http_header NAME VAL  header NAME appears once, with value VAL.
#
#
# Every helper names what it started in the transcript, so a failing test's
# "reproduce with" shows the exact peer command lines.

### peers nobody here wrote ###

start_file_server() {
    local opt=()
    if [[ $1 == -c ]]; then
        opt=(--close-delimited)
        shift
    fi
    spawn files python3 -S "$REPO_ROOT/tests/support/serve_dir.py" "${opt[@]}" "$1"
    listening_port files || return 1
    FILES_PORT=$LISTEN_PORT
}

closed_port() {
    spawn closed python3 -S -c '
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("bound, not listening, on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
time.sleep(600)'
    await_line closed '^bound, not listening, on 127\.0\.0\.1:[0-9]+$' || return 1
    CLOSED_PORT=${AWAITED_LINE##*:}
}

curl_http() {
    local url=$1
    shift
    : >"$T/curl.resp"
    run_limited "$RUN_TIMEOUT" curl -sS -i --max-time 4 -o "$T/curl.resp" "$@" "$url"
    http_split "$T/curl.resp"
}

py_http() {
    local port=$1 method=$2 path=$3
    run_limited "$RUN_TIMEOUT" python3 -S -c '
import http.client, sys
port, method, path, body_file = sys.argv[1:]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
conn.request(method, path)
r = conn.getresponse()
print(r.status, r.reason)
for name, value in r.getheaders():
    print("%s: %s" % (name, value))
with open(body_file, "wb") as f:
    f.write(r.read())
conn.close()' "$port" "$method" "$path" "$T/py.body"
}

### raw HTTP through the C peer ###

serve_response() {
    local file=$1
    shift
    start_peer -- -s "$file" -r "$T/request" "$@"
}

http_exchange() {
    local port=$1 file=$2
    shift 2
    # In the foreground, under a time limit: no polling, and the peer is
    # done (its record complete) when it returns.
    local opts=""
    (($#)) && printf -v opts ' %q' "$@"
    printf '$ build/support/peer -s %s -r $T/reply%s -C 127.0.0.1 %s\n' \
        "${file/#"$T"/\$T}" "$opts" "$port" >>"$T/transcript"
    local rc status
    limited_exec "$RUN_TIMEOUT" "$T/client.out" "$T/client.err" \
        "$PEER" -s "$file" -r "$T/reply" "$@" -C 127.0.0.1 "$port" </dev/null
    rc=$status
    if ((rc == 124 || rc == 137)); then
        fail "$(printf 'the server did not close the connection within %s s (the test client waits for that).\nwhat it sent so far:\n%s' \
            "$RUN_TIMEOUT" "$(indent "$(head -c 2000 "$T/reply" 2>/dev/null)")")"
    elif ((rc != 0)); then
        fail "$(printf 'the test client could not talk to the server (exit %s):\n%s' "$rc" "$(indent "$(cat "$T/client.err")")")"
    fi
    local line
    while IFS= read -r line; do
        if [[ $line =~ ^done:\ received\ ([0-9]+)\ bytes,\ sent\ ([0-9]+)\ bytes,\ (.+)$ ]]; then
            PEER_RECEIVED=${BASH_REMATCH[1]} PEER_SENT=${BASH_REMATCH[2]} PEER_HOW=${BASH_REMATCH[3]}
        fi
    done <"$T/client.out"
    http_split "$T/reply" "${PEER_RECEIVED:-}"
}

http_split() {
    local file=$1 size=${2:-} LC_ALL=C
    HTTP_STATUS_LINE="" HTTP_STATUS="" HTTP_HEADERS="" HTTP_HEAD_COMPLETE=0 HTTP_BODY_BYTES=""
    # The head is text: read up to the first NUL (a NUL never belongs in
    # a head), with no command substitution to eat trailing newlines.
    local data=""
    IFS= read -r -d '' data <"$file" || true
    # The head ends at the first blank line: CRLF CRLF, or LF LF (bare LF).
    local crlf=${data%%$'\r\n\r\n'*} lf=${data%%$'\n\n'*} len=-1
    [[ $crlf != "$data" ]] && len=$((${#crlf} + 4))
    if [[ $lf != "$data" ]] && ((len < 0 || ${#lf} + 2 < len)); then len=$((${#lf} + 2)); fi
    local head=$data
    if ((len >= 0)); then
        HTTP_HEAD_COMPLETE=1
        head=${data:0:len}
        tail -c +$((len + 1)) "$file" >"$file.body"
        [[ -n $size ]] && HTTP_BODY_BYTES=$((size - len))
    else
        : >"$file.body"
        [[ -n $size ]] && HTTP_BODY_BYTES=0
    fi
    head=${head//$'\r'/}
    HTTP_STATUS_LINE=${head%%$'\n'*}
    [[ $HTTP_STATUS_LINE =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]] && HTTP_STATUS=${BASH_REMATCH[1]}
    if [[ $head == *$'\n'* ]]; then
        HTTP_HEADERS=${head#*$'\n'}
        HTTP_HEADERS=${HTTP_HEADERS%$'\n\n'}
        HTTP_HEADERS=${HTTP_HEADERS%$'\n'}
    fi
    return 0
}

http_header() {
    http_header_get "$1" || return 1
    printf '%s\n' "$HTTP_VALUE"
}

# http_header_get NAME: like http_header, without a subshell: sets
# HTTP_VALUE (the values, one a line) and HTTP_COUNT; status 1 if none.
# (Regexes, not a loop over the lines: under bats every bash command
# costs about half a millisecond.)
http_header_get() {
    local re=$'(^|\n)'"$1"$'[ \t]*:[ \t]*([^\n]*)' rest=$HTTP_HEADERS value
    HTTP_VALUE="" HTTP_COUNT=0
    shopt -s nocasematch
    while [[ $rest =~ $re ]]; do
        value=${BASH_REMATCH[2]%"${BASH_REMATCH[2]##*[![:space:]]}"}
        HTTP_VALUE+=${HTTP_VALUE:+$'\n'}$value
        HTTP_COUNT=$((HTTP_COUNT + 1))
        rest=${rest#*"${BASH_REMATCH[0]}"}
    done
    shopt -u nocasematch
    ((HTTP_COUNT > 0))
}

# What the whole head looked like, for failure messages.
http_head_shown() {
    if [[ -z $HTTP_STATUS_LINE ]]; then
        echo "    (no response at all: the server closed without answering)"
    else
        indent "$(printf '%s\n%s' "$HTTP_STATUS_LINE" "$HTTP_HEADERS")"
    fi
}

assert_http_status() {
    local want=$1
    if [[ $HTTP_STATUS != "$want" ]]; then
        fail "$(printf 'expected a %s response, got:\n%s' "$want" "$(http_head_shown)")"
    fi
}

assert_http_header() {
    local name=$1 want=$2
    http_header_get "$name" ||
        fail "$(printf 'expected a header %s: %s, but there is none. The response head:\n%s' "$name" "$want" "$(http_head_shown)")"
    if [[ $HTTP_VALUE != "$want" ]]; then
        fail "$(printf 'expected exactly one header %s: %s, got:\n%s\nThe response head:\n%s' \
            "$name" "$want" "$(indent "$HTTP_VALUE")" "$(http_head_shown)")"
    fi
}
