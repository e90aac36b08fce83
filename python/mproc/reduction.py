"""Pickling of mproc's objects (the twin of multiprocessing.reduction).

Shared objects (locks, queues, ...) and connections are pickled only while
a spawn or forkserver child is being prepared, as in Python: elsewhere they
travel by inheritance. While spawning, a shared object pickles as its
address in the family arena (the child maps the arena before it unpickles
anything), and a connection as an index into the connections the core hands
to the child as file descriptors."""
import copyreg
import io
import pickle
import threading

__all__ = ['dumps', 'loads', 'assert_spawning', 'spawning', 'ForkingPickler', 'register']

HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Connections and sockets pickle only while a child is being prepared
# (docs/python.md): no send_handle / recv_handle / DupFd.
HAVE_SEND_HANDLE = False

_tls = threading.local()
_child_conns = None  # in a spawn child: the connections received


def dumps(obj, protocol=HIGHEST_PROTOCOL):
    # The registered reducers (shared ctypes objects) apply while a child
    # is being prepared; elsewhere (queues, connections) pickle's own.
    if not ForkingPickler._extra_reducers or _current() is None:
        return pickle.dumps(obj, protocol)
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
    objects in shared memory), as Python's ForkingPickler."""
    _extra_reducers = {}
    _table = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if ForkingPickler._table is None:
            table = copyreg.dispatch_table.copy()
            table.update(ForkingPickler._extra_reducers)
            ForkingPickler._table = table
        self.dispatch_table = ForkingPickler._table

    @classmethod
    def register(cls, type, reduce):
        """Register a reduce function for a type."""
        if ForkingPickler._extra_reducers.get(type) is not reduce:
            ForkingPickler._extra_reducers[type] = reduce
            ForkingPickler._table = None

    @classmethod
    def dumps(cls, obj, protocol=None):
        return dumps(obj, HIGHEST_PROTOCOL if protocol is None else protocol)

    loads = pickle.loads


register = ForkingPickler.register
