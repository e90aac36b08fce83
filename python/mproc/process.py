"""Process, current_process, parent_process and active_children (the twin
of multiprocessing.process), over the core's processes."""
import itertools
import os
import signal
import sys
import threading
from _weakrefset import WeakSet

from . import _core

__all__ = ['BaseProcess', 'current_process', 'active_children', 'parent_process']


def current_process():
    return _current_process


def active_children():
    _cleanup()
    return list(_children)


def parent_process():
    return _parent_process


def _cleanup():
    for p in list(_children):
        if p._popen is not None and p._popen.poll() is not None:
            _children.discard(p)


class _Popen:
    """One started child of the core."""

    def __init__(self, process_obj, method):
        self.method = method
        self.returncode = None
        if method == 'fork':
            self._proc = _core.process_new('fork', process_obj._name,
                                           bool(process_obj.daemon),
                                           process_obj._bootstrap, [])
        else:
            from . import _child
            payload, conns = _child.payload(process_obj, method)
            self._proc = _core.process_new(method, process_obj._name,
                                           bool(process_obj.daemon), payload, conns)
        _core.process_start(self._proc)
        self.pid = _core.process_op(self._proc, 2)
        self.sentinel = _core.process_op(self._proc, 6)

    def poll(self, flag=None):
        if self.returncode is None:
            self.returncode = _core.process_op(self._proc, 1)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            if timeout is None:
                ms = -1
            else:
                ms = max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))
            if not _core.process_join(self._proc, ms):
                return None
        return self.poll()

    def terminate(self):
        if self.returncode is None:
            _core.process_op(self._proc, 3)

    def kill(self):
        if self.returncode is None:
            _core.process_op(self._proc, 4)

    def interrupt(self):
        if self.returncode is None:
            _core.process_op(self._proc, 5)

    def close(self):
        _core.process_op(self._proc, 7)


class BaseProcess:
    """Process objects represent activity run in a separate process."""
    _start_method = None

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={},
                 *, daemon=None):
        assert group is None, 'group argument must be None for now'
        count = next(_process_counter)
        self._identity = _current_process._identity + (count,)
        self._config = _current_process._config.copy()
        self._parent_pid = os.getpid()
        self._parent_name = _current_process.name
        self._popen = None
        self._closed = False
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._name = name or type(self).__name__ + '-' + \
            ':'.join(str(i) for i in self._identity)
        if daemon is not None:
            self.daemon = daemon
        _dangling.add(self)

    def _check_closed(self):
        if self._closed:
            raise ValueError("process object is closed")

    def run(self):
        if self._target:
            self._target(*self._args, **self._kwargs)

    def _method(self):
        if self._start_method is not None:
            return self._start_method
        from . import context
        return context._default_context.get_start_method()

    def start(self):
        self._check_closed()
        assert self._popen is None, 'cannot start a process twice'
        assert self._parent_pid == os.getpid(), \
            'can only start a process object created by current process'
        assert not _current_process._config.get('daemon'), \
            'daemonic processes are not allowed to have children'
        _cleanup()
        self._popen = _Popen(self, self._method())
        self._sentinel = self._popen.sentinel
        # Avoid a refcycle if the target function holds an indirect
        # reference to the process object (as Python does).
        del self._target, self._args, self._kwargs
        _children.add(self)

    def terminate(self):
        self._check_closed()
        self._popen.terminate()

    def kill(self):
        self._check_closed()
        self._popen.kill()

    def interrupt(self):
        self._check_closed()
        self._popen.interrupt()

    def join(self, timeout=None):
        self._check_closed()
        assert self._parent_pid == os.getpid(), 'can only join a child process'
        assert self._popen is not None, 'can only join a started process'
        res = self._popen.wait(timeout)
        if res is not None:
            _children.discard(self)

    def is_alive(self):
        self._check_closed()
        if self is _current_process:
            return True
        assert self._parent_pid == os.getpid(), 'can only test a child process'
        if self._popen is None:
            return False
        returncode = self._popen.poll()
        if returncode is None:
            return True
        _children.discard(self)
        return False

    def close(self):
        if self._popen is not None:
            if self._popen.poll() is None:
                raise ValueError("Cannot close a process while it is still running. "
                                 "You should first call join() or terminate().")
            self._popen.close()
            self._popen = None
            del self._sentinel
            _children.discard(self)
        self._closed = True

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, name):
        assert isinstance(name, str), 'name must be a string'
        self._name = name

    @property
    def daemon(self):
        return self._config.get('daemon', False)

    @daemon.setter
    def daemon(self, daemonic):
        assert self._popen is None, 'process has already started'
        self._config['daemon'] = daemonic

    @property
    def authkey(self):
        return self._config['authkey']

    @authkey.setter
    def authkey(self, authkey):
        self._config['authkey'] = AuthenticationString(authkey)

    @property
    def exitcode(self):
        self._check_closed()
        if self._popen is None:
            return self._popen
        return self._popen.poll()

    @property
    def ident(self):
        self._check_closed()
        if self is _current_process:
            return os.getpid()
        else:
            return self._popen and self._popen.pid

    pid = ident

    @property
    def sentinel(self):
        self._check_closed()
        try:
            return self._sentinel
        except AttributeError:
            raise ValueError("process not started") from None

    def __repr__(self):
        exitcode = None
        if self is _current_process:
            status = 'started'
        elif self._closed:
            status = 'closed'
        elif self._parent_pid != os.getpid():
            status = 'unknown'
        elif self._popen is None:
            status = 'initial'
        else:
            exitcode = self._popen.poll()
            status = 'started' if exitcode is None else 'stopped'
        info = [type(self).__name__, 'name=%r' % self._name]
        if self._popen is not None:
            info.append('pid=%s' % self._popen.pid)
        info.append('parent=%s' % self._parent_pid)
        info.append(status)
        if exitcode is not None:
            exitcode = _exitcode_to_name.get(exitcode, exitcode)
            info.append('exitcode=%s' % exitcode)
        if self.daemon:
            info.append('daemon')
        return '<%s>' % ' '.join(info)

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_popen'] = None
        return state

    def _bootstrap(self, parent_sentinel=None):
        """The child's life: run(), then the exit code (Python's)."""
        global _current_process, _parent_process, _process_counter, _children
        try:
            if self._start_method is not None:
                from . import context
                context._force_start_method(self._start_method)
            _process_counter = itertools.count(1)
            _children = set()
            _close_stdin()
            _rearm_signal_handlers()
            _current_process = self
            _parent_process = _ParentProcess(self._parent_name, self._parent_pid)
            if threading._HAVE_THREAD_NATIVE_ID:
                threading.main_thread()._set_native_id()
            _util_after_fork()
            try:
                self.run()
                exitcode = 0
            finally:
                _util_exit(0)
                _exit_function()
                _util_exit(None)
        except SystemExit as e:
            if e.code is None:
                exitcode = 0
            elif isinstance(e.code, int):
                exitcode = e.code
            else:
                sys.stderr.write(str(e.code) + '\n')
                exitcode = 1
        except:
            exitcode = 1
            import traceback
            sys.stderr.write('Process %s:\n' % self.name)
            traceback.print_exc()
        finally:
            threading._shutdown()
            _flush_std_streams()
        return exitcode


def _worker_started(kind='PoolWorker'):
    """In a pool's worker: a process of its own, named as Python names its
    pools' workers (ForkPoolWorker-1, SpawnProcess-2, ...)."""
    global _current_process, _parent_process, _process_counter, _children
    from . import context
    parent = _current_process
    _process_counter = itertools.count(1)
    _children = set()
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
    _current_process = p
    _parent_process = _ParentProcess(parent.name, os.getppid())


def _util_after_fork():
    """multiprocessing.util's hooks, as Python's child runs them: the
    parent's finalizers dropped, the after-fork callbacks run (a manager's
    proxies take their own references and connections there). Nothing to
    do where the module was never imported (nothing registered)."""
    util = sys.modules.get('multiprocessing.util')
    if util is not None:
        util._finalizer_registry.clear()
        util._run_after_forkers()


def _util_exit(minpriority):
    """multiprocessing.util's finalizers at the child's exit (a proxy gives
    back its reference), as Python's child runs them."""
    util = sys.modules.get('multiprocessing.util')
    if util is not None:
        util._run_finalizers(minpriority)


def _rearm_signal_handlers():
    """The core starts fork and forkserver children with the default
    handlers at the C level; the handlers Python still lists (Ctrl-C's
    KeyboardInterrupt, the program's own) are put back in place."""
    for sig in signal.valid_signals():
        try:
            h = signal.getsignal(sig)
            if callable(h):
                signal.signal(sig, h)
        except (OSError, ValueError, TypeError):
            pass


def _close_stdin():
    if sys.stdin is None:
        return
    try:
        sys.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            sys.stdin = open(fd, encoding="utf-8", closefd=False)
        except:
            os.close(fd)
            raise
    except (OSError, ValueError):
        pass


def _flush_std_streams():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (AttributeError, ValueError):
            pass


def _exit_function():
    for p in active_children():
        if p.daemon:
            p._popen.terminate()
    for p in active_children():
        p.join()


class AuthenticationString(bytes):
    def __reduce__(self):
        from . import reduction
        reduction.assert_spawning(self)
        return AuthenticationString, (bytes(self),)


class _ParentProcess(BaseProcess):
    def __init__(self, name, pid):
        self._identity = ()
        self._name = name
        self._pid = pid
        self._parent_pid = None
        self._popen = None
        self._closed = False
        self._config = {}

    def is_alive(self):
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        return os.getppid() == self._pid

    @property
    def ident(self):
        return self._pid

    pid = ident

    def join(self, timeout=None):
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.01)


class _MainProcess(BaseProcess):
    def __init__(self):
        self._identity = ()
        self._name = 'MainProcess'
        self._parent_pid = None
        self._popen = None
        self._closed = False
        self._config = {'authkey': AuthenticationString(os.urandom(32)),
                        'semprefix': '/mp'}

    def close(self):
        pass


_parent_process = None
_current_process = _MainProcess()
_process_counter = itertools.count(1)
_children = set()
# Every Process object alive (Python's test suite checks for dangling ones).
_dangling = WeakSet()
del _MainProcess

_exitcode_to_name = {}
for name, signum in list(signal.__dict__.items()):
    if name[:3] == 'SIG' and '_' not in name:
        _exitcode_to_name[-signum] = f'-{name}'
del name, signum
