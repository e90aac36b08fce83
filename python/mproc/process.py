"""Process, current_process, parent_process and active_children (the twin
of multiprocessing.process), over the core's processes.

mproc keeps no copy of Python's process objects: its BaseProcess IS
multiprocessing.process.BaseProcess, to which it adds only how a child is
started. BaseProcess.start() asks the `_Popen` hook for a Popen; mproc's
hands back _CorePopen, the Popen interface over one process of the core.
So the child's bootstrap (exit codes, SystemExit, the traceback, stdin,
util's after-fork callbacks and exit function), current_process(),
parent_process(), active_children(), names, identities, authkeys and the
repr are Python's own code and objects, shared with multiprocessing: one
current process for both, which Python's managers rely on."""
import itertools
import os
import signal
import sys

import multiprocessing.process as _std

from . import _core

__all__ = ['BaseProcess', 'current_process', 'active_children', 'parent_process']

current_process = _std.current_process
active_children = _std.active_children
parent_process = _std.parent_process
AuthenticationString = _std.AuthenticationString


def __getattr__(name):
    # Every other name of Python's module (_cleanup, _children, _dangling,
    # ORIGINAL_DIR, ...) is Python's, read when asked: some are rebound.
    return getattr(_std, name)


# process_op's operations (python/src/process.c)
_OP_EXITCODE, _OP_PID, _OP_TERMINATE, _OP_KILL = 1, 2, 3, 4
_OP_INTERRUPT, _OP_SENTINEL, _OP_CLOSE = 5, 6, 7


def _flush_std_streams():
    """sys.stdout and sys.stderr flushed, errors ignored: before a spawn or
    forkserver child starts, as Python does, so that it does not print
    before what its parent printed (a fork's are flushed by the
    extension's fork hook, python/src/pool.c); and by a pool worker after
    each task."""
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


class _CorePopen:
    """What BaseProcess expects of a Popen, over a process the core starts.
    A fork child runs the Process's bootstrap straight after the fork; a
    spawn or forkserver one gets it pickled (mproc._child)."""

    def __init__(self, process_obj, method):
        self.method = method
        self.returncode = None
        if method == 'fork':
            what, conns = process_obj._forked_main, []
        else:
            _flush_std_streams()
            from . import _child
            what, conns = _child.payload(process_obj, method)
        self._proc = _core.process_new(method, process_obj.name,
                                       bool(process_obj.daemon), what, conns)
        _core.process_start(self._proc)
        self.pid = _core.process_op(self._proc, _OP_PID)
        self.sentinel = _core.process_op(self._proc, _OP_SENTINEL)

    def poll(self, flag=None):
        if self.returncode is None:
            self.returncode = _core.process_op(self._proc, _OP_EXITCODE)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is not None:
            return self.returncode
        ms = -1 if timeout is None else max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))
        return self.poll() if _core.process_join(self._proc, ms) else None

    def _signal(self, op):
        if self.returncode is None:
            _core.process_op(self._proc, op)

    def terminate(self):
        self._signal(_OP_TERMINATE)

    def kill(self):
        self._signal(_OP_KILL)

    def interrupt(self):
        self._signal(_OP_INTERRUPT)

    def close(self):
        _core.process_op(self._proc, _OP_CLOSE)


class BaseProcess(_std.BaseProcess):
    """Python's BaseProcess, started by the core with the start method of
    its context (the default context's when _start_method is None)."""
    _start_method = None

    def _Popen(self, process_obj):
        method = self._start_method
        if method is None:
            from . import context
            method = context._default_context.get_start_method()
        return _CorePopen(process_obj, method)

    def interrupt(self):
        """Sends SIGINT to the child (Process.interrupt of Python 3.14)."""
        self._check_closed()
        self._popen.interrupt()

    def _forked_main(self):
        """The fork child's entry: Python's bootstrap; the exit code."""
        return self._bootstrap(parent_sentinel=_parent_sentinel(self._parent_pid))

    def _after_fork(self):
        # Called by Python's bootstrap in the child, once this object is the
        # current process and before run(). Python's own part runs util's
        # after-fork callbacks; mproc's contexts then learn the start
        # method (Python's bootstrap told only Python's), and the signal
        # handlers Python lists are put back (the core starts fork and
        # forkserver children with the C defaults).
        _std.BaseProcess._after_fork()
        if self._start_method is not None:
            from . import context
            context._force_start_method(self._start_method)
        _rearm_signal_handlers()


def _worker_started(kind='PoolWorker'):
    """In a pool's worker: a process of its own, named as Python names its
    pools' workers (ForkPoolWorker-1, SpawnProcess-2, ...), made Python's
    current process."""
    from . import context
    parent = _std._current_process
    name = _core.worker_name() or ''
    num = name.rsplit('-', 1)[-1] if '-' in name else '1'
    method = context._default_context.get_start_method()
    prefix = {'fork': 'Fork', 'spawn': 'Spawn', 'forkserver': 'ForkServer'}.get(method, '')
    p = BaseProcess.__new__(BaseProcess)
    p.__dict__.update(parent.__dict__)
    p._name = '%s%s-%s' % (prefix, kind, num)
    p._identity = (int(num),) if num.isdigit() else ()
    p._parent_pid = os.getppid()
    p._parent_name = parent.name
    p._popen = None
    p._closed = False
    _std._process_counter = itertools.count(1)
    _std._children = set()
    _std._current_process = p
    _std._parent_process = _std._ParentProcess(parent.name, p._parent_pid,
                                               _parent_sentinel(p._parent_pid))


def _parent_sentinel(pid):
    """What the child's parent_process() waits on: a descriptor readable
    once process `pid` has ended (a pidfd; a pipe already at end of file
    when that process is gone already)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        r, w = os.pipe()
        os.close(w)
        return r


def _rearm_signal_handlers():
    """Installs again, at the C level, each Python handler Python lists."""
    for sig in signal.valid_signals():
        try:
            h = signal.getsignal(sig)
            if callable(h):
                signal.signal(sig, h)
        except (OSError, ValueError, TypeError):
            pass
