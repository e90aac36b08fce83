"""ctypes objects in the family arena (the twin of
multiprocessing.sharedctypes).

The memory of a RawValue / RawArray is a block of the core in the family
arena (a shared object with its own reference count, as a Lock); the ctypes
object is built over its address (`from_address`) and holds the handle that
keeps the block alive. A process's ctypes object reads and writes the
memory directly. Value and Array pair that object with an mproc RLock (or
the Lock given), as Python's do; they pass to children as `args` under every
start method (pickled as their block's arena address while a child is being
prepared, as Python pickles its heap blocks)."""
import ctypes
import weakref

from . import _core
from . import reduction
from .reduction import assert_spawning
from .synchronize import _Shared

__all__ = ['RawValue', 'RawArray', 'Value', 'Array', 'copy', 'synchronized']

typecode_to_type = {
    'c': ctypes.c_char,     'u': ctypes.c_wchar,
    'b': ctypes.c_byte,     'B': ctypes.c_ubyte,
    'h': ctypes.c_short,    'H': ctypes.c_ushort,
    'i': ctypes.c_int,      'I': ctypes.c_uint,
    'l': ctypes.c_long,     'L': ctypes.c_ulong,
    'q': ctypes.c_longlong, 'Q': ctypes.c_ulonglong,
    'f': ctypes.c_float,    'd': ctypes.c_double
}


def _get_context():
    from .context import get_context
    return get_context()


class _Block(_Shared):
    """A zeroed block of the family arena (the role of Python's
    heap.BufferWrapper)."""
    _kind = _core.K_SHARED

    def __init__(self, size, align):
        self._h = _core.shared_new(size, align)

    def address(self):
        return _core.shared_addr(self._h)


def _new_value(type_):
    size = ctypes.sizeof(type_)
    block = _Block(size, ctypes.alignment(type_))
    return rebuild_ctype(type_, block, None)


def RawValue(typecode_or_type, *args):
    """A ctypes object allocated from shared memory."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    obj = _new_value(type_)
    obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    """A ctypes array allocated from shared memory."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    if isinstance(size_or_initializer, int):
        type_ = type_ * size_or_initializer
        return _new_value(type_)
    type_ = type_ * len(size_or_initializer)
    result = _new_value(type_)
    result.__init__(*size_or_initializer)
    return result


def _with_lock(obj, lock, ctx):
    if lock is False:
        return obj
    if lock in (True, None):
        ctx = ctx or _get_context()
        lock = ctx.RLock()
    if not hasattr(lock, 'acquire'):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return synchronized(obj, lock, ctx=ctx)


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A synchronization wrapper for a RawValue (lock: True for a new
    RLock, False for none, or a Lock/RLock to use)."""
    return _with_lock(RawValue(typecode_or_type, *args), lock, ctx)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """A synchronization wrapper for a RawArray."""
    return _with_lock(RawArray(typecode_or_type, size_or_initializer), lock, ctx)


def copy(obj):
    """A new shared ctypes object holding a copy of obj."""
    new_obj = _new_value(type(obj))
    ctypes.pointer(new_obj)[0] = obj
    return new_obj


def synchronized(obj, lock=None, ctx=None):
    """A wrapper of obj whose attribute and item accesses take lock."""
    assert not isinstance(obj, SynchronizedBase), 'object already synchronized'
    ctx = ctx or _get_context()
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock, ctx)
    elif isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock, ctx)
        return SynchronizedArray(obj, lock, ctx)
    cls = type(obj)
    try:
        scls = class_cache[cls]
    except KeyError:
        names = [field[0] for field in cls._fields_]
        d = {name: make_property(name) for name in names}
        classname = 'Synchronized' + cls.__name__
        scls = class_cache[cls] = type(classname, (SynchronizedBase,), d)
    return scls(obj, lock, ctx)


# ---- pickling (only while a child is being prepared) ----

def reduce_ctype(obj):
    assert_spawning(obj)
    if isinstance(obj, ctypes.Array):
        return rebuild_ctype, (obj._type_, obj._wrapper, obj._length_)
    return rebuild_ctype, (type(obj), obj._wrapper, None)


def rebuild_ctype(type_, wrapper, length):
    if length is not None:
        type_ = type_ * length
    reduction.ForkingPickler.register(type_, reduce_ctype)
    obj = type_.from_address(wrapper.address())
    obj._wrapper = wrapper
    return obj


# ---- the synchronized wrappers ----

def make_property(name):
    try:
        return prop_cache[name]
    except KeyError:
        pass

    def get(self):
        self.acquire()
        try:
            return getattr(self._obj, name)
        finally:
            self.release()

    def set(self, value):
        self.acquire()
        try:
            setattr(self._obj, name, value)
        finally:
            self.release()
    prop_cache[name] = p = property(get, set)
    return p


prop_cache = {}
class_cache = weakref.WeakKeyDictionary()


class SynchronizedBase(_core.SyncBase):
    """_obj and _lock, get_obj(), get_lock() and the context manager are
    SyncBase's, in C."""

    def __init__(self, obj, lock=None, ctx=None):
        self._obj = obj
        if lock:
            self._lock = lock
        else:
            ctx = ctx or _get_context()
            self._lock = ctx.RLock()
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __reduce__(self):
        assert_spawning(self)
        return synchronized, (self._obj, self._lock)

    def __repr__(self):
        return '<%s wrapper for %s>' % (type(self).__name__, self._obj)


class Synchronized(SynchronizedBase, _core.SyncValue):
    """A value: `value` (SyncValue's, in C) reads and writes it under the
    lock."""


class SynchronizedArray(SynchronizedBase):

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        with self:
            return self._obj[i]

    def __setitem__(self, i, value):
        with self:
            self._obj[i] = value

    def __getslice__(self, start, stop):
        with self:
            return self._obj[start:stop]

    def __setslice__(self, start, stop, values):
        with self:
            self._obj[start:stop] = values


class SynchronizedString(SynchronizedArray):
    value = make_property('value')
    raw = make_property('raw')
