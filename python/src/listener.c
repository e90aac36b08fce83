/* Listeners, clients and the authkey handshake: the core's
 * (mproc/listener.h) for the managers' transport and any Python-level
 * Listener/Client. A listener is a capsule owning an mproc_listener; the
 * connections it accepts or a client makes are Conn objects (conn.c).
 *
 * Functions: listener_new(address, authkey, backlog), listener_accept(l,
 * timeout_ms) -> Conn or None at the timeout, listener_address(l),
 * listener_fileno(l), listener_close(l), client_connect(address, authkey,
 * timeout_ms), deliver_challenge(conn, authkey, timeout_ms),
 * answer_challenge(conn, authkey, timeout_ms), and conn_call(conn, request,
 * spin_us), a manager's round trip. An address is the core's
 * string (listener.h); authkey None means no authentication. A failed
 * handshake raises multiprocessing's AuthenticationError; a system error
 * the OSError subclass of its errno (ConnectionRefusedError, ...). A
 * listener must not be closed while another thread accepts on it. */
#include "core.h"

#include <errno.h>

#define LISTENER_CAPSULE "mproc._core.listener"

static void listener_capsule_free(PyObject *cap)
{
    mproc_listener_free(PyCapsule_GetPointer(cap, LISTENER_CAPSULE));
}

static mproc_listener *get_listener(PyObject *o)
{
    if (!PyCapsule_IsValid(o, LISTENER_CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "an mproc listener is required");
        return NULL;
    }
    return PyCapsule_GetPointer(o, LISTENER_CAPSULE);
}

/* Raises for a listener, client or handshake error. */
static PyObject *listener_error(int rc)
{
    if (rc == MPROC_EAUTH) {
        PyObject *mod = PyImport_ImportModule("multiprocessing");
        if (!mod) return NULL;
        PyObject *exc = PyObject_GetAttrString(mod, "AuthenticationError");
        Py_DECREF(mod);
        if (!exc) return NULL;
        PyErr_SetString(exc, "authentication failed (wrong authkey or a peer that refused)");
        Py_DECREF(exc);
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
    if (rc < 0 && rc > -4096 && rc != MPROC_EINVAL && rc != MPROC_ENOMEM && rc != MPROC_ETIMEDOUT) {
        /* The core's system codes are -errno: Python's OSError subclass. */
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return raise_rc(rc);
}

/* Fills auth from a bytes-like key or None. The key's buffer must be
 * released by the caller (view->obj set) after the core call. */
static int auth_arg(PyObject *key, mproc_auth *auth, Py_buffer *view)
{
    memset(auth, 0, sizeof *auth);
    view->obj = NULL;
    if (key == Py_None) return 0;
    if (PyObject_GetBuffer(key, view, PyBUF_SIMPLE) < 0) return -1;
    if (view->len < 1 || view->len > MPROC_AUTHKEY_MAX) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "authkey must be 1 to 1024 bytes");
        return -1;
    }
    auth->key = view->buf;
    auth->key_len = (size_t)view->len;
    return 0;
}

static PyObject *listener_new(PyObject *self, PyObject *args)
{
    (void)self;
    const char *address;
    PyObject *key;
    int backlog;
    if (!PyArg_ParseTuple(args, "zOi", &address, &key, &backlog)) return NULL;
    mproc_listener_opts o;
    Py_buffer view;
    if (auth_arg(key, &o.auth, &view)) return NULL;
    o.backlog = backlog > 0 ? backlog : 0;
    mproc_listener *l = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_listener_new(&l, address, &o);
    Py_END_ALLOW_THREADS if (view.obj) PyBuffer_Release(&view);
    if (rc) return listener_error(rc);
    PyObject *cap = PyCapsule_New(l, LISTENER_CAPSULE, listener_capsule_free);
    if (!cap) mproc_listener_free(l);
    return cap;
}

typedef struct accept_ctx {
    mproc_listener *l;
    mproc_conn *out;
} accept_ctx;

static int accept_fn(void *ctx, int ms)
{
    accept_ctx *a = ctx;
    return mproc_listener_accept(a->l, &a->out, ms);
}

/* listener_accept(l, timeout_ms) -> Conn, None at the timeout. A client
 * that fails its handshake raises AuthenticationError (the listener goes
 * on: accept again). */
static PyObject *listener_accept(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    int ms;
    if (!PyArg_ParseTuple(args, "Oi", &o, &ms)) return NULL;
    accept_ctx a = {get_listener(o), NULL};
    if (!a.l) return NULL;
    Py_INCREF(o); /* the listener outlives the wait */
    int rc = sliced(accept_fn, &a, ms);
    Py_DECREF(o);
    if (rc == 1) return NULL;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_NONE;
    if (rc) return listener_error(rc);
    return conn_wrap(a.out);
}

/* listener_op(l, op): 0 close, 1 address, 2 fileno. */
static PyObject *listener_op(PyObject *self, PyObject *args, int op)
{
    (void)self;
    mproc_listener *l = get_listener(args);
    if (!l) return NULL;
    switch (op) {
    case 0:
        mproc_listener_close(l);
        Py_RETURN_NONE;
    case 1:
        return PyUnicode_DecodeFSDefault(mproc_listener_address(l));
    default: {
        int fd = mproc_listener_fileno(l);
        if (fd < 0) return listener_error(fd);
        return PyLong_FromLong(fd);
    }
    }
}

static PyObject *listener_close(PyObject *self, PyObject *arg)
{
    return listener_op(self, arg, 0);
}

static PyObject *listener_address(PyObject *self, PyObject *arg)
{
    return listener_op(self, arg, 1);
}

static PyObject *listener_fileno(PyObject *self, PyObject *arg)
{
    return listener_op(self, arg, 2);
}

/* client_connect(address, authkey, timeout_ms) -> Conn. */
static PyObject *client_connect(PyObject *self, PyObject *args)
{
    (void)self;
    const char *address;
    PyObject *key;
    int ms;
    if (!PyArg_ParseTuple(args, "sOi", &address, &key, &ms)) return NULL;
    mproc_client_opts o;
    Py_buffer view;
    if (auth_arg(key, &o.auth, &view)) return NULL;
    mproc_conn *c = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_client(&c, address, &o, ms);
    Py_END_ALLOW_THREADS if (view.obj) PyBuffer_Release(&view);
    if (rc) return listener_error(rc);
    return conn_wrap(c);
}

/* (conn, authkey, timeout_ms): one side of the handshake. */
static PyObject *challenge(PyObject *args, int deliver)
{
    PyObject *o, *key;
    int ms;
    if (!PyArg_ParseTuple(args, "OOi", &o, &key, &ms)) return NULL;
    mproc_conn *c = get_conn(o);
    if (!c) return NULL;
    if (key == Py_None) {
        PyErr_SetString(PyExc_TypeError, "authkey should be a byte string");
        return NULL;
    }
    mproc_auth auth;
    Py_buffer view;
    if (auth_arg(key, &auth, &view)) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc =
        deliver ? mproc_deliver_challenge(c, &auth, ms) : mproc_answer_challenge(c, &auth, ms);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (rc) return listener_error(rc);
    Py_RETURN_NONE;
}

static PyObject *deliver_challenge(PyObject *self, PyObject *args)
{
    (void)self;
    return challenge(args, 1);
}

static PyObject *answer_challenge(PyObject *self, PyObject *args)
{
    (void)self;
    return challenge(args, 0);
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
    if (rc) return listener_error(rc);
    msg_ctx m = {r.c, r.buf, r.len};
    return msg_bytes(&m);
}

PyMethodDef listener_methods[] = {
    {"conn_call", conn_call, METH_VARARGS, NULL},
    {"listener_new", listener_new, METH_VARARGS, NULL},
    {"listener_accept", listener_accept, METH_VARARGS, NULL},
    {"listener_close", listener_close, METH_O, NULL},
    {"listener_address", listener_address, METH_O, NULL},
    {"listener_fileno", listener_fileno, METH_O, NULL},
    {"client_connect", client_connect, METH_VARARGS, NULL},
    {"deliver_challenge", deliver_challenge, METH_VARARGS, NULL},
    {"answer_challenge", answer_challenge, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
