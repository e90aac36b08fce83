#!/usr/bin/env python3
"""Row py.lock.uncontended: Lock acquire + release in one process, ns
(lower is better).

Usage: python3 bench/py_lock.py stdlib|mproc (the module as in
py_value.py); prints one number, as py_anchor.py's lock.uncontended row."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_value import best_per_op, module  # noqa: E402


def lock_uncontended(mp):
    lock = mp.get_context("fork").Lock()

    def run(n):
        t0 = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        return time.perf_counter() - t0
    return run


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} stdlib|mproc", file=sys.stderr)
        return 2
    mp = module(sys.argv[1])
    print(f"{best_per_op(lock_uncontended(mp)) * 1e9:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
