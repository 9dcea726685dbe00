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

# TIME_SCALE stretches every time limit of the tests (helpers.bash reads
# it) and of grade. grade measures it when it is not set.
# The reference: the median time of the workload below on a quiet 2-core
# Debian 12 VM where fork+exec costs ~5 ms (the lab's slow machine): its
# best of 25 runs there, at load average 4, was 61 ms (24 ms of shell
# arithmetic, 37 ms for 4 fork+exec). A faster machine gets 1.
CALIBRATION_REF_MS=60
# calibrate: sets TIME_SCALE (1 to 10, one decimal) and CALIBRATED_MS from
# the median of 3 runs of a fixed CPU + fork workload (~0.2 s in all on a
# quiet machine).
calibrate() {
    local k i x=0 t0 t1 ms=() tp=/bin/true
    [[ -x $tp ]] || tp=/usr/bin/true
    if [[ -z ${EPOCHREALTIME-} || ! -x $tp ]]; then TIME_SCALE=1; return; fi
    for k in 1 2 3; do
        t0=${EPOCHREALTIME//[.,]/}
        for ((i = 0; i < 4000; i++)); do x=$((x + i * i % 7)); done
        for ((i = 0; i < 4; i++)); do "$tp"; done
        t1=${EPOCHREALTIME//[.,]/}
        ms+=($(((t1 - t0) / 1000)))
    done
    local a=${ms[0]} b=${ms[1]} c=${ms[2]} m
    if ((a > b)); then m=$a a=$b b=$m; fi
    if ((b > c)); then b=$c; fi
    if ((a > b)); then b=$a; fi # b is the median
    local tenths=$(((b * 10 + CALIBRATION_REF_MS / 2) / CALIBRATION_REF_MS))
    ((tenths < 15)) && tenths=10 # under 1.5 is noise, not a slow machine
    ((tenths > 100)) && tenths=100
    TIME_SCALE=$((tenths / 10))
    ((tenths % 10)) && TIME_SCALE+=.$((tenths % 10))
    CALIBRATED_MS=$b
}
