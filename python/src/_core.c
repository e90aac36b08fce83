/* mproc._core: the C core of mproc under CPython (docs/python.md).
 *
 * Shared objects (locks, semaphores, conditions, events, barriers, queues)
 * live in the family arena inside a "box": a small arena block with a
 * reference count shared by the processes of the family, the object's
 * kind, and the object. A Handle is one process's reference to a box:
 * - made by *_new in this process, it holds one reference;
 * - inherited by a fork child, it gets one reference of the child's own
 *   (taken before the fork: handles_before_fork), so that the parent
 *   dropping its handle never
 *   frees what the child still uses;
 * - exported for a spawn or forkserver child (handle_export) it takes one
 *   reference on the child's behalf, which the child's handle_import adopts.
 * A child gives back every reference it holds when its target ends
 * (handles_release_all), as its interpreter exits without finalising.
 * A process killed outright keeps its references: the box then lives as
 * long as the family's arena, never freed under a user.
 *
 * Connections and process objects are per process (the core's own
 * handles); a connection passed to a spawn child travels as an fd through
 * the core (the handles in the argument bytes).
 *
 * Every blocking call releases the GIL and waits in slices, so that a
 * signal (Ctrl-C) is seen within SLICE_MS. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <mproc.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SLICE_MS  100
#define BOX_MAGIC 0x6d70626fu /* "mpbo" */

enum kind { K_LOCK = 1, K_RLOCK, K_SEM, K_BSEM, K_COND, K_EVENT, K_BARRIER, K_QUEUE, K_NKINDS };

typedef struct box {
    uint32_t magic;
    int32_t kind;
    _Atomic int32_t refs;
    int32_t pad_;
    struct box *dep; /* a box this one keeps alive (a condition's lock), or NULL */
    void *obj;       /* the core object (allocated by its _new) */
} box;

static PyObject *OwnerDiedError, *NotRecoverableError, *BrokenBarrierError;

/* ---- errors ------------------------------------------------------------------ */

/* Sets the Python exception for an mproc error code and returns NULL. */
static PyObject *raise_rc(int rc)
{
    PyObject *exc = PyExc_OSError;
    switch (rc) {
    case MPROC_EINVAL:
        exc = PyExc_ValueError;
        break;
    case MPROC_ENOMEM:
        return PyErr_NoMemory();
    case MPROC_ETIMEDOUT:
        exc = PyExc_TimeoutError;
        break;
    case MPROC_EOWNERDEAD:
        exc = OwnerDiedError;
        break;
    case MPROC_ENOTRECOVERABLE:
        exc = NotRecoverableError;
        break;
    case MPROC_EBROKEN:
        exc = BrokenBarrierError;
        break;
    case MPROC_EEOF:
        exc = PyExc_EOFError;
        break;
    case MPROC_EBADSTATE:
    case MPROC_ESTARTED:
    case MPROC_ENOTSTARTED:
    case MPROC_EDEADLK:
        exc = PyExc_RuntimeError;
        break;
    case MPROC_ERUNNING:
        exc = PyExc_ValueError;
        break;
    default:
        break;
    }
    PyErr_Format(exc, "%s (%s)", mproc_strerror(rc), mproc_err_name(rc));
    return NULL;
}

/* ---- waiting in slices ------------------------------------------------------- */

typedef int (*wait_fn)(void *ctx, int ms);

/* Calls fn(ctx, ms) without the GIL in slices of SLICE_MS until it returns
 * something else than MPROC_ETIMEDOUT or timeout_ms (-1: none) has passed.
 * Returns fn's code; 1 if a signal handler raised (the exception is set). */
static int sliced(wait_fn fn, void *ctx, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : mproc_now_ns() + (long long)timeout_ms * 1000000;
    for (;;) {
        int ms = SLICE_MS;
        if (deadline >= 0) {
            long long left = (deadline - mproc_now_ns() + 999999) / 1000000;
            if (left < 0) left = 0;
            if (left < ms) ms = (int)left;
        }
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = fn(ctx, ms);
        Py_END_ALLOW_THREADS if (rc != MPROC_ETIMEDOUT) return rc;
        if (deadline >= 0 && mproc_now_ns() >= deadline) return rc;
        if (PyErr_CheckSignals()) return 1;
    }
}

/* fn(ctx, 0) at once (with the GIL), then, if that timed out and
 * timeout_ms is not 0, sliced. */
static int try_then_sliced(wait_fn fn, void *ctx, int timeout_ms)
{
    int rc = fn(ctx, 0);
    if (rc == MPROC_ETIMEDOUT && timeout_ms != 0) rc = sliced(fn, ctx, timeout_ms);
    return rc;
}

/* The result of a timed wait: True (done), False (timed out), NULL if a
 * signal handler raised (rc 1) or for an error. */
static PyObject *bool_result(int rc)
{
    if (rc == 1) return NULL;
    if (rc == 0) Py_RETURN_TRUE;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_FALSE;
    return raise_rc(rc);
}

/* A wait_fn over a core call f(obj, ms). */
#define WAIT_FN(name, f)                                                                           \
    static int name(void *ctx, int ms)                                                             \
    {                                                                                              \
        return f(ctx, ms);                                                                         \
    }

WAIT_FN(lock_wait, mproc_lock_acquire)
WAIT_FN(sem_wait, mproc_sem_acquire)
WAIT_FN(cond_wait_fn, mproc_cond_wait)
WAIT_FN(event_wait_fn, mproc_event_wait)
WAIT_FN(join_fn, mproc_queue_join)
WAIT_FN(poll_fn, mproc_conn_poll)
WAIT_FN(pjoin_fn, mproc_process_join)

/* ---- boxes and handles ---------------------------------------------------------- */

static void obj_free(int kind, void *obj)
{
    switch (kind) {
    case K_LOCK:
    case K_RLOCK:
        mproc_lock_free(obj);
        break;
    case K_SEM:
    case K_BSEM:
        mproc_sem_free(obj);
        break;
    case K_COND:
        mproc_cond_free(obj);
        break;
    case K_EVENT:
        mproc_event_free(obj);
        break;
    case K_BARRIER:
        mproc_barrier_free(obj);
        break;
    case K_QUEUE:
        mproc_queue_free(obj);
        break;
    }
}

static void box_free(box *b)
{
    obj_free(b->kind, b->obj);
    box *dep = b->dep;
    b->magic = 0;
    (void)mproc_arena_free(b);
    if (dep && atomic_fetch_sub(&dep->refs, 1) == 1) box_free(dep);
}

static void box_decref(box *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) box_free(b);
}

typedef struct Handle {
    PyObject_HEAD box *b;
    int kind;
    pid_t owner; /* the process whose reference this handle holds; 0: none */
    struct Handle *prev, *next;
} Handle;

static Handle *live; /* this process's handles */

static PyTypeObject HandleType;

static void handle_link(Handle *h)
{
    h->prev = NULL;
    h->next = live;
    if (live) live->prev = h;
    live = h;
}

static void Handle_dealloc(Handle *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else if (live == h)
        live = h->next;
    if (h->next) h->next->prev = h->prev;
    if (h->b && h->owner == getpid()) box_decref(h->b);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *Handle_repr(Handle *h)
{
    return PyUnicode_FromFormat("<mproc._core.Handle kind=%d at %p>", h->kind, (void *)h->b);
}

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_repr = (reprfunc)Handle_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A process's reference to a shared object in the family arena.",
};

/* A new handle of this process over b, holding one reference the caller
 * gives it. */
static PyObject *handle_new(box *b, int kind)
{
    Handle *h = PyObject_New(Handle, &HandleType);
    if (!h) return NULL;
    h->b = b;
    h->kind = kind;
    h->owner = getpid();
    handle_link(h);
    return (PyObject *)h;
}

/* A new handle over a new box holding obj (adopted); on failure obj is
 * freed by box_free. */
static PyObject *handle_wrap(int kind, void *obj, box *dep)
{
    box *b;
    int rc = mproc_arena_calloc((void **)&b, sizeof *b);
    if (rc) {
        obj_free(kind, obj);
        return raise_rc(rc);
    }
    b->magic = BOX_MAGIC;
    b->kind = kind;
    atomic_store(&b->refs, 1);
    b->obj = obj;
    b->dep = dep;
    if (dep) atomic_fetch_add(&dep->refs, 1);
    PyObject *h = handle_new(b, kind);
    if (!h) box_decref(b);
    return h;
}

/* The box of a Handle of one of the kinds in mask (bit k: kind k). */
static box *get_box(PyObject *o, unsigned mask)
{
    if (!PyObject_TypeCheck(o, &HandleType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc handle is required");
        return NULL;
    }
    Handle *h = (Handle *)o;
    if (!h->b || !(mask & (1u << h->kind))) {
        PyErr_SetString(PyExc_TypeError, "wrong kind of mproc handle");
        return NULL;
    }
    return h->b;
}

/* Parses (h, int) into the box of h (of a kind in mask) and *n. */
static box *box_arg(PyObject *args, unsigned mask, int *n)
{
    PyObject *o;
    if (!PyArg_ParseTuple(args, "Oi", &o, n)) return NULL;
    return get_box(o, mask);
}

#define M_LOCK  ((1u << K_LOCK) | (1u << K_RLOCK))
#define M_SEM   ((1u << K_SEM) | (1u << K_BSEM))
#define M_COND  (1u << K_COND)
#define M_EVENT (1u << K_EVENT)
#define M_BAR   (1u << K_BARRIER)
#define M_QUEUE (1u << K_QUEUE)

/* handle_export(h) -> int: the box's address, with one reference taken for
 * the process that will import it. */
static PyObject *handle_export(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, ~0u);
    if (!b) return NULL;
    atomic_fetch_add(&b->refs, 1);
    return PyLong_FromVoidPtr(b);
}

/* handle_import(addr, kind) -> Handle: adopts the reference handle_export
 * took. The address must be a box of that kind in the arena. */
static PyObject *handle_import(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *addr;
    int kind;
    if (!PyArg_ParseTuple(args, "Oi", &addr, &kind)) return NULL;
    box *b = PyLong_AsVoidPtr(addr);
    if (!b && PyErr_Occurred()) return NULL;
    if (!b || ((uintptr_t)b & 7) || !mproc_arena_contains(b) ||
        !mproc_arena_contains((char *)b + sizeof *b - 1) || b->magic != BOX_MAGIC ||
        b->kind != kind) {
        PyErr_SetString(PyExc_ValueError, "not an mproc shared object of this family");
        return NULL;
    }
    return handle_new(b, kind);
}

/* Before a fork: every handle of this process takes one reference for the
 * child, before the parent can drop its own (the child adopts them in
 * handles_after_fork; a fork that failed gives them back). */
static void handles_before_fork(int delta)
{
    pid_t me = getpid();
    for (Handle *h = live; h; h = h->next)
        if (h->b && h->owner == me) {
            if (delta > 0)
                atomic_fetch_add(&h->b->refs, 1);
            else
                box_decref(h->b);
        }
}

/* In a fork child: the references taken before the fork become the
 * child's. */
static void handles_after_fork(pid_t parent)
{
    pid_t me = getpid();
    for (Handle *h = live; h; h = h->next) h->owner = h->b && h->owner == parent ? me : 0;
}

/* At a child's end: gives back every reference this process holds. */
static void handles_release_all(void)
{
    pid_t me = getpid();
    for (Handle *h = live; h; h = h->next)
        if (h->b && h->owner == me) {
            h->owner = 0;
            box_decref(h->b);
        }
}

static PyObject *py_release_all(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    handles_release_all();
    Py_RETURN_NONE;
}

/* ---- Lock and RLock -------------------------------------------------------------- */

static PyObject *lock_new(PyObject *self, PyObject *arg)
{
    (void)self;
    int recursive = PyObject_IsTrue(arg);
    if (recursive < 0) return NULL;
    mproc_lock *l;
    int rc = recursive ? mproc_rlock_new(&l) : mproc_lock_new(&l);
    if (rc) return raise_rc(rc);
    return handle_wrap(recursive ? K_RLOCK : K_LOCK, l, NULL);
}

/* lock_acquire(h, timeout_ms) -> bool. A Lock its thread holds already:
 * False after the timeout (0: at once), RuntimeError with no timeout
 * (Python would hang). */
static PyObject *lock_acquire(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_LOCK, &ms);
    if (!b) return NULL;
    int rc = try_then_sliced(lock_wait, b->obj, ms);
    if (rc == MPROC_EDEADLK && ms >= 0) {
        if (ms > 0) {
            Py_BEGIN_ALLOW_THREADS usleep((useconds_t)ms * 1000);
            Py_END_ALLOW_THREADS
        }
        Py_RETURN_FALSE;
    }
    if (rc == MPROC_EDEADLK) {
        PyErr_SetString(PyExc_RuntimeError,
                        "deadlock: this thread already holds the Lock (Python would hang)");
        return NULL;
    }
    return bool_result(rc);
}

static PyObject *lock_release(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_LOCK);
    if (!b) return NULL;
    int rc = mproc_lock_release(b->obj);
    if (rc == 0) Py_RETURN_NONE;
    if (rc == MPROC_EPERM) {
        if (b->kind == K_RLOCK) {
            PyErr_SetString(PyExc_AssertionError,
                            "attempt to release recursive lock not owned by thread");
            return NULL;
        }
        if (!mproc_lock_locked(b->obj)) {
            PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times");
            return NULL;
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "an mproc Lock can only be released by the thread that holds it");
        return NULL;
    }
    return raise_rc(rc);
}

static PyObject *lock_locked(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_LOCK);
    if (!b) return NULL;
    return PyBool_FromLong(mproc_lock_locked(b->obj));
}

static PyObject *lock_make_consistent(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_LOCK);
    if (!b) return NULL;
    int rc = mproc_lock_make_consistent(b->obj);
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* ---- Semaphore and BoundedSemaphore ---------------------------------------------- */

static PyObject *sem_new(PyObject *self, PyObject *args)
{
    (void)self;
    long long value;
    int bounded;
    if (!PyArg_ParseTuple(args, "Lp", &value, &bounded)) return NULL;
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
        return NULL;
    }
    if (value > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "semaphore value too large");
        return NULL;
    }
    mproc_sem *s;
    int rc =
        bounded ? mproc_bounded_sem_new(&s, (unsigned)value) : mproc_sem_new(&s, (unsigned)value);
    if (rc) return raise_rc(rc);
    return handle_wrap(bounded ? K_BSEM : K_SEM, s, NULL);
}

static PyObject *sem_acquire(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_SEM, &ms);
    if (!b) return NULL;
    return bool_result(try_then_sliced(sem_wait, b->obj, ms));
}

static PyObject *sem_release(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_SEM);
    if (!b) return NULL;
    int rc = mproc_sem_release(b->obj);
    if (rc == MPROC_EOVERFLOW) {
        PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times");
        return NULL;
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *sem_value(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_SEM);
    if (!b) return NULL;
    unsigned v = 0;
    int rc = mproc_sem_get_value(b->obj, &v);
    if (rc) return raise_rc(rc);
    return PyLong_FromUnsignedLong(v);
}

/* ---- Condition ------------------------------------------------------------------- */

static PyObject *cond_new(PyObject *self, PyObject *o)
{
    (void)self;
    box *lb = get_box(o, M_LOCK);
    if (!lb) return NULL;
    mproc_cond *c;
    int rc = mproc_cond_new(&c, lb->obj);
    if (rc) return raise_rc(rc);
    return handle_wrap(K_COND, c, lb);
}

/* cond_wait(h, timeout_ms) -> bool (False: timed out). The lock is held
 * again on return, also after a signal handler raised. */
static PyObject *cond_wait(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_COND, &ms);
    if (!b) return NULL;
    /* A slice that times out holds the lock, so no notify can come between
     * two slices: none is lost. */
    int rc = sliced(cond_wait_fn, b->obj, ms);
    if (rc == MPROC_EPERM) {
        PyErr_SetString(PyExc_AssertionError, "must acquire() condition before using wait()");
        return NULL;
    }
    return bool_result(rc);
}

static PyObject *cond_notify(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    long long n;
    if (!PyArg_ParseTuple(args, "OL", &o, &n)) return NULL;
    box *b = get_box(o, M_COND);
    if (!b) return NULL;
    int rc = n < 0 ? mproc_cond_notify_all(b->obj)
                   : mproc_cond_notify(b->obj, n > UINT32_MAX ? UINT32_MAX : (unsigned)n);
    if (rc == MPROC_EPERM) {
        PyErr_SetString(PyExc_AssertionError, "lock is not owned");
        return NULL;
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* ---- Event ----------------------------------------------------------------------- */

static PyObject *event_new(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    mproc_event *e;
    int rc = mproc_event_new(&e);
    if (rc) return raise_rc(rc);
    return handle_wrap(K_EVENT, e, NULL);
}

static PyObject *event_op(PyObject *o, int op)
{
    box *b = get_box(o, M_EVENT);
    if (!b) return NULL;
    if (op == 2) return PyBool_FromLong(mproc_event_is_set(b->obj));
    int rc = op ? mproc_event_set(b->obj) : mproc_event_clear(b->obj);
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *event_set(PyObject *self, PyObject *o)
{
    (void)self;
    return event_op(o, 1);
}

static PyObject *event_clear(PyObject *self, PyObject *o)
{
    (void)self;
    return event_op(o, 0);
}

static PyObject *event_is_set(PyObject *self, PyObject *o)
{
    (void)self;
    return event_op(o, 2);
}

static PyObject *event_wait(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_EVENT, &ms);
    if (!b) return NULL;
    return bool_result(sliced(event_wait_fn, b->obj, ms));
}

/* ---- Barrier --------------------------------------------------------------------- */

static PyObject *barrier_new(PyObject *self, PyObject *args)
{
    (void)self;
    long long parties;
    if (!PyArg_ParseTuple(args, "L", &parties)) return NULL;
    if (parties < 1 || parties > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1");
        return NULL;
    }
    mproc_barrier *bar;
    int rc = mproc_barrier_new(&bar, (unsigned)parties, NULL, NULL);
    if (rc) return raise_rc(rc);
    return handle_wrap(K_BARRIER, bar, NULL);
}

/* barrier_wait(h, timeout_ms) -> index; BrokenBarrierError. Not sliced: a
 * party that times out breaks the barrier. */
static PyObject *barrier_wait(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_BAR, &ms);
    if (!b) return NULL;
    unsigned index = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_barrier_wait(b->obj, ms, &index);
    Py_END_ALLOW_THREADS if (rc == MPROC_ETIMEDOUT || rc == MPROC_EBROKEN)
    {
        PyErr_SetNone(BrokenBarrierError);
        return NULL;
    }
    if (rc) return raise_rc(rc);
    return PyLong_FromUnsignedLong(index);
}

/* barrier_info(h, op): 0 abort, 1 reset, 2 parties, 3 n_waiting, 4 broken. */
static PyObject *barrier_op(PyObject *self, PyObject *args)
{
    (void)self;
    int op, rc = 0;
    box *b = box_arg(args, M_BAR, &op);
    if (!b) return NULL;
    switch (op) {
    case 0:
        rc = mproc_barrier_abort(b->obj);
        break;
    case 1:
        rc = mproc_barrier_reset(b->obj);
        break;
    case 2:
        return PyLong_FromUnsignedLong(mproc_barrier_parties(b->obj));
    case 3:
        return PyLong_FromUnsignedLong(mproc_barrier_n_waiting(b->obj));
    case 4:
        return PyBool_FromLong(mproc_barrier_broken(b->obj));
    default:
        PyErr_SetString(PyExc_ValueError, "bad barrier operation");
        return NULL;
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

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

/* A timed receive: its source (a queue or a connection) and the message
 * it took (malloc'd). */
typedef struct msg_ctx {
    void *src;
    void *buf;
    size_t len;
} msg_ctx;

static int get_fn(void *ctx, int ms)
{
    msg_ctx *m = ctx;
    return mproc_queue_get(m->src, &m->buf, &m->len, ms);
}

static int recv_fn(void *ctx, int ms)
{
    msg_ctx *m = ctx;
    return mproc_conn_recv_bytes(m->src, &m->buf, &m->len, ms);
}

/* The message taken, as bytes (its buffer freed). */
static PyObject *msg_bytes(msg_ctx *m)
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

/* ---- Connection ------------------------------------------------------------------ */

typedef struct Conn {
    PyObject_HEAD mproc_conn *c;
} Conn;

static void Conn_dealloc(Conn *c)
{
    mproc_conn_free(c->c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Conn",
    .tp_basicsize = sizeof(Conn),
    .tp_dealloc = (destructor)Conn_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One end of an mproc connection (this process's).",
};

static PyObject *conn_wrap(mproc_conn *c)
{
    Conn *o = PyObject_New(Conn, &ConnType);
    if (!o) {
        mproc_conn_free(c);
        return NULL;
    }
    o->c = c;
    return (PyObject *)o;
}

static mproc_conn *get_conn(PyObject *o)
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

/* conn_info(h, op): 0 close, 1 closed, 2 readable, 3 writable, 4 fileno. */
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
    default:
        PyErr_SetString(PyExc_ValueError, "bad connection operation");
        return NULL;
    }
}

/* ---- Process --------------------------------------------------------------------- */

typedef struct Proc {
    PyObject_HEAD mproc_process *p;
    PyObject *func; /* fork: what the child calls */
    int method;
} Proc;

static void Proc_dealloc(Proc *p)
{
    if (p->p && mproc_process_free(p->p) != 0) {
        /* still running: the core keeps it (it is joined at exit) */
    }
    Py_XDECREF(p->func);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyTypeObject ProcType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Proc",
    .tp_basicsize = sizeof(Proc),
    .tp_dealloc = (destructor)Proc_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A child process of the core.",
};

static pid_t embed_pid; /* the process that called embed_child_main */

/* A child's exit code from what its Python code returned (r, a new
 * reference or NULL): 1 on an exception, which is printed. */
static int exit_code(PyObject *r)
{
    int code = 1;
    if (r) {
        code = (int)PyLong_AsLong(r);
        if (code == -1 && PyErr_Occurred()) code = 1;
    }
    if (PyErr_Occurred()) PyErr_Print();
    Py_XDECREF(r);
    return code;
}

/* Calls mproc._child._run(payload, conns) in a spawn or forkserver child;
 * its result is the exit code. */
static int run_child_code(PyObject *payload, PyObject *conns)
{
    PyObject *mod = PyImport_ImportModule("mproc._child");
    int code = exit_code(mod ? PyObject_CallMethod(mod, "_run", "OO", payload, conns) : NULL);
    Py_XDECREF(mod);
    return code;
}

/* The target of a fork child: the parent's interpreter, copied. arg holds
 * the callable (a reference the parent's Proc keeps). */
static int fork_target(void *arg)
{
    PyObject *func;
    pid_t parent;
    memcpy(&func, arg, sizeof func);
    memcpy(&parent, (char *)arg + sizeof func, sizeof parent);
    PyOS_AfterFork_Child();
    handles_after_fork(parent);
    int code = exit_code(PyObject_CallNoArgs(func));
    handles_release_all();
    return code;
}

/* The target of a spawn or forkserver child: arg is [u64 n][n conn
 * handles, now the child's][the payload]. */
static int spawn_target(void *arg)
{
    if (embed_pid != getpid()) { /* a forkserver's clone: its interpreter, copied */
        PyOS_AfterFork_Child();
        handles_after_fork(0); /* the server holds no references */
    }
    uint64_t n;
    memcpy(&n, arg, sizeof n);
    const char *p = (const char *)arg + sizeof n;
    PyObject *conns = PyList_New(0);
    for (uint64_t i = 0; conns && i < n; i++) {
        mproc_conn *c;
        memcpy(&c, p + i * sizeof c, sizeof c);
        PyObject *w = conn_wrap(c);
        if (!w || PyList_Append(conns, w)) Py_CLEAR(conns);
        Py_XDECREF(w);
    }
    p += n * sizeof(mproc_conn *);
    /* the payload's length is what follows: the core gave the bytes' size to no one, so it
     * is stored before the payload too */
    uint64_t plen;
    memcpy(&plen, p, sizeof plen);
    p += sizeof plen;
    PyObject *payload = conns ? PyBytes_FromStringAndSize(p, (Py_ssize_t)plen) : NULL;
    int code = payload ? run_child_code(payload, conns) : 1;
    if (!payload) PyErr_Print();
    Py_XDECREF(payload);
    Py_XDECREF(conns);
    handles_release_all();
    return code;
}

/* process_new(method, name, daemon, func_or_payload, conns) */
static PyObject *process_new(PyObject *self, PyObject *args)
{
    (void)self;
    const char *method, *name;
    int daemon;
    PyObject *what, *conns;
    if (!PyArg_ParseTuple(args, "szpOO!", &method, &name, &daemon, &what, &PyList_Type, &conns))
        return NULL;
    mproc_start_method m;
    if (mproc_start_method_parse(method, &m)) {
        PyErr_Format(PyExc_ValueError, "cannot find context for %R", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    mproc_process_opts o = {
        .name = name, .daemon = daemon, .start_method = m, .unchecked_args = true};
    Proc *pr = PyObject_New(Proc, &ProcType);
    if (!pr) return NULL;
    pr->p = NULL;
    pr->func = NULL;
    pr->method = m;
    int rc;
    if (m == MPROC_START_FORK) {
        Py_INCREF(what);
        pr->func = what;
        char arg[sizeof what + sizeof(pid_t)];
        pid_t me = getpid();
        memcpy(arg, &what, sizeof what);
        memcpy(arg + sizeof what, &me, sizeof me);
        rc = mproc_process_new(&pr->p, fork_target, arg, sizeof arg, &o);
    } else {
        char *payload;
        Py_ssize_t plen;
        if (PyBytes_AsStringAndSize(what, &payload, &plen)) {
            Py_DECREF(pr);
            return NULL;
        }
        uint64_t n = (uint64_t)PyList_GET_SIZE(conns), pl = (uint64_t)plen;
        size_t len = sizeof n + n * sizeof(mproc_conn *) + sizeof pl + (size_t)plen;
        char *buf = malloc(len), *q = buf;
        if (!buf) {
            Py_DECREF(pr);
            return PyErr_NoMemory();
        }
        memcpy(q, &n, sizeof n);
        q += sizeof n;
        for (uint64_t i = 0; i < n; i++) {
            mproc_conn *c = get_conn(PyList_GET_ITEM(conns, i));
            if (!c) {
                free(buf);
                Py_DECREF(pr);
                return NULL;
            }
            memcpy(q, &c, sizeof c);
            q += sizeof c;
        }
        memcpy(q, &pl, sizeof pl);
        q += sizeof pl;
        memcpy(q, payload, (size_t)plen);
        rc = mproc_process_new(&pr->p, spawn_target, buf, len, &o);
        free(buf);
    }
    if (rc) {
        Py_DECREF(pr);
        return raise_rc(rc);
    }
    return (PyObject *)pr;
}

static mproc_process *get_proc(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &ProcType) || !((Proc *)o)->p) {
        PyErr_SetString(PyExc_TypeError, "an mproc process is required");
        return NULL;
    }
    return ((Proc *)o)->p;
}

/* Parses (process, int) into the process object and *n. */
static Proc *proc_arg(PyObject *args, int *n)
{
    PyObject *o;
    if (!PyArg_ParseTuple(args, "Oi", &o, n)) return NULL;
    return get_proc(o) ? (Proc *)o : NULL;
}

static PyObject *process_start(PyObject *self, PyObject *o)
{
    (void)self;
    mproc_process *p = get_proc(o);
    if (!p) return NULL;
    int rc;
    if (((Proc *)o)->method == MPROC_START_FORK) {
        /* The child is a copy of this interpreter: as os.fork does. */
        handles_before_fork(1);
        PyOS_BeforeFork();
        rc = mproc_process_start(p);
        PyOS_AfterFork_Parent();
        if (rc) handles_before_fork(-1);
    } else {
        Py_BEGIN_ALLOW_THREADS rc = mproc_process_start(p);
        Py_END_ALLOW_THREADS
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* process_join(h, timeout_ms) -> bool (True: it has ended). */
static PyObject *process_join(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    Proc *pr = proc_arg(args, &ms);
    if (!pr) return NULL;
    return bool_result(sliced(pjoin_fn, pr->p, ms));
}

/* process_op(h, op): 0 is_alive, 1 exitcode (None while running), 2 pid,
 * 3 terminate, 4 kill, 5 interrupt, 6 sentinel, 7 close. */
static PyObject *process_op(PyObject *self, PyObject *args)
{
    (void)self;
    int op, rc = 0;
    Proc *pr = proc_arg(args, &op);
    if (!pr) return NULL;
    mproc_process *p = pr->p;
    switch (op) {
    case 0:
        return PyBool_FromLong(mproc_process_is_alive(p));
    case 1: {
        int code;
        rc = mproc_process_exitcode(p, &code);
        if (rc == MPROC_ERUNNING || rc == MPROC_ENOTSTARTED) Py_RETURN_NONE;
        if (rc) return raise_rc(rc);
        return PyLong_FromLong(code);
    }
    case 2: {
        pid_t pid = mproc_process_pid(p);
        if (pid == 0) Py_RETURN_NONE;
        return PyLong_FromLong(pid);
    }
    case 3:
        rc = mproc_process_terminate(p);
        break;
    case 4:
        rc = mproc_process_kill(p);
        break;
    case 5:
        rc = mproc_process_interrupt(p);
        break;
    case 6:
        rc = mproc_process_sentinel(p);
        if (rc >= 0) return PyLong_FromLong(rc);
        break;
    case 7:
        rc = mproc_process_free(p);
        if (rc == 0) {
            pr->p = NULL;
            Py_CLEAR(pr->func);
        }
        break;
    default:
        PyErr_SetString(PyExc_ValueError, "bad process operation");
        return NULL;
    }
    if (rc == MPROC_ERUNNING) {
        PyErr_SetString(PyExc_ValueError,
                        "Cannot close a process while it is still running. You should first "
                        "call join() or terminate().");
        return NULL;
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* ---- start methods, embedding ------------------------------------------------------ */

static PyObject *cpu_count(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyLong_FromLong(mproc_cpu_count());
}

static PyObject *all_start_methods(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    const char *names[8];
    size_t n = mproc_get_all_start_methods(names, 8);
    PyObject *l = PyList_New(0);
    for (size_t i = 0; l && i < n && i < 8; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s || PyList_Append(l, s)) Py_CLEAR(l);
        Py_XDECREF(s);
    }
    return l;
}

/* embed_set_argv(list of str or None) */
static PyObject *embed_set_argv(PyObject *self, PyObject *arg)
{
    (void)self;
    if (arg == Py_None) {
        int rc = mproc_embed_set_argv(NULL);
        if (rc) return raise_rc(rc);
        Py_RETURN_NONE;
    }
    PyObject *seq = PySequence_Fast(arg, "argv must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        v[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!v[i]) {
            rc = 1;
            break;
        }
    }
    if (!rc) rc = mproc_embed_set_argv(v);
    free(v);
    Py_DECREF(seq);
    if (rc == 1) return NULL;
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *embed_pending(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyBool_FromLong(mproc_embed_child_pending());
}

/* A forkserver's forks, as os.fork does them (the child's side is
 * spawn_target's PyOS_AfterFork_Child). */
static void server_before_fork(void)
{
    PyOS_BeforeFork();
}

static void server_after_fork_parent(void)
{
    PyOS_AfterFork_Parent();
}

static PyObject *embed_child_main(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    embed_pid = getpid();
    mproc_embed_set_fork_hooks(server_before_fork, server_after_fork_parent);
    int rc = mproc_embed_child_main(); /* returns only on failure */
    return raise_rc(rc);
}

static PyObject *set_start_method(PyObject *self, PyObject *args)
{
    (void)self;
    const char *m;
    if (!PyArg_ParseTuple(args, "z", &m)) return NULL;
    int rc = mproc_set_start_method(m, true);
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* ---- the module -------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"handle_export", handle_export, METH_O, NULL},
    {"handle_import", handle_import, METH_VARARGS, NULL},
    {"release_all", py_release_all, METH_NOARGS, NULL},
    {"lock_new", lock_new, METH_O, NULL},
    {"lock_acquire", lock_acquire, METH_VARARGS, NULL},
    {"lock_release", lock_release, METH_O, NULL},
    {"lock_locked", lock_locked, METH_O, NULL},
    {"lock_make_consistent", lock_make_consistent, METH_O, NULL},
    {"sem_new", sem_new, METH_VARARGS, NULL},
    {"sem_acquire", sem_acquire, METH_VARARGS, NULL},
    {"sem_release", sem_release, METH_O, NULL},
    {"sem_value", sem_value, METH_O, NULL},
    {"cond_new", cond_new, METH_O, NULL},
    {"cond_wait", cond_wait, METH_VARARGS, NULL},
    {"cond_notify", cond_notify, METH_VARARGS, NULL},
    {"event_new", event_new, METH_NOARGS, NULL},
    {"event_set", event_set, METH_O, NULL},
    {"event_clear", event_clear, METH_O, NULL},
    {"event_is_set", event_is_set, METH_O, NULL},
    {"event_wait", event_wait, METH_VARARGS, NULL},
    {"barrier_new", barrier_new, METH_VARARGS, NULL},
    {"barrier_wait", barrier_wait, METH_VARARGS, NULL},
    {"barrier_op", barrier_op, METH_VARARGS, NULL},
    {"queue_new", queue_new, METH_VARARGS, NULL},
    {"queue_put", queue_put, METH_VARARGS, NULL},
    {"queue_get", queue_get, METH_VARARGS, NULL},
    {"queue_op", queue_op, METH_VARARGS, NULL},
    {"queue_join", queue_join, METH_VARARGS, NULL},
    {"pipe", pipe_new, METH_O, NULL},
    {"conn_from_fd", conn_from_fd, METH_VARARGS, NULL},
    {"conn_send", conn_send, METH_VARARGS, NULL},
    {"conn_recv", conn_recv, METH_VARARGS, NULL},
    {"conn_poll", conn_poll, METH_VARARGS, NULL},
    {"conn_op", conn_op, METH_VARARGS, NULL},
    {"process_new", process_new, METH_VARARGS, NULL},
    {"process_start", process_start, METH_O, NULL},
    {"process_join", process_join, METH_VARARGS, NULL},
    {"process_op", process_op, METH_VARARGS, NULL},
    {"cpu_count", cpu_count, METH_NOARGS, NULL},
    {"all_start_methods", all_start_methods, METH_NOARGS, NULL},
    {"set_start_method", set_start_method, METH_VARARGS, NULL},
    {"embed_set_argv", embed_set_argv, METH_O, NULL},
    {"embed_pending", embed_pending, METH_NOARGS, NULL},
    {"embed_child_main", embed_child_main, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "mproc._core",
    "The C core of mproc under CPython.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&ConnType) < 0 || PyType_Ready(&ProcType) < 0)
        return NULL;
    /* The family arena now, so that every child shares it (a spawn
     * child's exists already: the call then changes nothing). */
    (void)mproc_arena_init(NULL);
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *threading = PyImport_ImportModule("threading");
    if (!threading) return NULL;
    BrokenBarrierError = PyObject_GetAttrString(threading, "BrokenBarrierError");
    Py_DECREF(threading);
    if (!BrokenBarrierError) return NULL;
    OwnerDiedError = PyErr_NewExceptionWithDoc(
        "mproc.OwnerDiedError",
        "The lock's holder died holding it. The caller now holds the lock: repair what it "
        "protects, then call make_consistent() on the lock (else release() makes it unusable).",
        PyExc_RuntimeError, NULL);
    NotRecoverableError = PyErr_NewExceptionWithDoc(
        "mproc.NotRecoverableError",
        "The lock was released unrepaired after its holder died: it can no longer be used.",
        PyExc_RuntimeError, NULL);
    if (!OwnerDiedError || !NotRecoverableError) return NULL;
    Py_INCREF(OwnerDiedError);
    Py_INCREF(NotRecoverableError);
    Py_INCREF(BrokenBarrierError);
    Py_INCREF(&HandleType);
    if (PyModule_AddObject(m, "OwnerDiedError", OwnerDiedError) ||
        PyModule_AddObject(m, "NotRecoverableError", NotRecoverableError) ||
        PyModule_AddObject(m, "BrokenBarrierError", BrokenBarrierError) ||
        PyModule_AddObject(m, "Handle", (PyObject *)&HandleType))
        return NULL;
    PyModule_AddIntConstant(m, "K_LOCK", K_LOCK);
    PyModule_AddIntConstant(m, "K_RLOCK", K_RLOCK);
    PyModule_AddIntConstant(m, "K_SEM", K_SEM);
    PyModule_AddIntConstant(m, "K_BSEM", K_BSEM);
    PyModule_AddIntConstant(m, "K_COND", K_COND);
    PyModule_AddIntConstant(m, "K_EVENT", K_EVENT);
    PyModule_AddIntConstant(m, "K_BARRIER", K_BARRIER);
    PyModule_AddIntConstant(m, "K_QUEUE", K_QUEUE);
    PyModule_AddStringConstant(m, "version", mproc_version());
    return m;
}
