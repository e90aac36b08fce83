#!/usr/bin/env python3
"""Python anchors: each row's work done with Python 3's multiprocessing.

Usage: python3 py_anchor.py ROW. Prints the figure in the row's unit, the
same way bench_mproc and bench_floor do (n steered so one run lasts a fixed
time, best of a few runs). BENCH_QUICK=1 shortens the run. Exit status 2 for
an unknown row.
"""
import math
import multiprocessing as mp
import os
import sys
import time

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def best_per_op(fn):
    """Best seconds per op; mirrors best_per_op in bench_util.c."""
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


# ---- process.start_join ----------------------------------------------------

def noop():
    return None


def start_join(method):
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


# ---- pipe.throughput: a child sends n messages, the parent receives ---------

def sender(w, r, n, size):
    r.close()
    msg = b"x" * size
    w.send_bytes(b"ready")
    for _ in range(n):
        w.send_bytes(msg)


def throughput(duplex, size):
    ctx = mp.get_context("fork")

    def run(n):
        if duplex:
            r, w = ctx.Pipe()
        else:
            r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=sender, args=(w, r, n, size))
        p.start()
        w.close()
        r.recv_bytes()  # the clock starts once the child runs, the pipe empty
        t0 = time.perf_counter()
        for _ in range(n):
            if len(r.recv_bytes()) != size:
                raise RuntimeError("short message")
        t = time.perf_counter() - t0
        r.close()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"child exit code {p.exitcode}")
        return t

    return run


# ---- pipe.pingpong ----------------------------------------------------------

def echo(b, a):
    a.close()
    while True:
        try:
            m = b.recv_bytes()
        except EOFError:
            return
        b.send_bytes(m)


def pingpong(n):
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b, a))
    p.start()
    b.close()
    m = b"pingpong"
    a.send_bytes(m)
    a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send_bytes(m)
        if len(a.recv_bytes()) != 8:
            raise RuntimeError("short message")
    t = time.perf_counter() - t0
    a.close()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"child exit code {p.exitcode}")
    return t


MIB = 1 << 20
ms = lambda per: per * 1e3  # noqa: E731
us = lambda per: per * 1e6  # noqa: E731
per_s = lambda per: 1 / per  # noqa: E731
mb_s = lambda per: MIB / 1e6 / per  # noqa: E731

# name -> (run(n) returning seconds, figure from seconds per op)
ROWS = {
    "process.start_join.fork": (start_join("fork"), ms),
    "process.start_join.spawn": (start_join("spawn"), ms),
    "process.start_join.forkserver": (start_join("forkserver"), ms),
    "pipe.throughput.8B": (throughput(False, 8), per_s),
    "pipe.throughput.1MiB": (throughput(False, MIB), mb_s),
    "pipe.throughput.duplex.8B": (throughput(True, 8), per_s),
    "pipe.throughput.duplex.1MiB": (throughput(True, MIB), mb_s),
    "pipe.pingpong.8B": (pingpong, us),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ROWS:
        print(f"usage: {sys.argv[0]} ROW; rows: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    run, figure = ROWS[sys.argv[1]]
    print(f"{figure(best_per_op(run)):.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
