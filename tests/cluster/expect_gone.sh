#!/bin/sh
# Usage: [EXPECT_STATUS=N] expect_gone.sh PIDFILE SECONDS COMMAND...
# Runs COMMAND (which writes the pids of every process of the job to
# PIDFILE) under a limit of SECONDS, and passes when it ended by itself
# (any status but a timeout: a hang fails) and no process named in PIDFILE
# is still running 10 s later. The processes left are killed and named.
# With EXPECT_STATUS, the job must also end with that status.
pidfile=$1
limit=$2
shift 2
rm -f "$pidfile"
t0=$(date +%s)
timeout -k 5 "$limit" "$@"
rc=$?
t1=$(date +%s)
echo "expect_gone: the job ended with status $rc"
if [ $rc -eq 77 ]; then
    echo "expect_gone: SKIPPED (the job said why)"
    exit 77
fi
# 124: timeout's TERM; 137: its KILL, or a launcher that exits 128+9
# because a rank was killed (Open MPI): told apart by the time taken.
if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ $((t1 - t0)) -ge "$limit" ]; }; then
    echo "expect_gone: FAILED: the job hung (killed after $limit s)"
    exit 1
fi
if [ -n "${EXPECT_STATUS:-}" ] && [ $rc -ne "$EXPECT_STATUS" ]; then
    echo "expect_gone: FAILED: status $rc, want $EXPECT_STATUS"
    exit 1
fi
if [ ! -s "$pidfile" ]; then
    echo "expect_gone: FAILED: no pids in $pidfile"
    exit 1
fi
left=""
i=0
while [ $i -lt 100 ]; do
    left=""
    for p in $(cat "$pidfile"); do
        # a zombie is gone too: only its parent has not reaped it yet
        if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' /proc/"$p"/status 2>/dev/null; then
            left="$left $p"
        fi
    done
    [ -z "$left" ] && break
    sleep 0.1
    i=$((i + 1))
done
rm -f "$pidfile"
if [ -n "$left" ]; then
    echo "expect_gone: FAILED: processes left running:$left"
    for p in $left; do kill -9 "$p" 2>/dev/null; done
    exit 1
fi
echo "expect_gone: no process left"
exit 0
