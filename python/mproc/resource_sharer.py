"""File descriptors handed to another process of the family (the twin of
multiprocessing.resource_sharer), so that a Connection or a socket can be
pickled anywhere, not only while a child is being prepared.

The sending process keeps a duplicate of the fd and serves it once, to the
process that asks for it with its key: a thread of the sender accepts on a
Listener with the family's authkey (the core's handshake), and the fd goes
as SCM_RIGHTS ancillary data over that connection's socket. The thread
starts on first use; stop() ends it. A fork child starts with nothing
shared: the duplicates it inherited are closed."""
import os
import socket
import sys
import threading

from . import process

__all__ = ['DupFd', 'stop']

# How long the serving thread waits for a connected client's key, in
# seconds: a process of the family that connected and then froze holds
# the thread (and every other fetch) no longer than this.
ASK_WITHIN = 5.0


def send_fd(conn, fd):
    """Sends fd over conn (a Connection on a Unix socket) as ancillary
    data, with one byte."""
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        socket.send_fds(s, [b'F'], [fd])


def recv_fd(conn):
    """Receives an fd sent by send_fd; RuntimeError when the data came
    without one."""
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        msg, fds, _flags, _addr = socket.recv_fds(s, 1, 1)
    if not fds:
        raise RuntimeError('received %d bytes of data without a file descriptor' % len(msg))
    return fds[0]


class DupFd:
    """A duplicate of fd, served to the first process that detaches it."""

    def __init__(self, fd):
        self._id = _sharer.register(os.dup(fd))

    def detach(self):
        """The fd, now this process's (once)."""
        return _sharer.fetch(self._id)


class _Sharer:
    def __init__(self):
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self):
        self._fds = {}  # key -> the duplicate kept for it
        self._next = 0
        self._listener = None
        self._address = None
        self._thread = None

    def register(self, fd):
        with self._lock:
            try:
                if self._listener is None:
                    self._start()
            except BaseException:
                os.close(fd)
                raise
            self._next += 1
            self._fds[self._next] = fd
            return self._address, self._next

    @staticmethod
    def fetch(ident):
        from .connection import Client
        address, key = ident
        with Client(address, authkey=process.current_process().authkey) as c:
            c.send((key, os.getpid()))
            return recv_fd(c)

    def _start(self):
        from .connection import Listener
        self._listener = Listener(authkey=process.current_process().authkey, backlog=128)
        self._address = self._listener.address
        self._thread = threading.Thread(target=self._serve, args=(self._listener,),
                                        name='mproc-resource-sharer', daemon=True)
        self._thread.start()

    def _serve(self, listener):
        while True:
            try:
                conn = listener.accept()
            except Exception:  # a client that failed the handshake, or closed
                if listener._listener is None:
                    return
                continue
            try:
                with conn:
                    if not conn.poll(ASK_WITHIN):
                        continue
                    msg = conn.recv()
                    if msg is None:
                        return
                    key, _pid = msg
                    with self._lock:
                        fd = self._fds.pop(key, None)
                    if fd is None:  # the client sees end of file: no fd came
                        continue
                    try:
                        send_fd(conn, fd)
                    finally:
                        os.close(fd)
            except Exception:
                if sys.is_finalizing():
                    return

    def stop(self, timeout=None):
        """Ends the serving thread and closes what it still keeps."""
        from .connection import Client
        with self._lock:
            if self._listener is None:
                return
            listener, thread, address = self._listener, self._thread, self._address
            fds = list(self._fds.values())
            self._reset()
        try:
            with Client(address, authkey=process.current_process().authkey) as c:
                c.send(None)
        except OSError:  # not told: the thread (a daemon) ends with the process
            pass
        else:
            thread.join(timeout)
        listener.close()
        for fd in fds:
            os.close(fd)

    def _after_fork(self):
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        if self._listener is not None:
            self._listener.close()  # the socket's path stays: its owner removes it
        self._lock = threading.Lock()
        self._reset()


_sharer = _Sharer()
stop = _sharer.stop
