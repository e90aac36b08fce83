"""Managers: Manager(), SyncManager's types, BaseManager.register, proxies
passed to children and nested in proxies, remote managers with an authkey,
bad input; mproc against Python's multiprocessing under each start method,
and mproc's managers against Python's across the wire."""
import multiprocessing
import multiprocessing.managers as std_managers
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import unittest

import mproc
import mproc.managers as mproc_managers

from mputil import both, join_thread, only_mproc, run, skip_forks_with_threads_under_asan


def managers_of(mod):
    return mproc_managers if mod is mproc else std_managers


# ---- children -------------------------------------------------------------------------------


def fill(d, l, ns, v, a):
    d['k'] = 'v'
    d[1] = [1, 2]
    l.append(3)
    l.extend([4, 5])
    ns.x = 10
    v.value = 42
    a[0] = 9.5


def bump(d, lock, n):
    for _ in range(n):
        with lock:
            d['n'] = d.get('n', 0) + 1


def queue_child(q, jq):
    q.put(('hello', 1))
    item = jq.get(timeout=30)
    q.put(item * 2)
    jq.task_done()


def sync_child(ev, done, sem, bar, cond, flag):
    if not ev.wait(30):
        raise SystemExit(2)
    sem.release()
    with cond:
        flag.value = 1
        cond.notify_all()
    bar.wait(30)
    done.set()


def proxy_from_queue(q):
    d = q.get(timeout=30)
    d['from'] = 'child'


def nested_child(d):
    d['inner'].append('from child')
    d['inner_dict']['x'] = 1


def use_custom(c):
    c.add(5)
    if c.get() != 5:
        raise SystemExit(3)


class Counter:
    def __init__(self, start=0):
        self.n = start

    def add(self, k):
        self.n += k
        return self.n

    def get(self):
        return self.n

    def _hidden(self):
        return 'hidden'

    def child(self):
        return Counter(self.n + 100)


def serve(manager_cls, address, authkey):
    m = manager_cls(address=address, authkey=authkey)
    m.get_server().serve_forever()


def make_managers(mod):
    mm = managers_of(mod)

    class CounterManager(mm.BaseManager):
        pass

    CounterManager.register('Counter', Counter)
    CounterManager.register('Counter2', Counter, exposed=('add', 'get', '_hidden', 'child'),
                            method_to_typeid={'child': 'CounterRef'})
    CounterManager.register('CounterRef', create_method=False)  # the object itself
    CounterManager.register('hidden_counter', Counter, create_method=False)
    return CounterManager


# The manager classes must be importable by name in spawn children.
StdCounterManager = make_managers(multiprocessing)
StdCounterManager.__qualname__ = StdCounterManager.__name__ = 'StdCounterManager'
MprocCounterManager = make_managers(mproc)
MprocCounterManager.__qualname__ = MprocCounterManager.__name__ = 'MprocCounterManager'


def counter_manager(mod):
    return MprocCounterManager if mod is mproc else StdCounterManager


class ThreadNames:
    def get(self):
        return [t.name for t in threading.enumerate()]


class ChannelManager(mproc_managers.SyncManager):
    pass


ChannelManager.register('ThreadNames', ThreadNames)


def report_connection(d, q):
    d['child'] = 1
    q.put(type(d._tls.connection).__name__)


def set_until_killed(d):
    i = 0
    while True:
        d['n'] = i
        i += 1


def channel_client(offer, fd, gone):
    from mproc import _core
    c = _core.channel_join(offer, fd)
    c.send(b'hello')
    gone.wait(60)  # killed here


def channel_server(fd, w, gone):
    from mproc import _core
    s = _core.channel_new(fd)
    w.send(s.offer())
    w.send(s.recv())
    gone.wait(60)  # killed here


_worker_proxy = []


def remember_proxy(d):
    d.get('parent')  # used in the initializer too
    _worker_proxy.append(d)


def note_in_proxy(i):
    _worker_proxy[0][i] = 0
    return i


def close_copies(s, c):
    s.close()
    c.close()


# A process of another family: it maps an arena of its own.
OTHER_FAMILY = '''
import sys
import mproc.managers as mm
m = mm.SyncManager(address=(sys.argv[1], int(sys.argv[2])), authkey=b'other')
m.connect()
lst = m.list([1])
lst.append(2)
print(lst[:], type(lst._tls.connection).__name__)
'''


# ---- tests ----------------------------------------------------------------------------------


@both()
class SyncTypes:
    def setUp(self):
        self.m = self.mp.Manager()

    def tearDown(self):
        self.m.shutdown()

    def test_dict_list_namespace_value_array_from_child(self):
        m = self.m
        d, l, ns = m.dict(), m.list([1, 2]), m.Namespace(y='why')
        v, a = m.Value('i', 0), m.Array('d', [0.0, 1.0])
        self.assertEqual(run(self.mp, fill, d, l, ns, v, a), 0)
        self.assertEqual(d.copy(), {'k': 'v', 1: [1, 2]})
        self.assertEqual(sorted(d.keys(), key=str), [1, 'k'])
        self.assertEqual(len(d), 2)
        self.assertIn('k', d)
        self.assertEqual(l[:], [1, 2, 3, 4, 5])
        self.assertEqual(l[-1], 5)
        self.assertEqual((ns.x, ns.y), (10, 'why'))
        self.assertEqual(v.value, 42)
        self.assertEqual(list(a), [9.5, 1.0])
        self.assertIsInstance(d._getvalue(), dict)
        self.assertIsInstance(l._getvalue(), list)

    def test_lock_guards_counter_in_two_children(self):
        d, lock = self.m.dict(), self.m.Lock()
        ps = [self.mp.Process(target=bump, args=(d, lock, 50)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(d['n'], 100)

    def test_queue_and_joinable_queue(self):
        q, jq = self.m.Queue(), self.m.JoinableQueue()
        jq.put(21)
        p = self.mp.Process(target=queue_child, args=(q, jq))
        p.start()
        self.assertEqual(q.get(timeout=30), ('hello', 1))
        jq.join()
        self.assertEqual(q.get(timeout=30), 42)
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        self.assertRaises(Exception, q.get, True, 0.05)  # queue.Empty, raised by the server

    def test_sync_objects(self):
        m = self.m
        ev, done = m.Event(), m.Event()
        sem, bar = m.Semaphore(0), m.Barrier(2)
        cond, flag = m.Condition(), m.Value('i', 0)
        p = self.mp.Process(target=sync_child, args=(ev, done, sem, bar, cond, flag))
        p.start()
        self.assertFalse(sem.acquire(timeout=0.05))
        ev.set()
        self.assertTrue(sem.acquire(timeout=30))
        with cond:
            self.assertTrue(cond.wait_for(lambda: flag.value == 1, 30))
        self.assertEqual(bar.parties, 2)
        bar.wait(30)
        self.assertTrue(done.wait(30))
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        r = m.RLock()
        with r:
            with r:
                pass
        b = m.BoundedSemaphore(1)
        self.assertTrue(b.acquire())
        b.release()
        self.assertRaises(ValueError, b.release)

    def test_proxy_through_a_queue(self):
        d, q = self.m.dict(), self.mp.Queue()
        p = self.mp.Process(target=proxy_from_queue, args=(q,))
        p.start()
        q.put(d)
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(d.copy(), {'from': 'child'})

    def test_proxies_nested_in_proxies(self):
        d = self.m.dict()
        d['inner'] = self.m.list(['from parent'])
        d['inner_dict'] = self.m.dict()
        self.assertEqual(run(self.mp, nested_child, d), 0)
        self.assertEqual(d['inner'][:], ['from parent', 'from child'])
        self.assertEqual(d['inner_dict'].copy(), {'x': 1})
        outer = self.m.list([self.m.Namespace(a=1)])
        outer[0].a = 2
        self.assertEqual(outer[0].a, 2)

    def test_callmethod_and_errors(self):
        d = self.m.dict({'a': 1})
        d._callmethod('__setitem__', ('b', 2))
        self.assertEqual(d._callmethod('__getitem__', ('b',)), 2)
        self.assertEqual(d._getvalue(), {'a': 1, 'b': 2})
        self.assertRaises(KeyError, d.__getitem__, 'missing')
        self.assertRaises(IndexError, self.m.list().__getitem__, 3)
        with self.assertRaises(managers_of(self.mod).RemoteError):
            d._callmethod('no_such_method')
        with self.assertRaises(managers_of(self.mod).RemoteError):
            self.m.Value('i')  # the server's TypeError, as its traceback


@both(methods=('fork',))
@skip_forks_with_threads_under_asan  # the server forks the pool's workers from a handler thread
class PoolInManager:
    def test_pool(self):
        with self.mp.Manager() as m:
            pool = m.Pool(2)
            self.assertEqual(pool.map(abs, [-1, -2, 3]), [1, 2, 3])
            self.assertEqual(pool.apply_async(pow, (2, 5)).get(30), 32)
            self.assertEqual(sorted(pool.imap_unordered(abs, [-4, 5])), [4, 5])
            pool.terminate()


@both()
class ProxiesInPoolWorkers:
    def test_initializer_and_tasks_use_inherited_proxies(self):
        # A fork worker inherits its parent's connection to the manager:
        # it must make its own, as Python's workers do.
        with self.mp.Manager() as m:
            d = m.dict()
            d['parent'] = 0  # the parent's connection exists before the fork
            with self.mp.Pool(2, initializer=remember_proxy, initargs=(d,)) as pool:
                got = pool.map(note_in_proxy, range(20))
                d['parent'] = 1
            self.assertEqual(sorted(got), list(range(20)))
            items = d.copy()
            self.assertEqual(items.pop('parent'), 1)
            self.assertEqual(sorted(items), list(range(20)))
            self.assertEqual(set(items.values()) - {0}, set())  # the initializer ran first


@both()
class Registered:
    def test_autoproxy_exposed_typeid_and_children(self):
        cls = counter_manager(self.mod)
        with cls(ctx=self.mp) as m:
            c = m.Counter(1)
            self.assertEqual(c.add(2), 3)
            self.assertFalse(hasattr(c, '_hidden'))  # public methods only
            self.assertEqual(run(self.mp, use_custom, m.Counter()), 0)
            c2 = m.Counter2(7)
            self.assertEqual(c2._hidden(), 'hidden')
            child = c2.child()  # method_to_typeid: a proxy, not a copy
            self.assertEqual(type(child).__name__, 'AutoProxy[CounterRef]')
            self.assertEqual(child.add(1), 108)
            self.assertFalse(hasattr(m, 'hidden_counter'))

    def test_get_server_serve_forever_and_connect(self):
        cls = counter_manager(self.mod)
        # The port must be known: serve on a free one.
        import socket
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        p = self.mp.Process(target=serve, args=(cls, ('127.0.0.1', port), b'k'))
        p.start()
        try:
            m = cls(address=('127.0.0.1', port), authkey=b'k')
            for _ in range(300):
                try:
                    m.connect()
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
            c = m.Counter(3)
            self.assertEqual(c.add(4), 7)
            self.assertEqual(m.address, ('127.0.0.1', port))
        finally:
            p.terminate()
            p.join(30)


@both(methods=('fork', 'spawn'))
class XmlRpc:
    """The 'xmlrpclib' serializer: XML-RPC values only (tuples come back
    as lists), a registered type and a SyncManager's."""

    def test_registered_type(self):
        cls = counter_manager(self.mod)
        with cls(ctx=self.mp, serializer='xmlrpclib') as m:
            c = m.Counter(1)
            self.assertEqual(c.add(2), 3)
            self.assertEqual(c.get(), 3)
            self.assertEqual(run(self.mp, use_custom, m.Counter()), 0)

    def test_values_and_errors(self):
        m = self.mod.managers.SyncManager(ctx=self.mp, serializer='xmlrpclib')
        m.start()
        try:
            d = m.dict()
            d['a'] = (1, 'x')
            d['b'] = {'k': [1.5, None, True]}
            self.assertEqual(d['a'], [1, 'x'])
            self.assertEqual(d['b'], {'k': [1.5, None, True]})
            # An exception is no XML-RPC value: it arrives as a struct of
            # its attributes, which Python's proxy then fails to raise
            # (TypeError), as it does in both packages.
            self.assertRaises((TypeError, std_managers.RemoteError), d.__getitem__, 'nope')
            lst = m.list()
            lst.append('y')
            self.assertEqual(len(lst), 1)
        finally:
            m.shutdown()

    def test_unknown_serializer(self):
        self.assertRaises(KeyError, self.mod.managers.SyncManager, serializer='json')


@only_mproc(methods=('fork', 'spawn'))
class XmlRpcInterop:
    """mproc's 'xmlrpclib' managers against Python's, both ways."""

    def check(self, server_mod, client_mod):
        S = server_mod.BaseManager(address=('127.0.0.1', 0), authkey=b'x',
                                   serializer='xmlrpclib')
        S.register('Counter', Counter)
        S.start()
        self.addCleanup(S.shutdown)
        C = client_mod.BaseManager(address=S.address, authkey=b'x', serializer='xmlrpclib')
        C.register('Counter')
        C.connect()
        c = C.Counter(5)
        self.assertEqual(c.add(2), 7)
        self.assertEqual(c.get(), 7)

    def test_mproc_client_stdlib_server(self):
        self.check(std_managers, mproc_managers)

    def test_stdlib_client_mproc_server(self):
        self.check(mproc_managers, std_managers)


@both(methods=('fork', 'spawn'))
class BadInput:
    def test_wrong_authkey(self):
        m = self.mod.managers.SyncManager(address=('127.0.0.1', 0), authkey=b'right',
                                          ctx=self.mp)
        m.start()
        try:
            bad = self.mod.managers.SyncManager(address=m.address, authkey=b'wrong')
            self.assertRaises(multiprocessing.AuthenticationError, bad.connect)
            good = self.mod.managers.SyncManager(address=m.address, authkey=b'right')
            good.connect()
            self.assertEqual(good.dict({'a': 1})['a'], 1)
        finally:
            m.shutdown()

    def test_bad_authkey_type(self):
        self.assertRaises(TypeError, self.mod.managers.SyncManager, authkey='str')

    def test_unpicklable_value(self):
        with self.mp.Manager() as m:
            d = m.dict()
            with self.assertRaises((pickle.PicklingError, AttributeError, TypeError)):
                d['f'] = threading.Lock()
            d['ok'] = 1  # the connection is still usable
            self.assertEqual(d.copy(), {'ok': 1})

    def test_calls_after_shutdown(self):
        m = self.mp.Manager()
        d = m.dict()
        d['a'] = 1
        m.shutdown()
        with self.assertRaises((EOFError, OSError)):
            d['a'] = 2
        self.assertRaises(AssertionError, m.dict)  # Python's: 'server not yet started'
        m.shutdown()  # a second shutdown does nothing

    def test_start_twice(self):
        m = self.mod.managers.SyncManager(ctx=self.mp)
        m.start()
        try:
            self.assertRaises(multiprocessing.ProcessError, m.start)
        finally:
            m.shutdown()
        self.assertRaises(multiprocessing.ProcessError, m.start)

    def test_connect_to_nobody(self):
        import socket
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        m = self.mod.managers.SyncManager(address=('127.0.0.1', port), authkey=b'x')
        self.assertRaises(ConnectionRefusedError, m.connect)


@both(methods=('fork', 'spawn'))
class Cleanup:
    def test_socket_removed_at_shutdown(self):
        import os
        m = self.mp.Manager()
        address = m.address
        self.assertTrue(os.path.exists(address))
        m.shutdown()
        self.assertFalse(os.path.exists(address))
        self.assertFalse(os.path.exists(os.path.dirname(address)))


@only_mproc(methods=('fork', 'spawn'))
class Interop:
    """mproc's managers against Python's, both ways, over TCP."""

    def pair(self, server_mod, client_mod):
        S = server_mod.SyncManager(address=('127.0.0.1', 0), authkey=b'interop')
        S.start()
        self.addCleanup(S.shutdown)
        C = client_mod.SyncManager(address=S.address, authkey=b'interop')
        C.connect()
        return S, C

    def check(self, server_mod, client_mod):
        S, C = self.pair(server_mod, client_mod)
        d = C.dict()
        d['a'] = 1
        self.assertEqual(d.copy(), {'a': 1})
        self.assertEqual(list(d.keys()), ['a'])
        lst = C.list([1])
        lst.append(2)
        self.assertEqual(lst[:], [1, 2])
        ns = C.Namespace(x=1)
        ns.y = 2
        self.assertEqual((ns.x, ns.y), (1, 2))
        self.assertEqual(repr(ns._getvalue()), 'Namespace(x=1, y=2)')
        self.assertEqual(C.Value('i', 4).value, 4)
        q = C.Queue()
        q.put('x')
        self.assertEqual(q.get(timeout=10), 'x')
        lk = C.Lock()
        self.assertTrue(lk.acquire(timeout=5))
        lk.release()
        self.assertRaises(KeyError, d.__getitem__, 'nope')
        if client_mod is mproc_managers:  # no channel to another's server
            want = mproc_managers._LocalConn if server_mod is mproc_managers \
                else mproc_managers._Conn
            self.assertIs(type(d._tls.connection), want)
        bad = client_mod.SyncManager(address=S.address, authkey=b'wrong')
        self.assertRaises(multiprocessing.AuthenticationError, bad.connect)

    def test_mproc_client_stdlib_server(self):
        self.check(std_managers, mproc_managers)

    def test_stdlib_client_mproc_server(self):
        self.check(mproc_managers, std_managers)

    def test_nested_proxies_across(self):
        # A proxy read back from a container connects with the process's
        # authkey (Python's rule): make it the servers' key in both packages.
        old = mproc.current_process().authkey, multiprocessing.current_process().authkey
        mproc.current_process().authkey = b'interop'
        multiprocessing.current_process().authkey = b'interop'
        try:
            for server_mod, client_mod in ((std_managers, mproc_managers),
                                           (mproc_managers, std_managers)):
                S, C = self.pair(server_mod, client_mod)
                d = C.dict()
                d['inner'] = C.list([1])
                d['inner'].append(2)
                self.assertEqual(d['inner'][:], [1, 2])
        finally:
            mproc.current_process().authkey, multiprocessing.current_process().authkey = old

    def test_unix_socket_address(self):
        S, C = self.pair(mproc_managers, std_managers)
        self.assertEqual(S.address[0], '127.0.0.1')
        m = mproc_managers.SyncManager(authkey=b'u')
        m.start()
        try:
            self.assertIsInstance(m.address, str)  # a private Unix socket path
            c = std_managers.SyncManager(address=m.address, authkey=b'u')
            c.connect()
            self.assertEqual(c.list([3])[0], 3)
        finally:
            m.shutdown()


@only_mproc()
class Channels:
    """A proxy of the server's family calls through a channel in the arena
    (_core.Channel), others over the socket; either side's end, killed
    included, is seen by the other."""

    def test_family_proxies_use_channels(self):
        with self.mp.Manager() as m:
            d = m.dict()
            d['a'] = 1
            self.assertIs(type(d._tls.connection), mproc_managers._LocalConn)
            q = self.mp.Queue()
            self.assertEqual(run(self.mp, report_connection, d, q), 0)
            self.assertEqual(q.get(timeout=30), '_LocalConn')
            self.assertEqual(d.copy(), {'a': 1, 'child': 1})

    def test_another_family_uses_the_socket(self):
        m = mproc_managers.SyncManager(address=('127.0.0.1', 0), authkey=b'other', ctx=self.mp)
        m.start()
        self.addCleanup(m.shutdown)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, '-c', OTHER_FAMILY, m.address[0],
                              str(m.address[1])], capture_output=True, text=True,
                             timeout=120, env=env)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, '[1, 2] _Conn\n', ''))

    def test_killed_client_ends_its_server_thread(self):
        m = ChannelManager(ctx=self.mp)
        m.start()
        self.addCleanup(m.shutdown)
        names, d = m.ThreadNames(), m.dict()
        p = self.mp.Process(target=set_until_killed, args=(d,))
        p.start()
        deadline = time.monotonic() + 60
        while d.get('n', 0) < 200 and p.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertGreaterEqual(d.get('n', 0), 200)
        self.assertIn(p.name, names.get())  # the thread serving the child
        p.kill()
        p.join(30)
        deadline = time.monotonic() + 10
        while p.name in names.get() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertNotIn(p.name, names.get())
        d['after'] = 1  # the server goes on
        self.assertEqual(d['after'], 1)

    def test_killed_server_ends_a_waiting_call(self):
        m = self.mp.Manager()
        self.addCleanup(m.shutdown)
        ev, got = m.Event(), []
        self.assertFalse(ev.is_set())  # the connection is made

        def wait():
            try:
                got.append(ev.wait())
            except Exception as e:
                got.append(type(e))

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        m._process.kill()
        join_thread(t, 10)
        self.assertFalse(t.is_alive())
        self.assertEqual(got, [EOFError])
        self.assertLess(time.monotonic() - t0, 5)


@only_mproc(methods=('fork',))
class ChannelCore:
    """_core.Channel itself: its messages, its end, and its freeing (a
    freed channel can no longer be joined)."""

    def pair(self):
        from mproc import _core
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        s = _core.channel_new(a.fileno())
        return a, b, s, _core.channel_join(s.offer(), b.fileno())

    def test_messages_and_end(self):
        from mproc import _core
        a, b, s, c = self.pair()
        self.assertIsNotNone(c)
        c.send(b'req')
        self.assertEqual(s.recv(), b'req')
        s.send(b'rep' * 100000)
        self.assertEqual(c.recv(), b'rep' * 100000)
        offer = s.offer()
        c.send(b'last')
        c.close()
        self.assertRaises(OSError, c.send, b'x')
        self.assertRaises(OSError, c.recv)
        self.assertEqual(s.recv(), b'last')  # sent before the end
        self.assertRaises(EOFError, s.recv)
        self.assertRaises(BrokenPipeError, s.send, b'x')
        self.assertIsNotNone(_core.channel_join(offer, b.fileno()))  # the server's share
        s.close()
        self.assertIsNone(_core.channel_join(offer, b.fileno()))  # freed

    def test_another_family_is_refused(self):
        from mproc import _core
        a, b, s, c = self.pair()
        addr, nonce = s.offer()
        self.assertIsNone(_core.channel_join((addr, bytes(16)), b.fileno()))
        self.assertIsNone(_core.channel_join((addr, nonce[:8]), b.fileno()))
        self.assertIsNone(_core.channel_join((addr + 8, nonce), b.fileno()))
        self.assertIsNone(_core.channel_join((4096, nonce), b.fileno()))  # not in the arena
        self.assertRaises(TypeError, _core.channel_join, 'x', b.fileno())
        self.assertRaises(ValueError, _core.channel_new, -1)

    def test_killed_client(self):
        from mproc import _core
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        s = _core.channel_new(a.fileno())
        offer, gone = s.offer(), self.mp.Event()
        p = self.mp.Process(target=channel_client, args=(offer, b.fileno(), gone))
        p.start()
        b.close()
        self.assertEqual(s.recv(), b'hello')
        self.kill_and_see_the_end(p, s, offer, a.fileno())

    def test_killed_server(self):
        from mproc import _core
        a, b = socket.socketpair()
        self.addCleanup(b.close)
        r, w = self.mp.Pipe(duplex=False)
        gone = self.mp.Event()
        p = self.mp.Process(target=channel_server, args=(a.fileno(), w, gone))
        p.start()
        a.close()
        offer = r.recv()
        c = _core.channel_join(offer, b.fileno())
        c.send(b'hi')
        self.assertEqual(r.recv(), b'hi')
        self.kill_and_see_the_end(p, c, offer, b.fileno())

    def kill_and_see_the_end(self, p, ch, offer, fd):
        """Kills p, the other side of ch: ch's wait ends with EOFError
        soon, and closing ch frees the channel (both shares given up)."""
        from mproc import _core
        p.kill()
        t0 = time.monotonic()
        self.assertRaises(EOFError, ch.recv)
        self.assertLess(time.monotonic() - t0, 5)
        p.join(30)
        ch.close()
        self.assertIsNone(_core.channel_join(offer, fd))

    def test_a_fork_copy_leaves_the_channel_alone(self):
        a, b, s, c = self.pair()
        self.assertEqual(run(self.mp, close_copies, s, c), 0)
        c.send(b'still')
        self.assertEqual(s.recv(), b'still')
        s.send(b'here')
        self.assertEqual(c.recv(), b'here')


@only_mproc(methods=('fork',))
class CoreTransport:
    """The _core calls under the managers: the core's listener, client and
    handshake."""

    def test_handshake_both_sides(self):
        from mproc import _core
        for key, want in ((b'k', 'ok'), (b'wrong', 'AuthenticationError')):
            a, b = _core.pipe(True)
            res = {}

            def server():
                try:
                    _core.deliver_challenge(a, b'k')
                    _core.answer_challenge(a, b'k')
                    res['s'] = 'ok'
                except Exception as e:
                    res['s'] = type(e).__name__
            t = threading.Thread(target=server)
            t.start()
            try:
                _core.answer_challenge(b, key)
                _core.deliver_challenge(b, key)
                res['c'] = 'ok'
            except Exception as e:
                res['c'] = type(e).__name__
            join_thread(t)
            self.assertEqual(res, {'s': want, 'c': want})
        self.assertRaises(TypeError, _core.answer_challenge, a, None)

    def test_proxies_use_the_core_and_python_table_untouched(self):
        # mproc's classes build on Python's; their transport stays the core's
        # and Python's module table keeps Python's own Listener and Client.
        import multiprocessing.connection as std_connection
        self.assertEqual(std_managers.listener_client['pickle'],
                         (std_connection.Listener, std_connection.Client))
        with self.mp.Manager() as m:
            d, lk = m.dict(), m.Lock()
            d['a'] = 1
            with lk:
                pass
            self.assertIsInstance(d, std_managers.DictProxy)
            self.assertIs(type(d._tls.connection), mproc_managers._LocalConn)
            self.assertIs(type(d._tls.connection._sock), mproc_managers._Conn)
            self.assertIs(d._Client, mproc_managers.Client)
            self.assertIs(m._Client, mproc_managers.Client)
            self.assertIsInstance(m._process, mproc.process.BaseProcess)  # an mproc child
        std = std_managers.SyncManager()
        self.assertIs(std._Client, std_connection.Client)

    def test_listener_and_client(self):
        from mproc import _core
        lst = _core.listener_new(None, b'key', 0)
        self.assertGreaterEqual(_core.listener_op(lst, 2), 0)
        self.assertIsNone(_core.listener_accept(lst, 20))
        address = _core.listener_op(lst, 1)
        got = []
        t = threading.Thread(target=lambda: got.append(_core.listener_accept(lst, 10000)))
        t.start()
        c = _core.client_connect(address, b'key', 10000)
        join_thread(t)
        _core.conn_send(got[0], b'ping')
        self.assertEqual(_core.conn_call(c, b'pong', 0), b'ping')
        self.assertEqual(_core.conn_call(got[0], None, 50), b'pong')
        _core.listener_close(lst)
        self.assertRaises(OSError, _core.listener_accept, lst, 0)
        self.assertRaises(ValueError, _core.listener_new, 'h:70000', None, 0)
        self.assertRaises(FileNotFoundError, _core.client_connect, '/nonexistent/x', None, 1000)
        self.assertRaises(ValueError, _core.listener_new, None, b'', 0)
        self.assertRaises(TypeError, _core.listener_accept, object(), 0)


if __name__ == '__main__':
    unittest.main()
