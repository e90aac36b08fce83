/* Starting a manager server: as a child process (mproc_manager_start) or
 * in the calling process (mproc_manager_serve). A child learns its custom
 * types as function references (module and offset), so every start method
 * works, and reports the address it listens on through a pipe. */
#include "arena/fnref.h"
#include "conn/listener.h"
#include "manager/server.h"
#include "process/process.h"
#include "mproc/listener.h"
#include "mproc/process.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000

typedef struct start_arg {
    mproc_conn *report; /* travels as an fd */
    char address[512];
    bool family_key;
    uint32_t key_len;
    uint8_t key[MPROC_AUTHKEY_MAX];
    int idle_ms, max_conns, handshake_ms;
    uint64_t max_msg;
    uint32_t types_len;  /* CBOR of the custom types follows */
    uint32_t shared_len; /* then CBOR of the shared objects */
} start_arg;

/* ---- custom types as values ---------------------------------------------------- */

static int add_ref(mproc_value *list, const void *fn)
{
    mproc__fnref r;
    int rc = mproc__fnref_make(fn, &r);
    return rc ? rc : mproc_value_list_append(list, mproc_value_uint(r));
}

static int encode_types(const mproc_type_def *t, size_t n, void **blob, size_t *len)
{
    mproc_value *all = mproc_value_list();
    int rc = all ? 0 : MPROC_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        mproc_value *e = mproc_value_list(), *ms = mproc_value_list();
        rc = e && ms && t[i].typeid && t[i].create ? 0 : MPROC_EINVAL;
        if (!rc) rc = mproc_value_list_append(e, mproc_value_str(t[i].typeid));
        if (!rc) rc = add_ref(e, (const void *)t[i].create);
        if (!rc) rc = add_ref(e, (const void *)t[i].destroy);
        for (size_t k = 0; k < t[i].nmethods && !rc; k++) {
            const mproc_method_def *m = &t[i].methods[k];
            mproc_value *md = mproc_value_list();
            rc = md && m->name && m->fn ? 0 : MPROC_EINVAL;
            if (!rc) rc = mproc_value_list_append(md, mproc_value_str(m->name));
            if (!rc) rc = add_ref(md, (const void *)m->fn);
            if (!rc)
                rc = mproc_value_list_append(
                    md, m->returns_typeid ? mproc_value_str(m->returns_typeid) : mproc_value_nil());
            if (!rc)
                rc = mproc_value_list_append(ms, md);
            else
                mproc_value_free(md);
        }
        if (!rc) {
            rc = mproc_value_list_append(e, ms);
            ms = NULL;
        }
        mproc_value_free(ms);
        if (!rc)
            rc = mproc_value_list_append(all, e);
        else
            mproc_value_free(e);
    }
    if (!rc) rc = mproc_value_encode(all, blob, len);
    mproc_value_free(all);
    return rc;
}

/* ---- shared objects as values ----------------------------------------------------- */

int mproc__mgr_check_shared(const mproc_manager_opts *o)
{
    if (o->nshared && !o->shared) return MPROC_EINVAL;
    for (size_t i = 0; i < o->nshared; i++) {
        const mproc_manager_shared *s = &o->shared[i];
        if (!s->name || !*s->name || !s->typeid ||
            (s->args && mproc_value_kind_of(s->args) != MPROC_V_LIST))
            return MPROC_EINVAL;
    }
    return 0;
}

static int encode_shared(const mproc_manager_shared *s, size_t n, void **blob, size_t *len)
{
    mproc_value *all = mproc_value_list();
    int rc = all ? 0 : MPROC_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        mproc_value *e = mproc_value_list();
        rc = e ? 0 : MPROC_ENOMEM;
        if (!rc) rc = mproc_value_list_append(e, mproc_value_str(s[i].name));
        if (!rc) rc = mproc_value_list_append(e, mproc_value_str(s[i].typeid));
        if (!rc)
            rc = mproc_value_list_append(e, s[i].args ? mproc_value_copy(s[i].args)
                                                      : mproc_value_nil());
        if (!rc)
            rc = mproc_value_list_append(all, e);
        else
            mproc_value_free(e);
    }
    if (!rc) rc = mproc_value_encode(all, blob, len);
    mproc_value_free(all);
    return rc;
}

/* The shared objects back from their encoding: *out (free with
 * free_shared) and *all, the value their strings live in. */
static int decode_shared(const void *blob, size_t len, mproc_manager_shared **out, size_t *n,
                         mproc_value **all)
{
    int rc = mproc_value_decode(blob, len, NULL, all);
    if (rc) return rc;
    size_t k = mproc_value_len(*all);
    mproc_manager_shared *s = calloc(k ? k : 1, sizeof *s);
    if (!s) return MPROC_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        const mproc_value *e = mproc_value_list_get(*all, i);
        s[i].name = mproc_value_get_str(mproc_value_list_get(e, 0), NULL);
        s[i].typeid = mproc_value_get_str(mproc_value_list_get(e, 1), NULL);
        const mproc_value *a = mproc_value_list_get(e, 2);
        s[i].args = mproc_value_kind_of(a) == MPROC_V_LIST ? a : NULL;
    }
    *out = s;
    *n = k;
    return 0;
}

static char *dup_str(const mproc_value *v)
{
    const char *s = mproc_value_get_str(v, NULL);
    return s ? strdup(s) : NULL;
}

/* Rebuilds the type table in the server (kept for its whole life: what the
 * analyzer takes for leaks of it, here and in server_main, is on purpose). */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static int decode_types(const void *blob, size_t len, mproc_type_def **out, size_t *n)
{
    mproc_value *all;
    int rc = mproc_value_decode(blob, len, NULL, &all);
    if (rc) return rc;
    size_t nt = mproc_value_len(all);
    mproc_type_def *t = calloc(nt ? nt : 1, sizeof *t);
    if (!t) rc = MPROC_ENOMEM;
    for (size_t i = 0; i < nt && !rc; i++) {
        const mproc_value *e = mproc_value_list_get(all, i);
        uint64_t cr = 0, dr = 0;
        mproc_value_get_uint(mproc_value_list_get(e, 1), &cr);
        mproc_value_get_uint(mproc_value_list_get(e, 2), &dr);
        t[i].typeid = dup_str(mproc_value_list_get(e, 0));
        t[i].create = (int (*)(const mproc_value *, void **))mproc__fnref_resolve(cr);
        t[i].destroy = (void (*)(void *))mproc__fnref_resolve(dr);
        const mproc_value *ms = mproc_value_list_get(e, 3);
        size_t nm = mproc_value_len(ms);
        mproc_method_def *m = calloc(nm ? nm : 1, sizeof *m);
        if (!t[i].typeid || !t[i].create || !m) rc = MPROC_ECHILDSTART;
        for (size_t k = 0; k < nm && !rc; k++) {
            const mproc_value *md = mproc_value_list_get(ms, k);
            uint64_t fr = 0;
            mproc_value_get_uint(mproc_value_list_get(md, 1), &fr);
            m[k].name = dup_str(mproc_value_list_get(md, 0));
            m[k].fn = (mproc_method_fn)mproc__fnref_resolve(fr);
            m[k].returns_typeid = dup_str(mproc_value_list_get(md, 2));
            if (!m[k].name || !m[k].fn) rc = MPROC_ECHILDSTART;
        }
        t[i].methods = m;
        t[i].nmethods = nm;
    }
    mproc_value_free(all);
    *out = t;
    *n = nt;
    return rc;
}

/* ---- the server child ------------------------------------------------------------- */

static void report_address(const char *address, void *ud)
{
    mproc_conn_send_bytes(ud, address, strlen(address));
}

static mproc_auth auth_of(const start_arg *a)
{
    return (mproc_auth){
        .key = a->key_len ? a->key : NULL, .key_len = a->key_len, .family_key = a->family_key};
}

/* Terminated (its owner's exit ends it so, as Python ends a daemon), the
 * server removes its listener's socket file and private directory before
 * it dies, as closing the listener would. Its owner's death sends it
 * SIGTERM too (not the daemon's SIGKILL), so a killed owner leaves no
 * files either; a server killed itself leaves them. */
static char term_file[256], term_dir[256];
static pid_t term_pid; /* the server's: a plain fork() of it inherits the handler */

static void remove_and_die(int sig)
{
    if (getpid() == term_pid) {
        if (term_file[0]) unlink(term_file);
        if (term_dir[0]) rmdir(term_dir);
    }
    signal(sig, SIG_DFL);
    raise(sig); /* on return from here: the exit status says SIGTERM, as before */
}

static void remove_at_term(const mproc_listener *l)
{
    const char *file, *dir;
    mproc__listener_leftovers(l, &file, &dir);
    if (file && strlen(file) < sizeof term_file) strcpy(term_file, file);
    if (dir && strlen(dir) < sizeof term_dir) strcpy(term_dir, dir);
    if (!term_file[0] && !term_dir[0]) return;
    term_pid = getpid();
    struct sigaction sa = {.sa_handler = remove_and_die};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, NULL); /* the threads it starts inherit this */
    if (mproc__die_with_parent_by(SIGTERM) == MPROC_ESRCH) raise(SIGTERM); /* owner gone */
}

static int server_main(void *arg)
{
    start_arg *a = arg;
    mproc_manager_opts o = {.idle_timeout_ms = a->idle_ms,
                            .handshake_timeout_ms = a->handshake_ms,
                            .max_connections = a->max_conns,
                            .max_message = (size_t)a->max_msg};
    mproc_type_def *types = NULL;
    int rc = a->types_len ? decode_types(a + 1, a->types_len, &types, &o.ntypes) : 0;
    o.types = types;
    mproc_manager_shared *shared = NULL;
    mproc_value *shared_v = NULL;
    if (!rc && a->shared_len)
        rc = decode_shared((const char *)(a + 1) + a->types_len, a->shared_len, &shared, &o.nshared,
                           &shared_v);
    o.shared = shared;
    mproc_listener *l = NULL;
    mproc_auth auth = auth_of(a);
    if (!rc) rc = mproc_listener_new(&l, a->address[0] ? a->address : NULL, NULL);
    if (rc) { /* the parent reads "!" and the code */
        char msg[32];
        snprintf(msg, sizeof msg, "!%d", rc);
        mproc_conn_send_bytes(a->report, msg, strlen(msg));
        return 1;
    }
    remove_at_term(l);
    rc = mproc__mgr_serve(l, &auth, &o, report_address, a->report);
    if (rc) { /* a shared object could not be made: reported as above */
        char msg[32];
        snprintf(msg, sizeof msg, "!%d", rc);
        mproc_conn_send_bytes(a->report, msg, strlen(msg));
    }
    free(shared);
    mproc_value_free(shared_v);
    mproc_conn_free(a->report);
    mproc_listener_free(l);
    return rc ? 1 : 0;
}
MPROC__ANALYZER_ON

int mproc_manager_start(mproc_manager **out, const mproc_manager_opts *opts)
{
    mproc_manager_opts o = opts ? *opts : (mproc_manager_opts){0};
    if (!out || (o.address && strlen(o.address) >= sizeof((start_arg *)0)->address) ||
        (o.authkey && (o.authkey_len == 0 || o.authkey_len > MPROC_AUTHKEY_MAX)) ||
        (o.ntypes && !o.types) || mproc__mgr_check_opts(&o) || mproc__mgr_check_shared(&o))
        return MPROC_EINVAL;
    void *blob = NULL, *sblob = NULL;
    size_t blen = 0, slen = 0;
    int rc = o.ntypes ? encode_types(o.types, o.ntypes, &blob, &blen) : 0;
    if (!rc && o.nshared) rc = encode_shared(o.shared, o.nshared, &sblob, &slen);
    if (!rc && (blen > UINT32_MAX || slen > UINT32_MAX)) rc = MPROC_EINVAL;
    if (rc) {
        free(blob);
        free(sblob);
        return rc;
    }
    start_arg *a = calloc(1, sizeof *a + blen + slen);
    mproc_conn *r = NULL;
    if (!a) rc = MPROC_ENOMEM;
    if (!rc) rc = mproc_pipe(&r, &a->report, false);
    if (rc) {
        free(a);
        free(blob);
        free(sblob);
        return rc;
    }
    if (o.address) snprintf(a->address, sizeof a->address, "%s", o.address);
    a->family_key = !o.authkey;
    if (o.authkey) memcpy(a->key, o.authkey, o.authkey_len);
    a->key_len = (uint32_t)o.authkey_len;
    a->idle_ms = o.idle_timeout_ms;
    a->handshake_ms = o.handshake_timeout_ms;
    a->max_conns = o.max_connections;
    a->max_msg = o.max_message;
    a->types_len = (uint32_t)blen;
    if (blen) memcpy(a + 1, blob, blen);
    a->shared_len = (uint32_t)slen;
    if (slen) memcpy((char *)(a + 1) + blen, sblob, slen);
    free(blob);
    free(sblob);
    mproc_process *p;
    /* A daemon: killed with its owner, terminated at the owner's exit. */
    mproc_process_opts po = {.name = "SyncManager",
                             .daemon = true,
                             .start_method =
                                 o.context ? mproc_context_method(o.context) : MPROC_START_DEFAULT};
    rc = mproc_process_new(&p, server_main, a, sizeof *a + blen + slen, &po);
    mproc_auth auth = auth_of(a);
    if (!rc && (rc = mproc_process_start(p))) mproc_process_free(p);
    mproc_conn_free(a->report); /* the child has its end */
    char address[600];
    size_t n = 0;
    if (!rc) {
        rc = mproc_conn_recv_bytes_into(r, address, sizeof address - 1, &n, START_TIMEOUT_MS);
        if (rc == MPROC_EEOF) rc = MPROC_ECHILDSTART;
        if (!rc && n > 0 && address[0] == '!')
            rc = atoi(address + 1) < 0 ? atoi(address + 1) : MPROC_ECHILDSTART;
        if (rc) {
            mproc_process_kill(p);
            mproc_process_join(p, MPROC_FOREVER);
            mproc_process_free(p);
        }
    }
    mproc_conn_free(r);
    if (!rc) {
        address[n] = '\0';
        rc = mproc__mgr_client_new(out, address, &auth, p, &o);
        if (rc) {
            mproc_process_kill(p);
            mproc_process_join(p, MPROC_FOREVER);
            mproc_process_free(p);
        }
    }
    free(a);
    return rc;
}

int mproc_manager_serve(const mproc_manager_opts *opts,
                        void (*ready)(const char *address, void *ud), void *ud)
{
    mproc_manager_opts o = opts ? *opts : (mproc_manager_opts){0};
    if ((o.ntypes && !o.types) || mproc__mgr_check_opts(&o) || mproc__mgr_check_shared(&o))
        return MPROC_EINVAL;
    mproc_listener *l;
    mproc_auth auth = {.key = o.authkey, .key_len = o.authkey_len, .family_key = !o.authkey};
    int rc = mproc_listener_new(&l, o.address, NULL);
    if (rc) return rc;
    rc = mproc__mgr_serve(l, &auth, &o, ready, ud);
    mproc_listener_free(l);
    return rc;
}
