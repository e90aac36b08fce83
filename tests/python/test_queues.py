"""Queue, SimpleQueue, JoinableQueue: mproc against Python's
multiprocessing, under each start method."""
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
        self.assertTrue(q.empty())

    def test_large_message(self):
        q = self.mp.Queue()
        big = b'\xab' * (8 << 20)
        q.put(big)
        self.assertEqual(q.get(timeout=10), big)


if __name__ == '__main__':
    unittest.main()
