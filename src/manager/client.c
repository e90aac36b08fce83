/* The manager's client side: connections, requests, proxies. Calls on one
 * manager handle are serialised (one connection). A handle belongs to the
 * process that made it: in any other (a fork() copy, a child of the fork
 * start method) its calls fail with MPROC_ECHILD and freeing it releases
 * that process's memory only.
 *
 * Message cap: at connect the client tells the server its cap and learns
 * the server's ([HELLO, cap] -> [OK, cap]); each side then keeps what it
 * sends within the smaller of the two, so a message over it is refused
 * (MPROC_EMSGSIZE) before it goes and the connection stays in step.
 *
 * Call deadline: a call that outlives call_timeout_ms leaves the
 * connection in an unknown state (its reply may still come), so the
 * handle lets the connection go and every later call fails with
 * MPROC_ECONNABORTED. */
#include "base/io.h"
#include "conn/conn.h"
#include "manager/manager.h"
#include "process/process.h"
#include "mproc/listener.h"
#include "mproc/queue.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <stdlib.h>
#include <string.h>

#define CONNECT_MS 30000 /* the connection, its handshake and its first requests */
#define LEAVE_MS   1000  /* how long a clean free waits for the server to let go (channel_leave) */

struct mproc_manager {
    pthread_mutex_t mu;
    mproc_conn *c;
    char *address;
    mproc_process *server;  /* the server this process started, or NULL */
    mproc__mgr_channel *ch; /* local transport (manager/manager.h), or NULL */
    pid_t owner;            /* the process that made it */
    size_t max_msg;         /* this side's cap: the replies it takes */
    size_t send_max;        /* what it sends: its cap or the server's, the smaller */
    int call_ms;            /* each call's deadline; 0: none */
    int broken;             /* once a call timed out: what later calls return */
    /* The key it authenticated with (the family authkey as it was then,
     * or the caller's), for the handles of its proxies' children
     * (manager/travel.c); key_len 0: none. */
    uint8_t *key;
    size_t key_len;
    /* A handle made in a child for the proxies passed to it: it connects
     * on first use (lazy_mu), and until it has, c is NULL. */
    atomic_bool lazy;
    pthread_mutex_t lazy_mu;
    pthread_mutex_t ref_mu; /* its proxies' first references (ensure_ref) */
};

struct mproc_proxy {
    mproc_manager *m;
    uint64_t id;
    char *typeid;
    /* Made in a child from its parent's proxy: its connection's reference
     * is taken on first use (pending_mu). */
    atomic_bool pending;
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
static int request_within(mproc_manager *m, mproc_value *req, mproc_value **out, int ms);
static int request_raw(mproc_manager *m, mproc_value *req, mproc_value **out, int ms);
static int send_one(mproc_manager *m, const mproc_value *req, const mproc__deadline *dl);
static int recv_one(mproc_manager *m, mproc_value **rep, const mproc__deadline *dl);
static void abandon(mproc_manager *m);
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
 * no longer holds it either. Unless wait_ms is 0, the server thread is
 * first told (a closed request queue wakes it at once) and given up to
 * wait_ms to let go of its share and close its end: a server killed after
 * a clean free but before its thread looked again would keep its share
 * for ever, and the channel with it. */
static void channel_leave(mproc_manager *m, int wait_ms)
{
    if (!m->ch) return;
    if (m->c && wait_ms) {
        mproc_queue_close(m->ch->req);
        mproc__deadline dl;
        mproc__deadline_init(&dl, wait_ms);
        (void)mproc__wait_fd(mproc_conn_fileno(m->c), POLLRDHUP, &dl);
    }
    if (m->c && server_gone(m->c)) mproc__mgr_channel_release(m->ch, MPROC__MGR_CH_SERVER);
    mproc__mgr_channel_release(m->ch, MPROC__MGR_CH_CLIENT);
    m->ch = NULL;
}

/* Moves the requests to a pair of queues in the arena when the server is
 * of our family (each side checks the family token); else stays on the
 * socket. The server makes the channel, so that a client killed at any
 * time leaves no arena behind (manager/manager.h). */
static void go_local(mproc_manager *m)
{
    if (strcmp(mproc__setting(MPROC__SET_MANAGER_LOCAL), "0") == 0)
        return; /* sockets only (benchmarks, debugging) */
    uint64_t token = mproc__mgr_family_token();
    mproc_value *req = req_add(req_new(MOP_LOCAL), mproc_value_uint(0));
    req = req_add(req, mproc_value_uint(token));
    mproc_value *rep = NULL;
    mproc__deadline dl;
    mproc__deadline_init(&dl, CONNECT_MS);
    int rc = req ? send_one(m, req, &dl) : MPROC_ENOMEM; /* on the socket: m->ch is not set yet */
    mproc_value_free(req);
    if (!rc) rc = recv_one(m, &rep, &dl);
    if (rc == MPROC_ETIMEDOUT) abandon(m);    /* the connect fails */
    if (rc || parse_reply(rep, &rep)) return; /* refused: the socket */
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

/* Tells the server this side's cap and learns its: what this side sends
 * is kept within both. A server that does not know the request (an older
 * one) leaves this side's own cap. */
static int hello(mproc_manager *m)
{
    mproc_value *rep;
    int rc =
        request_raw(m, req_add(req_new(MOP_HELLO), mproc_value_uint(m->max_msg)), &rep, CONNECT_MS);
    if (rc == MPROC_EPROTO) return 0;
    if (rc) return rc;
    uint64_t theirs = 0;
    if (!mproc_value_get_uint(mproc__mgr_arg(rep, 1), &theirs) && theirs > 0 &&
        theirs < m->send_max)
        m->send_max = (size_t)theirs;
    mproc_value_free(rep);
    return 0;
}

int mproc__mgr_check_opts(const mproc_manager_opts *o)
{
    if ((o->max_message && o->max_message < MPROC__MGR_MIN_MSG) || o->call_timeout_ms < -1 ||
        o->handshake_timeout_ms < 0)
        return MPROC_EINVAL;
    return 0;
}

/* Connects m (address, max_msg set; c NULL) with auth: the socket, the
 * caps, the local transport. On failure m is as it was. */
static int client_connect(mproc_manager *m, const mproc_auth *auth)
{
    mproc_client_opts co = {.auth = *auth};
    int rc = mproc_client(&m->c, m->address, &co, CONNECT_MS);
    if (rc) {
        m->c = NULL;
        return rc;
    }
    m->send_max = m->max_msg;
    m->broken = 0;
    mproc_conn_set_max_message(m->c, m->max_msg);
    mproc__conn_set_spin(m->c, mproc__mgr_spin_ns(MPROC__MGR_SPIN_CLIENT_NS));
    if ((rc = hello(m))) {
        mproc_conn_free(m->c);
        m->c = NULL;
        return rc;
    }
    go_local(m);
    if (m->broken) { /* it timed out: the handle is of no use */
        m->broken = 0;
        return MPROC_ETIMEDOUT;
    }
    return 0;
}

/* A handle not yet connected: m->c NULL. */
static int client_alloc(mproc_manager **out, const char *address, size_t max_msg, int call_ms)
{
    mproc__init();
    mproc_manager *m = calloc(1, sizeof *m);
    if (!m || !(m->address = strdup(address))) {
        free(m);
        return MPROC_ENOMEM;
    }
    m->max_msg = m->send_max = max_msg ? max_msg : MPROC__MGR_MAX_MSG;
    m->call_ms = call_ms > 0 ? call_ms : 0;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->lazy_mu, NULL);
    pthread_mutex_init(&m->ref_mu, NULL);
    m->owner = mproc__self_pid();
    *out = m;
    return 0;
}

static void client_dealloc(mproc_manager *m)
{
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->lazy_mu);
    pthread_mutex_destroy(&m->ref_mu);
    if (m->key) OPENSSL_cleanse(m->key, m->key_len);
    free(m->key);
    free(m->address);
    free(m);
}

static int keep_key(mproc_manager *m, const void *key, size_t len)
{
    if (len == 0) return 0;
    if (!(m->key = malloc(len))) return MPROC_ENOMEM;
    memcpy(m->key, key, len);
    m->key_len = len;
    return 0;
}

int mproc__mgr_client_new(mproc_manager **out, const char *address, const mproc_auth *auth,
                          mproc_process *server, const mproc_manager_opts *o)
{
    mproc_manager *m;
    int rc = client_alloc(&m, address, o->max_message, o->call_timeout_ms);
    if (rc) return rc;
    /* The key itself, resolved now (the family authkey may change later:
     * a child's proxies use the one this handle authenticated with). */
    uint8_t fam[MPROC_AUTHKEY_MAX];
    size_t flen = 0;
    if (auth->key)
        rc = keep_key(m, auth->key, auth->key_len);
    else if (auth->family_key && mproc_get_authkey(fam, sizeof fam, &flen) == 0)
        rc = keep_key(m, fam, flen);
    OPENSSL_cleanse(fam, sizeof fam);
    mproc_auth a = *auth;
    if (!rc && m->key) {
        a.key = m->key;
        a.key_len = m->key_len;
        a.family_key = false;
    }
    if (!rc) rc = client_connect(m, &a);
    if (rc) {
        client_dealloc(m);
        return rc;
    }
    m->server = server;
    *out = m;
    return 0;
}

int mproc__mgr_client_lazy(mproc_manager **out, const mproc__mgr_link *l)
{
    mproc_manager *m;
    int rc = client_alloc(&m, l->address, l->max_msg, l->call_ms);
    if (rc) return rc;
    if ((rc = keep_key(m, l->key, l->key_len))) {
        client_dealloc(m);
        return rc;
    }
    atomic_store(&m->lazy, true);
    *out = m;
    return 0;
}

void mproc__mgr_link_of(const mproc_manager *m, mproc__mgr_link *out)
{
    *out = (mproc__mgr_link){.address = m->address,
                             .key = m->key,
                             .key_len = m->key_len,
                             .max_msg = m->max_msg,
                             .call_ms = m->call_ms};
}

/* A handle made for a child connects on its first call (again at each
 * call while connecting fails: a manager that is gone is that call's
 * error, MPROC_ECONNREFUSED or MPROC_ENOENT for a socket path). */
static int ensure_connected(mproc_manager *m)
{
    if (!atomic_load(&m->lazy)) return 0;
    if (foreign(m)) return MPROC_ECHILD;
    MPROC__LOCK(&m->lazy_mu);
    int rc = 0;
    if (atomic_load(&m->lazy)) {
        mproc_auth a = {.key = m->key, .key_len = m->key_len};
        rc = client_connect(m, &a);
        if (!rc) atomic_store(&m->lazy, false);
    }
    MPROC__UNLOCK(&m->lazy_mu);
    return rc;
}

int mproc_manager_connect(mproc_manager **out, const char *address, const void *authkey,
                          size_t authkey_len)
{
    mproc_manager_opts o = {.address = address, .authkey = authkey, .authkey_len = authkey_len};
    return mproc_manager_connect_opts(out, &o);
}

int mproc_manager_connect_opts(mproc_manager **out, const mproc_manager_opts *o)
{
    if (!out || !o || !o->address || mproc__mgr_check_opts(o)) return MPROC_EINVAL;
    mproc_auth a = {.key = o->authkey, .key_len = o->authkey_len, .family_key = o->authkey == NULL};
    return mproc__mgr_client_new(out, o->address, &a, NULL, o);
}

const char *mproc_manager_address(const mproc_manager *m)
{
    return m ? m->address : "";
}

/* ---- requests ------------------------------------------------------------------- */

/* One request out / one reply in, on either transport (m->mu held), by
 * the deadline dl. */

/* A frame on the socket by the deadline (the socket stays blocking: each
 * write is a non-blocking one after a wait for room). */
static int send_frame(mproc_manager *m, const void *buf, size_t len, const mproc__deadline *dl)
{
    if (dl->forever) return mproc_conn_send_bytes(m->c, buf, len);
    uint8_t h[MPROC__FRAME_HDR_MAX];
    struct iovec iov[2] = {{h, mproc__frame_header(len, h)}, {(void *)buf, len}};
    int fd = mproc_conn_fileno(m->c), i = 0;
    while (i < 2) {
        struct msghdr mh = {.msg_iov = iov + i, .msg_iovlen = (size_t)(2 - i)};
        ssize_t n;
        MPROC__RETRY_EINTR(n, sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return MPROC__ERRNO();
            int rc = mproc__wait_fd(fd, POLLOUT, dl);
            if (rc) return rc;
            continue;
        }
        for (; i < 2 && (size_t)n >= iov[i].iov_len; i++) n -= (ssize_t)iov[i].iov_len;
        if (i < 2) {
            iov[i].iov_base = (char *)iov[i].iov_base + n;
            iov[i].iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Sends req, unless its encoding is over what this connection carries:
 * then MPROC_EMSGSIZE, and nothing was sent. */
static int send_one(mproc_manager *m, const mproc_value *req, const mproc__deadline *dl)
{
    void *buf;
    size_t len;
    int rc = mproc_value_encode(req, &buf, &len);
    if (rc) return rc;
    if (len > m->send_max || (m->ch && len > MPROC_QUEUE_MAX_MESSAGE))
        rc = MPROC_EMSGSIZE;
    else if (m->ch)
        rc = mproc_queue_put(m->ch->req, buf, len, mproc__deadline_poll_ms(dl));
    else
        rc = send_frame(m, buf, len, dl);
    free(buf);
    return rc;
}

static int recv_one(mproc_manager *m, mproc_value **rep, const mproc__deadline *dl)
{
    if (!m->ch) return mproc_conn_recv_value(m->c, rep, mproc__deadline_poll_ms(dl));
    for (;;) {
        void *buf;
        size_t len;
        int ms = mproc__deadline_poll_ms(dl);
        int rc = mproc__mgr_channel_get(
            m->ch, MPROC__MGR_CLIENT, &buf, &len,
            ms < 0 || ms > MPROC__MGR_LOCAL_SLICE_MS ? MPROC__MGR_LOCAL_SLICE_MS : ms);
        if (rc == 0) {
            /* (a reply over this side's cap is consumed whole: the
             * connection stays in step) */
            rc = len > m->max_msg ? MPROC_EMSGSIZE : mproc_value_decode(buf, len, NULL, rep);
            free(buf);
            return rc;
        }
        if (rc != MPROC_ETIMEDOUT) return rc;
        struct pollfd pf = {.fd = mproc_conn_fileno(m->c), .events = POLLIN};
        if (poll(&pf, 1, 0) != 0) return MPROC_ECONNRESET; /* the server is gone */
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
    }
}

/* After a call timed out its reply may still come, and the server may
 * still be working on it: the handle lets the connection go (the server
 * then sees its client gone) and fails every later call. */
static void abandon(mproc_manager *m)
{
    channel_leave(m, 0); /* before the socket closes (manager/manager.h) */
    mproc_conn_free(m->c);
    m->c = NULL;
    m->broken = MPROC_ECONNABORTED;
}

static int closed_code(const mproc_manager *m)
{
    return m->broken ? m->broken : MPROC_ECLOSED;
}

/* Sends req (freed) and reads the reply within ms (0: no deadline): 0
 * with *out the reply list, or a failure (MPROC_EMETHOD, the server's
 * code, a transport error, MPROC_ETIMEDOUT). */
static int request_within(mproc_manager *m, mproc_value *req, mproc_value **out, int ms)
{
    int rc = req ? ensure_connected(m) : 0;
    if (rc) {
        mproc_value_free(req);
        return rc;
    }
    return request_raw(m, req, out, ms);
}

/* As request_within, on the connection as it is (connecting: hello). */
static int request_raw(mproc_manager *m, mproc_value *req, mproc_value **out, int ms)
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
        rc = closed_code(m);
    } else {
        mproc__deadline dl;
        mproc__deadline_init(&dl, ms > 0 ? ms : MPROC_FOREVER);
        rc = send_one(m, req, &dl);
        if (!rc) rc = recv_one(m, &rep, &dl);
        if (rc == MPROC_ETIMEDOUT) abandon(m);
    }
    MPROC__UNLOCK(&m->mu);
    mproc_value_free(req);
    if (rc) return rc;
    return parse_reply(rep, out);
}

static int request(mproc_manager *m, mproc_value *req, mproc_value **out)
{
    return request_within(m, req, out, m->call_ms);
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
    if (mproc__mgr_proxy_register(p)) {
        free(p->typeid);
        free(p);
        return MPROC_ENOMEM;
    }
    *out = p;
    return 0;
}

int mproc__mgr_proxy_lazy(mproc_manager *m, uint64_t id, const char *typeid, mproc_proxy **out)
{
    int rc = proxy_new(m, id, typeid, out);
    if (!rc) atomic_store(&(*out)->pending, true);
    return rc;
}

mproc_manager *mproc__mgr_proxy_link(const mproc_proxy *p, uint64_t *id)
{
    *id = p->id;
    return p->m;
}

/* A proxy made in a child takes its connection's reference on first use
 * (MPROC_ENOENT when the object is gone by then). */
static int ensure_ref(mproc_proxy *p)
{
    if (!atomic_load(&p->pending)) return 0;
    if (foreign(p->m)) return MPROC_ECHILD;
    MPROC__LOCK(&p->m->ref_mu);
    int rc = 0;
    if (atomic_load(&p->pending)) {
        mproc_value *rep;
        rc = request(p->m, req_add(req_new(MOP_INCREF), mproc_value_uint(p->id)), &rep);
        if (!rc) {
            mproc_value_free(rep);
            atomic_store(&p->pending, false);
        }
    }
    MPROC__UNLOCK(&p->m->ref_mu);
    return rc;
}

mproc_manager *mproc_proxy_manager(const mproc_proxy *p)
{
    return p ? p->m : NULL;
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
    int rc = ensure_ref(p);
    if (!rc) rc = request(p->m, call_req(p, method, args), &rep);
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
    int rc = ensure_ref(p);
    if (!rc) rc = request(p->m, call_req(p, method, args), &rep);
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
    mproc__mgr_proxy_unregister(p);
    mproc_value *rep;
    /* (a proxy of a child that never used it holds no reference) */
    if (!foreign(p->m) && !atomic_load(&p->pending) &&
        request(p->m, req_add(req_new(MOP_DECREF), mproc_value_uint(p->id)), &rep) == 0)
        mproc_value_free(rep);
    free(p->typeid);
    free(p);
}

/* ---- shared objects ------------------------------------------------------------------ */

int mproc_manager_share(mproc_manager *m, const char *name, const mproc_proxy *p)
{
    if (!m || !name || !*name || (p && p->m != m)) return MPROC_EINVAL;
    int rc = p ? ensure_ref((mproc_proxy *)p) : 0;
    if (rc) return rc;
    mproc_value *req = req_add(req_new(MOP_SHARE), mproc_value_str(name));
    req = req_add(req, p ? mproc_value_uint(p->id) : NULL);
    mproc_value *rep;
    if ((rc = request(m, req, &rep))) return rc;
    mproc_value_free(rep);
    return 0;
}

int mproc_manager_get(mproc_manager *m, const char *name, mproc_proxy **out)
{
    if (!m || !name || !out) return MPROC_EINVAL;
    mproc_value *rep;
    int rc = request(m, req_add(req_new(MOP_GET), mproc_value_str(name)), &rep);
    return rc ? rc : proxy_from_reply(m, rep, out);
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
    channel_leave(m, LEAVE_MS);
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
        if (m->key) OPENSSL_cleanse(m->key, m->key_len);
        free(m->key);
        free(m->address);
        free(m);
        return;
    }
    if (m->server) mproc_manager_shutdown(m);
    channel_leave(m, LEAVE_MS);
    mproc_conn_free(m->c);
    client_dealloc(m);
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
    int rc = ensure_connected(m);
    for (size_t i = 0; i < n && !rc; i++) rc = ensure_ref(calls[i].proxy);
    if (rc) return rc;
    /* the calls sent whose replies are to come, in order: a call refused
     * for its size (MPROC_EMSGSIZE) was never sent */
    size_t wait[PIPELINE_MAX], head = 0, nwait = 0, next = 0;
    MPROC__LOCK(&m->mu);
    if (!m->c) rc = closed_code(m);
    while (!rc && (next < n || nwait > 0)) {
        mproc__deadline dl; /* each reply within the deadline of the one before */
        mproc__deadline_init(&dl, m->call_ms > 0 ? m->call_ms : MPROC_FOREVER);
        for (; !rc && next < n && nwait < PIPELINE_MAX; next++) {
            const mproc_call *c = &calls[next];
            mproc_value *req = call_req(c->proxy, c->method, c->args);
            int s = req ? send_one(m, req, &dl) : MPROC_ENOMEM;
            mproc_value_free(req);
            if (s == MPROC_EMSGSIZE)
                codes[next] = s;
            else if (s)
                rc = s;
            else
                wait[(head + nwait++) % PIPELINE_MAX] = next;
        }
        if (rc || nwait == 0) continue;
        mproc_value *rep;
        if ((rc = recv_one(m, &rep, &dl))) break;
        size_t got = wait[head];
        head = (head + 1) % PIPELINE_MAX;
        nwait--;
        mproc_value *ok = NULL;
        codes[got] = parse_reply(rep, &ok);
        if (codes[got] == 0 && results) {
            const mproc_value *v = mproc__mgr_arg(ok, 1);
            results[got] = v && mproc_value_kind_of(v) != MPROC_V_NIL ? mproc_value_copy(v) : NULL;
        }
        mproc_value_free(ok);
    }
    if (rc == MPROC_ETIMEDOUT) abandon(m);
    MPROC__UNLOCK(&m->mu);
    return rc;
}
