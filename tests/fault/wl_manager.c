/* Manager workloads, with a server of the family (mproc_manager_serve in a
 * participant, or mproc_manager_start in a family parent) and clients on
 * the arena channel or on sockets (chosen at random per client):
 *  - queue: producer and consumer clients of a manager Queue;
 *  - blocked: clients blocked in server-side waits (Queue.get,
 *    Semaphore.acquire) when the fault comes; the items and units given
 *    afterwards must go to the living, and the server must drop a dead
 *    client's thread and fd;
 *  - churn: clients that come and go (some free their manager, some just
 *    return), appending to a manager list; the arena must not grow.
 * The family-parent fault kills the manager's owner: the server (a
 * daemon) dies, and every client call must end with a transport error. */
#include "fault.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_QUEUE, M_BLOCKED, M_CHURN };
enum { R_SERVER, R_PROD, R_CONS, R_BLOCKED, R_CHURN, R_PARENT };

typedef struct mref {
    size_t len;
    uint8_t b[96];
} mref;

typedef struct mshared {
    char address[256];
    _Atomic int ready;
    mref queue, sem, list;
    ft_ledger *lg;
    _Atomic uint64_t progress;             /* blocked: clients inside their call */
    _Atomic uint32_t in_call[FT_MAXPARTS]; /* consumers: 1 inside a get */
    _Atomic uint32_t outcome[FT_MAXPARTS]; /* blocked: 1 once their call returned */
    ft_family fam;                         /* the family parent's children */
} mshared;

typedef struct marg {
    ft_hdr h;
    mshared *s;
    int mode;
    bool parent_fault; /* the server may die: transport errors end a client */
    uint32_t prod;     /* producer or churn client number */
    int kind;          /* blocked: 0 Queue.get, 1 Semaphore.acquire */
    bool sockets;      /* MPROC_MANAGER_LOCAL=0 */
    bool leave;        /* churn: return without mproc_manager_free */
    mproc_start_method method;
    /* the family parent's plan */
    int nclients;
    uint32_t per;
} marg;

/* ---- small helpers ------------------------------------------------------------------------ */

static void put_ref(mref *r, mproc_proxy *p)
{
    mproc_value *v = mproc_proxy_ref(p);
    void *buf = NULL;
    size_t len = 0;
    if (v && mproc_value_encode(v, &buf, &len) == 0 && len <= sizeof r->b) {
        memcpy(r->b, buf, len);
        r->len = len;
    }
    free(buf);
    mproc_value_free(v);
}

static mproc_value *args(mproc_value *a, mproc_value *b)
{
    mproc_value *l = mproc_value_list();
    if (a) mproc_value_list_append(l, a);
    if (b) mproc_value_list_append(l, b);
    return l;
}

static int call(mproc_proxy *p, const char *method, mproc_value *a, mproc_value **out)
{
    int rc = mproc_proxy_call(p, method, a, out);
    mproc_value_free(a);
    return rc;
}

static mproc_value *item_value(uint32_t prod, uint32_t seq)
{
    uint64_t w;
    ft_msg_fill(&w, 8, prod, seq);
    return mproc_value_bytes(&w, 8);
}

/* A transport error (the server or the connection is gone). */
static bool transport_error(int rc)
{
    return rc == MPROC_EEOF || rc == MPROC_ECONNRESET || rc == MPROC_EPIPE || rc == MPROC_ECLOSED ||
           rc == MPROC_ENOTCONN || rc == MPROC_ECONNABORTED || rc == MPROC_ECONNREFUSED ||
           rc == MPROC_ENOENT || rc == MPROC_EAUTH;
}

/* A client's exit code for a failed call. */
static int client_fail(const marg *a, const char *what, int rc)
{
    if (rc == MPROC_EMETHOD) {
        int code;
        const char *msg;
        mproc_manager_last_error(&code, &msg);
        if (code == MPROC_ETIMEDOUT) {
            ft_child_note(&a->h, "HANG: %s waited %d ms", what, a->h.hang_ms);
            return FT_EXIT_HANG;
        }
        ft_child_note(&a->h, "%s -> MPROC_EMETHOD (%s: %s)", what, mproc_err_name(code),
                      msg ? msg : "");
        return FT_EXIT_ERR;
    }
    if (a->parent_fault && transport_error(rc)) return FT_EXIT_PEER;
    ft_child_note(&a->h, "%s -> %s", what, mproc_err_name(rc));
    return FT_EXIT_ERR;
}

/* In a client: a proxy for reference r; 0, or the client's exit code (the
 * manager freed). */
static int client_proxy(const marg *a, mproc_manager *m, const mref *r, mproc_proxy **out)
{
    mproc_value *v;
    int rc = mproc_value_decode(r->b, r->len, NULL, &v);
    if (!rc) rc = mproc_proxy_from_value(m, v, out);
    mproc_value_free(v);
    if (!rc) return 0;
    mproc_manager_free(m);
    return client_fail(a, "mproc_proxy_from_value", rc);
}

static int client_connect(const marg *a, mproc_manager **m)
{
    if (!ft_gate(a->parent_fault ? &a->s->fam.ready : NULL, &a->h)) return FT_EXIT_PEER;
    if (a->sockets) setenv("MPROC_MANAGER_LOCAL", "0", 1);
    int rc = mproc_manager_connect(m, a->s->address, NULL, 0);
    return rc ? client_fail(a, "connect", rc) : 0;
}

/* ---- clients ------------------------------------------------------------------------------ */

static int producer_client(void *arg)
{
    marg *a = arg;
    ft_ledger *lg = a->s->lg;
    mproc_manager *m;
    int code = client_connect(a, &m);
    if (code) return code;
    mproc_proxy *q;
    if ((code = client_proxy(a, m, a->mode == M_CHURN ? &a->s->list : &a->s->queue, &q)))
        return code;
    for (uint32_t seq = 0; seq < lg->per_prod && !code; seq++) {
        atomic_store(&lg->putting[a->prod], 1);
        int rc = a->mode == M_CHURN
                     ? call(q, "append", args(item_value(a->prod, seq), NULL), NULL)
                     : call(q, "put", args(item_value(a->prod, seq), mproc_value_int(a->h.hang_ms)),
                            NULL);
        if (rc) {
            code = client_fail(a, a->mode == M_CHURN ? "append" : "put", rc);
            break;
        }
        atomic_store(&lg->acked[a->prod], seq + 1);
        atomic_store(&lg->putting[a->prod], 0);
        if (a->mode == M_CHURN) atomic_fetch_add(&lg->progress, 1);
    }
    if (a->leave && !code) return 0; /* gone without mproc_manager_free */
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return code;
}

/* Records an item got; false for a marker. */
static bool record(mshared *s, const ft_hdr *h, const mproc_value *v)
{
    size_t len = 0;
    const void *b = mproc_value_get_bytes(v, &len);
    uint32_t prod, seq;
    if (!b || !ft_msg_check(b, len, &prod, &seq)) {
        ft_child_note(h, "LOST: a partial or foreign item");
        atomic_fetch_add(&s->lg->bad, 1);
        return true;
    }
    if (prod == FT_MARKER_PROD) return false;
    ft_ledger_got(s->lg, prod, seq);
    return true;
}

static int consumer_client(void *arg)
{
    marg *a = arg;
    mproc_manager *m;
    int code = client_connect(a, &m);
    if (code) return code;
    mproc_proxy *q;
    if ((code = client_proxy(a, m, &a->s->queue, &q))) return code;
    _Atomic uint32_t *taking = &a->s->in_call[a->h.index];
    for (;;) {
        mproc_value *v = NULL;
        atomic_store(taking, 1);
        int rc = call(q, "get", args(mproc_value_int(a->h.hang_ms), NULL), &v);
        if (rc) {
            code = client_fail(a, "get", rc);
            break;
        }
        bool data = record(a->s, &a->h, v);
        mproc_value_free(v);
        atomic_store(taking, 0);
        if (!data) break;
    }
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return code;
}

/* Blocks in a server-side Queue.get or Semaphore.acquire. */
static int blocked_client(void *arg)
{
    marg *a = arg;
    mproc_manager *m;
    int code = client_connect(a, &m);
    if (code) return code;
    mproc_proxy *p;
    if ((code = client_proxy(a, m, a->kind ? &a->s->sem : &a->s->queue, &p))) return code;
    mproc_value *v = NULL;
    atomic_fetch_add(&a->s->progress, 1);
    /* Longer than the trial's look at the server after a kill. */
    int rc =
        call(p, a->kind ? "acquire" : "get", args(mproc_value_int(a->h.hang_ms * 3), NULL), &v);
    if (rc) {
        code = client_fail(a, a->kind ? "acquire" : "get", rc);
    } else if (a->kind) {
        bool got = false;
        if (mproc_value_get_bool(v, &got) || !got) {
            ft_child_note(&a->h, "HANG: acquire waited %d ms", a->h.hang_ms);
            code = FT_EXIT_HANG;
        }
    } else {
        record(a->s, &a->h, v);
    }
    if (!code) atomic_store(&a->s->outcome[a->h.index], 1);
    mproc_value_free(v);
    mproc_proxy_free(p);
    mproc_manager_free(m);
    return code;
}

/* ---- servers ------------------------------------------------------------------------------ */

static void on_ready(const char *address, void *ud)
{
    mshared *s = ud;
    snprintf(s->address, sizeof s->address, "%s", address);
    atomic_store(&s->ready, 1);
}

static int server_target(void *arg)
{
    marg *a = arg;
    int rc = mproc_manager_serve(NULL, on_ready, a->s);
    if (rc) ft_child_note(&a->h, "mproc_manager_serve -> %s", mproc_err_name(rc));
    return rc ? FT_EXIT_ERR : 0;
}

/* Makes the objects of the mode through m and publishes their references. */
static int make_objects(mproc_manager *m, mshared *s, mproc_proxy **objs)
{
    int rc = mproc_manager_create(m, "Queue", NULL, &objs[0]);
    mproc_value *zero = args(mproc_value_int(0), NULL);
    if (!rc) rc = mproc_manager_create(m, "Semaphore", zero, &objs[1]);
    mproc_value_free(zero);
    if (!rc) rc = mproc_manager_create(m, "list", NULL, &objs[2]);
    if (rc) return rc;
    put_ref(&s->queue, objs[0]);
    put_ref(&s->sem, objs[1]);
    put_ref(&s->list, objs[2]);
    return 0;
}

/* The clients of a mode: their targets, roles and arguments. */
typedef struct client_plan {
    mproc_target_fn fn;
    int role;
    marg a;
} client_plan;

static int plan_clients(const marg *base, uint64_t seed, client_plan *out)
{
    int n = 0;
    for (int k = 0; k < base->nclients; k++) {
        client_plan *c = &out[n++];
        c->a = *base;
        c->a.h.index = 1 + k;
        c->a.h.seed = tu_mix64(seed + (uint64_t)k);
        c->a.sockets = c->a.h.seed & 1;
        if (base->mode == M_QUEUE) {
            bool prod = k < 2;
            c->fn = prod ? producer_client : consumer_client;
            c->role = prod ? R_PROD : R_CONS;
            c->a.prod = (uint32_t)k;
        } else if (base->mode == M_BLOCKED) {
            c->fn = blocked_client;
            c->role = R_BLOCKED;
            c->a.kind = k < 2 ? k : (int)(c->a.h.seed >> 8 & 1);
        } else {
            c->fn = producer_client;
            c->role = R_CHURN;
            c->a.prod = (uint32_t)k;
            /* Half return without mproc_manager_free (the server frees what
             * they leave) - but not when the server is to be killed too: a
             * server killed before it saw such a client go cannot free its
             * channel, and nobody else can. */
            c->a.leave = !base->parent_fault && (c->a.h.seed >> 9 & 1);
        }
    }
    return n;
}

/* The family parent: starts a manager (its daemon child), makes the
 * objects, runs the clients as its children and waits for them. */
static int family_target(void *arg)
{
    marg *a = arg;
    mshared *s = a->s;
    const mproc_context *ctx;
    if (mproc_get_context(mproc_start_method_name(a->method), &ctx)) return FT_EXIT_ERR;
    mproc_manager *m;
    int rc = mproc_manager_start(&m, &(mproc_manager_opts){.context = ctx});
    if (rc) {
        ft_child_note(&a->h, "mproc_manager_start -> %s", mproc_err_name(rc));
        return FT_EXIT_ERR;
    }
    mproc_proxy *objs[3] = {0};
    if ((rc = make_objects(m, s, objs)) != 0) return FT_EXIT_ERR;
    snprintf(s->address, sizeof s->address, "%s", mproc_manager_address(m));
    client_plan plan[8];
    int n = plan_clients(a, a->h.seed, plan);
    mproc_process *kids[8];
    for (int k = 0; k < n; k++) {
        if (ft_family_child(&s->fam, ctx, plan[k].fn, &plan[k].a, sizeof plan[k].a, plan[k].role, 0,
                            false, &kids[k]))
            return FT_EXIT_ERR;
    }
    atomic_store(&s->fam.ready, 1);
    /* The fault comes while this waits; if it does not, end cleanly. */
    ft_linger(&a->h);
    for (int k = 0; k < n; k++) mproc_process_join(kids[k], a->h.hang_ms * 4);
    for (int k = 0; k < 3; k++) mproc_proxy_free(objs[k]);
    mproc_manager_free(m);
    return 0;
}

/* ---- the trial ---------------------------------------------------------------------------- */

typedef struct srv_mark {
    int fds, threads;
} srv_mark;

static srv_mark server_mark(pid_t pid)
{
    return (srv_mark){ft_fds_of(pid), ft_threads(pid)};
}

/* Waits until the server holds at most `fds` fds and `threads` threads. */
static bool server_settles(ft_trial *t, pid_t pid, srv_mark want, srv_mark *now)
{
    long long t0 = mproc_now_ns();
    for (;;) {
        *now = server_mark(pid);
        if (now->fds <= want.fds && now->threads <= want.threads) return true;
        if (ft_ms_since(t0) > t->hang_ms) return false;
        ft_sleep_ms(5);
    }
}

static void usable_again(ft_trial *t, mproc_proxy **objs)
{
    int rc = call(objs[0], "put", args(item_value(14, 2), NULL), NULL);
    mproc_value *v = NULL;
    if (!rc) rc = call(objs[0], "get", args(mproc_value_int(t->hang_ms), NULL), &v);
    if (!rc) rc = call(objs[1], "release", NULL, NULL);
    bool got = false;
    mproc_value *w = NULL;
    if (!rc) rc = call(objs[1], "acquire", args(mproc_value_int(t->hang_ms), NULL), &w);
    if (!rc) mproc_value_get_bool(w, &got);
    mproc_value_free(v);
    mproc_value_free(w);
    if (rc) {
        int code = 0;
        const char *msg = "";
        mproc_manager_last_error(&code, &msg);
        ft_lost(t, 1, "a call after the fault -> %s (%s)", mproc_err_name(rc),
                rc == MPROC_EMETHOD ? mproc_err_name(code) : "");
    } else if (!got) {
        ft_hang(t, "an acquire after the fault waited %d ms", t->hang_ms);
    }
}

/* Takes the items and units the killed blocked clients did not take (into
 * the ledger), and checks that nothing more is there. */
static void take_rest(ft_trial *t, mshared *s, mproc_proxy **objs, int items, int units)
{
    for (int k = 0; k <= items; k++) {
        mproc_value *v = NULL;
        int rc = call(objs[0], "get", args(mproc_value_int(0), NULL), &v);
        if (rc == 0) {
            ft_hdr h;
            ft_hdr_init(t, &h, 0);
            record(s, &h, v);
        }
        mproc_value_free(v);
        if (k == items && rc == 0) ft_dup(t, 1, "one item too many in the queue");
    }
    for (int k = 0; k <= units; k++) {
        mproc_value *v = NULL;
        bool got = false;
        int rc = call(objs[1], "acquire", args(mproc_value_int(0), NULL), &v);
        if (!rc) mproc_value_get_bool(v, &got);
        mproc_value_free(v);
        if (k < units && !got)
            ft_lost(t, 1,
                    "a unit released after a blocked acquirer was killed is gone "
                    "(the dead client took it)");
        if (k == units && got) ft_dup(t, 1, "one semaphore unit too many");
    }
}

/* Waits until *progress >= threshold (true) or no participant of the
 * roles runs any more (false); past a deadline, a hang. */
static bool progress_or_gone(ft_trial *t, _Atomic uint64_t *progress, uint64_t threshold,
                             unsigned roles)
{
    long long t0 = mproc_now_ns();
    while (atomic_load(progress) < threshold) {
        if (!ft_pick(t, roles)) return atomic_load(progress) >= threshold;
        if (ft_ms_since(t0) > t->hang_ms * 4) {
            ft_hang(t, "clients made no progress to %llu in %d ms", (unsigned long long)threshold,
                    t->hang_ms * 4);
            return false;
        }
        ft_sleep_ms(1);
    }
    return true;
}

static void m_parent(ft_trial *t, marg *base, uint64_t threshold)
{
    mshared *s = base->s;
    base->parent_fault = true;
    ft_part *fp = ft_start(t, family_target, base, sizeof *base, R_PARENT, false);
    if (!fp) return;
    ft_wait_progress(t, base->mode == M_BLOCKED ? &s->progress : &s->lg->progress, threshold);
    if (base->mode == M_BLOCKED) ft_sleep_ms((long)ft_range(t, 10, 60));
    ft_jitter(t);
    ft_kill(t, fp);
    ft_join(t, fp, t->hang_ms);
    ft_adopt_family(t, &s->fam);
    ft_join_all(t, t->hang_ms * 2);
    ft_ledger_check(t, s->lg, LONG_MAX); /* the queue died with the server: only duplicates */
}

/* What the fault's callback needs: the consumer of the plan (copied for a
 * replacement), and what the killed consumers may have taken. */
typedef struct mcons {
    mshared *s;
    const client_plan *cons;
    int replaced;
    long may_lose;
} mcons;

/* A consumer killed: what it was getting may be lost; another takes its
 * place. */
static void m_on_kill(ft_trial *t, ft_part *v, void *ud)
{
    mcons *c = ud;
    if (v->role != R_CONS) return;
    c->may_lose += atomic_load(&c->s->in_call[v->tag]);
    client_plan r = *c->cons; /* a replacement consumer */
    r.a.h.index = 9 + c->replaced++;
    ft_part *p = ft_start(t, r.fn, &r.a, sizeof r.a, r.role, false);
    if (p) p->tag = r.a.h.index;
}

static void m_run(ft_trial *t)
{
    const int *mode = t->sc->param;
    mshared *s = ft_calloc(sizeof *s);
    t->max_block = (64 << 10) + 4096; /* a channel queue's chunk and a message */
    marg base = {.s = s, .mode = *mode, .method = t->method};
    ft_hdr_init(t, &base.h, 0);
    base.nclients = base.mode == M_QUEUE     ? 4
                    : base.mode == M_BLOCKED ? (int)ft_range(t, 3, 5)
                                             : (int)ft_range(t, 4, 8);
    base.per =
        base.mode == M_QUEUE ? (uint32_t)ft_range(t, 100, 400) : (uint32_t)ft_range(t, 20, 60);
    uint32_t nprod = base.mode == M_QUEUE ? 2 : base.mode == M_CHURN ? (uint32_t)base.nclients : 1;
    s->lg = ft_ledger_new(nprod, base.per);
    uint64_t total = base.mode == M_BLOCKED ? (uint64_t)base.nclients : (uint64_t)nprod * base.per;
    uint64_t th[3];
    int nth = ft_thresholds(t, total, th);
    if (base.mode == M_BLOCKED) th[0] = total, nth = 1;

    if (t->sc->fault == FT_PARENT) {
        m_parent(t, &base, th[0]);
        ft_ledger_free(s->lg);
        mproc_arena_free(s);
        return;
    }

    /* The server, in a participant; this process connects too. */
    ft_part *srv = ft_start(t, server_target, &base, sizeof base, R_SERVER, false);
    long long t0 = mproc_now_ns();
    while (srv && !atomic_load(&s->ready) && ft_ms_since(t0) < t->hang_ms) ft_sleep_ms(1);
    mproc_manager *m = NULL;
    mproc_proxy *objs[3] = {0};
    int rc = srv && atomic_load(&s->ready) ? mproc_manager_connect(&m, s->address, NULL, 0)
                                           : MPROC_ETIMEDOUT;
    if (!rc) rc = make_objects(m, s, objs);
    if (rc) {
        ft_err(t, "starting the manager", rc);
        goto out;
    }
    srv_mark base_mark = server_mark(srv->pid);
    client_plan plan[8];
    int n = plan_clients(&base, base.h.seed, plan);
    ft_part *parts[8];
    long may_lose = 0;
    int killed_get = 0, killed_acq = 0;

    if (base.mode == M_CHURN) { /* two at a time, a wave when the last has gone */
        int i = 0;
        for (int started = 0; started < n;) {
            for (int k = 0; k < 2 && started < n; k++, started++)
                parts[started] = ft_start(t, plan[started].fn, &plan[started].a,
                                          sizeof plan[started].a, plan[started].role, false);
            while (i < nth && progress_or_gone(t, &s->lg->progress, th[i], 1u << R_CHURN)) {
                i++;
                ft_jitter(t);
                ft_part *v = ft_pick(t, 1u << R_CHURN);
                if (v && t->sc->fault == FT_STOP) ft_stop(t, v, 30);
                if (v && t->sc->fault == FT_KILL) ft_kill(t, v);
            }
            ft_join_roles(t, 1u << R_CHURN, t->hang_ms * 2);
        }
        /* Everything acknowledged is in the list, once. */
        mproc_value *all = NULL;
        if ((rc = call(objs[2], "copy", NULL, &all)) != 0) {
            ft_err(t, "list.copy", rc);
        } else {
            for (size_t k = 0; k < mproc_value_len(all); k++) {
                ft_hdr h;
                ft_hdr_init(t, &h, 0);
                record(s, &h, mproc_value_list_get(all, k));
            }
        }
        mproc_value_free(all);
        ft_ledger_check(t, s->lg, 0);
    } else {
        for (int k = 0; k < n; k++)
            if ((parts[k] =
                     ft_start(t, plan[k].fn, &plan[k].a, sizeof plan[k].a, plan[k].role, false)))
                parts[k]->tag = plan[k].a.h.index;
        if (base.mode == M_BLOCKED) {
            /* Every client in its call, and a moment more: blocked in the server. */
            if (ft_wait_progress(t, &s->progress, total)) {
                ft_sleep_ms((long)ft_range(t, 20, 80));
                srv_mark all = server_mark(srv->pid);
                int nv = t->sc->fault == FT_KILL ? (int)ft_range(t, 1, 2) : (int)ft_range(t, 1, 3);
                for (int i = 0; i < nv; i++) {
                    ft_part *v = ft_strike(t, 1u << R_BLOCKED);
                    if (!v) break;
                    if (!v->killed) continue;
                    for (int k = 0; k < n; k++)
                        if (parts[k] == v) *(plan[k].a.kind ? &killed_acq : &killed_get) += 1;
                }
                int nk = killed_get + killed_acq;
                if (nk) { /* the dead clients' threads and fds go, before any item comes */
                    srv_mark want = {all.fds - nk * (all.fds - base_mark.fds) / n,
                                     all.threads - nk * (all.threads - base_mark.threads) / n},
                             now;
                    if (!server_settles(t, srv->pid, want, &now))
                        ft_leak(t, nk,
                                "the server kept dead blocked clients' fds/threads: %d/%d, "
                                "want <= %d/%d (%d/%d with all %d clients, %d/%d before)",
                                now.fds, now.threads, want.fds, want.threads, all.fds, all.threads,
                                n, base_mark.fds, base_mark.threads);
                }
                int gets = 0, acqs = 0;
                for (int k = 0; k < n; k++) *(plan[k].a.kind ? &acqs : &gets) += 1;
                for (int k = 0; k < gets; k++) {
                    atomic_fetch_add(&s->lg->acked[0], 1);
                    if ((rc = call(objs[0], "put", args(item_value(0, (uint32_t)k), NULL), NULL)))
                        ft_err(t, "Queue.put", rc);
                }
                for (int k = 0; k < acqs; k++)
                    if ((rc = call(objs[1], "release", NULL, NULL)))
                        ft_err(t, "Semaphore.release", rc);
            }
            ft_join_roles(t, 1u << R_BLOCKED, t->hang_ms * 4);
            take_rest(t, s, objs, killed_get, killed_acq);
            ft_ledger_check(t, s->lg, 0);
        } else {
            mcons c = {.s = s, .cons = &plan[2]};
            ft_faults(t, &s->lg->progress, th, nth,
                      1u << R_PROD | 1u << R_CONS | (t->sc->fault == FT_STOP ? 1u << R_SERVER : 0),
                      m_on_kill, &c);
            may_lose = c.may_lose;
            for (int k = 0; k < t->nparts; k++)
                if (t->parts[k].role == R_PROD) ft_join(t, &t->parts[k], t->hang_ms * 4);
            for (int k = 0; k < t->nparts; k++)
                if (t->parts[k].role == R_CONS && ft_alive(&t->parts[k]) &&
                    (rc = call(objs[0], "put", args(item_value(FT_MARKER_PROD, 0), NULL), NULL)))
                    ft_err(t, "Queue.put (marker)", rc);
            ft_join_roles(t, 1u << R_CONS, t->hang_ms * 2);
            for (;;) { /* what is left */
                mproc_value *v = NULL;
                if (call(objs[0], "get", args(mproc_value_int(0), NULL), &v)) break;
                ft_hdr h;
                ft_hdr_init(t, &h, 0);
                record(s, &h, v);
                mproc_value_free(v);
            }
            ft_ledger_check(t, s->lg, may_lose);
        }
    }
    usable_again(t, objs);
    /* Every client has gone: the server is back to what it had. */
    srv_mark now;
    if (!server_settles(t, srv->pid, base_mark, &now))
        ft_leak(t, 1, "the server has %d fds and %d threads after the clients went, had %d and %d",
                now.fds, now.threads, base_mark.fds, base_mark.threads);
out:
    for (int k = 0; k < 3; k++) mproc_proxy_free(objs[k]);
    if (m && (rc = mproc_manager_shutdown(m)) != 0) ft_err(t, "mproc_manager_shutdown", rc);
    mproc_manager_free(m);
    if (srv && ft_join(t, srv, t->hang_ms) != 0)
        ft_lost(t, 1, "the server ended with %d", srv->code);
    ft_ledger_free(s->lg);
    mproc_arena_free(s);
}

static const int m_queue = M_QUEUE, m_blocked = M_BLOCKED, m_churn = M_CHURN;

const ft_scenario ft_manager_scenarios[] = {
    {"manager-queue-kill", m_run, FT_KILL, &m_queue},
    {"manager-queue-stop", m_run, FT_STOP, &m_queue},
    {"manager-queue-parent", m_run, FT_PARENT, &m_queue},
    {"manager-blocked-kill", m_run, FT_KILL, &m_blocked},
    {"manager-blocked-stop", m_run, FT_STOP, &m_blocked},
    {"manager-blocked-parent", m_run, FT_PARENT, &m_blocked},
    {"manager-churn-kill", m_run, FT_KILL, &m_churn},
    {"manager-churn-stop", m_run, FT_STOP, &m_churn},
    {"manager-churn-parent", m_run, FT_PARENT, &m_churn},
    {0}};
