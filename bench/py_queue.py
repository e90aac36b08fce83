#!/usr/bin/env python3
"""Rows py.queue.* (BENCH.md): one program, run with Python's
multiprocessing or with mproc:

    python3 bench/py_queue.py stdlib|mproc ROW

- py.queue.small: a child puts n small tuples (i, "item", 1.5) on a Queue,
  the parent gets them and checks the numbers; msgs/s.
- py.queue.mpmc: 4 producer children put n small tuples in all, 4 consumer
  children get them (checking each producer's order); msgs/s, from a
  barrier all nine processes pass to the last consumer's last message.
- py.queue.1MiB: a child puts n 1 MiB bytes objects, the parent gets them
  and checks their length; MB/s.

The 'fork' start method on both sides (Python 3.11's default; mproc's
package has Python's default). The clock starts once the consumer has the
producer's first two messages, "ready" and a warm-up one of the row's
kind (small, 1MiB; so children start off the clock, and the first touch
of a message's memory in a new child is not on it)
or when all nine processes pass a barrier (mpmc), and stops at the last
message taken. In small and 1MiB the producer's main thread and the
consumer run on different CPUs unless only one is allowed, as in
py_anchor.py's queue rows (a Queue's feeder thread, started by the first
put before the pinning, is left free); mpmc (9 processes) is not pinned.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_harness import MIB, main, mb_s, per_s, pin_apart, unpin  # noqa: E402

NPROD = NCONS = 4


def producer(q, n, size):
    unpin()  # the child inherits the parent's pinning of an earlier run
    msg = b"x" * size  # the same object each time: no copy to make one
    q.put("ready")  # starts Python's feeder thread
    pin_apart(1)
    if size:
        q.put(msg)  # warm-up, off the clock
        for _ in range(n):
            q.put(msg)
    else:
        q.put((-1, "item", 1.5))  # warm-up, off the clock
        for i in range(n):
            q.put((i, "item", 1.5))


def spsc(size):
    def make(mp):
        ctx = mp.get_context("fork")

        def run(n):
            q = ctx.Queue()
            p = ctx.Process(target=producer, args=(q, n, size))
            p.start()
            pin_apart(0)
            if q.get() != "ready":
                raise RuntimeError("wrong first message")
            q.get()  # the warm-up message
            t0 = time.perf_counter()
            if size:
                for i in range(n):
                    if len(q.get()) != size:
                        raise RuntimeError(f"wrong message {i}")
            else:
                for i in range(n):
                    if q.get()[0] != i:
                        raise RuntimeError(f"wrong message {i}")
            t = time.perf_counter() - t0
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"child exit code {p.exitcode}")
            return t

        return run

    return make


def mpmc_producer(q, who, k, gate, results):
    q.put((who, -1))  # warm-up (starts Python's feeder thread), off the clock
    gate.wait()
    start = time.perf_counter()
    for i in range(k):
        q.put((who, i))
    q.put(None)  # behind this producer's messages: one consumer stops
    results.put((start, None, 0))


def mpmc_consumer(q, gate, results):
    q.get()  # one of the producers' warm-up messages, off the clock
    gate.wait()
    start = time.perf_counter()
    nxt, count = [0] * NPROD, 0
    while True:
        m = q.get()
        if m is None:
            break
        who, i = m
        if i < nxt[who]:
            raise RuntimeError(f"message {i} of producer {who} out of order")
        nxt[who] = i + 1
        count += 1
    results.put((start, time.perf_counter(), count))  # CLOCK_MONOTONIC: one clock for all


def mpmc(mp):
    """NPROD producers put n messages in all, NCONS consumers get them. Off
    the clock: the children start, each producer puts a warm-up message
    and each consumer gets one (NPROD == NCONS). The clock runs from the
    first child past the barrier to the last consumer's stop: each producer
    puts a stop (None) after its messages and each consumer stops at the
    first it gets: a message is always ahead of its producer's stop, and
    while some are left, so is a consumer that has not stopped. So neither
    the producers' exit nor the parent is on the clock."""
    ctx = mp.get_context("fork")

    def run(n):
        q, results = ctx.Queue(), ctx.Queue()
        gate = ctx.Barrier(NPROD + NCONS + 1)
        cons = [ctx.Process(target=mpmc_consumer, args=(q, gate, results))
                for _ in range(NCONS)]
        prods = [ctx.Process(target=mpmc_producer,
                             args=(q, who, n // NPROD + (who < n % NPROD), gate, results))
                 for who in range(NPROD)]
        for p in cons + prods:
            p.start()
        gate.wait()
        got = [results.get() for _ in cons + prods]
        for p in prods + cons:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"child exit code {p.exitcode}")
        if sum(c for _, _, c in got) != n:
            raise RuntimeError(f"{sum(c for _, _, c in got)} messages, {n} expected")
        return max(end for _, end, _ in got if end is not None) - min(s for s, _, _ in got)

    return run


ROWS = {
    "py.queue.small": (spsc(0), per_s),
    "py.queue.mpmc": (mpmc, per_s, 20000),
    "py.queue.1MiB": (spsc(MIB), mb_s),
}

if __name__ == "__main__":
    sys.exit(main(ROWS))
