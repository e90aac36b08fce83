"""Pickling of mproc's objects (the twin of multiprocessing.reduction).

Shared objects (locks, queues, ...) are pickled only while a spawn or
forkserver child is being prepared, as in Python: elsewhere they travel by
inheritance. While spawning, a shared object pickles as its address in the
family arena (the child maps the arena before it unpickles anything), and a
connection as an index into the connections the core hands to the child as
file descriptors. Elsewhere a connection or a socket pickles as duplicates
of its fds that the receiving process fetches from the sender
(resource_sharer.DupFd), as Python's do."""
import copyreg
import io
import os
import pickle
import socket
import threading

# Python's: the reducers registered with its ForkingPickler (by its heap's
# Arena, its Connection, or a library such as one that shares tensors)
# apply to what mproc pickles with its own.
import multiprocessing.reduction as _std

__all__ = ['dumps', 'loads', 'assert_spawning', 'spawning', 'ForkingPickler', 'register',
           'send_handle', 'recv_handle', 'DupFd']

HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
HAVE_SEND_HANDLE = True

_tls = threading.local()
_child_conns = None  # in a spawn child: the connections received


def dumps(obj, protocol=HIGHEST_PROTOCOL):
    # The registered reducers (shared ctypes objects) apply while a child
    # is being prepared; elsewhere (queues, connections) pickle's own, and
    # the pickler with the reducers (a socket's) when pickle's own fails.
    if _current() is None:
        try:
            return pickle.dumps(obj, protocol)
        except TypeError:
            pass
    buf = io.BytesIO()
    ForkingPickler(buf, protocol).dump(obj)
    return buf.getvalue()


def loads(buf):
    return pickle.loads(buf)


class spawning:
    """Context of pickling for a new child: collects the connections."""

    def __enter__(self):
        self.conns = []
        _tls.spawning = self
        return self

    def __exit__(self, *exc):
        _tls.spawning = None


def _current():
    return getattr(_tls, 'spawning', None)


def spawning_now():
    """Whether a child is being prepared in this thread."""
    return _current() is not None


def assert_spawning(obj):
    if _current() is None:
        raise RuntimeError(
            '%s objects should only be shared between processes'
            ' through inheritance' % type(obj).__name__)


def add_conn(handle):
    """While spawning: the index of a connection handed to the child."""
    s = _current()
    s.conns.append(handle)
    return len(s.conns) - 1


def child_conn(index):
    if _child_conns is None or not 0 <= index < len(_child_conns):
        raise RuntimeError('no such connection passed to this process')
    return _child_conns[index]


class ForkingPickler(pickle.Pickler):
    """Pickler with the reducers registered for mproc's objects (ctypes
    objects in shared memory), as Python's ForkingPickler, and those
    registered with Python's ForkingPickler (mproc's win where both
    have one: a socket)."""
    _extra_reducers = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Made anew each time, as Python's: a registration with Python's
        # ForkingPickler may come at any time, and this pickler serves
        # only starts and what pickle's own refused.
        table = copyreg.dispatch_table.copy()
        std = getattr(_std, 'ForkingPickler', None)
        if std is not None and std is not ForkingPickler:
            table.update(getattr(std, '_extra_reducers', {}))
        table.update(ForkingPickler._extra_reducers)
        self.dispatch_table = table

    @classmethod
    def register(cls, type, reduce):
        """Register a reduce function for a type."""
        ForkingPickler._extra_reducers[type] = reduce

    @classmethod
    def dumps(cls, obj, protocol=None):
        return dumps(obj, HIGHEST_PROTOCOL if protocol is None else protocol)

    loads = pickle.loads


register = ForkingPickler.register


def DupFd(fd):
    """A duplicate of fd that another process of the family can detach."""
    from .resource_sharer import DupFd
    return DupFd(fd)


def send_handle(conn, handle, destination_pid):
    """Sends the fd `handle` over conn to the process destination_pid
    (which calls recv_handle). Any Connection carries it: the fd itself
    goes by the sender's resource sharer."""
    conn.send(DupFd(handle))


def recv_handle(conn):
    """An fd sent with send_handle; RuntimeError when what came is not
    one."""
    from .resource_sharer import DupFd as _Dup
    obj = conn.recv()
    if not isinstance(obj, _Dup):
        raise RuntimeError('received %r, not a file descriptor' % type(obj).__name__)
    return obj.detach()


def _rebuild_socket(df, family, type, proto):
    return socket.socket(family, type, proto, fileno=df.detach())


def _reduce_socket(s):
    return _rebuild_socket, (DupFd(s.fileno()), s.family, s.type, s.proto)


ForkingPickler._extra_reducers[socket.socket] = _reduce_socket
