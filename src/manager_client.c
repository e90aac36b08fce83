/* The manager's client side: connections, requests, proxies. Calls on one
 * manager handle are serialised (one connection). A handle belongs to the
 * process that made it: in any other (a fork() copy, a child of the fork
 * start method) its calls fail with MPROC_ECHILD and freeing it releases
 * that process's memory only. */
#include "internal/conn.h"
#include "internal/manager.h"
#include "internal/process.h"
#include "mproc/listener.h"
#include "mproc/queue.h"

#include <poll.h>

#include <stdlib.h>
#include <string.h>

struct mproc_manager {
    pthread_mutex_t mu;
    mproc_conn *c;
    char *address;
    mproc_process *server;  /* the server this process started, or NULL */
    mproc__mgr_channel *ch; /* local transport (internal/manager.h), or NULL */
    pid_t owner;            /* the process that made it */
};

struct mproc_proxy {
    mproc_manager *m;
    uint64_t id;
    char *typeid;
};

static _Thread_local int last_code;
static _Thread_local char *last_msg;

void mproc_manager_last_error(int *code, const char **msg)
{
    if (code) *code = last_code;
    if (msg) *msg = last_msg ? last_msg : "";
}

static void set_last(int code, const char *msg)
{
    free(last_msg);
    last_code = code;
    last_msg = msg ? strdup(msg) : NULL;
}

/* ---- connecting ---------------------------------------------------------------- */

static int request(mproc_manager *m, mproc_value *req, mproc_value **out);
static int send_one(mproc_manager *m, const mproc_value *req);
static int recv_one(mproc_manager *m, mproc_value **rep);
static int parse_reply(mproc_value *rep, mproc_value **out);
static mproc_value *req_new(int op);
static mproc_value *req_add(mproc_value *req, mproc_value *v);

/* True in a process that is not m's owner: a fork() copy, or a child of
 * the fork start method, shares the owner's socket and channel and must
 * not touch them. */
static bool foreign(const mproc_manager *m)
{
    return m->owner != mproc__self_pid();
}

/* The server closed its end of the socket (its thread for us is done,
 * or it died), so it will never touch our channel again. */
static bool server_gone(mproc_conn *c)
{
    struct pollfd pf = {.fd = mproc_conn_fileno(c), .events = POLLRDHUP};
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Lets go of the local channel, before the socket is closed (the server
 * frees a channel whose client closed its socket). A server that is gone
 * no longer holds it either. */
static void channel_leave(mproc_manager *m)
{
    if (!m->ch) return;
    if (m->c && server_gone(m->c)) mproc__mgr_channel_release(m->ch, MPROC__MGR_CH_SERVER);
    mproc__mgr_channel_release(m->ch, MPROC__MGR_CH_CLIENT);
    m->ch = NULL;
}

/* Moves the requests to a pair of queues in the arena when the server is
 * of our family (each side checks the family token); else stays on the
 * socket. The server makes the channel, so that a client killed at any
 * time leaves no arena behind (internal/manager.h). */
static void go_local(mproc_manager *m)
{
    const char *env = getenv("MPROC_MANAGER_LOCAL");
    if (env && strcmp(env, "0") == 0) return; /* sockets only (benchmarks, debugging) */
    uint64_t token = mproc__mgr_family_token();
    mproc_value *req = req_add(req_new(MOP_LOCAL), mproc_value_uint(0));
    req = req_add(req, mproc_value_uint(token));
    mproc_value *rep = NULL;
    int rc = req ? send_one(m, req) : MPROC_ENOMEM; /* on the socket: m->ch is not set yet */
    mproc_value_free(req);
    if (rc || recv_one(m, &rep) || parse_reply(rep, &rep)) return; /* refused: the socket */
    uint64_t addr = 0, theirs = 0;
    mproc_value_get_uint(mproc__mgr_arg(rep, 1), &addr);
    mproc_value_get_uint(mproc__mgr_arg(rep, 2), &theirs);
    mproc_value_free(rep);
    mproc__mgr_channel *ch = (mproc__mgr_channel *)(uintptr_t)addr;
    /* The token first: only then is the address in our arena. */
    if (theirs == token && mproc__mgr_channel_valid(ch))
        m->ch = ch;
    else /* it serves a channel we cannot use: not a server to talk to */
        mproc_conn_close(m->c);
}

int mproc__mgr_client_new(mproc_manager **out, const char *address, const mproc_auth *auth,
                          mproc_process *server)
{
    mproc__init();
    mproc_manager *m = calloc(1, sizeof *m);
    if (!m || !(m->address = strdup(address))) {
        free(m);
        return MPROC_ENOMEM;
    }
    mproc_client_opts co = {.auth = *auth};
    int rc = mproc_client(&m->c, address, &co, 30000);
    if (rc) {
        free(m->address);
        free(m);
        return rc;
    }
    mproc_conn_set_max_message(m->c, MPROC__MGR_MAX_MSG);
    mproc__conn_set_spin(m->c, mproc__mgr_spin_ns(MPROC__MGR_SPIN_CLIENT_NS));
    pthread_mutex_init(&m->mu, NULL);
    m->server = server;
    m->owner = mproc__self_pid();
    go_local(m);
    *out = m;
    return 0;
}

uint32_t mproc__mgr_spin_ns(uint32_t ns)
{
    static _Atomic int cpus; /* counted once */
    int n = atomic_load(&cpus);
    if (!n) atomic_store(&cpus, n = mproc_cpu_count());
    return n > 1 ? ns : 0;
}

int mproc_manager_connect(mproc_manager **out, const char *address, const void *authkey,
                          size_t authkey_len)
{
    if (!out || !address) return MPROC_EINVAL;
    mproc_auth a = {.key = authkey, .key_len = authkey_len, .family_key = authkey == NULL};
    return mproc__mgr_client_new(out, address, &a, NULL);
}

const char *mproc_manager_address(const mproc_manager *m)
{
    return m ? m->address : "";
}

/* ---- requests ------------------------------------------------------------------- */

/* One request out / one reply in, on either transport (m->mu held). */
static int send_one(mproc_manager *m, const mproc_value *req)
{
    if (!m->ch) return mproc_conn_send_value(m->c, req);
    void *buf;
    size_t len;
    int rc = mproc_value_encode(req, &buf, &len);
    if (rc) return rc;
    rc = mproc_queue_put(m->ch->req, buf, len, MPROC_FOREVER);
    free(buf);
    return rc;
}

static int recv_one(mproc_manager *m, mproc_value **rep)
{
    if (!m->ch) return mproc_conn_recv_value(m->c, rep, MPROC_FOREVER);
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(m->ch->rep, &buf, &len, MPROC__MGR_LOCAL_SLICE_MS);
        if (rc == 0) {
            rc = mproc_value_decode(buf, len, NULL, rep);
            free(buf);
            return rc;
        }
        if (rc != MPROC_ETIMEDOUT) return rc;
        struct pollfd pf = {.fd = mproc_conn_fileno(m->c), .events = POLLIN};
        if (poll(&pf, 1, 0) != 0) return MPROC_ECONNRESET; /* the server is gone */
    }
}

/* Sends req (freed) and reads the reply: 0 with *out the reply list, or a
 * failure (MPROC_EMETHOD, the server's code, a transport error). */
static int request(mproc_manager *m, mproc_value *req, mproc_value **out)
{
    if (!req) return MPROC_ENOMEM;
    if (foreign(m)) {
        mproc_value_free(req);
        return MPROC_ECHILD;
    }
    MPROC__LOCK(&m->mu);
    mproc_value *rep = NULL;
    int rc;
    if (!m->c) {
        rc = MPROC_ECLOSED;
    } else {
        rc = send_one(m, req);
        if (!rc) rc = recv_one(m, &rep);
    }
    MPROC__UNLOCK(&m->mu);
    mproc_value_free(req);
    if (rc) return rc;
    return parse_reply(rep, out);
}

/* A reply: 0 and *out (OK, OK_PROXY), or the failure it reports. */
static int parse_reply(mproc_value *rep, mproc_value **out)
{
    int64_t kind = -1, code = MPROC_EPROTO;
    mproc_value_get_int(mproc__mgr_arg(rep, 0), &kind);
    if (kind == MREP_OK || kind == MREP_OK_PROXY) {
        *out = rep;
        return 0;
    }
    mproc_value_get_int(mproc__mgr_arg(rep, 1), &code);
    if (code >= 0 || code < -1999) code = MPROC_EPROTO;
    set_last((int)code, mproc_value_get_str(mproc__mgr_arg(rep, 2), NULL));
    mproc_value_free(rep);
    return kind == MREP_METHOD_ERR ? MPROC_EMETHOD : (int)code;
}

static mproc_value *req_new(int op)
{
    mproc_value *r = mproc_value_list();
    if (r && mproc_value_list_append(r, mproc_value_int(op))) {
        mproc_value_free(r);
        return NULL;
    }
    return r;
}

/* Appends v (copied; NULL: nil) to req; on failure req is freed. */
static mproc_value *req_add(mproc_value *req, mproc_value *v)
{
    if (!req) {
        mproc_value_free(v);
        return NULL;
    }
    if (mproc_value_list_append(req, v ? v : mproc_value_nil())) {
        mproc_value_free(req);
        return NULL;
    }
    return req;
}

static int proxy_new(mproc_manager *m, uint64_t id, const char *typeid, mproc_proxy **out)
{
    mproc_proxy *p = calloc(1, sizeof *p);
    if (!p || !(p->typeid = strdup(typeid ? typeid : ""))) {
        free(p);
        return MPROC_ENOMEM;
    }
    p->m = m;
    p->id = id;
    *out = p;
    return 0;
}

/* A reply [OK_PROXY, id, typeid] becomes a proxy (the server took the
 * reference for this connection). */
static int proxy_from_reply(mproc_manager *m, mproc_value *rep, mproc_proxy **out)
{
    uint64_t id;
    int64_t kind;
    int rc = mproc_value_get_int(mproc__mgr_arg(rep, 0), &kind) || kind != MREP_OK_PROXY ||
                     mproc_value_get_uint(mproc__mgr_arg(rep, 1), &id)
                 ? MPROC_EPROTO
                 : proxy_new(m, id, mproc_value_get_str(mproc__mgr_arg(rep, 2), NULL), out);
    mproc_value_free(rep);
    return rc;
}

int mproc_manager_create(mproc_manager *m, const char *typeid, const mproc_value *args,
                         mproc_proxy **out)
{
    if (!m || !typeid || !out) return MPROC_EINVAL;
    mproc_value *req = req_add(req_new(MOP_CREATE), mproc_value_str(typeid));
    req = req_add(req, args ? mproc_value_copy(args) : NULL);
    mproc_value *rep;
    int rc = request(m, req, &rep);
    return rc ? rc : proxy_from_reply(m, rep, out);
}

static mproc_value *call_req(mproc_proxy *p, const char *method, const mproc_value *args)
{
    mproc_value *req = req_add(req_new(MOP_CALL), mproc_value_uint(p->id));
    req = req_add(req, mproc_value_str(method));
    return req_add(req, args ? mproc_value_copy(args) : NULL);
}

int mproc_proxy_call(mproc_proxy *p, const char *method, const mproc_value *args,
                     mproc_value **result)
{
    if (!p || !method) return MPROC_EINVAL;
    mproc_value *rep;
    int rc = request(p->m, call_req(p, method, args), &rep);
    if (rc) return rc;
    int64_t kind;
    mproc_value_get_int(mproc__mgr_arg(rep, 0), &kind);
    if (kind == MREP_OK_PROXY) { /* a method returning an object: drop it */
        mproc_proxy *tmp;
        if (proxy_from_reply(p->m, rep, &tmp) == 0) mproc_proxy_free(tmp);
        if (result) *result = NULL;
        return 0;
    }
    if (result) {
        mproc_value *v = mproc__mgr_arg(rep, 1) ? mproc_value_copy(mproc__mgr_arg(rep, 1)) : NULL;
        if (v && mproc_value_kind_of(v) == MPROC_V_NIL) {
            mproc_value_free(v);
            v = NULL;
        }
        *result = v;
    }
    mproc_value_free(rep);
    return 0;
}

int mproc_proxy_call_proxy(mproc_proxy *p, const char *method, const mproc_value *args,
                           mproc_proxy **out)
{
    if (!p || !method || !out) return MPROC_EINVAL;
    mproc_value *rep;
    int rc = request(p->m, call_req(p, method, args), &rep);
    if (rc) return rc;
    int64_t kind;
    mproc_value_get_int(mproc__mgr_arg(rep, 0), &kind);
    if (kind == MREP_OK_PROXY) return proxy_from_reply(p->m, rep, out);
    /* A plain result that is a reference: a proxy for it. */
    rc = mproc_proxy_from_value(p->m, mproc__mgr_arg(rep, 1), out);
    mproc_value_free(rep);
    return rc;
}

const char *mproc_proxy_typeid(const mproc_proxy *p)
{
    return p ? p->typeid : "";
}

mproc_value *mproc_proxy_ref(const mproc_proxy *p)
{
    return p ? mproc_value_handle(MPROC__HANDLE_OBJ, p->id) : NULL;
}

int mproc_proxy_from_value(mproc_manager *m, const mproc_value *ref, mproc_proxy **out)
{
    uint32_t type;
    uint64_t id;
    if (!m || !out || mproc_value_get_handle(ref, &type, &id) || type != MPROC__HANDLE_OBJ)
        return MPROC_EINVAL;
    mproc_value *rep;
    int rc = request(m, req_add(req_new(MOP_INCREF), mproc_value_uint(id)), &rep);
    if (rc) return rc;
    const char *typeid = mproc_value_get_str(mproc__mgr_arg(rep, 1), NULL);
    rc = proxy_new(m, id, typeid ? typeid : "", out);
    mproc_value_free(rep);
    return rc;
}

void mproc_proxy_free(mproc_proxy *p)
{
    if (!p) return;
    mproc_value *rep;
    if (!foreign(p->m) &&
        request(p->m, req_add(req_new(MOP_DECREF), mproc_value_uint(p->id)), &rep) == 0)
        mproc_value_free(rep);
    free(p->typeid);
    free(p);
}

/* ---- shorthands --------------------------------------------------------------------- */

static int call2(mproc_proxy *p, const char *method, const mproc_value *a, const mproc_value *b,
                 mproc_value **out)
{
    mproc_value *args = mproc_value_list();
    if (!args || (a && mproc_value_list_append(args, mproc_value_copy(a))) ||
        (b && mproc_value_list_append(args, mproc_value_copy(b)))) {
        mproc_value_free(args);
        return MPROC_ENOMEM;
    }
    int rc = mproc_proxy_call(p, method, args, out);
    mproc_value_free(args);
    return rc;
}

int mproc_proxy_setitem(mproc_proxy *p, const mproc_value *key, const mproc_value *val)
{
    return key && val ? call2(p, "setitem", key, val, NULL) : MPROC_EINVAL;
}

int mproc_proxy_getitem(mproc_proxy *p, const mproc_value *key, mproc_value **out)
{
    return key ? call2(p, "getitem", key, NULL, out) : MPROC_EINVAL;
}

int mproc_proxy_append(mproc_proxy *p, const mproc_value *item)
{
    return item ? call2(p, "append", item, NULL, NULL) : MPROC_EINVAL;
}

int mproc_proxy_len(mproc_proxy *p, size_t *out)
{
    mproc_value *v = NULL;
    int rc = call2(p, "len", NULL, NULL, &v);
    int64_t n = 0;
    if (!rc && mproc_value_get_int(v, &n)) rc = MPROC_EPROTO;
    mproc_value_free(v);
    if (!rc && out) *out = (size_t)n;
    return rc;
}

/* ---- shutting down ------------------------------------------------------------------- */

int mproc_manager_shutdown(mproc_manager *m)
{
    if (!m) return MPROC_EINVAL;
    if (foreign(m)) return MPROC_ECHILD;
    mproc_value *rep = NULL; /* set when request returns 0; NULL for the analyzer */
    int rc = request(m, req_new(MOP_SHUTDOWN), &rep);
    if (!rc) mproc_value_free(rep);
    MPROC__LOCK(&m->mu);
    channel_leave(m);
    mproc_conn_free(m->c);
    m->c = NULL;
    MPROC__UNLOCK(&m->mu);
    if (m->server) {
        if (mproc_process_join(m->server, 5000) != 0) {
            mproc_process_kill(m->server);
            mproc_process_join(m->server, MPROC_FOREVER);
        }
        mproc_process_free(m->server);
        m->server = NULL;
    }
    return rc;
}

void mproc_manager_free(mproc_manager *m)
{
    if (!m) return;
    if (foreign(m)) { /* a copy: its own descriptor and memory, nothing shared */
        mproc_conn_free(m->c);
        mproc_process_free(m->server); /* the copy's memory only: not its creator */
        free(m->address);
        free(m);
        return;
    }
    if (m->server) mproc_manager_shutdown(m);
    channel_leave(m);
    mproc_conn_free(m->c);
    pthread_mutex_destroy(&m->mu);
    free(m->address);
    free(m);
}

/* ---- pipelined calls ---------------------------------------------------------------- */

#define PIPELINE_MAX 64

int mproc_manager_call_many(mproc_manager *m, const mproc_call *calls, size_t n,
                            mproc_value **results, int *codes)
{
    if (!m || (n && (!calls || !codes))) return MPROC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!calls[i].proxy || calls[i].proxy->m != m || !calls[i].method) return MPROC_EINVAL;
        if (results) results[i] = NULL;
    }
    if (foreign(m)) return MPROC_ECHILD;
    int rc = 0;
    size_t sent = 0, got = 0;
    MPROC__LOCK(&m->mu);
    if (!m->c) rc = MPROC_ECLOSED;
    while (!rc && got < n) {
        while (!rc && sent < n && sent - got < PIPELINE_MAX) {
            const mproc_call *c = &calls[sent];
            mproc_value *req = call_req(c->proxy, c->method, c->args);
            rc = req ? send_one(m, req) : MPROC_ENOMEM;
            mproc_value_free(req);
            sent++;
        }
        mproc_value *rep;
        if (rc || (rc = recv_one(m, &rep))) break;
        mproc_value *ok = NULL;
        codes[got] = parse_reply(rep, &ok);
        if (codes[got] == 0 && results) {
            const mproc_value *v = mproc__mgr_arg(ok, 1);
            results[got] = v && mproc_value_kind_of(v) != MPROC_V_NIL ? mproc_value_copy(v) : NULL;
        }
        mproc_value_free(ok);
        got++;
    }
    MPROC__UNLOCK(&m->mu);
    return rc;
}
