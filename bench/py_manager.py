#!/usr/bin/env python3
"""Row py.manager.dict_set: Manager().dict() set from a child, ops/s.

Usage: python3 py_manager.py stdlib|mproc [py.manager.dict_set] [start-method]
(make bench passes the row's name). The same program
with Python's multiprocessing or with mproc (`import mproc as
multiprocessing`): a manager is started, a child process sets keys of a
manager dict (d[i % 64] = i) for a fixed time, and reports how many sets it
made; the figure is the best of a few runs, in sets per second, printed
alone on a line. BENCH_QUICK=1 shortens the runs. mproc is imported from
PYTHONPATH, else from the build tree beside this file (build/python).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def setter(d, seconds, out):
    """Sets d[i % 64] for `seconds`; sends (sets, elapsed) back."""
    d[0] = 0  # the connection is made outside the timed part
    n, i = 0, 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            d[i & 63] = i
            i += 1
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            break
    out.send((n, now - t0))
    out.close()


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("stdlib", "mproc"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    if sys.argv[1] == "mproc":
        try:
            import mproc as mp
        except ImportError:
            sys.path.insert(0, os.path.join(HERE, "..", "build", "python"))
            import mproc as mp
    else:
        import multiprocessing as mp
    rest = [a for a in sys.argv[2:] if a != "py.manager.dict_set"]
    ctx = mp.get_context(rest[0] if rest else None)
    seconds = 0.2 if QUICK else 1.0
    best = 0.0
    with ctx.Manager() as m:
        d = m.dict()
        for _ in range(3 if QUICK else 5):
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=setter, args=(d, seconds, w))
            p.start()
            w.close()
            n, elapsed = r.recv()
            p.join()
            if p.exitcode != 0:
                raise RuntimeError("child exit code %s" % p.exitcode)
            best = max(best, n / elapsed)
        if len(d) != 64:
            raise RuntimeError("the dict has %d keys, not 64" % len(d))
    print("%.0f" % best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
