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

# The cluster's examples run under the build's MPI launcher (CMake's
# MPIEXEC_EXECUTABLE and MPIEXEC_PREFLAGS), when the cluster library was
# built (MPI found).
mpiexec=""
mpiflags=""
if [ -f "$1/src/cluster/libmproc_cluster.a" ] && [ -f "$1/CMakeCache.txt" ]; then
    mpiexec=$(sed -n 's/^MPIEXEC_EXECUTABLE:[A-Z]*=//p' "$1/CMakeCache.txt")
    mpiflags=$(sed -n 's/^MPIEXEC_PREFLAGS:[A-Z]*=//p' "$1/CMakeCache.txt" | tr ';' ' ')
fi

# run NAME [N]: runs the example (with N, under the MPI launcher with N
# ranks), capturing stdout in $out and stderr in $err.
run() {
    local limit=30 launch=()
    if [ $# -ge 2 ]; then
        echo "== $1 (mpiexec -n $2) =="
        limit=60
        # shellcheck disable=SC2206 # the flags are words
        launch=("$mpiexec" -n "$2" $mpiflags)
    else
        echo "== $1 =="
    fi
    ok=1
    missing=0
    if [ ! -x "$bindir/$1" ]; then
        fail "$bindir/$1 not found (build first)"
        missing=1
        return
    fi
    # -k 5: SIGKILL if SIGTERM is not enough. timeout(1) signals its whole
    # process group, so child processes left behind are stopped too.
    timeout -k 5 "$limit" "${launch[@]}" "$bindir/$1" >"$out" 2>"$err"
    local rc=$?
    cat "$out"
    if [ -s "$err" ]; then
        sed 's/^/stderr: /' "$err"
        fail "$1 wrote to stderr"
    fi
    if [ $rc -eq 124 ]; then
        fail "$1 timed out after $limit s"
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

# expect_exact LINE...: the whole output is exactly LINE..., in this order.
expect_exact() {
    [ $missing -eq 0 ] || return
    if ! diff <(cat "$out") <(printf '%s\n' "$@") >/dev/null; then
        fail "the output is not exactly, in order: $*"
    fi
}

# expect_regex RE: some whole line of the output matches the extended regex RE.
expect_regex() {
    [ $missing -eq 0 ] || return
    grep -Eqx -- "$1" "$out" || fail "expected a line matching '$1'"
}

# expect_order_re RE LINE...: the whole lines matching the extended regex
# RE are exactly LINE... in this order (other lines may come between).
expect_order_re() {
    [ $missing -eq 0 ] || return
    local re=$1
    shift
    if ! diff <(grep -Ex -- "$re" "$out") <(printf '%s\n' "$@") >/dev/null; then
        fail "lines matching '$re' are not, in order: $*"
    fi
}

# expect_last LINE: the last line of the output is LINE.
expect_last() {
    [ $missing -eq 0 ] || return
    [ "$(tail -n 1 "$out")" = "$1" ] || fail "expected the last line to be '$1'"
}

# normalize SED_SCRIPT: rewrites the captured output with sed -E (after it
# was shown), to replace what may vary from run to run (e.g. which worker
# took an item) with a fixed placeholder before the checks.
normalize() {
    [ $missing -eq 0 ] || return
    sed -E -i -- "$1" "$out"
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

run shared_counter_race
expect_count 5
expect "Value at beginning: 0" "Array at beginning: [0.0, 100.0, 200.0]" "end main"
# Updates are lost by design, so the end values vary from run to run; they
# are usually below 200 and [200.0, 300.0, 400.0], but a lucky run that
# loses nothing is not a failure. Parse them, check the bounds, then check
# the whole output in order with the values found.
if [ $missing -eq 0 ]; then
    v=$(sed -n 's/^Value at end: \([0-9][0-9]*\)$/\1/p' "$out")
    arr=$(sed -n 's/^Array at end: \[\([0-9]*\)\.0, \([0-9]*\)\.0, \([0-9]*\)\.0\]$/\1 \2 \3/p' "$out")
    if ! [[ $v =~ ^[0-9]+$ ]] || [ "$v" -gt 200 ]; then
        fail "expected one line 'Value at end: N' with N <= 200"
    elif [ -z "$arr" ] || [ "$(wc -l <<<"$arr")" -ne 1 ]; then
        fail "expected one line 'Array at end: [a.0, b.0, c.0]'"
    else
        read -r a0 a1 a2 <<<"$arr"
        if [ "$a0" -gt 200 ] || [ "$a1" -gt 300 ] || [ "$a2" -gt 400 ]; then
            fail "expected the array at end to be <= [200.0, 300.0, 400.0]"
        fi
        expect_exact "Value at beginning: 0" "Array at beginning: [0.0, 100.0, 200.0]" \
            "Value at end: $v" "Array at end: [$a0.0, $a1.0, $a2.0]" "end main"
    fi
fi
finish shared_counter_race

run shared_counter_lock
expect_count 5
expect_exact "Value at beginning: 0" "Array at beginning: [0.0, 100.0, 200.0]" \
    "Value at end: 200" "Array at end: [200.0, 300.0, 400.0]" "end main"
finish shared_counter_lock

run shared_square_list
expect_count 4
expect_exact "Result(in process p1): [1, 4, 9, 16]" "Sum of squares(in process p1): 30" \
    "Result(in main program): [1, 4, 9, 16]" "Sum of squares(in main program): 30"
finish shared_square_list

run lock_workers
expect_count 5
for i in 0 1 2 3 4; do
    expect "Worker $i is accessing shared resource"
done
finish lock_workers

run sync_primitives
expect_exact "Barrier: all 3 workers started" \
    "Worker 0 passed the barrier" "Worker 1 passed the barrier" "Worker 2 passed the barrier" \
    "Barrier arrival indices: [0, 1, 2]" \
    "Consumer got item 1" "Consumer got item 2" "Consumer got item 3" \
    "Consumer got item 4" "Consumer got item 5" \
    "Condition: 5 items handed over in order" \
    "Stoppers running: 2" "Parent: setting the stop event" \
    "Stopper 0 saw the stop event" "Stopper 1 saw the stop event" "end main"
finish sync_primitives

# Seed 000, Example 1: any of the three workers may take any item, and the
# lines come in any order, so the worker's name is replaced before checking
# that each item was printed once, with its 'status'.
run queue_add_status
expect_count 3
normalize 's/^Process Worker-[0-2]: /Process Worker-N: /'
expect "Process Worker-N: processed {'id': 1, 'data': 'first data item', 'status': 'processed'}" \
    "Process Worker-N: processed {'id': 2, 'data': 'second data item', 'status': 'processed'}" \
    "Process Worker-N: processed {'id': 3, 'data': 'third data item', 'status': 'processed'}"
finish queue_add_status

# Seed 000, Example 2: the same, with 'data' doubled.
run queue_double_data
expect_count 3
normalize 's/^Process Worker-[0-2]: /Process Worker-N: /'
expect "Process Worker-N: processed {'id': 1, 'data': 'first data itemfirst data item', 'status': 'processed'}" \
    "Process Worker-N: processed {'id': 2, 'data': 'second data itemsecond data item', 'status': 'processed'}" \
    "Process Worker-N: processed {'id': 3, 'data': 'third data itemthird data item', 'status': 'processed'}"
finish queue_double_data

# Seed 000, Example 3: as Example 2, plus the running total, which must be
# 1, 2 and 3 once each (in any order of lines), and the final total last.
run queue_count_processed
expect_count 4
if [ $missing -eq 0 ]; then
    totals=$(sed -n 's/^Process .*, Total processed: \([0-9]*\)$/\1/p' "$out" | sort -n | tr '\n' ' ')
    [ "$totals" = "1 2 3 " ] || fail "expected the totals 1, 2 and 3 once each, got: $totals"
fi
normalize 's/^Process Worker-[0-2]: (.*), Total processed: [1-3]$/Process Worker-N: \1, Total processed: K/'
expect "Process Worker-N: processed {'id': 1, 'data': 'first data itemfirst data item', 'status': 'processed'}, Total processed: K" \
    "Process Worker-N: processed {'id': 2, 'data': 'second data itemsecond data item', 'status': 'processed'}, Total processed: K" \
    "Process Worker-N: processed {'id': 3, 'data': 'third data itemthird data item', 'status': 'processed'}, Total processed: K"
expect_last "Total items processed: 3"
finish queue_count_processed

run queue_fifo
expect_exact 1
finish queue_fifo

# Seed 001: each producer's items come in the order it put them, but the
# two producers' items may interleave; "end main" comes last.
run queue_square_negative
expect_count 11
expect_order_re '[0-9]+' 1 4 9 16 25
expect_order_re '-[0-9]+' -1 -2 -3 -4 -5
expect "end main"
expect_last "end main"
finish queue_square_negative

run queue_hello_worker
expect_exact "Received: Hello from worker!"
finish queue_hello_worker

run queue_square_list
expect_exact "Queue elements:" 1 4 9 16 "Queue is now empty!"
finish queue_square_list

run start_method_set
expect_exact "hello"
finish start_method_set

run start_method_context
expect_exact "hello"
finish start_method_context

# Seed 001, "Process Pools": p.map(cube, range(10)), and the apply() form.
run pool_map_cube
expect_exact "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]"
finish pool_map_cube

run pool_apply_cube
expect_exact "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]"
finish pool_apply_cube

# Seed 004, Pool methods: the five imap_unordered lines come in completion
# order, so they are sorted before the whole output is checked.
run pool_methods
if [ $missing -eq 0 ]; then
    { sed -n 1p "$out"; sed -n 2,6p "$out" | sort -t: -k2n; sed -n '7,$p' "$out"; } >"$tmp/sorted"
    mv "$tmp/sorted" "$out"
fi
expect_exact "map: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" \
    "imap_unordered: 0" "imap_unordered: 1" "imap_unordered: 4" \
    "imap_unordered: 9" "imap_unordered: 16" \
    "apply: 49" "ready: False" "get(timeout=0.1): TimeoutError" "get: 64" \
    "ready: True" "successful: True" "ready: True" "successful: False" \
    "get failed: division by zero"
finish pool_methods

# Seed 004, prime checking: the times and speed-ups vary; the counts of
# primes (335 in 10^12 .. 10^12 + 9999) and the labels do not.
run pool_primes
expect_count 6
normalize 's/ in [0-9]+\.[0-9]{2} s$/ in T s/; s/: +[0-9]+\.[0-9]{2}x$/: Kx/; s/ with [0-9]+ workers$/ with W workers/'
expect_exact "Checking 10000 numbers from 1000000000000 with W workers" \
    "Sequential: 335 primes in T s" "Threads:    335 primes in T s" \
    "Processes:  335 primes in T s" "Speed-up with threads: Kx" \
    "Speed-up with processes: Kx"
finish pool_primes

# Seed 004, concurrent.futures: the same ten lines for each executor; the
# four as_completed lines come in completion order (usually 4, 3, 2, 1), so
# each executor's four are sorted before the whole output is checked.
run executor_futures
if [ $missing -eq 0 ]; then
    awk '/^as_completed: /{ buf[n++] = $0; next }
        { if (n) { cmd = "sort"; for (i = 0; i < n; i++) print buf[i] | cmd; close(cmd); n = 0 } print }
        END { if (n) { cmd = "sort"; for (i = 0; i < n; i++) print buf[i] | cmd; close(cmd) } }' \
        "$out" >"$tmp/sorted"
    mv "$tmp/sorted" "$out"
fi
lines=()
for ex in ThreadPoolExecutor ProcessPoolExecutor; do
    lines+=("--- $ex ---" "Task not done yet" "result: 1024" "done: True"
        "callback: result 1024"
        "as_completed: 3 ** 1 = 3" "as_completed: 3 ** 2 = 9"
        "as_completed: 3 ** 3 = 27" "as_completed: 3 ** 4 = 81"
        "exception: division by zero" "cancelled: False")
done
expect_exact "${lines[@]}"
finish executor_futures

# Seed 003, the server process manager: the records list lives in the
# manager; p1 appends ('Jeff', 8), then p2 prints all four records.
run manager_records
expect_exact "New record added!" "" \
    "Name: Sam" "Score: 10" "" "Name: Adam" "Score: 9" "" \
    "Name: Kevin" "Score: 9" "" "Name: Jeff" "Score: 8" ""
finish manager_records

# Seed 000, Example 3 with the count in a manager Value (and a manager
# Lock): checked as queue_count_processed.
run manager_count_processed
expect_count 4
if [ $missing -eq 0 ]; then
    totals=$(sed -n 's/^Process .*, Total processed: \([0-9]*\)$/\1/p' "$out" | sort -n | tr '\n' ' ')
    [ "$totals" = "1 2 3 " ] || fail "expected the totals 1, 2 and 3 once each, got: $totals"
fi
normalize 's/^Process Worker-[0-2]: (.*), Total processed: [1-3]$/Process Worker-N: \1, Total processed: K/'
expect "Process Worker-N: processed {'id': 1, 'data': 'first data itemfirst data item', 'status': 'processed'}, Total processed: K" \
    "Process Worker-N: processed {'id': 2, 'data': 'second data itemsecond data item', 'status': 'processed'}, Total processed: K" \
    "Process Worker-N: processed {'id': 3, 'data': 'third data itemthird data item', 'status': 'processed'}, Total processed: K"
expect_last "Total items processed: 3"
finish manager_count_processed

# Seed 004, customized managers: a registered "Maths" type.
run manager_custom_type
expect_exact 7 56
finish manager_custom_type

# Seed 004, remote managers: a server on a loopback port the kernel picks
# (replaced by PORT before the check), one client puts, the other gets.
run manager_remote_queue
normalize 's/^(Server: listening on 127\.0\.0\.1:)[1-9][0-9]*$/\1PORT/'
expect_exact "Server: listening on 127.0.0.1:PORT" \
    "Client 1: putting 'hello'" "Client 2: got 'hello'"
finish manager_remote_queue

# The cluster's twins of seed 001's cube and seed 004's prime checking:
# rank 0 runs main, the two other ranks are the pool's workers.
if [ -n "$mpiexec" ]; then
    run cluster_map_cube 3
    expect_exact "[0, 1, 8, 27, 64, 125, 216, 343, 512, 729]"
    finish cluster_map_cube

    run cluster_primes 3
    expect_count 6
    normalize 's/ in [0-9]+\.[0-9]{2} s$/ in T s/; s/: +[0-9]+\.[0-9]{2}x$/: Kx/; s/ with [0-9]+ workers$/ with W workers/'
    expect_exact "Checking 10000 numbers from 1000000000000 with W workers" \
        "Sequential: 335 primes in T s" "Threads:    335 primes in T s" \
        "Processes:  335 primes in T s" "Speed-up with threads: Kx" \
        "Speed-up with processes: Kx"
    finish cluster_primes
else
    echo "== cluster examples: not built (no MPI): not run =="
fi

if [ $failures -ne 0 ]; then
    echo "$failures example(s) failed"
    exit 1
fi
echo "all examples passed"
