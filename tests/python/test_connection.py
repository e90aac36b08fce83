"""Pipe and Connection: mproc against Python's multiprocessing."""
import array
import time
import unittest

from mputil import both, run


def echo(conn):
    while True:
        try:
            obj = conn.recv()
        except EOFError:
            break
        if obj is None:
            break
        conn.send(obj)
    conn.close()


def send_bytes_child(w):
    w.send_bytes(b'hello from child')
    w.close()


@both(methods=('fork',))
class LocalSemantics:
    def test_send_recv(self):
        a, b = self.mp.Pipe()
        for obj in (1, 'x', [1, 2], {'a': (1, 2)}, None, b'raw'):
            a.send(obj)
            self.assertEqual(b.recv(), obj)
            b.send(obj)
            self.assertEqual(a.recv(), obj)

    def test_bytes(self):
        a, b = self.mp.Pipe()
        a.send_bytes(b'abcdef')
        self.assertEqual(b.recv_bytes(), b'abcdef')
        a.send_bytes(b'abcdef', 2)
        self.assertEqual(b.recv_bytes(), b'cdef')
        a.send_bytes(b'abcdef', 2, 3)
        self.assertEqual(b.recv_bytes(), b'cde')
        a.send_bytes(b'')
        self.assertEqual(b.recv_bytes(), b'')
        a.send_bytes(array.array('i', [1, 2, 3]))
        self.assertEqual(b.recv_bytes(), array.array('i', [1, 2, 3]).tobytes())
        self.assertRaises(ValueError, a.send_bytes, b'abc', -1)
        self.assertRaises(ValueError, a.send_bytes, b'abc', 4)
        self.assertRaises(ValueError, a.send_bytes, b'abc', 1, -1)
        self.assertRaises(ValueError, a.send_bytes, b'abc', 1, 3)
        self.assertRaises(ValueError, b.recv_bytes, -1)

    def test_recv_bytes_into(self):
        a, b = self.mp.Pipe()
        buf = bytearray(10)
        a.send_bytes(b'12345')
        self.assertEqual(b.recv_bytes_into(buf, 2), 5)
        self.assertEqual(bytes(buf), b'\x00\x0012345\x00\x00\x00')
        a.send_bytes(b'x' * 20)
        with self.assertRaises(self.mod.BufferTooShort) as cm:
            b.recv_bytes_into(buf)
        self.assertEqual(cm.exception.args[0], b'x' * 20)

    def test_maxlength(self):
        a, b = self.mp.Pipe()
        a.send_bytes(b'x' * 100)
        self.assertRaises(OSError, b.recv_bytes, 10)

    def test_poll(self):
        a, b = self.mp.Pipe()
        self.assertFalse(b.poll())
        t0 = time.monotonic()
        self.assertFalse(b.poll(0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        a.send(1)
        self.assertTrue(b.poll())
        self.assertTrue(b.poll(None))
        self.assertEqual(b.recv(), 1)

    def test_one_way(self):
        r, w = self.mp.Pipe(duplex=False)
        self.assertTrue(r.readable)
        self.assertFalse(r.writable)
        self.assertFalse(w.readable)
        self.assertTrue(w.writable)
        self.assertRaises(OSError, r.send, 1)
        self.assertRaises(OSError, w.recv)
        self.assertRaises(OSError, w.poll)
        w.send(5)
        self.assertEqual(r.recv(), 5)

    def test_close_and_eof(self):
        a, b = self.mp.Pipe()
        self.assertFalse(a.closed)
        self.assertIsInstance(a.fileno(), int)
        a.close()
        self.assertTrue(a.closed)
        a.close()  # harmless
        self.assertRaises(OSError, a.send, 1)
        self.assertRaises(OSError, a.recv)
        self.assertRaises(OSError, a.poll)
        self.assertRaises(OSError, a.fileno)
        self.assertRaises(EOFError, b.recv)
        with self.mp.Pipe()[0] as c:
            pass
        self.assertTrue(c.closed)


@both()
class AcrossProcesses:
    def test_echo(self):
        a, b = self.mp.Pipe()
        p = self.mp.Process(target=echo, args=(b,))
        p.start()
        b.close()
        for obj in (1, 'two', [3] * 1000, b'x' * 100000):
            a.send(obj)
            self.assertEqual(a.recv(), obj)
        a.send(None)
        p.join(30)
        self.assertEqual(p.exitcode, 0)

    def test_one_way_child(self):
        r, w = self.mp.Pipe(duplex=False)
        self.assertEqual(run(self.mp, send_bytes_child, w), 0)
        w.close()
        self.assertEqual(r.recv_bytes(), b'hello from child')
        self.assertRaises(EOFError, r.recv_bytes)


if __name__ == '__main__':
    unittest.main()
