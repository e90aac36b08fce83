/* The manager server: a listener, a thread per connection, the requests
 * of the protocol (manager/manager.h) on the object table. A connection's
 * references are counted per connection and dropped when it closes, even
 * when the client died. A client that sends something malformed, too big,
 * or nothing for idle_timeout_ms is disconnected; the others go on.
 *
 * A method waiting on behalf of a client (a queue get, a lock acquire)
 * watches that client's socket between slices of its wait
 * (mproc__mgr_client_alive): once the client is gone, it takes nothing and
 * the connection's thread ends. What a method took for a client whose
 * reply then cannot be delivered is given back (mproc__mgr_on_undelivered). */
#include "arena/arena.h"
#include "conn/auth.h"
#include "conn/conn.h"
#include "pool/future.h"
#include "base/log.h"
#include "manager/server.h"
#include "queue/queue.h"
#include "mproc/arena.h"
#include "mproc/listener.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_CONNS 4096
#define CONN_STACK        (256 * 1024)

typedef struct server {
    pthread_mutex_t mu; /* guards clients */
    struct client *clients;
    mproc_listener *l;
    const mproc_type_def *types; /* custom ones; the built-in ones are searched first */
    size_t ntypes;
    int idle_ms, max_conns, handshake_ms;
    size_t max_msg;  /* the cap of a request, and of a reply to a client that did not say its own */
    mproc_auth auth; /* each connection's handshake, in its own thread */
    uint8_t key[MPROC_AUTHKEY_MAX];
    int wake[2]; /* written once to stop the accept loop */
    atomic_int conns;
    atomic_bool stop;
    /* Objects shared by name (mproc_manager_share), each holding a
     * reference; mu. */
    struct shared_name *names;
    size_t nnames, names_cap;
} server;

typedef struct shared_name {
    char *name;
    uint64_t id;
} shared_name;

typedef struct conn_ref {
    uint64_t id;
    long n;     /* references this connection holds, loans included */
    long loans; /* of those, lent with a reply: claimed by the next INCREFs */
} conn_ref;

typedef struct client {
    server *s;
    struct client *next;
    mproc_conn *c;
    mproc__mgr_channel *ch; /* a local client's queues (manager/manager.h); s->mu */
    bool shutdown;          /* it asked the server to stop */
    size_t max_reply;       /* the smaller of the server's cap and the client's */
    bool cut;               /* the request's method gave up: its client is gone, or we stop */
    /* What the request's method took and how to give it back (its object
     * held meanwhile), until its reply is delivered. */
    void (*undo)(void *state, const mproc_value *result);
    mgr_obj *undo_obj;
    conn_ref *refs;
    size_t nrefs, cap;
} client;

static void stop_server(server *s)
{
    atomic_store(&s->stop, true);
    char c = 1;
    if (s->l && write(s->wake[1], &c, 1) < 0) { /* already written */
    }
}

/* ---- per-connection references ------------------------------------------------ */

static int client_ref(client *cl, uint64_t id, int delta)
{
    size_t i = 0;
    while (i < cl->nrefs && cl->refs[i].id != id) i++;
    if (i == cl->nrefs) {
        if (delta < 0) return MPROC_ENOENT;
        if (cl->nrefs == cl->cap) {
            size_t nc = cl->cap ? cl->cap * 2 : 8;
            conn_ref *n = realloc(cl->refs, nc * sizeof *n);
            if (!n) return MPROC_ENOMEM;
            cl->refs = n;
            cl->cap = nc;
        }
        cl->refs[cl->nrefs++] = (conn_ref){id, 0, 0};
    }
    if (cl->refs[i].n + delta < 0) return MPROC_ENOENT;
    cl->refs[i].n += delta;
    if (cl->refs[i].n == 0) cl->refs[i] = cl->refs[--cl->nrefs];
    return 0;
}

/* ---- replies --------------------------------------------------------------------- */

static mproc_value *reply2(int kind, mproc_value *a, mproc_value *b)
{
    mproc_value *r = mproc_value_list();
    if (r && (mproc_value_list_append(r, mproc_value_int(kind)) ||
              (a && mproc_value_list_append(r, a)) || (b && mproc_value_list_append(r, b)))) {
        mproc_value_free(r);
        return NULL;
    }
    if (!r) {
        mproc_value_free(a);
        mproc_value_free(b);
    }
    return r;
}

static mproc_value *fail(int kind, int code, const char *msg)
{
    return reply2(kind, mproc_value_int(code), mproc_value_str(msg ? msg : mproc_strerror(code)));
}

/* The reply r (still the caller's) encoded for cl: one over the
 * connection's cap (or that cannot be encoded) is replaced by an error,
 * and the connection goes on. The method has run: what it took is given
 * back if it can be (a queue's item, a semaphore's unit), else only its
 * result is lost (a list's pop). */
static void drop_loans(client *cl);
static void give_back(client *cl, const mproc_value *r);
static int encode_reply(client *cl, const mproc_value *r, void **out, size_t *len)
{
    size_t cap = cl->max_reply;
    if (cl->ch && cap > MPROC_QUEUE_MAX_MESSAGE) cap = MPROC_QUEUE_MAX_MESSAGE;
    int rc = r ? mproc_value_encode(r, out, len) : MPROC_ENOMEM;
    if (!rc && *len <= cap) return 0;
    char msg[160];
    if (!rc) {
        free(*out);
        *out = NULL;
        snprintf(msg, sizeof msg,
                 "the reply (%zu bytes) is over the connection's limit (%zu bytes)", *len, cap);
        rc = MPROC_EMSGSIZE;
    } else {
        snprintf(msg, sizeof msg, "the reply cannot be encoded: %s", mproc_strerror(rc));
    }
    give_back(cl, r);
    drop_loans(cl); /* the references the result carried */
    mproc_value *e = fail(MREP_SERVER_ERR, rc, msg);
    rc = e ? mproc_value_encode(e, out, len) : MPROC_ENOMEM;
    mproc_value_free(e);
    return rc;
}

/* ---- requests ---------------------------------------------------------------------- */

static const mproc_type_def *find_type(const server *s, const char *name)
{
    const mproc_type_def *sets[] = {mproc__mgr_container_types, mproc__mgr_sync_types, s->types};
    size_t ns[] = {mproc__mgr_ncontainer, mproc__mgr_nsync, s->ntypes};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < ns[k]; i++)
            if (strcmp(sets[k][i].typeid, name) == 0) return &sets[k][i];
    return NULL;
}

/* A type's constructor and an object's method run as a pool's tasks do:
 * what they say through mproc_task_fail comes back in the error. */
typedef struct run_create {
    const mproc_type_def *t;
    const mproc_value *args;
    void *state;
} run_create;

static int do_create(void *ctx)
{
    run_create *c = ctx;
    c->state = NULL;
    return c->t->create(c->args, &c->state);
}

typedef struct run_method {
    mproc_method_fn fn;
    void *state;
    const mproc_value *args;
    mproc_value *result; /* NULL on failure */
} run_method;

static int do_method(void *ctx)
{
    run_method *c = ctx;
    c->result = NULL;
    int rc = c->fn(c->state, c->args, &c->result);
    if (rc) {
        mproc_value_free(c->result);
        c->result = NULL;
    }
    return rc;
}

/* A new object with one reference (*id), or: MPROC_ENOENT (unknown type),
 * MPROC_EMETHOD (the constructor failed with *code and *msg, malloc'd or
 * NULL), another code (the object table's). */
static int make_object(server *s, const char *typeid, const mproc_value *args, uint64_t *id,
                       const mproc_type_def **type, int *code, char **msg)
{
    const mproc_type_def *t = typeid ? find_type(s, typeid) : NULL;
    if (!t) return MPROC_ENOENT;
    run_create rc_ = {t, args, NULL};
    *msg = NULL;
    int rc = mproc__task_run_call(do_create, &rc_, msg);
    void *state = rc_.state;
    if (rc) {
        *code = rc;
        return MPROC_EMETHOD;
    }
    if ((rc = mproc__mgr_obj_add(t, state, id))) {
        if (t->destroy) t->destroy(state);
        return rc;
    }
    *type = t;
    return 0;
}

static mproc_value *create(client *cl, const char *typeid, const mproc_value *args)
{
    uint64_t id;
    const mproc_type_def *t = NULL;
    char *msg = NULL;
    int code = 0, rc = make_object(cl->s, typeid, args, &id, &t, &code, &msg);
    if (rc == MPROC_ENOENT) return fail(MREP_SERVER_ERR, MPROC_ENOENT, "unknown type");
    if (rc == MPROC_EMETHOD) {
        mproc_value *r = fail(MREP_METHOD_ERR, code, msg);
        free(msg);
        return r;
    }
    if (rc) return fail(MREP_SERVER_ERR, rc, NULL);
    if ((rc = client_ref(cl, id, +1))) {
        mproc__mgr_obj_ref(id, -1);
        return fail(MREP_SERVER_ERR, rc, NULL);
    }
    return reply2(MREP_OK_PROXY, mproc_value_uint(id), mproc_value_str(t->typeid));
}

static const mproc_method_def *find_method(const mproc_type_def *t, const char *name)
{
    for (size_t i = 0; name && i < t->nmethods; i++)
        if (strcmp(t->methods[i].name, name) == 0) return &t->methods[i];
    return NULL;
}

/* ---- loans ---------------------------------------------------------------------
 *
 * A reply that carries references (a value read out of a container, a
 * reference taken out of a queue) lends this connection one reference per
 * handle, so the object outlives the reply even when the container held its
 * last reference; the client's INCREF (mproc_proxy_from_value) claims it,
 * and loans not claimed by the next request are dropped. A method that
 * hands over its container's own references (a pop, a queue get) says so
 * with mproc__mgr_result_owned: they become the loans. */

static void lend(client *cl, const mproc_value *v, bool owned)
{
    switch (mproc_value_kind_of(v)) {
    case MPROC_V_HANDLE: {
        uint32_t type;
        uint64_t id;
        if (mproc_value_get_handle(v, &type, &id) || type != MPROC__HANDLE_OBJ) break;
        if (!owned && !mproc__mgr_obj_ref(id, +1)) break; /* gone: nothing to lend */
        if (client_ref(cl, id, +1) != 0) {
            mproc__mgr_obj_ref(id, -1);
            break;
        }
        for (size_t i = 0; i < cl->nrefs; i++)
            if (cl->refs[i].id == id) cl->refs[i].loans++;
        break;
    }
    case MPROC_V_LIST:
        for (size_t i = 0; i < mproc_value_len(v); i++) lend(cl, mproc_value_list_get(v, i), owned);
        break;
    case MPROC_V_MAP:
        for (size_t i = 0; i < mproc_value_len(v); i++) {
            mproc_value *k, *x;
            mproc_value_map_entry(v, i, &k, &x);
            lend(cl, k, owned);
            lend(cl, x, owned);
        }
        break;
    default:
        break;
    }
}

static void drop_loans(client *cl)
{
    for (size_t i = 0; i < cl->nrefs;) {
        conn_ref *r = &cl->refs[i];
        long k = r->loans;
        uint64_t id = r->id;
        if (!k) {
            i++;
            continue;
        }
        r->loans = 0;
        r->n -= k;
        if (r->n == 0)
            cl->refs[i] = cl->refs[--cl->nrefs];
        else
            i++;
        mproc__mgr_obj_ref(id, -(int)k);
    }
}

/* Claims a loan of id for a proxy: true if there was one. */
static bool claim_loan(client *cl, uint64_t id)
{
    for (size_t i = 0; i < cl->nrefs; i++)
        if (cl->refs[i].id == id && cl->refs[i].loans > 0) {
            cl->refs[i].loans--;
            return true;
        }
    return false;
}

/* ---- clients that go while a method works for them --------------------------- */

/* The client closed its end of the socket (it freed its handle, exited or
 * was killed), or the server shut it: end of file or an error. Requests it
 * sent before (pipelined) do not count. */
static bool client_gone(const client *cl)
{
    struct pollfd pf = {.fd = mproc_conn_fileno(cl->c), .events = POLLRDHUP};
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* mproc__mgr_client_alive on a connection's thread: a method working for
 * cl asks. */
static bool still_there(void *ud)
{
    client *cl = ud;
    if (atomic_load(&cl->s->stop) || client_gone(cl)) {
        cl->cut = true;
        return false;
    }
    return true;
}

/* The reply to the request was delivered (or there was nothing to give
 * back): forget the undo. */
static void settle(client *cl)
{
    mproc__mgr_obj_put(cl->undo_obj);
    cl->undo = NULL;
    cl->undo_obj = NULL;
}

/* The reply r (the method's result in r[1]) cannot reach the client: what
 * the method took goes back. */
static void give_back(client *cl, const mproc_value *r)
{
    if (cl->undo) cl->undo(cl->undo_obj->state, r ? mproc__mgr_arg(r, 1) : NULL);
    settle(cl);
}

static mproc_value *call(client *cl, uint64_t id, const char *name, const mproc_value *args)
{
    mgr_obj *o = mproc__mgr_obj_get(id);
    if (!o) return fail(MREP_SERVER_ERR, MPROC_ENOENT, "unknown object");
    const mproc_method_def *m = find_method(o->type, name);
    if (!m) {
        mproc__mgr_obj_put(o);
        return fail(MREP_SERVER_ERR, MPROC_ENOENT, "no such method");
    }
    char *msg = NULL;
    mproc__mgr_call_begin();
    run_method rm = {m->fn, o->state, args, NULL};
    int rc = mproc__task_run_call(do_method, &rm, &msg);
    mproc_value *result = rm.result;
    mproc__mgr_undo_fn undo = mproc__mgr_call_undo();
    if (!rc && undo && !m->returns_typeid) { /* kept until the reply is out */
        cl->undo = undo;
        cl->undo_obj = o;
    } else {
        mproc__mgr_obj_put(o);
    }
    if (!rc && result) lend(cl, result, mproc__mgr_call_owned());
    if (rc) {
        mproc_value *r = fail(MREP_METHOD_ERR, rc, msg);
        free(msg);
        return r;
    }
    if (m->returns_typeid) { /* a new object made from the result */
        mproc_value *args2 = mproc_value_list();
        if (!args2 || mproc_value_list_append(args2, result ? result : mproc_value_nil())) {
            mproc_value_free(args2);
            return fail(MREP_SERVER_ERR, MPROC_ENOMEM, NULL);
        }
        mproc_value *r = create(cl, m->returns_typeid, args2);
        mproc_value_free(args2);
        return r;
    }
    return reply2(MREP_OK, result ? result : mproc_value_nil(), NULL);
}

/* Takes or drops a reference of this connection. */
static mproc_value *ref(client *cl, uint64_t id, int delta)
{
    if (delta > 0 && claim_loan(cl, id)) { /* the reply's reference becomes the proxy's */
        mgr_obj *o = mproc__mgr_obj_get(id);
        mproc_value *r = reply2(MREP_OK, mproc_value_str(o ? o->type->typeid : ""), NULL);
        mproc__mgr_obj_put(o);
        return r;
    }
    if (delta > 0 && !mproc__mgr_obj_ref(id, +1))
        return fail(MREP_SERVER_ERR, MPROC_ENOENT, "unknown object");
    int rc = client_ref(cl, id, delta);
    if (rc) {
        if (delta > 0) mproc__mgr_obj_ref(id, -1);
        return fail(MREP_SERVER_ERR, rc, "no such reference");
    }
    if (delta < 0) {
        mproc__mgr_obj_ref(id, -1);
        return reply2(MREP_OK, mproc_value_nil(), NULL);
    }
    mgr_obj *o = mproc__mgr_obj_get(id); /* its type name, for the proxy */
    mproc_value *r = reply2(MREP_OK, mproc_value_str(o ? o->type->typeid : ""), NULL);
    mproc__mgr_obj_put(o);
    return r;
}

/* ---- objects shared by name ------------------------------------------------------------ */

/* Names id (holding a reference of the server's), or unnames name (id 0).
 * The reference is taken by the caller (for id) and dropped here for the
 * object the name named before. */
/* The copy of the name goes into s->names, freed by names_clear or a
 * later name_set (the analyzer loses it in the array). */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static int name_set(server *s, const char *name, uint64_t id)
{
    int rc = 0;
    uint64_t old = 0;
    MPROC__LOCK(&s->mu);
    size_t i = 0;
    while (i < s->nnames && strcmp(s->names[i].name, name) != 0) i++;
    if (i < s->nnames) {
        old = s->names[i].id;
        if (id) {
            s->names[i].id = id;
        } else {
            free(s->names[i].name);
            s->names[i] = s->names[--s->nnames];
        }
    } else if (!id) {
        rc = MPROC_ENOENT;
    } else {
        if (s->nnames == s->names_cap) { /* room first, then the name */
            size_t nc = s->names_cap ? s->names_cap * 2 : 4;
            shared_name *n = realloc(s->names, nc * sizeof *n);
            if (n) {
                s->names = n;
                s->names_cap = nc;
            }
        }
        char *c = s->nnames < s->names_cap ? strdup(name) : NULL;
        if (c)
            s->names[s->nnames++] = (shared_name){c, id};
        else
            rc = MPROC_ENOMEM;
    }
    MPROC__UNLOCK(&s->mu);
    if (old) mproc__mgr_obj_ref(old, -1);
    return rc;
}
MPROC__ANALYZER_ON

/* Forgets every name (their references dropped). */
static void names_clear(server *s)
{
    MPROC__LOCK(&s->mu);
    shared_name *names = s->names;
    size_t n = s->nnames;
    s->names = NULL;
    s->nnames = s->names_cap = 0;
    MPROC__UNLOCK(&s->mu);
    for (size_t i = 0; i < n; i++) {
        mproc__mgr_obj_ref(names[i].id, -1);
        free(names[i].name);
    }
    free(names);
}

static mproc_value *share(client *cl, const char *name, const mproc_value *idv)
{
    uint64_t id = 0;
    if (!name || !*name) return fail(MREP_SERVER_ERR, MPROC_EINVAL, "a shared name is empty");
    if (idv && mproc_value_kind_of(idv) != MPROC_V_NIL) {
        if (mproc_value_get_uint(idv, &id) || id == 0)
            return fail(MREP_SERVER_ERR, MPROC_EPROTO, "malformed request");
        if (!mproc__mgr_obj_ref(id, +1))
            return fail(MREP_SERVER_ERR, MPROC_ENOENT, "unknown object");
    }
    int rc = name_set(cl->s, name, id);
    if (rc) {
        if (id) mproc__mgr_obj_ref(id, -1);
        char msg[160];
        snprintf(msg, sizeof msg, "nothing is shared as '%.100s'", name);
        return fail(MREP_SERVER_ERR, rc, rc == MPROC_ENOENT ? msg : NULL);
    }
    return reply2(MREP_OK, mproc_value_nil(), NULL);
}

/* The object shared under name, with a reference of the connection. */
static mproc_value *get_shared(client *cl, const char *name)
{
    uint64_t id = 0;
    MPROC__LOCK(&cl->s->mu);
    for (size_t i = 0; name && i < cl->s->nnames; i++)
        if (strcmp(cl->s->names[i].name, name) == 0) id = cl->s->names[i].id;
    /* taken under the lock: a SHARE replacing the name cannot free it first */
    bool alive = id && mproc__mgr_obj_ref(id, +1);
    MPROC__UNLOCK(&cl->s->mu);
    if (!alive) {
        char msg[160];
        snprintf(msg, sizeof msg, "nothing is shared as '%.100s'", name ? name : "");
        return fail(MREP_SERVER_ERR, MPROC_ENOENT, msg);
    }
    int rc = client_ref(cl, id, +1);
    if (rc) {
        mproc__mgr_obj_ref(id, -1);
        return fail(MREP_SERVER_ERR, rc, NULL);
    }
    mgr_obj *o = mproc__mgr_obj_get(id);
    mproc_value *r =
        reply2(MREP_OK_PROXY, mproc_value_uint(id), mproc_value_str(o ? o->type->typeid : ""));
    mproc__mgr_obj_put(o);
    return r;
}

/* A type or method name from a request (NULL when absent or not a
 * string); *bad when it holds a NUL byte: read as a C string it would name
 * another ("len\0junk" would be len). */
static const char *name_of(const mproc_value *v, bool *bad)
{
    size_t len = 0;
    const char *s = mproc_value_get_str(v, &len);
    *bad = s && strlen(s) != len;
    return s;
}

static mproc_value *handle(client *cl, const mproc_value *req)
{
    int64_t op;
    if (mproc_value_kind_of(req) != MPROC_V_LIST ||
        mproc_value_get_int(mproc__mgr_arg(req, 0), &op))
        return fail(MREP_SERVER_ERR, MPROC_EPROTO, "malformed request");
    if (op != MOP_INCREF) drop_loans(cl);
    uint64_t id = 0;
    bool has_id = !mproc_value_get_uint(mproc__mgr_arg(req, 1), &id);
    const mproc_value *args = mproc__mgr_arg(req, op == MOP_CREATE ? 2 : 3);
    if (args && mproc_value_kind_of(args) == MPROC_V_NIL) args = NULL;
    if (args && mproc_value_kind_of(args) != MPROC_V_LIST)
        return fail(MREP_SERVER_ERR, MPROC_EPROTO, "arguments must be a list");
    bool bad = false;
    const char *name = name_of(mproc__mgr_arg(req, op == MOP_CALL ? 2 : 1), &bad);
    if (bad && (op == MOP_CREATE || op == MOP_CALL))
        return fail(MREP_SERVER_ERR, MPROC_EINVAL,
                    op == MOP_CREATE ? "a type name holds a NUL byte"
                                     : "a method name holds a NUL byte");
    switch (op) {
    case MOP_CREATE:
        return create(cl, name, args);
    case MOP_CALL:
        if (!has_id) break;
        return call(cl, id, name, args);
    case MOP_INCREF:
    case MOP_DECREF:
        if (!has_id) break;
        return ref(cl, id, op == MOP_INCREF ? +1 : -1);
    case MOP_LOCAL: { /* the client's family token; the channel is made here */
        uint64_t token = 0;
        mproc_value_get_uint(mproc__mgr_arg(req, 2), &token);
        if (token != mproc__mgr_family_token() || cl->ch)
            return fail(MREP_SERVER_ERR, MPROC_EINVAL, "not a local client of this family");
        mproc__mgr_channel *ch;
        int rc = mproc__mgr_channel_new(&ch);
        if (rc) return fail(MREP_SERVER_ERR, rc, "no channel");
        MPROC__LOCK(&cl->s->mu); /* against a stop looking at cl->ch */
        bool stopping = atomic_load(&cl->s->stop);
        if (!stopping) cl->ch = ch;
        MPROC__UNLOCK(&cl->s->mu);
        if (stopping) {
            mproc__mgr_channel_release(ch, MPROC__MGR_CH_CLIENT | MPROC__MGR_CH_SERVER);
            return fail(MREP_SERVER_ERR, MPROC_ECONNRESET, "the server stops");
        }
        return reply2(MREP_OK, mproc_value_uint((uintptr_t)ch), mproc_value_uint(token));
    }
    case MOP_HELLO: {
        uint64_t theirs = 0;
        if (mproc_value_get_uint(mproc__mgr_arg(req, 1), &theirs) || theirs == 0) break;
        cl->max_reply = theirs < cl->s->max_msg ? (size_t)theirs : cl->s->max_msg;
        return reply2(MREP_OK, mproc_value_uint(cl->s->max_msg), NULL);
    }
    case MOP_SHARE:
    case MOP_GET:
        if (bad) return fail(MREP_SERVER_ERR, MPROC_EINVAL, "a shared name holds a NUL byte");
        return op == MOP_SHARE ? share(cl, name, mproc__mgr_arg(req, 2)) : get_shared(cl, name);
    case MOP_SHUTDOWN: /* once the reply is out: see serve_client */
        cl->shutdown = true;
        return reply2(MREP_OK, mproc_value_nil(), NULL);
    default:
        break;
    }
    return fail(MREP_SERVER_ERR, MPROC_EPROTO, "malformed request");
}

/* ---- one request without a connection (fuzzing) ---------------------------------------- */

#ifdef MPROC_TESTING

/* A client context of its own, with no connection, listener or thread:
 * the fuzz target (tests/fuzz) hands it requests as a connection's thread
 * would. Not for use while this process serves a manager. */
static server lone_server = {.mu = PTHREAD_MUTEX_INITIALIZER, .max_msg = MPROC__MGR_MAX_MSG};
static client lone_client = {.s = &lone_server, .max_reply = MPROC__MGR_MAX_MSG};

mproc_value *mproc__mgr_handle_request(const mproc_value *req)
{
    mproc_value *r = handle(&lone_client, req);
    settle(&lone_client);
    return r;
}

void mproc__mgr_handle_reset(void)
{
    client *cl = &lone_client;
    for (size_t i = 0; i < cl->nrefs; i++) mproc__mgr_obj_ref(cl->refs[i].id, -cl->refs[i].n);
    free(cl->refs);
    cl->refs = NULL;
    cl->nrefs = cl->cap = 0;
    names_clear(&lone_server);
    atomic_store(&lone_server.stop, false);
}
#endif

/* ---- connections ----------------------------------------------------------------------- */

/* The client closed its socket (or wrote on it, which a local client
 * never does). */
static bool socket_gone(mproc_conn *c)
{
    struct pollfd pf = {.fd = mproc_conn_fileno(c), .events = POLLIN};
    return poll(&pf, 1, 0) != 0;
}

/* Sends the reply r (freed here) to cl, over its socket or (local) its
 * channel's reply queue (unbounded: the put never waits for room); what
 * the method took is given back if the reply cannot reach the client.
 * Nonzero: the connection is done (its method gave up, or the reply was
 * not delivered). */
static int reply(client *cl, mproc_value *r, bool local)
{
    if (cl->cut) { /* its method gave up: the client is gone, or we stop */
        give_back(cl, r);
        mproc_value_free(r);
        return 1;
    }
    void *out = NULL;
    size_t olen = 0;
    int rc;
    if (!local && cl->undo && client_gone(cl))
        rc = MPROC_ECONNRESET; /* a grant its client would not read */
    else if (!(rc = encode_reply(cl, r, &out, &olen)))
        rc = local ? mproc_queue_put(cl->ch->rep, out, olen, MPROC_FOREVER)
                   : mproc_conn_send_bytes(cl->c, out, olen);
    free(out);
    /* a grant put in the reply queue: back if it will never be read */
    if (local && !rc && cl->undo && client_gone(cl) && mproc_queue_qsize(cl->ch->rep) > 0)
        rc = MPROC_ECONNRESET;
    if (rc)
        give_back(cl, r);
    else
        settle(cl);
    mproc_value_free(r);
    if (cl->shutdown) stop_server(cl->s);
    return rc;
}

/* Serves a local client's queues until it goes. */
static void serve_local(client *cl)
{
    long long idle_ns = cl->s->idle_ms > 0 ? (long long)cl->s->idle_ms * 1000000 : 0;
    long long last = mproc_now_ns();
    while (!atomic_load(&cl->s->stop)) {
        void *buf;
        size_t len;
        int rc = mproc__mgr_channel_get(cl->ch, MPROC__MGR_SERVER, &buf, &len,
                                        MPROC__MGR_LOCAL_SLICE_MS);
        if (rc == MPROC_ETIMEDOUT) {
            if (socket_gone(cl->c) || (idle_ns && mproc_now_ns() - last > idle_ns)) break;
            continue;
        }
        if (rc) break;
        last = mproc_now_ns();
        mproc_value *req = NULL, *r;
        cl->cut = false;
        /* (a message is taken whole from the queue: one over the cap is
         * refused, and the connection stays in step) */
        rc = len > cl->s->max_msg ? MPROC_EMSGSIZE : mproc_value_decode(buf, len, NULL, &req);
        free(buf);
        r = rc == MPROC_EMSGSIZE ? fail(MREP_SERVER_ERR, rc, "request over the server's limit")
            : rc                 ? fail(MREP_SERVER_ERR, rc, "malformed message")
                                 : handle(cl, req);
        mproc_value_free(req);
        if (reply(cl, r, true)) break;
    }
}

static void *serve_client(void *arg)
{
    client *cl = arg;
    mproc__mgr_call_watch(still_there, cl);
    mproc_conn_set_max_message(cl->c, cl->s->max_msg);
    /* Nothing is decoded before the client has authenticated (both ways,
     * as Python's Listener does). */
    const mproc_auth *auth = &cl->s->auth;
    if (auth->key) { /* within handshake_ms in all: a silent client is dropped */
        long long end = mproc_now_ns() + (long long)cl->s->handshake_ms * 1000000;
        if (mproc_deliver_challenge(cl->c, auth, cl->s->handshake_ms) != 0) goto done;
        long long left = (end - mproc_now_ns()) / 1000000;
        if (left <= 0 || mproc_answer_challenge(cl->c, auth, (int)left) != 0) goto done;
    }
    int idle = cl->s->idle_ms > 0 ? cl->s->idle_ms : MPROC_FOREVER;
    mproc__conn_set_spin(cl->c, mproc__mgr_spin_ns(MPROC__MGR_SPIN_SERVER_NS));
    while (!atomic_load(&cl->s->stop)) {
        mproc_value *req;
        int rc = mproc_conn_recv_value(cl->c, &req, idle);
        if (rc == MPROC_EPROTO || rc == MPROC_E2BIG || rc == MPROC_EMSGSIZE) { /* say so, then go */
            mproc_value *r = fail(MREP_SERVER_ERR, rc, "malformed message");
            if (r) mproc_conn_send_value(cl->c, r);
            mproc_value_free(r);
            break;
        }
        if (rc) break; /* closed, idle, too big, gone */
        cl->cut = false;
        mproc_value *r = handle(cl, req);
        mproc_value_free(req);
        if (reply(cl, r, false)) break;
        if (cl->ch) { /* switched to its queues */
            serve_local(cl);
            break;
        }
    }
done:;
    server *s = cl->s;
    /* A local client's channel: released before the socket is closed (the
     * client frees it once it sees the end of file, manager/manager.h);
     * a client whose end is closed is done with it. */
    MPROC__LOCK(&s->mu);
    mproc__mgr_channel *ch = cl->ch;
    cl->ch = NULL;
    MPROC__UNLOCK(&s->mu);
    if (ch && client_gone(cl)) mproc__mgr_channel_release(ch, MPROC__MGR_CH_CLIENT);
    mproc__mgr_channel_release(ch, MPROC__MGR_CH_SERVER);
    for (size_t i = 0; i < cl->nrefs; i++) mproc__mgr_obj_ref(cl->refs[i].id, -cl->refs[i].n);
    free(cl->refs);
    MPROC__LOCK(&s->mu);
    for (client **pp = &s->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    mproc_conn_free(cl->c);
    MPROC__UNLOCK(&s->mu);
    free(cl);
    /* The blocks this thread freed (a channel, objects) go back to the
     * arena before the count lets a stopping server exit without us. */
    mproc__arena_thread_flush();
    if (auth->key) mproc__auth_thread_done();
    atomic_fetch_sub(&s->conns, 1);
    mproc__mgr_call_watch(NULL, NULL);
    return NULL;
}

/* A started client's record is in s->clients and its thread's to free
 * (serve_client): not a leak, whatever the analyzer says. */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static void start_client(server *s, mproc_conn *c)
{
    client *cl = calloc(1, sizeof *cl);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, CONN_STACK);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (cl && atomic_fetch_add(&s->conns, 1) < s->max_conns) {
        cl->s = s;
        cl->c = c;
        cl->max_reply = s->max_msg;
        MPROC__LOCK(&s->mu);
        cl->next = s->clients;
        s->clients = cl;
        if (pthread_create(&t, &a, serve_client, cl) == 0)
            c = NULL;
        else
            s->clients = cl->next;
        MPROC__UNLOCK(&s->mu);
    } else if (cl) {
        MPROC__INFO("manager: too many connections, one refused");
    }
    if (c) {
        if (cl) atomic_fetch_sub(&s->conns, 1);
        free(cl);
        mproc_conn_free(c);
    }
    pthread_attr_destroy(&a);
}
MPROC__ANALYZER_ON

/* The objects o shares by name from the start (their errors logged). */
static int share_at_start(server *s, const mproc_manager_opts *o)
{
    for (size_t i = 0; i < o->nshared; i++) {
        const mproc_manager_shared *sh = &o->shared[i];
        uint64_t id;
        const mproc_type_def *t;
        char *msg = NULL;
        int code = 0, rc = make_object(s, sh->typeid, sh->args, &id, &t, &code, &msg);
        if (!rc && (rc = name_set(s, sh->name, id))) mproc__mgr_obj_ref(id, -1);
        if (rc)
            mproc_log(MPROC_LOG_ERROR, "manager: cannot share '%s' (a %s): %s%s%s", sh->name,
                      sh->typeid, mproc_strerror(rc == MPROC_EMETHOD ? code : rc), msg ? ": " : "",
                      msg ? msg : "");
        free(msg);
        if (rc) return rc == MPROC_EMETHOD ? code : rc;
    }
    return 0;
}

int mproc__mgr_serve(mproc_listener *l, const mproc_auth *auth, const mproc_manager_opts *o,
                     void (*ready)(const char *address, void *ud), void *ud)
{
    server *s = calloc(1, sizeof *s);
    if (!s) return MPROC_ENOMEM;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(s);
        return MPROC__ERRNO();
    }
    pthread_mutex_init(&s->mu, NULL);
    s->l = l;
    s->types = o->types;
    s->ntypes = o->ntypes;
    s->idle_ms = o->idle_timeout_ms;
    s->handshake_ms =
        o->handshake_timeout_ms > 0 ? o->handshake_timeout_ms : MPROC_MANAGER_HANDSHAKE_MS;
    s->max_conns = o->max_connections > 0 ? o->max_connections : DEFAULT_MAX_CONNS;
    s->max_msg = o->max_message ? o->max_message : MPROC__MGR_MAX_MSG;
    s->auth = *auth;
    size_t klen = 0;
    if (auth->key || auth->family_key) { /* a copy: the caller's may go away */
        if (auth->key) {
            klen = auth->key_len;
            memcpy(s->key, auth->key, klen);
        } else if (mproc_get_authkey(s->key, sizeof s->key, &klen) != 0) {
            klen = 0;
        }
        s->auth.key = klen ? s->key : NULL;
        s->auth.key_len = klen;
        s->auth.family_key = false;
    }
    int rc = share_at_start(s, o);
    if (rc) atomic_store(&s->stop, true);
    if (ready && !rc) ready(mproc_listener_address(l), ud);
    while (!atomic_load(&s->stop)) {
        struct pollfd pf[2] = {{.fd = mproc_listener_fileno(l), .events = POLLIN},
                               {.fd = s->wake[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0 || pf[1].revents) continue;
        mproc_conn *c;
        int arc = mproc_listener_accept(l, &c, 0);
        if (arc == 0) {
            start_client(s, c);
        } else if (arc == MPROC_ECLOSED) {
            break;
        } else if (arc != MPROC_ETIMEDOUT && arc != MPROC_EAUTH) {
            /* No fd or memory for it (EMFILE, ENFILE, ENOMEM): the client
             * stays in the backlog and the listener readable. A pause, not
             * a busy loop, until one comes free. */
            struct pollfd w = {.fd = s->wake[0], .events = POLLIN};
            (void)poll(&w, 1, 50);
        }
        /* nobody after all, or a failed handshake: go on */
    }
    atomic_store(&s->stop, true);
    mproc_listener_close(l);
    /* Wake every connection thread blocked reading (a socket, or a local
     * client's queue: its socket stays whole, since its end of file tells
     * that the client is done with its channel), and wait for them (one
     * waiting in a method sees the stop within a slice; one stuck in a
     * custom method is left: the server state is then kept, not freed). */
    MPROC__LOCK(&s->mu);
    for (client *cl = s->clients; cl; cl = cl->next) {
        if (cl->ch)
            mproc_queue_close(cl->ch->req);
        else
            shutdown(mproc_conn_fileno(cl->c), SHUT_RDWR);
    }
    MPROC__UNLOCK(&s->mu);
    for (int i = 0; i < 1000 && atomic_load(&s->conns) > 0; i++) usleep(1000);
    close(s->wake[0]);
    close(s->wake[1]);
    if (atomic_load(&s->conns) == 0) {
        names_clear(s);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
    return rc;
}
