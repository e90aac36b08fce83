/* Processes: fork children copy the interpreter; spawn and forkserver children run mproc._child. */
#include "core.h"

WAIT_FN(pjoin_fn, mproc_process_join)

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

PyTypeObject ProcType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Proc",
    .tp_basicsize = sizeof(Proc),
    .tp_dealloc = (destructor)Proc_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A child process of the core.",
};

pid_t embed_pid; /* the process that called embed_child_main */

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
    py_pid = getpid();
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
        py_pid = getpid();
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
        /* The child is a copy of this interpreter: as os.fork does (the
         * fork start method's hooks call PyOS_BeforeFork and
         * PyOS_AfterFork_Parent around the fork, see pool.c). */
        handles_before_fork(1);
        rc = mproc_process_start(p);
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

PyMethodDef process_methods[] = {
    {"process_new", process_new, METH_VARARGS, NULL},
    {"process_start", process_start, METH_O, NULL},
    {"process_join", process_join, METH_VARARGS, NULL},
    {"process_op", process_op, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
