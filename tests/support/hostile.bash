# tests/support/hostile.bash - the hostile-input corpus for HTTP servers.
#
#     load support/hostile
#     start_server hello_server
#     assert_survives_hostile_corpus /            # a path that gets 200
#     assert_survives_hostile_corpus / "$SECRET"  # ...and never leaks SECRET
#
# Runs every case of tests/hostile/cases.txt against the server that
# start_server started (malformed request lines, bad Host, oversize parts,
# NUL and control bytes, bad Content-Length, smuggling, obs-fold, bare LF,
# requests that stop half-way) and fails with the list of cases whose
# answer was wrong, or that hung or killed the server. One case again:
#     python3 tests/support/hostile.py PORT --only NAME

assert_survives_hostile_corpus() {
    local path=${1:-/} secret=${2:-}
    local args=("$REPO_ROOT/tests/support/hostile.py" "$SERVER_PORT" --path "$path" --pid "$SERVER_PID")
    [[ -n $secret ]] && args+=(--secret "$secret")
    run_limited 90 python3 "${args[@]}"
    if [[ $status != 0 ]]; then
        fail "$(printf 'the server mishandled hostile requests (the rules: DESIGN.md, "HTTP rules"; the cases: tests/hostile/cases.txt):\n%s\nserver stderr:\n%s' \
            "$(printf '%s\n' "$output" | grep -v '^ok ' | sed 's/^/    /')" "$(indent "$(tail -5 "$T/$SERVER_NAME.err")")")"
    fi
}
