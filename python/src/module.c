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
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&ConnType) < 0 || PyType_Ready(&ProcType) < 0)
        return NULL;
    /* The family arena now, so that every child shares it (a spawn
     * child's exists already: the call then changes nothing). */
    (void)mproc_arena_init(NULL);
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyMethodDef *tables[] = {handle_methods,  sync_methods,  queue_methods,   conn_methods,
                             process_methods, embed_methods, listener_methods};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
        if (PyModule_AddFunctions(m, tables[i])) return NULL;
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
