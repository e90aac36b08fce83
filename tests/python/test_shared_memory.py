"""shared_memory.SharedMemory and ShareableList: mproc against Python's
multiprocessing, under each start method; no resource_tracker warnings and
no /dev/shm leftovers; Python's ShareableList reads mproc's and the other
way round."""
import importlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import mproc
from mputil import both, only_mproc, run

HERE = os.path.dirname(os.path.abspath(__file__))


def shm_module(mod):
    return importlib.import_module(mod.__name__ + '.shared_memory')


def in_shm(exists):
    return lambda name: os.path.exists('/dev/shm/' + name) == exists


def child_write(modname, shm, name, sl):
    """Writes through the SharedMemory passed, one attached by name and
    the ShareableList passed."""
    sm = shm_module(importlib.import_module(modname))
    shm.buf[0:5] = b'child'
    other = sm.SharedMemory(name)
    other.buf[5] = 33
    other.close()
    sl[0] = sl[0] * 2
    sl[2] = 'changed'
    sl[3] = None
    sl.shm.close()
    shm.close()


@both()
class InChildren:

    def test_child_writes(self):
        sm = shm_module(self.mod)
        shm = sm.SharedMemory(create=True, size=64)
        sl = sm.ShareableList([21, 1.5, 'str', b'bytes', True])
        try:
            self.assertEqual(run(self.mp, child_write, self.mod.__name__, shm, shm.name, sl), 0)
            self.assertEqual(bytes(shm.buf[:6]), b'child!')
            self.assertEqual(list(sl), [42, 1.5, 'changed', None, True])
        finally:
            for s in (shm, sl.shm):
                s.close()
                s.unlink()
        self.assertTrue(in_shm(False)(shm.name))
        self.assertTrue(in_shm(False)(sl.shm.name))


@both()
class Manager:
    """SharedMemoryManager: its server owns what SharedMemory and
    ShareableList create, children write to it, and its shutdown unlinks
    it (and passes over a segment its creator unlinked first)."""

    def test_segments_live_until_shutdown(self):
        managers = importlib.import_module(self.mod.__name__ + '.managers')
        with managers.SharedMemoryManager(ctx=self.mp) as smm:
            shm = smm.SharedMemory(64)
            sl = smm.ShareableList([21, 1.5, 'str', b'bytes', True])
            gone = smm.SharedMemory(16)
            gone.close()
            gone.unlink()  # before the shutdown: the server passes it over
            self.assertEqual(run(self.mp, child_write, self.mod.__name__, shm, shm.name, sl), 0)
            self.assertEqual(bytes(shm.buf[:6]), b'child!')
            self.assertEqual(list(sl), [42, 1.5, 'changed', None, True])
            names = (shm.name, sl.shm.name)
            self.assertTrue(all(map(in_shm(True), names)))
            self.assertRaises(ValueError, smm.SharedMemory, -1)
            shm.close()
            sl.shm.close()
        self.assertTrue(all(map(in_shm(False), names)))

    def test_before_start(self):
        managers = importlib.import_module(self.mod.__name__ + '.managers')
        smm = managers.SharedMemoryManager(ctx=self.mp)
        self.assertRaises(ValueError, smm.SharedMemory, 16)  # no server to track it


@both(methods=('fork',))
class LocalSemantics:

    def setUp(self):
        self.sm = shm_module(self.mod)

    def test_shared_memory(self):
        shm = self.sm.SharedMemory(create=True, size=100)
        try:
            self.assertTrue(in_shm(True)(shm.name))
            self.assertEqual(shm.size, 100)
            self.assertEqual(len(shm.buf), 100)
            self.assertEqual(bytes(shm.buf[:4]), b'\x00' * 4)
            self.assertIn(repr(shm.name), repr(shm))
            shm.buf[:3] = b'abc'
            other = self.sm.SharedMemory(shm.name, size=10)  # size ignored when attaching
            self.assertEqual(other.size, 100)
            self.assertEqual(bytes(other.buf[:3]), b'abc')
            other.close()
            other.close()  # twice: nothing
            self.assertIsNone(other.buf)
            named = self.sm.SharedMemory('/' + shm.name)  # a leading '/' is allowed
            self.assertEqual(named.name, '/' + shm.name)  # the name as given
            self.assertEqual(bytes(named.buf[:3]), b'abc')
            named.close()
            if not self.is_mproc:  # Python's tracker took '//name' for another segment
                from multiprocessing import resource_tracker
                resource_tracker.unregister(named._name, 'shared_memory')
        finally:
            shm.close()
            shm.unlink()
        self.assertTrue(in_shm(False)(shm.name))

    def test_named_create(self):
        name = 'mproc_test_%d_%s' % (os.getpid(), self.mod.__name__)
        shm = self.sm.SharedMemory(name, create=True, size=10)
        try:
            self.assertEqual(shm.name, name)
            self.assertRaises(FileExistsError, self.sm.SharedMemory, name, create=True, size=10)
        finally:
            shm.close()
            shm.unlink()
        self.assertRaises(FileNotFoundError, shm.unlink)
        self.assertRaises(FileNotFoundError, self.sm.SharedMemory, name)

    def test_bad_input(self):
        self.assertRaises(ValueError, self.sm.SharedMemory, create=True, size=0)
        self.assertRaises(ValueError, self.sm.SharedMemory, create=True, size=-1)
        self.assertRaises(ValueError, self.sm.SharedMemory)
        self.assertRaises(FileNotFoundError, self.sm.SharedMemory, 'mproc_no_such_segment_x')
        self.assertRaises(TypeError, self.sm.SharedMemory, 12, create=True, size=8)

    def test_use_after_close(self):
        shm = self.sm.SharedMemory(create=True, size=16)
        try:
            view = shm.buf[2:4]
            self.assertRaises(BufferError, shm.close)  # a view is still held
            view.release()
            shm.close()
            self.assertIsNone(shm.buf)
            with self.assertRaises(TypeError):
                shm.buf[0] = 1
        finally:
            shm.unlink()  # after close, as Python allows

    def test_shareable_list(self):
        sl = self.sm.ShareableList([1, 2.5, 'hey', b'by', None, True, -7])
        try:
            self.assertEqual(len(sl), 7)
            self.assertEqual(list(sl), [1, 2.5, 'hey', b'by', None, True, -7])
            self.assertEqual(sl.format, 'qd8s8sxxxxxx?xxxxxxxx?q')
            self.assertEqual(sl.index('hey'), 2)
            self.assertEqual(sl.count(None), 1)
            self.assertEqual(sl.count(1), 2)  # 1 == True, as Python's ==
            self.assertEqual(sl[-1], -7)
            sl[0] = 'text'
            self.assertEqual(sl[0], 'text')
            sl[2] = 3.5
            self.assertEqual(sl[2], 3.5)
            self.assertRaises(ValueError, sl.__setitem__, 3, b'far too long for this slot')
            self.assertRaises(IndexError, sl.__getitem__, 7)
            self.assertRaises(IndexError, sl.__setitem__, 7, 1)
            self.assertRaises(ValueError, sl.index, 'absent')
            other = self.sm.ShareableList(name=sl.shm.name)
            self.assertEqual(other[0], 'text')
            other.shm.close()
            self.assertIn('ShareableList(', repr(sl))
            empty = self.sm.ShareableList()
            self.assertEqual(len(empty), 0)
            empty.shm.close()
            empty.shm.unlink()
            self.assertRaises(KeyError, self.sm.ShareableList, [[1]])  # no list items
        finally:
            sl.shm.close()
            sl.shm.unlink()
        with self.assertRaises(TypeError):
            sl[0]  # use after close, as Python: its buf is None


@only_mproc(methods=('fork',))
class WithPython:
    """Python's own ShareableList and SharedMemory read mproc's segments,
    and the other way round (the same layout and names)."""

    def setUp(self):
        from multiprocessing import resource_tracker, shared_memory
        self.std = shared_memory
        self.tracker = resource_tracker

    def std_attach(self, cls, **kw):
        obj = cls(**kw)
        shm = obj.shm if hasattr(obj, 'shm') else obj
        # Python 3.11 registers an attached segment with its tracker, which
        # would unlink it (and warn) at exit: mproc's creator owns it.
        self.tracker.unregister(shm._name, 'shared_memory')
        return obj

    def test_python_reads_mproc(self):
        sm = shm_module(self.mod)
        sl = sm.ShareableList([5, 'mproc', 2.5, None])
        try:
            theirs = self.std_attach(self.std.ShareableList, name=sl.shm.name)
            self.assertEqual(list(theirs), [5, 'mproc', 2.5, None])
            theirs[0] = 99
            theirs.shm.close()
            self.assertEqual(sl[0], 99)
        finally:
            sl.shm.close()
            sl.shm.unlink()

    def test_mproc_reads_python(self):
        sm = shm_module(self.mod)
        theirs = self.std.ShareableList([b'py', 7, True])
        try:
            mine = sm.ShareableList(name=theirs.shm.name)
            self.assertEqual(list(mine), [b'py', 7, True])
            mine[1] = -1
            mine.shm.close()
            self.assertEqual(theirs[1], -1)
            shm = self.std.SharedMemory(create=True, size=8)
            shm.buf[:2] = b'ok'
            mine = sm.SharedMemory(shm.name)
            self.assertEqual(bytes(mine.buf[:2]), b'ok')
            mine.close()
            shm.close()
            shm.unlink()
        finally:
            theirs.shm.close()
            theirs.shm.unlink()


LEAKY = textwrap.dedent('''
    import os, sys
    import {mod} as mp
    from {mod} import shared_memory as sm

    def child(shm, sl, name):
        sm.SharedMemory(name).close()
        sl[0] += 1
        shm.buf[0] = 7

    if __name__ == '__main__':
        names = []
        for method in ('fork', 'spawn', 'forkserver'):
            ctx = mp.get_context(method)
            shm = sm.SharedMemory(create=True, size=32)
            sl = sm.ShareableList([1, 'x'])
            p = ctx.Process(target=child, args=(shm, sl, shm.name))
            p.start()
            p.join()
            assert p.exitcode == 0 and sl[0] == 2 and shm.buf[0] == 7, method
            names += [shm.name, sl.shm.name]
            shm.close()
            shm.unlink()
            sl.shm.close()  # never unlinked: left to the tracker
        print(' '.join(names))
''')


@only_mproc(methods=('fork',))
class NoLeftovers:
    """A program whose children attach to segments, one segment never
    unlinked: no warning on stderr, nothing left in /dev/shm. With Python's
    multiprocessing the same program warns (so the check can fail)."""

    def program(self, mod):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'leaky.py')
            with open(path, 'w') as f:
                f.write(LEAKY.format(mod=mod))
            env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                os.path.abspath(mproc.__file__))))
            r = subprocess.run([sys.executable, path], capture_output=True, text=True,
                               timeout=120, cwd=tmp, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split(), r.stderr

    def test_mproc(self):
        names, err = self.program('mproc')
        self.assertEqual(len(names), 6)
        self.assertEqual(err, '')
        deadline = time.monotonic() + 10  # the tracker unlinks once the family is gone
        while any(map(in_shm(True), names)) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([n for n in names if in_shm(True)(n)], [])

    def test_untracked_stays(self):
        """track=False (Python 3.13's): the caller unlinks, not the family's
        end (a tracked segment of the same program shows when it ended)."""
        sm = shm_module(self.mod)
        r = subprocess.run([sys.executable, '-c', 'from mproc import shared_memory as sm; '
                            'print(sm.SharedMemory(create=True, size=8, track=False).name, '
                            'sm.SharedMemory(create=True, size=8).name)'],
                           capture_output=True, text=True, timeout=60, env=dict(
                               os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                                   os.path.abspath(mproc.__file__)))))
        self.assertEqual((r.returncode, r.stderr), (0, ''))
        untracked, tracked = r.stdout.split()
        deadline = time.monotonic() + 10
        while in_shm(True)(tracked) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(in_shm(False)(tracked))
        self.assertTrue(in_shm(True)(untracked))
        sm.SharedMemory(untracked).unlink()
        self.assertTrue(in_shm(False)(untracked))

    def test_python_warns(self):
        names, err = self.program('multiprocessing')
        self.assertIn('resource_tracker', err)


if __name__ == '__main__':
    unittest.main()
