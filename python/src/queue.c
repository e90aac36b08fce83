/* Queue, SimpleQueue and JoinableQueue: pickles in the core's queues. */
#include "core.h"

#include <pthread.h>
#include <stdlib.h>

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

/* ---- put and get of objects: the pickling in C ----------------------------------- */

/* What Queue.put and Queue.get call once per item, with nothing of Python's
 * between them and the core: the message's encoding (codec.c), queue.Full /
 * queue.Empty raised here. Two costs are avoided:
 * - the message taken is read into a buffer of this thread, kept from one
 *   get to the next (its pages stay mapped: a new 1 MiB buffer per message
 *   faults every page in again), and decoded from there; a get that runs
 *   during another's unpickling (a __setstate__ that gets) uses a buffer of
 *   its own;
 * - an exact bytes object of LARGE_BYTES bytes or more is put as the very
 *   pickle pickle.dumps makes of it (PROTO 5, BINBYTES, the payload,
 *   MEMOIZE, STOP: a payload that large is written outside any frame),
 *   built in the same kind of kept buffer instead of a new bytes object. */
#define LARGE_BYTES  ((Py_ssize_t)64 << 10)
#define SCRATCH_KEEP ((size_t)8 << 20) /* larger buffers are not kept */

static PyObject *exc_full, *exc_empty;

static int queue_ready(void)
{
    if (exc_empty) return 0;
    if (codec_ready()) return -1;
    PyObject *queue = PyImport_ImportModule("queue");
    if (!queue) return -1;
    exc_full = PyObject_GetAttrString(queue, "Full");
    exc_empty = PyObject_GetAttrString(queue, "Empty");
    Py_DECREF(queue);
    if (exc_full && exc_empty) return 0;
    Py_CLEAR(exc_full);
    Py_CLEAR(exc_empty);
    return -1;
}

/* A thread's kept buffer (one for puts, one for gets), freed when the
 * thread ends. */
typedef struct scratch {
    char *p;
    size_t cap;
    int busy;
} scratch;

/* A thread's pair, also listed globally: a leak checker that does not
 * scan threads' specific data still finds them reachable. */
typedef struct scratch_pair {
    scratch s[2];
    struct scratch_pair *prev, *next;
} scratch_pair;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static scratch_pair *scratch_all;

static void scratch_free(void *v)
{
    scratch_pair *sp = v;
    pthread_mutex_lock(&scratch_mu);
    if (sp->prev)
        sp->prev->next = sp->next;
    else
        scratch_all = sp->next;
    if (sp->next) sp->next->prev = sp->prev;
    pthread_mutex_unlock(&scratch_mu);
    free(sp->s[0].p);
    free(sp->s[1].p);
    free(sp);
}

/* A fork child's one thread: the list's lock may have been held by
 * another thread of the parent. */
static void scratch_after_fork(void)
{
    pthread_mutex_init(&scratch_mu, NULL);
}

static void scratch_key_new(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0 &&
                     pthread_atfork(NULL, NULL, scratch_after_fork) == 0;
}

/* This thread's buffer `which` (0: put, 1: get), or NULL when it is in use
 * (re-entered) or cannot be had: the caller then uses one of its own. */
static scratch *scratch_get(int which)
{
    (void)pthread_once(&scratch_once, scratch_key_new);
    if (!scratch_key_ok) return NULL;
    scratch_pair *sp = pthread_getspecific(scratch_key);
    if (!sp) {
        sp = calloc(1, sizeof *sp);
        if (!sp || pthread_setspecific(scratch_key, sp)) {
            free(sp);
            return NULL;
        }
        pthread_mutex_lock(&scratch_mu);
        sp->next = scratch_all;
        if (scratch_all) scratch_all->prev = sp;
        scratch_all = sp;
        pthread_mutex_unlock(&scratch_mu);
    }
    return sp->s[which].busy ? NULL : &sp->s[which];
}

/* At least n bytes in s (its content is not kept); 0 or -1 (no memory). */
static int scratch_reserve(scratch *s, size_t n)
{
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64 << 10;
    while (cap < n) cap *= 2;
    char *p = malloc(cap);
    if (!p) return -1;
    free(s->p);
    s->p = p;
    s->cap = cap;
    return 0;
}

/* Done with s: not in use any more; not kept if it grew too large. */
static void scratch_done(scratch *s)
{
    s->busy = 0;
    if (s->cap > SCRATCH_KEEP) {
        free(s->p);
        s->p = NULL;
        s->cap = 0;
    }
}

/* queue_put_obj(h, obj, block, timeout): Queue.put after its closed check. */
static PyObject *queue_put_obj(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "queue_put_obj(h, obj, block, timeout)");
        return NULL;
    }
    int ms;
    box *b = get_box(args[0], M_QUEUE);
    if (!b || py_timeout_ms(args[2], args[3], &ms) || queue_ready()) return NULL;
    PyObject *obj = args[1], *pk = NULL;
    scratch *s = NULL;
    put_ctx c = {b->obj, NULL, 0};
    Py_ssize_t n = PyBytes_CheckExact(obj) ? PyBytes_GET_SIZE(obj) : 0;
    if (n >= LARGE_BYTES && (size_t)n <= MPROC_QUEUE_MAX_MESSAGE - 9 &&
        (s = scratch_get(0)) != NULL && scratch_reserve(s, (size_t)n + 9) == 0) {
        unsigned char *p = (unsigned char *)s->p;
        p[0] = 0x80, p[1] = 5, p[2] = 'B'; /* PROTO 5, BINBYTES (4-byte length) */
        for (int i = 0; i < 4; i++) p[3 + i] = (unsigned char)((size_t)n >> (8 * i));
        memcpy(p + 7, PyBytes_AS_STRING(obj), (size_t)n);
        p[7 + n] = 0x94, p[8 + n] = '.'; /* MEMOIZE, STOP */
        c.buf = p, c.len = (size_t)n + 9;
        s->busy = 1;
    } else {
        s = NULL;
        pk = codec_dumps(obj);
        if (!pk) return NULL;
        c.buf = PyBytes_AS_STRING(pk), c.len = (size_t)PyBytes_GET_SIZE(pk);
    }
    int rc = try_then_sliced(put_fn, &c, ms);
    if (s) scratch_done(s);
    Py_XDECREF(pk);
    if (rc == 0) Py_RETURN_NONE;
    if (rc == 1) return NULL;
    if (rc == MPROC_ETIMEDOUT) {
        PyErr_SetNone(exc_full);
        return NULL;
    }
    if (rc == MPROC_EMSGSIZE) {
        PyErr_Format(PyExc_ValueError,
                     "message too long for an mproc queue (%zu bytes, at most %zu)", c.len,
                     (size_t)MPROC_QUEUE_MAX_MESSAGE);
        return NULL;
    }
    return raise_rc(rc);
}

typedef struct into_ctx {
    mproc_queue *q;
    void *buf;
    size_t cap, len;
} into_ctx;

static int into_fn(void *ctx, int ms)
{
    into_ctx *c = ctx;
    return mproc_queue_get_into(c->q, c->buf, c->cap, &c->len, ms);
}

/* queue_get_obj(h, block, timeout): Queue.get after its closed check. */
static PyObject *queue_get_obj(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "queue_get_obj(h, block, timeout)");
        return NULL;
    }
    int ms, rc;
    box *b = get_box(args[0], M_QUEUE);
    if (!b || py_timeout_ms(args[1], args[2], &ms) || queue_ready()) return NULL;
    scratch *s = scratch_get(1);
    msg_ctx m = {b->obj, NULL, 0};
    if (s) {
        if (!s->p && scratch_reserve(s, 1)) return PyErr_NoMemory();
        s->busy = 1;
        into_ctx c = {b->obj, NULL, 0, 0};
        for (;;) {
            c.buf = s->p, c.cap = s->cap;
            rc = try_then_sliced(into_fn, &c, ms);
            if (rc != MPROC_ETOOSMALL) break;
            /* Still in the queue: make room and take it (or whatever is
             * first by then: another consumer may be quicker). */
            if (scratch_reserve(s, c.len)) {
                scratch_done(s);
                return PyErr_NoMemory();
            }
        }
        m.buf = s->p, m.len = c.len;
    } else {
        rc = try_then_sliced(get_fn, &m, ms);
    }
    PyObject *r = NULL;
    if (rc == 0) {
        r = codec_loads(m.buf, m.len);
    } else if (rc == MPROC_ETIMEDOUT) {
        PyErr_SetNone(exc_empty);
    } else if (rc != 1) {
        raise_rc(rc);
    }
    if (s)
        scratch_done(s);
    else
        free(m.buf);
    return r;
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
    {"queue_new", queue_new, METH_VARARGS, NULL},
    {"queue_op", queue_op, METH_VARARGS, NULL},
    {"queue_join", queue_join, METH_VARARGS, NULL},
    {"queue_put_obj", (PyCFunction)(void (*)(void))queue_put_obj, METH_FASTCALL, NULL},
    {"queue_get_obj", (PyCFunction)(void (*)(void))queue_get_obj, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};
