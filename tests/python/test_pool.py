"""Pool, AsyncResult, ThreadPool: mproc against Python's multiprocessing,
under each start method; then what mproc's pool does beyond Python
(a dead worker fails only its task, per-task time limits, bounded imap,
progress bars)."""
import io
import os
import signal
import sys
import time
import unittest

from mputil import add_slow_exit_hook, both, only_mproc

import mproc
import mproc.pool


def sq(x):
    return x * x


def add(a, b):
    return a + b


def kw(a, b=0, c=0):
    return (a, b, c)


def boom(x):
    raise ValueError('bad %r' % (x,))


def boom_at_3(x):
    if x == 3:
        raise KeyError(x)
    return x


def getpid(_=None):
    return os.getpid()


def name(modname):
    import importlib
    return importlib.import_module(modname).current_process().name


def die(_=None):
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(t):
    time.sleep(t)
    return t


def unpicklable_result(_=None):
    return lambda: 1


_g = []


def init(*args):
    _g.extend(args)


def get_g():
    return list(_g)


def init_fails():
    raise RuntimeError('init failed on purpose')


_ticks = [0]


def start_ticker():
    import threading

    def loop():
        while True:
            _ticks[0] += 1
            time.sleep(0.01)
    threading.Thread(target=loop, daemon=True).start()


def ticks():
    return _ticks[0]


def lock_init(lock):
    global _lock
    _lock = lock


def use_lock(x):
    with _lock:
        return x + 1


@both()
class PoolBasics:
    def pool(self, *a, **k):
        p = self.mp.Pool(*a, **k)
        self.addCleanup(p.terminate)
        return p

    def test_apply(self):
        p = self.pool(2)
        self.assertEqual(p.apply(sq, (7,)), 49)
        self.assertEqual(p.apply(kw, (1,), {'c': 3}), (1, 0, 3))

    def test_apply_async(self):
        p = self.pool(2)
        r = p.apply_async(sq, (8,))
        self.assertEqual(r.get(timeout=30), 64)
        self.assertTrue(r.ready())
        self.assertTrue(r.successful())
        r.wait()

    def test_async_not_ready(self):
        p = self.pool(1)
        r = p.apply_async(sleep, (0.5,))
        self.assertFalse(r.ready())
        with self.assertRaises(ValueError):
            r.successful()
        with self.assertRaises(self.mod.TimeoutError):
            r.get(timeout=0.05)
        r.wait(0.01)
        self.assertEqual(r.get(timeout=30), 0.5)

    def test_map_starmap(self):
        p = self.pool(2)
        self.assertEqual(p.map(sq, range(100)), [x * x for x in range(100)])
        self.assertEqual(p.map(sq, iter(range(10)), chunksize=3), [x * x for x in range(10)])
        self.assertEqual(p.map(sq, []), [])
        self.assertEqual(p.starmap(add, [(1, 2), (3, 4)]), [3, 7])
        self.assertEqual(p.map_async(sq, range(5)).get(30), [0, 1, 4, 9, 16])
        self.assertEqual(p.starmap_async(add, [(1, 1)]).get(30), [2])

    def test_imap(self):
        p = self.pool(2)
        self.assertEqual(list(p.imap(sq, range(50))), [x * x for x in range(50)])
        self.assertEqual(list(p.imap(sq, range(50), chunksize=7)), [x * x for x in range(50)])
        self.assertEqual(sorted(p.imap_unordered(sq, range(50), 4)),
                         sorted(x * x for x in range(50)))
        it = p.imap(sq, range(3))
        self.assertEqual(it.next(timeout=30), 0)
        self.assertEqual(next(it), 1)

    def test_imap_errors(self):
        p = self.pool(2)
        it = p.imap(boom_at_3, range(6))
        got = []
        for _ in range(6):
            try:
                got.append(next(it))
            except KeyError as e:
                got.append('err%s' % e)
        self.assertEqual(got, [0, 1, 2, 'err3', 4, 5])
        self.assertRaises(StopIteration, next, it)

    def test_callbacks_ran_when_wait_returns(self):
        # As Python's: a result with callbacks is ready, and wait() and
        # get() return, only once its callback has run.
        p = self.pool(2)
        for kind in ('apply', 'map', 'map_error'):
            seen = []

            def slow_append(v):
                time.sleep(0.3)
                seen.append(v)
            if kind == 'apply':
                r = p.apply_async(sq, (3,), callback=slow_append)
            elif kind == 'map':
                r = p.map_async(sq, [1, 2], callback=slow_append)
            else:
                r = p.map_async(boom, [1], error_callback=slow_append)
            time.sleep(0.1)  # the task is done, its callback still running
            r.wait(30)
            self.assertEqual(len(seen), 1, kind)
            self.assertTrue(r.ready())
            if kind == 'map_error':
                self.assertRaises(ValueError, r.get, 30)
            else:
                self.assertEqual(r.get(30), seen[0])
            r = p.apply_async(sq, (4,), callback=slow_append)
            time.sleep(0.1)
            self.assertEqual(r.get(30), 16)
            self.assertEqual(seen[-1], 16, kind)

    def test_imap_over_an_input_that_raises(self):
        # The input's exception comes after the results ahead of it, in
        # place of the chunk it broke, and ends the iterator (mproc's
        # imap_unordered too: it raises once the others are yielded).
        def gen():
            yield from range(5)
            raise ValueError('input broke')
        p = self.pool(2)
        for unordered in (False, True):
            for chunksize, want in ((1, [0, 1, 4, 9, 16]), (2, [0, 1, 4, 9])):
                imap = p.imap_unordered if unordered else p.imap
                it = imap(sq, gen(), chunksize)
                got = []
                with self.assertRaisesRegex(ValueError, 'input broke'):
                    for x in it:
                        got.append(x)
                if unordered and not self.is_mproc:
                    # Python's error is a task of its own, which a worker
                    # may end before the tasks ahead of it (their results
                    # then come after it).
                    self.assertLessEqual(set(got), set(want))
                    continue
                self.assertEqual(sorted(got) if unordered else got, want)
                self.assertRaises(StopIteration, next, it)

    def test_exception(self):
        p = self.pool(2)
        with self.assertRaises(ValueError) as cm:
            p.apply(boom, (1,))
        self.assertEqual(str(cm.exception), 'bad 1')
        # the remote traceback's text, as Python gives it
        self.assertIn('boom', str(cm.exception.__cause__))
        r = p.apply_async(boom, (2,))
        r.wait(30)
        self.assertFalse(r.successful())
        with self.assertRaises(KeyError):
            p.map(boom_at_3, range(10), chunksize=2)

    def test_callbacks(self):
        p = self.pool(2)
        got, errs = [], []
        p.apply_async(sq, (3,), callback=got.append).get(30)
        self.assertEqual(got, [9])
        r = p.apply_async(boom, (3,), error_callback=errs.append)
        r.wait(30)
        self.assertEqual(len(errs), 1)
        self.assertIsInstance(errs[0], ValueError)
        p.map_async(sq, range(4), callback=got.append).get(30)
        self.assertEqual(got[-1], [0, 1, 4, 9])
        r = p.map_async(boom, range(4), error_callback=errs.append)
        r.wait(30)
        self.assertIsInstance(errs[-1], ValueError)

    def test_initializer(self):
        p = self.pool(2, initializer=init, initargs=(1, 2))
        self.assertEqual(p.apply(get_g), [1, 2])

    def test_initializer_lock(self):
        lock = self.mp.Lock()
        p = self.pool(2, initializer=lock_init, initargs=(lock,))
        self.assertEqual(p.map(use_lock, range(5)), [1, 2, 3, 4, 5])

    def test_worker_threads_run_between_tasks(self):
        p = self.pool(1, initializer=start_ticker)
        a = p.apply(ticks)
        time.sleep(0.5)
        self.assertGreater(p.apply(ticks) - a, 10)

    def test_maxtasksperchild(self):
        p = self.pool(2, maxtasksperchild=1)
        pids = p.map(getpid, range(6), chunksize=1)
        self.assertEqual(len(set(pids)), 6)

    def test_worker_name(self):
        p = self.pool(1)
        prefix = {'fork': 'Fork', 'spawn': 'Spawn', 'forkserver': 'ForkServer'}[self.method]
        self.assertRegex(p.apply(name, (self.mod.__name__,)), '^' + prefix + r'PoolWorker-\d+$')

    def test_close_join(self):
        p = self.mp.Pool(2)
        r = p.map_async(sleep, [0.1] * 4)
        with self.assertRaises(ValueError):
            p.join()
        p.close()
        with self.assertRaises(ValueError):
            p.apply(sq, (1,))
        with self.assertRaises(ValueError):
            p.map(sq, [1])
        p.join()
        self.assertEqual(r.get(0), [0.1] * 4)
        p.terminate()

    def test_imap_then_close_join(self):
        p = self.mp.Pool(2)
        it = p.imap(sq, range(100))
        p.close()
        p.join()
        self.assertEqual(list(it), [x * x for x in range(100)])

    def test_terminate_context_manager(self):
        with self.mp.Pool(2) as p:
            self.assertEqual(p.apply(sq, (2,)), 4)
        with self.assertRaises(ValueError):
            p.apply(sq, (1,))
        p.join()

    def test_unpicklable_function(self):
        p = self.pool(1)
        with self.assertRaises((AttributeError, TypeError, Exception)) as cm:
            p.apply(lambda: 1)
        self.assertIn('pickle', str(cm.exception).lower())
        self.assertEqual(p.apply(sq, (3,)), 9)  # the pool goes on

    def test_unpicklable_argument(self):
        p = self.pool(1)
        with self.assertRaises(Exception) as cm:
            p.apply(sq, (lambda: 1,))
        self.assertIn('pickle', str(cm.exception).lower())
        self.assertEqual(p.map(sq, [2]), [4])

    def test_unpicklable_result(self):
        p = self.pool(1)
        import importlib
        pool_mod = importlib.import_module(self.mod.__name__ + '.pool')
        with self.assertRaises(pool_mod.MaybeEncodingError):
            p.apply(unpicklable_result)
        self.assertEqual(p.apply(sq, (3,)), 9)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            self.mp.Pool(0)
        with self.assertRaises(TypeError):
            self.mp.Pool(1, initializer=3)
        with self.assertRaises(ValueError):
            self.mp.Pool(1, maxtasksperchild=0)
        p = self.pool(1)
        self.assertEqual(p.map(sq, [1, 2], chunksize=0), [None, None])  # Python's
        with self.assertRaises(ValueError):
            p.imap(sq, [1, 2], chunksize=0)


@both(methods=('fork',))
class ThreadPoolBasics:
    def test_threadpool(self):
        import importlib
        tp = importlib.import_module(self.mod.__name__ + '.pool').ThreadPool
        with tp(3) as p:
            self.assertEqual(p.map(sq, range(10)), [x * x for x in range(10)])
            self.assertEqual(p.apply(lambda: 5), 5)  # threads: no pickling
        # terminate() does not wait for Python's worker threads; one still
        # running when the interpreter exits ends in pthread_exit, leaving
        # what LeakSanitizer reports as leaks of CPython's
        p.join()


def _exit_now(_=None):
    sys.exit(3)



@only_mproc()
class BeyondPython:
    def pool(self, *a, **k):
        p = self.mp.Pool(*a, **k)
        self.addCleanup(p.terminate)
        return p

    def test_sys_exit_in_a_task(self):
        # Python's Pool loses the task (its worker exits, get() waits for
        # ever); mproc's worker ends at once, without Python's finalization
        # (where a fork of this program would wait for this exit hook), and
        # the task fails with WorkerDiedError.
        add_slow_exit_hook(self)
        p = self.pool(2)
        t = time.monotonic()
        with self.assertRaises(mproc.WorkerDiedError) as cm:
            p.apply_async(_exit_now).get(60)
        self.assertLess(time.monotonic() - t, 30)
        self.assertIn('exited with code 3', str(cm.exception))
        self.assertEqual(p.apply(sq, (5,)), 25)

    def test_worker_death_fails_only_its_task(self):
        p = self.pool(2)
        others = [p.apply_async(sleep, (0.2,)) for _ in range(3)]
        with self.assertRaises(mproc.WorkerDiedError) as cm:
            p.apply(die)
        e = cm.exception
        from concurrent.futures.process import BrokenProcessPool
        self.assertIsInstance(e, BrokenProcessPool)
        self.assertIn('signal 9', str(e))
        self.assertIn(str(e.pid), str(e))
        self.assertEqual([r.get(30) for r in others], [0.2] * 3)
        self.assertEqual(p.map(sq, range(10)), [x * x for x in range(10)])
        self.assertEqual(len(p._pool), 2)

    def test_worker_death_in_map(self):
        p = self.pool(2)
        with self.assertRaises(mproc.WorkerDiedError):
            p.map(die, range(4), chunksize=1)
        self.assertEqual(p.apply(sq, (5,)), 25)

    def test_time_limit(self):
        p = self.pool(1)
        pid = p.apply(getpid)
        t = time.monotonic()
        r = p.apply_async(sleep, (30,), timeout=0.3)
        with self.assertRaises(mproc.TaskTimeoutError) as cm:
            r.get(30)
        self.assertLess(time.monotonic() - t, 10)
        self.assertIsInstance(cm.exception, self.mod.TimeoutError)
        self.assertEqual(cm.exception.pid, pid)
        self.assertNotEqual(p.apply(getpid), pid)  # replaced
        self.assertEqual(p.apply_async(sleep, (0.1,), timeout=10).get(30), 0.1)

    def test_initializer_failure_fails_creation(self):
        with self.assertRaises(RuntimeError):
            self.mp.Pool(1, initializer=init_fails)

    def test_imap_bounded(self):
        p = self.pool(2)
        pulled = []

        def gen():
            for i in range(10**9):
                pulled.append(i)
                yield i
        it = p.imap(sq, gen(), max_inflight=8)
        self.assertEqual([next(it) for _ in range(20)], [x * x for x in range(20)])
        self.assertLessEqual(len(pulled), 20 + 8 + 1)
        it = p.imap_unordered(sq, gen(), 2)
        self.assertEqual(len([next(it) for _ in range(10)]), 10)

    def test_progress(self):
        p = self.pool(2)
        err = io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            self.assertEqual(p.map(sq, range(100), progress=True), [x * x for x in range(100)])
            self.assertEqual(list(p.imap(sq, range(10), progress=True)),
                             [x * x for x in range(10)])
        finally:
            sys.stderr = old
        self.assertIn('100/100', err.getvalue())
        self.assertIn('10/10', err.getvalue())
        self.assertIn('100%', err.getvalue())

    def test_many_tasks(self):
        p = self.pool(2)
        rs = [p.apply_async(sq, (i,)) for i in range(2000)]
        self.assertEqual([r.get(60) for r in rs], [i * i for i in range(2000)])


if __name__ == '__main__':
    unittest.main()
