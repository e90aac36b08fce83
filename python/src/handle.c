/* Boxes and handles: one process's references to the shared objects in the family arena. */
#include "core.h"

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
    case K_SHARED:
        mproc_shared_free(obj);
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

void box_decref(box *b)
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

PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_repr = (reprfunc)Handle_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A process's reference to a shared object in the family arena.",
    .tp_methods = handle_obj_methods,
};

/* A new handle of this process over b, holding one reference the caller
 * gives it. */
PyObject *handle_new(box *b, int kind)
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
PyObject *handle_wrap(int kind, void *obj, box *dep)
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
box *get_box(PyObject *o, unsigned mask)
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
box *box_arg(PyObject *args, unsigned mask, int *n)
{
    PyObject *o;
    if (!PyArg_ParseTuple(args, "Oi", &o, n)) return NULL;
    return get_box(o, mask);
}

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
void handles_before_fork(int delta)
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
void handles_after_fork(pid_t parent)
{
    pid_t me = getpid();
    for (Handle *h = live; h; h = h->next) h->owner = h->b && h->owner == parent ? me : 0;
}

/* At a child's end: gives back every reference this process holds. */
void handles_release_all(void)
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

PyMethodDef handle_methods[] = {
    {"handle_export", handle_export, METH_O, NULL},
    {"handle_import", handle_import, METH_VARARGS, NULL},
    {"release_all", py_release_all, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
