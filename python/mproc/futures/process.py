"""mproc.futures.process: the process executor's module, as
concurrent.futures.process is Python's (the executor, its exceptions, and
the helpers Python's tests import from there)."""
from concurrent.futures.process import _check_system_limits, _RemoteTraceback  # noqa: F401

from . import BrokenProcessPool, ProcessPoolExecutor, WorkerDiedError  # noqa: F401

__all__ = ['ProcessPoolExecutor', 'BrokenProcessPool', 'WorkerDiedError']
