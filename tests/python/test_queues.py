"""Queue, SimpleQueue, JoinableQueue: mproc against Python's
multiprocessing, under each start method."""
import collections
import enum
import marshal
import math
import pickle
import queue
import time
import unittest

from mputil import both, only_mproc, run


def produce(q, n):
    for i in range(n):
        q.put((i, 'x' * i))


def consume_and_ack(q, out):
    while True:
        item = q.get(timeout=30)
        if item is None:
            q.task_done()
            break
        out.put(item * 2)
        q.task_done()


def put_and_exit(q):
    q.put('bye')  # Python's feeder thread flushes it at exit; mproc has none


_inner = None  # the queue _take_inner gets from


def _take_inner(x):
    return (x, _inner.get(timeout=10))


class GetsWhileUnpickled:
    """Unpickling it gets from _inner: a get inside a get."""

    def __init__(self, x):
        self.x = x

    def __reduce__(self):
        return (_take_inner, (self.x,))


class Bytes(bytes):
    pass


class Str(str):
    pass


class Int(int):
    pass


class Color(enum.IntEnum):
    RED = 1


def values():
    """Values of every kind a queue carries: mproc writes those made only
    of exact builtin types with marshal, small ones in a form that keeps no
    table of the objects written, and the rest as pickles. Each comes out
    as pickle gives it back: same types, same order, same sharing."""
    shared = [1, 2]
    rec = []
    rec.append(rec)
    deep = []
    for _ in range(40):  # deeper than mproc's check goes
        deep = [deep]
    paths = []
    for _ in range(40):  # 2**40 paths through 41 lists
        paths = [paths, paths]
    return [
        None, True, False, 0, -1, 2**31, -2**63, 2**64 + 1, 10**400, 1.5, -0.0,
        float('inf'), float('nan'), 1 + 2j, '', 'item', '\xe9\u20ac\U0001d11e', '\udc80',
        'x' * 300, b'', b'\x00\xff', b'b' * 300, bytearray(b'ab'), (), (1, 'item', 1.5),
        [1, 'two', 3.0, None, True], (1,) * 17, [1, [2, [3]]], {'b': 1, 'a': 2},
        {True: 1, 2: 'x'}, {1, 2}, frozenset({'a'}), {(1, 2): [3]}, list(range(100000)),
        Str('s'), Int(5), Color.RED, (Int(1), 2), [bytearray(b'x')], (Str('t'), 'u'),
        collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]),
        [shared, shared], {'a': shared, 'b': shared}, ('y' * 1000,) * 2, rec, deep, paths,
    ]


def same(a, b):
    """a and b equal, of the same types all the way down (NaN equal to
    NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(x is a or same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def check_values(test, got):
    want = values()
    test.assertEqual(len(got), len(want))
    rec, deep, paths = got[-3:]
    for w, g in zip(want[:-3], got[:-3]):
        test.assertTrue(same(w, g), '%.80r came back as %.80r' % (w, g))
    test.assertIs(rec[0], rec)
    for _ in range(40):
        test.assertEqual(len(deep), 1)
        deep = deep[0]
        test.assertIs(paths[0], paths[1])
        paths = paths[0]
    test.assertEqual((deep, paths), ([], []))
    shared_list, shared_dict, strings = got[-6:-3]
    test.assertIs(shared_list[0], shared_list[1])
    test.assertIs(shared_dict['a'], shared_dict['b'])
    test.assertIs(strings[0], strings[1])


def echo_values(q_in, q_out):
    for _ in values():
        q_out.put(q_in.get(timeout=30))


@both(methods=('fork',))
class Messages:
    def test_bytes_of_every_size(self):
        # Large bytes objects take another road in mproc: the same objects
        # come out, of the same types.
        q = self.mp.Queue()
        objs = [b'', b'y' * 65535, b'y' * 65536, b'z' * 65537, bytes(range(256)) * 4096,
                Bytes(b'w' * 70000), bytearray(b'v' * 70000), (b'u' * 70000, 1)]
        for obj in objs:
            q.put(obj)
        for obj in objs:
            got = q.get(timeout=10)
            self.assertEqual(got, obj)
            self.assertIs(type(got), type(obj))

    def test_values_come_back_as_they_were(self):
        q = self.mp.Queue()
        for v in values():
            q.put(v)
        check_values(self, [q.get(timeout=10) for _ in values()])

    def test_get_while_unpickling(self):
        global _inner
        q, _inner = self.mp.Queue(), self.mp.Queue()
        try:
            _inner.put(b'a' * 100000)
            q.put((GetsWhileUnpickled(1), b'c' * 70000))
            self.assertEqual(q.get(timeout=10), ((1, b'a' * 100000), b'c' * 70000))
        finally:
            _inner = None

@both(methods=('fork',))
class LocalSemantics:
    def test_put_get(self):
        q = self.mp.Queue()
        self.assertTrue(q.empty())
        for obj in (1, 'two', [3], {'four': 4}, None, b'\x00' * 1000):
            q.put(obj)
        time.sleep(0.1)  # Python's feeder thread
        self.assertFalse(q.empty())
        self.assertEqual(q.qsize(), 6)
        got = [q.get(timeout=5) for _ in range(6)]
        self.assertEqual(got, [1, 'two', [3], {'four': 4}, None, b'\x00' * 1000])

    def test_empty_and_full(self):
        q = self.mp.Queue(2)
        self.assertRaises(queue.Empty, q.get, False)
        self.assertRaises(queue.Empty, q.get_nowait)
        t0 = time.monotonic()
        self.assertRaises(queue.Empty, q.get, True, 0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        q.put(1)
        q.put(2)
        self.assertRaises(queue.Full, q.put, 3, False)
        self.assertRaises(queue.Full, q.put_nowait, 3)
        self.assertRaises(queue.Full, q.put, 3, True, 0.1)
        self.assertTrue(q.full())
        self.assertEqual(q.get(), 1)
        self.assertEqual(q.get(), 2)

    def test_close(self):
        q = self.mp.Queue()
        q.put(1)
        q.get()
        q.close()
        self.assertRaises(ValueError, q.put, 1)
        self.assertRaises(ValueError, q.get)
        q.join_thread()

    def test_joinable(self):
        q = self.mp.JoinableQueue()
        q.put(1)
        q.get()
        q.task_done()
        q.join()
        self.assertRaises(ValueError, q.task_done)

    def test_simple_queue(self):
        q = self.mp.SimpleQueue()
        self.assertTrue(q.empty())
        q.put([1, 2])
        self.assertFalse(q.empty())
        self.assertEqual(q.get(), [1, 2])
        q.close()
        self.assertRaises(OSError, q.get)

    def test_pickle_outside_spawning(self):
        for q in (self.mp.Queue(), self.mp.SimpleQueue(), self.mp.JoinableQueue()):
            self.assertRaises(RuntimeError, pickle.dumps, q)


@both()
class AcrossProcesses:
    def test_producer_child(self):
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, produce, q, 100), 0)
        got = [q.get(timeout=10) for _ in range(100)]
        self.assertEqual(got, [(i, 'x' * i) for i in range(100)])

    def test_exit_after_put(self):
        q = self.mp.Queue()
        self.assertEqual(run(self.mp, put_and_exit, q), 0)
        self.assertEqual(q.get(timeout=10), 'bye')

    def test_joinable_workers(self):
        q, out = self.mp.JoinableQueue(), self.mp.Queue()
        ps = [self.mp.Process(target=consume_and_ack, args=(q, out)) for _ in range(2)]
        for p in ps:
            p.start()
        for i in range(20):
            q.put(i)
        for _ in ps:
            q.put(None)
        q.join()
        self.assertEqual(sorted(out.get(timeout=10) for _ in range(20)),
                         [i * 2 for i in range(20)])
        for p in ps:
            p.join(30)
            self.assertEqual(p.exitcode, 0)

    def test_values_through_a_child(self):
        q_in, q_out = self.mp.Queue(), self.mp.Queue()
        p = self.mp.Process(target=echo_values, args=(q_in, q_out))
        p.start()
        try:
            for v in values():
                q_in.put(v)
            check_values(self, [q_out.get(timeout=30) for _ in values()])
        finally:
            p.join(30)
        self.assertEqual(p.exitcode, 0)

    def test_simple_queue_child(self):
        q = self.mp.SimpleQueue()
        self.assertEqual(run(self.mp, produce, q, 5), 0)
        self.assertEqual([q.get() for _ in range(5)], [(i, 'x' * i) for i in range(5)])


@only_mproc(methods=('fork',))
class BeyondPython:
    def test_unpicklable_raises_at_put(self):
        # Python's feeder thread prints the error and drops the item.
        q = self.mp.Queue()
        self.assertRaises(Exception, q.put, lambda: 0)
        self.assertRaises(RuntimeError, q.put, self.mp.Lock())
        # marshal would write a code object; pickle refuses it, and so does
        # the queue
        self.assertRaises(TypeError, q.put, produce.__code__)
        self.assertRaises(TypeError, q.put, (1, produce.__code__))
        self.assertTrue(q.empty())

    def test_encoding_chosen(self):
        # marshal for plain builtin values of a few hundred objects at most
        # (version 2 for a small one), a pickle (first byte 0x80) otherwise
        from mproc import _core
        rec = []
        rec.append(rec)
        small = [None, 1, 2**62, 'item', (1, 'item', 1.5), [1.5] * 16, ('s' * 256, b'b' * 256)]
        larger = [(1,) * 17, {'a': [1, 2]}, [[1]] * 100, 2**64, 's' * 257]
        pickled = [bytearray(b'x'), Str('s'), (Int(1),), [Bytes(b'')], list(range(300)), rec,
                   {1, 2}, [frozenset()]]
        for v in small:
            self.assertEqual(_core.codec_dumps(v), marshal.dumps(v, 2), v)
        for v in larger:
            self.assertEqual(_core.codec_dumps(v), marshal.dumps(v), v)
        for v in pickled:
            self.assertEqual(_core.codec_dumps(v)[0], 0x80, v)
            self.assertIs(type(_core.codec_loads(_core.codec_dumps(v))), type(v))

    def test_large_message(self):
        q = self.mp.Queue()
        big = b'\xab' * (8 << 20)
        q.put(big)
        self.assertEqual(q.get(timeout=10), big)


if __name__ == '__main__':
    unittest.main()
