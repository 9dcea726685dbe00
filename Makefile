# sockets-lab: the one entry point. `make help` lists the targets.
#
# Every program is one C file: lessons/NN-topic/PROG.c (your work) and
# solutions/NN-topic/PROG.c build to build/lessons/NN-topic/PROG and
# build/solutions/NN-topic/PROG. Nothing is built outside build/.

CC      ?= cc
BUILD   ?= build
CSTD     = -std=c11 -D_POSIX_C_SOURCE=200809L
WARN     = -Wall -Wextra -Wpedantic $(if $(WERROR),-Werror)
comma   := ,
SANITIZE = $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(SANITIZE) -pthread
LDLIBS  += -pthread

LESSON_SRCS   := $(sort $(wildcard lessons/*/*.c))
SOLUTION_SRCS := $(sort $(wildcard solutions/*/*.c))
LESSON_BINS   := $(patsubst %.c,$(BUILD)/%,$(LESSON_SRCS))
SOLUTION_BINS := $(patsubst %.c,$(BUILD)/%,$(SOLUTION_SRCS))
PEER          := build/support/peer
SHORTIO       := $(if $(filter Linux,$(shell uname -s)),build/support/shortio.so)

# make check LESSON=07 (or LESSON=7) grades only lesson 07, and builds
# only its programs.
LESSON  ?=
LESSON_ID := $(if $(filter 1 2 3 4 5 6 7 8 9,$(LESSON)),0$(LESSON),$(LESSON))
CHECKED_BINS := $(if $(LESSON_ID),$(filter $(BUILD)/lessons/$(LESSON_ID)%,$(LESSON_BINS)),$(LESSON_BINS))
JOBS    ?= 3
GRADE    = tests/support/grade -j $(JOBS) $(if $(LESSON_ID),-l $(LESSON_ID))

.PHONY: all lessons solutions support check check-solutions test bench deps clean help \
        progress hint watch reset handout classroom need-solutions fuzz clang-starters \
        portable-solutions

all: lessons solutions support $(BUILD)/compile_commands.json

lessons: $(LESSON_BINS)
solutions: $(SOLUTION_BINS)
support: $(PEER) $(SHORTIO)

# The old binary goes first: a lesson that no longer compiles must not be
# graded on the program it was before your last edit.
$(BUILD)/%: %.c
	@mkdir -p $(@D)
	@rm -f $@
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

# The test peer is test equipment, not student code: always the plain build.
$(PEER): tests/support/peer.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) -Wall -Wextra -Wpedantic -O2 -g -o $@ $<

# Test equipment too: preloaded into a lesson program to make its socket
# writes short (tests/support/shortio.bash). Linux only.
build/support/shortio.so: tests/support/shortio.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -O2 -shared -fPIC -o $@ $< -ldl

# Grading keeps going past a lesson that does not compile: its tests then
# fail with "not built", and every other lesson is still graded.
check:
	@$(MAKE) -s --no-print-directory -k $(CHECKED_BINS) support || true
	@$(GRADE) -r build/lessons

check-solutions: need-solutions
	@$(MAKE) -s --no-print-directory solutions support
	@$(GRADE) -r build/solutions

# The project's own test, run by .ci/run: strict warnings with gcc and
# clang, every solution passes every test (plain and sanitized builds),
# every starter fails at least one test of its lesson.
test: need-solutions
	@$(MAKE) --no-print-directory -j2 support lessons solutions $(FUZZER) BUILD=build/gcc CC=gcc WERROR=1
	@$(MAKE) --no-print-directory -j2 solutions clang-starters BUILD=build/asan CC=clang WERROR=1 SAN=1
	@$(MAKE) --no-print-directory -j2 portable-solutions BUILD=build/poll CC=clang WERROR=1 SAN=1 CFLAGS="$(CFLAGS) -DUSE_POLL"
	@tests/support/selftest

# 14 and 15 use epoll and sendfile on Linux; -DUSE_POLL builds the poll()
# and pread+send path that macOS runs, so make test grades it here too.
portable-solutions: $(filter $(BUILD)/solutions/14-% $(BUILD)/solutions/15-%,$(SOLUTION_BINS))

# Speed is a benchmark, not a test: solutions against real peers, one run.
bench: need-solutions
	@tests/support/deps --bench
	@$(MAKE) -s --no-print-directory solutions support
	@bench/run

### fuzzing lesson 14's request parser (clang's libFuzzer) ###

FUZZ_SECONDS ?= 60
FUZZER := build/fuzz/fuzz_request
FUZZ_FLAGS = $(CSTD) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(FUZZER): tests/fuzz/fuzz_request.c solutions/14-event-server/http_server.c
	@mkdir -p $(@D)/corpus
	clang $(FUZZ_FLAGS) -o $@ $<

# New inputs go to build/fuzz/corpus; the seeds in tests/fuzz/corpus stay
# as they are. A crash is saved as build/fuzz/crash-*: copy it into
# tests/fuzz/corpus/ and make test replays it from then on.
fuzz: need-solutions $(FUZZER)
	$(FUZZER) -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus tests/fuzz/corpus

### working through the lessons ###

# Which lessons are done and which is next, from a fresh test run.
progress:
	@$(MAKE) -s --no-print-directory -k $(LESSON_BINS) support || true
	@$(GRADE) -r build/lessons -m progress

# The next hint of a lesson (LESSON=NN; default: the next unfinished one).
hint:
	@tests/support/hint "$(LESSON_ID)" $(HINT)

# Rebuild and re-grade a lesson on every save.
watch:
	@tests/support/watch "$(LESSON_ID)"

# Put a lesson's starter back (asks first; keeps yours as PROG.c.bak).
reset:
	@tests/support/reset "$(LESSON_ID)" $(if $(YES),-y)

### for instructors ###

# The student tarball: no solutions/, with the Classroom workflow.
handout:
	@tests/support/handout

# .github/workflows/classroom.yml for a GitHub Classroom template repo.
classroom:
	@tests/support/classroom

# For clangd and other editors: how every file is compiled.
$(BUILD)/compile_commands.json: Makefile $(LESSON_SRCS) $(SOLUTION_SRCS) tests/support/peer.c
	@mkdir -p $(@D)
	@{ printf '['; sep=''; for f in $(LESSON_SRCS) $(SOLUTION_SRCS) tests/support/peer.c; do \
	    printf '%s\n  {"directory": "%s", "file": "%s", "command": "%s %s -c %s"}' "$$sep" \
	        "$(CURDIR)" "$$f" "$(CC)" "$(ALL_CFLAGS)" "$$f"; sep=','; done; printf '\n]\n'; } >$@

need-solutions:
	@test -d solutions || { echo "this is the student handout: solutions/ is not in it; make check grades your lessons" >&2; exit 2; }

# clang must compile every starter without a warning too; only solutions
# run under the sanitizers, so the starters need no sanitized binary.
clang-starters: $(patsubst %.c,$(BUILD)/%.syntax,$(LESSON_SRCS))
$(BUILD)/lessons/%.syntax: lessons/%.c
	@mkdir -p $(@D)
	clang $(CSTD) $(WARN) -fsyntax-only $< && touch $@

deps:
	@tests/support/deps --bench

clean:
	rm -rf build

help:
	@echo "make                  build every lesson, solution and the test peer into build/"
	@echo "make check            grade your work in lessons/ (LESSON=07 for one lesson)"
	@echo "make check-solutions  the same grading, run against solutions/"
	@echo "make test             the project's own test (what CI runs)"
	@echo "make bench            benchmarks: solutions against python, curl, nginx"
	@echo "make progress         which lessons are done, and the next one"
	@echo "make hint LESSON=NN   the next hint for a lesson (HINT=N shows hint N again)"
	@echo "make watch LESSON=NN  re-grade a lesson every time you save"
	@echo "make reset LESSON=NN  put a lesson's starter back (asks first; YES=1 does not)"
	@echo "make handout          the student tarball, without solutions/"
	@echo "make fuzz             fuzz lesson 14's request parser (FUZZ_SECONDS=60)"
	@echo "make deps             install bats-core and the tools the tests use"
	@echo "make clean            remove build/"
