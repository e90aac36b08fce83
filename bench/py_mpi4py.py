#!/usr/bin/env python3
"""The mpi4py peer of the cluster.* rows: mpi4py.futures doing each row's
work, in the launch mode that matches mproc's world mode:

    mpiexec -n RANKS python3 -m mpi4py.futures py_mpi4py.py ROW

(rank 0 runs this program, the other ranks serve MPIPoolExecutor's
tasks). Prints the figure in the row's unit as bench_cluster does (n
steered so that one run lasts a fixed time, best of a few runs, as
py_anchor.best_per_op). Exit status 2 for a row it has no figure for.
BENCH_QUICK=1 shortens the run.
"""
import os
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor, wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_anchor import QUICK, best_per_op, batched  # noqa: E402

INFLIGHT = 1000 if QUICK else 10000


def noop():
    return None


def apply_rtt(ex):
    def run(n):
        t0 = time.perf_counter()
        for _ in range(n):
            ex.submit(noop).result()
        return time.perf_counter() - t0
    return run


def submit_pipelined(ex):
    def run_batch():
        t0 = time.perf_counter()
        fs = [ex.submit(noop) for _ in range(INFLIGHT)]
        wait(fs)
        for f in fs:
            f.result()  # raises if the task failed
        return time.perf_counter() - t0
    return lambda n: batched(n, INFLIGHT, run_batch)


# row: (the run's maker, worker ranks it wants, figure from seconds per op)
ROWS = {
    "cluster.apply.rtt": (apply_rtt, 1, lambda s: s * 1e6),
    "cluster.submit.pipelined": (submit_pipelined, 2, lambda s: s * 1e6),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ROWS:
        print(f"usage: {sys.argv[0]} ROW; rows: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    make, workers, figure = ROWS[sys.argv[1]]
    got = MPI.COMM_WORLD.Get_size() - 1  # world mode: every rank but 0 serves
    if got != workers:
        print(f"{sys.argv[1]} wants {workers} worker rank(s), got {got}", file=sys.stderr)
        return 1
    with MPIPoolExecutor() as ex:
        ex.submit(noop).result()  # warm-up: the workers are up
        print(figure(best_per_op(make(ex))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
