"""What the py.* rows' programs share (BENCH.md, rows py.*): each is

    python3 bench/py_X.py stdlib|mproc ROW

and runs the same program with Python's multiprocessing (stdlib) or with
the mproc package (mproc; PYTHONPATH=BUILD_DIR/python), printing one
figure in the row's unit (n steered so that one run lasts a fixed time,
best of a few runs, as bench_mproc and py_anchor.py do). Exit status 2
(and the reason on stderr) for an unknown row, or when the module or the
feature the row uses does not import. BENCH_QUICK=1 shortens every run.

This module imports no multiprocessing: a spawn child re-imports the
program (as __mp_main__) and, through it, only this."""
import importlib
import math
import os
import sys

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
CPUS = sorted(os.sched_getaffinity(0))  # allowed at start
UNSUPPORTED = 2

MIB = 1 << 20
ms = lambda per: per * 1e3  # noqa: E731
us = lambda per: per * 1e6  # noqa: E731
ns = lambda per: per * 1e9  # noqa: E731
per_s = lambda per: 1 / per  # noqa: E731
mb_s = lambda per: MIB / 1e6 / per  # noqa: E731


def pin_apart(who):
    """The who-th allowed CPU, if there are two (bench_pin_apart's rule).
    Pins the calling thread only (Linux affinity is per thread)."""
    if len(CPUS) >= 2:
        os.sched_setaffinity(0, {CPUS[who % len(CPUS)]})


def unpin():
    """Every CPU allowed at start again (bench_unpin)."""
    os.sched_setaffinity(0, CPUS)


def best_per_op(fn, n0=1):
    """Best seconds per op of fn(n) (seconds for n ops); mirrors
    best_per_op in bench_util.c and py_anchor.py. n0: the first n (a
    row whose runs have a fixed cost on the clock, such as waking nine
    processes, would otherwise count runs of a few ops)."""
    target = 0.02 if QUICK else 0.2
    reps = 3 if QUICK else 5
    best, n, done = math.inf, max(1, n0 // 10 if QUICK else n0), 0
    while done < reps:
        t = fn(n)
        if t >= target / 2:
            done += 1
            best = min(best, t / n)
        if t < target / 2 or t > 2 * target:
            grow = min(target / t, 100) if t > 0 else 100
            n = max(1, min(10**9, int(n * grow)))
    return best


def unsupported(why):
    print(f"{os.path.basename(sys.argv[0])}: {why}", file=sys.stderr)
    sys.exit(UNSUPPORTED)


def main(rows):
    """rows: name -> (make(mp) returning run(n) -> seconds, figure from
    seconds per op[, the first n, see best_per_op]). Picks the module and the row from argv, prints the
    figure; returns the exit status."""
    if len(sys.argv) != 3 or sys.argv[1] not in ("stdlib", "mproc") or sys.argv[2] not in rows:
        print(f"usage: {sys.argv[0]} stdlib|mproc ROW; rows: {', '.join(rows)}",
              file=sys.stderr)
        return UNSUPPORTED
    name = "multiprocessing" if sys.argv[1] == "stdlib" else "mproc"
    try:
        mp = importlib.import_module(name)
    except ImportError as e:
        unsupported(f"cannot import {name}: {e}")
    make, figure, *n0 = rows[sys.argv[2]]
    try:
        run = make(mp)
    except (AttributeError, ImportError, NotImplementedError) as e:
        unsupported(f"{name} lacks what row {sys.argv[2]} uses: {e}")
    print(f"{figure(best_per_op(run, *n0)):.6g}")
    return 0
