/* Connections: the core's framing, one end per object of this process. */
#include "core.h"

WAIT_FN(poll_fn, mproc_conn_poll)

/* ---- Connection ------------------------------------------------------------------ */

static void Conn_dealloc(Conn *c)
{
    mproc_conn_free(c->c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Conn",
    .tp_basicsize = sizeof(Conn),
    .tp_dealloc = (destructor)Conn_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One end of an mproc connection (this process's).",
};

PyObject *conn_wrap(mproc_conn *c)
{
    Conn *o = PyObject_New(Conn, &ConnType);
    if (!o) {
        mproc_conn_free(c);
        return NULL;
    }
    o->c = c;
    return (PyObject *)o;
}

mproc_conn *get_conn(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &ConnType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc connection is required");
        return NULL;
    }
    return ((Conn *)o)->c;
}

/* Parses (conn, int) into the connection and *n. */
static mproc_conn *conn_arg(PyObject *args, int *n)
{
    PyObject *o;
    if (!PyArg_ParseTuple(args, "Oi", &o, n)) return NULL;
    return get_conn(o);
}

/* Raises for a connection's error code; badf: the message for
 * MPROC_EBADF (NULL: the generic one). */
static PyObject *conn_error(int rc, const char *badf)
{
    if (rc == MPROC_EBADF && badf) {
        PyErr_SetString(PyExc_OSError, badf);
        return NULL;
    }
    if (rc == MPROC_ECLOSED) {
        PyErr_SetString(PyExc_OSError, "handle is closed");
        return NULL;
    }
    if (rc == MPROC_EPIPE) {
        errno = EPIPE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (rc == MPROC_EEOF) {
        PyErr_SetNone(PyExc_EOFError);
        return NULL;
    }
    return raise_rc(rc);
}

static PyObject *pipe_new(PyObject *self, PyObject *arg)
{
    (void)self;
    int duplex = PyObject_IsTrue(arg);
    if (duplex < 0) return NULL;
    mproc_conn *a, *b;
    int rc = mproc_pipe(&a, &b, duplex);
    if (rc) return raise_rc(rc);
    PyObject *pa = conn_wrap(a);
    if (!pa) {
        mproc_conn_free(b);
        return NULL;
    }
    PyObject *pb = conn_wrap(b);
    if (!pb) {
        Py_DECREF(pa);
        return NULL;
    }
    return Py_BuildValue("(NN)", pa, pb);
}

/* conn_from_fd(fd, readable, writable): adopts fd. */
static PyObject *conn_from_fd(PyObject *self, PyObject *args)
{
    (void)self;
    int fd, r, w;
    if (!PyArg_ParseTuple(args, "ipp", &fd, &r, &w)) return NULL;
    mproc_conn *c;
    int rc = mproc_conn_from_fd(&c, fd, r, w);
    if (rc) return raise_rc(rc);
    return conn_wrap(c);
}

/* conn_from_fds(rfd, wfd): adopts them (-1: that direction is absent). */
static PyObject *conn_from_fds(PyObject *self, PyObject *args)
{
    (void)self;
    int r, w;
    if (!PyArg_ParseTuple(args, "ii", &r, &w)) return NULL;
    mproc_conn *c;
    int rc = mproc_conn_from_fds(&c, r, w);
    if (rc) return raise_rc(rc);
    return conn_wrap(c);
}

static PyObject *conn_send(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "Oy*", &o, &view)) return NULL;
    mproc_conn *c = get_conn(o);
    int rc = MPROC_EINVAL;
    if (c) {
        Py_BEGIN_ALLOW_THREADS rc = mproc_conn_send_bytes(c, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    if (!c) return NULL;
    if (rc) return conn_error(rc, "connection is read-only");
    Py_RETURN_NONE;
}

static int recv_fn(void *ctx, int ms)
{
    msg_ctx *m = ctx;
    return mproc_conn_recv_bytes(m->src, &m->buf, &m->len, ms);
}

/* conn_recv(h, timeout_ms) -> bytes, or None at the timeout. */
static PyObject *conn_recv(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    mproc_conn *c = conn_arg(args, &ms);
    if (!c) return NULL;
    msg_ctx m = {c, NULL, 0};
    int rc = sliced(recv_fn, &m, ms);
    if (rc == 1) return NULL;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_NONE;
    if (rc) return conn_error(rc, "connection is write-only");
    return msg_bytes(&m);
}

static PyObject *conn_poll(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    mproc_conn *c = conn_arg(args, &ms);
    if (!c) return NULL;
    int rc = sliced(poll_fn, c, ms);
    if (rc == 1 || rc == 0 || rc == MPROC_ETIMEDOUT) return bool_result(rc);
    return conn_error(rc, "connection is write-only");
}

/* conn_info(h, op): 0 close, 1 closed, 2 readable, 3 writable, 4 fileno,
 * 5 (read fd, write fd). */
static PyObject *conn_op(PyObject *self, PyObject *args)
{
    (void)self;
    int op;
    mproc_conn *c = conn_arg(args, &op);
    if (!c) return NULL;
    switch (op) {
    case 0:
        mproc_conn_close(c);
        Py_RETURN_NONE;
    case 1:
        return PyBool_FromLong(mproc_conn_closed(c));
    case 2:
        return PyBool_FromLong(mproc_conn_readable(c));
    case 3:
        return PyBool_FromLong(mproc_conn_writable(c));
    case 4: {
        int fd = mproc_conn_fileno(c);
        if (fd < 0) return conn_error(fd, NULL);
        return PyLong_FromLong(fd);
    }
    case 5: {
        int r, w, rc = mproc_conn_fds(c, &r, &w);
        if (rc) return conn_error(rc, NULL);
        return Py_BuildValue("(ii)", r, w);
    }
    default:
        PyErr_SetString(PyExc_ValueError, "bad connection operation");
        return NULL;
    }
}

PyMethodDef conn_methods[] = {
    {"pipe", pipe_new, METH_O, NULL},
    {"conn_from_fd", conn_from_fd, METH_VARARGS, NULL},
    {"conn_from_fds", conn_from_fds, METH_VARARGS, NULL},
    {"conn_send", conn_send, METH_VARARGS, NULL},
    {"conn_recv", conn_recv, METH_VARARGS, NULL},
    {"conn_poll", conn_poll, METH_VARARGS, NULL},
    {"conn_op", conn_op, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
