#!/usr/bin/env bash
# Runs every example in BUILD_DIR/examples and checks its output.
#
# Usage: examples/run_all.sh BUILD_DIR
#
# For each example: print "== name ==", run it under a 30 s timeout, show
# its output, then check that it exited 0, wrote nothing to stderr, and
# printed the expected lines. Exits non-zero if any example failed.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
bindir=$1/examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout
err=$tmp/stderr

failures=0
ok=1      # cleared by any failed check of the current example
missing=0 # set when the current example's binary is missing: skip its checks

fail() {
    echo "FAIL: $*"
    ok=0
}

# run NAME: runs the example, capturing stdout in $out and stderr in $err.
run() {
    echo "== $1 =="
    ok=1
    missing=0
    if [ ! -x "$bindir/$1" ]; then
        fail "$bindir/$1 not found (build first)"
        missing=1
        return
    fi
    # -k 5: SIGKILL if SIGTERM is not enough. timeout(1) signals its whole
    # process group, so child processes left behind are stopped too.
    timeout -k 5 30 "$bindir/$1" >"$out" 2>"$err"
    local rc=$?
    cat "$out"
    if [ -s "$err" ]; then
        sed 's/^/stderr: /' "$err"
        fail "$1 wrote to stderr"
    fi
    if [ $rc -eq 124 ]; then
        fail "$1 timed out after 30 s"
    elif [ $rc -ne 0 ]; then
        fail "$1 exited with status $rc"
    fi
}

# expect_count N: the output has exactly N lines (catches duplicated output).
expect_count() {
    [ $missing -eq 0 ] || return
    local n
    n=$(wc -l <"$out")
    [ "$n" -eq "$1" ] || fail "expected $1 lines of output, got $n"
}

# expect LINE...: each LINE appears in the output exactly once.
expect() {
    [ $missing -eq 0 ] || return
    local line n
    for line in "$@"; do
        n=$(grep -Fxc -- "$line" "$out")
        [ "$n" -eq 1 ] || fail "expected the line '$line' once, found it $n times"
    done
}

# expect_order TEXT LINE...: the lines containing TEXT are exactly
# LINE... in this order.
expect_order() {
    [ $missing -eq 0 ] || return
    local text=$1
    shift
    if ! diff <(grep -F -- "$text" "$out") <(printf '%s\n' "$@") >/dev/null; then
        fail "lines containing '$text' are not, in order: $*"
    fi
}

# expect_regex RE: some whole line of the output matches the extended regex RE.
expect_regex() {
    [ $missing -eq 0 ] || return
    grep -Eqx -- "$1" "$out" || fail "expected a line matching '$1'"
}

# finish NAME: records the verdict for the current example.
finish() {
    if [ $ok -eq 1 ]; then
        echo "-- $1: ok"
    else
        echo "-- $1: FAILED"
        failures=$((failures + 1))
    fi
}

run process_workers
expect_count 10
for i in 0 1 2 3 4; do
    expect "Worker $i starting" "Worker $i finished"
done
finish process_workers

run isolated_globals
expect_count 2
expect "Result(in process p1): [1, 4, 9, 16]" "Result(in main program): []"
expect_order "Result(in " "Result(in process p1): [1, 4, 9, 16]" "Result(in main program): []"
finish isolated_globals

run pipe_sender_receiver
expect_count 7
expect_order "Sent the message: " \
    "Sent the message: hello" "Sent the message: hey" \
    "Sent the message: hru?" "Sent the message: END"
expect_order "Received the message: " \
    "Received the message: hello" "Received the message: hey" \
    "Received the message: hru?"
finish pipe_sender_receiver

run square_numbers
expect_count 1
expect_regex '[0-9]+ processes finished'
finish square_numbers

if [ $failures -ne 0 ]; then
    echo "$failures example(s) failed"
    exit 1
fi
echo "all examples passed"
