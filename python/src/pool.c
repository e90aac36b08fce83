/* Pools, executors and futures (docs/python.md, "Pools and futures"): the
 * core's pool dispatches; a task is a pickle handed to py_task, which in
 * the worker unpickles, calls and returns the outcome encoded as a queue
 * message (codec.c; mproc._poolworker does the Python part).
 *
 * A worker is an interpreter: under fork a copy of this one, forked by the
 * core in whichever thread starts it (a pool's internal thread when it
 * replaces a worker), which is why the fork start method's hooks take the
 * GIL there; under spawn and forkserver a new one started by the embedding
 * hook, whose initializer (py_init) prepares it as a spawn child is
 * prepared. The core's pool lock may be held while a hook waits for the
 * GIL: every call into the pool here releases the GIL first. */
#include "core.h"

pid_t py_pid; /* the process whose interpreter is set up (see py_enter) */

/* ---- the fork start method's hooks -------------------------------------------------- */

static _Thread_local PyGILState_STATE hook_gil;
static _Thread_local int hook_held;

static int finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

static void flush_std(void);

/* Before the core forks a child of this interpreter (a pool's worker, its
 * replacement, a Process): Python's own fork preparation, after
 * sys.stdout and sys.stderr are flushed, so that the child does not write
 * again what this process printed (Python's Popen flushes them too). */
static void fork_before(void)
{
    hook_held = !finalizing();
    if (!hook_held) return;
    hook_gil = PyGILState_Ensure();
    flush_std();
    PyOS_BeforeFork();
}

static void fork_after_parent(void)
{
    if (!hook_held) return;
    PyOS_AfterFork_Parent();
    PyGILState_Release(hook_gil);
}

void pool_install_hooks(void)
{
    py_pid = getpid();
    mproc_embed_set_fork_start_hooks(fork_before, fork_after_parent);
}

/* ---- the worker side ------------------------------------------------------------------ */

/* In a worker, before any Python: a fork copy (from this interpreter or a
 * forkserver's) finishes the fork as os.fork does, and holds no
 * references of the parent's handles (the pool's owner keeps its
 * initargs alive). Between tasks the worker waits without the GIL
 * (py_leave), so that its other threads run, as in Python's workers. */
static PyThreadState *idle_ts; /* the worker's thread state while it waits */
static PyObject *run_fn;       /* _poolworker.run, in this worker */

static void py_enter(void)
{
    if (py_pid != getpid()) {
        PyOS_AfterFork_Child();
        handles_after_fork(-1);
        py_pid = getpid();
        idle_ts = NULL;
        run_fn = NULL;
        return;
    }
    if (idle_ts) {
        PyEval_RestoreThread(idle_ts);
        idle_ts = NULL;
    }
}

static void py_leave(void)
{
    idle_ts = PyEval_SaveThread();
}

static PyObject *worker_fn(const char *name)
{
    PyObject *mod = PyImport_ImportModule("mproc._poolworker");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    return fn;
}

/* sys.stdout and sys.stderr flushed, errors ignored. */
static void flush_std(void)
{
    const char *names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
}

/* SystemExit out of a worker's call (sys.exit in the task, or in an
 * object it unpickles): the worker ends at once with its code, as
 * Python's child processes end (os._exit after the process's bootstrap),
 * without the interpreter's finalization: a fork of a program with
 * threads, pools or exit hooks may hang there, and the task would wait
 * for it. The pool sees the worker die (WorkerDiedError) and replaces it. */
static void exit_if_system_exit(void)
{
    if (!PyErr_ExceptionMatches(PyExc_SystemExit)) return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *code = v ? PyObject_GetAttrString(v, "code") : NULL;
    PyErr_Clear();
    int status = 1;
    if (!code || code == Py_None) {
        status = code ? 0 : 1;
    } else if (PyLong_Check(code)) {
        status = (int)PyLong_AsLong(code);
        PyErr_Clear();
    } else {
        PyObject *f = PySys_GetObject("stderr"); /* borrowed */
        if (f && f != Py_None) {
            PyFile_WriteObject(code, f, Py_PRINT_RAW);
            PyFile_WriteString("\n", f);
        }
        PyErr_Clear();
    }
    flush_std();
    _exit(status & 0xff);
}

/* A failed Python call in a worker: the exception printed, the task failed
 * with its text (SystemExit: exit_if_system_exit). */
static int py_fail(const char *what)
{
    exit_if_system_exit();
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *s = v ? PyObject_Repr(v) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    int rc = mproc_task_fail("%s: %s", what, msg ? msg : "?");
    Py_XDECREF(s);
    PyErr_Clear();
    PyErr_Restore(t, v, tb);
    PyErr_Print();
    return rc;
}

/* A task: arg is the pickle of (kind, func, args, kwargs); the result is
 * (ok, value) encoded by codec_dumps. */
static int py_task(const void *arg, size_t arglen, mproc_result *res)
{
    py_enter();
    if (!run_fn && !(run_fn = worker_fn("run"))) {
        int rc = py_fail("mproc._poolworker");
        py_leave();
        return rc;
    }
    PyObject *b = PyBytes_FromStringAndSize(arg, (Py_ssize_t)arglen);
    PyObject *r = b ? PyObject_CallOneArg(run_fn, b) : NULL;
    Py_XDECREF(b);
    int rc;
    if (!r || !PyBytes_Check(r)) {
        Py_XDECREF(r);
        rc = py_fail("the task");
    } else {
        rc = mproc_result_set(res, PyBytes_AS_STRING(r), (size_t)PyBytes_GET_SIZE(r));
        Py_DECREF(r);
    }
    py_leave();
    return rc;
}

/* The initializer of every worker: arg is 'F' and a pointer to the tuple
 * (None, initializer, initargs) (fork: the owner keeps it alive), or 'S'
 * and the pickle of (preparation data, pickled (initializer, initargs)). */
static int py_init(const void *arg, size_t arglen, mproc_result *res)
{
    (void)res;
    py_enter();
    if (arglen < 1) return mproc_task_fail("bad pool initializer argument");
    const char *a = arg;
    PyObject *data;
    if (a[0] == 'F' && arglen == 1 + sizeof(PyObject *)) {
        memcpy(&data, a + 1, sizeof data);
        Py_INCREF(data);
    } else {
        data = PyBytes_FromStringAndSize(a + 1, (Py_ssize_t)arglen - 1);
    }
    PyObject *init = data ? worker_fn("init") : NULL;
    PyObject *r = init ? PyObject_CallOneArg(init, data) : NULL;
    Py_XDECREF(init);
    Py_XDECREF(data);
    handles_after_fork(-1); /* imported handles: the owner's references */
    int rc = 0;
    if (!r)
        rc = py_fail("the pool's initializer failed");
    else
        Py_DECREF(r);
    py_leave();
    return rc;
}

/* ---- futures --------------------------------------------------------------------------- */

typedef struct Fut {
    PyObject_HEAD mproc_future *f;
} Fut;

static void Fut_dealloc(Fut *o)
{
    mproc_future_free(o->f);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

PyTypeObject FutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Fut",
    .tp_basicsize = sizeof(Fut),
    .tp_dealloc = (destructor)Fut_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A future of the core.",
};

static PyObject *fut_wrap(mproc_future *f)
{
    Fut *o = PyObject_New(Fut, &FutType);
    if (!o) {
        mproc_future_free(f);
        return NULL;
    }
    o->f = f;
    return (PyObject *)o;
}

static mproc_future *get_fut(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &FutType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc future is required");
        return NULL;
    }
    return ((Fut *)o)->f;
}

/* The outcome of a done future as (code, bytes or None, message or None,
 * pid). */
static PyObject *outcome(mproc_future *f)
{
    const void *buf = NULL;
    size_t len = 0;
    int rc = mproc_future_result(f, &buf, &len, 0);
    if (rc == 0)
        return Py_BuildValue("(iy#Oi)", 0, buf ? (const char *)buf : "", (Py_ssize_t)len, Py_None,
                             0);
    int code = rc;
    const char *msg = NULL;
    pid_t pid = 0;
    if (rc == MPROC_ETIMEDOUT) return Py_BuildValue("(iOOi)", rc, Py_None, Py_None, 0);
    (void)mproc_future_error(f, &code, &msg, &pid);
    return Py_BuildValue("(iOsi)", rc, Py_None, msg ? msg : mproc_strerror(rc), (int)pid);
}

/* A done callback: userdata is a callable (a reference), called with the
 * outcome in the completing thread. */
static void done_cb(mproc_future *f, void *userdata)
{
    if (finalizing()) return;
    /* The core's result thread completes every future: it keeps the thread
     * state PyGILState_Ensure made for it (one more Ensure, never
     * released), rather than a new one per callback. */
    static _Thread_local int kept;
    if (!kept) {
        kept = 1;
        (void)PyGILState_Ensure();
        PyEval_SaveThread();
    }
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *cb = userdata, *o = outcome(f);
    PyObject *r = o ? PyObject_CallOneArg(cb, o) : NULL;
    if (!r) PyErr_WriteUnraisable(cb);
    Py_XDECREF(r);
    Py_XDECREF(o);
    Py_DECREF(cb);
    PyGILState_Release(g);
}

static int add_cb(mproc_future *f, PyObject *cb)
{
    if (cb == Py_None) return 0;
    Py_INCREF(cb);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mproc_future_add_done_callback(f, done_cb, cb);
    Py_END_ALLOW_THREADS if (rc) Py_DECREF(cb);
    return rc;
}

/* future_add_cb(f, callback): callback(outcome) once f is done (at once,
 * here, if it is). */
static PyObject *future_add_cb(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o, *cb;
    if (!PyArg_ParseTuple(args, "OO", &o, &cb)) return NULL;
    mproc_future *f = get_fut(o);
    if (!f) return NULL;
    int rc = add_cb(f, cb);
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

static int fwait_fn(void *ctx, int ms)
{
    return mproc_future_wait(ctx, ms);
}

/* future_result(f, timeout_ms) -> (code, bytes, msg, pid); code
 * MPROC_ETIMEDOUT while not done. */
static PyObject *future_result(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    int ms;
    if (!PyArg_ParseTuple(args, "Oi", &o, &ms)) return NULL;
    mproc_future *f = get_fut(o);
    if (!f) return NULL;
    int rc = try_then_sliced(fwait_fn, f, ms);
    if (rc == 1) return NULL;
    if (rc && rc != MPROC_ETIMEDOUT) return raise_rc(rc);
    return outcome(f);
}

/* future_op(f, op): 0 done, 1 running, 2 successful, 3 cancelled, 4 cancel
 * (-> the core's code). */
static PyObject *future_op(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o;
    int op, rc;
    if (!PyArg_ParseTuple(args, "Oi", &o, &op)) return NULL;
    mproc_future *f = get_fut(o);
    if (!f) return NULL;
    switch (op) {
    case 0:
        return PyBool_FromLong(mproc_future_done(f));
    case 1:
        return PyBool_FromLong(mproc_future_running(f));
    case 2:
        return PyBool_FromLong(mproc_future_successful(f));
    case 3:
        return PyBool_FromLong(mproc_future_cancelled(f));
    case 4:
        Py_BEGIN_ALLOW_THREADS rc = mproc_future_cancel(f);
        Py_END_ALLOW_THREADS return PyLong_FromLong(rc);
    }
    PyErr_SetString(PyExc_ValueError, "bad future operation");
    return NULL;
}

/* ---- pools ------------------------------------------------------------------------------ */

typedef struct PoolObj {
    PyObject_HEAD mproc_pool *p;
    mproc_executor *x;
    PyObject *init; /* fork: what the workers' py_init reads */
} PoolObj;

static void PoolObj_dealloc(PoolObj *o)
{
    mproc_pool *p = o->p;
    mproc_executor *x = o->x;
    Py_BEGIN_ALLOW_THREADS mproc_pool_free(p);
    mproc_executor_free(x);
    Py_END_ALLOW_THREADS Py_XDECREF(o->init);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

PyTypeObject PoolObjType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mproc._core.Pool",
    .tp_basicsize = sizeof(PoolObj),
    .tp_dealloc = (destructor)PoolObj_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pool or process executor of the core.",
};

static PoolObj *get_pool(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &PoolObjType)) {
        PyErr_SetString(PyExc_TypeError, "an mproc pool is required");
        return NULL;
    }
    return (PoolObj *)o;
}

/* pool_new(method, processes, maxtasks, init, executor) -> Pool. init: the
 * tuple (None, initializer, initargs) under fork, else bytes. */
static PyObject *pool_new(PyObject *self, PyObject *args)
{
    (void)self;
    const char *method;
    int n, executor;
    unsigned maxtasks;
    PyObject *init;
    if (!PyArg_ParseTuple(args, "siIOp", &method, &n, &maxtasks, &init, &executor)) return NULL;
    const mproc_context *ctx;
    if (mproc_get_context(method, &ctx)) {
        PyErr_Format(PyExc_ValueError, "cannot find context for %R", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    char *ia;
    size_t ialen;
    if (PyBytes_Check(init)) {
        ialen = 1 + (size_t)PyBytes_GET_SIZE(init);
        ia = malloc(ialen);
        if (ia) memcpy(ia + 1, PyBytes_AS_STRING(init), ialen - 1);
        if (ia) ia[0] = 'S';
    } else {
        ialen = 1 + sizeof init;
        ia = malloc(ialen);
        if (ia) memcpy(ia + 1, &init, sizeof init);
        if (ia) ia[0] = 'F';
    }
    if (!ia) return PyErr_NoMemory();
    PoolObj *o = PyObject_New(PoolObj, &PoolObjType);
    if (!o) {
        free(ia);
        return NULL;
    }
    o->p = NULL;
    o->x = NULL;
    Py_INCREF(init);
    o->init = init;
    int rc;
    if (executor) {
        mproc_executor_opts xo = {.max_workers = n,
                                  .initializer = py_init,
                                  .initargs = ia,
                                  .initargs_len = ialen,
                                  .max_tasks_per_child = maxtasks,
                                  .context = ctx};
        Py_BEGIN_ALLOW_THREADS rc = mproc_executor_new_process(&o->x, &xo);
        Py_END_ALLOW_THREADS
    } else {
        mproc_pool_opts po = {.processes = n,
                              .initializer = py_init,
                              .initargs = ia,
                              .initargs_len = ialen,
                              .maxtasksperchild = maxtasks,
                              .context = ctx};
        Py_BEGIN_ALLOW_THREADS rc = mproc_pool_new(&o->p, &po);
        Py_END_ALLOW_THREADS
    }
    free(ia);
    if (rc) {
        Py_DECREF(o);
        if (rc == MPROC_ETASK) {
            PyErr_SetString(PyExc_RuntimeError,
                            "a worker's initializer failed (its traceback is above)");
            return NULL;
        }
        return raise_rc(rc);
    }
    return (PyObject *)o;
}

/* pool_apply(pool, payload, timeout_ms, callback or None) -> Fut;
 * executors: the timeout is ignored. */
static PyObject *pool_apply(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *po, *cb;
    Py_buffer b;
    int ms;
    if (!PyArg_ParseTuple(args, "Oy*iO", &po, &b, &ms, &cb)) return NULL;
    PoolObj *o = get_pool(po);
    if (!o) {
        PyBuffer_Release(&b);
        return NULL;
    }
    mproc_future *f = NULL;
    int rc;
    mproc_task_opts to = {.timeout_ms = ms};
    Py_BEGIN_ALLOW_THREADS if (o->x) rc =
        mproc_executor_submit(o->x, py_task, b.buf, (size_t)b.len, &f);
    else rc = mproc_pool_apply_async(o->p, py_task, b.buf, (size_t)b.len, &to, &f);
    Py_END_ALLOW_THREADS PyBuffer_Release(&b);
    if (rc) return raise_rc(rc);
    if ((rc = add_cb(f, cb))) {
        mproc_future_free(f);
        return raise_rc(rc);
    }
    return fut_wrap(f);
}

static int pjoin_fn(void *ctx, int ms)
{
    return mproc_pool_join(ctx, ms);
}

/* pool_op(pool, op, a, b): 0 close, 1 terminate, 2 join(a ms) -> bool,
 * 3 workers' pids, 4 executor shutdown(wait=a, cancel=b),
 * 5 terminate_workers, 6 kill_workers. */
static PyObject *pool_op(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *po;
    int op, a = 0, b = 0, rc = 0;
    if (!PyArg_ParseTuple(args, "Oi|ii", &po, &op, &a, &b)) return NULL;
    PoolObj *o = get_pool(po);
    if (!o) return NULL;
    mproc_pool *p = o->p;
    mproc_executor *x = o->x;
    if ((op <= 3 && !p) || (op >= 4 && !x)) {
        PyErr_SetString(PyExc_ValueError, "bad pool operation");
        return NULL;
    }
    switch (op) {
    case 0:
        Py_BEGIN_ALLOW_THREADS rc = mproc_pool_close(p);
        Py_END_ALLOW_THREADS break;
    case 1:
        Py_BEGIN_ALLOW_THREADS rc = mproc_pool_terminate(p);
        Py_END_ALLOW_THREADS break;
    case 2:
        return bool_result(sliced(pjoin_fn, p, a));
    case 3: {
        pid_t pids[1024];
        size_t n;
        Py_BEGIN_ALLOW_THREADS n = mproc_pool_workers(p, pids, 1024);
        Py_END_ALLOW_THREADS PyObject *l = PyList_New(0);
        for (size_t i = 0; l && i < n && i < 1024; i++) {
            PyObject *v = PyLong_FromLong(pids[i]);
            if (!v || PyList_Append(l, v)) Py_CLEAR(l);
            Py_XDECREF(v);
        }
        return l;
    }
    case 4:
        Py_BEGIN_ALLOW_THREADS rc = mproc_executor_shutdown(x, a, b);
        Py_END_ALLOW_THREADS break;
    case 5:
        Py_BEGIN_ALLOW_THREADS rc = mproc_executor_terminate_workers(x);
        Py_END_ALLOW_THREADS break;
    case 6:
        Py_BEGIN_ALLOW_THREADS rc = mproc_executor_kill_workers(x);
        Py_END_ALLOW_THREADS break;
    default:
        PyErr_SetString(PyExc_ValueError, "bad pool operation");
        return NULL;
    }
    if (rc) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* worker_name() -> the core's name of this process (a pool worker's
 * "PoolWorker-<n>"). */
static PyObject *worker_name(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    mproc_process *me = mproc_current_process();
    const char *n = me ? mproc_process_name(me) : NULL;
    if (!n) Py_RETURN_NONE;
    return PyUnicode_FromString(n);
}

PyMethodDef pool_methods[] = {
    {"worker_name", worker_name, METH_NOARGS, NULL},
    {"pool_new", pool_new, METH_VARARGS, NULL},
    {"pool_apply", pool_apply, METH_VARARGS, NULL},
    {"pool_op", pool_op, METH_VARARGS, NULL},
    {"future_result", future_result, METH_VARARGS, NULL},
    {"future_op", future_op, METH_VARARGS, NULL},
    {"future_add_cb", future_add_cb, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
