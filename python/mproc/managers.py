"""Managers (the twin of multiprocessing.managers): BaseManager, SyncManager,
BaseProxy, AutoProxy and the proxies of every SyncManager type.

Built on Python's own multiprocessing.managers, imported at run time: its
Server, BaseManager, BaseProxy and proxy types are the bases of mproc's,
and Token, RemoteError, Namespace, Value, dispatch and SyncManager's
registry are Python's, so the protocol, the reference counting of proxies
and every error are Python's, and Python's managers and mproc's talk to
each other. What this module adds (docs/python.md, "Managers"):

- the transport: listeners, clients, framing and the authkey handshake are
  the C core's (mproc_listener_*, mproc_client; python/src/listener.c); the
  core's listener runs every client's handshake before accept() returns
  it, so a slow or silent client never holds up another;
- the server process is an mproc Process (fork, spawn or forkserver),
  started with mproc's Pipe;
- proxies take their authkey from mproc's current_process(), travel to
  spawned children with it, and unpickle as mproc's proxies.

Python's classes look their transport up in their module's table
(listener_client['pickle']); that table is left alone: the subclasses here
override what reads it (Server.__init__, BaseManager.__init__ and connect,
BaseProxy._Client, AutoProxy). The 'pickle' and 'xmlrpclib' serializers
are provided, as in Python.
"""

__all__ = ['BaseManager', 'SyncManager', 'BaseProxy', 'Token', 'SharedMemoryManager']

import contextlib
import os
import pickle
import sys
import threading
import xmlrpc.client
from traceback import format_exc

import multiprocessing.managers as _std
from multiprocessing import util, AuthenticationError
from multiprocessing import process as _std_process
from multiprocessing.reduction import ForkingPickler

from . import _core
from . import connection
from . import process
from . import reduction
from .context import ProcessError, get_context

# What travels on the wire, and the helpers around it, are Python's.
Token = _std.Token
RemoteError = _std.RemoteError
Namespace = _std.Namespace
Value = _std.Value
Array = _std.Array
State = _std.State
ProcessLocalSet = _std.ProcessLocalSet
dispatch = _std.dispatch
convert_to_error = _std.convert_to_error
all_methods = _std.all_methods
public_methods = _std.public_methods


def _dumps(obj):
    """A message's pickle. Most pickle as they are (pickle.dumps is 3 to 5
    times faster than building a pickler); what does not (a dict view) is
    pickled by Python's connection pickler, where importing
    multiprocessing.managers registered how views and arrays travel (a
    view as a list)."""
    try:
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return ForkingPickler.dumps(obj, pickle.HIGHEST_PROTOCOL)

#
# The transport: the C core's listeners, clients and handshake
#

def _core_address(address):
    """A Python address (('host', port), a Unix path, '\0name' abstract)
    as the core's string (mproc/listener.h)."""
    if address is None:
        return None
    if isinstance(address, tuple):
        if len(address) < 2 or not isinstance(address[0], str) \
                or not isinstance(address[1], int):
            raise ValueError('address type of %r unrecognized' % (address,))
        host, port = address[0], address[1]
        return ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)
    if isinstance(address, str):
        if address.startswith('\0'):
            return '@' + address[1:]
        if '/' not in address:
            return './' + address
        return address
    raise ValueError('address type of %r unrecognized' % (address,))


def _py_address(s):
    """The core's address string as Python's."""
    if s.startswith('@'):
        return '\0' + s[1:]
    if s.startswith('['):
        host, port = s[1:].rsplit(']:', 1)
        return (host, int(port))
    if '/' not in s and ':' in s:
        host, port = s.rsplit(':', 1)
        return (host, int(port))
    return s


# How long a side waiting for the other's next message polls before it
# sleeps, in microseconds (MPROC_MANAGER_SPIN_US; 0 by default, and always
# 0 with a single CPU). Polling saves a sleep and a wake-up when the peer
# runs on another CPU, but on a loaded machine it takes the CPU the peer
# needs: with 2 CPUs and a load of 15, 100 us made a dict set 15 times
# slower (docs/python.md, "Managers").
_SPIN_US = int(os.environ.get("MPROC_MANAGER_SPIN_US", "0") or 0) \
    if len(os.sched_getaffinity(0)) > 1 else 0


class _Conn(connection.Connection):
    """A connection of the manager's protocol: pickles as Python's
    connections do for a manager (dict views as lists); a receive polls
    briefly before it sleeps (_SPIN_US)."""

    def send(self, obj):
        if self._handle is None:
            raise OSError("handle is closed")
        _core.conn_send(self._handle, _dumps(obj))

    def recv(self):
        if self._handle is None:
            raise OSError("handle is closed")
        return pickle.loads(_core.conn_call(self._handle, None, _SPIN_US))


class _LocalConn:
    """A manager connection moved into the family arena (_core.Channel:
    two core queues, waited on with a brief spin, the socket kept open to
    see the other side's end). A client of the server's family uses one
    for its calls (BaseProxy._connect), and the server thread serving it
    the other side: one call costs no socket round trip."""

    __slots__ = ('_ch', '_sock')

    def __init__(self, ch, sock):
        self._ch, self._sock = ch, sock

    def send(self, obj):
        if self._ch is None:
            raise OSError("handle is closed")
        self._ch.send(_dumps(obj))

    def recv(self):
        if self._ch is None:
            raise OSError("handle is closed")
        return pickle.loads(self._ch.recv())

    def close(self):
        ch, self._ch = self._ch, None
        if ch is not None:
            ch.close()  # the channel first: the socket's end frees it
        self._sock.close()


# The addresses of servers that offered no channel (Python's): a proxy's
# connection to them is asked for at once.
_no_channel = set()


def _open_connection(conn, address, authkey, serializer, name):
    """A proxy's connection to the server at address (conn, a new
    connection, is its socket), served by a thread of the server: a
    channel in the arena when the server is mproc's and shares this
    process's arena, else the socket (accept_connection, as Python's)."""
    if serializer == 'pickle' and address not in _no_channel:
        try:
            offer = dispatch(conn, None, 'accept_local', (name,))
        except RemoteError:  # a server without channels: it closed conn
            _no_channel.add(address)
            conn.close()
            conn = Client(address, authkey=authkey)
        else:
            if offer is None:  # the server could not make one
                return conn
            ch = _core.channel_join(offer, conn.fileno())
            conn.send(ch is not None)
            return conn if ch is None else _LocalConn(ch, conn)
    dispatch(conn, None, 'accept_connection', (name,))
    return conn


class Listener:
    """The server's listener (the core's): with an authkey, it runs the
    handshake of each client (Python's deliver_challenge, then
    answer_challenge) before accept() returns it."""

    _conn_type = _Conn  # what accept() returns

    def __init__(self, address=None, family=None, backlog=1, authkey=None):
        if authkey is not None and not isinstance(authkey, bytes):
            raise TypeError('authkey should be a byte string')
        self._listener = _core.listener_new(_core_address(address), authkey, backlog)
        if isinstance(address, str) and not address.startswith('\0'):
            self._address = address  # a Unix path, as given (Python's)
        else:
            self._address = _py_address(_core.listener_op(self._listener, 1))

    def accept(self, timeout=-1):
        """The next authenticated client (None when timeout, in ms, passes
        first); AuthenticationError for a client that failed its handshake
        (the listener goes on)."""
        if self._listener is None:
            raise OSError('listener is closed')
        c = _core.listener_accept(self._listener, timeout)
        return None if c is None else self._conn_type(c)

    def close(self):
        listener, self._listener = self._listener, None
        if listener is not None:
            _core.listener_close(listener)

    @property
    def address(self):
        return self._address

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def Client(address, family=None, authkey=None):
    """A connection to a listener (the core's client); with an authkey, the
    handshake (answer_challenge, then deliver_challenge) is done."""
    return _connect(address, authkey, _Conn)


def _connect(address, authkey, conn_type):
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError('authkey should be a byte string')
    if address is None:  # a manager not started: Python's error
        raise ValueError('address type of None unrecognized')
    return conn_type(_core.client_connect(_core_address(address), authkey, -1))


class _XmlConn(_Conn):
    """A connection of the 'xmlrpclib' serializer: each message is the
    XML-RPC encoding of a one-item parameter list (tuples arrive as lists),
    as Python's managers send it."""

    def send(self, obj):
        if self._handle is None:
            raise OSError("handle is closed")
        _core.conn_send(self._handle, xmlrpc.client.dumps((obj,), allow_none=True).encode())

    def recv(self):
        if self._handle is None:
            raise OSError("handle is closed")
        params, _ = xmlrpc.client.loads(_core.conn_call(self._handle, None, _SPIN_US).decode())
        return params[0]


class XmlListener(Listener):
    """The core's listener, its connections speaking XML-RPC."""

    _conn_type = _XmlConn


def XmlClient(address, family=None, authkey=None):
    """Client, speaking XML-RPC."""
    return _connect(address, authkey, _XmlConn)


# serializer -> (Listener, Client); any other serializer is a KeyError
listener_client = {'pickle': (Listener, Client), 'xmlrpclib': (XmlListener, XmlClient)}

#
# The server
#


class Server(_std.Server):
    """The server of a manager: Python's request handling (create, incref,
    decref, serve_client, ...) behind the core's listener."""

    def __init__(self, registry, address, authkey, serializer):
        if not isinstance(authkey, bytes):
            raise TypeError('Authkey %r is type %s, not bytes' % (authkey, type(authkey)))
        make_listener = listener_client[serializer][0]
        self.registry = registry
        self.authkey = process.AuthenticationString(authkey)
        self.listener = make_listener(address=address, backlog=128, authkey=self.authkey)
        self.address = self.listener.address
        # The state Python's methods keep: ident -> (object, exposed,
        # method_to_typeid), '0' being no object; references held by
        # clients; objects only proxies inside the server still refer to.
        self.id_to_obj = {'0': (None, ())}
        self.id_to_refcount, self.id_to_local_proxy_obj = {}, {}
        self.mutex = threading.Lock()

    def serve_forever(self):
        # Both packages' RebuildProxy look for the server of this process:
        # Python's (set by Python's serve_forever) and mproc's.
        process.current_process()._manager_server = self
        self._accepter_left = threading.Event()
        try:
            # Python's: runs self.accepter in a thread, returns through
            # sys.exit(0) once shutdown() sets stop_event.
            super().serve_forever()
        finally:
            self.stop_event.set()
            self._accepter_left.wait(1.0)  # the listener closed, its socket removed

    def accepter(self):
        """Takes authenticated clients until stop_event, one thread each,
        then closes the listener: only here, never while it accepts."""
        try:
            while not self.stop_event.is_set():
                try:
                    conn = self.listener.accept(100)
                except AuthenticationError:
                    continue  # a client with a wrong key: the core closed it
                except OSError:
                    if self.listener._listener is None:
                        return
                    continue
                if conn is not None:
                    threading.Thread(target=self.handle_request, args=(conn,), daemon=True).start()
        finally:
            self.listener.close()
            self._accepter_left.set()

    public = _std.Server.public + ['accept_local']

    def accept_local(self, c, name):
        """accept_connection for an mproc client (_open_connection): the
        connection moves to a channel in the arena if the client shares
        it, else stays on the socket."""
        threading.current_thread().name = name
        try:
            ch = _core.channel_new(c.fileno())
        except (MemoryError, OSError):  # the arena is full: the socket
            ch = None
        c.send(('#RETURN', None if ch is None else ch.offer()))
        if ch is None:
            return self.serve_client(c)
        try:
            joined = c.recv()
        except EOFError:
            ch.close(True)
            sys.exit(0)  # as serve_client at a client's end
        if joined is not True:
            ch.close(True)
            return self.serve_client(c)
        local = _LocalConn(ch, c)
        try:
            self.serve_client(local)
        finally:
            ch.close()

    def _handle_request(self, c):
        # The first request of a connection. Python's runs the handshake
        # here; the core's listener has run it before accept() returned.
        request = reply = None
        try:
            request = c.recv()
            funcname, args, kwds = request[1:]
            if funcname not in self.public:
                raise AssertionError('%r unrecognized' % (funcname,))
            reply = ('#RETURN', getattr(self, funcname)(c, *args, **kwds))
        except Exception:
            reply = ('#TRACEBACK', format_exc())
        try:
            c.send(reply)
        except Exception as e:  # say why to the client, if it can be said
            util.info('could not send the reply %r to %r: %r', reply, request, e)
            with contextlib.suppress(Exception):
                c.send(('#TRACEBACK', format_exc()))

#
# The manager
#


class BaseManager(_std.BaseManager):
    """Python's BaseManager with the core's transport and its server an
    mproc Process of ctx (mproc's default context when None)."""

    _registry = {}
    _Server = Server

    def __init__(self, address=None, authkey=None, serializer='pickle', ctx=None, *,
                 shutdown_timeout=1.0):
        if authkey is None:
            authkey = process.current_process().authkey  # mproc's process
        transport = listener_client[serializer]
        super().__init__(address, authkey, serializer, ctx or get_context(),
                         shutdown_timeout=shutdown_timeout)
        # mproc's key pickles while mproc spawns a child (the server's).
        self._authkey = process.AuthenticationString(self._authkey)
        self._Listener, self._Client = transport

    def _refuse_unless_new(self):
        state = self._state.value
        if state == State.STARTED:
            raise ProcessError('Already started server')
        if state == State.SHUTDOWN:
            raise ProcessError('Manager has shut down')
        if state != State.INITIAL:
            raise ProcessError('Unknown state %r' % (state,))

    def get_server(self):
        """A Server (serve_forever(), address) for this manager's registry."""
        self._refuse_unless_new()
        return self._Server(self._registry, self._address, self._authkey, self._serializer)

    def connect(self):
        """Use the server already running at self.address."""
        with self._Client(self._address, authkey=self._authkey) as conn:
            dispatch(conn, None, 'dummy')
        self._state.value = State.STARTED

    def start(self, initializer=None, initargs=()):
        """Start the server in a child process of self._ctx (Python's
        _run_server is its target) and wait for its address."""
        self._refuse_unless_new()
        if initializer is not None and not callable(initializer):
            raise TypeError('initializer must be a callable')
        reader, writer = connection.Pipe(duplex=False)
        args = (self._registry, self._address, self._authkey, self._serializer, writer,
                initializer, initargs)
        self._process = self._ctx.Process(target=type(self)._run_server, args=args)
        self._process.name = '%s-%s' % (type(self).__name__,
                                        ':'.join(map(str, self._process._identity)))
        self._process.start()
        writer.close()
        try:
            self._address = reader.recv()
        finally:
            reader.close()
        self._state.value = State.STARTED
        self.shutdown = util.Finalize(
            self, type(self)._finalize_manager, exitpriority=0,
            args=(self._process, self._address, self._authkey, self._state, self._Client,
                  self._shutdown_timeout))

    @classmethod
    def register(cls, typeid, callable=None, proxytype=None, exposed=None,
                 method_to_typeid=None, create_method=True):
        """Python's register; the default proxy is mproc's AutoProxy."""
        super().register(typeid, callable, AutoProxy if proxytype is None else proxytype,
                         exposed, method_to_typeid, create_method)

#
# Proxies
#


class _CoreClient:
    """BaseProxy._Client, a data descriptor: the core's Client, whatever
    Python's BaseProxy.__init__ assigns there (its own Client, read from
    its module's table)."""

    def __get__(self, proxy, owner=None):
        serializer = getattr(proxy, '_serializer', 'pickle')
        return listener_client[serializer][1]

    def __set__(self, proxy, value):
        pass


class BaseProxy(_std.BaseProxy):
    """Python's BaseProxy over the core's transport; without a manager or
    an authkey it takes mproc's current_process().authkey."""

    _Client = _CoreClient()

    def __init__(self, token, serializer, manager=None, authkey=None, exposed=None,
                 incref=True, manager_owned=False):
        if authkey is None and manager is None:
            authkey = process.current_process().authkey
        super().__init__(token, serializer, manager, authkey, exposed, incref, manager_owned)

    def _connect(self):
        # Python's, through _open_connection.
        name = process.current_process().name
        if threading.current_thread().name != 'MainThread':
            name += '|' + threading.current_thread().name
        conn = self._Client(self._token.address, authkey=self._authkey)
        self._tls.connection = _open_connection(conn, self._token.address, self._authkey,
                                                self._serializer, name)

    def __reduce__(self):
        # A child being spawned gets the key with the proxy (mproc's
        # AuthenticationString pickles only then); elsewhere the receiver
        # uses its own process's key.
        kwds = {}
        if reduction._current() is not None:
            kwds['authkey'] = process.AuthenticationString(self._authkey)
        make = type(self)
        if getattr(self, '_isauto', False):
            make, kwds['exposed'] = AutoProxy, self._exposed_
        return RebuildProxy, (make, self._token, self._serializer, kwds)


def RebuildProxy(func, token, serializer, kwds):
    """Unpickles a proxy. In the process of the token's server (mproc's or
    Python's), the proxy is the server's own: it takes no reference, and
    the server keeps its object for it. A child still unpickling what it
    inherits takes none either."""
    for proc in (process.current_process(), _std_process.current_process()):
        server = getattr(proc, '_manager_server', None)
        if server is not None and server.address == token.address:
            kwds['manager_owned'] = True
            if token.id not in server.id_to_local_proxy_obj:
                server.id_to_local_proxy_obj[token.id] = server.id_to_obj[token.id]
            break
    inheriting = getattr(process.current_process(), '_inheriting', False)
    incref = kwds.pop('incref', True) and not inheriting
    return func(token, serializer, incref=incref, **kwds)


def _over_core(std_type, name):
    """mproc's twin of one of Python's proxy types: its methods, on mproc's
    BaseProxy (which comes first in the MRO)."""
    return type(name, (BaseProxy, std_type), {'__module__': __name__, '__qualname__': name})


_proxy_types = {}


def MakeProxyType(name, exposed, _cache=None):
    """A proxy type forwarding each method of exposed (Python's
    MakeProxyType's methods, on mproc's BaseProxy); cached."""
    key = (name, tuple(exposed))
    if key not in _proxy_types:
        _proxy_types[key] = _over_core(_std.MakeProxyType(name, key[1]), name)
    return _proxy_types[key]


def AutoProxy(token, serializer, manager=None, authkey=None, exposed=None, incref=True,
              manager_owned=False):
    """A proxy of the methods the server exposes for token (asked when
    exposed is None)."""
    if authkey is None:
        authkey = manager._authkey if manager is not None else process.current_process().authkey
    if exposed is None:
        with listener_client[serializer][1](token.address, authkey=authkey) as conn:
            exposed = dispatch(conn, None, 'get_methods', (token,))
    cls = MakeProxyType('AutoProxy[%s]' % token.typeid, exposed)
    proxy = cls(token, serializer, manager=manager, authkey=authkey, incref=incref,
                manager_owned=manager_owned)
    proxy._isauto = True
    return proxy


# SyncManager's proxies: Python's, on mproc's BaseProxy.
IteratorProxy = _over_core(_std.IteratorProxy, 'IteratorProxy')
AcquirerProxy = _over_core(_std.AcquirerProxy, 'AcquirerProxy')
ConditionProxy = _over_core(_std.ConditionProxy, 'ConditionProxy')
EventProxy = _over_core(_std.EventProxy, 'EventProxy')
BarrierProxy = _over_core(_std.BarrierProxy, 'BarrierProxy')
NamespaceProxy = _over_core(_std.NamespaceProxy, 'NamespaceProxy')
ValueProxy = _over_core(_std.ValueProxy, 'ValueProxy')
BaseListProxy = _over_core(_std.BaseListProxy, 'BaseListProxy')
ListProxy = _over_core(_std.ListProxy, 'ListProxy')
DictProxy = _over_core(_std.DictProxy, 'DictProxy')
ArrayProxy = _over_core(_std.ArrayProxy, 'ArrayProxy')
BasePoolProxy = _over_core(_std.BasePoolProxy, 'BasePoolProxy')
PoolProxy = _over_core(_std.PoolProxy, 'PoolProxy')

#
# SyncManager
#


class SyncManager(BaseManager):
    """Python's SyncManager types (its registry), with mproc's proxies and
    mproc's Pool; mproc.Manager() returns a started one."""


def _Pool(*args, **kwds):
    """The server's Pool: mproc's where the package has one, else Python's."""
    try:
        from .pool import Pool
    except ImportError:
        from multiprocessing.pool import Pool
    return Pool(*args, **kwds)


def _sync_registry():
    ours = {_std.AutoProxy: AutoProxy}
    for name in ('IteratorProxy', 'AcquirerProxy', 'ConditionProxy', 'EventProxy',
                 'BarrierProxy', 'NamespaceProxy', 'ValueProxy', 'ListProxy', 'DictProxy',
                 'ArrayProxy', 'PoolProxy'):
        ours[getattr(_std, name)] = globals()[name]
    for typeid, (make, exposed, method_to_typeid, proxytype) in _std.SyncManager._registry.items():
        SyncManager.register(typeid, _Pool if typeid == 'Pool' else make, ours[proxytype],
                             exposed, method_to_typeid,
                             create_method=hasattr(_std.SyncManager, typeid))


_sync_registry()

#
# SharedMemoryManager
#


class _SegmentTracker(_std._SharedMemoryTracker):
    """Python's tracker of the segments a SharedMemoryManager's server
    unlinks at shutdown, for mproc's segments (opened and unlinked through
    the core); one already unlinked by its creator is passed over."""

    def destroy_segment(self, segment_name):
        self.segment_names.remove(segment_name)
        from . import shared_memory
        with contextlib.suppress(FileNotFoundError):
            seg = shared_memory.SharedMemory(segment_name)
            seg.close()
            seg.unlink()


class SharedMemoryServer(Server, _std.SharedMemoryServer):
    """Python's SharedMemoryServer (track_segment, release_segment,
    list_segments; the segments unlinked at shutdown) behind the core's
    listener."""

    public = _std.SharedMemoryServer.public + ['accept_local']

    def __init__(self, registry, address, authkey, serializer):
        Server.__init__(self, registry, address, authkey, serializer)
        self.shared_memory_context = _SegmentTracker('shm_%s_%d' % (self.address, os.getpid()))


class SharedMemoryManager(BaseManager):
    """A manager whose server owns the shared memory its SharedMemory and
    ShareableList create (mproc's, on the core's named segments): they
    are unlinked when the manager shuts down."""

    _Server = SharedMemoryServer

    def _tracked(self, make, name_of):
        from . import shared_memory
        with self._Client(self._address, authkey=self._authkey) as conn:
            obj = make(shared_memory)
            try:
                dispatch(conn, None, 'track_segment', (name_of(obj),))
            except BaseException:
                (obj.shm if hasattr(obj, 'shm') else obj).unlink()
                raise
        return obj

    def SharedMemory(self, size):
        """A new SharedMemory of size bytes, unlinked at the shutdown."""
        return self._tracked(lambda m: m.SharedMemory(None, create=True, size=size),
                             lambda sm: sm.name)

    def ShareableList(self, sequence):
        """A new ShareableList of sequence's items, unlinked at the shutdown."""
        return self._tracked(lambda m: m.ShareableList(sequence), lambda sl: sl.shm.name)
