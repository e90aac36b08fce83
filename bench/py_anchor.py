#!/usr/bin/env python3
"""Python anchors: each row's work done with Python 3's multiprocessing.

Usage: python3 py_anchor.py ROW. Prints the figure in the row's unit, the
same way bench_mproc and bench_floor do (n steered so one run lasts a fixed
time, best of a few runs). BENCH_QUICK=1 shortens the run. Exit status 2 for
an unknown row, and for a row with no Python figure (printing nothing).
"""
import atexit
import concurrent.futures as cf
import math
import multiprocessing as mp
import multiprocessing.forkserver
import multiprocessing.managers
import os
import pickle
import sys
import time

# What the Python programs of make bench share: the run length, the CPUs
# and their pinning, the steering of n (py_harness.py imports no
# multiprocessing).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_harness import CPUS, QUICK, best_per_op, pin_apart, unpin  # noqa: E402,F401


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


# ---- lock.uncontended --------------------------------------------------------

def lock_uncontended(n):
    lock = mp.get_context("fork").Lock()
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return time.perf_counter() - t0


# ---- counter.locked.2proc: two children increment a Value('i') ---------------

def incrementer(v, n, gate, ends, who):
    pin_apart(who)
    gate.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    ends[who] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes


def counter(n):
    """n increments in all; the clock runs from the gate opening until the
    last child is done (forking stays off the clock). The children run on
    different CPUs unless only one is allowed."""
    ctx = mp.get_context("fork")
    v = ctx.Value("i")  # its lock is an RLock, Python's default
    gate = ctx.Barrier(3)
    ends = ctx.Array("d", 2, lock=False)
    ps = [ctx.Process(target=incrementer, args=(v, n // 2 + (who < n % 2), gate, ends, who))
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


# ---- wake.pingpong: round trips over two Semaphores (or Events) ---------------

def sem_ponger(s1, s2, n):
    pin_apart(1)
    for _ in range(n + 1):
        s1.acquire()
        s2.release()


def event_ponger(e1, e2, n):
    pin_apart(1)
    for _ in range(n + 1):
        e1.wait()
        e1.clear()  # before signalling back, so the next set is not missed
        e2.set()


def wake_pingpong(events):
    """One warm-up round trip, then n timed ones (the child answers n + 1);
    the two sides run on different CPUs unless only one is allowed."""
    ctx = mp.get_context("fork")

    def run(n):
        if events:
            a, b = ctx.Event(), ctx.Event()
        else:
            a, b = ctx.Semaphore(0), ctx.Semaphore(0)
        p = ctx.Process(target=event_ponger if events else sem_ponger, args=(a, b, n))
        p.start()
        pin_apart(0)
        t0 = 0
        for i in range(-1, n):
            if i == 0:
                t0 = time.perf_counter()
            if events:
                a.set()
                b.wait()
                b.clear()
            else:
                a.release()
                b.acquire()
        t = time.perf_counter() - t0
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"child exit code {p.exitcode}")
        return t

    return run


# ---- value.codec.seed_dict: pickle dumps + loads of a small dict -------------

def codec_seed_dict(n):
    d = {"id": 1, "data": "first data item"}
    if pickle.loads(pickle.dumps(d)) != d:
        raise RuntimeError("pickle round trip differs")
    t0 = time.perf_counter()
    for _ in range(n):
        pickle.loads(pickle.dumps(d))
    return time.perf_counter() - t0


# ---- queue rows: multiprocessing.Queue ------------------------------------------
# As in bench_mproc, 8-byte messages are sequence numbers the consumer checks
# (1 MiB ones only their length: Python's Queue is not under test); producer and consumer run on different CPUs unless
# only one is allowed (but not in mpmc: four processes). A Queue's feeder
# thread, the mechanism's own helper, starts before its process's main
# thread is pinned and so is left free (as ZeroMQ's I/O thread in
# bench_floor's zeromq peer).

def q_producer(q, n, size):
    unpin()  # the child inherits the parent's pinning of an earlier run
    q.put(b"ready")  # starts the feeder thread
    pin_apart(1)
    if size > 8:
        msg = b"x" * size  # the same object each time: no copy to make one
        for _ in range(n):
            q.put(msg)
    else:
        for i in range(n):
            q.put(i.to_bytes(8, "little"))


def spsc(size):
    """A child puts n messages (8 bytes: numbered); the clock starts when
    the parent has the child's first message."""
    ctx = mp.get_context("fork")

    def run(n):
        q = ctx.Queue()
        p = ctx.Process(target=q_producer, args=(q, n, size))
        p.start()
        pin_apart(0)
        if q.get() != b"ready":
            raise RuntimeError("wrong first message")
        t0 = time.perf_counter()
        for i in range(n):
            m = q.get()
            if len(m) != size or (size == 8 and int.from_bytes(m, "little") != i):
                raise RuntimeError(f"wrong message {i}")
        t = time.perf_counter() - t0
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"child exit code {p.exitcode}")
        return t

    return run


def mpmc_producer(q, who, k, gate):
    gate.wait()
    base = who << 56
    for i in range(k):
        q.put((base + i).to_bytes(8, "little"))


def mpmc_consumer(q, who, gate, ends, counts):
    gate.wait()
    nxt, count = [0, 0], 0
    while True:
        m = q.get()
        if m is None:
            break
        seq = int.from_bytes(m, "little")
        frm, i = seq >> 56, seq & ((1 << 56) - 1)
        if len(m) != 8 or frm > 1 or i < nxt[frm]:
            raise RuntimeError(f"message {i} of producer {frm} out of order")
        nxt[frm] = i + 1
        count += 1
    ends[who] = time.perf_counter()
    counts[who] = count


def mpmc(n):
    """2 producers put n messages in all, 2 consumers get them; the clock runs
    from the gate opening until the last consumer gets its stop (None, one
    per consumer, put once both producers exited)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    gate = ctx.Barrier(5)
    ends = ctx.Array("d", 2, lock=False)
    counts = ctx.Array("q", 2, lock=False)
    cons = [ctx.Process(target=mpmc_consumer, args=(q, who, gate, ends, counts))
            for who in range(2)]
    prods = [ctx.Process(target=mpmc_producer, args=(q, who, n // 2 + (who < n % 2), gate))
             for who in range(2)]
    for p in cons + prods:
        p.start()
    gate.wait()
    t0 = time.perf_counter()
    for p in prods:
        p.join()
    q.put(None)
    q.put(None)
    for p in prods + cons:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"child exit code {p.exitcode}")
    if sum(counts) != n:
        raise RuntimeError(f"{sum(counts)} messages, {n} expected")
    return max(ends) - t0


def q_echo(q1, q2):
    unpin()
    m = q1.get()
    q2.put(m)  # starts the feeder thread
    pin_apart(1)
    while True:
        m = q1.get()
        if m is None:
            return
        q2.put(m)


def queue_pingpong(n):
    """One warm-up round trip, then n timed ones through two Queues."""
    ctx = mp.get_context("fork")
    unpin()
    q1, q2 = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=q_echo, args=(q1, q2))
    p.start()
    q1.put((0).to_bytes(8, "little"))  # starts the feeder thread
    pin_apart(0)
    q2.get()
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        m = i.to_bytes(8, "little")
        q1.put(m)
        if q2.get() != m:
            raise RuntimeError(f"wrong answer to {i}")
    t = time.perf_counter() - t0
    q1.put(None)
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"child exit code {p.exitcode}")
    return t


# ---- pool and executor rows ---------------------------------------------------
# mproc's pools use its default start method, forkserver, which is Python
# 3.14's default on Linux; Python 3.13 and older (3.11 on the machine these
# rows were written on) default to 'fork'. Decision: these rows use
# 'forkserver' explicitly, whatever the version, so that both sides start
# their workers the same way (BENCH.md: the same work). The workers start off
# the clock in every row but pool.create_close_join, where the method
# weighs most: pool.create_close_join.fork has Python's fork default (and
# mproc's fork method) beside it. As in bench_mproc, the server is started
# before the clock, and every pool and executor has 2 workers.

def pool_context(method="forkserver"):
    ctx = mp.get_context(method)
    if method == "forkserver":
        multiprocessing.forkserver.ensure_running()
    return ctx


def inc(x):
    return x + 1


def pool_rtt(n):
    pool = pool_context().Pool(2)
    pool.apply_async(noop).get()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        pool.apply_async(noop).get()
    t = time.perf_counter() - t0
    pool.close()
    pool.join()
    return t


# Rows per task or per item do whole batches (INFLIGHT tasks in flight, or a
# map over MAP_ITEMS items), ceil(n / batch) of them, and report the time of
# n at the rate measured, as bench_mproc_pool.c does.
INFLIGHT = 1000 if QUICK else 10000
MAP_ITEMS = 100000


def batched(n, batch, run_batch):
    """Seconds of n ops at the rate of ceil(n / batch) calls of run_batch()
    (each does batch ops and returns its seconds)."""
    nb = -(-n // batch)
    return sum(run_batch() for _ in range(nb)) * n / (nb * batch)


def pool_pipelined(n):
    pool = pool_context().Pool(2)
    pool.apply_async(noop).get()  # warm-up

    def run_batch():
        t0 = time.perf_counter()
        rs = [pool.apply_async(noop) for _ in range(INFLIGHT)]
        for r in rs:
            r.get()
        return time.perf_counter() - t0

    t = batched(n, INFLIGHT, run_batch)
    pool.close()
    pool.join()
    return t


def executor_pipelined(n):
    with cf.ProcessPoolExecutor(2, mp_context=pool_context()) as ex:
        ex.submit(noop).result()  # warm-up

        def run_batch():
            t0 = time.perf_counter()
            fs = [ex.submit(noop) for _ in range(INFLIGHT)]
            cf.wait(fs)
            for f in fs:
                f.result()  # raises if the task failed
            return time.perf_counter() - t0

        return batched(n, INFLIGHT, run_batch)


def map_trivial(n):
    pool = pool_context().Pool(2)
    pool.apply_async(noop).get()  # warm-up
    xs = list(range(MAP_ITEMS))

    def run_batch():
        t0 = time.perf_counter()
        out = pool.map(inc, xs)
        t = time.perf_counter() - t0
        if len(out) != MAP_ITEMS or out[0] != 1 or out[-1] != MAP_ITEMS:
            raise RuntimeError("wrong results")
        return t

    t = batched(n, MAP_ITEMS, run_batch)
    pool.close()
    pool.join()
    return t


# pool.map.cpu_bound: the range and the check of bench/bench_primes.h (keep
# them in step): Pool(2).map over [0, PRIMES_N), default chunksize.
PRIMES_N, PRIMES_COUNT = (100000, 9592) if QUICK else (1000000, 78498)


def is_prime(x):
    if x < 2:
        return False
    if x % 2 == 0:
        return x == 2
    d = 3
    while d * d <= x:
        if x % d == 0:
            return False
        d += 2
    return True


def map_cpu_bound(n):
    """One op: the whole range; the count is checked off the clock."""
    pool = pool_context().Pool(2)
    pool.apply_async(noop).get()  # warm-up
    xs = list(range(PRIMES_N))
    t = 0
    for _ in range(n):
        t0 = time.perf_counter()
        out = pool.map(is_prime, xs)
        t += time.perf_counter() - t0
        if sum(out) != PRIMES_COUNT:
            raise RuntimeError(f"{sum(out)} primes, {PRIMES_COUNT} expected")
    pool.close()
    pool.join()
    return t


def create_close_join(method="forkserver"):
    def run(n):
        ctx = pool_context(method)
        t0 = time.perf_counter()
        for _ in range(n):
            pool = ctx.Pool(2)
            pool.close()
            pool.join()
        return time.perf_counter() - t0

    return run


# ---- manager rows ----------------------------------------------------------------
# As in bench_mproc_manager.c: a manager per program, started on the row's
# first run (off the clock), a new dict or list per run, sequential calls
# from the process that started it. Managers start under the default
# start method of the Python running this ('fork' up to 3.13 on Linux,
# 'forkserver' from 3.14); mproc's rows under mproc's (forkserver).
# Remote: a SyncManager (a BaseManager) on TCP loopback, used through a
# second manager object connected to it (BaseManager.connect()).

REMOTE_KEY = b"bench-manager"
_managers = {}


def manager(remote):
    if remote not in _managers:
        if remote:
            owner = mp.managers.SyncManager(address=("127.0.0.1", 0), authkey=REMOTE_KEY)
            owner.start()
            client = mp.managers.SyncManager(address=owner.address, authkey=REMOTE_KEY)
            client.connect()
            # Shut down at exit before multiprocessing's own exit handler,
            # which takes a second over it.
            atexit.register(owner.shutdown)
            _managers[remote] = (owner, client)
        else:
            m = mp.Manager()
            _managers[remote] = (m, m)
    return _managers[remote][1]


def manager_ops(what, remote=False):
    def run(n):
        m = manager(remote)
        if what == "append":
            c = m.list()
        else:
            c = m.dict()
            c["k"] = 1
        t0 = time.perf_counter()
        if what == "set":
            for i in range(n):
                c["k"] = i
        elif what == "get":
            for _ in range(n):
                c["k"]
        else:
            for i in range(n):
                c.append(i)
        t = time.perf_counter() - t0
        del c  # the proxy's decref, off the clock
        return t

    return run


def manager_start_shutdown(n):
    t0 = time.perf_counter()
    for _ in range(n):
        m = mp.Manager()
        m.shutdown()
    return time.perf_counter() - t0


MIB = 1 << 20
ms = lambda per: per * 1e3  # noqa: E731
us = lambda per: per * 1e6  # noqa: E731
ns = lambda per: per * 1e9  # noqa: E731
s = lambda per: per  # noqa: E731
per_s = lambda per: 1 / per  # noqa: E731
mb_s = lambda per: MIB / 1e6 / per  # noqa: E731

# name -> (run(n) returning seconds, figure from seconds per op), or None for
# a row with no Python figure (exit status 2, as for an unknown row)
ROWS = {
    "process.start_join.fork": (start_join("fork"), ms),
    "process.start_join.spawn": (start_join("spawn"), ms),
    "process.start_join.forkserver": (start_join("forkserver"), ms),
    "pipe.throughput.8B": (throughput(False, 8), per_s),
    "pipe.throughput.1MiB": (throughput(False, MIB), mb_s),
    "pipe.throughput.duplex.8B": (throughput(True, 8), per_s),
    "pipe.throughput.duplex.1MiB": (throughput(True, MIB), mb_s),
    "pipe.pingpong.8B": (pingpong, us),
    "lock.uncontended": (lock_uncontended, ns),
    "counter.locked.2proc": (counter, per_s),
    "counter.locked.2proc.rlock": (counter, per_s),
    "wake.pingpong": (wake_pingpong(False), us),
    "wake.pingpong.event": (wake_pingpong(True), us),
    "arena.alloc_free.64B": None,  # Python has no arena allocator to call
    "arena.alloc_free.64B.batch": None,
    "value.codec.seed_dict": (codec_seed_dict, per_s),
    "queue.spsc.8B": (spsc(8), per_s),
    "queue.mpmc.2x2.8B": (mpmc, per_s),
    "queue.spsc.1MiB": (spsc(MIB), mb_s),
    "queue.pingpong.8B": (queue_pingpong, us),
    "pool.apply_async.rtt": (pool_rtt, us),
    "pool.apply_async.pipelined": (pool_pipelined, us),
    "executor.submit.pipelined": (executor_pipelined, us),
    "pool.map.trivial_100k": (map_trivial, us),
    "pool.map.zero_copy_10M": None,  # Python's map pickles: there is no zero-copy map
    "pool.map.cpu_bound": (map_cpu_bound, s),
    "pool.create_close_join": (create_close_join(), ms),
    "pool.create_close_join.fork": (create_close_join("fork"), ms),
    "manager.dict_set.local": (manager_ops("set"), per_s),
    "manager.dict_get.local": (manager_ops("get"), per_s),
    "manager.list_append.local": (manager_ops("append"), per_s),
    "manager.dict_set.remote": (manager_ops("set", remote=True), per_s),
    "manager.pipelined.remote": None,  # proxies have no pipelined or batched call
    "manager.start_shutdown": (manager_start_shutdown, ms),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ROWS:
        print(f"usage: {sys.argv[0]} ROW; rows: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    if ROWS[sys.argv[1]] is None:
        print(f"{sys.argv[0]}: row {sys.argv[1]} has no Python figure", file=sys.stderr)
        return 2
    run, figure = ROWS[sys.argv[1]]
    print(f"{figure(best_per_op(run)):.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
