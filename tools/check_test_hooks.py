#!/usr/bin/env python3
"""Checks which libraries carry the test hooks (docs/testing.md).

The library's test hooks are compiled only with MPROC_TESTING (a test
build: CMake's BUILD_TESTING on, the default). A release build
(-DBUILD_TESTING=OFF) must carry none of them; a test build must carry all
of them, which also keeps the list below true. Read with nm from the
libraries' symbol tables (hidden symbols included); a library without a
symbol table (stripped) is an error rather than a pass.

Usage: check_test_hooks.py --absent|--present LIBRARY...

Exit status 0 when every library is as wanted, 1 with one line per finding,
2 on bad usage.
"""
import subprocess
import sys

HOOKS = [
    "mproc__cond_crash_at",             # sync/cond.h: die mid waiter-list update
    "mproc__cond_n_waiters",            # sync/cond.h: the waiter list's length
    "mproc__event_crash_before_wake",   # sync/sync.h: die between set and wake
    "mproc__queue_crash_at",            # queue/queue.h: die between commit and wake
    "mproc__forkserver_die_after_read", # process/spawn.h: the forkserver dies mid request
    "mproc__pool_stage_limit",          # pool/pool.h: refuse large stage blocks
    "mproc__shm_tracker_stats",         # shm/tracker.h: records by state
    "mproc__shm_tracker_pid",           # shm/tracker.h: the tracker's pid
    "mproc__mgr_handle_request",        # manager/server.h: a request without a connection
    "mproc__mgr_handle_reset",          # manager/server.h: (the fuzz target)
]
# Always defined: its absence means nm saw no symbol table.
ALWAYS = "mproc__setting"


def defined_names(lib):
    out = subprocess.run(["nm", "--defined-only", lib], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{lib}: nm failed: {out.stderr.strip()}")
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2])
    return names


def main(argv):
    if len(argv) < 3 or argv[1] not in ("--absent", "--present"):
        print("usage: check_test_hooks.py --absent|--present LIBRARY...", file=sys.stderr)
        return 2
    want_present = argv[1] == "--present"
    problems = []
    for lib in argv[2:]:
        try:
            names = defined_names(lib)
        except (OSError, RuntimeError) as e:
            problems.append(str(e))
            continue
        if ALWAYS not in names:
            problems.append(f"{lib}: no symbol table to check ({ALWAYS} not found)")
            continue
        for hook in HOOKS:
            if want_present and hook not in names:
                problems.append(f"{lib}: test hook {hook} missing (a test build must have it)")
            if not want_present and hook in names:
                problems.append(f"{lib}: test hook {hook} present (MPROC_TESTING is off)")
        if not any(p.startswith(f"{lib}:") for p in problems):
            print(f"{lib}: {len(HOOKS)} test hooks {'present' if want_present else 'absent'}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
