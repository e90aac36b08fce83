/* The module mproc._core: its types, exceptions, constants and functions. */
#include "core.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "mproc._core",
    "The C core of mproc under CPython.",
    -1,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&ConnType) < 0 ||
        PyType_Ready(&ProcType) < 0 || PyType_Ready(&ListenerType) < 0 ||
        PyType_Ready(&FutType) < 0 || PyType_Ready(&PoolObjType) < 0 ||
        PyType_Ready(&ChannelType) < 0)
        return NULL;
    pool_install_hooks();
    /* The family arena now, so that every child shares it (a spawn
     * child's exists already: the call then changes nothing). */
    (void)mproc_arena_init(NULL);
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyMethodDef *tables[] = {
        handle_methods,  sync_methods,    queue_methods,  conn_methods,
        process_methods, embed_methods,   shared_methods, listener_methods,
        pool_methods,    channel_methods, codec_methods,
    };
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
        if (PyModule_AddFunctions(m, tables[i])) return NULL;
    if (sync_add_types(m) || shared_add_types(m)) return NULL;
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
    static const struct {
        const char *name;
        long value;
    } ints[] = {
#define K(kind) {#kind, kind}
#define E(code)                                                                                    \
    {                                                                                              \
        "E_" #code, MPROC_E##code                                                                  \
    }
        K(K_LOCK),  K(K_RLOCK),    K(K_SEM),     K(K_BSEM),    K(K_COND),
        K(K_EVENT), K(K_BARRIER),  K(K_QUEUE),   K(K_SHARED),  E(TIMEDOUT),
        E(TASK),    E(WORKERDIED), E(CANCELLED), E(TIMELIMIT), E(SHUTDOWN),
#undef K
#undef E
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (PyModule_AddIntConstant(m, ints[i].name, ints[i].value)) return NULL;
    if (PyModule_AddStringConstant(m, "version", mproc_version())) return NULL;
    return m;
}
