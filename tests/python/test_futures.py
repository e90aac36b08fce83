"""mproc.futures against concurrent.futures, under each start method,
then what mproc's executor does beyond Python."""
import concurrent.futures as cf
import gc
import os
import pickle
import signal
import sys
import time
import unittest
import weakref

import multiprocessing

import mproc
import mproc.futures

from mputil import METHODS, SANITIZER, add_slow_exit_hook

# (name, futures module, the module whose contexts it takes)
MODULES = (('stdlib', cf, multiprocessing), ('mproc', mproc.futures, mproc))


def sq(x):
    return x * x


def add(a, b):
    return a + b


def boom(x):
    raise ValueError('bad %r' % (x,))


def sleep(t):
    time.sleep(t)
    return t


def getpid(_=None):
    return os.getpid()


def die(_=None):
    os.kill(os.getpid(), signal.SIGKILL)


_g = []


def init(*a):
    _g.extend(a)


def get_g():
    return list(_g)


def init_fails():
    raise RuntimeError('init failed on purpose')


def _exit():
    sys.exit(1)


class ExitAtUnpickle:
    def __reduce__(self):
        return _exit, ()


def _unpickle_error():
    raise RuntimeError('error in unpickle')


class ErrorAtUnpickle:
    def __reduce__(self):
        return _unpickle_error, ()


class ExitAtPickle:
    def __reduce__(self):
        _exit()


class ErrorAtPickle:
    def __reduce__(self):
        raise pickle.PicklingError('error in pickle')


def make(cls):
    return cls()


class Dummy:
    pass



def both_futures(methods=METHODS, modules=MODULES):
    def deco(cls):
        g = globals()
        for modname, fut, mp in modules:
            if SANITIZER and mp is not mproc:  # as mputil.both
                continue
            for m in methods:
                name = '%s_%s_%s' % (cls.__name__, modname, m)
                g[name] = type(name, (cls, unittest.TestCase),
                               {'fut': fut, 'mp': mp.get_context(m), 'method': m,
                                'is_mproc': fut is mproc.futures})
        return cls
    return deco


@both_futures()
class Executor:
    def ex(self, *a, **k):
        k.setdefault('mp_context', self.mp)
        e = self.fut.ProcessPoolExecutor(*a, **k)
        self.addCleanup(e.shutdown, wait=True, cancel_futures=True)
        return e

    def test_submit(self):
        e = self.ex(2)
        f = e.submit(sq, 6)
        self.assertIsInstance(f, cf.Future)
        self.assertEqual(f.result(timeout=30), 36)
        self.assertTrue(f.done())
        self.assertIsNone(f.exception())
        self.assertEqual(e.submit(add, 1, b=2).result(30), 3)

    def test_exception(self):
        e = self.ex(2)
        f = e.submit(boom, 1)
        with self.assertRaises(ValueError) as cm:
            f.result(30)
        self.assertIn('boom', str(cm.exception.__cause__))
        self.assertIsInstance(f.exception(), ValueError)

    def test_map_keeps_no_reference(self):
        # As Python's (its test_free_reference): a result map yielded is
        # freed once the caller drops it, chunked or not.
        e = self.ex(2)
        for chunksize in (1, 3):
            for obj in e.map(make, [Dummy] * 7, chunksize=chunksize):
                wr = weakref.ref(obj)
                del obj
                gc.collect()
                self.assertIsNone(wr())

    def test_exit_and_pickling_errors(self):
        # As Python's: sys.exit while the task is unpickled ends the worker
        # (BrokenProcessPool: mproc's WorkerDiedError is one); sys.exit in
        # the function, or an error or sys.exit while the result is
        # pickled, fails the future with that exception.
        e = self.ex(2)
        with self.assertRaises(cf.process.BrokenProcessPool):
            e.submit(id, ExitAtUnpickle()).result(30)
        e = self.ex(2)
        with self.assertRaises(SystemExit):
            e.submit(_exit).result(30)
        with self.assertRaises(SystemExit):
            e.submit(make, ExitAtPickle).result(30)
        with self.assertRaises(pickle.PicklingError):
            e.submit(make, ErrorAtPickle).result(30)
        self.assertEqual(e.submit(sq, 3).result(30), 9)

    def test_unpickling_errors(self):
        # As Python's: an error while the worker unpickles the task, and an
        # error or sys.exit while the result is unpickled here, fail the
        # future with BrokenProcessPool (each breaks Python's executor: a
        # new one for each).
        for fn, arg in ((id, ErrorAtUnpickle()), (make, ErrorAtUnpickle),
                        (make, ExitAtUnpickle)):
            e = self.ex(2)
            with self.assertRaises(cf.process.BrokenProcessPool):
                e.submit(fn, arg).result(30)

    def test_map(self):
        e = self.ex(2)
        self.assertEqual(list(e.map(sq, range(20))), [x * x for x in range(20)])
        self.assertEqual(list(e.map(add, range(5), range(5), chunksize=2)), [0, 2, 4, 6, 8])
        self.assertEqual(list(e.map(sq, [])), [])
        it = e.map(boom_at_2, range(5))
        self.assertEqual(next(it), 0)
        self.assertEqual(next(it), 1)
        with self.assertRaises(KeyError):
            next(it)

    def test_map_timeout(self):
        e = self.ex(1)
        with self.assertRaises(self.fut.TimeoutError):
            list(e.map(sleep, [3], timeout=0.2))

    def test_wait_as_completed(self):
        e = self.ex(2)
        fs = [e.submit(sq, i) for i in range(20)]
        got = sorted(f.result() for f in self.fut.as_completed(fs, timeout=60))
        self.assertEqual(got, sorted(i * i for i in range(20)))
        done, not_done = self.fut.wait(fs, timeout=60)
        self.assertEqual((len(done), len(not_done)), (20, 0))
        # the stdlib's wait on these futures too
        done, _ = cf.wait([e.submit(sq, 2)], return_when=cf.FIRST_COMPLETED, timeout=60)
        self.assertEqual(done.pop().result(), 4)

    def test_done_callback(self):
        e = self.ex(1)
        got = []
        f = e.submit(sq, 4)
        f.add_done_callback(lambda f: got.append(f.result()))
        f.result(30)
        time.sleep(0.1)
        self.assertEqual(got, [16])

    def test_cancel_futures(self):
        e = self.fut.ProcessPoolExecutor(1, mp_context=self.mp)
        first = e.submit(sleep, 0.5)
        rest = [e.submit(sq, i) for i in range(20)]
        e.shutdown(wait=True, cancel_futures=True)
        self.assertEqual(first.result(), 0.5)
        self.assertTrue(any(f.cancelled() for f in rest))
        for f in rest:
            self.assertTrue(f.done())

    def test_submit_after_shutdown(self):
        e = self.ex(1)
        e.shutdown()
        with self.assertRaises(RuntimeError):
            e.submit(sq, 1)

    def test_context_manager(self):
        with self.fut.ProcessPoolExecutor(2, mp_context=self.mp) as e:
            fs = [e.submit(sleep, 0.1) for _ in range(4)]
        self.assertTrue(all(f.done() for f in fs))

    def test_initializer(self):
        e = self.ex(1, initializer=init, initargs=(1, 2))
        self.assertEqual(e.submit(get_g).result(30), [1, 2])

    def test_initializer_failure(self):
        e = self.ex(1, initializer=init_fails)
        with self.assertRaises(self.fut.process.BrokenProcessPool
                               if hasattr(self.fut, 'process') else cf.process.BrokenProcessPool):
            e.submit(sq, 1).result(30)

    def test_max_tasks_per_child(self):
        if self.method == 'fork':
            with self.assertRaises(ValueError):
                self.fut.ProcessPoolExecutor(1, mp_context=self.mp, max_tasks_per_child=1)
            return
        e = self.ex(1, max_tasks_per_child=2)
        pids = [e.submit(getpid).result(30) for _ in range(6)]
        self.assertEqual(len(set(pids)), 3)

    def test_unpicklable(self):
        e = self.ex(1)
        f = e.submit(sq, lambda: 1)
        with self.assertRaises(Exception) as cm:
            f.result(30)
        self.assertIn('pickle', str(cm.exception).lower())
        self.assertEqual(e.submit(sq, 3).result(30), 9)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            self.fut.ProcessPoolExecutor(0)
        with self.assertRaises(TypeError):
            self.fut.ProcessPoolExecutor(1, initializer=5)
        with self.assertRaises(ValueError):
            self.fut.ProcessPoolExecutor(1, mp_context=self.mp, max_tasks_per_child=0)
        e = self.ex(1)
        with self.assertRaises(ValueError):
            e.map(sq, [1], chunksize=0)


def boom_at_2(x):
    if x == 2:
        raise KeyError(x)
    return x


class ThreadExecutor(unittest.TestCase):
    def test_thread_pool_executor(self):
        with mproc.futures.ThreadPoolExecutor(2) as e:
            self.assertEqual(e.submit(lambda: 3).result(), 3)
            self.assertEqual(list(e.map(sq, range(4))), [0, 1, 4, 9])

    def test_exception_classes(self):
        self.assertIs(mproc.futures.CancelledError, cf.CancelledError)
        self.assertIs(mproc.futures.TimeoutError, cf.TimeoutError)
        self.assertIs(mproc.futures.BrokenProcessPool, cf.process.BrokenProcessPool)
        self.assertTrue(issubclass(mproc.futures.Future, cf.Future))


@both_futures(modules=(('mproc', mproc.futures, mproc),))
class BeyondPython:
    def ex(self, *a, **k):
        e = mproc.futures.ProcessPoolExecutor(*a, mp_context=self.mp, **k)
        self.addCleanup(e.shutdown, wait=True, cancel_futures=True)
        return e

    def test_worker_death_fails_only_its_task(self):
        e = self.ex(2)
        others = [e.submit(sleep, 0.2) for _ in range(3)]
        f = e.submit(die)
        with self.assertRaises(mproc.WorkerDiedError) as cm:
            f.result(30)
        self.assertIsInstance(cm.exception, cf.process.BrokenProcessPool)
        self.assertIn('signal 9', str(cm.exception))
        self.assertEqual([o.result(30) for o in others], [0.2] * 3)
        self.assertEqual(e.submit(sq, 5).result(30), 25)

    def test_unpickling_errors_fail_only_their_task(self):
        # The futures fail as Python's (BrokenProcessPool, with the error as
        # its cause), and the executor goes on.
        e = self.ex(2)
        for fn, arg, cause in ((id, ErrorAtUnpickle(), RuntimeError),
                               (make, ErrorAtUnpickle, RuntimeError),
                               (make, ExitAtUnpickle, SystemExit)):
            with self.assertRaises(cf.process.BrokenProcessPool) as cm:
                e.submit(fn, arg).result(30)
            self.assertIsInstance(cm.exception.__cause__, cause)
            self.assertEqual(e.submit(sq, 6).result(30), 36)

    def test_exit_in_worker_skips_finalization(self):
        # A worker ended by sys.exit (here while it unpickles its task)
        # ends at once, as Python's processes end (os._exit), without
        # Python's finalization, where a fork of this program would wait
        # for this exit hook: the task fails in well under its 120 s.
        add_slow_exit_hook(self)
        e = self.ex(2)
        t = time.monotonic()
        with self.assertRaises(mproc.WorkerDiedError) as cm:
            e.submit(id, ExitAtUnpickle()).result(60)
        self.assertLess(time.monotonic() - t, 30)
        self.assertIn('exited with code 1', str(cm.exception))
        self.assertEqual(e.submit(sq, 4).result(30), 16)

    def test_map_bounded(self):
        e = self.ex(2)
        pulled = []

        def gen():
            for i in range(10**9):
                pulled.append(i)
                yield i
        it = e.map(sq, gen())
        self.assertEqual([next(it) for _ in range(10)], [x * x for x in range(10)])
        self.assertLessEqual(len(pulled), 10 + 2 * 2 + 1)
        it = e.map(sq, gen(), buffersize=3)
        next(it)
        it.close()

    def test_terminate_and_kill_workers(self):
        for how in ('terminate_workers', 'kill_workers'):
            e = mproc.futures.ProcessPoolExecutor(2, mp_context=self.mp)
            fs = [e.submit(sleep, 10) for _ in range(2)]
            time.sleep(0.5)
            t = time.monotonic()
            getattr(e, how)()
            self.assertLess(time.monotonic() - t, 5)
            for f in fs:
                self.assertIsInstance(f.exception(30), cf.process.BrokenProcessPool)
            with self.assertRaises(RuntimeError):
                e.submit(sq, 1)

    def test_cancel(self):
        e = self.ex(1)
        block = e.submit(sleep, 0.5)
        fs = [e.submit(sq, i) for i in range(30)]
        cancelled = [f.cancel() for f in fs]
        self.assertTrue(any(cancelled))
        done, _ = cf.wait(fs, timeout=60)
        self.assertEqual(len(done), 30)
        for f, c in zip(fs, cancelled):
            self.assertEqual(f.cancelled(), c)
            if not c:
                self.assertEqual(f.result(), fs.index(f) ** 2)
        self.assertEqual(block.result(30), 0.5)


if __name__ == '__main__':
    unittest.main()
