/* Queue workloads: producers and consumers of 8-byte and 1 MiB messages
 * through unbounded, maxsize- and max_bytes-bounded queues.
 *
 * Every message carries its producer, sequence number and a checksum; a
 * producer counts a put as acknowledged once it returned 0, a consumer
 * records every message it got in the ledger. Faults: a producer or
 * consumer killed (a killed consumer is replaced), participants stopped
 * and continued, or the family parent (itself a producer, with a daemon
 * producer and two consumers that watch it) killed. */
#include "fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct qparam {
    size_t msg;
    int bound; /* 0: none, 1: maxsize, 2: max_bytes */
} qparam;

enum { R_PROD, R_CONS, R_PARENT };

typedef struct qshared {
    mproc_queue *q;
    ft_ledger *lg;
    size_t msg;
    _Atomic uint32_t taking[FT_MAXPARTS]; /* 1 while consumer i is inside a get */
    /* The family parent's children, for the trial to adopt. */
    ft_family fam;
} qshared;

typedef struct qarg {
    ft_hdr h;
    qshared *s;
    uint32_t prod;
    bool watch_parent;
    mproc_start_method method;
} qarg;

/* Puts the producer's messages; its exit code. */
static int produce(qshared *s, const ft_hdr *h, uint32_t prod)
{
    ft_ledger *lg = s->lg;
    void *buf = malloc(s->msg);
    if (!buf) return FT_EXIT_ERR;
    for (uint32_t seq = 0; seq < lg->per_prod; seq++) {
        ft_msg_fill(buf, s->msg, prod, seq);
        atomic_store(&lg->putting[prod], 1);
        int rc = mproc_queue_put(s->q, buf, s->msg, h->hang_ms);
        if (rc == 0) {
            atomic_store(&lg->acked[prod], seq + 1);
            atomic_store(&lg->putting[prod], 0);
            continue;
        }
        free(buf);
        if (rc == MPROC_ETIMEDOUT) {
            ft_child_note(h, "HANG: put #%u of producer %u waited %d ms (qsize %zu)", seq, prod,
                          h->hang_ms, mproc_queue_qsize(s->q));
            return FT_EXIT_HANG;
        }
        ft_child_note(h, "put #%u -> %s", seq, mproc_err_name(rc));
        return FT_EXIT_ERR;
    }
    free(buf);
    return FT_EXIT_OK;
}

static int q_producer(void *arg)
{
    qarg *a = arg;
    if (!ft_gate(a->watch_parent ? &a->s->fam.ready : NULL, &a->h)) return FT_EXIT_PEER;
    return produce(a->s, &a->h, a->prod);
}

/* Records one message got; false for a marker. */
static bool record(qshared *s, const ft_hdr *h, const void *buf, size_t len)
{
    uint32_t prod, seq;
    if (!ft_msg_check(buf, len, &prod, &seq)) {
        ft_child_note(h, "LOST: a partial or corrupt message of %zu bytes", len);
        atomic_fetch_add(&s->lg->bad, 1);
        return true;
    }
    if (prod == FT_MARKER_PROD) return false;
    if (!ft_ledger_got(s->lg, prod, seq))
        ft_child_note(h, "a message %u.%u that was never put", prod, seq);
    return true;
}

static int q_consumer(void *arg)
{
    qarg *a = arg;
    qshared *s = a->s;
    _Atomic uint32_t *taking = &s->taking[a->h.index];
    if (!ft_gate(a->watch_parent ? &s->fam.ready : NULL, &a->h)) return FT_EXIT_PEER;
    for (;;) {
        int rc;
        void *buf = NULL;
        size_t len = 0;
        if (a->watch_parent) {
            mproc_waitable w[2] = {MPROC_WAITABLE_QUEUE(s->q),
                                   MPROC_WAITABLE_PROCESS(mproc_parent_process())};
            rc = mproc_wait(w, 2, a->h.hang_ms, NULL);
            if (rc == MPROC_ETIMEDOUT) {
                ft_child_note(&a->h, "HANG: waited %d ms on the queue and the parent",
                              a->h.hang_ms);
                return FT_EXIT_HANG;
            }
            if (rc) {
                ft_child_note(&a->h, "mproc_wait -> %s", mproc_err_name(rc));
                return FT_EXIT_ERR;
            }
            if (w[1].ready) return FT_EXIT_PEER; /* the parent died */
            atomic_store(taking, 1);
            rc = mproc_queue_get(s->q, &buf, &len, 0);
            if (rc == MPROC_ETIMEDOUT) { /* another consumer took it */
                atomic_store(taking, 0);
                continue;
            }
        } else {
            atomic_store(taking, 1);
            rc = mproc_queue_get(s->q, &buf, &len, a->h.hang_ms);
        }
        if (rc == MPROC_ETIMEDOUT) {
            ft_child_note(&a->h, "HANG: get waited %d ms (qsize %zu)", a->h.hang_ms,
                          mproc_queue_qsize(s->q));
            return FT_EXIT_HANG;
        }
        if (rc) {
            ft_child_note(&a->h, "get -> %s", mproc_err_name(rc));
            return FT_EXIT_ERR;
        }
        bool data = record(s, &a->h, buf, len);
        free(buf);
        atomic_store(taking, 0);
        if (!data) return FT_EXIT_OK;
    }
}

static int put_marker(qshared *s, int ms)
{
    uint64_t w;
    ft_msg_fill(&w, 8, FT_MARKER_PROD, 0);
    return mproc_queue_put(s->q, &w, 8, ms);
}

/* The family parent: two consumers watching it, a daemon producer, and
 * itself producer 0. */
static int q_family(void *arg)
{
    qarg *a = arg;
    qshared *s = a->s;
    const mproc_context *ctx;
    if (mproc_get_context(mproc_start_method_name(a->method), &ctx)) return FT_EXIT_ERR;
    mproc_process *kids[3];
    for (int k = 0; k < 3; k++) {
        qarg c = *a;
        c.h.index = 10 + k;
        c.watch_parent = true; /* the consumers watch it; all wait for the gate */
        c.prod = 1;
        int rc = ft_family_child(&s->fam, ctx, k < 2 ? q_consumer : q_producer, &c, sizeof c,
                                 k < 2 ? R_CONS : R_PROD, 0, k == 2, &kids[k]);
        if (rc) {
            ft_child_note(&a->h, "starting a child -> %s", mproc_err_name(rc));
            return FT_EXIT_ERR;
        }
    }
    atomic_store(&s->fam.ready, 1);
    int code = produce(s, &a->h, 0);
    if (mproc_process_join(kids[2], a->h.hang_ms * 4)) return FT_EXIT_HANG;
    ft_linger(&a->h);
    for (int k = 0; k < 2; k++)
        if (put_marker(s, a->h.hang_ms)) return FT_EXIT_HANG;
    for (int k = 0; k < 2; k++)
        if (mproc_process_join(kids[k], a->h.hang_ms * 4)) return FT_EXIT_HANG;
    for (int k = 0; k < 3; k++) mproc_process_free(kids[k]);
    return code;
}

/* Gets what is left (after the participants are gone) into the ledger. */
static void drain(ft_trial *t, qshared *s)
{
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 0);
        if (rc == MPROC_ETIMEDOUT) return;
        if (rc) {
            ft_err(t, "mproc_queue_get (drain)", rc);
            return;
        }
        ft_hdr h;
        ft_hdr_init(t, &h, 0);
        record(s, &h, buf, len);
        free(buf);
    }
}

/* One more put and get after the fault. */
static void usable_again(ft_trial *t, qshared *s)
{
    void *out = malloc(s->msg), *buf = NULL;
    size_t len = 0;
    ft_msg_fill(out, s->msg, 14, 1);
    int rc = mproc_queue_put(s->q, out, s->msg, t->hang_ms);
    if (rc == MPROC_ETIMEDOUT)
        ft_hang(t, "put after the fault waited %d ms (qsize %zu)", t->hang_ms,
                mproc_queue_qsize(s->q));
    else if (rc)
        ft_err(t, "put after the fault", rc);
    else if ((rc = mproc_queue_get(s->q, &buf, &len, t->hang_ms)) == MPROC_ETIMEDOUT)
        ft_hang(t, "get after the fault waited %d ms", t->hang_ms);
    else if (rc)
        ft_err(t, "get after the fault", rc);
    else if (len != s->msg || memcmp(buf, out, len) != 0)
        ft_lost(t, 1, "the message put after the fault came back different");
    free(buf);
    free(out);
}

/* The consumers of a trial (by index; producers come first), for the
 * fault's callback. */
typedef struct qcons {
    qarg a;
    ft_part *cons[FT_MAXPARTS];
    int next;      /* the index of the next one */
    long may_lose; /* items the killed ones may have taken with them */
} qcons;

static void start_consumer(ft_trial *t, qcons *c)
{
    qarg a = c->a;
    ft_hdr_init(t, &a.h, c->next);
    c->cons[c->next++] = ft_start(t, q_consumer, &a, sizeof a, R_CONS, false);
}

/* A consumer killed: what it was taking may be lost; another takes its
 * place. */
static void q_on_kill(ft_trial *t, ft_part *v, void *ud)
{
    qcons *c = ud;
    if (v->role != R_CONS) return;
    for (int k = 0; k < c->next; k++)
        if (c->cons[k] == v) c->may_lose += atomic_load(&c->a.s->taking[k]);
    start_consumer(t, c);
}

static void q_run(ft_trial *t)
{
    const qparam *pa = t->sc->param;
    bool big = pa->msg > 8;
    mproc_queue_opts o = {0};
    if (pa->bound == 1) o.maxsize = ft_range(t, 0, 1) ? 3 : 1;
    if (pa->bound == 2) o.max_bytes = big ? (ft_range(t, 0, 1) ? 3 * pa->msg : pa->msg) : 8;
    qshared *s = ft_calloc(sizeof *s);
    s->msg = pa->msg;
    int rc = mproc_queue_new(&s->q, &o);
    if (rc) {
        ft_err(t, "mproc_queue_new", rc);
        mproc_arena_free(s);
        return;
    }
    /* A killed producer may lose its large message's block and a chunk. */
    void *probe;
    if (mproc_arena_alloc(&probe, pa->msg + 64) == 0) {
        t->max_block = mproc_arena_usable_size(probe) + 64 + (64 << 10);
        mproc_arena_free(probe);
    }
    uint32_t per = big ? (uint32_t)ft_range(t, 12, 30) : (uint32_t)ft_range(t, 1000, 4000);
    uint32_t nprod = 2;
    s->lg = ft_ledger_new(nprod, per);
    uint64_t total = (uint64_t)nprod * per, th[3];
    int nth = ft_thresholds(t, total, th);
    long may_lose = 0;
    qarg a = {.s = s, .method = t->method};

    if (t->sc->fault == FT_PARENT) {
        ft_hdr_init(t, &a.h, 0);
        ft_part *fp = ft_start(t, q_family, &a, sizeof a, R_PARENT, false);
        if (fp && ft_wait_progress(t, &s->lg->progress, th[0])) {
            ft_jitter(t);
            ft_kill(t, fp);
        } else if (fp) {
            ft_kill(t, fp);
        }
        ft_join(t, fp, t->hang_ms);
        /* Its children are ours now: the daemon must die, the others end. */
        ft_adopt_family(t, &s->fam);
        ft_join_all(t, t->hang_ms);
        for (int i = 0; i < t->nparts; i++) {
            ft_part *p = &t->parts[i];
            if (p->daemon && p->code != -SIGKILL && p->code != 0 && p->code != FT_CODE_REAPED)
                ft_lost(t, 1, "the daemon child %d ended with %d", p->pid, p->code);
        }
    } else {
        for (uint32_t k = 0; k < nprod; k++) {
            qarg p = a;
            ft_hdr_init(t, &p.h, (int)k);
            p.prod = k;
            ft_start(t, q_producer, &p, sizeof p, R_PROD, false);
        }
        qcons c = {.a = a, .next = (int)nprod};
        for (int k = 0; k < 2; k++) start_consumer(t, &c);
        ft_faults(t, &s->lg->progress, th, nth, 1u << R_PROD | 1u << R_CONS, q_on_kill, &c);
        may_lose = c.may_lose;
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].role == R_PROD) ft_join(t, &t->parts[i], t->hang_ms * 4);
        int live = 0;
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].role == R_CONS && ft_alive(&t->parts[i])) live++;
        for (int i = 0; i < live; i++) {
            rc = put_marker(s, t->hang_ms);
            if (rc == MPROC_ETIMEDOUT)
                ft_hang(t, "a marker put waited %d ms (qsize %zu)", t->hang_ms,
                        mproc_queue_qsize(s->q));
            else if (rc)
                ft_err(t, "put (marker)", rc);
        }
        ft_join_all(t, t->hang_ms * 2);
    }
    ft_kill_rest(t);
    drain(t, s);
    usable_again(t, s);
    ft_ledger_check(t, s->lg, may_lose);
    ft_ledger_free(s->lg);
    mproc_queue_free(s->q);
    mproc_arena_free(s);
}

static const qparam q8_none = {8, 0}, q8_size = {8, 1}, q8_bytes = {8, 2};
static const qparam q1m_none = {1 << 20, 0}, q1m_size = {1 << 20, 1}, q1m_bytes = {1 << 20, 2};

#define QSC(name, p)                                                                               \
    {"queue-" name "-kill", q_run, FT_KILL, &p}, {"queue-" name "-stop", q_run, FT_STOP, &p},      \
    {                                                                                              \
        "queue-" name "-parent", q_run, FT_PARENT, &p                                              \
    }

const ft_scenario ft_queue_scenarios[] = {QSC("8b-unbounded", q8_none),
                                          QSC("8b-maxsize", q8_size),
                                          QSC("8b-maxbytes", q8_bytes),
                                          QSC("1m-unbounded", q1m_none),
                                          QSC("1m-maxsize", q1m_size),
                                          QSC("1m-maxbytes", q1m_bytes),
                                          {0}};
