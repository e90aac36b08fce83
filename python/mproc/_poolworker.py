"""The Python side of a pool worker (python/src/pool.c): the core's worker
calls init() once, then run() for each task, with the task's pickle; run
returns (ok, value) encoded as a queue message is (python/src/codec.c:
marshal's for plain builtin values, else a pickle), an exception
travelling as Python's pools send it (with the remote traceback's text as
its __cause__); ok is None when the task's own pickle could not be
loaded."""
import itertools
import pickle

from multiprocessing.pool import ExceptionWithTraceback, MaybeEncodingError

from . import _core, process

# The kinds of task (their first field).
APPLY, MAP, STARMAP = 0, 1, 2
FUTURE = 3  # added to a kind: an executor's task (concurrent.futures' exceptions)

_HIGHEST = pickle.HIGHEST_PROTOCOL


def init(data):
    """Prepares the worker (spawn, forkserver: as Python's spawn does) and
    runs the pool's initializer. An exception ends the pool's creation.
    data: (worker kind, initializer, initargs) under fork, else the pickle
    of (worker kind, preparation data, the pickle of (initializer,
    initargs))."""
    if isinstance(data, bytes):
        from . import _child, reduction
        kind, prep, rest = pickle.loads(data)
        _child._prepare(prep)
        initializer, initargs = reduction.loads(rest)
    else:
        kind, initializer, initargs = data
        _drop_inherited_connections()
    process._worker_started(kind)
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            if kind == 'Process':  # an executor's worker logs it, as Python's
                import logging
                logging.getLogger('concurrent.futures').critical('Exception in initializer:',
                                                                 exc_info=True)
            raise
    process._flush_std_streams()


def _drop_inherited_connections():
    """A fork worker's manager proxies make connections of their own: those
    it inherited are its parent's (a manager channel refuses a process
    other than its owner, and a socket shared with the parent would mix
    the two processes' replies). Python's workers drop them in the
    after-fork callbacks, which also take a reference for each inherited
    proxy; mproc's workers end without finalization and would never give
    it back, so they only drop the connections."""
    from multiprocessing.managers import BaseProxy
    for tls, _ in list(BaseProxy._address_to_local.values()):
        tls.__dict__.clear()


def _wrap(e, kind):
    if kind >= FUTURE:
        from concurrent.futures.process import _ExceptionWithTraceback
        return _ExceptionWithTraceback(e, e.__traceback__)
    return ExceptionWithTraceback(e, e.__traceback__)


def run(payload):
    """A SystemExit out of here ends the worker (python/src/pool.c): one
    raised while the task is unpickled, and, in a Pool's task, by the
    function or the result's pickling. An executor's function, or its
    result's pickling, that raises it (or any BaseException) fails the
    future with it, as Python's ProcessPoolExecutor does."""
    kind = APPLY
    r = None
    unpickled = False
    try:
        kind, func, args, kwds = pickle.loads(payload)
        unpickled = True
        k = kind % FUTURE if kind >= FUTURE else kind
        try:
            if k == APPLY:
                r = func(*args, **kwds)
            elif k == MAP:
                r = list(map(func, args))
            else:
                r = list(itertools.starmap(func, args))
        except Exception:
            raise
        except BaseException as e:
            if kind < FUTURE:
                raise
            out = (False, _wrap(e, kind))
        else:
            out = (True, r)
    except Exception as e:
        # ok None: the task itself could not be unpickled (pool._decode)
        out = (False if unpickled else None, _wrap(e, kind))
    try:
        data = _core.codec_dumps(out)
    except Exception as e:
        # Python's Pool sends MaybeEncodingError; its ProcessPoolExecutor
        # the exception itself, a BaseException too
        err = MaybeEncodingError(e, out[1]) if kind < FUTURE else e
        data = pickle.dumps((False, _wrap(err, kind)), _HIGHEST)
    except BaseException as e:
        if kind < FUTURE:
            raise
        data = pickle.dumps((False, _wrap(e, kind)), _HIGHEST)
    process._flush_std_streams()
    return data
