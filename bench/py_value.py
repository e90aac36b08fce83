#!/usr/bin/env python3
"""Row py.value.locked_increment.2proc: two processes increment a
Value('i') under its get_lock(), ops/s (higher is better).

Usage: python3 bench/py_value.py stdlib|mproc. Runs the same program with
Python's multiprocessing or with mproc (`import mproc as multiprocessing`:
the build tree's package, PYTHONPATH=build/python, else ../build/python
beside this file) and prints one number, as py_anchor.py's counter row
does (fork children pinned to different CPUs, n steered so that a run
lasts a fixed time, best of a few runs; BENCH_QUICK=1 shortens it)."""
import importlib
import math
import os
import sys
import time

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
CPUS = sorted(os.sched_getaffinity(0))


def module(which):
    """multiprocessing or mproc, by the command line."""
    if which == "stdlib":
        return importlib.import_module("multiprocessing")
    if which != "mproc":
        raise SystemExit(f"usage: {sys.argv[0]} stdlib|mproc")
    try:
        return importlib.import_module("mproc")
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, os.path.join(here, "..", "build", "python"))
        return importlib.import_module("mproc")


def best_per_op(fn):
    """Best seconds per op (as py_anchor.py and bench_util.c)."""
    target = 0.02 if QUICK else 0.2
    reps = 3 if QUICK else 5
    best, n, done = math.inf, 1, 0
    while done < reps:
        t = fn(n)
        if t >= target / 2:
            done += 1
            best = min(best, t / n)
        if t < target / 2 or t > 2 * target:
            grow = min(target / t, 100) if t > 0 else 100
            n = max(1, min(10**9, int(n * grow)))
    return best


def incrementer(v, n, gate, ends, who):
    if len(CPUS) >= 2:
        os.sched_setaffinity(0, {CPUS[who % len(CPUS)]})
    gate.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    ends[who] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes


def counter(mp):
    def run(n):
        """n increments in all; the clock runs from the gate opening until
        the last child is done (forking stays off the clock)."""
        ctx = mp.get_context("fork")
        v = ctx.Value("i")  # its lock is an RLock, Python's default
        gate = ctx.Barrier(3)
        ends = ctx.Array("d", 2, lock=False)
        ps = [ctx.Process(target=incrementer,
                          args=(v, n // 2 + (who < n % 2), gate, ends, who))
              for who in range(2)]
        for p in ps:
            p.start()
        gate.wait()
        t0 = time.perf_counter()
        for p in ps:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"child exit code {p.exitcode}")
        if v.value != n:
            raise RuntimeError(f"{v.value} increments, {n} expected")
        return max(ends) - t0
    return run


def main():
    if len(sys.argv) not in (2, 3):  # make bench adds the row's name
        print(f"usage: {sys.argv[0]} stdlib|mproc [py.value.locked_increment.2proc]",
              file=sys.stderr)
        return 2
    mp = module(sys.argv[1])
    print(f"{1 / best_per_op(counter(mp)):.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
