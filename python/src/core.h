/* mproc._core: the C core of mproc under CPython (docs/python.md): what
 * the extension's files share.
 *
 * Shared objects (locks, semaphores, conditions, events, barriers, queues)
 * live in the family arena inside a "box": a small arena block with a
 * reference count shared by the processes of the family, the object's
 * kind, and the object. A Handle is one process's reference to a box:
 * - made by *_new in this process, it holds one reference;
 * - inherited by a fork child, it gets one reference of the child's own
 *   (taken before the fork: handles_before_fork), so that the parent
 *   dropping its handle never
 *   frees what the child still uses;
 * - exported for a spawn or forkserver child (handle_export) it takes one
 *   reference on the child's behalf, which the child's handle_import adopts.
 * A child gives back every reference it holds when its target ends
 * (handles_release_all), as its interpreter exits without finalising.
 * A process killed outright keeps its references: the box then lives as
 * long as the family's arena, never freed under a user.
 *
 * Connections and process objects are per process (the core's own
 * handles); a connection passed to a spawn child travels as an fd through
 * the core (the handles in the argument bytes).
 *
 * Every blocking call releases the GIL and waits in slices, so that a
 * signal (Ctrl-C) is seen within SLICE_MS.
 *
 * The files: errors.c (exceptions, waits), handle.c (boxes and handles),
 * sync.c, queue.c, codec.c (a queue message's encoding), conn.c, channel.c
 * (a manager connection's queues), process.c, embed.c (start methods and
 * the child's start), shared.c (shared values' memory and the synchronized
 * wrappers' base, named shared memory), module.c (the module). Each
 * file's functions for Python are in its own method table, which module.c
 * adds to the module. Names shared between the files are hidden outside
 * the extension (it is built with -fvisibility=hidden). */
#ifndef MPROC_PY_CORE_H
#define MPROC_PY_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <mproc.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SLICE_MS  100
#define BOX_MAGIC 0x6d70626fu /* "mpbo" */

enum kind {
    K_LOCK = 1,
    K_RLOCK,
    K_SEM,
    K_BSEM,
    K_COND,
    K_EVENT,
    K_BARRIER,
    K_QUEUE,
    K_SHARED,
    K_NKINDS
};

typedef struct box {
    uint32_t magic;
    int32_t kind;
    _Atomic int32_t refs;
    int32_t pad_;
    struct box *dep; /* a box this one keeps alive (a condition's lock), or NULL */
    void *obj;       /* the core object (allocated by its _new) */
} box;

#define M_LOCK  ((1u << K_LOCK) | (1u << K_RLOCK))
#define M_SEM   ((1u << K_SEM) | (1u << K_BSEM))
#define M_COND  (1u << K_COND)
#define M_EVENT (1u << K_EVENT)
#define M_BAR   (1u << K_BARRIER)
#define M_QUEUE (1u << K_QUEUE)

/* errors.c */
extern PyObject *OwnerDiedError, *NotRecoverableError, *BrokenBarrierError;
PyObject *raise_rc(int rc);
typedef int (*wait_fn)(void *ctx, int ms);
int sliced(wait_fn fn, void *ctx, int timeout_ms);
int try_then_sliced(wait_fn fn, void *ctx, int timeout_ms);
PyObject *bool_result(int rc);
int py_timeout_ms(PyObject *block, PyObject *timeout, int *ms);

/* A wait_fn over a core call f(obj, ms). */
#define WAIT_FN(name, f)                                                                           \
    static int name(void *ctx, int ms)                                                             \
    {                                                                                              \
        return f(ctx, ms);                                                                         \
    }

/* handle.c */
extern PyTypeObject HandleType;
void box_decref(box *b);
PyObject *handle_new(box *b, int kind);
PyObject *handle_wrap(int kind, void *obj, box *dep);
box *get_box(PyObject *o, unsigned mask);
box *box_arg(PyObject *args, unsigned mask, int *n);
void handles_before_fork(int delta);
void handles_after_fork(pid_t parent);
void handles_release_all(void);

/* queue.c: a timed receive (from a queue or a connection) and the message
 * it took (malloc'd); msg_bytes: the message as bytes, its buffer freed. */
typedef struct msg_ctx {
    void *src;
    void *buf;
    size_t len;
} msg_ctx;
PyObject *msg_bytes(msg_ctx *m);

/* codec.c: a queue message's encoding (marshal's for plain builtin values,
 * else a pickle); codec_ready once before the others: 0, or -1 with the
 * exception set. */
int codec_ready(void);
PyObject *codec_dumps(PyObject *obj);
PyObject *codec_loads(const void *buf, size_t len);
extern PyMethodDef codec_methods[];

/* conn.c */
typedef struct Conn {
    PyObject_HEAD mproc_conn *c;
} Conn;
extern PyTypeObject ConnType;
PyObject *conn_wrap(mproc_conn *c);
mproc_conn *get_conn(PyObject *o);

/* process.c */
extern PyTypeObject ProcType;
extern pid_t embed_pid; /* the process that called embed_child_main */

/* pool.c */
extern PyTypeObject FutType, PoolObjType;
extern pid_t py_pid; /* the process whose interpreter is set up (a fork copy differs) */
void pool_install_hooks(void);

/* The method tables, one per file. */
extern PyMethodDef handle_methods[], sync_methods[], queue_methods[], conn_methods[],
    process_methods[], embed_methods[];
/* shared.c: shared values' memory, named shared memory */
extern PyMethodDef shared_methods[];
/* Types of sync.c and shared.c, readied and added to the module. */
int sync_add_types(PyObject *m);
int shared_add_types(PyObject *m);
/* sync.c: acquire (no timeout) and release of a lock object (C for an mproc
 * Lock, else its methods): 0, or -1 with the exception set. */
int lockobj_acquire(PyObject *lock);
int lockobj_release(PyObject *lock);
/* True if lock is an mproc RLock the calling thread holds: acquiring it
 * again and releasing that are then no-ops. */
bool lockobj_rlock_owned(PyObject *lock);

/* listener.c: listeners, clients, the handshake, wait */
extern PyTypeObject ListenerType;
extern PyMethodDef listener_methods[];

/* sync.c: the methods of a Handle (acquire and release of a lock or a
 * semaphore, which Lock and Semaphore bind as their own, as Python's
 * SemLock). */
extern PyMethodDef handle_obj_methods[];

/* pool.c */
extern PyMethodDef pool_methods[];

/* channel.c: manager connections moved into the arena */
extern PyTypeObject ChannelType;
extern PyMethodDef channel_methods[];

#endif
