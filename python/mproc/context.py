"""Contexts and start methods (the twin of multiprocessing.context)."""
import os
import sys

import multiprocessing.context as _std  # Python's exception classes
import multiprocessing.util as _util  # Python's logger

from . import _core
from . import process

__all__ = ['BaseContext', 'get_context', 'set_start_method', 'get_start_method',
           'get_all_start_methods']

ProcessError = _std.ProcessError
BufferTooShort = _std.BufferTooShort
TimeoutError = _std.TimeoutError
AuthenticationError = _std.AuthenticationError

# Python's default on Linux: fork until 3.13, forkserver from 3.14.
_DEFAULT = 'forkserver' if sys.version_info >= (3, 14) else 'fork'


class BaseContext:
    current_process = staticmethod(process.current_process)
    parent_process = staticmethod(process.parent_process)
    active_children = staticmethod(process.active_children)

    # Python's exception classes (the names are the module's)
    ProcessError = ProcessError
    BufferTooShort = BufferTooShort
    TimeoutError = TimeoutError
    AuthenticationError = AuthenticationError

    def cpu_count(self):
        return _core.cpu_count()

    def Lock(self):
        from .synchronize import Lock
        return Lock(ctx=self.get_context())

    def RLock(self):
        from .synchronize import RLock
        return RLock(ctx=self.get_context())

    def Condition(self, lock=None):
        from .synchronize import Condition
        return Condition(lock, ctx=self.get_context())

    def Semaphore(self, value=1):
        from .synchronize import Semaphore
        return Semaphore(value, ctx=self.get_context())

    def BoundedSemaphore(self, value=1):
        from .synchronize import BoundedSemaphore
        return BoundedSemaphore(value, ctx=self.get_context())

    def Event(self):
        from .synchronize import Event
        return Event(ctx=self.get_context())

    def Barrier(self, parties, action=None, timeout=None):
        from .synchronize import Barrier
        return Barrier(parties, action, timeout, ctx=self.get_context())

    def Queue(self, maxsize=0):
        from .queues import Queue
        return Queue(maxsize, ctx=self.get_context())

    def JoinableQueue(self, maxsize=0):
        from .queues import JoinableQueue
        return JoinableQueue(maxsize, ctx=self.get_context())

    def SimpleQueue(self):
        from .queues import SimpleQueue
        return SimpleQueue(ctx=self.get_context())

    def RawValue(self, typecode_or_type, *args):
        from .sharedctypes import RawValue
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        from .sharedctypes import RawArray
        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        from .sharedctypes import Value
        return Value(typecode_or_type, *args, lock=lock, ctx=self.get_context())

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        from .sharedctypes import Array
        return Array(typecode_or_type, size_or_initializer, lock=lock,
                     ctx=self.get_context())

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None):
        from .pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild,
                    context=self.get_context())

    def Manager(self):
        """A started SyncManager, its server a child of this context."""
        from .managers import SyncManager
        m = SyncManager(ctx=self.get_context())
        m.start()
        return m

    def Pipe(self, duplex=True):
        from .connection import Pipe
        return Pipe(duplex)

    def get_logger(self):
        """Python's multiprocessing logger (logging.getLogger('multiprocessing'))."""
        return _util.get_logger()

    def log_to_stderr(self, level=None):
        """Python's log_to_stderr: the logger above, printing to stderr."""
        return _util.log_to_stderr(level)

    def get_context(self, method=None):
        """This context (method None) or the one of start method method."""
        if method is None:
            return self
        if method not in _concrete_contexts:
            raise ValueError('cannot find context for %r' % method)
        return _concrete_contexts[method]

    def get_start_method(self, allow_none=False):
        return self._name

    def set_start_method(self, method, force=False):
        raise ValueError('cannot set start method of concrete context')

    def get_all_start_methods(self):
        return _default_context.get_all_start_methods()

    def allow_connection_pickling(self):
        pass

    def freeze_support(self):
        pass

    def set_executable(self, executable):
        pass

    def set_forkserver_preload(self, module_names):
        # Checked as Python checks it; the next forkserver imports them
        # (mproc._child._server_argv).
        if not all(type(name) is str for name in module_names):
            raise TypeError('module_names must be a list of strings')
        from . import _child
        _child.set_preload(module_names)

    @property
    def reducer(self):
        from . import reduction
        return reduction

    def _check_available(self):
        pass


class Process(process.BaseProcess):
    _start_method = None


class DefaultContext(BaseContext):
    """The module's context: that of the start method set_start_method
    chose, or of the default method once first used."""
    Process = Process

    def __init__(self, context):
        self._default_context = context
        self._actual_context = None  # fixed by set_start_method or first use

    def _chosen(self):
        if self._actual_context is None:
            self._actual_context = self._default_context
        return self._actual_context

    def get_context(self, method=None):
        return self._chosen() if method is None else super().get_context(method)

    def set_start_method(self, method, force=False):
        if not force and self._actual_context is not None:
            raise RuntimeError('context has already been set')
        # force with no method forgets the choice; else method's (the default's for None)
        self._actual_context = (None if force and method is None
                                else self.get_context(method))

    def get_start_method(self, allow_none=False):
        if allow_none and self._actual_context is None:
            return None
        return self._chosen()._name

    def get_all_start_methods(self):
        core = _core.all_start_methods()
        methods = [m for m in ('fork', 'spawn', 'forkserver') if m in core]
        methods.remove(_DEFAULT) if _DEFAULT in methods else None
        return [_DEFAULT] + methods if _DEFAULT in core else methods


# Each start method: its Process class and its context.

class ForkProcess(process.BaseProcess):
    _start_method = 'fork'


class ForkContext(BaseContext):
    _name = 'fork'
    Process = ForkProcess


class SpawnProcess(process.BaseProcess):
    _start_method = 'spawn'


class SpawnContext(BaseContext):
    _name = 'spawn'
    Process = SpawnProcess


class ForkServerProcess(process.BaseProcess):
    _start_method = 'forkserver'


class ForkServerContext(BaseContext):
    _name = 'forkserver'
    Process = ForkServerProcess


_concrete_contexts = {c._name: c() for c in (ForkContext, SpawnContext, ForkServerContext)}
_default_context = DefaultContext(_concrete_contexts[_DEFAULT])


def _force_start_method(method):
    _default_context._actual_context = _concrete_contexts[method]


def get_context(method=None):
    return _default_context.get_context(method)


def set_start_method(method, force=False):
    return _default_context.set_start_method(method, force)


def get_start_method(allow_none=False):
    return _default_context.get_start_method(allow_none)


def get_all_start_methods():
    return _default_context.get_all_start_methods()


def get_spawning_popen():
    """Not None while mproc prepares a child (Python's name for it: Python's
    own classes, such as the authkey's AuthenticationString, pickle only
    then)."""
    from . import reduction
    return reduction._current()
