"""Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier
over the core's objects in the family arena (the twin of
multiprocessing.synchronize)."""
import threading
import time

from . import _core
from . import reduction

__all__ = ['Lock', 'RLock', 'Semaphore', 'BoundedSemaphore', 'Condition',
           'Event', 'Barrier', 'OwnerDiedError', 'NotRecoverableError']

OwnerDiedError = _core.OwnerDiedError
NotRecoverableError = _core.NotRecoverableError
BrokenBarrierError = threading.BrokenBarrierError


def _ms(block, timeout):
    """Python's (block, timeout) as the core's milliseconds."""
    if not block:
        return 0
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return max(1, min(int(timeout * 1000 + 0.999), 2**31 - 1))


def _rebuild(cls, addr, kind, state):
    obj = cls.__new__(cls)
    obj._h = _core.handle_import(addr, kind)
    obj._setstate(state)
    return obj


class _Shared:
    """An object in the family arena; pickled only for a new child."""
    _kind = None

    def _setstate(self, state):
        pass

    def _getstate(self):
        return None

    def __reduce__(self):
        reduction.assert_spawning(self)
        return (_rebuild, (type(self), _core.handle_export(self._h), self._kind,
                           self._getstate()))


class Lock(_core.LockBase, _Shared):
    """A non-recursive lock. Beyond Python: if its holder dies, the next
    acquire raises OwnerDiedError with the lock held. The handle (_h),
    acquire(block=True, timeout=None), release() and the context manager
    are LockBase's, in C."""
    _kind = _core.K_LOCK

    def __init__(self, *, ctx=None):
        self._h = _core.lock_new(self._kind == _core.K_RLOCK)

    def locked(self):
        return _core.lock_locked(self._h)

    def make_consistent(self):
        """After OwnerDiedError: marks the lock usable again (held)."""
        _core.lock_make_consistent(self._h)

    def __repr__(self):
        return '<%s(%s)>' % (type(self).__name__,
                             'locked' if self.locked() else 'unlocked')


class RLock(Lock):
    """A recursive lock."""
    _kind = _core.K_RLOCK


class Semaphore(_Shared):
    _kind = _core.K_SEM

    def __init__(self, value=1, *, ctx=None):
        self._h = _core.sem_new(value, self._kind == _core.K_BSEM)
        self._setstate(None)

    def _setstate(self, state):
        self.acquire = self._h.acquire  # as Lock's
        self.release = self._h.release

    def acquire(self, block=True, timeout=None):
        return _core.sem_acquire(self._h, _ms(block, timeout))

    def release(self):
        _core.sem_release(self._h)

    def get_value(self):
        return _core.sem_value(self._h)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *args):
        self.release()

    def __repr__(self):
        return '<%s(value=%s)>' % (type(self).__name__, self.get_value())


class BoundedSemaphore(Semaphore):
    _kind = _core.K_BSEM


class Condition(_Shared):
    _kind = _core.K_COND

    def __init__(self, lock=None, *, ctx=None):
        self._lock = lock if lock is not None else RLock()
        if not isinstance(self._lock, Lock):
            raise TypeError('an mproc Lock or RLock is required, not %s'
                            % type(self._lock).__name__)
        self._h = _core.cond_new(self._lock._h)
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def _getstate(self):
        return self._lock

    def _setstate(self, lock):
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def wait(self, timeout=None):
        return _core.cond_wait(self._h, _ms(True, timeout))

    def wait_for(self, predicate, timeout=None):
        """Waits until predicate() is true or timeout seconds have passed
        and returns predicate's last result."""
        deadline = None
        while True:
            result = predicate()
            if result:
                return result
            if timeout is not None:
                now = time.monotonic()
                deadline = now + timeout if deadline is None else deadline
                if now >= deadline:
                    return result
            self.wait(None if deadline is None else deadline - now)

    def notify(self, n=1):
        _core.cond_notify(self._h, n)

    def notify_all(self):
        _core.cond_notify(self._h, -1)

    def __repr__(self):
        return '<Condition(%s)>' % (self._lock,)


class Event(_Shared):
    _kind = _core.K_EVENT

    def __init__(self, *, ctx=None):
        self._h = _core.event_new()

    def is_set(self):
        return _core.event_is_set(self._h)

    def set(self):
        _core.event_set(self._h)

    def clear(self):
        _core.event_clear(self._h)

    def wait(self, timeout=None):
        return _core.event_wait(self._h, _ms(True, timeout))

    def __repr__(self):
        set_status = 'set' if self.is_set() else 'unset'
        return f"<{type(self).__qualname__} at {id(self):#x} {set_status}>"


class Barrier(_Shared):
    """A barrier; the action runs in the last party to arrive before the
    others are released, as Python's (a second wait of the core's barrier
    holds them until it has run)."""
    _kind = _core.K_BARRIER

    def __init__(self, parties, action=None, timeout=None, *, ctx=None):
        self._h = _core.barrier_new(parties)
        self._action = action
        self._timeout = timeout

    def _getstate(self):
        return (self._action, self._timeout)

    def _setstate(self, state):
        self._action, self._timeout = state

    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout
        if self._action is None:
            return _core.barrier_wait(self._h, _ms(True, timeout))
        deadline = None if timeout is None else time.monotonic() + timeout
        index = _core.barrier_wait(self._h, _ms(True, timeout))
        if index == self.parties - 1:
            try:
                self._action()
            except BaseException:
                self.abort()
                raise
        # Every party waits again: released once the action has run (or
        # broken, if it raised).
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        _core.barrier_wait(self._h, _ms(True, left))
        return index

    def reset(self):
        _core.barrier_op(self._h, 1)

    def abort(self):
        _core.barrier_op(self._h, 0)

    @property
    def parties(self):
        return _core.barrier_op(self._h, 2)

    @property
    def n_waiting(self):
        return _core.barrier_op(self._h, 3)

    @property
    def broken(self):
        return _core.barrier_op(self._h, 4)

    def __repr__(self):
        return '<Barrier(parties=%d, waiting=%d, broken=%s)>' % (
            self.parties, self.n_waiting, self.broken)
