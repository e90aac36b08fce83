/* The description of a child for a new program image (process/bootstrap.h). */
#include "process/bootstrap.h"
#include "arena/arena.h"
#include "conn/auth.h"
#include "conn/conn.h"
#include "base/log.h"
#include "platform/platform.h"
#include "mproc/context.h"
#include "mproc/value.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parent side ----------------------------------------------------------- */

static int put(mproc_value *m, const char *key, mproc_value *v)
{
    return v ? mproc_value_map_set_str(m, key, v) : MPROC_ENOMEM;
}

static int append(mproc_value *list, mproc_value *v)
{
    return v ? mproc_value_list_append(list, v) : MPROC_ENOMEM;
}

/* The index of fd in fds, adding it if new; -1 for no fd. */
static int fd_index(int fd, int *fds, size_t *nfds, int *err)
{
    if (fd < 0) return -1;
    for (size_t i = 0; i < *nfds; i++)
        if (fds[i] == fd) return (int)i;
    if (*nfds == MPROC__BOOT_MAX_FDS) {
        *err = MPROC_EMFILE;
        return -1;
    }
    fds[*nfds] = fd;
    return (int)(*nfds)++;
}

static int encode_conns(const mproc_process *p, mproc_value *m, int *fds, size_t *nfds)
{
    size_t n = mproc__conn_scan(p->arg, p->arglen, NULL, 0);
    if (n == 0) return 0;
    mproc__conn_hit *hits = malloc(n * sizeof *hits);
    if (!hits) return MPROC_ENOMEM;
    n = mproc__conn_scan(p->arg, p->arglen, hits, n);
    mproc_value *list = mproc_value_list();
    int rc = list ? 0 : MPROC_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        int rfd, wfd;
        mproc__conn_fds(hits[i].conn, &rfd, &wfd);
        int ri = fd_index(rfd, fds, nfds, &rc), wi = fd_index(wfd, fds, nfds, &rc);
        mproc_value *e = mproc_value_list();
        if (!e) rc = MPROC_ENOMEM;
        if (!rc) rc = append(e, mproc_value_uint(hits[i].off));
        if (!rc) rc = append(e, mproc_value_int(ri));
        if (!rc) rc = append(e, mproc_value_int(wi));
        if (!rc)
            rc = mproc_value_list_append(list, e);
        else
            mproc_value_free(e);
    }
    free(hits);
    if (!rc) return put(m, "conns", list);
    mproc_value_free(list);
    return rc;
}

/* The family authkey, which the child takes as its own. */
static int encode_authkey(mproc_value *m)
{
    uint8_t key[MPROC_AUTHKEY_MAX];
    size_t n;
    int rc = mproc_get_authkey(key, sizeof key, &n);
    if (!rc) rc = put(m, "authkey", mproc_value_bytes(key, n));
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

void mproc__boot_signals(uint64_t *ign, uint64_t *mask)
{
    sigset_t blocked;
    pthread_sigmask(SIG_SETMASK, NULL, &blocked);
    *ign = *mask = 0;
    for (int s = 1; s <= 64 && s < NSIG; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) *ign |= 1ULL << (s - 1);
        if (sigismember(&blocked, s) == 1) *mask |= 1ULL << (s - 1);
    }
}

int mproc__boot_encode(const mproc_process *p, mproc__fnref preload, void **blob, size_t *len,
                       int fds[MPROC__BOOT_MAX_FDS], size_t *nfds)
{
    *nfds = 0;
    mproc__fnref target = 0;
    int rc = p ? mproc__fnref_make((const void *)p->target, &target) : 0;
    if (rc) return rc;
    mproc_arena_info ai;
    if ((rc = mproc_arena_info_get(&ai))) return rc;
    mproc_value *m = mproc_value_map();
    if (!m) return MPROC_ENOMEM;
    mproc_process *self = mproc_current_process();
    /* The child's default is ours if set (an unset default stays unset). */
    mproc_start_method method = MPROC_START_DEFAULT;
    const char *mname = mproc_get_start_method(true);
    if (mname) mproc_start_method_parse(mname, &method);
    rc = put(m, "role", mproc_value_int(p ? MPROC__ROLE_CHILD : MPROC__ROLE_FORKSERVER));
    if (!rc) rc = put(m, "method", mproc_value_int(method));
    if (!rc) rc = put(m, "ppid", mproc_value_int(mproc__self_pid()));
    if (!rc) rc = put(m, "pname", mproc_value_str(mproc_process_name(self)));
    if (!rc) rc = put(m, "log", mproc_value_int(mproc__log_stderr_level()));
    if (!rc) rc = put(m, "abase", mproc_value_uint(ai.base));
    if (!rc) rc = put(m, "asize", mproc_value_uint(ai.size));
    if (!rc && preload) rc = put(m, "preload", mproc_value_uint(preload));
    uint64_t ign, mask;
    mproc__boot_signals(&ign, &mask);
    if (!rc) rc = put(m, "sigign", mproc_value_uint(ign));
    if (!rc) rc = put(m, "sigmask", mproc_value_uint(mask));
    if (!rc && p) {
        rc = put(m, "name", mproc_value_str(p->name));
        if (!rc) rc = put(m, "ident", mproc_value_str(p->identity));
        if (!rc) rc = put(m, "daemon", mproc_value_bool(p->daemon));
        if (!rc && p->parent_is_thread) rc = put(m, "pthread", mproc_value_bool(true));
        if (!rc) rc = put(m, "target", mproc_value_uint(target));
        if (!rc) rc = put(m, "arg", mproc_value_bytes(p->arg, p->arglen));
        if (!rc) rc = encode_conns(p, m, fds, nfds);
        if (!rc && p->passed) rc = put(m, "passed", mproc_value_copy(p->passed));
        if (!rc) rc = encode_authkey(m);
    }
    if (!rc) rc = mproc_value_encode(m, blob, len);
    mproc_value_free(m);
    return rc;
}

/* ---- child side ------------------------------------------------------------- */

static int get_int(const mproc_value *m, const char *key, int64_t *out)
{
    return mproc_value_get_int(mproc_value_map_get_str(m, key), out);
}

static int get_uint(const mproc_value *m, const char *key, uint64_t *out)
{
    return mproc_value_get_uint(mproc_value_map_get_str(m, key), out);
}

static char *get_str(const mproc_value *m, const char *key, int *rc)
{
    size_t n;
    const char *s = mproc_value_get_str(mproc_value_map_get_str(m, key), &n);
    if (!s) {
        *rc = MPROC_EPROTO;
        return NULL;
    }
    char *c = strndup(s, n);
    if (!c) *rc = MPROC_ENOMEM;
    return c;
}

static int decode_conns(const mproc_value *list, mproc__boot *b)
{
    size_t n = mproc_value_len(list);
    if (n == 0) return 0;
    if (!(b->conns = calloc(n, sizeof *b->conns))) return MPROC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const mproc_value *e = mproc_value_list_get(list, i);
        int64_t r, w;
        uint64_t off;
        if (mproc_value_len(e) != 3 || mproc_value_get_uint(mproc_value_list_get(e, 0), &off) ||
            mproc_value_get_int(mproc_value_list_get(e, 1), &r) ||
            mproc_value_get_int(mproc_value_list_get(e, 2), &w) || r < -1 || w < -1 ||
            r >= MPROC__BOOT_MAX_FDS || w >= MPROC__BOOT_MAX_FDS ||
            off + sizeof(void *) > b->arglen)
            return MPROC_EPROTO;
        b->conns[i] = (mproc__boot_conn){off, (int)r, (int)w};
        b->nconns++;
    }
    return 0;
}

int mproc__boot_decode(const void *blob, size_t len, mproc__boot *b)
{
    *b = (mproc__boot){0};
    mproc_value *m;
    int rc = mproc_value_decode(blob, len, NULL, &m);
    if (rc) return rc;
    int64_t role, method, ppid, log;
    uint64_t base, size;
    if (get_int(m, "role", &role) || get_int(m, "method", &method) || get_int(m, "ppid", &ppid) ||
        get_int(m, "log", &log) || get_uint(m, "abase", &base) || get_uint(m, "asize", &size)) {
        mproc_value_free(m);
        return MPROC_EPROTO;
    }
    b->role = (int)role;
    b->method = (int)method;
    b->ppid = (pid_t)ppid;
    b->log_level = (int)log;
    b->arena_base = (uintptr_t)base;
    b->arena_size = (size_t)size;
    b->parent_name = get_str(m, "pname", &rc);
    uint64_t u;
    if (!get_uint(m, "preload", &u)) b->preload = u;
    if (!get_uint(m, "sigign", &u)) b->sig_ign = u;
    if (!get_uint(m, "sigmask", &u)) b->sig_mask = u;
    if (!rc && role == MPROC__ROLE_CHILD) {
        bool d = false;
        b->name = get_str(m, "name", &rc);
        if (!rc) b->identity = get_str(m, "ident", &rc);
        if (!rc && (mproc_value_get_bool(mproc_value_map_get_str(m, "daemon"), &d) ||
                    get_uint(m, "target", &u)))
            rc = MPROC_EPROTO;
        b->daemon = d;
        bool t = false;
        const mproc_value *pt = mproc_value_map_get_str(m, "pthread"); /* only when true */
        if (!rc && pt && mproc_value_get_bool(pt, &t)) rc = MPROC_EPROTO;
        b->parent_is_thread = t;
        b->target = u;
        size_t n = 0;
        const void *a = mproc_value_get_bytes(mproc_value_map_get_str(m, "arg"), &n);
        if (!rc && !a) rc = MPROC_EPROTO;
        if (!rc && n && !(b->arg = malloc(n))) rc = MPROC_ENOMEM;
        if (!rc && n) memcpy(b->arg, a, n);
        b->arglen = n;
        const mproc_value *conns = mproc_value_map_get_str(m, "conns");
        if (!rc && conns) rc = decode_conns(conns, b);
        const mproc_value *passed = mproc_value_map_get_str(m, "passed");
        if (!rc && passed && !(b->passed = mproc_value_copy(passed))) rc = MPROC_ENOMEM;
        const void *k = mproc_value_get_bytes(mproc_value_map_get_str(m, "authkey"), &n);
        if (!rc && k && n > 0 && n <= MPROC_AUTHKEY_MAX) {
            if (!(b->authkey = malloc(n))) rc = MPROC_ENOMEM;
            if (!rc) memcpy(b->authkey, k, n);
            b->authkey_len = n;
        }
    } else if (!rc && role != MPROC__ROLE_FORKSERVER) {
        rc = MPROC_EPROTO;
    }
    mproc_value_free(m);
    if (rc) mproc__boot_free(b);
    return rc;
}

void mproc__boot_free(mproc__boot *b)
{
    free(b->name);
    free(b->identity);
    free(b->parent_name);
    free(b->arg);
    free(b->conns);
    mproc_value_free(b->passed);
    if (b->authkey) OPENSSL_cleanse(b->authkey, b->authkey_len);
    free(b->authkey);
    *b = (mproc__boot){0};
}

int mproc__boot_make_child(mproc__boot *b, const int *fds, size_t nfds, mproc_process **out,
                           const char **msg)
{
    if (b->log_level != MPROC_LOG_OFF) mproc_log_to_stderr(b->log_level);
    const char *mname = mproc_start_method_name((mproc_start_method)b->method);
    if (mname) mproc_set_start_method(mname, true);
    mproc_process *self = mproc_current_process();
    /* (The forkserver renames itself once, not at every child.) */
    if (b->parent_name && strcmp(mproc_process_name(self), b->parent_name) != 0)
        mproc_process_set_name(self, b->parent_name);
    if (b->authkey) mproc_set_authkey(b->authkey, b->authkey_len);
    mproc_target_fn fn = (mproc_target_fn)mproc__fnref_resolve(b->target);
    if (!fn) {
        *msg = "the target function cannot be found in the child";
        return MPROC_ECHILDSTART;
    }
    mproc_process *p;
    mproc_process_opts o = {.name = b->name, .daemon = b->daemon};
    int rc = mproc_process_new(&p, fn, b->arg, b->arglen, &o);
    if (rc) {
        *msg = "cannot make the child's process object";
        return rc;
    }
    p->parent_is_thread = b->parent_is_thread;
    p->identity = b->identity; /* lives as long as the child */
    b->identity = NULL;
    p->passed = b->passed; /* adopted by the child (mproc__child_main) */
    b->passed = NULL;
    for (size_t i = 0; i < b->nconns; i++) {
        const mproc__boot_conn *c = &b->conns[i];
        int r = c->rfd >= 0 && (size_t)c->rfd < nfds ? fds[c->rfd] : -1;
        int w = c->wfd >= 0 && (size_t)c->wfd < nfds ? fds[c->wfd] : -1;
        mproc_conn *conn = mproc__conn_adopt(r, w);
        if (!conn) {
            *msg = "cannot make the connections passed to the child";
            return MPROC_ENOMEM;
        }
        memcpy((char *)p->arg + c->off, &conn, sizeof conn);
    }
    *out = p;
    return 0;
}

/* A sentinel that is ready at once, as the pidfd of an ended process is:
 * a pipe whose writing end is closed. */
static int ended_sentinel(void)
{
    int fds[2];
    if (mproc__pipe_cloexec(fds) != 0) return -1;
    close(fds[1]);
    return fds[0];
}

int mproc__boot_parent_fd(pid_t ppid)
{
    int fd = mproc__pidfd_open(ppid);
    bool ours = getppid() == ppid;
    if (fd >= 0 && ours) return fd;
    if (fd < 0 && fd != MPROC_ESRCH && ours) return -1; /* no pidfds, or no fds left */
    /* The parent ended before we looked (ESRCH, or we were re-parented and
     * the pid may name another process by now): it is still our parent,
     * one that has ended. */
    if (fd >= 0) close(fd);
    return ended_sentinel();
}
