"""Helpers of the Python package's tests: each test class runs against
Python's multiprocessing and against mproc, under each start method, so
that mproc is checked against what Python does."""
import atexit
import faulthandler
import multiprocessing
import os
import signal
import sys
import time
import unittest

import mproc

# A test process that hangs prints every thread's stack before CTest kills
# it: CTest sets MPROC_TEST_DUMP_AFTER a little under the test's timeout.
# A signal, not faulthandler's watchdog thread, so that the process stays
# single-threaded for the forks it makes (alarms do not pass to children).
_DUMP_AFTER = int(os.environ.get('MPROC_TEST_DUMP_AFTER', '0'))
if _DUMP_AFTER > 0:
    faulthandler.register(signal.SIGALRM, all_threads=True)
    signal.alarm(_DUMP_AFTER)

# The sanitizer the package was built with (set by CTest in a sanitizer
# build), or ''.
SANITIZER = os.environ.get('MPROC_TEST_SANITIZER', '')


def skip_forks_with_threads_under_asan(cls):
    """For a test whose process forks while it has other threads: skipped
    under AddressSanitizer. GCC 12's libasan (Debian 12) has no fork
    handlers, so a child forked while another thread holds ASan's
    allocator lock waits for it for ever (LLVM 18's ASan takes that lock
    around fork). The test runs in make check's build, without it."""
    if 'address' in SANITIZER:
        return unittest.skip('forks in a threaded process: GCC 12 ASan has no fork handlers')(cls)
    return cls


METHODS = ('fork', 'spawn', 'forkserver')
MODULES = (('stdlib', multiprocessing), ('mproc', mproc))


def both(methods=METHODS, modules=MODULES):
    """Class decorator: a TestCase per (module, start method), with
    self.mp the module's context for the method and self.mod the module.
    Under a sanitizer, mproc's only: Python's multiprocessing runs none of
    mproc's C code, and make check runs it."""
    def deco(cls):
        g = sys.modules[cls.__module__].__dict__
        for modname, mod in modules:
            if SANITIZER and mod is not mproc:
                continue
            for m in methods:
                name = '%s_%s_%s' % (cls.__name__, modname, m)
                g[name] = type(name, (cls, unittest.TestCase),
                               {'mp': mod.get_context(m), 'mod': mod, 'method': m,
                                'is_mproc': mod is mproc})
        return cls
    return deco


def only_mproc(methods=METHODS):
    return both(methods, (('mproc', mproc),))


def _slow_exit_hook():  # a fork child's Python finalization would wait here
    time.sleep(120)


def add_slow_exit_hook(test):
    """Registers, for the test's time, an exit hook of 120 s that a fork
    child inherits: a worker that ran Python's finalization would wait
    there."""
    atexit.register(_slow_exit_hook)
    test.addCleanup(atexit.unregister, _slow_exit_hook)


def join_thread(t, timeout=30):
    """Joins t, then waits until its OS thread is gone too. Python's join
    returns before the thread's last steps (its C exit path, where a
    sanitizer's runtime takes its own locks): a fork made meanwhile would
    copy such a lock held, and the child would wait for it for ever."""
    t.join(timeout)
    tid = getattr(t, 'native_id', None)
    deadline = time.monotonic() + timeout
    while tid is not None and os.path.exists('/proc/self/task/%d' % tid) \
            and time.monotonic() < deadline:
        time.sleep(0.001)


def run(ctx, target, *args, timeout=60):
    """Starts target(*args) in a child, joins it; its exit code."""
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError('child did not end in %ss' % timeout)
    return p.exitcode
