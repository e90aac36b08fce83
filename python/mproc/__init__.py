"""mproc: Python's multiprocessing on the mproc C core.

`import mproc as multiprocessing` and the program runs as before. See
docs/python.md for what is covered, what differs and why."""
import sys as _sys

from . import context as _context
from . import _core
from .synchronize import OwnerDiedError, NotRecoverableError

__version__ = _core.version

__all__ = [x for x in dir(_context._default_context) if not x.startswith('_')]
globals().update((name, getattr(_context._default_context, name)) for name in __all__)
__all__ += ['OwnerDiedError', 'NotRecoverableError', 'get_context', 'set_start_method',
            'get_start_method', 'get_all_start_methods']

__all__ += ['WorkerDiedError', 'TaskTimeoutError']


def __getattr__(name):
    # The pool's error classes, from the pool module on first use: it
    # imports concurrent.futures, which a spawned child seldom needs.
    if name in ('WorkerDiedError', 'TaskTimeoutError'):
        from . import pool
        return getattr(pool, name)
    raise AttributeError("module 'mproc' has no attribute %r" % name)


from .context import get_context, set_start_method, get_start_method, get_all_start_methods  # noqa: E402

SUBDEBUG = 5
SUBWARNING = 25

from . import _child as _child_mod  # noqa: E402

_child_mod._install_argv()
