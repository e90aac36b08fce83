/* Queue, SimpleQueue and JoinableQueue: pickles in the core's queues. */
#include "core.h"

WAIT_FN(join_fn, mproc_queue_join)

/* ---- Queue ----------------------------------------------------------------------- */

/* queue_new(maxsize, joinable) */
static PyObject *queue_new(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t maxsize;
    int joinable;
    if (!PyArg_ParseTuple(args, "np", &maxsize, &joinable)) return NULL;
    mproc_queue_opts o = {.maxsize = maxsize > 0 ? (size_t)maxsize : 0, .joinable = joinable};
    mproc_queue *q;
    int rc = mproc_queue_new(&q, &o);
    if (rc) return raise_rc(rc);
    return handle_wrap(K_QUEUE, q, NULL);
}

typedef struct put_ctx {
    mproc_queue *q;
    const void *buf;
    size_t len;
} put_ctx;

static int put_fn(void *ctx, int ms)
{
    put_ctx *c = ctx;
    return mproc_queue_put(c->q, c->buf, c->len, ms);
}

/* queue_put(h, bytes, timeout_ms) -> bool (False: still full). */
static PyObject *queue_put(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    Py_buffer view;
    int ms;
    if (!PyArg_ParseTuple(args, "Oy*i", &o, &view, &ms)) return NULL;
    box *b = get_box(o, M_QUEUE);
    if (!b) {
        PyBuffer_Release(&view);
        return NULL;
    }
    put_ctx c = {b->obj, view.buf, (size_t)view.len};
    int rc = try_then_sliced(put_fn, &c, ms);
    PyBuffer_Release(&view);
    if (rc == MPROC_EMSGSIZE) {
        PyErr_Format(PyExc_ValueError,
                     "message too long for an mproc queue (%zu bytes, at most %zu)", c.len,
                     (size_t)MPROC_QUEUE_MAX_MESSAGE);
        return NULL;
    }
    return bool_result(rc);
}

static int get_fn(void *ctx, int ms)
{
    msg_ctx *m = ctx;
    return mproc_queue_get(m->src, &m->buf, &m->len, ms);
}

/* The message taken, as bytes (its buffer freed). */
PyObject *msg_bytes(msg_ctx *m)
{
    PyObject *r = PyBytes_FromStringAndSize(m->buf, (Py_ssize_t)m->len);
    free(m->buf);
    return r;
}

/* queue_get(h, timeout_ms) -> bytes, or None when still empty. */
static PyObject *queue_get(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_QUEUE, &ms);
    if (!b) return NULL;
    msg_ctx m = {b->obj, NULL, 0};
    int rc = try_then_sliced(get_fn, &m, ms);
    if (rc == 1) return NULL;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_NONE;
    if (rc) return raise_rc(rc);
    return msg_bytes(&m);
}

/* queue_info(h, op): 0 qsize, 1 empty, 2 full, 3 task_done. */
static PyObject *queue_op(PyObject *self, PyObject *args)
{
    (void)self;
    int op;
    box *b = box_arg(args, M_QUEUE, &op);
    if (!b) return NULL;
    switch (op) {
    case 0:
        return PyLong_FromSize_t(mproc_queue_qsize(b->obj));
    case 1:
        return PyBool_FromLong(mproc_queue_empty(b->obj));
    case 2:
        return PyBool_FromLong(mproc_queue_full(b->obj));
    case 3: {
        int rc = mproc_queue_task_done(b->obj);
        if (rc == MPROC_EBADSTATE) {
            PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
            return NULL;
        }
        if (rc) return raise_rc(rc);
        Py_RETURN_NONE;
    }
    default:
        PyErr_SetString(PyExc_ValueError, "bad queue operation");
        return NULL;
    }
}

static PyObject *queue_join(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_QUEUE, &ms);
    if (!b) return NULL;
    return bool_result(sliced(join_fn, b->obj, ms));
}

PyMethodDef queue_methods[] = {
    {"queue_new", queue_new, METH_VARARGS, NULL},   {"queue_put", queue_put, METH_VARARGS, NULL},
    {"queue_get", queue_get, METH_VARARGS, NULL},   {"queue_op", queue_op, METH_VARARGS, NULL},
    {"queue_join", queue_join, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL},
};
