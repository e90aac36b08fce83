"""Value, Array, RawValue, RawArray and sharedctypes: mproc against
Python's multiprocessing, under each start method."""
import ctypes
import importlib
import pickle
import unittest

import mproc
from mputil import both, only_mproc, run


class IntLike:
    def __index__(self):
        return 9


class FloatLike:
    def __float__(self):
        return 0.25


class Point(ctypes.Structure):
    _fields_ = [('x', ctypes.c_double), ('y', ctypes.c_double)]


def change_all(v, a, s, raw, rawarr, pt, pts, unlocked, shared_lock):
    """Changes each object; the parent checks what it sees."""
    with v.get_lock():
        v.value += 1
    for i in range(len(a)):
        a[i] = -a[i]
    a[1:3] = [10.5, 20.5]
    s.value = b'from child'
    raw.value = 77
    rawarr[:] = [9, 8, 7]
    pt.x *= 2
    pts[1].y = 44.0
    unlocked.value = 3.25
    if shared_lock.get_lock() is not shared_lock.get_lock():
        return 3
    if not shared_lock.get_lock().acquire(timeout=5):
        return 4
    shared_lock.get_lock().release()
    return 0


def child_change_all(*args):
    raise SystemExit(change_all(*args))


def increment(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def increment_array(a, n):
    for _ in range(n):
        with a.get_lock():
            a[0] += 1
            a[1] -= 1


def sharedctypes_of(mod):
    return importlib.import_module(mod.__name__ + '.sharedctypes')


@both()
class InChildren:
    """Objects passed as args: a child's changes are seen by the parent."""

    def test_change_all(self):
        sc = sharedctypes_of(self.mod)
        v = self.mp.Value('i', 5)
        a = self.mp.Array('d', [1.0, 2.5, 3.0, 4.0])
        s = self.mp.Array('c', 16)
        raw = self.mp.RawValue('q', 1)
        rawarr = self.mp.RawArray('h', 3)
        pt = sc.Value(Point, 1.5, 2.0, ctx=self.mp)
        pts = sc.RawArray(Point, [(1, 2), (3, 4)])
        unlocked = self.mp.Value('d', lock=False)
        lock = self.mp.Lock()
        shared_lock = self.mp.Array('i', 2, lock=lock)
        self.assertEqual(run(self.mp, child_change_all, v, a, s, raw, rawarr, pt, pts, unlocked,
                             shared_lock), 0)
        self.assertEqual(v.value, 6)
        self.assertEqual(a[:], [-1.0, 10.5, 20.5, -4.0])
        self.assertEqual(s.value, b'from child')
        self.assertEqual(raw.value, 77)
        self.assertEqual(list(rawarr), [9, 8, 7])
        self.assertEqual((pt.x, pt.y), (3.0, 2.0))
        self.assertEqual((pts[0].x, pts[1].y), (1.0, 44.0))
        self.assertEqual(unlocked.value, 3.25)
        self.assertIs(shared_lock.get_lock(), lock)

    def test_two_children_increment(self):
        v = self.mp.Value('i', 0)
        a = self.mp.Array('l', 2)
        n = 300
        ps = [self.mp.Process(target=increment, args=(v, n)) for _ in range(2)]
        ps += [self.mp.Process(target=increment_array, args=(a, n)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 2 * n)
        self.assertEqual(a[:], [2 * n, -2 * n])


@both(methods=('fork',))
class LocalSemantics:
    """Results and exceptions in one process, as Python's."""

    def test_typecodes(self):
        for tc, val in [('c', b'x'), ('u', 'z'), ('b', -5), ('B', 250), ('h', -300),
                        ('H', 60000), ('i', -7), ('I', 7), ('l', -2**40), ('L', 2**40),
                        ('q', -2**62), ('Q', 2**63), ('f', 0.5), ('d', 1e300)]:
            with self.subTest(tc=tc):
                self.assertEqual(self.mp.Value(tc, val).value, val)
                self.assertEqual(self.mp.RawValue(tc, val).value, val)
                self.assertEqual(self.mp.Array(tc, [val] * 3)[:], [val] * 3
                                 if tc not in 'cu' else (val * 3))
        self.assertEqual(self.mp.Value('i').value, 0)
        self.assertEqual(self.mp.Value(ctypes.c_ushort, 9).value, 9)
        self.assertEqual(self.mp.RawArray(ctypes.c_double, 2)[:], [0.0, 0.0])
        self.assertEqual(self.mp.Array('i', 0)[:], [])

    def test_value_conversions(self):
        # what ctypes stores for each kind of value (mproc writes c_int,
        # c_long and c_double itself, as ctypes would)
        i, q, d = self.mp.Value('i'), self.mp.Value('l'), self.mp.Value('d')
        for v, stored in [(5, 5), (-1, -1), (2**40 + 7, 7), (2**31, -2**31), (-2**64 - 1, -1),
                          (True, 1), (IntLike(), 9)]:
            with self.subTest(v=v):
                i.value = v
                self.assertEqual(i.value, stored)
                self.assertIs(type(i.value), int)
        for v, stored in [(2**63, -2**63), (2**64 + 3, 3), (-5, -5)]:
            with self.subTest(v=v):
                q.value = v
                self.assertEqual(q.value, stored)
        for v, stored in [(1.5, 1.5), (3, 3.0), (float('inf'), float('inf')), (FloatLike(), 0.25)]:
            with self.subTest(v=v):
                d.value = v
                self.assertEqual(d.value, stored)
                self.assertIs(type(d.value), float)
        for bad in (1.5, 'x', None, b'1'):
            with self.subTest(bad=bad):
                self.assertRaises(TypeError, setattr, i, 'value', bad)
        self.assertRaises(TypeError, setattr, d, 'value', 'x')
        self.assertRaises(OverflowError, setattr, d, 'value', 10**400)
        self.assertEqual((i.value, d.value), (9, 0.25))
        with self.assertRaises((AttributeError, TypeError)):
            del i.value
        # the value read and written is always _obj's, also a new one
        other = self.mp.RawValue('i', 42)
        i._obj = other
        self.assertEqual(i.value, 42)
        i.value = 43
        self.assertEqual(other.value, 43)
        # and through get_obj() and the lock, from the other side
        with d.get_lock():
            d.get_obj().value = 2.5
            self.assertEqual(d.value, 2.5)
            d.value += 1
        self.assertEqual(d.get_obj().value, 3.5)

    def test_array_access(self):
        a = self.mp.Array('i', range(10))
        self.assertEqual(len(a), 10)
        self.assertEqual(a[-1], 9)
        self.assertEqual(a[2:5], [2, 3, 4])
        self.assertEqual(a[::3], [0, 3, 6, 9])
        a[2:5] = [20, 30, 40]
        self.assertEqual(a[:6], [0, 1, 20, 30, 40, 5])
        self.assertEqual(list(a.get_obj()), [0, 1, 20, 30, 40, 5, 6, 7, 8, 9])
        self.assertRaises(IndexError, a.__getitem__, 10)
        self.assertRaises(IndexError, a.__setitem__, -11, 1)
        with self.assertRaises(ValueError):
            a[0:2] = [1, 2, 3]

    def test_char_array(self):
        s = self.mp.Array('c', b'hello')
        self.assertEqual(s.value, b'hello')
        self.assertEqual(s.raw, b'hello')
        s.value = b'hi'
        self.assertEqual(s.value, b'hi')
        self.assertEqual(s.raw, b'hi\x00lo')
        s.raw = b'abcde'
        self.assertEqual(s[:], b'abcde')
        with self.assertRaises(ValueError):
            s.value = b'too long!'
        self.assertEqual(self.mp.Array('c', 4).raw, b'\x00' * 4)

    def test_locks(self):
        v = self.mp.Value('i')
        self.assertEqual(type(v.get_lock()).__name__, 'RLock')
        with v:
            with v.get_lock():
                v.value = 3
        self.assertTrue(v.acquire())
        v.release()
        lock = self.mp.Lock()
        w = self.mp.Value('i', 1, lock=lock)
        self.assertIs(w.get_lock(), lock)
        with w.get_lock():
            self.assertFalse(lock.acquire(False))
        raw = self.mp.Value('i', 2, lock=False)
        self.assertIsInstance(raw, ctypes.c_int)
        self.assertFalse(hasattr(raw, 'get_lock'))
        self.assertIsInstance(self.mp.Array('i', 2, lock=False), ctypes.Array)
        with self.assertRaises(AttributeError):
            self.mp.Value('i', lock='no lock')
        self.assertIn('wrapper for c_int(3)', repr(v))
        self.assertIsInstance(v.get_obj(), ctypes.c_int)

    def test_structures_copy_synchronized(self):
        sc = sharedctypes_of(self.mod)
        p = sc.Value(Point, 1, 2)
        self.assertEqual(type(p).__name__, 'SynchronizedPoint')
        p.x = 5
        self.assertEqual((p.x, p.y), (5.0, 2.0))
        arr = sc.Array(Point, [(1, 1), (2, 2)], lock=False)
        self.assertEqual(arr[1].x, 2.0)
        raw = sc.RawValue('i', 4)
        c = sc.copy(raw)
        c.value = 8
        self.assertEqual((raw.value, c.value), (4, 8))
        s = sc.synchronized(raw)
        self.assertEqual(type(s).__name__, 'Synchronized')
        self.assertEqual(s.value, 4)
        sa = sc.synchronized(sc.RawArray('c', b'ab'))
        self.assertEqual(type(sa).__name__, 'SynchronizedString')
        self.assertEqual(sa.value, b'ab')
        self.assertRaises(AssertionError, sc.synchronized, s)

    def test_bad_input(self):
        self.assertRaises(TypeError, self.mp.Value, 'x')
        self.assertRaises(TypeError, self.mp.RawValue, 'x', 1)
        self.assertRaises(TypeError, self.mp.Array, 'Z', 3)
        self.assertRaises(TypeError, self.mp.Value, 'i', 'text')
        self.assertRaises(TypeError, self.mp.Array, 'i', ['a', 'b'])
        self.assertRaises(ValueError, self.mp.Array, 'i', -1)
        self.assertRaises(TypeError, self.mp.Value, 'i', 1, 2)
        v = self.mp.Value('i')
        self.assertRaises(TypeError, setattr, v, 'value', 'str')

    def test_pickle_outside_spawning(self):
        v = self.mp.Value('i')
        self.assertRaises(RuntimeError, pickle.dumps, v)
        self.assertRaises(RuntimeError, pickle.dumps, self.mp.Array('i', 2))


@only_mproc(methods=('fork',))
class MprocOnly:
    """What only mproc has: the arena, its limits."""

    def test_oversize(self):
        self.assertRaises(MemoryError, self.mp.RawArray, 'b', 1 << 40)
        self.assertRaises(MemoryError, self.mp.Array, 'd', 1 << 40)

    def test_memory_in_arena(self):
        v = self.mp.RawValue('i', 1)
        addr = ctypes.addressof(v)
        info = mproc._core.shared_addr(v._wrapper._h)
        self.assertEqual(addr, info)
        self.assertRaises(TypeError, mproc._core.shared_addr, self.mp.Lock()._h)

    def test_import_checks_the_address(self):
        lock = self.mp.Lock()
        self.assertRaises(ValueError, mproc._core.handle_import, 12345, mproc._core.K_SHARED)
        addr = mproc._core.handle_export(lock._h)
        try:
            self.assertRaises(ValueError, mproc._core.handle_import, addr, mproc._core.K_SHARED)
        finally:
            mproc._core.handle_import(addr, mproc._core.K_LOCK)  # gives the reference back


if __name__ == '__main__':
    unittest.main()
