/* mproc — managers (the twin of multiprocessing.managers): a server
 * process holds objects; other processes use them through proxies.
 *
 * Objects are made by type name ("typeid"). The arguments of a
 * constructor are, as in Python, the list of its arguments: list([1, 2])
 * is create("list", [[1, 2]]) (and [1, 2] alone is two arguments, refused);
 * NULL or [] is list(). Built-in types, constructors (the list given to
 * mproc_manager_create) and methods (arguments and results are
 * mproc_values; the list of arguments is a list value, NULL for none):
 *   "list"   [] or [list]: [[1, 2]] is list([1, 2])
 *            append(x) extend(list) getitem(i) setitem(i, x) delitem(i)
 *            getslice(start, stop) setslice(start, stop, list) len()
 *            pop([i]) insert(i, x) remove(x) index(x) count(x) sort()
 *            reverse() copy() contains(x)
 *   "dict"   [] or [map] or [list of [k, v] pairs]: [{"k": 1}] is
 *            dict({'k': 1}) and dict(k=1); [[["k", 1]]] is dict([('k', 1)])
 *            getitem(k) setitem(k, v) delitem(k) get(k[, default]) keys()
 *            values() items() update(map) pop(k[, default])
 *            setdefault(k[, default]) len() contains(k) clear() copy()
 *   "set"    [] or [list]: [[1, 2]] is set([1, 2])
 *            add(x) discard(x) remove(x) contains(x) len() copy() clear()
 *   "Namespace" [] or [map of attributes]: [{"x": 1}] is Namespace(x=1)
 *            getattr(name) setattr(name, v) delattr(name) copy()
 *   "Value"  [typecode] or [typecode, value]: ["i", 0] is Value('i', 0)
 *            get() set(v)
 *   "Array"  [typecode, list]: ["d", [1.5, 2]] is Array('d', [1.5, 2])
 *            getitem(i) setitem(i, v) len() copy()
 *   "Queue", "JoinableQueue"  [] or [maxsize] (an int; 0 or less: no
 *            limit): [3] is Queue(3)
 *            put(x[, timeout_ms]) get([timeout_ms]) qsize() empty() full()
 *            task_done() join()
 *   "Lock", "RLock"  []: acquire([timeout_ms]) release()
 *   "Semaphore", "BoundedSemaphore"  [] (1) or [value]: [2] is
 *            Semaphore(2)   acquire([timeout_ms]) release() get_value()
 *   "Condition"  [] (its own RLock): acquire release wait([timeout_ms])
 *            notify([n]) notify_all()
 *   "Event"  []: set() clear() is_set() wait([timeout_ms])
 *   "Barrier" [parties] (an int > 0): [3] is Barrier(3)
 *            wait([timeout_ms]) abort() reset() parties() n_waiting()
 *            broken()
 * A constructor given another form (too many arguments, one of the wrong
 * type) fails with MPROC_EMETHOD; mproc_manager_last_error then gives
 * MPROC_EINVAL and a message naming the expected form ("list() takes at
 * most 1 argument (2 given): ... [[1, 2]] makes list([1, 2])").
 * Containers may hold proxies (a dict holding a list proxy): a proxy put
 * in a value travels as a handle, and a handle read back becomes a proxy.
 * Arguments are checked as Python checks them: a timeout_ms is absent, nil,
 * MPROC_FOREVER (-1) or >= 0 (another negative: MPROC_EINVAL); an int for a
 * Value or an Array must fit its typecode ('b' -128..127, ..., 'l' and 'L'
 * 64 bits; else MPROC_ERANGE, Python's OverflowError); a Semaphore's value
 * is an int from 0 to INT32_MAX (not an int or negative: MPROC_EINVAL;
 * larger: MPROC_EOVERFLOW). A type or method name holding a NUL byte is
 * refused (MPROC_EINVAL), not cut short.
 *
 * Errors: a method that fails (an index out of range, a missing key, a
 * wrong argument type, a timeout) makes the call return MPROC_EMETHOD; the
 * method's own code and message are then in mproc_manager_last_error. A
 * failure of the server or the transport (unknown object or method, lost
 * connection, malformed reply) is its own code: among them MPROC_EMSGSIZE
 * (a request or a result over the message cap, max_message below: the
 * connection goes on), MPROC_ETIMEDOUT (no reply within call_timeout_ms)
 * and MPROC_ECONNABORTED (a call on a handle whose earlier call timed
 * out).
 *
 * Threads: a manager handle and its proxies may be used from several
 * threads of the process that made them; calls are serialised per
 * connection.
 *
 * Processes (Python's Process(target=f, args=(proxy,))): a proxy placed
 * in a child's argument bytes (mproc_process_new; at a pointer-aligned
 * offset, as a connection handle) is, in the child, a proxy of the
 * child's own to the same object, under every start method. The child's
 * proxies of one parent handle share one handle of the child's
 * (mproc_proxy_manager), which connects on the first call of any of them
 * with the key the parent's handle authenticated with (the family authkey
 * as it was when the parent connected, or the key it gave); each proxy
 * takes its own reference on its first call. So the parent must keep its
 * proxy (or the object otherwise alive) until the child has used it, as
 * it would join the child first. A manager gone by then makes that call
 * fail at once (MPROC_ECONNREFUSED, or MPROC_ENOENT for a socket path
 * removed), and every later one again. The child's proxies and handle are
 * freed when its target returns: it must not free them. A child passes
 * them on to its own children the same way.
 *
 * A reference received in any other way (a proxy put in a value, read
 * from a manager Queue or a container, or from a plain mproc_queue)
 * becomes a proxy with one call: mproc_proxy_call_proxy(q, "get", args,
 * &p) on a manager Queue, or mproc_proxy_from_value(mproc_proxy_manager(q)
 * or any handle on that manager, value, &p). Any other handle and proxy
 * belongs to the process that made it: in any other (a fork() copy, a
 * child of the fork start method that reaches it through a global), every
 * call on it fails with MPROC_ECHILD, and freeing it releases only that
 * process's own memory (see mproc_manager_free). A child may also connect
 * for itself: mproc_manager_connect(address, NULL key: the family
 * authkey).
 *
 * Shared objects (Python's register('get_queue', callable=lambda: q)):
 * mproc_manager_opts.shared makes objects when the server starts and
 * shares each under a name; mproc_manager_share shares an object at run
 * time; any client gets a proxy to it with mproc_manager_get(m,
 * "get_queue", &q).
 *
 * A client that dies (or frees its handle) while a call of its waits on
 * the server (a queue get, an acquire, a wait) takes nothing with it: the
 * server gives up the wait within 200 ms, and gives back an item, unit,
 * lock or notification that the client did not get; a Barrier it waited
 * at breaks. See docs/managers.md.
 */
#ifndef MPROC_MANAGER_H
#define MPROC_MANAGER_H

#include "base.h"
#include "context.h"
#include "value.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A manager and a proxy to one of its objects (opaque). */
typedef struct mproc_manager mproc_manager;
typedef struct mproc_proxy mproc_proxy;

/* ---- custom types ---------------------------------------------------------- */

/* A method of a registered type: works on the object's state; args is a
 * list (NULL for none); *result (may stay NULL for None). Returns 0, or
 * fails with mproc_task_fail(...) or any negative code. */
typedef int (*mproc_method_fn)(void *state, const mproc_value *args, mproc_value **result);

/* One method of a registered type. */
typedef struct mproc_method_def {
    const char *name;   /* what clients call */
    mproc_method_fn fn; /* runs it */
    /* If set, the method returns a new object of this type: fn's result
     * becomes the argument of that type's constructor, and the caller gets
     * a proxy (Python's method_to_typeid). */
    const char *returns_typeid;
} mproc_method_def;

/* A type the manager serves (Python's register()). */
typedef struct mproc_type_def {
    const char *typeid; /* its name */
    /* Makes an object's state from the creation arguments (a list or
     * NULL); returns 0 or a negative code. */
    int (*create)(const mproc_value *args, void **state);
    void (*destroy)(void *state); /* may be NULL */
    const mproc_method_def *methods;
    size_t nmethods;
} mproc_type_def;

/* ---- managers ------------------------------------------------------------- */

/* An object the server makes when it starts and shares under a name, for
 * any client to get with mproc_manager_get (Python's
 * BaseManager.register(name, callable=lambda: obj) on the server's side:
 * every client gets the same object). */
typedef struct mproc_manager_shared {
    const char *name;        /* what clients ask for: not NULL or "" */
    const char *typeid;      /* a built-in or registered type */
    const mproc_value *args; /* its constructor arguments (a list), NULL for none */
} mproc_manager_shared;

/* Options for a manager; zero (or NULL) means defaults. */
typedef struct mproc_manager_opts {
    /* Where the server listens: NULL, a Unix socket path, or "host:port"
     * (TCP; port 0 picks one). See listener.h for the forms. */
    const char *address;
    const void *authkey; /* NULL: the family authkey */
    size_t authkey_len;
    const mproc_context *context; /* the server's start method; NULL: default */
    /* Registered types, in addition to the built-in ones; the functions
     * must be functions of the program or a loaded library. */
    const mproc_type_def *types;
    size_t ntypes;
    int idle_timeout_ms; /* the server closes a connection idle this long; 0: never */
    /* A client that has not authenticated this long after it connected
     * (it sent nothing, or too little) is dropped, so that silent
     * connections cannot hold the server's threads and its
     * max_connections; milliseconds, 0: MPROC_MANAGER_HANDSHAKE_MS.
     * Applies when the server has an authkey (it always has one but for
     * mproc_manager_serve with an empty key). */
    int handshake_timeout_ms;
    int max_connections; /* 0: 4096 */
    /* The largest message, in bytes of its encoding, of one request or one
     * reply (a call's arguments or result): 0 means
     * MPROC_MANAGER_MAX_MESSAGE; at least 1024. It is the server's cap (a
     * frame over it from a client ends that connection) and its clients'
     * (the owner's handle, mproc_manager_connect_opts). At connect the two
     * sides tell each other their caps, and each keeps what it sends within
     * the smaller: a call whose request is over it fails with
     * MPROC_EMSGSIZE before anything is sent, one whose result is over it
     * fails with MPROC_EMSGSIZE after the method has run (a queue get's
     * item goes back; a list pop's item is lost), and the connection goes
     * on in both cases. The
     * same on sockets and on the local transport (which also carries at
     * most MPROC_QUEUE_MAX_MESSAGE). */
    size_t max_message;
    /* A client's deadline for each call, in milliseconds (the owner's
     * handle, mproc_manager_connect_opts); 0 or MPROC_FOREVER: none. A call
     * without a reply by then returns MPROC_ETIMEDOUT (a stopped or stuck
     * server); the reply may still come and the method may still run, so
     * the handle then drops its connection (the server sees its client
     * gone), and every later call on it, its proxies included, fails with
     * MPROC_ECONNABORTED: connect again. In mproc_manager_call_many each
     * reply must come within it of the one before. Make it longer than the
     * timeouts given to blocking methods (a queue get). */
    int call_timeout_ms;
    /* Objects made and shared by name when the server starts (the
     * server's). A type that is unknown or a constructor that fails makes
     * the start (or mproc_manager_serve) fail with its code: MPROC_ENOENT,
     * the constructor's (MPROC_EINVAL, ...); a NULL or empty name, a NULL
     * typeid or args that are not a list: MPROC_EINVAL. */
    const mproc_manager_shared *shared;
    size_t nshared;
} mproc_manager_opts;

/* The default of mproc_manager_opts.max_message (as Python's connections
 * have none, the limit is ours): 64 MiB. */
#define MPROC_MANAGER_MAX_MESSAGE ((size_t)64 << 20)

/* The default of mproc_manager_opts.handshake_timeout_ms: 10 s. */
#define MPROC_MANAGER_HANDSHAKE_MS 10000

/* Starts a manager server (a child process) and connects to it (the
 * twin of Manager() / BaseManager.start()). Errors: the start method's,
 * the listener's, MPROC_EINVAL (a type cannot be found in a new image,
 * max_message or call_timeout_ms out of range), MPROC_ENOMEM. */
MPROC_API int mproc_manager_start(mproc_manager **out, const mproc_manager_opts *opts);

/* Serves in the calling process until shutdown (the standalone server:
 * BaseManager.get_server().serve_forever()). ready, if not NULL, is called
 * with the address once listening. Errors: as mproc_manager_start. */
MPROC_API int mproc_manager_serve(const mproc_manager_opts *opts,
                                  void (*ready)(const char *address, void *ud), void *ud);

/* Connects to a running manager (BaseManager.connect()). Errors: the
 * client's (MPROC_ECONNREFUSED, MPROC_EAUTH, ...). */
MPROC_API int mproc_manager_connect(mproc_manager **out, const char *address, const void *authkey,
                                    size_t authkey_len);

/* As mproc_manager_connect, to opts->address with opts->authkey (NULL: the
 * family authkey), opts->max_message and opts->call_timeout_ms; the other
 * fields are the server's and are not used. Errors: as
 * mproc_manager_connect, MPROC_EINVAL (NULL address, an option out of
 * range). */
MPROC_API int mproc_manager_connect_opts(mproc_manager **out, const mproc_manager_opts *opts);

/* The server's address (valid as long as m). */
MPROC_API const char *mproc_manager_address(const mproc_manager *m);

/* Creates an object of a type on the server: *out is a proxy to it.
 * Errors: MPROC_ENOENT (unknown type), MPROC_EMETHOD (its constructor
 * failed), transport errors. */
MPROC_API int mproc_manager_create(mproc_manager *m, const char *typeid, const mproc_value *args,
                                   mproc_proxy **out);

/* Shares p's object under name (Python's register(name, callable=...)
 * done at run time): the server keeps it alive for the name, so p may be
 * freed, and mproc_manager_get(any client, name) gives a proxy to it. A
 * name shared again names the new object; p NULL unshares it. Errors:
 * MPROC_EINVAL (NULL m, NULL or empty name, p of another manager),
 * MPROC_ENOENT (unsharing a name that is not shared), transport errors. */
MPROC_API int mproc_manager_share(mproc_manager *m, const char *name, const mproc_proxy *p);

/* A proxy to the object shared under name (m.get_queue() in Python, for
 * register('get_queue', ...)). Errors: MPROC_EINVAL (NULL argument),
 * MPROC_ENOENT (nothing shared under that name), transport errors. */
MPROC_API int mproc_manager_get(mproc_manager *m, const char *name, mproc_proxy **out);

/* Stops the server: its objects are freed, every client's later calls
 * fail with a transport error. As in Python, any authenticated client may
 * ask for it. Then disconnects m (only mproc_manager_free is left to
 * call); a manager this process started is joined. MPROC_ECHILD (and
 * nothing done) in a process that is not m's owner. */
MPROC_API int mproc_manager_shutdown(mproc_manager *m);

/* Disconnects; a manager this process started is shut down (and joined)
 * first. NULL is a no-op. Proxies made through m must be freed first. In
 * a process that is not m's owner (a fork() copy), it frees that
 * process's copy only: no shutdown, the owner's connection untouched. */
MPROC_API void mproc_manager_free(mproc_manager *m);

/* The last method failure of this thread: its code and message (owned by
 * the thread, valid until its next call). */
MPROC_API void mproc_manager_last_error(int *code, const char **msg);

/* ---- proxies -------------------------------------------------------------- */

/* Calls method(args) on the proxy's object. *result (may be NULL if
 * unwanted) receives the result (NULL for None); the handles a result
 * holds become proxies through mproc_proxy_from_value. Errors:
 * MPROC_EMETHOD (see above), MPROC_ENOENT (no such method or object),
 * transport errors. */
MPROC_API int mproc_proxy_call(mproc_proxy *p, const char *method, const mproc_value *args,
                               mproc_value **result);

/* Ownership (the rule of value.h: building takes, everything else
 * borrows): mproc_manager_create, mproc_proxy_call, mproc_proxy_call_proxy,
 * the shorthands and mproc_manager_call_many borrow their values (args,
 * keys, items): they copy what they send and never free the caller's. A
 * result they return is the caller's to free. The format calls below
 * follow pack: 'o' takes its value (also on failure), 'O' copies.
 *
 * Calls from a format: the arguments are packed by mproc_value_pack's
 * codes (value.h) and sent as a list, one item per top-level code: "i"
 * sends [5], "si" ["k", 5], "[ii]" one argument that is a list, [[1, 2]];
 * "" or NULL sends none. The format comes last before its arguments (as in
 * printf), so the result pointer comes before it. So Python's
 * l.append(5), d['k'] = 5 and v.value = c + 1 read
 *     mproc_proxy_callf(l, "append", NULL, "i", 5);
 *     mproc_proxy_callf(d, "setitem", NULL, "si", "k", 5);
 *     mproc_proxy_callf(v, "set", NULL, "i", c + 1);
 * and manager.list([1, 2]) and manager.Value('i', 0) read
 *     mproc_manager_createf(m, "list", &l, "[ii]", 1, 2);
 *     mproc_manager_createf(m, "Value", &v, "si", "i", 0);
 * A proxy is passed as its reference: "o", mproc_proxy_ref(q).
 * Errors: those of the plain call, and MPROC_EINVAL for a bad format or a
 * NULL string or value (logged with the offset; nothing is sent);
 * MPROC_ENOMEM. Thread-safe as the plain calls. */
MPROC_API int mproc_proxy_callf(mproc_proxy *p, const char *method, mproc_value **result,
                                const char *fmt, ...);
MPROC_API int mproc_manager_createf(mproc_manager *m, const char *typeid, mproc_proxy **out,
                                    const char *fmt, ...);
/* As mproc_proxy_callf, the result read through result_fmt (one value, as
 * mproc_value_unpack reads it; None is nil): the arguments of args_fmt
 * come first, then the variables of result_fmt, as in
 *     int n;
 *     mproc_proxy_callf_unpack(v, "get", NULL, "i", &n);
 * The result is freed before the call returns, so result_fmt may not hold
 * the codes that point into it (s, s#, y#, o outside a map key): use O (a
 * copy), or mproc_proxy_callf then mproc_value_unpack. Errors: those of
 * mproc_proxy_callf; MPROC_EINVAL for a bad or borrowing result_fmt
 * (found before anything is sent) or a result of another kind, MPROC_ERANGE
 * (an int that does not fit), MPROC_ENOENT (a missing key): then the
 * method has run, its result is dropped and no variable is written. */
MPROC_API int mproc_proxy_callf_unpack(mproc_proxy *p, const char *method, const char *args_fmt,
                                       const char *result_fmt, ...);

/* The same three with a va_list (for wrappers of their own, as vprintf):
 * ap is read through a copy, so the caller may use it again after
 * va_end/va_start as usual. */
MPROC_API int mproc_proxy_vcallf(mproc_proxy *p, const char *method, mproc_value **result,
                                 const char *fmt, va_list ap);
MPROC_API int mproc_manager_vcreatef(mproc_manager *m, const char *typeid, mproc_proxy **out,
                                     const char *fmt, va_list ap);
MPROC_API int mproc_proxy_vcallf_unpack(mproc_proxy *p, const char *method, const char *args_fmt,
                                        const char *result_fmt, va_list ap);

/* As mproc_proxy_call for a method returning a new object: *out is its
 * proxy. */
MPROC_API int mproc_proxy_call_proxy(mproc_proxy *p, const char *method, const mproc_value *args,
                                     mproc_proxy **out);

/* The proxy's type name and a value that stands for it (to put a proxy
 * into a container or a queue of the same manager; free it). */
MPROC_API const char *mproc_proxy_typeid(const mproc_proxy *p);
MPROC_API mproc_value *mproc_proxy_ref(const mproc_proxy *p);

/* A proxy for a reference read back from the server (a handle value), on
 * manager m. Errors: MPROC_EINVAL (not a reference). */
MPROC_API int mproc_proxy_from_value(mproc_manager *m, const mproc_value *ref, mproc_proxy **out);

/* The manager handle the proxy calls through (NULL for NULL): in a child,
 * the one made for the proxies passed to it, to turn a reference it
 * receives (from a queue, a container) into a proxy with
 * mproc_proxy_from_value. Owned by whoever owns the proxy: not to be
 * freed by the caller. */
MPROC_API mproc_manager *mproc_proxy_manager(const mproc_proxy *p);

/* Drops the proxy (the server frees the object with its last reference).
 * NULL is a no-op. In a process that is not the owner, frees the copy
 * only (the reference stays the owner's). */
MPROC_API void mproc_proxy_free(mproc_proxy *p);

/* Pipelined calls: sends calls[0..n) without waiting for each reply (at
 * most 64 outstanding), then reads the replies, so a remote manager costs
 * one round trip per batch rather than per call. results[i] (may be NULL
 * as a whole) and codes[i] (0, MPROC_EMETHOD, ...) report each call; the
 * method failure messages are not kept. All proxies must belong to m.
 * Returns 0 when every call was made (whatever each returned), or a
 * transport error. */
typedef struct mproc_call {
    mproc_proxy *proxy;      /* whose method */
    const char *method;      /* its name */
    const mproc_value *args; /* its arguments (a list), NULL for none */
} mproc_call;
MPROC_API int mproc_manager_call_many(mproc_manager *m, const mproc_call *calls, size_t n,
                                      mproc_value **results, int *codes);

/* Shorthands for built-in types (each a mproc_proxy_call). */
MPROC_API int mproc_proxy_setitem(mproc_proxy *p, const mproc_value *key, const mproc_value *val);
MPROC_API int mproc_proxy_getitem(mproc_proxy *p, const mproc_value *key, mproc_value **out);
MPROC_API int mproc_proxy_append(mproc_proxy *p, const mproc_value *item);
MPROC_API int mproc_proxy_len(mproc_proxy *p, size_t *out);

#ifdef __cplusplus
}
#endif
#endif
