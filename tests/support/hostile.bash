# tests/support/hostile.bash - the hostile-input corpus for HTTP servers.
#
#     load support/hostile
#     start_server hello_server
#     assert_survives_hostile_corpus /            # a path that gets 200
#     assert_never_leaks "$SECRET"                # traversal.txt: SECRET is in
#                                                 # ../secret.txt next to DIR
#
# Runs every case of tests/hostile/cases.txt against the server that
# start_server started (malformed request lines, bad Host, oversize parts,
# NUL and control bytes, bad Content-Length, smuggling, obs-fold, bare LF,
# requests that stop half-way) and fails with the list of cases whose
# answer was wrong, or that hung or killed the server. One case again:
#     python3 tests/support/hostile.py PORT --only NAME

assert_survives_hostile_corpus() {
    run_corpus cases.txt --path "${1:-/}"
}

# assert_never_leaks SECRET: runs tests/hostile/traversal.txt (every
# encoding of "../secret.txt" an attacker would try); each must get 400,
# 403 or 404 and no response may contain SECRET.
assert_never_leaks() {
    run_corpus traversal.txt --secret "$1"
}

run_corpus() {
    local corpus=$1
    shift
    run_limited 90 python3 "$REPO_ROOT/tests/support/hostile.py" "$SERVER_PORT" --corpus "$corpus" --pid "$SERVER_PID" "$@"
    if [[ $status != 0 ]]; then
        fail "$(printf 'the server mishandled hostile requests (the rules: DESIGN.md, "HTTP rules"; the cases: tests/hostile/%s):\n%s\nserver stderr:\n%s' \
            "$corpus" "$(printf '%s\n' "$output" | grep -v '^ok ' | sed 's/^/    /')" "$(indent "$(tail -5 "$T/$SERVER_NAME.err")")")"
    fi
}
