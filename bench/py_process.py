#!/usr/bin/env python3
"""Rows py.process.start_join.spawn and py.lock.uncontended (BENCH.md):
one program, run with Python's multiprocessing or with mproc:

    python3 bench/py_process.py stdlib|mproc ROW

- py.process.start_join.spawn: Process(target=noop) under 'spawn',
  start + join, checked exit code; ms per process. The spawned
  interpreter re-imports this file as __mp_main__ (it imports only
  py_harness, no multiprocessing of its own).
- py.lock.uncontended: Lock() acquire + release in one process; ns.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_harness import main, ms, ns  # noqa: E402


def noop():
    return None


def start_join(method):
    def make(mp):
        ctx = mp.get_context(method)

        def run(n):
            t0 = time.perf_counter()
            for _ in range(n):
                p = ctx.Process(target=noop)
                p.start()
                p.join()
                if p.exitcode != 0:
                    raise RuntimeError(f"child exit code {p.exitcode}")
            return time.perf_counter() - t0

        return run

    return make


def lock_uncontended(mp):
    lock = mp.Lock()

    def run(n):
        t0 = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        return time.perf_counter() - t0

    return run


ROWS = {
    "py.process.start_join.spawn": (start_join("spawn"), ms),
    "py.lock.uncontended": (lock_uncontended, ns),
}

if __name__ == "__main__":
    sys.exit(main(ROWS))
