"""connection.Listener, Client, wait and the authkey handshake: mproc
against Python's multiprocessing, and each talking to the other."""
import array
import multiprocessing
import multiprocessing.connection as std_conn
import os
import socket
import threading
import time
import unittest

import mproc
import mproc.connection as mp_conn

from mputil import both, join_thread, only_mproc

FAMILIES = ('AF_UNIX', 'AF_INET')


def client_child(address, family, authkey, modname):
    conn_mod = mp_conn if modname == 'mproc' else std_conn
    c = conn_mod.Client(address, family, authkey=authkey)
    c.send(('hello', os.getpid()))
    reply = c.recv()
    c.close()
    os._exit(0 if reply == 'bye' else 3)


def sleeper(t):
    time.sleep(t)


def sender_child(w, delay):
    time.sleep(delay)
    w.send('late')
    w.close()


def conn_mod(self):
    return mp_conn if self.is_mproc else std_conn


@both(methods=('fork',))
class ListenerLocal:
    """In one process, a client thread against the listener."""

    def pair(self, family, authkey=None, address=None):
        cm = conn_mod(self)
        kw = {'authkey': authkey}
        l = cm.Listener(address, family=family, **kw)
        out = {}

        def cl():
            out['c'] = cm.Client(l.address, family, authkey=authkey)
        t = threading.Thread(target=cl)
        t.start()
        a = l.accept()
        join_thread(t)
        return l, a, out['c']

    def test_send_recv_each_family(self):
        for family in FAMILIES:
            for key in (None, b'key'):
                l, a, c = self.pair(family, key)
                with l, a, c:
                    c.send({'x': [1, 2]})
                    self.assertEqual(a.recv(), {'x': [1, 2]})
                    a.send_bytes(b'abcdef', 1, 3)
                    self.assertEqual(c.recv_bytes(), b'bcd')
                    buf = bytearray(8)
                    a.send_bytes(b'12345')
                    self.assertEqual(c.recv_bytes_into(buf, 2), 5)
                    self.assertEqual(bytes(buf), b'\0\x0012345\0')
                    a.send_bytes(b'x' * 20)
                    with self.assertRaises(multiprocessing.BufferTooShort) as cm:
                        c.recv_bytes_into(buf)
                    self.assertEqual(cm.exception.args[0], b'x' * 20)
                    a.send_bytes(array.array('i', [1, 2, 3]))
                    arr = array.array('i', [0] * 4)
                    self.assertEqual(c.recv_bytes_into(arr), 3 * arr.itemsize)
                    self.assertEqual(list(arr), [1, 2, 3, 0])
                    self.assertTrue(c.poll(0) is False)

    def test_address_and_last_accepted(self):
        l, a, c = self.pair('AF_INET')
        with l, a, c:
            host, port = l.address
            self.assertEqual(host, '127.0.0.1')
            self.assertGreater(port, 0)
            self.assertEqual(l.last_accepted[0], '127.0.0.1')
        l, a, c = self.pair('AF_UNIX')
        with l, a, c:
            path = l.address
            self.assertIsInstance(path, str)
            self.assertTrue(os.path.exists(path))
            self.assertEqual(l.last_accepted, '')
        self.assertFalse(os.path.exists(path))  # removed on close

    def test_abstract_and_given_path(self):
        name = b'\0mproc-test-%d-%s' % (os.getpid(), self.mod.__name__.encode())
        l, a, c = self.pair('AF_UNIX', address=name)
        with l, a, c:
            self.assertEqual(l.address, name)
            c.send(1)
            self.assertEqual(a.recv(), 1)
        d = os.path.join('/tmp', 'mproc-lt-%d' % os.getpid())
        l, a, c = self.pair('AF_UNIX', address=d)
        with l, a, c:
            self.assertEqual(l.address, d)
            c.send(2)
            self.assertEqual(a.recv(), 2)

    def test_context_manager_and_close(self):
        cm = conn_mod(self)
        with cm.Listener() as l:
            with cm.Client(l.address) as c:
                with l.accept() as d:
                    c.send(1729)
                    self.assertEqual(d.recv(), 1729)
        self.assertRaises(OSError, l.accept)
        l.close()  # twice is fine
        self.assertTrue(c.closed)
        self.assertRaises(OSError, c.send, 1)
        self.assertRaises(OSError, c.recv)
        self.assertRaises(OSError, c.poll)
        self.assertRaises(OSError, c.fileno)

    def test_multiple_bind(self):
        cm = conn_mod(self)
        for family in cm.families:
            with cm.Listener(family=family) as l:
                self.assertRaises(OSError, cm.Listener, l.address, family)

    def test_wrong_authkey(self):
        cm = conn_mod(self)
        for family in FAMILIES:
            l = cm.Listener(family=family, authkey=b'right')
            errs = []

            def cl():
                try:
                    cm.Client(l.address, authkey=b'wrong')
                except Exception as e:
                    errs.append(e)
            t = threading.Thread(target=cl)
            t.start()
            self.assertRaises(multiprocessing.AuthenticationError, l.accept)
            join_thread(t)
            l.close()
            self.assertEqual(len(errs), 1)
            self.assertIsInstance(errs[0], multiprocessing.AuthenticationError)

    def test_bad_input(self):
        cm = conn_mod(self)
        self.assertRaises(TypeError, cm.Listener, authkey='not bytes')
        self.assertRaises(ValueError, cm.Listener, family='AF_BOGUS')
        self.assertRaises(ValueError, cm.Listener, r'\\.\pipe\x')
        self.assertRaises(TypeError, cm.Client, 12)
        self.assertRaises(OSError, cm.Client, '/nonexistent/dir/sock')
        with cm.Listener(family='AF_INET') as l:
            port = l.address[1]
        self.assertRaises(ConnectionRefusedError, cm.Client, ('127.0.0.1', port))

    def test_oversize(self):
        l, a, c = self.pair('AF_UNIX')
        with l, a, c:
            a.send_bytes(b'y' * 100)
            self.assertRaises(OSError, c.recv_bytes, 10)  # bad message length
            self.assertRaises(ValueError, a.send_bytes, b'abc', 1, 5)
            self.assertRaises(ValueError, a.send_bytes, b'abc', 4)

    def test_wait(self):
        cm = conn_mod(self)
        a, b = self.mp.Pipe()
        r, w = os.pipe()
        s1, s2 = socket.socketpair()
        try:
            objs = [a, b, r, s1]
            t0 = time.monotonic()
            self.assertEqual(cm.wait(objs, 0.2), [])
            self.assertGreaterEqual(time.monotonic() - t0, 0.15)
            self.assertEqual(cm.wait(objs, 0), [])
            self.assertEqual(cm.wait(objs, -1), [])
            b.send('x')
            self.assertEqual(cm.wait(objs, 1), [a])
            os.write(w, b'!')
            s2.send(b'?')
            self.assertEqual(set(map(id, cm.wait(objs, 1))), {id(a), id(r), id(s1)})
            a.recv()
            os.read(r, 1)
            s1.recv(1)
            self.assertEqual(cm.wait(objs, 0), [])
            b.close()
            self.assertEqual(cm.wait([a], 1), [a])  # end of file is ready
            self.assertRaises(OSError, cm.wait, [b], 0)  # use after close
            self.assertEqual(cm.wait([], 0), [])
        finally:
            for fd in (r, w):
                os.close(fd)
            s1.close()
            s2.close()
            a.close()


@both()
class ListenerProcesses:
    """A client in a child process, under each start method."""

    def test_client_child(self):
        cm = conn_mod(self)
        name = 'mproc' if self.is_mproc else 'stdlib'
        for family in FAMILIES:
            for key in (None, b'k' * 32):
                l = cm.Listener(family=family, authkey=key)
                p = self.mp.Process(target=client_child, args=(l.address, family, key, name))
                p.start()
                a = l.accept()
                msg, pid = a.recv()
                self.assertEqual((msg, pid), ('hello', p.pid))
                a.send('bye')
                p.join(60)
                self.assertEqual(p.exitcode, 0)
                a.close()
                l.close()

    def test_wait_sentinels_and_conns(self):
        cm = conn_mod(self)
        p1 = self.mp.Process(target=sleeper, args=(0.2,))
        p2 = self.mp.Process(target=sleeper, args=(30,))
        r, w = self.mp.Pipe(duplex=False)
        p3 = self.mp.Process(target=sender_child, args=(w, 0.5))
        for p in (p1, p2, p3):
            p.start()
        w.close()
        try:
            ready = cm.wait([p1.sentinel, p2.sentinel], 20)
            self.assertEqual(ready, [p1.sentinel])
            ready = cm.wait([r, p2.sentinel], 20)
            self.assertEqual(ready, [r])
            self.assertEqual(r.recv(), 'late')
            ready = cm.wait([p2.sentinel], 0.1)
            self.assertEqual(ready, [])
        finally:
            p2.terminate()
            for p in (p1, p2, p3):
                p.join(30)
        self.assertEqual(cm.wait([p2.sentinel], 5), [p2.sentinel])


@only_mproc(methods=('fork',))
class MprocOnly:
    def test_close_during_accept(self):
        # Python's accept() on Linux is not woken by a close from another
        # thread; mproc's ends within a slice with OSError.
        l = mp_conn.Listener()
        errs = []

        def acc():
            try:
                l.accept()
            except OSError as e:
                errs.append(e)
        t = threading.Thread(target=acc)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        l.close()
        join_thread(t, 10)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(len(errs), 1)
        self.assertRaises(OSError, l.accept)

    def test_oversize_authkey(self):
        self.assertRaises(ValueError, mp_conn.Listener, authkey=b'k' * 1025)
        self.assertRaises(ValueError, mp_conn.Listener, authkey=b'')


@only_mproc(methods=('fork',))
class Interop:
    """An mproc Client with Python's Listener and the reverse: the same
    framing and handshake (Python 3.11 speaks the legacy HMAC-MD5 one,
    3.12 and later the {digest} one; the core understands both)."""

    def talk(self, L, C, family, key, client_key=None):
        l = L(family=family, authkey=key)
        out = {}

        def cl():
            try:
                c = C(l.address, authkey=client_key if client_key is not None else key)
                c.send(['ping', family])
                out['reply'] = c.recv()
                c.send_bytes(b'raw' * 1000)
                c.close()
            except Exception as e:
                out['err'] = e
        t = threading.Thread(target=cl)
        t.start()
        try:
            a = l.accept()
        except Exception as e:
            join_thread(t)
            l.close()
            return e, out
        self.assertEqual(a.recv(), ['ping', family])
        a.send(('pong', 1))
        self.assertEqual(a.recv_bytes(), b'raw' * 1000)
        self.assertRaises(EOFError, a.recv)
        a.close()
        join_thread(t)
        l.close()
        return None, out

    def test_both_ways(self):
        for L, C in ((mp_conn.Listener, std_conn.Client), (std_conn.Listener, mp_conn.Client)):
            for family in FAMILIES:
                for key in (None, b'shared key'):
                    with self.subTest(L=L.__module__, family=family, key=key):
                        err, out = self.talk(L, C, family, key)
                        self.assertIsNone(err)
                        self.assertEqual(out, {'reply': ('pong', 1)})

    def test_wrong_key_both_ways(self):
        for L, C in ((mp_conn.Listener, std_conn.Client), (std_conn.Listener, mp_conn.Client)):
            with self.subTest(L=L.__module__):
                err, out = self.talk(L, C, 'AF_UNIX', b'right', b'wrong')
                self.assertIsInstance(err, multiprocessing.AuthenticationError)
                self.assertIsInstance(out['err'], multiprocessing.AuthenticationError)

    def test_challenge_functions_on_a_pipe(self):
        a, b = mproc.Pipe()
        sa, sb = multiprocessing.Pipe()
        for x, y in ((a, b),):
            t = threading.Thread(target=mp_conn.answer_challenge, args=(y, b'k'))
            t.start()
            mp_conn.deliver_challenge(x, b'k')
            join_thread(t)
        # mproc's side against Python's over a socket pair
        s1, s2 = socket.socketpair()
        mc = mp_conn.Connection(mproc._core.conn_from_fd(os.dup(s1.fileno()), True, True))
        sc = std_conn.Connection(os.dup(s2.fileno()))
        s1.close()
        s2.close()
        t = threading.Thread(target=std_conn.answer_challenge, args=(sc, b'k'))
        t.start()
        mp_conn.deliver_challenge(mc, b'k')
        join_thread(t)
        errs = []

        def bad():
            try:
                std_conn.deliver_challenge(sc, b'other')
            except Exception as e:
                errs.append(e)
        t = threading.Thread(target=bad)
        t.start()
        self.assertRaises(multiprocessing.AuthenticationError, mp_conn.answer_challenge, mc, b'k')
        join_thread(t)
        self.assertIsInstance(errs[0], multiprocessing.AuthenticationError)
        self.assertRaises(ValueError, mp_conn.deliver_challenge, mc, 'str key')
        mc.close()
        sc.close()
        self.assertRaises(OSError, mp_conn.deliver_challenge, mc, b'k')
        for c in (a, b, sa, sb):
            c.close()


if __name__ == '__main__':
    unittest.main()
