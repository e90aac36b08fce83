"""Connection and Pipe over the core's connections (the twin of
multiprocessing.connection): the core frames the messages, byte-compatible
with Python's."""
import io

from . import _core
from . import reduction
from .synchronize import _ms

__all__ = ['Connection', 'Pipe']

from multiprocessing import BufferTooShort, AuthenticationError  # Python's own classes


def _poll_ms(timeout):
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return max(1, min(int(timeout * 1000 + 0.999), 2**31 - 1))


class Connection:
    def __init__(self, handle, readable=True, writable=True):
        if not readable and not writable:
            raise ValueError("at least one of `readable` and `writable` must be True")
        self._handle = handle
        self._readable = readable
        self._writable = writable

    def __del__(self):
        pass  # the core's handle closes its fds when it goes

    def _check_closed(self):
        if self._handle is None:
            raise OSError("handle is closed")

    def _check_readable(self):
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self):
        if not self._writable:
            raise OSError("connection is read-only")

    def _bad_message_length(self):
        if self._writable:
            self._readable = False
        else:
            self.close()
        raise OSError("bad message length")

    @property
    def closed(self):
        return self._handle is None

    @property
    def readable(self):
        return self._readable

    @property
    def writable(self):
        return self._writable

    def fileno(self):
        self._check_closed()
        return _core.conn_op(self._handle, 4)

    def close(self):
        if self._handle is not None:
            try:
                _core.conn_op(self._handle, 0)
            finally:
                self._handle = None

    def send_bytes(self, buf, offset=0, size=None):
        self._check_closed()
        self._check_writable()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast('B')
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        _core.conn_send(self._handle, m[offset:offset + size])

    def send(self, obj):
        self._check_closed()
        self._check_writable()
        _core.conn_send(self._handle, reduction.dumps(obj))

    def _recv(self):
        return _core.conn_recv(self._handle, -1)

    def recv_bytes(self, maxlength=None):
        self._check_closed()
        self._check_readable()
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        buf = self._recv()
        if maxlength is not None and len(buf) > maxlength:
            self._bad_message_length()
        return buf

    def recv_bytes_into(self, buf, offset=0):
        self._check_closed()
        self._check_readable()
        with memoryview(buf) as m:
            itemsize = m.itemsize
            bytesize = itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            elif offset > bytesize:
                raise ValueError("offset too large")
            result = self._recv()
            size = len(result)
            if bytesize - offset < size:
                raise BufferTooShort(result)
            m.cast('B')[offset:offset + size] = result
            return size // itemsize

    def recv(self):
        self._check_closed()
        self._check_readable()
        return reduction.loads(self._recv())

    def poll(self, timeout=0.0):
        self._check_closed()
        self._check_readable()
        return _core.conn_poll(self._handle, _poll_ms(timeout))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()

    def __reduce__(self):
        reduction.assert_spawning(self)
        self._check_closed()
        return (_rebuild_connection,
                (reduction.add_conn(self._handle), self._readable, self._writable))


def _rebuild_connection(index, readable, writable):
    return Connection(reduction.child_conn(index), readable, writable)


def Pipe(duplex=True):
    """A pair of connected Connections: (c1, c2), both ways when duplex,
    else (reader, writer)."""
    a, b = _core.pipe(duplex)
    if duplex:
        return Connection(a), Connection(b)
    return Connection(a, writable=False), Connection(b, readable=False)
