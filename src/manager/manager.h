/* Manager internals: the wire protocol, the object table and the
 * built-in types (see mproc/manager.h).
 *
 * Requests and replies are CBOR values (one connection message each):
 *   [CREATE, typeid, args]        -> [OK, id, typeid]
 *   [CALL, id, method, args]      -> [OK, result] | [OK_PROXY, id, typeid]
 *   [INCREF, id] [DECREF, id]     -> [OK, nil]
 *   [SHUTDOWN]                    -> [OK, nil]
 *   [HELLO, max_message]          -> [OK, max_message]
 *   [SHARE, name, id | nil]       -> [OK, nil]
 *   [GET, name]                   -> [OK_PROXY, id, typeid]
 * HELLO, a client's first request, exchanges the two sides' message caps:
 * each keeps what it sends within the smaller (a server's reply over it
 * becomes [SERVER_ERR, MPROC_EMSGSIZE, ...]); without it the server keeps
 * its replies within its own cap.
 * A failure is [METHOD_ERR, code, message] (the method failed) or
 * [SERVER_ERR, code, message] (unknown object or method, bad request).
 * References to objects inside values are handles of type
 * MPROC__HANDLE_OBJ whose ref is the object id. */
#ifndef MPROC_INTERNAL_MANAGER_H
#define MPROC_INTERNAL_MANAGER_H

#include "base/base.h"
#include "mproc/listener.h"
#include "mproc/manager.h"
#include "mproc/process.h"

#include <pthread.h>
#include <stdatomic.h>

#include "mproc/queue.h"

enum {
    MOP_CREATE = 1,
    MOP_CALL,
    MOP_INCREF,
    MOP_DECREF,
    MOP_SHUTDOWN,
    MOP_LOCAL,
    MOP_HELLO,
    MOP_SHARE,
    MOP_GET
};
enum { MREP_OK = 0, MREP_OK_PROXY, MREP_METHOD_ERR, MREP_SERVER_ERR };

#define MPROC__HANDLE_OBJ  0x6d67u                   /* "mg" */
#define MPROC__MGR_MAX_MSG MPROC_MANAGER_MAX_MESSAGE /* the default cap */
#define MPROC__MGR_MIN_MSG ((size_t)1024)            /* the smallest cap allowed */

/* MPROC_EINVAL for options out of range (max_message, call_timeout_ms). */
int mproc__mgr_check_opts(const mproc_manager_opts *o);
/* MPROC_EINVAL for shared objects that cannot be (manager/start.c). */
int mproc__mgr_check_shared(const mproc_manager_opts *o);

/* A client handle connected to address, with o's max_message and
 * call_timeout_ms; server: the server process it started, or NULL. */
int mproc__mgr_client_new(mproc_manager **out, const char *address, const mproc_auth *auth,
                          mproc_process *server, const mproc_manager_opts *o);

/* ---- proxies in a child's argument bytes (manager/travel.c) ---- */

/* What a handle needs to connect again: its server and key (borrowed from
 * the handle), its caps. */
typedef struct mproc__mgr_link {
    const char *address;
    const uint8_t *key;
    size_t key_len;
    size_t max_msg;
    int call_ms;
} mproc__mgr_link;
void mproc__mgr_link_of(const mproc_manager *m, mproc__mgr_link *out);
/* A handle that connects (with l's key) on its first call. */
int mproc__mgr_client_lazy(mproc_manager **out, const mproc__mgr_link *l);
/* A proxy on m for object id that takes its reference on its first
 * call. */
int mproc__mgr_proxy_lazy(mproc_manager *m, uint64_t id, const char *typeid, mproc_proxy **out);
/* The proxy's handle, and its object's id in *id. */
mproc_manager *mproc__mgr_proxy_link(const mproc_proxy *p, uint64_t *id);
/* The set of this process's live proxies, for scanning argument bytes. */
int mproc__mgr_proxy_register(const mproc_proxy *p);
void mproc__mgr_proxy_unregister(const mproc_proxy *p);

/* A local client (a process of the server's family) moves its requests
 * to a pair of queues in the arena (a channel, below): [LOCAL, 0, token]
 * with the family token of mproc__mgr_family_token -> [OK, channel,
 * token]; the server makes the channel and answers on the socket, then
 * serves the queues. The socket stays open: its end of file tells either
 * side that the other is gone. */
uint64_t mproc__mgr_family_token(void);

/* How long a manager connection's receive polls for the other side's next
 * message before it sleeps (mproc__conn_set_spin): a client waiting for a
 * reply, a server thread for a client's next request; 0 on one CPU. */
#define MPROC__MGR_SPIN_CLIENT_NS 200000u
#define MPROC__MGR_SPIN_SERVER_NS 100000u
uint32_t mproc__mgr_spin_ns(uint32_t ns); /* manager/protocol.c */

/* The pair of queues, in the arena, shared by the client and the server
 * thread serving it. Each side holds a share (a bit of held); the one that
 * releases the last share frees the channel. A side releases its share
 * when it is done, before it closes its end of the socket; a side that
 * sees the other's end closed (end of file: the other is done, exited or
 * was killed, and will never touch the channel again) releases the other's
 * share too, first (while its own keeps the channel alive, a share
 * released twice is harmless). So a client that exits or is killed without
 * mproc_manager_free leaves nothing behind: the server frees its channel. */
enum { MPROC__MGR_CH_CLIENT = 1u, MPROC__MGR_CH_SERVER = 2u };
typedef struct mproc__mgr_channel {
    uint32_t magic;
    _Atomic uint32_t held; /* the shares still held */
    mproc_queue *req, *rep;
    _Atomic int cpu[2]; /* where each side last waited (-1: not yet) */
    bool no_spin[2];    /* the spin of the queue each side waits on is 0 */
} mproc__mgr_channel;
int mproc__mgr_channel_new(mproc__mgr_channel **out);
void mproc__mgr_channel_release(mproc__mgr_channel *ch, unsigned share);
bool mproc__mgr_channel_valid(const mproc__mgr_channel *ch);

/* The sides of a channel, and the next message for one of them (the
 * client's replies, the server's requests), as mproc_queue_get: the waiter
 * first spins on the queue for up to MPROC__MGR_SPIN_LOCAL_NS, unless the
 * other side last waited on the CPU it runs on (manager/local_wait.c).
 * mproc__mgr_channel_tune sets a new channel up for this. */
enum { MPROC__MGR_CLIENT = 0, MPROC__MGR_SERVER = 1 };
#define MPROC__MGR_SPIN_LOCAL_NS 30000u
void mproc__mgr_channel_tune(mproc__mgr_channel *ch);
int mproc__mgr_channel_get(mproc__mgr_channel *ch, int side, void **buf, size_t *len,
                           int timeout_ms);
#define MPROC__MGR_LOCAL_SLICE_MS 500 /* how often a local waiter checks the socket */

/* The built-in types: containers (manager/containers.c) and queues and
 * synchronisation objects (manager/sync.c). */
extern const mproc_type_def mproc__mgr_container_types[];
extern const size_t mproc__mgr_ncontainer;
extern const mproc_type_def mproc__mgr_sync_types[];
extern const size_t mproc__mgr_nsync;

/* ---- a method's side of a call (manager/protocol.c) ---- */

/* For built-in methods: fails the call with a message (sets the thread's
 * task failure message) and returns code. */
int mproc__mgr_fail(int code, const char *fmt, ...) MPROC_PRINTF(2, 3);

/* In a constructor: MPROC_EINVAL (with a message naming call, "list()",
 * and an example of the right form) when args holds more than max
 * arguments; else 0. */
int mproc__mgr_at_most(const mproc_value *args, size_t max, const char *call, const char *example);

/* The n-th argument of a call (NULL when absent). */
const mproc_value *mproc__mgr_arg(const mproc_value *args, size_t n);

/* In a method: its result carries references its container held (a pop,
 * a queue get); they pass to the caller instead of being taken anew. */
void mproc__mgr_result_owned(void);

/* In a method: false once the client it works for is gone (it closed its
 * socket: it freed its handle, exited or was killed) or the server stops;
 * the method then gives up (any failure), and nothing is answered. A
 * method that waits does so in slices of at most MPROC__MGR_WAIT_SLICE_MS
 * and asks between them, so that a dead client's wait takes nothing and
 * its connection's thread and fd go within a slice. Costs a poll(2).
 * True outside a connection's thread. */
bool mproc__mgr_client_alive(void);
#define MPROC__MGR_WAIT_SLICE_MS 200

/* In a method that succeeds by taking something for its client (a queue
 * item, a semaphore unit, a lock): if the reply then cannot reach the
 * client (it is found gone first, or the reply cannot be sent), the server
 * calls undo(state, result) on the connection's thread, with the object's
 * state and the method's result (NULL if lost), to give it back. */
typedef void (*mproc__mgr_undo_fn)(void *state, const mproc_value *result);
void mproc__mgr_on_undelivered(mproc__mgr_undo_fn undo);

/* ---- the server's side of a call (manager/protocol.c) ---- */

/* The client this thread's calls work for: mproc__mgr_client_alive asks
 * alive(ud) (NULL: none, every call is alive). */
void mproc__mgr_call_watch(bool (*alive)(void *ud), void *ud);
/* Before a method runs: forgets what the last one said. After it: what
 * it said (mproc__mgr_result_owned, mproc__mgr_on_undelivered). */
void mproc__mgr_call_begin(void);
bool mproc__mgr_call_owned(void);
mproc__mgr_undo_fn mproc__mgr_call_undo(void);

/* Server side: takes a reference for every handle in v, or none and
 * false when one names no object (the caller then refuses the value). */
bool mproc__mgr_hold_new(const mproc_value *v);

/* Server side: the references a value holds (handles) are taken (+1) or
 * dropped (-1) on behalf of a container that stores or forgets it. */
void mproc__mgr_hold(const mproc_value *v, int delta);

#endif
