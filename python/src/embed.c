/* Start methods, and the hooks by which spawn and forkserver children start as Python interpreters.
 */
#include "core.h"

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

static PyObject *embed_is_server(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyBool_FromLong(mproc_embed_child_is_server());
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

PyMethodDef embed_methods[] = {
    {"cpu_count", cpu_count, METH_NOARGS, NULL},
    {"all_start_methods", all_start_methods, METH_NOARGS, NULL},
    {"set_start_method", set_start_method, METH_VARARGS, NULL},
    {"embed_set_argv", embed_set_argv, METH_O, NULL},
    {"embed_pending", embed_pending, METH_NOARGS, NULL},
    {"embed_is_server", embed_is_server, METH_NOARGS, NULL},
    {"embed_child_main", embed_child_main, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
