/* A queue message's encoding (queue.c): marshal's for plain builtin
 * values, a pickle for everything else.
 *
 * Most messages on a queue are small tuples of numbers and strings, and
 * marshal writes and reads those in about half the time pickle takes
 * (docs/python.md). Marshal is used only for a value of a few hundred
 * objects at most (PLAIN_BUDGET), built entirely of the exact builtin
 * types it writes as they are: None, bool, int, float,
 * complex, str, bytes, and tuples, lists and dicts of them. Anything else
 * is pickled (a set too, see plain()): a subclass (which marshal refuses), a
 * bytearray or any other buffer (which marshal would turn into bytes), a
 * code object (which pickle refuses). Marshal keeps what pickle keeps of
 * such a value: the types, the order of a dict, and an object met twice
 * (it is one object again after the round trip).
 *
 * The two are told apart by the first byte: a pickle of protocol 2 or
 * more starts with PROTO (0x80); marshal's first byte is a type code
 * (an ASCII letter or sign), possibly with its reference flag (0x80) set,
 * and is never 0x80 itself. The format is private to mproc's queues: only
 * Queue.get reads what Queue.put writes, in the same interpreter build. */
#include "core.h"

#include <marshal.h>

/* Marshal is used for values of at most PLAIN_BUDGET objects (containers
 * and what they hold, counted along every path: a structure that shares
 * its parts may have far more paths than objects, and a recursive one has
 * no end), nested at most PLAIN_DEPTH deep. A larger value is pickled:
 * what marshal saves is the cost of a call (making a pickler, its memo and
 * its frames), and past a few hundred objects the cost per object rules,
 * where marshal's table of objects written (an int below 257 or an
 * interned str is one object met many times) makes it no faster than
 * pickle, and for a list of small ints slower. */
#define PLAIN_DEPTH  32
#define PLAIN_BUDGET 256L

/* A small value (see small()) is written in marshal's version 2, which
 * keeps no table of the objects written (versions 3 and on allocate one
 * per call, a third of the cost of a small tuple's round trip). */
#define SMALL_ITEMS   16
#define SMALL_ATOM    256 /* characters of a str, bytes of a bytes */
#define SMALL_VERSION 2

#define SMALL_COPY ((size_t)4096) /* a pickle unpickled from a copy up to this size */

static PyObject *pk_dumps, *pk_loads, *pk_proto;

int codec_ready(void)
{
    if (pk_proto) return 0;
    PyObject *pickle = PyImport_ImportModule("pickle");
    if (!pickle) return -1;
    pk_dumps = PyObject_GetAttrString(pickle, "dumps");
    pk_loads = PyObject_GetAttrString(pickle, "loads");
    PyObject *proto = PyObject_GetAttrString(pickle, "HIGHEST_PROTOCOL");
    Py_DECREF(pickle);
    if (pk_dumps && pk_loads && proto) {
        pk_proto = proto;
        return 0;
    }
    Py_XDECREF(proto);
    Py_CLEAR(pk_dumps);
    Py_CLEAR(pk_loads);
    return -1;
}

static int plain(PyObject *o, int depth, long *budget);

static int plain_items(PyObject *const *items, Py_ssize_t n, int depth, long *budget)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!plain(items[i], depth, budget)) return 0;
    return 1;
}

/* True if marshal writes o, and all it holds, as exactly what they are.
 * Allocates no object, so no garbage collection (and no __del__ in it) can
 * run and change o between this check and its writing. That is also why a
 * set is not plain: its check would need an iterator object, and marshal
 * makes a list to write it. (Marshal first raises its audit event: a hook
 * that changed the value it is shown would have it written as changed.) */
static int plain(PyObject *o, int depth, long *budget)
{
    PyTypeObject *t = Py_TYPE(o);
    if (--*budget < 0) return 0;
    if (o == Py_None || t == &PyBool_Type || t == &PyLong_Type || t == &PyFloat_Type ||
        t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyComplex_Type)
        return 1;
    if (depth == 0) return 0;
    if (t == &PyTuple_Type)
        return plain_items(&PyTuple_GET_ITEM(o, 0), PyTuple_GET_SIZE(o), depth - 1, budget);
    if (t == &PyList_Type)
        return plain_items(PySequence_Fast_ITEMS(o), PyList_GET_SIZE(o), depth - 1, budget);
    if (t == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v))
            if (!plain(k, depth - 1, budget) || !plain(v, depth - 1, budget)) return 0;
        return 1;
    }
    return 0;
}

/* True for a small atom: a value of a plain type (see plain()) other than a
 * container, whose copies cost little. */
static int small_atom(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None || t == &PyBool_Type || t == &PyFloat_Type || t == &PyComplex_Type) return 1;
    if (t == &PyLong_Type) {
        int overflow;
        (void)PyLong_AsLongAndOverflow(o, &overflow);
        return !overflow;
    }
    if (t == &PyUnicode_Type) return PyUnicode_GET_LENGTH(o) <= SMALL_ATOM;
    if (t == &PyBytes_Type) return PyBytes_GET_SIZE(o) <= SMALL_ATOM;
    return 0;
}

/* True for a small atom, or a tuple or list of at most SMALL_ITEMS of them.
 * Without the table of objects written, an object met twice is written
 * twice and read back as two. That cannot be seen for such a value: it
 * holds no container but itself, and its atoms are immutable and small
 * (a copy is cheap, and pickle would not share an int or a float either). */
static int small(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (t == &PyTuple_Type || t == &PyList_Type) {
        Py_ssize_t n = Py_SIZE(o);
        if (n > SMALL_ITEMS) return 0;
        PyObject *const *items = PySequence_Fast_ITEMS(o);
        for (Py_ssize_t i = 0; i < n; i++)
            if (!small_atom(items[i])) return 0;
        return 1;
    }
    return small_atom(o);
}

PyObject *codec_dumps(PyObject *obj)
{
    if (small(obj)) return PyMarshal_WriteObjectToString(obj, SMALL_VERSION);
    long budget = PLAIN_BUDGET;
    if (plain(obj, PLAIN_DEPTH, &budget))
        return PyMarshal_WriteObjectToString(obj, Py_MARSHAL_VERSION);
    PyObject *args[2] = {obj, pk_proto};
    PyObject *pk = PyObject_Vectorcall(pk_dumps, args, 2, NULL);
    if (pk && !PyBytes_Check(pk)) {
        Py_DECREF(pk);
        PyErr_SetString(PyExc_TypeError, "pickle.dumps did not return bytes");
        return NULL;
    }
    return pk;
}

PyObject *codec_loads(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len > 0 && p[0] != 0x80)
        return PyMarshal_ReadObjectFromString((const char *)buf, (Py_ssize_t)len);
    /* A small pickle as bytes (one object to make, not two), a larger one
     * seen where it is. */
    PyObject *view = len <= SMALL_COPY
                         ? PyBytes_FromStringAndSize(buf, (Py_ssize_t)len)
                         : PyMemoryView_FromMemory((char *)buf, (Py_ssize_t)len, PyBUF_READ);
    if (!view) return NULL;
    PyObject *r = PyObject_Vectorcall(pk_loads, &view, 1, NULL);
    Py_DECREF(view);
    return r;
}

/* ---- for Python: a pool's results ---------------------------------------------------- */

/* codec_dumps(obj) -> bytes */
static PyObject *py_codec_dumps(PyObject *self, PyObject *obj)
{
    (void)self;
    return codec_ready() ? NULL : codec_dumps(obj);
}

/* codec_loads(data: bytes) -> object */
static PyObject *py_codec_loads(PyObject *self, PyObject *data)
{
    (void)self;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "codec_loads(data): data must be bytes");
        return NULL;
    }
    return codec_ready() ? NULL
                         : codec_loads(PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
}

PyMethodDef codec_methods[] = {
    {"codec_dumps", py_codec_dumps, METH_O, NULL},
    {"codec_loads", py_codec_loads, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
