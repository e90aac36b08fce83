/* Errors as Python exceptions, and waits in slices that see signals. */
#include "core.h"

PyObject *OwnerDiedError, *NotRecoverableError, *BrokenBarrierError;

/* ---- errors ------------------------------------------------------------------ */

/* Sets the Python exception for an mproc error code and returns NULL. */
PyObject *raise_rc(int rc)
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
int sliced(wait_fn fn, void *ctx, int timeout_ms)
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
int try_then_sliced(wait_fn fn, void *ctx, int timeout_ms)
{
    int rc = fn(ctx, 0);
    if (rc == MPROC_ETIMEDOUT && timeout_ms != 0) rc = sliced(fn, ctx, timeout_ms);
    return rc;
}

/* The core's milliseconds of Python's (block, timeout), as synchronize._ms:
 * 0 or -1 (an exception set). */
int py_timeout_ms(PyObject *block, PyObject *timeout, int *ms)
{
    if (block == Py_True && timeout == Py_None) { /* the common call, at once */
        *ms = -1;
        return 0;
    }
    int blocking = PyObject_IsTrue(block);
    if (blocking < 0) return -1;
    if (!blocking) {
        *ms = 0;
        return 0;
    }
    if (timeout == Py_None) {
        *ms = -1;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred()) return -1;
    if (!(t > 0)) {
        *ms = 0;
        return 0;
    }
    double v = t * 1000 + 0.999;
    *ms = v >= 2147483647.0 ? 2147483647 : v < 1 ? 1 : (int)v;
    return 0;
}

/* The result of a timed wait: True (done), False (timed out), NULL if a
 * signal handler raised (rc 1) or for an error. */
PyObject *bool_result(int rc)
{
    if (rc == 1) return NULL;
    if (rc == 0) Py_RETURN_TRUE;
    if (rc == MPROC_ETIMEDOUT) Py_RETURN_FALSE;
    return raise_rc(rc);
}

/* A wait_fn over a core call f(obj, ms). */
