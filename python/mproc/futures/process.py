"""mproc.futures.process: the process executor's module, as
concurrent.futures.process is Python's (the executor, its exceptions, and
the helpers Python's tests import from there)."""
from concurrent.futures.process import (  # noqa: F401 (an exception pickles by these names)
    _check_system_limits, _ExceptionWithTraceback, _rebuild_exc, _RemoteTraceback)

from . import BrokenProcessPool, ProcessPoolExecutor, WorkerDiedError  # noqa: F401

__all__ = ['ProcessPoolExecutor', 'BrokenProcessPool', 'WorkerDiedError']
