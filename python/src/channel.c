/* Manager channels: a manager connection moved into the family arena.
 *
 * A proxy and the server thread serving it talk over a socket, one round
 * trip per call, and on a virtual machine a round trip over a socket costs
 * tens of microseconds of sleeps and wake-ups. A client of the server's
 * family (it maps the same arena) moves its calls to a channel: two core
 * queues in the arena (requests and replies), whose waiters spin briefly
 * before they sleep, as every core queue's do. The socket stays open,
 * unused: its end of file tells either side that the other is gone (its
 * process ended or was killed), so a waiter looks at it between the slices
 * of its wait.
 *
 * The server makes the channel and offers it on the socket: its address
 * and a random nonce. A client joins only if that address holds a channel
 * with that nonce in its own arena, so a process of another family (whose
 * arena may lie at the same address) never takes one for its own.
 *
 * Lifetime, as the C manager's channels (src/manager): each side holds a
 * share. A side releases its share when it is done, before it closes its
 * end of the socket; a side that saw the other's end (end of file, or the
 * queues closed) releases the other's share first, then its own. The last
 * share released frees the queues and the block. So a client or a server
 * killed outright leaves nothing behind once the other side has seen it,
 * and a side never frees what the other may still touch. A fork child's
 * copy of a channel object does nothing: the share is its parent's. */
#include "core.h"

#include <poll.h>
#include <sys/random.h>

#define CHAN_MAGIC 0x6e616843u /* "Chan" */
enum { SHARE_CLIENT = 1u, SHARE_SERVER = 2u };
enum { SIDE_CLIENT = 0, SIDE_SERVER = 1 };

typedef struct chan {
    uint32_t magic;
    _Atomic uint32_t held; /* the shares still held */
    unsigned char nonce[16];
    mproc_queue *req, *rep; /* client -> server, server -> client */
} chan;

typedef struct Channel {
    PyObject_HEAD chan *ch;
    int side;
    int fd;      /* the socket, looked at for the peer's end */
    pid_t owner; /* the process whose share this object holds */
    int peer_gone;
    int closed;
} Channel;

static void chan_free(chan *ch)
{
    ch->magic = 0;
    mproc_queue_free(ch->req);
    mproc_queue_free(ch->rep);
    (void)mproc_arena_free(ch);
}

static void chan_release(chan *ch, uint32_t share)
{
    uint32_t old = atomic_fetch_and(&ch->held, ~share);
    if ((old & share) && !(old & ~share)) chan_free(ch);
}

static uint32_t share_of(int side)
{
    return side == SIDE_SERVER ? SHARE_SERVER : SHARE_CLIENT;
}

/* Gives up this side's share (and the peer's, when it is gone). */
static void channel_close(Channel *c)
{
    if (c->closed || c->owner != getpid()) return;
    c->closed = 1;
    /* A waiter on the other side wakes, takes what is left, then sees
     * the end. */
    mproc_queue_close(c->ch->req);
    mproc_queue_close(c->ch->rep);
    if (c->peer_gone) chan_release(c->ch, share_of(!c->side));
    chan_release(c->ch, share_of(c->side));
}

static void Channel_dealloc(Channel *c)
{
    channel_close(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *channel_wrap(chan *ch, int side, int fd)
{
    Channel *c = PyObject_New(Channel, &ChannelType);
    if (!c) return NULL;
    c->ch = ch;
    c->side = side;
    c->fd = fd;
    c->owner = getpid();
    c->peer_gone = 0;
    c->closed = 0;
    return (PyObject *)c;
}

static int usable(Channel *c)
{
    if (c->closed || c->owner != getpid()) {
        PyErr_SetString(PyExc_OSError, "handle is closed");
        return 0;
    }
    return 1;
}

/* True when the peer's end of the socket is gone: nothing else is sent on
 * it once the channel is in use, so anything to read is its end. */
static int peer_ended(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0;
}

typedef struct get_ctx {
    mproc_queue *q;
    int fd;
    void *buf;
    size_t len;
} get_ctx;

static int chan_get_fn(void *ctx, int ms)
{
    get_ctx *g = ctx;
    int rc = mproc_queue_get(g->q, &g->buf, &g->len, ms);
    if (rc == MPROC_ETIMEDOUT && peer_ended(g->fd)) rc = MPROC_ECLOSED;
    return rc;
}

/* send(bytes): the message to the other side. BrokenPipeError once the
 * other side closed the channel. */
static PyObject *Channel_send(Channel *c, PyObject *arg)
{
    if (!usable(c)) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    mproc_queue *q = c->side == SIDE_CLIENT ? c->ch->req : c->ch->rep;
    int rc = mproc_queue_put(q, v.buf, (size_t)v.len, 0); /* unbounded: never waits */
    PyBuffer_Release(&v);
    if (rc == MPROC_ECLOSED) {
        c->peer_gone = 1;
        errno = EPIPE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* recv() -> bytes: the other side's next message; EOFError once it is gone. */
static PyObject *Channel_recv(Channel *c, PyObject *unused)
{
    (void)unused;
    if (!usable(c)) return NULL;
    get_ctx g = {c->side == SIDE_CLIENT ? c->ch->rep : c->ch->req, c->fd, NULL, 0};
    int rc = sliced(chan_get_fn, &g, -1);
    if (rc == 1) return NULL;
    if (rc == MPROC_ECLOSED) {
        c->peer_gone = 1;
        PyErr_SetNone(PyExc_EOFError);
        return NULL;
    }
    if (rc) return raise_rc(rc);
    msg_ctx m = {g.q, g.buf, g.len};
    return msg_bytes(&m);
}

/* close(peer_gone=False): this side is done (the peer too, if said). */
static PyObject *Channel_close(Channel *c, PyObject *args)
{
    int gone = 0;
    if (!PyArg_ParseTuple(args, "|p", &gone)) return NULL;
    if (gone) c->peer_gone = 1;
    channel_close(c);
    Py_RETURN_NONE;
}

/* offer() -> (address, nonce): what the server sends the client. */
static PyObject *Channel_offer(Channel *c, PyObject *unused)
{
    (void)unused;
    if (!usable(c)) return NULL;
    return Py_BuildValue("(Ny#)", PyLong_FromVoidPtr(c->ch), (const char *)c->ch->nonce,
                         (Py_ssize_t)sizeof c->ch->nonce);
}

static PyMethodDef Channel_methods[] = {
    {"send", (PyCFunction)Channel_send, METH_O, NULL},
    {"recv", (PyCFunction)Channel_recv, METH_NOARGS, NULL},
    {"close", (PyCFunction)Channel_close, METH_VARARGS, NULL},
    {"offer", (PyCFunction)Channel_offer, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Channel",
    .tp_basicsize = sizeof(Channel),
    .tp_dealloc = (destructor)Channel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A manager connection's pair of queues in the family arena.",
    .tp_methods = Channel_methods,
};

/* channel_new(fd) -> Channel: the server's side of a new channel, the
 * client's socket being fd. */
static PyObject *channel_new(PyObject *self, PyObject *arg)
{
    (void)self;
    int fd;
    if (!PyArg_Parse(arg, "i", &fd)) return NULL;
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "a socket's fd is required");
        return NULL;
    }
    chan *ch;
    int rc = mproc_arena_calloc((void **)&ch, sizeof *ch);
    if (rc) return raise_rc(rc);
    if (getrandom(ch->nonce, sizeof ch->nonce, 0) != (ssize_t)sizeof ch->nonce) {
        (void)mproc_arena_free(ch);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if ((rc = mproc_queue_new(&ch->req, NULL)) || (rc = mproc_queue_new(&ch->rep, NULL))) {
        chan_free(ch);
        return raise_rc(rc);
    }
    atomic_store(&ch->held, SHARE_CLIENT | SHARE_SERVER);
    ch->magic = CHAN_MAGIC;
    PyObject *c = channel_wrap(ch, SIDE_SERVER, fd);
    if (!c) chan_free(ch);
    return c;
}

/* channel_join((address, nonce), fd) -> Channel, or None when this process
 * does not share the server's arena (the address holds no channel with
 * that nonce here). */
static PyObject *channel_join(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *addr;
    Py_buffer nonce;
    int fd;
    if (!PyArg_ParseTuple(args, "(Oy*)i", &addr, &nonce, &fd)) return NULL;
    chan *ch = PyLong_AsVoidPtr(addr);
    int ok = !PyErr_Occurred() && ch && !((uintptr_t)ch & 7) && mproc_arena_contains(ch) &&
             mproc_arena_contains((char *)ch + sizeof *ch - 1) && ch->magic == CHAN_MAGIC &&
             nonce.len == (Py_ssize_t)sizeof ch->nonce &&
             !memcmp(ch->nonce, nonce.buf, sizeof ch->nonce);
    PyBuffer_Release(&nonce);
    if (PyErr_Occurred()) return NULL;
    if (!ok) Py_RETURN_NONE;
    return channel_wrap(ch, SIDE_CLIENT, fd);
}

PyMethodDef channel_methods[] = {
    {"channel_new", channel_new, METH_O, NULL},
    {"channel_join", channel_join, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
