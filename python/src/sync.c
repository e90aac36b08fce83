/* Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier. */
#include "core.h"

#include <structmember.h>

WAIT_FN(lock_wait, mproc_lock_acquire)
WAIT_FN(sem_wait, mproc_sem_acquire)
WAIT_FN(cond_wait_fn, mproc_cond_wait)
WAIT_FN(event_wait_fn, mproc_event_wait)

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
 * (Python would hang). lock_acquired: the same from the outcome rc of a
 * first attempt that did not wait. */
static PyObject *lock_acquired(box *b, int ms, int rc)
{
    if (rc == MPROC_ETIMEDOUT && ms != 0) rc = sliced(lock_wait, b->obj, ms);
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

static PyObject *lock_acquire_ms(box *b, int ms)
{
    return lock_acquired(b, ms, mproc_lock_acquire(b->obj, 0));
}

static PyObject *lock_acquire(PyObject *self, PyObject *args)
{
    (void)self;
    int ms;
    box *b = box_arg(args, M_LOCK, &ms);
    if (!b) return NULL;
    return lock_acquire_ms(b, ms);
}

/* The outcome of box b's mproc_lock_release, rc, as Python's. */
static PyObject *lock_released(box *b, int rc)
{
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

static PyObject *lock_release(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_LOCK);
    if (!b) return NULL;
    return lock_released(b, mproc_lock_release(b->obj));
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

/* ---- Handle.acquire and Handle.release ------------------------------------------- */

/* h.acquire(block=True, timeout=None): Lock.acquire or Semaphore.acquire,
 * Python's signature, in one call. */
static PyObject *h_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    if (nargs == 0 && !kwnames) { /* acquire(): the common call, one try first */
        box *b = get_box(self, M_LOCK | M_SEM);
        if (!b) return NULL;
        if ((1u << b->kind) & M_LOCK) return lock_acquired(b, -1, mproc_lock_acquire(b->obj, 0));
        return bool_result(try_then_sliced(sem_wait, b->obj, -1));
    }
    PyObject *a[2] = {Py_True, Py_None};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 arguments (%zd given)",
                     nargs + nkw);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        int at = PyUnicode_CompareWithASCIIString(k, "block") == 0     ? 0
                 : PyUnicode_CompareWithASCIIString(k, "timeout") == 0 ? 1
                                                                       : -1;
        if (at < 0 || at < nargs) {
            PyErr_Format(PyExc_TypeError,
                         at < 0 ? "acquire() got an unexpected keyword argument '%U'"
                                : "acquire() got multiple values for argument '%U'",
                         k);
            return NULL;
        }
        a[at] = args[nargs + i];
    }
    int ms;
    box *b = get_box(self, M_LOCK | M_SEM);
    if (!b || py_timeout_ms(a[0], a[1], &ms)) return NULL;
    if ((1u << b->kind) & M_LOCK) return lock_acquire_ms(b, ms);
    return bool_result(try_then_sliced(sem_wait, b->obj, ms));
}

/* h.release(): Lock.release or Semaphore.release. */
static PyObject *h_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    box *b = get_box(self, M_LOCK | M_SEM);
    if (!b) return NULL;
    return (1u << b->kind) & M_LOCK ? lock_released(b, mproc_lock_release(b->obj))
                                    : sem_release(NULL, self);
}

PyMethodDef handle_obj_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))h_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(block=True, timeout=None): a Lock's or a Semaphore's acquire."},
    {"release", h_release, METH_NOARGS, "release(): a Lock's or a Semaphore's release."},
    {NULL, NULL, 0, NULL},
};

PyMethodDef sync_methods[] = {
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
    {NULL, NULL, 0, NULL},
};

/* ---- LockBase: Lock's context manager in C; blocking acquires from C ------------- */

/* How long a blocking acquire from C that finds the lock held spins,
 * trying again each time the lock looks free, before it sleeps: a
 * critical section of a few hundred nanoseconds (a Value's increment) is
 * then entered without a futex sleep and wake-up, which cost microseconds
 * each. */
#define SPIN_NS 20000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Acquires the lock of box b with no timeout: one attempt, then a bounded
 * spin while another holds it, then sliced sleeps. 0, or -1 with the
 * exception set (a Lock this thread holds: RuntimeError, as lock_acquire
 * without a timeout). */
static int lock_acquire_blocking(box *b)
{
    mproc_lock *l = b->obj;
    int rc = mproc_lock_acquire(l, 0);
    long long end = 0;
    for (unsigned i = 1; rc == MPROC_ETIMEDOUT; i++) {
        if (!mproc_lock_locked(l)) {
            rc = mproc_lock_acquire(l, 0);
            continue;
        }
        cpu_relax();
        if ((i & 63) == 0) {
            long long now = mproc_now_ns();
            if (!end) {
                end = now + SPIN_NS;
            } else if (now >= end) {
                rc = sliced(lock_wait, l, -1);
                break;
            }
        }
    }
    if (rc == 0) return 0;
    if (rc == MPROC_EDEADLK) {
        PyErr_SetString(PyExc_RuntimeError,
                        "deadlock: this thread already holds the Lock (Python would hang)");
        return -1;
    }
    if (rc != 1) raise_rc(rc);
    return -1;
}

/* The base of synchronize.Lock: the handle in _h, and __enter__ and
 * __exit__ in C, so that `with lock:` runs no Python code. */
typedef struct LockBase {
    PyObject_HEAD PyObject *h;
} LockBase;

static box *lockbase_box(PyObject *self)
{
    PyObject *h = ((LockBase *)self)->h;
    if (!h) {
        PyErr_SetString(PyExc_ValueError, "the lock is not initialised");
        return NULL;
    }
    return get_box(h, M_LOCK);
}

static PyObject *LockBase_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    box *b = lockbase_box(self);
    if (!b || lock_acquire_blocking(b)) return NULL;
    Py_RETURN_TRUE;
}

/* __exit__(*exc_info): fast-call, so that no tuple is made for its three
 * arguments. */
static PyObject *LockBase_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args, (void)nargs;
    box *b = lockbase_box(self);
    return b ? lock_released(b, mproc_lock_release(b->obj)) : NULL;
}

/* lock.acquire(block=True, timeout=None) and lock.release(): methods of
 * the type, not bound methods kept in each instance as Python's SemLock
 * keeps them, so that the interpreter's method cache finds them. acquire()
 * with no argument, the common call, is the context manager's. */
static PyObject *LockBase_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    box *b = lockbase_box(self);
    if (!b) return NULL;
    if (nargs == 0 && !kwnames) {
        if (lock_acquire_blocking(b)) return NULL;
        Py_RETURN_TRUE;
    }
    return h_acquire(((LockBase *)self)->h, args, nargs, kwnames);
}

static PyObject *LockBase_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    box *b = lockbase_box(self);
    return b ? lock_released(b, mproc_lock_release(b->obj)) : NULL;
}

static void LockBase_dealloc(LockBase *l)
{
    Py_CLEAR(l->h);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef LockBase_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))LockBase_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(block=True, timeout=None) -> bool: Python's Lock.acquire. Beyond Python: if the\n"
     "holder died, OwnerDiedError with the lock held (make_consistent() recovers it)."},
    {"release", LockBase_release, METH_NOARGS, "release(): Python's Lock.release."},
    {"__enter__", LockBase_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))LockBase_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef LockBase_members[] = {
    {"_h", T_OBJECT_EX, offsetof(LockBase, h), 0, "the lock's handle"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject LockBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.LockBase",
    .tp_basicsize = sizeof(LockBase),
    .tp_dealloc = (destructor)LockBase_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The handle (_h) and the context manager of an mproc Lock or RLock.",
    .tp_methods = LockBase_methods,
    .tp_members = LockBase_members,
    .tp_new = PyType_GenericNew,
};

/* For shared.c: acquires (no timeout) / releases a lock object: in C for
 * an mproc Lock or RLock, else through its acquire() / release(). 0, or -1
 * with the exception set. */
int lockobj_acquire(PyObject *lock)
{
    if (PyObject_TypeCheck(lock, &LockBaseType)) {
        box *b = lockbase_box(lock);
        return b ? lock_acquire_blocking(b) : -1;
    }
    PyObject *r = PyObject_CallMethod(lock, "acquire", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

bool lockobj_rlock_owned(PyObject *lock)
{
    if (!PyObject_TypeCheck(lock, &LockBaseType)) return false;
    PyObject *h = ((LockBase *)lock)->h;
    box *b = h ? get_box(h, M_LOCK) : NULL;
    if (!b) {
        PyErr_Clear();
        return false;
    }
    return b->kind == K_RLOCK && mproc_lock_owned(b->obj);
}

int lockobj_release(PyObject *lock)
{
    PyObject *r = PyObject_TypeCheck(lock, &LockBaseType)
                      ? LockBase_release(lock, NULL)
                      : PyObject_CallMethod(lock, "release", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Readies LockBase and adds it to the module m: 0, or -1. */
int sync_add_types(PyObject *m)
{
    if (PyType_Ready(&LockBaseType) < 0) return -1;
    Py_INCREF(&LockBaseType);
    if (PyModule_AddObject(m, "LockBase", (PyObject *)&LockBaseType)) {
        Py_DECREF(&LockBaseType);
        return -1;
    }
    return 0;
}
