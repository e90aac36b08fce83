"""Pool, AsyncResult and ThreadPool (the twin of multiprocessing.pool), on
the core's pool: every task, and every chunk of a map, is one task of the
core's pool (python/src/pool.c), which dispatches it, gets its result back,
notices a worker that dies and enforces time limits. See docs/python.md,
"Pools and futures"."""
import atexit
import itertools
import os
import pickle
import queue
import sys
import threading
import time
import warnings
import weakref

from concurrent.futures.process import BrokenProcessPool
from multiprocessing.pool import ThreadPool as _StdThreadPool
from multiprocessing.pool import MaybeEncodingError  # noqa: F401 (Python's class)
# Python's: a task's exception pickles as rebuild_exc(...) of multiprocessing.pool,
# which must resolve where that module name leads (to this module, for a program
# that makes `multiprocessing` mproc).
from multiprocessing.pool import ExceptionWithTraceback, RemoteTraceback, rebuild_exc  # noqa: F401

from . import _core
from . import _poolworker as _w
from . import context as _context
from . import process as _process

__all__ = ['Pool', 'ThreadPool', 'MaybeEncodingError', 'AsyncResult', 'ApplyResult', 'MapResult', 'IMapIterator',
           'WorkerDiedError', 'TaskTimeoutError']

RUN, CLOSE, TERMINATE = 0, 1, 2
_HIGHEST = pickle.HIGHEST_PROTOCOL

TimeoutError = _context.TimeoutError


class WorkerDiedError(BrokenProcessPool):
    """The worker running the task died (a signal, an exit): only that task
    fails; the pool replaces the worker and goes on. The message names the
    signal (or exit code) and the worker's pid, which is also .pid."""

    def __init__(self, msg, pid=None):
        super().__init__(msg)
        self.pid = pid


class TaskTimeoutError(TimeoutError):
    """The task ran past its time limit (apply_async(..., timeout=)): its
    worker was killed and replaced."""

    def __init__(self, msg, pid=None):
        super().__init__(msg)
        self.pid = pid


def _error(rc, msg, pid, executor=False):
    """The exception for a failure of the core's future (not the task's own
    exception, which travels pickled)."""
    if rc == _core.E_WORKERDIED:
        return WorkerDiedError(msg, pid)
    if rc == _core.E_TIMELIMIT:
        return TaskTimeoutError(msg, pid)
    if rc == _core.E_CANCELLED:
        from concurrent.futures import CancelledError
        return CancelledError()
    if rc == _core.E_SHUTDOWN:
        if executor:
            return BrokenProcessPool(
                'A child process terminated abruptly, the process pool is not usable anymore')
        return RuntimeError('the pool was terminated before the task ended')
    return RuntimeError(msg)


def _broken(what, cause):
    from concurrent.futures.process import BrokenProcessPool
    e = BrokenProcessPool(what)
    e.__cause__ = cause
    return e


def _decode(out, executor=False):
    """(ok, value) from the core's outcome (code, bytes, msg, pid). For an
    executor, a task that its worker could not unpickle, and a result that
    cannot be unpickled here (an error, or sys.exit in its unpickling),
    fail that future with BrokenProcessPool, as Python's executor fails
    them (the pool goes on: Python's breaks)."""
    rc, data, msg, pid = out
    if rc != 0:
        return False, _error(rc, msg, pid, executor)
    try:
        ok, value = _core.codec_loads(data)
    except Exception as e:
        return False, (_broken('the result could not be unpickled', e) if executor else e)
    except BaseException as e:
        if not executor:
            raise
        return False, _broken('the result could not be unpickled', e)
    if ok is None:
        ok = False
        if executor:
            value = _broken('the task could not be unpickled in its worker', value)
    return ok, value


def _ms(timeout):
    if timeout is None:
        return -1
    return max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))


def _init_data(ctx, kind, initializer, initargs):
    """What each worker's initializer gets (see _poolworker.init)."""
    method = ctx.get_start_method()
    if method == 'fork':
        return method, (kind, initializer, tuple(initargs))
    from . import _child, reduction
    prep = _child._preparation_data(method)
    with reduction.spawning() as s:
        rest = _child._dumps_for_child((initializer, tuple(initargs)))  # authkeys too
    if s.conns:
        raise TypeError('connections cannot be passed to pool workers in initargs')
    return method, pickle.dumps((kind, prep, rest), _HIGHEST)


_live_pools = weakref.WeakSet()


@atexit.register
def _terminate_live_pools():
    # Before the interpreter finalises, so that no pool thread calls into it.
    for p in list(_live_pools):
        try:
            p._stop_core()
        except Exception:
            pass


class _Progress:
    """progress=True: a bar on stderr (done/total, rate, ETA), updated as
    chunks complete."""

    def __init__(self, total):
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.last = 0.0
        self.ended = False
        self._draw(True)

    def add(self, n):
        with self.lock:
            self.done += n
            self._draw(self.done >= self.total)

    def end(self):
        """Every item was taken: the bar's last state."""
        with self.lock:
            self.total = max(self.total, self.done)
            self.done = self.total
            self._draw(True)

    def _draw(self, force):
        if self.ended:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        total = self.total or 1
        frac = min(1.0, self.done / total)
        el = now - self.t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = '#' * int(frac * 30)
        sys.stderr.write('\r[%-30s] %3d%% %d/%d %.0f it/s ETA %.1fs' %
                         (bar, frac * 100, self.done, self.total, rate, eta))
        if self.done >= self.total and self.total:
            sys.stderr.write('\n')
            self.ended = True
        sys.stderr.flush()


class ApplyResult:
    """The result of apply_async (multiprocessing.pool.AsyncResult)."""

    def __init__(self, callback=None, error_callback=None):
        self._callback = callback
        self._error_callback = error_callback
        self._fut = None
        self._out = None  # (ok, value) once known
        self._event = threading.Event() if (callback or error_callback) else None

    # The outcome from the core's completing thread (with callbacks).
    def _on_done(self, out):
        ok, value = _decode(out)
        self._out = (ok, value)
        try:
            if ok and self._callback:
                self._callback(value)
            elif not ok and self._error_callback:
                self._error_callback(value)
        finally:
            self._event.set()

    def _fail_now(self, exc):
        self._out = (False, exc)
        if self._error_callback:
            self._error_callback(exc)
        if self._event is not None:
            self._event.set()

    # With callbacks, the result is ready once they ran (the event), as
    # Python's: _out is set before them.
    def ready(self):
        if self._event is not None:
            return self._event.is_set()
        if self._out is not None:
            return True
        return _core.future_op(self._fut, 0)

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._outcome(0)[0]

    def wait(self, timeout=None):
        if self._event is not None:
            self._event.wait(timeout)
            return
        if self._out is not None:
            return
        self._outcome(timeout, fetch=False)

    def _outcome(self, timeout, fetch=True):
        if self._event is not None:
            if not self._event.wait(timeout):
                return None
            return self._out
        if self._out is None:
            out = _core.future_result(self._fut, _ms(timeout))
            if out[0] == _core.E_TIMEDOUT:
                return None
            self._out = _decode(out)
        return self._out

    def get(self, timeout=None):
        out = self._outcome(timeout)
        if out is None:
            raise TimeoutError
        ok, value = out
        if ok:
            return value
        raise value


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of map_async and starmap_async: one core task per chunk."""

    def __init__(self, n, callback=None, error_callback=None, progress=None):
        super().__init__(callback, error_callback)
        self._futs = []
        self._n = n
        self._progress = progress
        if progress is not None and self._event is None:
            self._event = threading.Event()
        self._left = None
        self._chunks = []
        self._lock = threading.Lock()

    def _expect(self, nchunks):
        self._left = nchunks
        self._chunks = [None] * nchunks
        if nchunks == 0:
            self._finish()

    def _chunk_cb(self, i, count):
        def cb(out):
            self._chunks[i] = _decode(out)
            if self._progress is not None:
                self._progress.add(count)
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self._finish()
        return cb

    def _finish(self):
        out = self._gather(self._chunks)
        self._out = out
        try:
            ok, value = out
            if ok and self._callback:
                self._callback(value)
            elif not ok and self._error_callback:
                self._error_callback(value)
        finally:
            if self._event is not None:
                self._event.set()

    @staticmethod
    def _gather(chunks):
        result = []
        for ok, value in chunks:
            if not ok:
                return False, value
            result.extend(value)
        return True, result

    def ready(self):
        if self._event is not None:
            return self._event.is_set()
        if self._out is not None:
            return True
        return all(_core.future_op(f, 0) for f in self._futs)

    def _outcome(self, timeout, fetch=True):
        if self._event is not None:
            if not self._event.wait(timeout):
                return None
            return self._out
        if self._out is not None:
            return self._out
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks = []
        for f in self._futs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            out = _core.future_result(f, _ms(left))
            if out[0] == _core.E_TIMEDOUT:
                return None
            chunks.append(_decode(out))
        self._out = self._gather(chunks)
        self._futs = []
        return self._out


class IMapIterator:
    """imap and imap_unordered: chunks are submitted as results are taken,
    at most max_inflight items at a time (the input is read in the caller's
    thread, as needed); join() or terminate() submits what is left."""

    def __init__(self, pool, func, iterable, chunksize, unordered, star, max_inflight,
                 progress):
        self._pool = pool
        self._func = func
        self._it = iter(iterable)
        self._chunksize = chunksize
        self._unordered = unordered
        self._kind = _w.STARMAP if star else _w.MAP
        nchunks = max(1, (max_inflight + chunksize - 1) // chunksize)
        self._window = nchunks
        self._pending = {}  # chunk index -> future or (ok, value)
        self._next_chunk = 0  # next chunk to submit
        self._next_out = 0  # ordered: next chunk to yield
        self._buf = []  # items of the chunk being yielded
        self._exhausted = False
        self._err = None  # what the input raised, once the results ahead are taken
        self._done_q = queue.SimpleQueue() if unordered else None
        self._progress = progress
        self._lock = threading.RLock()
        pool._imaps.add(self)
        self._fill()

    def __iter__(self):
        return self

    def _submit_one(self):
        try:
            chunk = list(itertools.islice(self._it, self._chunksize))
        except Exception as e:
            # As Python's: the input's exception takes the place of the
            # chunk it broke (whose items are lost), raised by next() once
            # the results ahead of it are yielded, and ends the iterator.
            self._err = e
            chunk = None
        if not chunk:
            self._exhausted = True
            self._pool._imap_done(self)
            return False
        i = self._next_chunk
        self._next_chunk += 1
        cb = None
        if self._unordered or self._progress is not None:
            cb = self._make_cb(i, len(chunk))
        self._pending[i] = self._pool._submit((self._kind, self._func, chunk, None), cb,
                                              None)
        return True

    def _make_cb(self, i, n):
        q, progress = self._done_q, self._progress

        def cb(out):
            if progress is not None:
                progress.add(n)
            if q is not None:
                q.put((i, _decode(out)))
        return cb

    def _fill(self, all_of_it=False):
        with self._lock:
            while not self._exhausted and (all_of_it or len(self._pending) < self._window):
                if not self._submit_one():
                    break

    def _rest(self):
        # join/terminate: whatever input is left is submitted now.
        try:
            self._fill(True)
        except Exception:  # a submit refused: the pool is going
            self._exhausted = True
            self._pool._imap_done(self)

    def next(self, timeout=None):
        while True:
            if self._buf:
                return self._buf.pop()
            self._fill()
            if not self._pending:
                if self._progress is not None:
                    self._progress.end()
                err, self._err = self._err, None
                if err is not None:
                    raise err
                raise StopIteration
            if self._unordered:
                try:
                    i, (ok, value) = self._done_q.get(timeout=timeout)
                except queue.Empty:
                    raise TimeoutError from None
                del self._pending[i]
            else:
                i = self._next_out
                f = self._pending[i]
                out = _core.future_result(f, _ms(timeout))
                if out[0] == _core.E_TIMEDOUT:
                    raise TimeoutError
                del self._pending[i]
                self._next_out += 1
                ok, value = _decode(out)
            self._fill()
            if not ok:
                raise value
            self._buf = list(reversed(value))

    __next__ = next



def _check_pool_args(processes, maxtasksperchild, initializer):
    """The worker count (the CPUs' by default), after the checks Python's
    Pool makes, with its exceptions and messages."""
    n = (os.cpu_count() or 1) if processes is None else processes
    bad_max = maxtasksperchild is not None and (
        not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0)
    problem = (n < 1 and (ValueError, "Number of processes must be at least 1")
               or bad_max and (ValueError, "maxtasksperchild must be a positive int or None")
               or initializer is not None and not callable(initializer)
               and (TypeError, "initializer must be a callable"))
    if problem:
        raise problem[0](problem[1])
    return n

class Pool:
    """multiprocessing.Pool on the core's pool."""

    _wrap_exception = True

    @staticmethod
    def Process(ctx, *args, **kwds):
        return ctx.Process(*args, **kwds)

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None):
        self._state = RUN
        self._h = None
        self._ctx = context or _context.get_context()
        processes = _check_pool_args(processes, maxtasksperchild, initializer)
        self._processes = processes
        self._imaps = set()
        method, init = _init_data(self._ctx, 'PoolWorker', initializer, initargs)
        if method != 'fork':  # fork: the extension's fork hook flushes
            _process._flush_std_streams()  # as each of Python's workers starts
        self._h = _core.pool_new(method, processes, maxtasksperchild or 0, init, False)
        _live_pools.add(self)

    def __len__(self):
        return self._processes

    def __del__(self, _warn=warnings.warn):
        # As Python's: a pool dropped while running is a ResourceWarning
        # (its workers end with the core's pool object).
        if getattr(self, '_h', None) is not None and self._state == RUN:
            _warn('unclosed running multiprocessing pool %r' % (self,), ResourceWarning,
                  source=self)

    def __repr__(self):
        state = {RUN: 'RUN', CLOSE: 'CLOSE', TERMINATE: 'TERMINATE'}[self._state]
        return '<%s.%s state=%s pool_size=%d>' % (type(self).__module__, type(self).__qualname__,
                                                   state, self._processes)

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, task, cb, timeout):
        data = pickle.dumps(task, _HIGHEST)
        return _core.pool_apply(self._h, data, 0 if timeout is None else max(1, _ms(timeout)),
                                cb)

    @property
    def _pool(self):
        """The workers, as processes with a pid (Python's list of them)."""
        class _W:
            def __init__(self, pid):
                self.pid = pid
        return [_W(p) for p in _core.pool_op(self._h, 3)] if self._h is not None else []

    # ---- apply ----
    def apply(self, func, args=(), kwds={}):
        self._check_running()
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None, *,
                    timeout=None):
        """timeout (beyond Python): the task's time limit in seconds once
        it runs; past it, its worker is killed and replaced, and get()
        raises TaskTimeoutError."""
        self._check_running()
        r = ApplyResult(callback, error_callback)
        try:
            data = pickle.dumps((_w.APPLY, func, args, kwds), _HIGHEST)
        except Exception as e:
            r._fail_now(e)
            return r
        cb = r._on_done if r._event is not None else None
        r._fut = _core.pool_apply(self._h, data,
                                  0 if timeout is None else max(1, _ms(timeout)), cb)
        return r

    # ---- map ----
    def _map_async(self, func, iterable, star, chunksize, callback, error_callback, progress):
        self._check_running()
        if not hasattr(iterable, '__len__') or not hasattr(iterable, '__getitem__'):
            iterable = list(iterable)
        n = len(iterable)
        if chunksize is None:
            # Python's rule gives 4 chunks a worker; 64 let the parent read
            # results while the workers still run, and a worker that gets
            # less CPU than another hold back less (the results are the same)
            chunksize, extra = divmod(n, self._processes * 64)
            if extra:
                chunksize += 1
        if n == 0 or chunksize < 1:
            # Python's: nothing runs, the result is n Nones
            r = MapResult(n, callback, error_callback)
            r._chunks = [(True, [None] * n)]
            r._left = 0
            r._finish()
            return r
        bar = _Progress(n) if progress else None
        r = MapResult(n, callback, error_callback, bar)
        kind = _w.STARMAP if star else _w.MAP
        starts = range(0, n, chunksize) if n else ()
        with_cb = r._event is not None
        if with_cb:
            r._expect(len(starts))
        try:
            for i, s in enumerate(starts):
                chunk = iterable[s:s + chunksize]
                if not isinstance(chunk, (list, tuple, range)):
                    chunk = list(chunk)
                cb = r._chunk_cb(i, len(chunk)) if with_cb else None
                r._futs.append(self._submit((kind, func, chunk, None), cb, None))
        except Exception as e:
            if with_cb and r._left != len(r._futs):
                # the chunks not submitted will never call back
                with r._lock:
                    r._left -= len(starts) - len(r._futs)
                    for j in range(len(r._futs), len(starts)):
                        r._chunks[j] = (False, e)
                    last = r._left == 0
                if last:
                    r._finish()
            else:
                r._out = (False, e)
            return r
        if not with_cb and n == 0:
            r._out = (True, [])
        return r

    def map(self, func, iterable, chunksize=None, *, progress=False):
        return self._map_async(func, iterable, False, chunksize, None, None, progress).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                  progress=False):
        return self._map_async(func, iterable, False, chunksize, callback, error_callback,
                               progress)

    def starmap(self, func, iterable, chunksize=None, *, progress=False):
        return self._map_async(func, iterable, True, chunksize, None, None, progress).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None,
                      *, progress=False):
        return self._map_async(func, iterable, True, chunksize, callback, error_callback,
                               progress)

    def _imap(self, func, iterable, chunksize, unordered, max_inflight, progress):
        self._check_running()
        if chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        if max_inflight is None:
            max_inflight = 4 * self._processes * chunksize
        bar = None
        if progress:
            total = len(iterable) if hasattr(iterable, '__len__') else 0
            bar = _Progress(total)
        return IMapIterator(self, func, iterable, chunksize, unordered, False,
                            max(1, max_inflight), bar)

    def imap(self, func, iterable, chunksize=1, *, max_inflight=None, progress=False):
        """max_inflight (beyond Python): at most this many items submitted
        and not yet taken (default 4 * processes * chunksize)."""
        return self._imap(func, iterable, chunksize, False, max_inflight, progress)

    def imap_unordered(self, func, iterable, chunksize=1, *, max_inflight=None, progress=False):
        return self._imap(func, iterable, chunksize, True, max_inflight, progress)

    # ---- lifecycle ----
    def _imap_done(self, it):
        self._imaps.discard(it)
        if self._state == CLOSE and not self._imaps:
            _core.pool_op(self._h, 0)

    def close(self):
        if self._state == RUN:
            self._state = CLOSE
            if not self._imaps:
                _core.pool_op(self._h, 0)

    def terminate(self):
        if self._h is None:
            return
        self._state = TERMINATE
        self._imaps.clear()
        _core.pool_op(self._h, 1)

    def _stop_core(self):
        if self._h is not None and self._state != TERMINATE:
            self._state = TERMINATE
            _core.pool_op(self._h, 1)

    def join(self):
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        for it in list(self._imaps):
            it._rest()
        _core.pool_op(self._h, 2, -1)

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError(
            'pool objects cannot be passed between processes or pickled')


class ThreadPool(_StdThreadPool):
    """multiprocessing.pool.ThreadPool: threads of this process (Python's
    own class: there is nothing for the core to do between threads)."""
