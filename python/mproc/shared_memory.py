"""Named shared memory for unrelated processes (the twin of
multiprocessing.shared_memory), on the core's named segments (mproc/shm.h).

SharedMemory is the core's segment: created ones are tracked by the core,
which unlinks them if the family ends without unlinking them (even after
SIGKILL), without resource_tracker or its warnings. Its memory is reserved
at creation (a full /dev/shm is OSError(ENOSPC) then, not SIGBUS on a later
write).

ShareableList keeps its items in the segment in the byte layout Python's
ShareableList uses, so that Python's own class reads and writes an mproc
list and the other way round (the C core's mproc_shareable_list has a
layout of its own and does not read it). The layout, in native byte order,
every field a multiple of 8 bytes except the last:

    n                  int64, the number of items
    offsets[n + 1]     int64, where each item's slot starts in the data
                       area (offsets[0] == 0, offsets[n] == its length)
    data               the slots: 8 bytes for an int, float, bool or None,
                       a multiple of 8 for a str (UTF-8) or bytes item,
                       zero-padded
    formats[n]         8 bytes each: the struct format of the slot's
                       current value, zero-padded ASCII
    codes[n]           1 byte each: what the unpacked value stands for
                       (0 itself, 1 a str, 2 bytes, 3 None)

This module's code is mproc's own, written to that layout."""

__all__ = ['SharedMemory', 'ShareableList']

import operator
import struct
import types

from . import _core


class SharedMemory:
    """A named shared memory segment: a new one (create=True, of size bytes,
    named "mproc_<16 hex digits>" unless name is given) or an existing one
    (by name; size is then the segment's own). track=False (Python 3.13's)
    leaves a created segment to the caller to unlink, even when the family
    ends without doing so."""

    _seg = None  # the core's segment (kept after close(), for unlink())
    _buf = None
    _name = None
    _size = 0

    def __init__(self, name=None, create=False, size=0, *, track=True):
        create = bool(create)
        if size < 0:
            raise ValueError("'size' must be a positive integer")
        if create:
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
        elif name is None:
            raise ValueError("'name' can only be None if create=True")
        seg, core_name, self._size = _core.shm_open(name, create, size, bool(track))
        # Python keeps the name as the caller spelt it (a leading '/' too).
        self._name = core_name if name is None else name
        self._seg = seg
        self._buf = memoryview(seg)

    @property
    def buf(self):
        "The segment's bytes, a writable memoryview (None after close())."
        return self._buf

    @property
    def name(self):
        "The name other processes attach by."
        return self._name

    @property
    def size(self):
        "The segment's length in bytes."
        return self._size

    def close(self):
        """Unmaps the segment in this process; it lives on for the others.
        BufferError while a view taken from buf is still alive (as Python's),
        since the view would outlive the mapping."""
        view, self._buf = self._buf, None
        if view is not None:
            try:
                view.release()
            except BufferError:
                self._buf = view
                raise
        if self._seg is not None:
            _core.shm_close(self._seg)

    def unlink(self):
        """Removes the segment's name (FileNotFoundError if it is gone);
        processes that have it mapped keep it until they close it. Allowed
        after close()."""
        if self._seg is not None:
            _core.shm_unlink(self._seg)

    def __del__(self):
        try:
            self.close()
        except (OSError, BufferError):
            pass

    def __reduce__(self):
        # A child attaches by name (and never unlinks what it only attached).
        return type(self), (self._name, False, self._size)

    def __repr__(self):
        return '%s(%r, size=%d)' % (type(self).__name__, self._name, self._size)


# ---- ShareableList ---------------------------------------------------------

_WORD = 8  # an offset, a fixed-size slot, a format field
_UTF8 = 'utf-8'

# The type codes of the layout.
_AS_IS, _STR, _BYTES, _NONE = 0, 1, 2, 3

# The struct formats of the fixed-size items; a bool sits in a slot's last
# byte, the flag standing for None in its seventh (the layout's choice).
_FIXED_FORMAT = {
    int: 'q',
    float: 'd',
    bool: 'xxxxxxx?',
    type(None): 'xxxxxx?x',
}

# The longest str/bytes slot whose format ("<digits>s") fits its field.
_MAX_SLOT = (10 ** (_WORD - 1) - 1) // _WORD * _WORD


def _stored_as(value, slot=None):
    """How value goes into a slot: (struct format, the object struct packs,
    type code). A str or bytes value fills a slot of `slot` bytes
    (ValueError if it is longer), or in a new list one sized for it: its
    encoded length plus 1 to 8 zero bytes. Any other type than the layout's
    six is KeyError, as Python's."""
    kind = type(value)
    if kind is str or kind is bytes:
        raw = value.encode(_UTF8) if kind is str else value
        if slot is None:
            slot = (len(raw) // _WORD + 1) * _WORD
            if slot > _MAX_SLOT:
                raise ValueError('a str or bytes item of a ShareableList holds '
                                 'at most %d bytes' % (_MAX_SLOT - 1))
        elif len(raw) > slot:
            raise ValueError("bytes/str item exceeds available storage")
        return '%ds' % slot, raw, (_STR if kind is str else _BYTES)
    return _FIXED_FORMAT[kind], value, (_NONE if value is None else _AS_IS)


def _value_of(code, unpacked):
    "The item a slot's unpacked value and type code stand for."
    if code == _AS_IS:
        return unpacked
    if code == _NONE:
        return None
    if code == _STR or code == _BYTES:
        raw = unpacked.rstrip(b'\0')  # the zero padding (and any trailing zeros)
        return raw.decode(_UTF8) if code == _STR else raw
    raise ValueError('ShareableList item with an unknown type code %d' % code)


def _new_list_bytes(items):
    "A new list's whole contents, header to type codes."
    formats, packed, codes = [], [], []
    for item in items:
        fmt, obj, code = _stored_as(item)
        formats.append(fmt)
        packed.append(obj)
        codes.append(code)
    ends = [0]
    for fmt in formats:
        ends.append(ends[-1] + struct.calcsize(fmt))
    head = struct.pack('%dq' % (len(ends) + 1), len(items), *ends)
    data = struct.pack(''.join(formats), *packed)
    fields = b''.join(f.encode('ascii').ljust(_WORD, b'\0') for f in formats)
    return head + data + fields + bytes(codes)


def _attach_list(cls, name):
    "Unpickles a ShareableList: attaches to its segment."
    return cls(name=name)


class ShareableList:
    """A list of fixed length in a SharedMemory segment (its `shm`), for
    int, float, bool, str, bytes and None items; other processes attach by
    name (ShareableList(name=...)) or get it pickled. An item may be
    replaced by one of another type, a str or bytes one only as long as its
    slot (its first value's encoded length rounded up past the next
    multiple of 8). Python's ShareableList and this one read and write each
    other's lists (the layout is in the module's docstring)."""

    def __init__(self, sequence=None, *, name=None):
        if sequence is None and name is not None:
            self.shm = SharedMemory(name)
        else:
            contents = _new_list_bytes(list(sequence or ()))
            self.shm = SharedMemory(name, create=True, size=len(contents))
            self.shm.buf[:len(contents)] = contents
        self._find_sections()

    def _find_sections(self):
        "Reads where the slots, formats and type codes are (fixed for life)."
        buf = self.shm.buf
        n = struct.unpack_from('q', buf, 0)[0]
        self._slot_at = struct.unpack_from('%dq' % (n + 1), buf, _WORD)
        self._data_at = (n + 2) * _WORD
        self._formats_at = self._data_at + self._slot_at[n]
        self._codes_at = self._formats_at + n * _WORD

    def _position(self, index, message):
        "index as a position in the list (negative ones from the end)."
        n = len(self)
        i = operator.index(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(message)
        return i

    def _slot_format(self, i):
        "The struct format item i's slot holds its current value in."
        field = struct.unpack_from('%ds' % _WORD, self.shm.buf, self._formats_at + i * _WORD)[0]
        return field.rstrip(b'\0').decode('ascii')

    def __len__(self):
        return struct.unpack_from('q', self.shm.buf, 0)[0]

    def __getitem__(self, index):
        i = self._position(index, "index out of range")
        buf = self.shm.buf
        unpacked = struct.unpack_from(self._slot_format(i), buf, self._data_at + self._slot_at[i])[0]
        return _value_of(buf[self._codes_at + i], unpacked)

    def __setitem__(self, index, value):
        i = self._position(index, "assignment index out of range")
        start = self._slot_at[i]
        fmt, obj, code = _stored_as(value, self._slot_at[i + 1] - start)
        buf = self.shm.buf
        struct.pack_into('%ds' % _WORD, buf, self._formats_at + i * _WORD, fmt.encode('ascii'))
        buf[self._codes_at + i] = code
        struct.pack_into(fmt, buf, self._data_at + start, obj)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def format(self):
        "The struct formats of all items, joined (Python's `format`)."
        return ''.join(map(self._slot_format, range(len(self))))

    def count(self, value):
        "How many items are equal to value."
        return sum(1 for item in self if value == item)

    def index(self, value):
        "The position of the first item equal to value (ValueError if none)."
        for i, item in enumerate(self):
            if value == item:
                return i
        raise ValueError(f"{value!r} not in this container")

    def __reduce__(self):
        return _attach_list, (type(self), self.shm.name)

    def __repr__(self):
        return '%s(%r, name=%r)' % (type(self).__name__, list(self), self.shm.name)

    __class_getitem__ = classmethod(types.GenericAlias)
