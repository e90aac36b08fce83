#!/bin/sh
# Usage: [FAULT_AT=K] [FAULT_SIGNAL=STOP [FAULT_CONT_AFTER=S]] [EXPECT_OK=1]
#        fault_kill.sh PIDFILE PROGFILE SECONDS COMMAND...
# The fault suite's rule for the cluster: runs COMMAND (a job whose rank 0
# writes the job's pids to PIDFILE, rank 0's first, then the worker ranks',
# and the count of results it has acknowledged to PROGFILE) under
# expect_gone.sh, and kills worker rank 1 with SIGKILL from outside once
# that count reaches K (FAULT_AT, or chosen at random in 5..150). Prints
# "fault_kill: PASSED" when the kill came, the job ended by itself and no
# process of it is left (expect_gone.sh) and, with EXPECT_OK=1 (a launcher
# that leaves the job running), rank 0 said "test_cluster_fault: ok".
# FAULT_SIGNAL=STOP freezes rank 1 instead (SIGSTOP) and continues it S
# seconds later (3 by default): MPICH's launcher ends the whole job when a
# rank is killed by a signal, even with -disable-auto-cleanup, so a rank
# that rank 0 outlives is a frozen one, which the heartbeat takes for dead
# (and which, continued, exits by itself).
pidfile=$1
progfile=$2
limit=$3
shift 3
here=$(dirname "$0")
at=${FAULT_AT:-$(($(od -An -N2 -tu2 /dev/urandom) % 146 + 5))}
out=$(mktemp)
mark=$(mktemp)
rm -f "$pidfile" "$progfile" "$mark"
(
    i=0
    while [ $i -lt $((limit * 100)) ]; do
        p=$(tr -d ' \n' 2>/dev/null <"$progfile")
        case "$p" in '' | *[!0-9]*) p=0 ;; esac
        if [ "$p" -ge "$at" ] && [ -s "$pidfile" ]; then
            victim=$(sed -n 2p "$pidfile")
            if [ "${FAULT_SIGNAL:-KILL}" = STOP ]; then
                kill -STOP "$victim" && : >"$mark"
                echo "fault_kill: rank 1 (pid $victim) frozen at progress $p (chosen: $at)"
                sleep "${FAULT_CONT_AFTER:-3}"
                kill -CONT "$victim"
                exit 0
            fi
            kill -9 "$victim" && : >"$mark"
            echo "fault_kill: rank 1 (pid $victim) killed at progress $p (chosen: $at)"
            exit 0
        fi
        sleep 0.01
        i=$((i + 1))
    done
) &
killer=$!
sh "$here/expect_gone.sh" "$pidfile" "$limit" "$@" >"$out" 2>&1
rc=$?
kill "$killer" 2>/dev/null
wait "$killer" 2>/dev/null
cat "$out"
verdict=PASSED
if [ ! -e "$mark" ]; then
    verdict="FAILED: no kill (progress never reached $at)"
elif [ $rc -ne 0 ]; then
    verdict="FAILED: expect_gone said so (status $rc)"
elif [ "${EXPECT_OK:-0}" = 1 ] && ! grep -q '^test_cluster_fault: ok' "$out"; then
    verdict="FAILED: rank 0 did not say ok"
fi
rm -f "$out" "$mark" "$progfile"
echo "fault_kill: $verdict"
[ "$verdict" = PASSED ]
