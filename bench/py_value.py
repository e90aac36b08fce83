#!/usr/bin/env python3
"""Row py.value.locked_increment.2proc: two processes increment a
Value('i') under its get_lock(), ops/s (higher is better).

Usage: python3 bench/py_value.py stdlib|mproc py.value.locked_increment.2proc
(py_harness.py: the module by the first argument, mproc from
PYTHONPATH=build/python). Prints one number, as py_anchor.py's counter row
does (fork children pinned to different CPUs, n steered so that a run
lasts a fixed time, best of a few runs; BENCH_QUICK=1 shortens it)."""
import sys
import time

from py_harness import main, per_s, pin_apart


def incrementer(v, n, gate, ends, who):
    pin_apart(who)
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


ROWS = {"py.value.locked_increment.2proc": (counter, per_s)}

if __name__ == "__main__":
    sys.exit(main(ROWS))
