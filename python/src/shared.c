/* Shared values (the memory of Value, Array, RawValue, RawArray and
 * sharedctypes) and named shared memory (shared_memory.SharedMemory).
 *
 * A shared value's memory is a raw block of the core (mproc_shared_raw_new,
 * without a lock: the Python layer pairs it with an mproc Lock or RLock of
 * its own box, as Python pairs a RawValue with its lock) in a box of kind
 * K_SHARED; the Python layer builds a ctypes object over its address
 * (from_address), which holds the handle that keeps the block alive.
 *
 * A SharedMemory is an Shm object: the core's named segment, exposed
 * through the buffer protocol. Closing it while a view of it is exported
 * is Python's BufferError (as mmap.close), so that no view outlives the
 * mapping. */
#include "core.h"

#include <errno.h>
#include <structmember.h>

#define M_SHARED (1u << K_SHARED)

/* ---- shared values --------------------------------------------------------------- */

/* shared_new(size, align) -> Handle: a zeroed block of size bytes. */
static PyObject *shared_new(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t size, align;
    if (!PyArg_ParseTuple(args, "nn", &size, &align)) return NULL;
    if (size < 0 || align < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    if (align < 16) align = 16; /* as malloc: also for a ctypes type aligned less */
    mproc_shared *s;
    mproc_shared_opts o = {.lock_mode = MPROC_SHARED_NOLOCK};
    int rc = mproc_shared_raw_new(&s, size ? (size_t)size : 1, (size_t)align, &o);
    if (rc) return raise_rc(rc);
    return handle_wrap(K_SHARED, s, NULL);
}

/* shared_addr(h) -> int: the address of the block's bytes. */
static PyObject *shared_addr(PyObject *self, PyObject *o)
{
    (void)self;
    box *b = get_box(o, M_SHARED);
    if (!b) return NULL;
    return PyLong_FromVoidPtr(mproc_shared_ptr(b->obj));
}

/* ---- the synchronized wrappers' base ----------------------------------------------- */

/* The base of sharedctypes.SynchronizedBase: the ctypes object _obj and
 * its lock _lock, with get_obj, get_lock and the context manager in C;
 * SyncValue adds `value` (the object's value under the lock), so that
 * `with v.get_lock(): v.value += 1` calls no Python code. */
typedef struct SyncBase {
    PyObject_HEAD PyObject *obj;
    PyObject *lock;
} SyncBase;

static PyObject *sync_lock(SyncBase *s)
{
    if (!s->lock) PyErr_SetString(PyExc_AttributeError, "_lock");
    return s->lock;
}

static PyObject *SyncBase_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *lock = sync_lock((SyncBase *)self);
    if (!lock || lockobj_acquire(lock)) return NULL;
    Py_RETURN_TRUE;
}

static PyObject *SyncBase_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args, (void)nargs;
    PyObject *lock = sync_lock((SyncBase *)self);
    if (!lock || lockobj_release(lock)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *SyncBase_get_lock(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *lock = sync_lock((SyncBase *)self);
    Py_XINCREF(lock);
    return lock;
}

static PyObject *SyncBase_get_obj(PyObject *self, PyObject *unused)
{
    (void)unused;
    SyncBase *s = (SyncBase *)self;
    if (!s->obj) PyErr_SetString(PyExc_AttributeError, "_obj");
    Py_XINCREF(s->obj);
    return s->obj;
}

static int SyncBase_traverse(SyncBase *s, visitproc visit, void *arg)
{
    Py_VISIT(s->obj);
    Py_VISIT(s->lock);
    return 0;
}

static int SyncBase_clear(SyncBase *s)
{
    Py_CLEAR(s->obj);
    Py_CLEAR(s->lock);
    return 0;
}

static void SyncBase_dealloc(SyncBase *s)
{
    PyObject_GC_UnTrack(s);
    SyncBase_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef SyncBase_methods[] = {
    {"__enter__", SyncBase_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))SyncBase_exit, METH_FASTCALL, NULL},
    {"get_lock", SyncBase_get_lock, METH_NOARGS, "The lock."},
    {"get_obj", SyncBase_get_obj, METH_NOARGS, "The ctypes object."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef SyncBase_members[] = {
    {"_obj", T_OBJECT_EX, offsetof(SyncBase, obj), 0, "the ctypes object"},
    {"_lock", T_OBJECT_EX, offsetof(SyncBase, lock), 0, "its lock"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SyncBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.SyncBase",
    .tp_basicsize = sizeof(SyncBase),
    .tp_dealloc = (destructor)SyncBase_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)SyncBase_traverse,
    .tp_clear = (inquiry)SyncBase_clear,
    .tp_doc = "A ctypes object in shared memory and its lock.",
    .tp_methods = SyncBase_methods,
    .tp_members = SyncBase_members,
    .tp_new = PyType_GenericNew,
};

static PyObject *value_str; /* "value" */

/* A SyncValue of a plain C number (ctypes c_int, c_long, c_double) also
 * knows the number's address, and reads and writes it itself, as ctypes
 * would: an int is stored masked to the width (ctypes' get_long), a float
 * as it is. Other types, and a set of anything but an exact int (to c_int
 * or c_long) or an exact float (to c_double), go through the ctypes
 * object. The address is good while _obj is the object it was given for
 * (fast_obj holds that one). This is what `with v.get_lock(): v.value +=
 * 1` spends most of its time on while the lock is held. */
typedef struct SyncValue {
    SyncBase base;
    PyObject *fast_obj;
    void *addr;
    char code; /* 'i' int, 'l' long, 'd' double; 0: none */
} SyncValue;

static PyObject *fast_get(const SyncValue *s)
{
    switch (s->code) {
    case 'i':
        return PyLong_FromLong(*(const int *)s->addr);
    case 'l':
        return PyLong_FromLong(*(const long *)s->addr);
    default:
        return PyFloat_FromDouble(*(const double *)s->addr);
    }
}

/* 1 if v was stored, 0 if ctypes must store it, -1 with an exception. */
static int fast_set(const SyncValue *s, PyObject *v)
{
    if (s->code == 'd') {
        if (!PyFloat_CheckExact(v)) return 0;
        *(double *)s->addr = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    if (!PyLong_CheckExact(v)) return 0;
    unsigned long m = PyLong_AsUnsignedLongMask(v);
    if (m == (unsigned long)-1 && PyErr_Occurred()) return -1;
    if (s->code == 'i')
        *(int *)s->addr = (int)(unsigned)m;
    else
        *(long *)s->addr = (long)m;
    return 1;
}

static bool fast(const SyncValue *s)
{
    return s->code && s->base.obj == s->fast_obj;
}

static PyObject *SyncValue_get(PyObject *self, void *closure)
{
    (void)closure;
    SyncValue *sv = (SyncValue *)self;
    SyncBase *s = &sv->base;
    PyObject *lock = sync_lock(s);
    if (!lock || !SyncBase_get_obj(self, NULL)) return NULL;
    Py_DECREF(s->obj);
    bool mine = lockobj_rlock_owned(lock); /* `with v.get_lock(): v.value` */
    if (!mine && lockobj_acquire(lock)) return NULL;
    PyObject *v = fast(sv) ? fast_get(sv) : PyObject_GetAttr(s->obj, value_str);
    if (!mine && lockobj_release(lock)) Py_CLEAR(v);
    return v;
}

static int SyncValue_set(PyObject *self, PyObject *v, void *closure)
{
    (void)closure;
    SyncValue *sv = (SyncValue *)self;
    SyncBase *s = &sv->base;
    PyObject *lock = sync_lock(s);
    if (!lock || !SyncBase_get_obj(self, NULL)) return -1;
    Py_DECREF(s->obj);
    bool mine = lockobj_rlock_owned(lock);
    if (!mine && lockobj_acquire(lock)) return -1;
    int rc = v && fast(sv) ? fast_set(sv, v) : 0; /* v NULL: a del, ctypes' error */
    if (rc == 0)
        rc = PyObject_SetAttr(s->obj, value_str, v);
    else if (rc == 1)
        rc = 0;
    if (!mine && lockobj_release(lock)) rc = -1;
    return rc;
}

/* _fast(code, address): the current _obj is a number of type code ('i',
 * 'l' or 'd') at address (ctypes.addressof); later reads and writes of
 * `value` use the address while _obj stays that object. */
static PyObject *SyncValue_fast(PyObject *self, PyObject *args)
{
    SyncValue *sv = (SyncValue *)self;
    int code;
    unsigned long long addr;
    if (!PyArg_ParseTuple(args, "CK", &code, &addr)) return NULL;
    if (!code || !strchr("ild", code)) {
        PyErr_Format(PyExc_ValueError, "no fast access for type code %c", code);
        return NULL;
    }
    if (!sv->base.obj || !addr) {
        PyErr_SetString(PyExc_ValueError, "no object or no address");
        return NULL;
    }
    Py_INCREF(sv->base.obj);
    Py_XSETREF(sv->fast_obj, sv->base.obj);
    sv->addr = (void *)(uintptr_t)addr;
    sv->code = (char)code;
    Py_RETURN_NONE;
}

static int SyncValue_traverse(SyncValue *s, visitproc visit, void *arg)
{
    Py_VISIT(s->fast_obj);
    return SyncBase_traverse(&s->base, visit, arg);
}

static int SyncValue_clear(SyncValue *s)
{
    s->code = 0;
    Py_CLEAR(s->fast_obj);
    return SyncBase_clear(&s->base);
}

static void SyncValue_dealloc(SyncValue *s)
{
    PyObject_GC_UnTrack(s);
    SyncValue_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef SyncValue_methods[] = {
    {"_fast", SyncValue_fast, METH_VARARGS, "_fast(code, address): see shared.c."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef SyncValue_getset[] = {
    {"value", SyncValue_get, SyncValue_set, "The value, read and written under the lock.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SyncValueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.SyncValue",
    .tp_basicsize = sizeof(SyncValue),
    .tp_dealloc = (destructor)SyncValue_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)SyncValue_traverse,
    .tp_clear = (inquiry)SyncValue_clear,
    .tp_doc = "A ctypes object in shared memory and its lock, with `value`.",
    .tp_methods = SyncValue_methods,
    .tp_getset = SyncValue_getset,
    .tp_new = PyType_GenericNew,
};

/* ---- named shared memory --------------------------------------------------------- */

typedef struct Shm {
    PyObject_HEAD mproc_shm *m;
    Py_ssize_t exports;
    char name[256]; /* without the leading '/' */
} Shm;

/* Python's OSError subclass for a core error of the shm layer, naming the
 * segment as Python's shm_open does ("/name"). */
static PyObject *shm_error(int rc, const char *name)
{
    if (rc == MPROC_ENOMEM && !name) return PyErr_NoMemory();
    if (rc <= -1000) return raise_rc(rc); /* the library's own codes */
    PyObject *fn = name ? PyUnicode_FromFormat("/%s", name) : NULL;
    if (name && !fn) return NULL;
    PyObject *exc =
        PyObject_CallFunction(PyExc_OSError, "isO", -rc, strerror(-rc), fn ? fn : Py_None);
    Py_XDECREF(fn);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static int Shm_getbuffer(Shm *s, Py_buffer *view, int flags)
{
    if (!s->m) {
        PyErr_SetString(PyExc_ValueError, "shared memory is closed");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)s, mproc_shm_buf(s->m),
                          (Py_ssize_t)mproc_shm_size(s->m), 0, flags) < 0)
        return -1;
    s->exports++;
    return 0;
}

static void Shm_releasebuffer(Shm *s, Py_buffer *view)
{
    (void)view;
    s->exports--;
}

static PyBufferProcs Shm_as_buffer = {
    .bf_getbuffer = (getbufferproc)Shm_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Shm_releasebuffer,
};

static void Shm_dealloc(Shm *s)
{
    mproc_shm_close(s->m); /* no view can be exported: each holds a reference */
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyTypeObject ShmType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Shm",
    .tp_basicsize = sizeof(Shm),
    .tp_dealloc = (destructor)Shm_dealloc,
    .tp_as_buffer = &Shm_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A named shared memory segment mapped in this process.",
};

static Shm *get_shm(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &ShmType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc shared memory object is required");
        return NULL;
    }
    return (Shm *)o;
}

/* shm_open(name or None, create, size, track) -> (Shm, name, size). A
 * created segment is tracked by the core unless track is false (unlinked
 * if the family ends without unlinking it; Python 3.13's track=False) and
 * its memory reserved at once: a full /dev/shm is OSError(ENOSPC) here,
 * where Python's would raise SIGBUS on a later write. */
static PyObject *shm_open_(PyObject *self, PyObject *args)
{
    (void)self;
    const char *name;
    int create, track;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "zpnp", &name, &create, &size, &track)) return NULL;
    mproc_shm_opts o = {.persist = !track};
    Shm *s = PyObject_New(Shm, &ShmType);
    if (!s) return NULL;
    s->m = NULL;
    s->exports = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = create ? mproc_shm_create(&s->m, name, (size_t)size, &o) : mproc_shm_attach(&s->m, name);
    Py_END_ALLOW_THREADS;
    if (rc) {
        Py_DECREF(s);
        return shm_error(rc, name ? (name[0] == '/' ? name + 1 : name) : NULL);
    }
    snprintf(s->name, sizeof s->name, "%s", mproc_shm_name(s->m));
    return Py_BuildValue("Nsn", (PyObject *)s, s->name, (Py_ssize_t)mproc_shm_size(s->m));
}

/* shm_close(s): unmaps it; BufferError while a view is exported. */
static PyObject *shm_close_(PyObject *self, PyObject *o)
{
    (void)self;
    Shm *s = get_shm(o);
    if (!s) return NULL;
    if (s->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "cannot close exported pointers exist");
        return NULL;
    }
    mproc_shm_close(s->m);
    s->m = NULL;
    Py_RETURN_NONE;
}

/* shm_unlink(s): removes the segment's name (also after close: then through
 * a new attachment, so that only this segment's name goes). */
static PyObject *shm_unlink_(PyObject *self, PyObject *o)
{
    (void)self;
    Shm *s = get_shm(o);
    if (!s) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    if (s->m) {
        rc = mproc_shm_unlink(s->m);
    } else {
        mproc_shm *m;
        rc = mproc_shm_attach(&m, s->name);
        if (rc == 0) {
            rc = mproc_shm_unlink(m);
            mproc_shm_close(m);
        }
    }
    Py_END_ALLOW_THREADS;
    if (rc) return shm_error(rc, s->name);
    Py_RETURN_NONE;
}

PyMethodDef shared_methods[] = {
    {"shared_new", shared_new, METH_VARARGS, NULL}, {"shared_addr", shared_addr, METH_O, NULL},
    {"shm_open", shm_open_, METH_VARARGS, NULL},    {"shm_close", shm_close_, METH_O, NULL},
    {"shm_unlink", shm_unlink_, METH_O, NULL},      {NULL, NULL, 0, NULL},
};

/* Readies SyncBase and SyncValue and adds them to the module m: 0, or -1. */
int shared_add_types(PyObject *m)
{
    value_str = PyUnicode_InternFromString("value");
    if (!value_str) return -1;
    SyncValueType.tp_base = &SyncBaseType;
    if (PyType_Ready(&SyncBaseType) < 0 || PyType_Ready(&SyncValueType) < 0 ||
        PyType_Ready(&ShmType) < 0)
        return -1;
    Py_INCREF(&SyncBaseType);
    if (PyModule_AddObject(m, "SyncBase", (PyObject *)&SyncBaseType)) {
        Py_DECREF(&SyncBaseType);
        return -1;
    }
    Py_INCREF(&SyncValueType);
    if (PyModule_AddObject(m, "SyncValue", (PyObject *)&SyncValueType)) {
        Py_DECREF(&SyncValueType);
        return -1;
    }
    return 0;
}
