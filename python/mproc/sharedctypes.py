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
# Python's own table of typecodes (the array module's letters) to ctypes types
from multiprocessing.sharedctypes import typecode_to_type

from . import _core
from . import reduction
from .reduction import assert_spawning
from .synchronize import _Shared

__all__ = ['RawValue', 'RawArray', 'Value', 'Array', 'copy', 'synchronized']


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
        return _new_value(type_ * size_or_initializer)
    items = size_or_initializer
    array = _new_value(type_ * len(items))
    array.__init__(*items)
    return array


def _with_lock(obj, lock, ctx):
    if lock is False:
        return obj
    if lock in (True, None):
        lock = (ctx or _get_context()).RLock()
    elif not hasattr(lock, 'acquire'):
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
    dup = _new_value(type(obj))
    ctypes.pointer(dup)[0] = obj  # copies obj's bytes
    return dup


def synchronized(obj, lock=None, ctx=None):
    """A wrapper of obj whose attribute and item accesses take lock."""
    assert not isinstance(obj, SynchronizedBase), 'object already synchronized'
    return _wrapper_class(obj)(obj, lock, ctx or _get_context())


def _wrapper_class(obj):
    # a simple value, a char array (value and raw), another array, or a
    # Structure (one locked property per field, the class made once per type)
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized
    if isinstance(obj, ctypes.Array):
        return SynchronizedString if obj._type_ is ctypes.c_char else SynchronizedArray
    struct = type(obj)
    wrapper = class_cache.get(struct)
    if wrapper is None:
        fields = {f[0]: make_property(f[0]) for f in struct._fields_}
        wrapper = type('Synchronized' + struct.__name__, (SynchronizedBase,), fields)
        class_cache[struct] = wrapper
    return wrapper


# ---- pickling (only while a child is being prepared) ----

def reduce_ctype(obj):
    """Pickles a shared ctypes object as (element type, block, length) or
    (type, block, None); only while a child is being prepared."""
    assert_spawning(obj)
    length = obj._length_ if isinstance(obj, ctypes.Array) else None
    base = type(obj) if length is None else obj._type_
    return rebuild_ctype, (base, obj._wrapper, length)


def rebuild_ctype(type_, wrapper, length):
    """The ctypes object over wrapper's block (an array of length when it is
    not None); its pickling is registered as reduce_ctype."""
    full = type_ if length is None else type_ * length
    reduction.ForkingPickler.register(full, reduce_ctype)
    view = full.from_address(wrapper.address())
    view._wrapper = wrapper  # keeps the block alive as long as the view
    return view


# ---- the synchronized wrappers ----

prop_cache = {}
class_cache = weakref.WeakKeyDictionary()


def make_property(name):
    """A property reading and writing attribute name of the wrapped object
    under the wrapper's lock (one per name)."""
    prop = prop_cache.get(name)
    if prop is None:
        def read(self):
            with self:
                return getattr(self._obj, name)

        def write(self, value):
            with self:
                setattr(self._obj, name, value)
        prop = prop_cache[name] = property(read, write)
    return prop


class SynchronizedBase(_core.SyncBase):
    """_obj and _lock, get_obj(), get_lock() and the context manager are
    SyncBase's, in C."""

    def __init__(self, obj, lock=None, ctx=None):
        # no lock (or a false one): a new RLock of ctx, as Python's
        self._obj = obj
        self._lock = lock or (ctx or _get_context()).RLock()
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __reduce__(self):
        assert_spawning(self)
        return synchronized, (self._obj, self._lock)

    def __repr__(self):
        return '<%s wrapper for %s>' % (type(self).__name__, self._obj)


_FAST = {ctypes.c_int: 'i', ctypes.c_long: 'l', ctypes.c_double: 'd'}


class Synchronized(SynchronizedBase, _core.SyncValue):
    """A value: `value` (SyncValue's, in C) reads and writes it under the
    lock (a c_int, c_long or c_double at its address, as ctypes would)."""

    def __init__(self, obj, lock=None, ctx=None):
        super().__init__(obj, lock, ctx)
        code = _FAST.get(type(obj))
        if code:
            self._fast(code, ctypes.addressof(obj))


class SynchronizedArray(SynchronizedBase):
    """An array: len(), and items and slices read and written under the
    lock."""

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, key):
        with self:
            return self._obj[key]

    def __setitem__(self, key, value):
        with self:
            self._obj[key] = value

    # Python 2's slice methods, which Python's class still has
    def __getslice__(self, start, stop):
        return self[start:stop]

    def __setslice__(self, start, stop, values):
        self[start:stop] = values


class SynchronizedString(SynchronizedArray):
    """A char array: value and raw too, under the lock."""
    value = make_property('value')
    raw = make_property('raw')
