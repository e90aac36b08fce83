"""Queue, SimpleQueue and JoinableQueue (the twin of multiprocessing.queues):
pickled bytes in the core's queue in the family arena; no feeder thread, so
put raises at once what cannot be pickled, and a process that put items and
exits never blocks."""
from . import _core
from . import reduction
from .synchronize import _rebuild

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue']

_MAX = 2**31 - 1
_put, _get = _core.queue_put_obj, _core.queue_get_obj


class Queue:
    _joinable = False
    _kind = _core.K_QUEUE

    def __init__(self, maxsize=0, *, ctx=None):
        if maxsize <= 0:
            maxsize = _MAX
        self._maxsize = maxsize
        self._h = _core.queue_new(maxsize if maxsize < _MAX else 0, self._joinable)
        self._closed = False

    def _setstate(self, state):
        self._maxsize = state
        self._closed = False

    def __reduce__(self):
        reduction.assert_spawning(self)
        return (_rebuild, (type(self), _core.handle_export(self._h), self._kind,
                           self._maxsize))

    def _check_closed(self):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    # put and get: pickling (as reduction.dumps and loads), the wait and
    # queue.Full / queue.Empty in one call of the core each.
    def put(self, obj, block=True, timeout=None):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        _put(self._h, obj, block, timeout)

    def get(self, block=True, timeout=None):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        return _get(self._h, block, timeout)

    def qsize(self):
        return _core.queue_op(self._h, 0)

    def empty(self):
        return _core.queue_op(self._h, 1)

    def full(self):
        return _core.queue_op(self._h, 2)

    def get_nowait(self):
        return self.get(False)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def close(self):
        """This process puts and gets no more (the queue stays open for the
        others)."""
        self._closed = True

    def join_thread(self):
        assert self._closed, "Queue {0!r} not closed".format(self)

    def cancel_join_thread(self):
        pass


class JoinableQueue(Queue):
    _joinable = True

    def task_done(self):
        _core.queue_op(self._h, 3)

    def join(self):
        _core.queue_join(self._h, -1)


class SimpleQueue:
    _kind = _core.K_QUEUE

    def __init__(self, *, ctx=None):
        self._h = _core.queue_new(0, False)
        self._closed = False

    def _setstate(self, state):
        self._closed = False

    def __reduce__(self):
        reduction.assert_spawning(self)
        return (_rebuild, (type(self), _core.handle_export(self._h), self._kind, None))

    def close(self):
        self._closed = True

    def empty(self):
        return _core.queue_op(self._h, 1)

    def get(self):
        if self._closed:
            raise OSError("handle is closed")
        return _get(self._h, True, None)

    def put(self, obj):
        if self._closed:
            raise OSError("handle is closed")
        _put(self._h, obj, True, None)

    __class_getitem__ = classmethod(type(list[int]))
