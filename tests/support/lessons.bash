# tests/support/lessons.bash - what the course scripts (grade, hint,
# watch, reset, deps) share. Sourced from the repository's top directory.

# lesson_id ARG: prints ARG with a single digit padded: "7" is lesson 07,
# not every lesson whose number starts with 7.
lesson_id() {
    if [[ $1 =~ ^[0-9]$ ]]; then echo "0$1"; else echo "$1"; fi
}

# find_lesson PROG ARG: sets LESSON_DIR (lessons/NN-topic) and LESSON_NAME
# for the one lesson ARG names, or says why not and exits 2.
find_lesson() {
    local prog=$1 id dirs
    id=$(lesson_id "$2")
    dirs=(lessons/"$id"*/)
    if [[ ! -d ${dirs[0]} || ${#dirs[@]} != 1 ]]; then
        echo "$prog: no single lesson matches '$id'" >&2
        exit 2
    fi
    LESSON_DIR=${dirs[0]%/}
    LESSON_NAME=$(basename "$LESSON_DIR")
}

# next_lesson: prints the first lesson whose last graded run (make check,
# for all lessons or one) was not all green, or nothing if all are green.
# A lesson never graded yet counts as not green.
next_lesson() {
    local dir name
    for dir in lessons/[0-9][0-9]-*/; do
        name=$(basename "$dir")
        if [[ $(cat "build/report/status/$name" 2>/dev/null) != pass ]]; then
            echo "$name"
            return 0
        fi
    done
}

# have_bats_libs: bats can load bats-support and bats-assert. Where both
# are found as NAME/load.bash on BATS_LIB_PATH (Debian's /usr/lib/bats by
# default), no bats is started to ask.
have_bats_libs() {
    local d rc dirs found=0
    IFS=: read -r -a dirs <<<"${BATS_LIB_PATH:-/usr/lib/bats}"
    for d in "${dirs[@]}"; do
        [[ -f $d/bats-support/load.bash ]] && found=$((found | 1))
        [[ -f $d/bats-assert/load.bash ]] && found=$((found | 2))
    done
    ((found == 3)) && return 0
    d=$(mktemp -d)
    printf '%s\n' 'bats_load_library bats-support' 'bats_load_library bats-assert' '@test "libs" { assert true; }' >"$d/libs.bats"
    bats "$d/libs.bats" >/dev/null 2>&1
    rc=$?
    rm -rf "$d"
    return $rc
}
