/* Listeners, clients, the authkey handshake and wait: the core's
 * mproc_listener_*, mproc_client, mproc_deliver_challenge /
 * mproc_answer_challenge and mproc_wait (include/mproc/listener.h,
 * wait.h). Addresses are the core's strings; the Python layer
 * (mproc/connection.py) turns Python's tuples and paths into them.
 * Generic names, so that other areas (managers) can call them too. */
#include "core.h"

/* ---- errors ------------------------------------------------------------------ */

static PyObject *auth_error_class(void)
{
    PyObject *m = PyImport_ImportModule("multiprocessing.context");
    if (!m) return NULL;
    PyObject *e = PyObject_GetAttrString(m, "AuthenticationError");
    Py_DECREF(m);
    return e;
}

/* Raises Python's exception for a listener or client error: the
 * AuthenticationError of multiprocessing for MPROC_EAUTH, an OSError
 * with the errno (hence its subclass: ConnectionRefusedError, ...) for a
 * system error, raise_rc's otherwise. */
static PyObject *net_error(int rc)
{
    if (rc == MPROC_EAUTH) {
        PyObject *e = auth_error_class();
        if (!e) return NULL;
        PyErr_SetString(e, "digest received was wrong");
        Py_DECREF(e);
        return NULL;
    }
    if (rc == MPROC_ECLOSED) {
        PyErr_SetString(PyExc_OSError, "handle is closed");
        return NULL;
    }
    if (rc == MPROC_EEOF) {
        PyErr_SetNone(PyExc_EOFError);
        return NULL;
    }
    if (rc < 0 && rc > -1000 && rc != MPROC_EINVAL && rc != MPROC_ENOMEM) {
        PyObject *args = Py_BuildValue("(is)", -rc, mproc_strerror(rc));
        if (args) {
            PyErr_SetObject(PyExc_OSError, args);
            Py_DECREF(args);
        }
        return NULL;
    }
    return raise_rc(rc);
}

/* Fills *a from an authkey argument: None (no authentication) or a
 * bytes-like object (copied into buf, of MPROC_AUTHKEY_MAX bytes). */
static int auth_arg(PyObject *key, mproc_auth *a, char *buf)
{
    memset(a, 0, sizeof *a);
    if (key == Py_None) return 0;
    Py_buffer v;
    if (PyObject_GetBuffer(key, &v, PyBUF_SIMPLE) < 0) return -1;
    if (v.len == 0 || v.len > MPROC_AUTHKEY_MAX) {
        PyBuffer_Release(&v);
        PyErr_Format(PyExc_ValueError, "authkey must be 1 to %d bytes", MPROC_AUTHKEY_MAX);
        return -1;
    }
    memcpy(buf, v.buf, (size_t)v.len);
    a->key = buf;
    a->key_len = (size_t)v.len;
    a->timeout_ms = MPROC_FOREVER;
    PyBuffer_Release(&v);
    return 0;
}

/* ---- Listener ------------------------------------------------------------------ */

/* The core forbids closing a listener during an accept: a close from
 * another thread while accepts wait is deferred to the end of their
 * current slice (they then return MPROC_ECLOSED). `active` and
 * `close_pending` change under the GIL; the accept slices read the flag. */
typedef struct Listener {
    PyObject_HEAD mproc_listener *l;
    int active;
    _Atomic int close_pending;
} Listener;

static void Listener_dealloc(Listener *o)
{
    mproc_listener_free(o->l);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

PyTypeObject ListenerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Listener",
    .tp_basicsize = sizeof(Listener),
    .tp_dealloc = (destructor)Listener_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A listening socket of this process (the core's listener).",
};

static mproc_listener *get_listener(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &ListenerType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc listener is required");
        return NULL;
    }
    return ((Listener *)o)->l;
}

/* listener_new(address or None, authkey or None, backlog) -> listener */
static PyObject *listener_new(PyObject *self, PyObject *args)
{
    (void)self;
    const char *address;
    PyObject *key;
    int backlog;
    if (!PyArg_ParseTuple(args, "zOi", &address, &key, &backlog)) return NULL;
    char keybuf[MPROC_AUTHKEY_MAX];
    mproc_listener_opts o = {.backlog = backlog > 0 ? backlog : 1};
    if (auth_arg(key, &o.auth, keybuf)) return NULL;
    Listener *py = PyObject_New(Listener, &ListenerType);
    if (!py) return NULL;
    py->l = NULL;
    py->active = 0;
    atomic_init(&py->close_pending, 0);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_listener_new(&py->l, address, &o);
    Py_END_ALLOW_THREADS memset(keybuf, 0, sizeof keybuf);
    if (rc) {
        Py_DECREF(py);
        return net_error(rc);
    }
    return (PyObject *)py;
}

typedef struct accept_ctx {
    Listener *o;
    mproc_conn *c;
} accept_ctx;

static int accept_fn(void *ctx, int ms)
{
    accept_ctx *a = ctx;
    if (atomic_load(&a->o->close_pending)) return MPROC_ECLOSED;
    return mproc_listener_accept(a->o->l, &a->c, ms);
}

/* Closes the listener now, or after the accepts under way. */
static void close_or_defer(Listener *o)
{
    if (o->active > 0)
        atomic_store(&o->close_pending, 1);
    else
        mproc_listener_close(o->l);
}

/* listener_accept(listener, timeout_ms) -> Conn, or None at the timeout */
static PyObject *listener_accept(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    int ms;
    if (!PyArg_ParseTuple(args, "Oi", &o, &ms)) return NULL;
    if (!get_listener(o)) return NULL;
    accept_ctx a = {(Listener *)o, NULL};
    Py_INCREF(o); /* the listener outlives the wait */
    a.o->active++;
    int rc = sliced(accept_fn, &a, ms);
    if (--a.o->active == 0 && atomic_load(&a.o->close_pending)) mproc_listener_close(a.o->l);
    Py_DECREF(o);
    if (rc == 1) return NULL;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_NONE;
    if (rc) return net_error(rc);
    return conn_wrap(a.c);
}

/* listener_op(listener, op): 0 close, 1 address, 2 fileno */
static PyObject *listener_op(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    int op;
    if (!PyArg_ParseTuple(args, "Oi", &o, &op)) return NULL;
    mproc_listener *l = get_listener(o);
    if (!l) return NULL;
    switch (op) {
    case 0:
        close_or_defer((Listener *)o);
        Py_RETURN_NONE;
    case 1:
        return PyUnicode_DecodeFSDefault(mproc_listener_address(l));
    case 2: {
        int fd = mproc_listener_fileno(l);
        if (fd < 0) return net_error(fd);
        return PyLong_FromLong(fd);
    }
    default:
        PyErr_SetString(PyExc_ValueError, "bad listener operation");
        return NULL;
    }
}

/* listener_close(listener) */
static PyObject *listener_close(PyObject *self, PyObject *o)
{
    (void)self;
    if (!get_listener(o)) return NULL;
    close_or_defer((Listener *)o);
    Py_RETURN_NONE;
}

/* ---- Client and the handshake ------------------------------------------------------ */

/* client_connect(address, authkey or None, timeout_ms) -> Conn */
static PyObject *client_connect(PyObject *self, PyObject *args)
{
    (void)self;
    const char *address;
    PyObject *key;
    int ms;
    if (!PyArg_ParseTuple(args, "sOi", &address, &key, &ms)) return NULL;
    char keybuf[MPROC_AUTHKEY_MAX];
    mproc_client_opts o;
    if (auth_arg(key, &o.auth, keybuf)) return NULL;
    mproc_conn *c = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_client(&c, address, &o, ms);
    Py_END_ALLOW_THREADS memset(keybuf, 0, sizeof keybuf);
    if (rc) return net_error(rc);
    return conn_wrap(c);
}

/* deliver_challenge(conn, authkey) / answer_challenge(conn, authkey) */
static PyObject *challenge(PyObject *args, bool deliver)
{
    PyObject *o, *key;
    if (!PyArg_ParseTuple(args, "OO", &o, &key)) return NULL;
    mproc_conn *c = get_conn(o);
    if (!c) return NULL;
    if (key == Py_None) {
        PyErr_SetString(PyExc_TypeError, "Authkey must be bytes, not NoneType");
        return NULL;
    }
    char keybuf[MPROC_AUTHKEY_MAX];
    mproc_auth a;
    if (auth_arg(key, &a, keybuf)) return NULL;
    int rc;
    Py_INCREF(o);
    Py_BEGIN_ALLOW_THREADS rc = deliver ? mproc_deliver_challenge(c, &a, MPROC_FOREVER)
                                        : mproc_answer_challenge(c, &a, MPROC_FOREVER);
    Py_END_ALLOW_THREADS memset(keybuf, 0, sizeof keybuf);
    Py_DECREF(o);
    if (rc) return net_error(rc);
    Py_RETURN_NONE;
}

static PyObject *deliver_challenge(PyObject *self, PyObject *args)
{
    (void)self;
    return challenge(args, true);
}

static PyObject *answer_challenge(PyObject *self, PyObject *args)
{
    (void)self;
    return challenge(args, false);
}

/* ---- wait ---------------------------------------------------------------------------- */

typedef struct wait_ctx {
    mproc_waitable *items;
    size_t n;
} wait_ctx;

static int waitall_fn(void *ctx, int ms)
{
    wait_ctx *w = ctx;
    return mproc_wait(w->items, w->n, ms, NULL);
}

/* wait(list of Conn or int fd, timeout_ms) -> list of the ready indexes */
static PyObject *wait_(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *list;
    int ms;
    if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &list, &ms)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    wait_ctx w = {PyMem_Calloc((size_t)(n ? n : 1), sizeof(mproc_waitable)), (size_t)n};
    if (!w.items) return PyErr_NoMemory();
    PyObject *res = NULL;
    Py_INCREF(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(list, i);
        if (PyObject_TypeCheck(it, &ConnType)) {
            w.items[i] = MPROC_WAITABLE_CONN(((Conn *)it)->c);
        } else {
            int fd = PyObject_AsFileDescriptor(it);
            if (fd < 0) goto out;
            w.items[i] = MPROC_WAITABLE_FD(fd);
        }
    }
    int rc = sliced(waitall_fn, &w, ms);
    if (rc == 1) goto out;
    if (rc && rc != MPROC_ETIMEDOUT) {
        net_error(rc);
        goto out;
    }
    res = PyList_New(0);
    for (Py_ssize_t i = 0; res && rc == 0 && i < n; i++) {
        if (!w.items[i].ready) continue;
        PyObject *k = PyLong_FromSsize_t(i);
        if (!k || PyList_Append(res, k)) Py_CLEAR(res);
        Py_XDECREF(k);
    }
out:
    Py_DECREF(list);
    PyMem_Free(w.items);
    return res;
}

/* ---- round trips of the managers' protocol ---------------------------------------- */

typedef struct rt_ctx {
    mproc_conn *c;
    const void *req; /* the request to send first, or NULL */
    size_t req_len;
    int spin_us;
    void *buf;
    size_t len;
    int sent;
} rt_ctx;

/* Sends the request (once), then polls without sleeping for up to spin_us
 * (a reply of a peer running on another CPU comes sooner than a sleep and
 * a wake-up), then receives. */
static int rt_fn(void *ctx, int ms)
{
    rt_ctx *r = ctx;
    if (r->req && !r->sent) {
        int rc = mproc_conn_send_bytes(r->c, r->req, r->req_len);
        if (rc) return rc;
        r->sent = 1;
    }
    if (r->spin_us > 0) {
        long long end = mproc_now_ns() + (long long)r->spin_us * 1000;
        int rc;
        while ((rc = mproc_conn_poll(r->c, 0)) == MPROC_ETIMEDOUT && mproc_now_ns() < end) {
        }
        r->spin_us = 0;
        if (rc != 0 && rc != MPROC_ETIMEDOUT) return rc;
    }
    return mproc_conn_recv_bytes(r->c, &r->buf, &r->len, ms);
}

/* conn_call(conn, request or None, spin_us) -> the next message: sends the
 * request (if any), then receives, polling up to spin_us first. EOF
 * raises EOFError; a closed or broken connection OSError. */
static PyObject *conn_call(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o, *req;
    int spin;
    if (!PyArg_ParseTuple(args, "OOi", &o, &req, &spin)) return NULL;
    rt_ctx r = {get_conn(o), NULL, 0, spin, NULL, 0, 0};
    if (!r.c) return NULL;
    Py_buffer view = {0};
    if (req != Py_None) {
        if (PyObject_GetBuffer(req, &view, PyBUF_SIMPLE) < 0) return NULL;
        r.req = view.buf;
        r.req_len = (size_t)view.len;
    }
    int rc = sliced(rt_fn, &r, -1);
    if (view.obj) PyBuffer_Release(&view);
    if (rc == 1) {
        free(r.buf);
        return NULL;
    }
    if (rc == MPROC_EPIPE) {
        errno = EPIPE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (rc) return net_error(rc);
    msg_ctx m = {r.c, r.buf, r.len};
    return msg_bytes(&m);
}

PyMethodDef listener_methods[] = {
    {"conn_call", conn_call, METH_VARARGS, NULL},
    {"listener_new", listener_new, METH_VARARGS, NULL},
    {"listener_accept", listener_accept, METH_VARARGS, NULL},
    {"listener_close", listener_close, METH_O, NULL},
    {"listener_op", listener_op, METH_VARARGS, NULL},
    {"client_connect", client_connect, METH_VARARGS, NULL},
    {"deliver_challenge", deliver_challenge, METH_VARARGS, NULL},
    {"answer_challenge", answer_challenge, METH_VARARGS, NULL},
    {"wait", wait_, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
