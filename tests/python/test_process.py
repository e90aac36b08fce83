"""Process and the module's functions: mproc against Python's
multiprocessing, under each start method."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import multiprocessing.reduction

from mputil import both, only_mproc, run


def noop():
    pass


def exit_with(code):
    sys.exit(code)


def raise_error():
    raise ValueError('boom')


def sleep_long():
    time.sleep(60)


class Registered:
    """Pickled, for a child, by the reducer registered with Python's
    ForkingPickler (as Python's heap registers its Arena, or a library
    its tensors)."""

    def __init__(self, value, via=None):
        self.value = value
        self.via = via


def _reduce_registered(r):
    return Registered, (r.value, 'reducer')


multiprocessing.reduction.ForkingPickler.register(Registered, _reduce_registered)


def report_registered(q, r):
    q.put((r.value, r.via))


def set_and_sleep(event):
    event.set()
    time.sleep(60)


def report(q, *args, **kwargs):
    import mproc
    import multiprocessing
    mod = mproc if 'mproc' in q.__class__.__module__ else multiprocessing
    me = mod.current_process()
    q.put((me.name, me.daemon, args, kwargs, os.getpid(),
           mod.parent_process().pid if mod.parent_process() else None))


def child_with_child(q):
    import mproc
    import multiprocessing
    mod = mproc if 'mproc' in q.__class__.__module__ else multiprocessing
    p = mod.Process(target=report, args=(q,))
    p.start()
    p.join()
    q.put(p.exitcode)


def ctrl_c_self():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)


def usr1_handler(signum, frame):
    sys.exit(42)


def usr1_self():
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(5)


def about_parent(q):
    import mproc
    import multiprocessing
    mod = mproc if 'mproc' in q.__class__.__module__ else multiprocessing
    pp = mod.parent_process()
    q.put((pp.pid, pp.is_alive(), mod.current_process() is multiprocessing.current_process(),
           repr(mod.current_process())))


def watch_parent(q):
    import mproc
    import multiprocessing
    mod = mproc if 'mproc' in q.__class__.__module__ else multiprocessing
    pp = mod.parent_process()
    alive_before = pp.is_alive()
    q.put('ready')
    pp.join(30)
    q.put((alive_before, pp.is_alive()))


def leave_child(q):
    import mproc
    import multiprocessing
    mod = mproc if 'mproc' in q.__class__.__module__ else multiprocessing
    p = mod.Process(target=watch_parent, args=(q,))
    p.start()
    q.get(timeout=30)
    os._exit(0)


@both()
class Signals:
    def test_ctrl_c_is_keyboard_interrupt(self):
        self.assertEqual(run(self.mp, ctrl_c_self), 1)


@both(methods=('fork',))
class SignalsFork:
    def test_handler_inherited(self):
        old = signal.signal(signal.SIGUSR1, usr1_handler)
        try:
            self.assertEqual(run(self.mp, usr1_self), 42)
        finally:
            signal.signal(signal.SIGUSR1, old)


@both()
class Lifecycle:
    def test_exitcodes(self):
        self.assertEqual(run(self.mp, noop), 0)
        self.assertEqual(run(self.mp, exit_with, 3), 3)
        self.assertEqual(run(self.mp, exit_with, None), 0)

    def test_exception_exitcode(self):
        self.assertEqual(run(self.mp, raise_error), 1)

    def test_args_name_daemon(self):
        q = self.mp.Queue()
        p = self.mp.Process(target=report, args=(q, 1, 'a'), kwargs={'k': [2]},
                            name='Worker-7', daemon=True)
        self.assertEqual(p.name, 'Worker-7')
        self.assertTrue(p.daemon)
        self.assertIsNone(p.pid)
        self.assertIsNone(p.exitcode)
        self.assertFalse(p.is_alive())
        p.start()
        name, daemon, args, kwargs, pid, ppid = q.get(timeout=30)
        p.join(30)
        self.assertEqual((name, daemon, args, kwargs), ('Worker-7', True, (1, 'a'), {'k': [2]}))
        self.assertEqual(pid, p.pid)
        self.assertEqual(ppid, os.getpid())
        self.assertEqual(p.exitcode, 0)
        self.assertFalse(p.is_alive())

    def test_default_names(self):
        p1 = self.mp.Process(target=noop)
        p2 = self.mp.Process(target=noop)
        n1 = int(p1.name.rsplit('-', 1)[1])
        self.assertEqual(p2.name.rsplit('-', 1), [p1.name.rsplit('-', 1)[0], str(n1 + 1)])

    def test_join_timeout_terminate_kill(self):
        p = self.mp.Process(target=sleep_long)
        p.start()
        t0 = time.monotonic()
        p.join(0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        self.assertTrue(p.is_alive())
        self.assertIsNone(p.exitcode)
        self.assertRaises(ValueError, p.close)
        p.terminate()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGTERM)
        p.close()
        self.assertRaises(ValueError, p.is_alive)
        self.assertRaises(ValueError, p.start)
        p = self.mp.Process(target=sleep_long)
        p.start()
        p.kill()
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertIn('exitcode=-SIGKILL', repr(p))

    def test_start_twice(self):
        p = self.mp.Process(target=noop)
        p.start()
        self.assertRaises(AssertionError, p.start)
        p.join(30)

    def test_join_unstarted(self):
        self.assertRaises(AssertionError, self.mp.Process(target=noop).join)

    def test_sentinel(self):
        p = self.mp.Process(target=noop)
        self.assertRaises(ValueError, lambda: p.sentinel)
        p.start()
        self.assertIsInstance(p.sentinel, int)
        p.join(30)

    def test_grandchild(self):
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, child_with_child, q), 0)
        name = q.get(timeout=30)[0]
        self.assertRegex(name, r'^Process-\d+:\d+$')
        self.assertEqual(q.get(timeout=30), 0)

    def test_daemon_outlives_the_thread_that_started_it(self):
        # The kernel's parent-death signal follows the parent thread. The
        # thread ends once the child runs, after its start made it a daemon.
        started = []
        running = self.mp.Event()

        def start():
            p = self.mp.Process(target=set_and_sleep, args=(running,), daemon=True)
            p.start()
            started.append(p)
            running.wait(30)

        t = threading.Thread(target=start)
        t.start()
        t.join()
        p = started[0]
        time.sleep(0.5)
        try:
            self.assertTrue(p.is_alive(), p.exitcode)
        finally:
            p.kill()
            p.join(30)

    def test_reducer_registered_with_python(self):
        # A spawn or forkserver child gets its arguments pickled with the
        # reducers registered with Python's ForkingPickler; a fork child
        # inherits them.
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, report_registered, q, Registered(5)), 0)
        self.assertEqual(q.get(timeout=30),
                         (5, None if self.method == 'fork' else 'reducer'))

    def test_active_children(self):
        p = self.mp.Process(target=sleep_long)
        p.start()
        self.assertIn(p, self.mp.active_children())
        p.kill()
        p.join(30)
        self.assertNotIn(p, self.mp.active_children())


@both(methods=('fork',))
class ModuleFunctions:
    def test_current_process(self):
        me = self.mod.current_process()
        self.assertEqual(me.name, 'MainProcess')
        self.assertTrue(me.is_alive())
        self.assertEqual(me.pid, os.getpid())
        self.assertIsNone(self.mod.parent_process())

    def test_cpu_count(self):
        n = self.mod.cpu_count()
        self.assertIsInstance(n, int)
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, os.cpu_count())

    def test_start_methods(self):
        import multiprocessing
        self.assertEqual(self.mod.get_all_start_methods(),
                         multiprocessing.get_all_start_methods())
        self.assertRaises(ValueError, self.mod.get_context, 'nope')
        for m in ('fork', 'spawn', 'forkserver'):
            ctx = self.mod.get_context(m)
            self.assertEqual(ctx.get_start_method(), m)
            self.assertRaises(ValueError, ctx.set_start_method, m)
        old = self.mod.get_start_method(allow_none=True)
        try:
            self.mod.set_start_method('spawn', force=True)
            self.assertEqual(self.mod.get_start_method(), 'spawn')
            self.assertRaises(RuntimeError, self.mod.set_start_method, 'fork')
            self.mod.set_start_method(None, force=True)
            self.assertIsNone(self.mod.get_start_method(allow_none=True))
            self.assertEqual(self.mod.get_start_method(), multiprocessing.get_start_method())
        finally:
            self.mod.set_start_method(old, force=True)

    def test_forkserver_preload_checked(self):
        # As Python (3.11.7 on) checks it: a list of module names.
        ctx = self.mod.get_context('forkserver')
        if self.mod.__name__ == 'mproc' or sys.version_info >= (3, 11, 7):
            self.assertRaises(TypeError, ctx.set_forkserver_preload, [1, 2, 3])
        ctx.set_forkserver_preload(['os'])

    def test_forkserver_preload_imports_in_the_server(self):
        # A new program (a new forkserver): the modules named are imported
        # in the server, so its children have them; Python's default
        # (['__main__']) imports nothing there.
        import subprocess
        import tempfile
        prog = (
            'import sys\n'
            'import %s as mp\n'
            'def probe():\n'
            '    sys.exit(0 if "colorsys" in sys.modules else 3)\n'
            'if __name__ == "__main__":\n'
            '    ctx = mp.get_context("forkserver")\n'
            '    if sys.argv[1] == "set":\n'
            '        ctx.set_forkserver_preload(["colorsys", "no_such_module_here"])\n'
            '    p = ctx.Process(target=probe)\n'
            '    p.start()\n'
            '    p.join(60)\n'
            '    print(p.exitcode, "colorsys" in sys.modules)\n' % self.mod.__name__)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'preload_prog.py')
            with open(path, 'w') as f:
                f.write(prog)
            for arg, want in (('set', '0 False'), ('default', '3 False')):
                out = subprocess.run([sys.executable, path, arg], capture_output=True, text=True,
                                     timeout=120)
                self.assertEqual(out.stdout.strip(), want, out.stderr)

    def test_exceptions_are_pythons(self):
        import multiprocessing
        for name in ('ProcessError', 'BufferTooShort', 'TimeoutError', 'AuthenticationError'):
            self.assertIs(getattr(self.mod, name), getattr(multiprocessing, name))



@both()
class Bootstrap:
    def test_parent_process_in_child(self):
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, about_parent, q), 0)
        pid, alive, same, me = q.get(timeout=30)
        self.assertEqual(pid, os.getpid())
        self.assertTrue(alive)
        self.assertTrue(same)
        self.assertRegex(me, r"^<\w*Process name='\w*Process-\d+' parent=%d started>$" % os.getpid())

    def test_parent_process_ends(self):
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, leave_child, q), 0)
        self.assertEqual(q.get(timeout=30), (True, False))


UNFLUSHED = """
import sys
import {mod} as mp

def child():
    pass

def twice(x):
    return 2 * x

if __name__ == '__main__':
    ctx = mp.get_context('{method}')
    print('before the child')  # stdout is a pipe: block-buffered, not yet written
    p = ctx.Process(target=child)
    p.start()
    p.join()
    print('before the pool')
    with ctx.Pool(2) as pool:
        print(pool.map(twice, range(4)))
    print('end', p.exitcode)
"""


@both()
class Output:
    def test_unflushed_output_is_written_once(self):
        # What the parent printed but had not flushed when a child started
        # (a Process, a Pool's workers) is written once, in order: a fork
        # child that kept a copy of the buffer would write it again when
        # it flushes its own output, as it ends.
        import tempfile
        env = dict(os.environ)
        env.pop('PYTHONUNBUFFERED', None)
        with tempfile.TemporaryDirectory() as tmp:  # a file: spawn re-imports it
            path = os.path.join(tmp, 'unflushed.py')
            with open(path, 'w') as f:
                f.write(UNFLUSHED.format(mod=self.mod.__name__, method=self.method))
            out = subprocess.run([sys.executable, path], capture_output=True, text=True,
                                 timeout=120, env=env, cwd=tmp)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(),
                         ['before the child', 'before the pool', '[0, 2, 4, 6]', 'end 0'])


@only_mproc(methods=('fork',))
class Imports:
    def test_import_leaves_the_pool_for_later(self):
        # A spawned child imports the package: the pool module and
        # concurrent.futures come only when first used (halves the import).
        code = ('import sys, mproc\n'
                'print(sorted(m for m in ("mproc.pool", "concurrent.futures") if m in sys.modules))\n'
                'print(mproc.WorkerDiedError.__name__, mproc.TaskTimeoutError.__name__)\n'
                'from mproc import *\n'
                'print(WorkerDiedError is mproc.pool.WorkerDiedError)\n'
                'try:\n    mproc.no_such_name\nexcept AttributeError as e:\n    print(e)\n')
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(),
                         ['[]', 'WorkerDiedError TaskTimeoutError', 'True',
                          "module 'mproc' has no attribute 'no_such_name'"])


if __name__ == '__main__':
    unittest.main()
