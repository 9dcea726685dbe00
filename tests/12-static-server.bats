#!/usr/bin/env bats
# Lesson 12: static_server -d DIR serves a directory over HTTP like
# `python3 -m http.server`: files with their MIME types, index.html,
# escaped listings, 301/304/403/404, HEAD, many clients at once, and
# never a byte from outside DIR.

load support/helpers
load support/static
load support/http
load support/hostile

# One tree for the whole file (the 50 MB file is made once): $SITE, with
# a secret planted next to it, and symlinks inside it pointing out.
setup_file() {
    export SITE=$BATS_FILE_TMPDIR/www
    export SECRET="TOP-SECRET-$RANDOM$RANDOM-never-serve-this"
    make_site "$SITE"
    # 50 MB of random bytes would take a while to make: repeat a random
    # block instead, of a prime size, so no chunk size a server might use
    # lines up with it and a repeated or skipped chunk shows.
    head -c 1000003 /dev/urandom >"$BATS_FILE_TMPDIR/block"
    for _ in $(seq 53); do cat "$BATS_FILE_TMPDIR/block"; done | head -c 52428800 >"$SITE/big.bin"
    touch -d '2021-03-04 05:06:07 UTC' "$SITE/types/notes.txt"
    printf '%s\n' "$SECRET" >"$BATS_FILE_TMPDIR/secret.txt"
    mkdir "$BATS_FILE_TMPDIR/outside"
    printf '%s\n' "$SECRET" >"$BATS_FILE_TMPDIR/outside/secret.txt"
    ln -s ../secret.txt "$SITE/link-secret.txt"
    ln -s ../outside "$SITE/link-outside"
    # 5 GiB, sparse (no disk used): only ever asked for with HEAD. Its
    # size does not fit in 32 bits.
    truncate -s 5G "$SITE/huge.bin"
}

# serve_dir DIR [ARGS...]: static_server -p 0 -d DIR ARGS in the
# background, once it listens; sets SERVER_PID, PORT and BASE.
serve_dir() {
    local dir=$1
    shift
    start_server static_server -d "$dir" "$@" || return 1
    PORT=$SERVER_PORT
    BASE=http://127.0.0.1:$PORT
}

# serve [ARGS...]: static_server on the test tree.
serve() { serve_dir "$SITE" "$@"; }

# fetch PATH [CURL_ARGS...]: GET $BASE$PATH with curl, the path sent as
# it is; the body goes to $T/body, the headers to $T/head. Sets CODE
# ("000" if no answer came) and parses the headers (resp_header works).
fetch() {
    local path=$1
    shift
    rm -f "$T/body" "$T/head"
    quick_run 10 curl -sS --path-as-is -m 8 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$BASE$path"
    CODE=$output
    [[ -f $T/body ]] || : >"$T/body"
    parse_response "$T/head"
}

# expect_code REGEX WHAT: the last fetch's status matches ^(REGEX)$.
expect_code() {
    if [[ ! $CODE =~ ^($1)$ ]]; then
        local got=$CODE
        [[ $got == 000 ]] && got="no answer (curl: ${stderr:-nothing})"
        fail "$(printf '%s: expected status %s, got %s.\nresponse headers:\n%s' "$2" "$1" "$got" "$(show_response "$T/head")")"
    fi
}

# fetch_all PATH...: one curl GETs each $BASE$PATH (sent as it is), the
# body of number i into $T/got.i; sets CODES[i] ("000": no answer).
fetch_all() {
    local args=() i=0 p
    for p in "$@"; do
        args+=(-o "$T/got.$i" "$BASE$p")
        i=$((i + 1))
    done
    quick_run 30 curl -sS --path-as-is -m 8 -w '%{http_code}\n' "${args[@]}"
    CODES=()
    while IFS= read -r p; do CODES+=("$p"); done <<<"$output"
}

# media_types URL_PATH...: one curl, the Content-Type of each, lower-case
# and without parameters, into the array TYPES.
media_types() {
    local urls=() p
    for p in "$@"; do urls+=(-o /dev/null "$BASE$p"); done
    quick_run 10 curl -sS -m 8 -w '%{content_type}\n' "${urls[@]}"
    local IFS=$'\n'
    # shellcheck disable=SC2207
    TYPES=($(printf '%s\n' "$output" | awk '{ sub(/;.*/, ""); gsub(/[ \t]/, ""); print ($0 == "" ? "(none)" : tolower($0)) }'))
}

### serving files ###

@test "prints 'listening on 127.0.0.1:PORT' and serves a file with Content-Type, Content-Length and Connection: close" {
    serve
    [[ $AWAITED_LINE == "listening on 127.0.0.1:$PORT" ]] ||
        fail "expected 'listening on 127.0.0.1:PORT' (127.0.0.1 is the default address), got: $AWAITED_LINE"
    fetch /hello.txt
    expect_code 200 "GET /hello.txt"
    assert_same_bytes "$SITE/hello.txt" "$T/body" "the body of /hello.txt"
    local length connection type
    length=$(resp_header Content-Length) || fail "the 200 response has no Content-Length header"
    [[ $length == 14 ]] || fail "Content-Length: expected 14 (the file's size), got '$length'"
    type=$(resp_header Content-Type) || fail "the 200 response has no Content-Type header"
    [[ $type == text/plain* ]] || fail "Content-Type of hello.txt: expected text/plain, got '$type'"
    connection=$(resp_header Connection) || fail "no 'Connection: close' header, though the server closes after answering"
    [[ $connection == [Cc]lose ]] || fail "expected 'Connection: close', got 'Connection: $connection'"
}

@test "every file in the tree downloads byte-identical: binary, spaces, non-ASCII, '<b>x</b>.txt'" {
    serve
    local files=() urls=() args=() f i=0
    while IFS= read -r f; do [[ $f == big.bin || $f == huge.bin ]] || files+=("$f"); done < <(site_files "$SITE")
    while IFS= read -r f; do urls+=("$f"); done < <(url_of "${files[@]}")
    for i in "${!files[@]}"; do args+=(-o "$T/file.$i" "$BASE/${urls[i]}"); done
    quick_run 20 curl -sS -m 15 -w '%{http_code}\n' "${args[@]}"
    local codes=() pairs=()
    while IFS= read -r f; do codes+=("$f"); done <<<"$output"
    for i in "${!files[@]}"; do
        [[ ${codes[i]:-000} == 200 ]] ||
            fail "GET /${urls[i]} (the file '${files[i]}'): expected status 200, got ${codes[i]:-no answer}"
        pairs+=("$SITE/${files[i]}" "$T/file.$i")
    done
    i=$(first_mismatch "${pairs[@]}")
    [[ -z $i ]] || assert_same_bytes "$SITE/${files[i]}" "$T/file.$i" "the file '${files[i]}'"
}

@test "a 50 MB file downloads byte-identical with the right Content-Length" {
    serve
    fetch /big.bin
    expect_code 200 "GET /big.bin"
    [[ $(resp_header Content-Length) == 52428800 ]] ||
        fail "Content-Length: expected 52428800, got '$(resp_header Content-Length)'"
    assert_same_bytes "$SITE/big.bin" "$T/body" "the 50 MB file"
}

@test "Content-Type follows the extension: html, css, js, json, png, jpg, svg, txt; else application/octet-stream" {
    serve
    local names=(page.html style.css app.js data.json image.png photo.jpg icon.svg notes.txt blob.xyz README)
    local want=(text/html text/css 'text/javascript|application/javascript' application/json
        image/png image/jpeg 'image/svg\+xml' text/plain application/octet-stream application/octet-stream)
    media_types "${names[@]/#//types/}"
    local i
    for i in "${!names[@]}"; do
        [[ ${TYPES[i]} =~ ^(${want[i]})$ ]] ||
            fail "$(printf 'Content-Type of %s: expected %s, got "%s"' "${names[i]}" "${want[i]//\\/}" "${TYPES[i]}")"
    done
}

@test "HEAD gets the headers GET would, and no body, for a file and for a listing" {
    serve
    write_request head 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
    raw_request "$PORT" head
    assert_answer 0 200 "HEAD /hello.txt" head
    [[ $RESP_BODY_LEN == 0 ]] ||
        fail "$(printf 'HEAD must get no body, but %s bytes followed the headers:\n%s' "$RESP_BODY_LEN" "$(show_response "$T/head.resp")")"
    [[ $(resp_header Content-Length) == 14 ]] ||
        fail "HEAD /hello.txt: expected Content-Length: 14 (what GET would send), got '$(resp_header Content-Length)'"
    [[ $(resp_header Content-Type) == text/plain* ]] ||
        fail "HEAD /hello.txt: expected Content-Type: text/plain, got '$(resp_header Content-Type)'"
    resp_header Last-Modified >/dev/null || fail "HEAD /hello.txt: no Last-Modified header"

    # A file of 5 GiB (sparse): its size needs more than 32 bits.
    write_request huge 'HEAD /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n'
    raw_request "$PORT" huge
    assert_answer 0 200 "HEAD /huge.bin" huge
    [[ $(resp_header Content-Length) == 5368709120 ]] ||
        fail "HEAD /huge.bin, a file of 5 GiB: expected Content-Length: 5368709120, got '$(resp_header Content-Length)' (a file size is an off_t: an int holds only 2 GiB)"

    fetch /listing/
    expect_code 200 "GET /listing/"
    local size
    size=$(wc -c <"$T/body" | tr -d ' ')
    write_request head 'HEAD /listing/ HTTP/1.1\r\nHost: x\r\n\r\n'
    raw_request "$PORT" head
    assert_answer 0 200 "HEAD /listing/" head
    [[ $RESP_BODY_LEN == 0 ]] || fail "HEAD /listing/ must get no body, got $RESP_BODY_LEN bytes"
    [[ $(resp_header Content-Length) == "$size" ]] ||
        fail "HEAD /listing/: expected Content-Length: $size (the size of the GET body), got '$(resp_header Content-Length)'"
}

@test "percent-decodes the path: %20, upper- and lower-case hex, UTF-8, %2F, %25; ignores the query" {
    serve
    local pairs=(
        "/listing/a%20b.txt" "listing/a b.txt"
        "/%68%65%6C%6c%6F.txt" "hello.txt"
        "/listing/%C3%BCn%C3%AFc%C3%B8d%C3%A9%20%E5%90%8D%E5%89%8D.txt" "listing/ünïcødé 名前.txt"
        "/sub%2Fdeep%2Ffile.txt" "sub/deep/file.txt"
        "/listing/100%25.txt" "listing/100%.txt"
        "/hello.txt?download=1&x=%zz" "hello.txt"
        "/sub/deep/../../hello.txt" "hello.txt"
    )
    local bad=('/hello%zz.txt' '/hello.txt%' '/hello.txt%4' '/%g0hello.txt')
    local paths=() i
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do paths+=("${pairs[i]}"); done
    fetch_all "${paths[@]}" "${bad[@]}"
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        [[ ${CODES[i / 2]} == 200 ]] || fail "GET ${pairs[i]}: expected status 200 (the file '${pairs[i + 1]}'), got ${CODES[i / 2]}"
        assert_same_bytes "$SITE/${pairs[i + 1]}" "$T/got.$((i / 2))" "GET ${pairs[i]} (the file '${pairs[i + 1]}')"
    done
    for i in "${!bad[@]}"; do
        [[ ${CODES[${#paths[@]} + i]} =~ ^(400|404)$ ]] ||
            fail "GET ${bad[i]} (a malformed escape): expected status 400 (or 404), got ${CODES[${#paths[@]} + i]}"
    done
}

### directories ###

@test "serves index.html for a directory that has one" {
    serve
    fetch /site/
    expect_code 200 "GET /site/"
    assert_same_bytes "$SITE/site/index.html" "$T/body" "GET /site/ (site/index.html)"
    [[ $(resp_header Content-Type) == text/html* ]] ||
        fail "GET /site/: expected Content-Type text/html, got '$(resp_header Content-Type)'"
}

@test "lists a directory without index.html: every name escaped, every link percent-encoded and working" {
    serve
    fetch /listing/
    expect_code 200 "GET /listing/"
    [[ $(resp_header Content-Type) == text/html* ]] ||
        fail "the listing's Content-Type: expected text/html, got '$(resp_header Content-Type)'"
    quick_run 20 python3 "$REPO_ROOT/tests/support/check_listing.py" "$T/body" "$SITE/listing" "$BASE/listing/"
    if [[ $status != 0 ]]; then
        fail "$(printf 'the listing of /listing/ is wrong:\n%s\nthe page:\n%s' "$(indent "$output${stderr:+$'\n'$stderr}")" \
            "$(indent "$(head -40 "$T/body")")")"
    fi
}

@test "a directory without its trailing slash is redirected: 301 with Location ending in '/'" {
    serve
    fetch /site
    expect_code 301 "GET /site"
    local location
    location=$(resp_header Location) || fail "the 301 for /site has no Location header"
    [[ $location == */site/ ]] || fail "GET /site: expected a Location ending in /site/, got '$location'"
    fetch '/listing/my%20docs'
    expect_code 301 "GET /listing/my%20docs"
    location=$(resp_header Location) || fail "the 301 for /listing/my%20docs has no Location header"
    [[ $location == */listing/my%20docs/ ]] ||
        fail "GET /listing/my%20docs: expected a Location ending in /listing/my%20docs/ (percent-encoded), got '$location'"
    fetch /site -L
    expect_code 200 "GET /site, following the redirect"
    assert_same_bytes "$SITE/site/index.html" "$T/body" "GET /site, following the redirect"
}

### errors ###

@test "404 for a path that does not exist; 403, at once, for a FIFO or a socket (this one works as root)" {
    serve
    local paths=(/nope.txt /sub/nope/file.txt /sub/deep/file.txt/x /listing/A%20B.txt) i
    fetch_all "${paths[@]}"
    for i in "${!paths[@]}"; do
        [[ ${CODES[i]} == 404 ]] || fail "GET ${paths[i]}: expected status 404, got ${CODES[i]}"
    done
    local p
    for p in /special/fifo /special/sock; do
        fetch "$p" -m 3
        [[ $CODE != 000 ]] || fail "GET $p: no answer within 3 s (open(2) of a FIFO waits for a writer unless O_NONBLOCK; or check the type first)"
        expect_code 403 "GET $p (not a regular file)"
    done
}

@test "403 for a file without read permission (skipped as root, who can read anything)" {
    [[ $(id -u) != 0 ]] || skip "root reads files whatever their mode; the FIFO/socket test checks 403 as root"
    mkdir "$T/www"
    printf 'locked\n' >"$T/www/locked.txt"
    chmod 000 "$T/www/locked.txt"
    serve_dir "$T/www"
    fetch /locked.txt
    expect_code 403 "GET /locked.txt (mode 000)"
}

### Last-Modified and 304 ###

@test "Last-Modified is the mtime; If-Modified-Since at or after it gives 304 and no body, before it 200" {
    serve
    fetch /types/notes.txt
    expect_code 200 "GET /types/notes.txt"
    local lm
    lm=$(resp_header Last-Modified) || fail "GET /types/notes.txt: no Last-Modified header"
    [[ $lm == 'Thu, 04 Mar 2021 05:06:07 GMT' ]] ||
        fail "Last-Modified: expected 'Thu, 04 Mar 2021 05:06:07 GMT' (the file's mtime, in GMT), got '$lm'"
    write_request ims 'GET /types/notes.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: %s\r\n\r\n' "$lm"
    raw_request "$PORT" ims
    assert_answer 0 304 "If-Modified-Since equal to the file's Last-Modified" ims
    [[ $RESP_BODY_LEN == 0 ]] || fail "a 304 must have no body; got $RESP_BODY_LEN bytes after the headers"
    # Three more in one curl: --next starts a request with options of its own.
    local url=$BASE/types/notes.txt
    quick_run 20 curl -sS -m 8 -w '%{http_code}\n' -o /dev/null -H 'If-Modified-Since: Fri, 05 Mar 2021 00:00:00 GMT' "$url" \
        --next -sS -m 8 -w '%{http_code}\n' -o "$T/older" -H 'If-Modified-Since: Wed, 03 Mar 2021 05:06:07 GMT' "$url" \
        --next -sS -m 8 -w '%{http_code}\n' -o /dev/null -H 'If-Modified-Since: not a date' "$url"
    local codes=()
    while IFS= read -r lm; do codes+=("$lm"); done <<<"$output"
    [[ ${codes[0]} == 304 ]] || fail "If-Modified-Since a day after the file's mtime: expected status 304, got ${codes[0]}"
    [[ ${codes[1]} == 200 ]] || fail "If-Modified-Since a day before the file's mtime: expected status 200, got ${codes[1]}"
    assert_same_bytes "$SITE/types/notes.txt" "$T/older" "the 200 body after an older If-Modified-Since"
    [[ ${codes[2]} == 200 ]] || fail "If-Modified-Since that is not a date (ignore it): expected status 200, got ${codes[2]}"
}

### many clients ###

@test "serves 50 downloads at once, each byte-exact" {
    serve
    local args=() i
    for i in $(seq 50); do args+=(-o "$T/copy.$i" "$BASE/binary.bin"); done
    quick_run 30 curl -sS -m 25 -Z --parallel-immediate --parallel-max 50 -w '%{http_code}\n' "${args[@]}"
    local ok
    ok=$(grep -c '^200$' <<<"$output")
    [[ $ok == 50 ]] || fail "$(printf 'expected 50 answers of 200, got %s:\n%s\n%s' "$ok" "$(indent "$(sort <<<"$output" | uniq -c)")" "$(indent "$stderr")")"
    local pairs=()
    for i in $(seq 50); do pairs+=("$SITE/binary.bin" "$T/copy.$i"); done
    i=$(first_mismatch "${pairs[@]}")
    [[ -z $i ]] || assert_same_bytes "$SITE/binary.bin" "$T/copy.$((i + 1))" "download $((i + 1)) of 50"
}

@test "does not leak a descriptor per request: 40 requests of every kind, and the count of open fds stays put" {
    [[ -d /proc/self/fd ]] || skip "needs /proc to count the server's descriptors"
    serve
    fetch /hello.txt
    local before after paths=() i
    before=$(ls "/proc/$SERVER_PID/fd" | wc -l)
    for i in 1 2 3 4 5; do
        paths+=(/hello.txt /site/ /listing/ /sub/deep/file.txt /nope.txt /site /special/fifo /%zz)
    done
    fetch_all "${paths[@]}"
    # The last connections may still be closing: give them a moment.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        after=$(ls "/proc/$SERVER_PID/fd" | wc -l)
        ((after <= before + 2)) && break
        sleep 0.1
    done
    ((after <= before + 2)) ||
        fail "$(printf 'the server had %s descriptors open before 40 requests (files, directories, listings, 404s, 301s) and %s after:\nsome path does not close the file or directory it opened. Every open() needs its close(), on the error paths too.\nnow open:\n%s' \
            "$before" "$after" "$(indent "$(ls -l "/proc/$SERVER_PID/fd" | awk 'NR > 1 { print $NF }' | sort | uniq -c | sort -rn | head -8)")")"
}

@test "a client that sends nothing holds up nobody else" {
    serve
    spawn silent "$PEER" -t 8000 -C 127.0.0.1 "$PORT"
    await_line silent '^connected to'
    fetch /hello.txt -m 3
    [[ $CODE != 000 ]] ||
        fail "GET /hello.txt got no answer within 3 s while another client sat silent: serve connections from several threads (a pool, or one per connection)"
    expect_code 200 "GET /hello.txt while another client is silent"
}

@test "stays available beside 120 connections that never finish their request head (slowloris)" {
    serve
    quick_run 30 bash -c 'source "$0/tests/support/static.bash"; stalled_then_get "$1" 120 4' "$REPO_ROOT" "$PORT"
    [[ $output == "answered in "*"HTTP/1.1 200"* ]] ||
        fail "$(printf '120 clients each sent the start of a request head and then nothing more; a new client asking for /hello.txt beside them got:\n    %s\nexpected its 200 within 4 s. With every worker held by a client that drips its head, new clients wait in the\nlisten queue for -t (10 s) each round: when the pool is full and someone is queued, give up on heads that are slow.\n%s' \
            "${output:-nothing}" "$stderr")"
}

@test "closes a connection that sends no request within the -t timeout" {
    serve -t 0.3
    spawn silent "$PEER" -t 8000 -C 127.0.0.1 "$PORT"
    await_line silent '^connected to'
    await_line silent '^done: ' 5
    [[ $AWAITED_LINE == *", eof" || $AWAITED_LINE == *", peer-reset" ]] ||
        fail "with -t 0.3, a silent connection should be closed by the server after about 0.3 s; the peer says: $AWAITED_LINE"
}

@test "survives a client that resets in the middle of a download" {
    serve
    write_request big 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'
    quick_run 10 "$PEER" -R 100000 -s "$T/big.req" -C 127.0.0.1 "$PORT"
    fetch /hello.txt
    expect_code 200 "GET /hello.txt after a client reset mid-download"
    is_running "$SERVER_PID" || fail "the server died after a client reset its connection (SIGPIPE? ignore it)"
}

### no byte from outside DIR ###

@test "no request, however encoded, reads a byte outside DIR" {
    serve
    local targets=(
        '/../secret.txt' '/%2e%2e/secret.txt' '/%2e%2e%2fsecret.txt' '/..%2fsecret.txt'
        '/%2E%2E%2Fsecret.txt' '/.%2e/secret.txt' '/%252e%252e/secret.txt' '/%252e%252e%252fsecret.txt'
        '/..\secret.txt' '/..%5csecret.txt' '/%5c..%5csecret.txt' '/..%5c..%5csecret.txt'
        '/%2e%2e%00/secret.txt' '/secret.txt%00.html' '/../secret.txt%00'
        '/%c0%ae%c0%ae/secret.txt' '/%c0%ae%c0%ae%c0%afsecret.txt' '/%e0%80%ae%e0%80%ae/secret.txt'
        '/sub/../../secret.txt' '/sub/deep/%2e%2e/%2e%2e/%2e%2e/secret.txt' '/./../secret.txt'
        '/hello.txt/../../secret.txt' '/../../../../../../../../etc/passwd' '//etc/passwd'
        '/%2fetc%2fpasswd' '..%2fsecret.txt' 'secret.txt' '/..'
        'http://127.0.0.1/../secret.txt' 'http://127.0.0.1/%2e%2e/secret.txt'
        'http://127.0.0.1/..%2f..%2fetc%2fpasswd' 'http://127.0.0.1//etc/passwd'
    )
    local names=() i leaked
    for i in "${!targets[@]}"; do
        write_request "attack.$i" 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "${targets[i]}"
        names+=("attack.$i")
    done
    raw_requests "$PORT" "${names[@]}"
    leaked=$(cd "$T" && grep -laF -e "$SECRET" -e 'root:x:0:0' attack.*.resp | head -1) || true
    if [[ -n $leaked ]]; then
        i=${leaked#attack.} i=${i%.resp}
        fail "$(printf 'GET %s sent a file from OUTSIDE the served directory:\n%s' "${targets[i]}" "$(show_response "$T/$leaked")")"
    fi
    for i in "${!targets[@]}"; do
        assert_answer "$i" '400|403|404' "GET ${targets[i]} (outside the served directory)" "attack.$i"
    done
    fetch /hello.txt
    expect_code 200 "GET /hello.txt after the attempts"
}

@test "never leaks the secret through the shared traversal corpus (tests/hostile/traversal.txt)" {
    serve
    assert_never_leaks "$SECRET"
}

@test "handles the shared hostile-input corpus (tests/hostile/cases.txt) and keeps serving" {
    serve
    assert_survives_hostile_corpus /
}

@test "refuses symlinks that point outside DIR (403 or 404)" {
    serve
    local paths=(/link-secret.txt /link-outside/secret.txt /link-outside/ /link-outside) i
    fetch_all "${paths[@]}"
    for i in "${!paths[@]}"; do
        if grep -qaF "$SECRET" "$T/got.$i" 2>/dev/null; then
            fail "GET ${paths[i]} followed a symlink out of the served directory and sent the file there"
        fi
        [[ ${CODES[i]} =~ ^(403|404)$ ]] ||
            fail "GET ${paths[i]} (a symlink to outside the served directory): expected status 403 (or 404), got ${CODES[i]}"
    done
}

### the HTTP rules (DESIGN.md) ###

@test "limits: 414 for a request line over 8 KiB, 431 for a header line over 8 KiB or 32 KiB of headers, 413 for a body over 1 MiB" {
    serve
    local k6 k7 k9
    k6=$(head -c 6000 /dev/zero | tr '\0' b)
    k7=$(head -c 7000 /dev/zero | tr '\0' b)
    k9=$(head -c 9000 /dev/zero | tr '\0' b)
    write_request lim.0 'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' "$k9"
    write_request lim.1 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$k9"
    write_request lim.2 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-1: %s\r\nX-2: %s\r\nX-3: %s\r\nX-4: %s\r\nX-5: %s\r\n\r\n' \
        "$k7" "$k7" "$k7" "$k7" "$k7"
    write_request lim.3 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n'
    write_request lim.4 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n' "$k6"
    # Exactly at the limits, and one byte over: a request line of 8192
    # bytes (CR LF not counted) and a header line of 8192.
    local at over
    at=$(head -c 8178 /dev/zero | tr '\0' b)
    write_request lim.5 'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' "$at"
    write_request lim.6 'GET /%sb HTTP/1.1\r\nHost: x\r\n\r\n' "$at"
    at=$(head -c 8185 /dev/zero | tr '\0' b)
    write_request lim.7 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$at"
    write_request lim.8 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Big: %sb\r\n\r\n' "$at"
    raw_requests "$PORT" lim.0 lim.1 lim.2 lim.3 lim.4 lim.5 lim.6 lim.7 lim.8
    assert_answer 0 414 "a 9000-byte target" lim.0
    assert_answer 1 431 "a 9000-byte header line" lim.1
    assert_answer 2 431 "five 7000-byte header lines (35 KB in all)" lim.2
    assert_answer 3 413 "Content-Length: 2097152" lim.3
    assert_answer 4 200 "a 6000-byte header line (within the limits)" lim.4
    assert_answer 5 404 "a request line of exactly 8192 bytes, CR LF not counted (at the limit: allowed; the file does not exist)" lim.5
    assert_answer 6 414 "a request line of 8193 bytes (one over the limit)" lim.6
    assert_answer 7 200 "a header line of exactly 8192 bytes, CR LF not counted (at the limit: allowed)" lim.7
    assert_answer 8 431 "a header line of 8193 bytes (one over the limit)" lim.8
}

@test "400, 501 or 505 for each malformed request the HTTP rules list" {
    serve
    local cases=(
        '400|a request line without a version|GET /hello.txt\r\n\r\n'
        '400|two spaces after the method|GET  /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|a word after the version|GET /hello.txt HTTP/1.1 extra\r\nHost: x\r\n\r\n'
        '400|a lower-case version|GET /hello.txt http/1.1\r\nHost: x\r\n\r\n'
        '400|HTTP/1.1 without Host|GET /hello.txt HTTP/1.1\r\n\r\n'
        '400|two Host fields|GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'
        '400|whitespace between a field name and its colon|GET /hello.txt HTTP/1.1\r\nHost : x\r\n\r\n'
        '400|an obs-fold continuation line|GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n'
        '400|a field line without a colon|GET /hello.txt HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n'
        '400|a NUL in a field value|GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n'
        '400|a CR in a field value|GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'
        '400|a control byte in the target|GET /hel\001lo.txt HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|a Content-Length that is not a number|GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
        '400|a negative Content-Length|GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'
        '400|a Content-Length that overflows|GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n'
        '400|two different Content-Lengths|GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx'
        '400|Content-Length with Transfer-Encoding|GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
        '501|an unknown method|FOO /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
        '501|an unknown transfer coding|GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'
        '505|HTTP/2.0|GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n'
        '505|HTTP/1.2|GET /hello.txt HTTP/1.2\r\nHost: x\r\n\r\n'
        '505|HTTP/0.9|GET /hello.txt HTTP/0.9\r\nHost: x\r\n\r\n'
        '400|a control byte (\\x05) in a field value|GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\005b\r\n\r\n'
        '400|an invalid Host, "a b" (RFC 9112 3.2)|GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n'
        '400|an invalid Host, "x, y"|GET /hello.txt HTTP/1.1\r\nHost: x, y\r\n\r\n'
        '400|an invalid Host, "a/b"|GET /hello.txt HTTP/1.1\r\nHost: a/b\r\n\r\n'
        '400|an invalid Host, ".."|GET /hello.txt HTTP/1.1\r\nHost: ..\r\n\r\n'
        '400|an invalid Host, "::: x"|GET /hello.txt HTTP/1.1\r\nHost: ::: x\r\n\r\n'
        '400|an absolute-form target with userinfo (RFC 9110 4.2.4)|GET http://u:p@x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|an absolute-form target with quotes and < in its host|GET http://a"b<c/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|an absolute-form target with a fragment|GET http://x#f HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|an absolute-form target with { in its host|GET http://x{P HTTP/1.1\r\nHost: x\r\n\r\n'
        '400|an absolute-form target with an empty host|GET http:///hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
    )
    local names=() i rest
    for i in "${!cases[@]}"; do
        rest=${cases[i]#*|}
        write_request "bad.$i" "${rest#*|}"
        names+=("bad.$i")
    done
    raw_requests "$PORT" "${names[@]}"
    for i in "${!cases[@]}"; do
        rest=${cases[i]#*|}
        assert_answer "$i" "${cases[i]%%|*}" "${rest%%|*}" "bad.$i"
    done
    fetch /hello.txt
    expect_code 200 "GET /hello.txt after the malformed requests"
}

@test "answers a request that can never be valid at once: 400 without waiting for the rest or for -t" {
    # -t 8: a server that waits for the blank line (or for -t) before it
    # answers keeps this client waiting past the 5 s the test allows.
    serve -t 8
    printf '\026\003\001\002\000\001\000\001\374\003\003' >"$T/tls.req"    # a TLS ClientHello's first bytes
    printf 'GET /x\r\n' >"$T/noversion.req"                               # one line, no version
    printf '\001\002binary\r\n' >"$T/binary.req"                          # binary garbage, one line end
    printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nNoColon\r\n' >"$T/badheader.req"  # a header line known bad
    local name
    for name in tls noversion binary badheader; do
        # -H: the client does not close its side; it waits for the answer.
        http_exchange "$PORT" "$T/$name.req" -H -t 6000
        [[ $HTTP_STATUS == 400 ]] ||
            fail "$(printf 'sent these bytes and waited, without closing:\n%s\nexpected a 400 at once (they can never become a valid request: nginx answers them as soon as the line is in),\ngot %s' \
                "$(indent "$(cat -v "$T/$name.req")")" "$(if [[ -s $T/reply ]]; then show_response "$T/reply"; else echo "    nothing, and a close after ${PEER_HOW:-?}"; fi)")"
    done
}

@test "an error found before the method is read still sends no body to HEAD (431 for HEAD with a 9000-byte header line)" {
    serve
    local k9
    k9=$(head -c 9000 /dev/zero | tr '\0' b)
    write_request headbig 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$k9"
    raw_request "$PORT" headbig
    assert_answer 0 431 "HEAD with a 9000-byte header line" headbig
    [[ $RESP_BODY_LEN == 0 ]] ||
        fail "$(printf 'the request was HEAD, so its 431 must have no body (a HEAD client never reads one, and on a kept connection it would be read as the next response); got %s bytes after the head:\n%s' \
            "$RESP_BODY_LEN" "$(show_response "$T/headbig.resp")")"
}

@test "accepts bare LF line ends, empty lines before the request line, and HTTP/1.0 without Host" {
    serve
    write_request lenient '\r\n\nGET /hello.txt HTTP/1.1\nHost: x\n\n'
    raw_request "$PORT" lenient
    assert_answer 0 200 "empty lines, then a request with bare LF line ends" lenient
    [[ $RESP_BODY_LEN == 14 ]] || fail "expected the 14 bytes of hello.txt after the headers, got $RESP_BODY_LEN"
    write_request old 'GET /hello.txt HTTP/1.0\r\n\r\n'
    raw_request "$PORT" old
    assert_answer 0 200 "an HTTP/1.0 request without Host" old
}

### the command line ###

@test "exits 0 on SIGTERM and on SIGINT, after serving requests" {
    local sig
    for sig in TERM INT; do
        serve
        # A few kinds of answer first, so a sanitizer build checks their
        # memory at exit too.
        fetch_all /hello.txt /listing/ /site /nope.txt /%zz
        stop_server_with "$sig" || return 1
    done
}

@test "SIGTERM does not wait for ever for a slow download: the drain is bounded by -t" {
    serve -t 1
    # A reader that takes 8 KiB every 50 ms: 50 MB would take 5 minutes,
    # yet no single 64 KiB write waits as long as -t.
    write_request big 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'
    spawn slow "$PEER" -s "$T/big.req" -H -K 8192 -w 50 -t 0 -C 127.0.0.1 "$PORT"
    await_line slow '^connected to'
    # The first bytes of the answer are in: the download is under way.
    local i
    for i in $(seq 100); do [[ -s $T/slow.out ]] && grep -q '^received\|^connected' "$T/slow.out" && break; sleep 0.02; done
    local t0=$SECONDS
    log_cmd kill -TERM "$SERVER_PID"
    kill -TERM "$SERVER_PID"
    exited_within "$SERVER_PID" 5 2>/dev/null ||
        fail "$(printf 'after SIGTERM the server was still running 5 s later, waiting for a download that takes 5 minutes at the rate the client reads.\nA drain must be bounded (as lesson 14 does): let answers in flight finish for a while (here -t, 1 s), then cut\nthe connections that are left with shutdown(), and exit 0.')"
    local st=0
    wait "$SERVER_PID" 2>/dev/null || st=$?
    ((st == 0)) || fail "after SIGTERM, with a download cut short, expected exit 0, got $st"
}

@test "-h prints usage and exits 0; no -d or an unknown option is 'usage: ...' and exit 2; a missing DIR is one line and exit 1" {
    run_prog static_server -h
    assert_status 0
    assert_output --partial "usage: static_server"
    run_prog static_server -p 0
    assert_status 2
    [[ $stderr == usage:* ]] || fail "without -d: expected 'usage: ...' on stderr, got: $stderr"
    run_prog static_server -d "$SITE" --bogus
    assert_status 2
    [[ $stderr == usage:* ]] || fail "with --bogus: expected 'usage: ...' on stderr, got: $stderr"
    run_prog static_server -p 0 -d "$T/no-such-dir"
    assert_status 1
    assert_stderr_line "static_server: $T/no-such-dir: No such file or directory"
}
