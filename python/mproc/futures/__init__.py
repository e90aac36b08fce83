"""mproc.futures: concurrent.futures on the core (docs/python.md, "Pools
and futures"). ProcessPoolExecutor is the core's process executor (the
core dispatches, notices dead workers, replaces them); its futures are
concurrent.futures.Future objects, completed from the core's result thread,
so concurrent.futures.wait and as_completed work on them too.
ThreadPoolExecutor, wait, as_completed and the exceptions are Python's
own."""
import atexit
import collections
import itertools
import os
import pickle
import threading
import time
import weakref

import concurrent.futures as _cf
from concurrent.futures import (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED,  # noqa: F401
                                CancelledError, TimeoutError, InvalidStateError, Executor,
                                ThreadPoolExecutor, wait, as_completed)
from concurrent.futures._base import (PENDING, RUNNING, CANCELLED, CANCELLED_AND_NOTIFIED,
                                      FINISHED)
from concurrent.futures.process import BrokenProcessPool

from .. import _core
from .. import _poolworker as _w
from .. import context as _context
from .. import process as _process
from ..pool import WorkerDiedError, _decode, _init_data, _ms

__all__ = ['FIRST_COMPLETED', 'FIRST_EXCEPTION', 'ALL_COMPLETED', 'CancelledError',
           'TimeoutError', 'InvalidStateError', 'BrokenProcessPool', 'WorkerDiedError',
           'Future', 'Executor', 'wait', 'as_completed', 'ProcessPoolExecutor',
           'ThreadPoolExecutor']

_HIGHEST = pickle.HIGHEST_PROTOCOL


class _Waiters(list):
    """Future._waiters: the first waiter (concurrent.futures.wait,
    as_completed) makes the future follow the core's from then on."""

    def __init__(self, fut):
        super().__init__()
        self._fut = fut

    def append(self, w):
        super().append(w)
        self._fut._arm()


class Future(_cf.Future):
    """A concurrent.futures.Future over a task of the core. Its state
    follows the core's future lazily: when it is asked (done, result, ...),
    or, once something waits on it (a waiter of wait/as_completed, a done
    callback), from the core's completing thread; so a program that only
    submits and reads results costs no thread switch per task.
    cancel() withdraws the task from the core."""

    def __init__(self):
        super().__init__()
        self._cfut = None
        self._armed = False
        self._waiters = _Waiters(self)

    def _arm(self):
        if not self._armed and self._cfut is not None:
            self._armed = True
            _core.future_add_cb(self._cfut, self._on_done)

    def _on_done(self, out):
        # The core's future is done: this one follows (once).
        if out[0] == _core.E_TIMEDOUT:
            return
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED):
                return
            if out[0] == _core.E_CANCELLED:
                _cf.Future.cancel(self)
                self.set_running_or_notify_cancel()
                return
            ok, value = _decode(out, executor=True)
            self._state = RUNNING
            if ok:
                self.set_result(value)
            else:
                self.set_exception(value)

    def _sync(self, timeout=0):
        if self._cfut is None or self._state in (CANCELLED_AND_NOTIFIED, FINISHED):
            return
        self._on_done(_core.future_result(self._cfut, _ms(timeout)))

    def done(self):
        self._sync()
        return super().done()

    def cancelled(self):
        self._sync()
        return super().cancelled()

    def running(self):
        self._sync()
        with self._condition:
            if self._state != PENDING or self._cfut is None:
                return self._state == RUNNING
        return _core.future_op(self._cfut, 1)

    def result(self, timeout=None):
        self._sync(timeout)
        return super().result(0 if self._cfut is not None else timeout)

    def exception(self, timeout=None):
        self._sync(timeout)
        return super().exception(0 if self._cfut is not None else timeout)

    def add_done_callback(self, fn):
        self._arm()
        super().add_done_callback(fn)

    def cancel(self):
        self._sync()
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            if self._state != PENDING:
                return False
        if self._cfut is None:
            return _cf.Future.cancel(self)
        _core.future_op(self._cfut, 4)
        self._sync()
        return self.cancelled()


def _method_of(mp_context):
    if mp_context is None:
        return _context.get_context()
    return _context.get_context(mp_context.get_start_method())


_live = weakref.WeakSet()


@atexit.register
def _shutdown_live():
    # As Python's: the work submitted is done before the interpreter goes.
    for ex in list(_live):
        try:
            ex.shutdown(wait=True)
        except Exception:
            pass


class ProcessPoolExecutor(_cf.Executor):
    """concurrent.futures.ProcessPoolExecutor on the core's executor.

    Beyond Python: a worker that dies fails only its task (WorkerDiedError,
    a BrokenProcessPool) and is replaced; map keeps a bounded number of
    tasks in flight by default (buffersize=2 * max_workers)."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None):
        self._h = None
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mp_context is None and max_tasks_per_child is not None:
            mp_context = _context.get_context('spawn')
        ctx = _method_of(mp_context)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            kind = (TypeError if not isinstance(max_tasks_per_child, int)
                    else ValueError if max_tasks_per_child <= 0 else None)
            if kind is not None:
                raise kind("max_tasks_per_child must be "
                           + ("an integer" if kind is TypeError else ">= 1"))
            if ctx.get_start_method() == "fork":
                raise ValueError("max_tasks_per_child is incompatible with"
                                 " the 'fork' multiprocessing start method;"
                                 " supply a different mp_context.")
        self._max_workers = max_workers
        self._mp_context = ctx
        self._shutdown_thread = False
        self._shutdown_lock = threading.Lock()
        self._broken = False
        method, init = _init_data(ctx, 'Process', initializer, initargs)
        try:
            if method != 'fork':  # fork: the extension's fork hook flushes
                _process._flush_std_streams()  # as each of Python's workers starts
            self._h = _core.pool_new(method, max_workers, max_tasks_per_child or 0, init, True)
        except RuntimeError:
            # Python's executor breaks when an initializer fails.
            self._broken = 'A process in the initializer failed'
        _live.add(self)

    def _raw_submit(self, task, cb):
        with self._shutdown_lock:
            self._check_open()
            data = pickle.dumps(task, _HIGHEST)
            return _core.pool_apply(self._h, data, 0, cb)

    def _check_open(self):
        """Raises as Python's executor does once it is broken or shut down."""
        if self._broken:
            raise BrokenProcessPool(self._broken)
        if self._shutdown_thread:
            raise RuntimeError('cannot schedule new futures after shutdown')

    def submit(self, fn, /, *args, **kwargs):
        f = Future()
        try:
            f._cfut = self._raw_submit((_w.FUTURE + _w.APPLY, fn, args, kwargs), None)
        except (BrokenProcessPool, RuntimeError):
            raise
        except Exception as e:  # unpicklable: the future fails, as Python's
            f.set_running_or_notify_cancel()
            f.set_exception(e)
        return f
    submit.__doc__ = _cf.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """As Python's (3.14, with buffersize); at most buffersize tasks
        (chunks) are in flight, 2 * max_workers by default."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if buffersize is None:
            buffersize = 2 * self._max_workers
        end_time = None if timeout is None else timeout + time.monotonic()
        args = zip(*iterables)
        if chunksize > 1:
            kind = _w.FUTURE + _w.STARMAP
            tasks = iter(lambda: list(itertools.islice(args, chunksize)), [])
        else:
            kind = _w.FUTURE + _w.APPLY
            tasks = args

        def submit_next():
            for a in tasks:
                if chunksize > 1:
                    return self._raw_submit((kind, fn, a, None), None)
                try:
                    return self._raw_submit((kind, fn, a, {}), None)
                except (BrokenProcessPool, RuntimeError):
                    raise
                except Exception as e:
                    return e
            return None

        fs = collections.deque()
        for _ in range(buffersize):
            f = submit_next()
            if f is None:
                break
            fs.append(f)

        def result_iterator():
            try:
                while fs:
                    f = fs.popleft()
                    if isinstance(f, BaseException):
                        raise f
                    left = None if end_time is None else max(0.0, end_time - time.monotonic())
                    out = _core.future_result(f, _ms(left))
                    if out[0] == _core.E_TIMEDOUT:
                        raise TimeoutError
                    res = list(_decode(out, executor=True))  # [ok, value]
                    if not res[0]:
                        raise res[1]
                    nf = submit_next()
                    if nf is not None:
                        fs.append(nf)
                    # Yielded without a reference kept here, as Python's
                    # map: a result is freed once the caller drops it.
                    if chunksize > 1:
                        chunk = res.pop()
                        chunk.reverse()
                        while chunk:
                            yield chunk.pop()
                    else:
                        yield res.pop()
            finally:
                for f in fs:
                    if not isinstance(f, BaseException):
                        _core.future_op(f, 4)
        return result_iterator()

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._shutdown_lock:
            self._shutdown_thread = True
        if self._h is not None:
            _core.pool_op(self._h, 4, bool(wait), bool(cancel_futures))
    shutdown.__doc__ = _cf.Executor.shutdown.__doc__

    def terminate_workers(self):
        """Python 3.14's: stops every worker with SIGTERM (SIGKILL 1 s
        later); futures not started are cancelled, running ones fail with
        BrokenProcessPool."""
        with self._shutdown_lock:
            self._shutdown_thread = True
        if self._h is not None:
            _core.pool_op(self._h, 5)

    def kill_workers(self):
        """As terminate_workers, with SIGKILL."""
        with self._shutdown_lock:
            self._shutdown_thread = True
        if self._h is not None:
            _core.pool_op(self._h, 6)
