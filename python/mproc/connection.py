"""Connection, Pipe, Listener, Client and wait over the core's connections
(the twin of multiprocessing.connection): the core frames the messages and
runs the authkey handshake, byte-compatible with Python's."""
import io
import os
import socket

from . import _core
from . import reduction
from .synchronize import _ms

__all__ = ['Client', 'Listener', 'Pipe', 'wait']

from multiprocessing import BufferTooShort, AuthenticationError  # Python's own classes
from multiprocessing import connection as _std_conn  # for connection-like objects


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

    def _check_closed(self, want=''):
        # Python's OSErrors: closed, or not open for the direction wanted
        # ('r' to read, 'w' to write)
        if self._handle is None:
            raise OSError("handle is closed")
        if want == 'r' and not self._readable:
            raise OSError("connection is write-only")
        if want == 'w' and not self._writable:
            raise OSError("connection is read-only")

    def _message_too_long(self):
        # as Python: stop reading a duplex end, close a read-only one
        if not self._writable:
            self.close()
        else:
            self._readable = False
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
        self._check_closed('w')
        view = memoryview(buf)
        if view.itemsize != 1:
            view = view.cast('B')
        total = view.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if offset > total:
            raise ValueError("buffer length < offset")
        if size is None:
            size = total - offset
        if size < 0:
            raise ValueError("size is negative")
        if offset + size > total:
            raise ValueError("buffer length < offset + size")
        _core.conn_send(self._handle, view[offset:offset + size])

    def send(self, obj):
        self._check_closed('w')
        _core.conn_send(self._handle, reduction.dumps(obj))

    def _recv(self):
        return _core.conn_recv(self._handle, -1)

    def recv_bytes(self, maxlength=None):
        self._check_closed('r')
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        buf = self._recv()
        if maxlength is not None and len(buf) > maxlength:
            self._message_too_long()
        return buf

    def recv_bytes_into(self, buf, offset=0):
        self._check_closed('r')
        with memoryview(buf) as view:
            room = len(view) * view.itemsize  # Python's measure of buf
            if offset < 0:
                raise ValueError("negative offset")
            if offset > room:
                raise ValueError("offset too large")
            msg = self._recv()
            if len(msg) > room - offset:
                raise BufferTooShort(msg)
            view.cast('B')[offset:offset + len(msg)] = msg
            return len(msg)  # in bytes, as Python's

    def recv(self):
        self._check_closed('r')
        return reduction.loads(self._recv())

    def poll(self, timeout=0.0):
        self._check_closed('r')
        return _core.conn_poll(self._handle, _poll_ms(timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __reduce__(self):
        self._check_closed()
        if reduction.spawning_now():
            return (_rebuild_connection,
                    (reduction.add_conn(self._handle), self._readable, self._writable))
        rfd, wfd = _core.conn_op(self._handle, 5)
        dup = reduction.DupFd
        return (_rebuild_duplicated, (None if rfd < 0 else dup(rfd),
                                      None if wfd < 0 or wfd == rfd else dup(wfd),
                                      wfd >= 0 and wfd == rfd, self._readable, self._writable))


def _rebuild_connection(index, readable, writable):
    return Connection(reduction.child_conn(index), readable, writable)


def _rebuild_duplicated(rdup, wdup, same, readable, writable):
    """A connection pickled outside spawning: its fds fetched from the
    sender (same: one fd both ways, a socket)."""
    rfd = rdup.detach() if rdup is not None else -1
    wfd = rfd if same else (wdup.detach() if wdup is not None else -1)
    return Connection(_core.conn_from_fds(rfd, wfd), readable, writable)


def Pipe(duplex=True):
    """A pair of connected Connections: (c1, c2), both ways when duplex,
    else (reader, writer)."""
    a, b = _core.pipe(duplex)
    if duplex:
        return Connection(a), Connection(b)
    return Connection(a, writable=False), Connection(b, readable=False)


# ---- Listener, Client, the handshake, wait ----------------------------------

families = ['AF_UNIX', 'AF_INET']
default_family = 'AF_UNIX'

# Python's handshake constants (the messages themselves are the core's).
CHALLENGE = b'#CHALLENGE#'
WELCOME = b'#WELCOME#'
FAILURE = b'#FAILURE#'
MESSAGE_LENGTH = 40

_FOREVER = -1


def address_type(address):
    """The family of an address: 'AF_INET' for a (host, port) tuple,
    'AF_PIPE' for a Windows pipe name, 'AF_UNIX' for a path or an abstract
    name ('\0name')."""
    if type(address) == tuple:
        return 'AF_INET'
    elif type(address) is str and address.startswith('\\\\'):
        return 'AF_PIPE'
    elif type(address) is str or _is_abstract(address):
        return 'AF_UNIX'
    else:
        raise ValueError('address type of %r unrecognized' % address)


def _is_abstract(address):
    # an abstract AF_UNIX name (str or bytes) begins with a NUL
    if not address:
        return False
    if isinstance(address, (bytes, str)):
        return address[:1] in (b'\0', '\0')
    raise TypeError(f'address type of {address!r} unrecognized')


def _validate_family(family):
    if family not in families:
        raise ValueError('Family %s is not recognized.' % family)


def arbitrary_address(family):
    """A free address of the family: ('localhost', 0) for AF_INET; for
    AF_UNIX None, which lets the core choose a private temporary path."""
    if family == 'AF_INET':
        return ('localhost', 0)
    if family == 'AF_UNIX':
        return None
    raise ValueError('unrecognized family')


def _core_address(address, family):
    """The core's string for a Python address (include/mproc/listener.h)."""
    if family == 'AF_INET':
        if not (isinstance(address, tuple) and len(address) == 2):
            raise TypeError('AF_INET address must be a pair (host, port)')
        host, port = address
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError("'%s' object cannot be interpreted as an integer"
                            % type(port).__name__)
        if not 0 <= port <= 65535:
            raise OverflowError('port must be 0-65535.')
        host = str(host)
        if ':' in host:
            host = '[%s]' % host
        return '%s:%d' % (host, port)
    if isinstance(address, bytes):
        address = os.fsdecode(address)
    if not isinstance(address, str):
        raise TypeError('AF_UNIX address must be str or bytes, not %s' %
                        type(address).__name__)
    if address.startswith('\0'):
        if '\0' in address[1:]:
            raise ValueError('embedded null character')
        return '@' + address[1:]
    if not address:
        raise FileNotFoundError(2, 'No such file or directory')
    if '\0' in address:
        raise ValueError('embedded null byte')
    if '/' in address:
        return address
    return './' + address


def _python_address(s, family):
    """The Python address for the core's string."""
    if family == 'AF_INET':
        host, _, port = s.rpartition(':')
        if host.startswith('['):
            host = host[1:-1]
        return (host, int(port))
    if s.startswith('@'):
        return os.fsencode('\0' + s[1:])  # as getsockname() gives it
    return s


def _check_authkey(authkey):
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError('authkey should be a byte string')


class Listener:
    """A listening socket that accepts Connections (Python's
    multiprocessing.connection.Listener on the core's listener): with an
    authkey, each client passes the core's handshake (Python's) in accept."""

    def __init__(self, address=None, family=None, backlog=1, authkey=None):
        family = family or (address and address_type(address)) or default_family
        _validate_family(family)
        if address is None:
            address = arbitrary_address(family)
        _check_authkey(authkey)
        self._family = family
        self._authkey = authkey
        self._last_accepted = None
        core = None if address is None else _core_address(address, family)
        self._listener = _core.listener_new(core, authkey, backlog)
        real = _core.listener_op(self._listener, 1)
        if family == 'AF_INET':
            host, port = _python_address(real, family)
            try:
                host = socket.gethostbyname(host) if host else '0.0.0.0'
            except OSError:
                pass
            self._address = (host, port)
        elif address is None or _is_abstract(address):
            self._address = _python_address(real, family)
        elif isinstance(address, bytes):
            self._address = os.fsdecode(address)
        else:
            self._address = address

    def accept(self):
        """Waits for a client and returns its Connection (after the
        handshake, with an authkey)."""
        if self._listener is None:
            raise OSError('listener is closed')
        h = _core.listener_accept(self._listener, _FOREVER)
        c = Connection(h)
        try:
            with socket.socket(fileno=os.dup(c.fileno())) as s:
                self._last_accepted = s.getpeername()
        except OSError:
            self._last_accepted = None
        return c

    def close(self):
        """Closes the socket (and removes its Unix path)."""
        listener = self._listener
        if listener is not None:
            self._listener = None
            _core.listener_close(listener)

    @property
    def address(self):
        return self._address

    @property
    def last_accepted(self):
        return self._last_accepted

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def Client(address, family=None, authkey=None):
    """Connects to a Listener at address and returns the Connection (with
    an authkey, after the handshake)."""
    family = family or address_type(address)
    _validate_family(family)
    _check_authkey(authkey)
    return Connection(_core.client_connect(_core_address(address, family), authkey, _FOREVER))


def _authkey_bytes(authkey):
    if not isinstance(authkey, bytes):
        raise ValueError("Authkey must be bytes, not {0!s}".format(type(authkey)))


def deliver_challenge(connection, authkey):
    """Challenges the peer of connection (Python's handshake, by the core);
    AuthenticationError if its answer is wrong."""
    _authkey_bytes(authkey)
    if not isinstance(connection, Connection):  # any object with send_bytes/recv_bytes
        return _std_conn.deliver_challenge(connection, authkey)
    connection._check_closed()
    _core.deliver_challenge(connection._handle, authkey)


def answer_challenge(connection, authkey):
    """Answers the peer's challenge (Python's handshake, by the core);
    AuthenticationError if the peer refuses it."""
    _authkey_bytes(authkey)
    if not isinstance(connection, Connection):  # any object with send_bytes/recv_bytes
        return _std_conn.answer_challenge(connection, authkey)
    connection._check_closed()
    _core.answer_challenge(connection._handle, authkey)


def wait(object_list, timeout=None):
    """Waits until one or more of object_list is ready and returns those:
    Connections (a message or end of file to read), sockets and other
    objects with fileno(), and fds (Process sentinels) that are readable.
    [] at the timeout (None: no timeout)."""
    object_list = list(object_list)
    keys = []
    for o in object_list:
        if isinstance(o, Connection):
            o._check_closed()
            keys.append(o._handle)
        elif isinstance(o, int):
            keys.append(o)
        else:
            keys.append(o.fileno())
    ready = _core.wait(keys, _poll_ms(timeout))
    return [object_list[i] for i in ready]
