"""mproc.futures.thread: the thread executor's module, as
concurrent.futures.thread is Python's (the executor is Python's own:
threads leave nothing for the core to do)."""
from concurrent.futures.thread import BrokenThreadPool, ThreadPoolExecutor  # noqa: F401

__all__ = ['ThreadPoolExecutor', 'BrokenThreadPool']
