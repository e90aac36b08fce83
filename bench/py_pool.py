"""Benchmarks of rows py.pool.map.trivial, py.pool.apply_async.rtt and
py.executor.submit.pipelined (BENCH.md beside the project): the same program with
Python's multiprocessing / concurrent.futures or with mproc.

    PYTHONPATH=build/python python3 bench/py_pool.py stdlib|mproc <row>

prints one number, in microseconds (per item, per round trip, per task);
lower is better. The pool or executor is made and warmed up before the
clock starts; the start method is Python's default (fork)."""
import sys
import time


def f(x):
    return x


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ('stdlib', 'mproc'):
        sys.exit('usage: py_pool.py stdlib|mproc <row>')
    which, row = sys.argv[1], sys.argv[2]
    if which == 'mproc':
        import mproc as mp
        from mproc import futures
    else:
        import multiprocessing as mp
        from concurrent import futures
    if row == 'py.pool.map.trivial':
        n = 10**6
        with mp.Pool(2) as p:
            p.map(f, range(1000))
            t = time.perf_counter()
            r = p.map(f, range(n))
            dt = time.perf_counter() - t
        assert len(r) == n and r[-1] == n - 1
        print('%.4f' % (dt / n * 1e6))
    elif row == 'py.pool.apply_async.rtt':
        n = 3000
        with mp.Pool(2) as p:
            for i in range(200):
                p.apply_async(f, (i,)).get()
            t = time.perf_counter()
            for i in range(n):
                assert p.apply_async(f, (i,)).get() == i
            dt = time.perf_counter() - t
        print('%.2f' % (dt / n * 1e6))
    elif row == 'py.executor.submit.pipelined':
        n = 10000
        with futures.ProcessPoolExecutor(2, mp_context=mp.get_context()) as ex:
            for fu in [ex.submit(f, i) for i in range(200)]:
                fu.result()
            t = time.perf_counter()
            fs = [ex.submit(f, i) for i in range(n)]
            for fu in fs:
                fu.result()
            dt = time.perf_counter() - t
        print('%.2f' % (dt / n * 1e6))
    else:
        sys.exit('unknown row %r' % row)


if __name__ == '__main__':
    main()
