"""Pipe and Connection: mproc against Python's multiprocessing."""
import array
import os
import socket
import time
import unittest

from mputil import both, only_mproc, run


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


def handed_ends(conn, q):
    """Takes ends and a socket sent over conn (pickled outside spawning),
    and an end put on q, and uses each."""
    w = conn.recv()  # a one-way writer
    w.send('all is well')
    w.close()
    r = conn.recv()  # a one-way reader
    conn.send(r.recv() * 2)
    r.close()
    d = conn.recv()  # a duplex end
    d.send(d.recv() + 1)
    d.close()
    s = conn.recv()  # a socket
    s.sendall(b'socket ok')
    s.close()
    e = q.get(timeout=30)  # an end put on a queue
    e.send('through a queue')
    e.close()
    conn.close()


def write_received_handle(conn, modname):
    import importlib
    fd = importlib.import_module(modname + '.reduction').recv_handle(conn)
    os.write(fd, b'by handle')
    os.close(fd)
    conn.close()


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

    def test_ends_and_sockets_pickled_outside_spawning(self):
        """Each kind of Connection end and a socket, sent over a Connection
        to a running child, and an end put on a Queue: the child uses
        each."""
        conn, child_conn = self.mp.Pipe()
        q = self.mp.Queue()
        p = self.mp.Process(target=handed_ends, args=(child_conn, q))
        p.start()
        child_conn.close()
        r, w = self.mp.Pipe(duplex=False)
        conn.send(w)
        w.close()
        self.assertEqual(r.recv(), 'all is well')
        r.close()
        r, w = self.mp.Pipe(duplex=False)
        conn.send(r)
        r.close()
        w.send('foo')
        w.close()
        self.assertEqual(conn.recv(), 'foofoo')
        a, b = self.mp.Pipe()
        conn.send(b)
        b.close()
        a.send(41)
        self.assertEqual(a.recv(), 42)
        a.close()
        s1, s2 = socket.socketpair()
        conn.send(s2)
        s2.close()
        s1.settimeout(30)
        self.assertEqual(s1.recv(100), b'socket ok')
        s1.close()
        r, w = self.mp.Pipe(duplex=False)
        q.put(w)  # Python's feeder thread pickles it later: closed after
        self.assertEqual(r.recv(), 'through a queue')
        w.close()
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        conn.close()

    def test_send_handle(self):
        """reduction.send_handle / recv_handle: a file's fd to a child,
        which writes through it."""
        import tempfile
        reduction = self.mod.reduction
        self.assertTrue(reduction.HAVE_SEND_HANDLE)
        conn, child_conn = self.mp.Pipe()
        p = self.mp.Process(target=write_received_handle, args=(child_conn, self.mod.__name__))
        p.start()
        child_conn.close()
        with tempfile.TemporaryFile() as f:
            reduction.send_handle(conn, f.fileno(), p.pid)
            p.join(30)
            self.assertEqual(p.exitcode, 0)
            f.seek(0)
            self.assertEqual(f.read(), b'by handle')
        conn.close()


@only_mproc(methods=('fork',))
class HandedOn:
    def test_recv_handle_of_something_else(self):
        a, b = self.mp.Pipe()
        b.send('not a handle')
        self.assertRaises(RuntimeError, self.mod.reduction.recv_handle, a)

    def test_detached_once(self):
        """A pickled end is served once: a second unpickling of the same
        bytes fails (end of file from the sharer), it does not hang."""
        import pickle
        from mproc import reduction
        r, w = self.mp.Pipe(duplex=False)
        data = reduction.dumps(w)
        w2 = pickle.loads(data)
        w2.send('once')
        self.assertEqual(r.recv(), 'once')
        self.assertRaises((EOFError, OSError, RuntimeError), pickle.loads, data)
        w2.close()
        w.close()
        r.close()

    def test_a_silent_client_does_not_hold_the_sharer(self):
        """A process of the family that connects to the sharer and then
        sends nothing holds its thread for ASK_WITHIN at most: a pickled
        end is still served after that."""
        import pickle
        from mproc import reduction, resource_sharer
        from mproc.connection import Client
        old = resource_sharer.ASK_WITHIN
        resource_sharer.ASK_WITHIN = 0.5
        self.addCleanup(setattr, resource_sharer, 'ASK_WITHIN', old)
        r, w = self.mp.Pipe(duplex=False)
        data = reduction.dumps(w)
        address = resource_sharer._sharer._address
        silent = Client(address, authkey=self.mod.current_process().authkey)
        t0 = time.monotonic()
        w2 = pickle.loads(data)  # served once the silent client is dropped
        self.assertLess(time.monotonic() - t0, 10)
        w2.send('served')
        self.assertEqual(r.recv(), 'served')
        silent.close()
        for c in (w2, w, r):
            c.close()

    def test_fork_child_keeps_no_duplicate(self):
        """A duplicate kept for a pickled end is not kept by a fork child:
        the reader sees end of file once the parent's copies are gone."""
        from mproc import reduction, resource_sharer
        r, w = self.mp.Pipe(duplex=False)
        data = reduction.dumps(w)  # a duplicate of w's fd, kept to be served
        w.close()
        p = self.mp.Process(target=time.sleep, args=(3,))
        p.start()
        resource_sharer.stop(timeout=30)  # closes the parent's duplicate
        t0 = time.monotonic()
        self.assertRaises(EOFError, r.recv)  # the child holds no copy
        self.assertLess(time.monotonic() - t0, 2)
        p.join(30)
        del data
        r.close()

if __name__ == '__main__':
    unittest.main()
