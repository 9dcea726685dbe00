#!/usr/bin/env bats
# Lesson 15: rest_server, a JSON notes API on the lesson 14 event loop.
# Its clients here are curl and python's http.client.

load support/helpers
load support/http
load support/hostile

setup() {
    helpers_setup
    start_server rest_server
    BASE=http://127.0.0.1:$SERVER_PORT
}

# api METHOD PATH [JSON]: one request with curl; sets $status (curl's),
# $output (the body) and $CODE (the HTTP status); headers in $T/headers.
api() {
    local method=$1 path=$2 args=()
    [[ $# -ge 3 ]] && args=(-H 'Content-Type: application/json' --data-binary "$3")
    # -v: if it ever stalls, the trace says how far the exchange got.
    run_limited 12 curl -sS -v --max-time 8 -X "$method" -D "$T/headers" -w '%{http_code}' "${args[@]}" "$BASE$path"
    if [[ $status != 0 ]]; then
        local state="not running (it exited or crashed)"
        [[ -r /proc/$SERVER_PID/stat ]] && state="running, state $(cut -d' ' -f3 "/proc/$SERVER_PID/stat")"
        fail "$(printf 'curl %s %s failed (curl exit %s%s).\nHow far it got (curl -v):\n%s\nThe server (pid %s) is %s; its stderr:\n%s' \
            "$method" "$path" "$status" "$([[ $status == 28 ]] && echo ': no complete answer within 8 s')" \
            "$(indent "$(grep -E '^(\*|>|<|curl:)' <<<"$stderr" | head -30)")" "$SERVER_PID" "$state" \
            "$(indent "$(tail -5 "$T/$SERVER_NAME.err")")")"
    fi
    CODE=${output: -3}
    output=${output:0:${#output}-3}
    output=${output%$'\n'} # the body's own last line end
}

# expect_code WANT: the last api call got HTTP status WANT.
expect_code() {
    [[ $CODE == "$1" ]] || fail "$(printf 'expected HTTP %s, got %s; body:\n%s' "$1" "$CODE" "$(indent "$output")")"
}

# expect_json_error: the body is {"error": "..."}, served as application/json.
expect_json_error() {
    [[ $output =~ ^\{[[:space:]]*\"error\"[[:space:]]*:[[:space:]]*\"[^\"].*\"[[:space:]]*\}$ ]] ||
        fail "expected a JSON error body like {\"error\": \"...\"}, got: $output"
    grep -qi '^Content-Type: application/json' "$T/headers" || fail "an error body must be Content-Type: application/json"
}

# py SCRIPT: runs python with http.client connected to the server as `c`.
# A failed assert, a response that is not JSON, or a dropped connection is
# reported in one line of words, never as a raw traceback.
py() {
    # If it ever stalls, faulthandler prints where (waiting in recv() for the
    # server, or somewhere else: a machine too loaded to run it).
    run_limited 20 python3 -c "import faulthandler, http.client, json, socket, sys
faulthandler.dump_traceback_later(15, exit=True)
c = http.client.HTTPConnection('127.0.0.1', $SERVER_PORT, timeout=12)
JSON = {'Content-Type': 'application/json'}
try:
    exec(compile(sys.argv[1], 'the test', 'exec'))
except AssertionError as e:
    sys.exit(str(e) or 'an assertion failed')
except json.JSONDecodeError as e:
    sys.exit('the server sent a body that is not valid JSON (%s); near: %r' % (e.msg, e.doc[max(0, e.pos - 20):e.pos + 20]))
except UnicodeDecodeError as e:
    sys.exit('the server sent bytes that are not valid UTF-8 (%s): %r' % (e.reason, e.object[max(0, e.start - 20):e.end + 20]))
except (ConnectionError, socket.timeout, http.client.HTTPException) as e:
    sys.exit('the connection to the server failed: %s: %s' % (type(e).__name__, e))" "$1"
    if [[ $status != 0 ]]; then
        local state="not running (it exited or crashed)"
        [[ -r /proc/$SERVER_PID/stat ]] && state="running, state $(cut -d' ' -f3 "/proc/$SERVER_PID/stat")"
        fail "$(printf 'the python client failed:\n%s\n%s\nThe server (pid %s) is %s.' "$(indent "$output")" "$(indent "$(tail -c 3000 <<<"$stderr")")" "$SERVER_PID" "$state")"
    fi
}

@test "POST /notes creates a note: 201, Location: /notes/1, and the note as JSON" {
    api POST /notes '{"text": "buy milk"}'
    expect_code 201
    assert_output '{"id":1,"text":"buy milk"}'
    grep -qi '^Location: /notes/1' "$T/headers" || fail "no Location: /notes/1 in:$(printf '\n%s' "$(cat "$T/headers")")"
    grep -qi '^Content-Type: application/json' "$T/headers" || fail "no Content-Type: application/json"
}

@test "GET /notes lists every note in order, GET /notes/ID returns one (python http.client)" {
    py '
for t in ["one", "two", "three"]:
    c.request("POST", "/notes", json.dumps({"text": t}), JSON); r = c.getresponse(); r.read()
    assert r.status == 201, r.status
c.request("GET", "/notes"); r = c.getresponse()
notes = json.loads(r.read())
assert r.status == 200 and [n["text"] for n in notes] == ["one", "two", "three"], notes
assert [n["id"] for n in notes] == [1, 2, 3], notes
c.request("GET", "/notes/2"); r = c.getresponse()
assert r.status == 200 and json.loads(r.read()) == {"id": 2, "text": "two"}'
}

@test "PUT replaces a note's text (200); DELETE removes it (204), then it is 404" {
    api POST /notes '{"text": "draft"}'
    api PUT /notes/1 '{"text": "final"}'
    expect_code 200
    assert_output '{"id":1,"text":"final"}'
    api DELETE /notes/1
    expect_code 204
    [[ -z $output ]] || fail "$(printf 'a 204 No Content response has no body (and no Content-Length); got:\n%s' "$(indent "$output")")"
    api GET /notes/1
    expect_code 404
    expect_json_error
    # curl skips whatever follows a 204's head; a raw socket does not.
    api POST /notes '{"text": "second"}'
    py '
s = socket.create_connection(("127.0.0.1", c.port), timeout=12)
s.sendall(b"DELETE /notes/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /notes/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 204 "), "DELETE /notes/2: expected 204, got %r" % head[:100]
assert rest.startswith(b"HTTP/1.1 404 "), "a 204 No Content response has no body (and no Content-Length), but after its head came %r; on a keep-alive connection the next response must follow at once" % rest[:80]'
}

@test "string escapes survive the round trip both ways: quotes, backslashes, control characters, \\uXXXX, emoji" {
    py '
texts = ["say \"hi\"", "back\\slash", "line\nbreak\ttab", "\u0001\u001f", "caf\u00e9 \u4e2d", "\U0001F600 smile", "", "</script>",
         "nul \u0000 inside", "\b backspace \f form feed", "a/b"]
def check(t, body, raw, status):
    assert status == 201, "POST %r got %d %r: the server refused a valid JSON string (every escape must be read: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)" % (body, status, raw[:120])
    for ch in raw.strip().decode("utf-8", "replace"):
        assert ord(ch) >= 0x20, "POST %r was answered with a raw control character U+%04X inside a JSON string: %r\n(control characters below 0x20 must be written as \\u00XX, or \\n \\t ...)" % (body, ord(ch), raw[:120])
    got = json.loads(raw)["text"]
    if "\u0000" in t:
        assert got == t, "the text %r came back as %r: a NUL (\\u0000) cut it short; the text is bytes with a length, not a C string" % (t, got)
    assert got == t, "the text %r came back as %r (POST %r)" % (t, got, body)
for i, t in enumerate(texts, 1):
    for body in (json.dumps({"text": t}), json.dumps({"text": t}, ensure_ascii=False)):
        c.request("POST", "/notes", body.encode(), JSON); r = c.getresponse()
        check(t, body, r.read(), r.status)
c.request("GET", "/notes"); r = c.getresponse(); raw = r.read()
for n in json.loads(raw):
    t = texts[(n["id"] - 1) // 2]
    assert n["text"] == t, "GET /notes shows note %d as %r, it was stored as %r" % (n["id"], n["text"], t)
body = b"{\"text\": \"a\\/b \\b\\f\\n\\r\\t \\u00e9\\u0000\"}"
c.request("POST", "/notes", body, JSON); r = c.getresponse()
check("a/b \b\f\n\r\t \u00e9\u0000", body, r.read(), r.status)'
}

@test "malformed JSON, a missing or non-string text field, and bad UTF-8 get 400 with a JSON error" {
    py '
bad = [b"{\"text\": \"unterminated}", b"{\"text\": \"x\",}", b"{\x27text\x27: \x27single quotes\x27}",
       b"{\"text\": \"x\"} trailing", b"{\"text\": [\"a\", \"list\"]}", b"{\"text\": {\"nested\": 1}}",
       b"{\"text\": 42}", b"{\"note\": \"no text field\"}", b"{\"text\": \"a\", \"text\": \"twice\"}",
       b"{\"text\": \"\\ud800 a lone surrogate\"}", b"{\"text\": \"\\udc00 a lone low surrogate\"}",
       b"{\"text\": \"\\ud800\\u0041 high then not low\"}", b"{\"text\": \"\\x escape\"}",
       b"{\"text\": \"raw \x01 control\"}", b"{\"text\": \"bad \xff utf-8\"}",
       b"{\"text\": \"overlong \xc0\xaf\"}", b"[1, 2]", b"not json at all", b""]
wrong = []
for body in bad:
    c.request("POST", "/notes", body, JSON); r = c.getresponse(); raw = r.read()
    try:
        ok = r.status == 400 and isinstance(json.loads(raw)["error"], str)
    except Exception:
        ok = False
    ok = ok and r.getheader("Content-Type", "").startswith("application/json")
    if not ok:
        wrong.append("%r -> %d %r" % (body, r.status, raw[:80]))
c.request("GET", "/notes"); r = c.getresponse(); listed = r.read()
if listed.strip() != b"[]":
    wrong.append("after only bad bodies, GET /notes should be [], got %r" % listed)
if wrong:
    sys.exit("expected 400 with a JSON error body for each of these:\n" + "\n".join(wrong) +
             "\n(A surrogate \\uD800-\\uDBFF must be followed by a low one \\uDC00-\\uDFFF; a low one alone is a lone low surrogate:\n"
             "stored, it would be sent back as invalid UTF-8.)")'
}

@test "404 for an unknown note or path, with a JSON error body" {
    api GET /notes/99
    expect_code 404
    expect_json_error
    api GET /nothing-here
    expect_code 404
    expect_json_error
    api GET /notes/abc
    expect_code 404
    api POST /notes '{"text": "one"}'
    local t
    for t in /notes/1x /notes/1.0 "/notes/1%20" /notes/+1 /notes/1/ /notes/-1; do
        api GET "$t"
        [[ $CODE == 404 ]] || fail "GET $t: expected 404 (an id is digits only, nothing after them), got $CODE: $output"
    done
}

@test "HEAD answers like GET without a body, and the keep-alive connection stays in step" {
    api POST /notes '''{"text": "headed"}'''
    py '
s = socket.create_connection(("127.0.0.1", c.port), timeout=12)
s.sendall(b"GET /notes/1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /notes/1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /notes HTTP/1.1\r\nHost: x\r\n\r\n"
          b"HEAD /notes/99 HTTP/1.1\r\nHost: x\r\n\r\nGET /notes/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
def take(data, head_only, what):
    end = data.find(b"\r\n\r\n")
    assert end >= 0, "%s: no complete response head in %r" % (what, data[:300])
    head = data[:end].decode("latin-1")
    length = [int(l.split(":", 1)[1]) for l in head.split("\r\n") if l.lower().startswith("content-length:")]
    rest = data[end + 4:]
    if head_only:
        assert rest == b"" or rest.startswith(b"HTTP/1.1 "), "%s: the response to HEAD carries a body (%r...): HEAD gets the head of the GET response, Content-Length included, and no body; the next bytes on a keep-alive connection must be the next response" % (what, rest[:60])
        return head, rest
    assert length, "%s: no Content-Length in %r" % (what, head)
    return head, rest[length[0]:]
g, data = take(data, False, "GET /notes/1")
h, data = take(data, True, "HEAD /notes/1")
assert h.split("\r\n")[0] == "HTTP/1.1 200 OK", "HEAD /notes/1: %r" % h
cl = lambda head: [l for l in head.split("\r\n") if l.lower().startswith("content-length:")]
assert cl(h) == cl(g), "HEAD /notes/1 must carry the Content-Length a GET would: %r vs %r" % (cl(h), cl(g))
h, data = take(data, True, "HEAD /notes")
assert h.startswith("HTTP/1.1 200 "), "HEAD /notes: %r" % h
h, data = take(data, True, "HEAD /notes/99")
assert h.startswith("HTTP/1.1 404 "), "HEAD /notes/99: expected 404, got %r" % h
g, data = take(data, False, "the GET /notes/1 after the HEADs")
assert g.startswith("HTTP/1.1 200 "), "the GET after the HEAD requests got %r" % g'
}

@test "405 with an Allow header for a method the path does not take" {
    api DELETE /notes
    expect_code 405
    expect_json_error
    grep -qi '^Allow: GET, HEAD, POST' "$T/headers" || fail "no 'Allow: GET, HEAD, POST' for /notes"
    api POST /notes '{"text": "x"}'
    api POST /notes/1 '{"text": "x"}'
    expect_code 405
    grep -qi '^Allow: GET, HEAD, PUT, DELETE' "$T/headers" || fail "no 'Allow: GET, HEAD, PUT, DELETE' for /notes/1"
}

@test "415 unless the body is Content-Type: application/json" {
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary '{"text":"x"}' "$BASE/notes"
    [[ $output == 415 ]] || fail "POST /notes with Content-Type: text/plain: expected 415 Unsupported Media Type, got $output"
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type:' --data-binary '{"text":"x"}' "$BASE/notes"
    [[ $output == 415 ]] || fail "POST /notes with no Content-Type at all: expected 415 Unsupported Media Type, got $output (no type is not application/json)"
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' --data-binary '{"text":"x"}' "$BASE/notes"
    [[ $output == 415 ]] || fail "POST /notes with curl's default Content-Type: application/x-www-form-urlencoded: expected 415, got $output"
    run_limited 5 curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"text":"x"}' "$BASE/notes"
    assert_output 201
}

@test "413 for a body over 1 MiB, and the server goes on" {
    head -c 2000000 /dev/zero | tr '\0' a | sed 's/^/{"text":"/; s/$/"}/' >"$T/big.json"
    run_limited 10 curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$T/big.json" "$BASE/notes"
    assert_output 413
    api GET /notes
    expect_code 200
}

@test "a request whose body arrives in small pieces is read whole" {
    local body='{"text": "arrived in pieces"}'
    printf 'POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "${#body}" "$body" >"$T/req"
    spawn slow "$PEER" -s "$T/req" -k 4 -d 3 -r "$T/slow.got" -C 127.0.0.1 "$SERVER_PORT"
    peer_done slow 10
    grep -qa '^HTTP/1.1 201 ' "$T/slow.got" || fail "expected 201, got: $(head -c 300 "$T/slow.got")"
    grep -qa '"text":"arrived in pieces"' "$T/slow.got" || fail "the note is not in the response: $(cat "$T/slow.got")"
}

@test "answers Expect: 100-continue before the body is sent (curl -T waits for it)" {
    py '
import socket
s = socket.create_connection(("127.0.0.1", c.port), timeout=12)
body = b"{\"text\": \"sent after 100\"}"
s.sendall(b"POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
first = s.recv(4096)
assert first.startswith(b"HTTP/1.1 100 "), "expected HTTP/1.1 100 Continue before sending the body, got %r" % first
s.sendall(body)
rest = b""
while b"sent after 100" not in rest:
    chunk = s.recv(4096)
    assert chunk, "the connection closed; got %r" % rest
    rest += chunk
assert rest.startswith(b"HTTP/1.1 201 "), rest'
}

@test "one URL per note: /notes/01 is not /notes/1" {
    api POST /notes '{"text": "one"}'
    api GET /notes/01
    expect_code 404
}

@test "an absolute-form target names the same note (RFC 9112, 3.2.2)" {
    api POST /notes '{"text": "via a proxy"}'
    run_limited 5 curl -sS --request-target "http://example.com/notes/1" "$BASE/"
    [[ $status == 0 && $output == *'"via a proxy"'* ]] ||
        fail "$(printf 'GET http://example.com/notes/1 HTTP/1.1 must answer like GET /notes/1; got (curl exit %s):\n%s\n%s' "$status" "$(indent "$output")" "$(indent "$stderr")")"
}

@test "keeps the connection alive across requests (python http.client, one socket)" {
    py '
c.request("POST", "/notes", json.dumps({"text": "a"}), JSON); c.getresponse().read()
sock = c.sock
for _ in range(20):
    c.request("GET", "/notes/1"); r = c.getresponse(); r.read()
    assert r.status == 200
assert c.sock is sock, "the connection was not kept alive"'
}

@test "handles the hostile-input corpus and keeps serving" {
    assert_survives_hostile_corpus /notes
}

@test "a request that can never be valid gets 400 at once, not a silence until -t" {
    :
    printf 'GET /x\r\n' >"$T/noversion"
    printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >"$T/tls"
    printf '\x00\x01\x02 binary' >"$T/binary"
    local f
    for f in noversion tls binary; do
        # -H: the client keeps its side open and waits, as a real one does.
        http_exchange "$SERVER_PORT" "$T/$f" -H -t 4000
        [[ $PEER_HOW != timeout && $HTTP_STATUS == 400 ]] ||
            fail "$(printf '%s: expected 400 and a close as soon as the request line is complete (or its first byte\ncannot begin a method); the client waited 4 s and saw: %s, status line "%s".\nA request line that can never become valid is answered now: waiting for the blank line\n(or for -t) keeps a connection for nothing.' "$(od -An -c "$T/$f" | head -1 | tr -s ' ')" "$PEER_HOW" "$HTTP_STATUS_LINE")"
    done
}

@test "an error found before the method is known still has no body for HEAD" {
    :
    local long
    long=$(head -c 9000 /dev/zero | tr '\0' a)
    printf 'HEAD /notes HTTP/1.1\r\nHost: x\r\nX-Long: %s\r\n\r\n' "$long" >"$T/req"
    http_exchange "$SERVER_PORT" "$T/req"
    assert_http_status 431
    [[ $HTTP_BODY_BYTES == 0 ]] ||
        fail "$(printf 'HEAD with a 9000-byte header line got 431 and %s bytes of body: the answer to HEAD never has a body,\neven for an error found before the method was read (look at the request line first).' "$HTTP_BODY_BYTES")"
    http_header_get Content-Length || fail "the 431 to HEAD should still say its Content-Length"
}

@test "an invalid Host or a malformed absolute-form target gets 400 (RFC 9112 3.2)" {
    :
    local h i=0
    for h in 'a b' 'x, y' 'a/b' '..' '::: x' 'u@x'; do
        i=$((i + 1))
        printf 'GET /notes HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" >"$T/host$i"
        http_exchange "$SERVER_PORT" "$T/host$i"
        [[ $HTTP_STATUS == 400 ]] || fail "$(printf 'Host: %s is not a host[:port]: expected 400, got:\n%s' "$h" "$(http_head_shown)")"
    done
    for h in localhost:8080 '[::1]:80' 127.0.0.1 example.com; do
        printf 'GET /notes HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$h" >"$T/good"
        http_exchange "$SERVER_PORT" "$T/good"
        [[ $HTTP_STATUS == 200 ]] || fail "$(printf 'Host: %s is valid: expected 200, got:\n%s' "$h" "$(http_head_shown)")"
    done
    for h in 'http://u:p@x' 'http://a"b<c' 'http://x#f' 'http://x{P'; do
        printf 'GET %s/notes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$h" >"$T/abs"
        http_exchange "$SERVER_PORT" "$T/abs"
        [[ $HTTP_STATUS == 400 ]] || fail "$(printf 'GET %s/notes: the authority of an absolute-form target is host[:port] only\n(no userinfo, no fragment, no bytes a host cannot have): expected 400, got:\n%s' "$h" "$(http_head_shown)")"
    done
}

@test "never sends 100 Continue to an HTTP/1.0 client (RFC 9110 15.2)" {
    py '
import time
s = socket.create_connection(("127.0.0.1", c.port), timeout=12)
body = b"{\"text\": \"one-oh\"}"
s.sendall(b"POST /notes HTTP/1.0\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
time.sleep(0.3)  # the head alone first: a server that answers 100 does it now
s.sendall(body)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
assert not data.startswith(b"HTTP/1.1 100"), "an HTTP/1.0 request with Expect: 100-continue got %r first: a 1.0 client does not know 1xx responses; answer only the final one" % data[:40]
assert data.startswith(b"HTTP/1.1 201 "), "expected 201 for the HTTP/1.0 POST, got %r" % data[:80]'
}

@test "follows the CLI conventions: -h, usage errors" {
    run_prog rest_server -h
    assert_status 0
    assert_output --partial "usage: rest_server"
    run_prog rest_server -p 99999
    assert_status 2
    run_prog rest_server extra-argument
    assert_status 2
}
