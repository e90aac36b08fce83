/* Semaphore, condition and barrier workloads.
 *  - sem: k units, k + 2 holders acquiring and releasing in a loop; never
 *    more than k inside; at the end the value is k less the units the dead
 *    took with them (the state each holder published says how many).
 *  - cond: producers and consumers of a bounded buffer under a lock, with
 *    two conditions (not full, not empty); every item put is got once.
 *  - barrier: parties passing rounds, with an action; each round is passed
 *    by all parties with distinct indices, or by none; after a death the
 *    observer aborts the barrier, then resets it for another round. */
#include "fault.h"

#include <signal.h>
#include <string.h>

enum { S_SEM, S_COND, S_BARRIER };
enum { R_WORKER, R_PROD, R_CONS, R_PARENT };

/* ---- common to the three --------------------------------------------------------------------- */

typedef struct sarg {
    ft_hdr h;
    void *s; /* the workload's shared state */
    int role;
    uint32_t id;
    bool watch_parent;
    mproc_start_method method;
} sarg;

typedef int (*body_fn)(const sarg *a);

/* True once the parent of this process is gone. */
static bool parent_gone(void)
{
    mproc_process *pp = mproc_parent_process();
    return pp && !mproc_process_is_alive(pp);
}

/* ---- semaphore ---------------------------------------------------------------------------- */

enum { ST_IDLE, ST_ACQ, ST_HOLD, ST_REL };

typedef struct semsh {
    mproc_sem sem;
    unsigned k;
    uint32_t per;
    _Atomic uint32_t inuse, over;
    _Atomic uint32_t state[FT_MAXPARTS];
    _Atomic uint64_t progress;
    ft_family fam;
} semsh;

static int sem_body(const sarg *a)
{
    semsh *s = a->s;
    _Atomic uint32_t *st = &s->state[a->id];
    uint64_t r = a->h.seed;
    for (uint32_t i = 0; i < s->per; i++) {
        atomic_store(st, ST_ACQ);
        int rc;
        long long t0 = mproc_now_ns();
        while ((rc = mproc_sem_acquire(&s->sem, a->watch_parent ? 50 : a->h.hang_ms)) ==
                   MPROC_ETIMEDOUT &&
               a->watch_parent && ft_ms_since(t0) < a->h.hang_ms)
            if (parent_gone()) return FT_EXIT_PEER;
        if (rc == MPROC_ETIMEDOUT) {
            ft_child_note(&a->h, "HANG: acquire waited %d ms", a->h.hang_ms);
            return FT_EXIT_HANG;
        }
        if (rc) return FT_EXIT_ERR;
        atomic_store(st, ST_HOLD);
        uint32_t n = atomic_fetch_add(&s->inuse, 1) + 1;
        if (n > s->k) atomic_fetch_add(&s->over, 1);
        r = tu_mix64(r + i); /* 0..20 us inside */
        long long t0h = mproc_now_ns(), ns = (long long)(r % 20000);
        while (mproc_now_ns() - t0h < ns) {
        }
        atomic_fetch_sub(&s->inuse, 1);
        atomic_store(st, ST_REL);
        if ((rc = mproc_sem_release(&s->sem)) != 0) {
            ft_child_note(&a->h, "release -> %s", mproc_err_name(rc));
            return FT_EXIT_ERR;
        }
        atomic_store(st, ST_IDLE);
        atomic_fetch_add(&s->progress, 1);
    }
    return 0;
}

/* ---- condition ---------------------------------------------------------------------------- */

#define RING 8

typedef struct condsh {
    mproc_lock lock;
    mproc_cond notfull, notempty;
    uint64_t ring[RING];
    uint64_t head, tail; /* under the lock; each one store */
    bool done;
    ft_ledger *lg;
    _Atomic uint32_t taking[FT_MAXPARTS];
    ft_family fam;
} condsh;

/* Acquire and wait results: MPROC_EOWNERDEAD means the lock is ours and
 * the state is consistent (every change is one store). */
static int fix(condsh *s, int rc)
{
    if (rc == MPROC_EOWNERDEAD) rc = mproc_lock_make_consistent(&s->lock);
    return rc;
}

/* Waits on c (lock held) in slices, for at most hang_ms in all; a parent
 * watcher ends when the parent is gone. 0 when woken, else an exit code. */
static int cond_wait(const sarg *a, condsh *s, mproc_cond *c, long long t0)
{
    int slice = a->watch_parent ? 50 : a->h.hang_ms;
    int rc = fix(s, mproc_cond_wait(c, slice));
    if (rc == 0) return 0;
    if (rc != MPROC_ETIMEDOUT) {
        ft_child_note(&a->h, "cond_wait -> %s", mproc_err_name(rc));
        return FT_EXIT_ERR;
    }
    if (a->watch_parent && parent_gone()) return FT_EXIT_PEER;
    if (ft_ms_since(t0) < a->h.hang_ms) return 0;
    ft_child_note(&a->h, "HANG: cond_wait waited %d ms (%llu items in the ring)", a->h.hang_ms,
                  (unsigned long long)(s->tail - s->head));
    return FT_EXIT_HANG;
}

static int cond_producer(const sarg *a)
{
    condsh *s = a->s;
    ft_ledger *lg = s->lg;
    for (uint32_t seq = 0; seq < lg->per_prod; seq++) {
        int rc = fix(s, mproc_lock_acquire(&s->lock, a->h.hang_ms));
        if (rc) return rc == MPROC_ETIMEDOUT ? FT_EXIT_HANG : FT_EXIT_ERR;
        long long t0 = mproc_now_ns();
        while (s->tail - s->head >= RING) {
            int code = cond_wait(a, s, &s->notfull, t0);
            if (code) {
                mproc_lock_release(&s->lock);
                return code;
            }
        }
        uint64_t w;
        ft_msg_fill(&w, 8, a->id, seq);
        atomic_store(&lg->putting[a->id], 1);
        s->ring[s->tail % RING] = w;
        s->tail++; /* the commit */
        mproc_cond_notify(&s->notempty, 1);
        if (mproc_lock_release(&s->lock)) return FT_EXIT_ERR;
        atomic_store(&lg->acked[a->id], seq + 1);
        atomic_store(&lg->putting[a->id], 0);
    }
    return 0;
}

static int cond_consumer(const sarg *a)
{
    condsh *s = a->s;
    for (;;) {
        int rc = fix(s, mproc_lock_acquire(&s->lock, a->h.hang_ms));
        if (rc) return rc == MPROC_ETIMEDOUT ? FT_EXIT_HANG : FT_EXIT_ERR;
        long long t0 = mproc_now_ns();
        while (s->tail == s->head && !s->done) {
            int code = cond_wait(a, s, &s->notempty, t0);
            if (code) {
                mproc_lock_release(&s->lock);
                return code;
            }
        }
        if (s->tail == s->head) { /* done and drained */
            mproc_lock_release(&s->lock);
            return 0;
        }
        atomic_store(&s->taking[a->h.index], 1);
        uint64_t w = s->ring[s->head % RING];
        s->head++; /* the commit */
        uint32_t prod, seq;
        if (!ft_msg_check(&w, 8, &prod, &seq))
            atomic_fetch_add(&s->lg->bad, 1);
        else
            ft_ledger_got(s->lg, prod, seq);
        atomic_store(&s->taking[a->h.index], 0);
        mproc_cond_notify(&s->notfull, 1);
        if (mproc_lock_release(&s->lock)) return FT_EXIT_ERR;
    }
}

/* ---- barrier ------------------------------------------------------------------------------ */

#define MAXROUNDS 256

typedef struct barsh {
    mproc_barrier b;
    unsigned parties;
    uint32_t rounds;
    _Atomic uint32_t action_runs;
    _Atomic uint32_t passed[FT_MAXPARTS]; /* rounds each party passed */
    _Atomic uint8_t taken[MAXROUNDS + 4][8];
    _Atomic uint64_t progress;
    ft_family fam;
} barsh;

static int bar_action(void *arg)
{
    barsh *s = arg;
    atomic_fetch_add(&s->action_runs, 1);
    return 0;
}

static int bar_party(const sarg *a)
{
    barsh *s = a->s;
    for (uint32_t r = atomic_load(&s->passed[a->id]); r < s->rounds; r++) {
        unsigned idx = 99;
        int rc = mproc_barrier_wait(&s->b, a->h.hang_ms * 2, &idx);
        if (rc == MPROC_EBROKEN) return FT_EXIT_PEER;
        if (rc == MPROC_ETIMEDOUT) {
            ft_child_note(&a->h, "HANG: barrier_wait of round %u waited %d ms", r,
                          a->h.hang_ms * 2);
            return FT_EXIT_HANG;
        }
        if (rc) return FT_EXIT_ERR;
        if (idx < 8 && r < MAXROUNDS + 4) atomic_fetch_add(&s->taken[r][idx], 1);
        atomic_store(&s->passed[a->id], r + 1);
        atomic_fetch_add(&s->progress, 1);
    }
    return 0;
}

/* ---- targets ------------------------------------------------------------------------------ */

/* A child of the family parent waits until the parent knows all three. */
static bool gate(const sarg *a, ft_family *f)
{
    return ft_gate(a->watch_parent ? &f->ready : NULL, &a->h);
}

static int sem_target(void *arg)
{
    const sarg *a = arg;
    return gate(a, &((semsh *)a->s)->fam) ? sem_body(a) : FT_EXIT_PEER;
}

static int cond_target(void *arg)
{
    const sarg *a = arg;
    if (!gate(a, &((condsh *)a->s)->fam)) return FT_EXIT_PEER;
    return a->role == R_PROD ? cond_producer(a) : cond_consumer(a);
}

static int bar_target(void *arg)
{
    const sarg *a = arg;
    return gate(a, &((barsh *)a->s)->fam) ? bar_party(a) : FT_EXIT_PEER;
}

/* The family parent: a participant itself, with three children (the last a
 * daemon; watchers of the parent where they could otherwise wait for it). */
typedef struct parg {
    sarg self;
    int kind;
} parg;

static int family_target(void *arg)
{
    parg *pa = arg;
    const sarg *a = &pa->self;
    const mproc_context *ctx;
    if (mproc_get_context(mproc_start_method_name(a->method), &ctx)) return FT_EXIT_ERR;
    ft_family *f = pa->kind == S_SEM    ? &((semsh *)a->s)->fam
                   : pa->kind == S_COND ? &((condsh *)a->s)->fam
                                        : &((barsh *)a->s)->fam;
    mproc_target_fn fn = pa->kind == S_SEM    ? sem_target
                         : pa->kind == S_COND ? cond_target
                                              : bar_target;
    for (int k = 0; k < 3; k++) {
        sarg c = *a;
        c.id = (uint32_t)k + 1;
        c.h.index = k + 1;
        c.h.seed = tu_mix64(a->h.seed + (uint64_t)k);
        c.watch_parent = true;
        if (pa->kind == S_COND) c.role = k == 2 ? R_PROD : R_CONS, c.id = k == 2 ? 1 : c.id;
        /* The handle is dropped: the parent dies before joining. */
        if (ft_family_child(f, ctx, fn, &c, sizeof c, c.role, (int)c.id, k == 2, NULL))
            return FT_EXIT_ERR;
    }
    atomic_store(&f->ready, 1);
    int code = pa->kind == S_SEM    ? sem_body(a)
               : pa->kind == S_COND ? cond_producer(a)
                                    : bar_party(a);
    ft_linger(&a->h);
    return code;
}

/* ---- trials ------------------------------------------------------------------------------- */

static ft_part *start_family(ft_trial *t, void *s, int kind, int role, uint32_t id)
{
    parg pa = {.kind = kind};
    ft_hdr_init(t, &pa.self.h, 0);
    pa.self.s = s;
    pa.self.role = role;
    pa.self.id = id;
    pa.self.method = t->method;
    return ft_start(t, family_target, &pa, sizeof pa, R_PARENT, false);
}

static ft_part *start_one(ft_trial *t, mproc_target_fn fn, void *s, int role, uint32_t id,
                          int index)
{
    sarg a = {.s = s, .role = role, .id = id, .method = t->method};
    ft_hdr_init(t, &a.h, index);
    ft_part *p = ft_start(t, fn, &a, sizeof a, role, false);
    if (p) p->tag = index;
    return p;
}

/* Runs the fault on progress towards total; the victims are the
 * participants of the roles. Returns the number of kills. */
static int faults(ft_trial *t, _Atomic uint64_t *progress, uint64_t total, unsigned roles,
                  void (*on_kill)(ft_trial *, ft_part *, void *), void *ud)
{
    uint64_t th[3];
    int nth = ft_thresholds(t, total, th);
    return ft_faults(t, progress, th, nth, roles, on_kill, ud);
}

static void sem_run(ft_trial *t)
{
    semsh *s = ft_calloc(sizeof *s);
    s->k = (unsigned)ft_range(t, 2, 3);
    s->per = (uint32_t)ft_range(t, 100, 400);
    int rc = mproc_sem_init(&s->sem, s->k);
    if (rc) {
        ft_err(t, "mproc_sem_init", rc);
        return;
    }
    uint32_t nw = s->k + 2;
    if (t->sc->fault == FT_PARENT) {
        nw = 4;
        ft_part *fp = start_family(t, s, S_SEM, R_WORKER, 0);
        if (fp) {
            ft_wait_progress(t, &s->progress, ft_range(t, 1, (uint64_t)nw * s->per * 3 / 5));
            ft_jitter(t);
            ft_kill(t, fp);
            ft_join(t, fp, t->hang_ms);
            fp->tag = 0;
        }
        ft_adopt_family(t, &s->fam);
    } else {
        for (uint32_t w = 0; w < nw; w++) start_one(t, sem_target, s, R_WORKER, w, (int)w);
        faults(t, &s->progress, (uint64_t)nw * s->per, 1u << R_WORKER, NULL, NULL);
    }
    ft_join_all(t, t->hang_ms * 4);
    /* The units the dead took with them. */
    unsigned sure = 0, maybe = 0;
    for (int i = 0; i < t->nparts; i++) {
        ft_part *p = &t->parts[i];
        if (p->code != -SIGKILL) continue;
        uint32_t st = atomic_load(&s->state[p->tag]);
        if (st == ST_HOLD) sure++;
        if (st == ST_ACQ || st == ST_REL) maybe++;
    }
    unsigned v = 0;
    mproc_sem_get_value(&s->sem, &v);
    if (v + sure > s->k)
        ft_dup(t, v + sure - s->k, "the semaphore is at %u: k %u, %u units died with holders", v,
               s->k, sure);
    if (v + sure + maybe < s->k)
        ft_lost(t, s->k - v - sure - maybe, "the semaphore is at %u: k %u, %u (+%u) units died", v,
                s->k, sure, maybe);
    uint32_t over = atomic_load(&s->over);
    if (over) ft_dup(t, over, "more than %u holders at once, %u times", s->k, over);
    if (v == 0) { /* usable again: give one back first if none is left */
        mproc_sem_release(&s->sem);
    }
    if ((rc = mproc_sem_acquire(&s->sem, t->hang_ms)) != 0)
        ft_err(t, "acquire after the fault", rc);
    else if ((rc = mproc_sem_release(&s->sem)) != 0)
        ft_err(t, "release after the fault", rc);
    mproc_sem_fini(&s->sem);
    mproc_arena_free(s);
}

typedef struct cond_kill_ud {
    condsh *s;
    long may_lose;
    int next;
} cond_kill_ud;

static void cond_on_kill(ft_trial *t, ft_part *v, void *ud)
{
    cond_kill_ud *k = ud;
    if (v->role != R_CONS) return;
    k->may_lose += atomic_load(&k->s->taking[v->tag]);
    if (k->next < FT_MAXPARTS) { /* a replacement */
        start_one(t, cond_target, k->s, R_CONS, (uint32_t)k->next, k->next);
        k->next++;
    }
}

static void cond_run(ft_trial *t)
{
    condsh *s = ft_calloc(sizeof *s);
    uint32_t per = (uint32_t)ft_range(t, 300, 1500);
    s->lg = ft_ledger_new(2, per);
    int rc = mproc_lock_init(&s->lock);
    if (!rc) rc = mproc_cond_init(&s->notfull, &s->lock);
    if (!rc) rc = mproc_cond_init(&s->notempty, &s->lock);
    if (rc) {
        ft_err(t, "cond init", rc);
        return;
    }
    cond_kill_ud k = {.s = s, .next = 10};
    if (t->sc->fault == FT_PARENT) {
        ft_part *fp = start_family(t, s, S_COND, R_PROD, 0);
        if (fp) {
            ft_wait_progress(t, &s->lg->progress, ft_range(t, 1, per));
            ft_jitter(t);
            ft_kill(t, fp);
            ft_join(t, fp, t->hang_ms);
        }
        ft_adopt_family(t, &s->fam);
        ft_join_all(t, t->hang_ms * 4);
    } else {
        for (uint32_t p = 0; p < 2; p++) start_one(t, cond_target, s, R_PROD, p, (int)p);
        for (int c = 8; c < 10; c++) start_one(t, cond_target, s, R_CONS, (uint32_t)c, c);
        faults(t, &s->lg->progress, 2ULL * per, 1u << R_PROD | 1u << R_CONS, cond_on_kill, &k);
        ft_join_roles(t, 1u << R_PROD, t->hang_ms * 4);
        int rc2 = fix(s, mproc_lock_acquire(&s->lock, t->hang_ms));
        if (rc2) {
            ft_err(t, "acquire to end", rc2);
        } else {
            s->done = true;
            mproc_cond_notify_all(&s->notempty);
            mproc_lock_release(&s->lock);
        }
        ft_join_all(t, t->hang_ms * 4);
    }
    /* What is left in the ring, then one more put and get. */
    if (fix(s, mproc_lock_acquire(&s->lock, t->hang_ms)) == 0) {
        while (s->tail != s->head) {
            uint64_t w = s->ring[s->head % RING];
            s->head++;
            uint32_t prod, seq;
            if (ft_msg_check(&w, 8, &prod, &seq)) ft_ledger_got(s->lg, prod, seq);
        }
        s->ring[s->tail % RING] = 42;
        s->tail++;
        rc = mproc_cond_notify(&s->notempty, 1);
        if (!rc) rc = mproc_lock_release(&s->lock);
        if (rc) ft_err(t, "the condition after the fault", rc);
    } else {
        ft_hang(t, "the condition's lock is not usable after the fault");
    }
    ft_ledger_check(t, s->lg, t->sc->fault == FT_PARENT ? 0 : k.may_lose);
    mproc_cond_fini(&s->notempty);
    mproc_cond_fini(&s->notfull);
    mproc_lock_fini(&s->lock);
    ft_ledger_free(s->lg);
    mproc_arena_free(s);
}

static void bar_run(ft_trial *t)
{
    barsh *s = ft_calloc(sizeof *s);
    s->parties = t->sc->fault == FT_PARENT ? 4 : (unsigned)ft_range(t, 3, 4);
    s->rounds = (uint32_t)ft_range(t, 40, MAXROUNDS);
    int rc = mproc_barrier_init(&s->b, s->parties, bar_action, s);
    if (rc) {
        ft_err(t, "mproc_barrier_init", rc);
        return;
    }
    int nk = 0;
    if (t->sc->fault == FT_PARENT) {
        ft_part *fp = start_family(t, s, S_BARRIER, R_WORKER, 0);
        if (fp) {
            ft_wait_progress(t, &s->progress, ft_range(t, 1, (uint64_t)s->parties * s->rounds / 2));
            ft_jitter(t);
            ft_kill(t, fp);
            ft_join(t, fp, t->hang_ms);
            nk = 1;
        }
        ft_adopt_family(t, &s->fam);
    } else {
        for (uint32_t w = 0; w < s->parties; w++) start_one(t, bar_target, s, R_WORKER, w, (int)w);
        nk = faults(t, &s->progress, (uint64_t)s->parties * s->rounds, 1u << R_WORKER, NULL, NULL);
    }
    if (nk) { /* the observer breaks the barrier for the survivors, a moment later */
        ft_sleep_ms((long)ft_range(t, 0, 300));
        if ((rc = mproc_barrier_abort(&s->b)) != 0) ft_err(t, "mproc_barrier_abort", rc);
    }
    ft_join_all(t, t->hang_ms * 4);
    /* Each round: passed by every party with distinct indices, or by none
     * (but a party killed in a round may have arrived and not recorded). */
    unsigned dead_in[MAXROUNDS + 1] = {0};
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].code == -SIGKILL) {
            uint32_t r = atomic_load(&s->passed[t->parts[i].tag]);
            if (r <= MAXROUNDS) dead_in[r]++;
        }
    long partial = 0, dup = 0;
    uint32_t full = 0;
    for (uint32_t r = 0; r < s->rounds && r < MAXROUNDS; r++) {
        unsigned got = 0;
        for (unsigned i = 0; i < s->parties; i++) {
            unsigned c = atomic_load(&s->taken[r][i]);
            if (c > 1) dup += c - 1;
            got += c > 0;
        }
        if (got + dead_in[r] >= s->parties && got) full++;
        if (got && got + dead_in[r] < s->parties) {
            if (!partial) {
                ft_note(t, "round %u passed by %u of %u parties (taken %u %u %u %u)", r, got,
                        s->parties, atomic_load(&s->taken[r][0]), atomic_load(&s->taken[r][1]),
                        atomic_load(&s->taken[r][2]), atomic_load(&s->taken[r][3]));
                for (int i = 0; i < t->nparts; i++)
                    ft_note(t, "  party tag %d pid %d code %d passed %u", t->parts[i].tag,
                            t->parts[i].pid, t->parts[i].code,
                            atomic_load(&s->passed[t->parts[i].tag]));
            }
            partial++;
        }
    }
    uint32_t runs = atomic_load(&s->action_runs);
    if (dup) ft_dup(t, dup, "%ld barrier indices given twice in a round", dup);
    if (partial) ft_lost(t, partial, "%ld rounds passed by only some parties", partial);
    if (runs < full || runs > full + (uint32_t)nk)
        ft_lost(t, 1, "the action ran %u times for %u full rounds", runs, full);
    /* Usable again: reset, and a round of new parties. */
    if ((rc = mproc_barrier_reset(&s->b)) != 0) ft_err(t, "mproc_barrier_reset", rc);
    for (uint32_t w = 0; w < s->parties; w++) atomic_store(&s->passed[w + 8], s->rounds - 1);
    int first = t->nparts;
    for (uint32_t w = 0; w < s->parties; w++)
        start_one(t, bar_target, s, R_WORKER, w + 8, 20 + (int)w);
    for (int i = first; i < t->nparts; i++)
        if (ft_join(t, &t->parts[i], t->hang_ms * 3) != 0)
            ft_lost(t, 1, "a party of the round after the fault ended with %d", t->parts[i].code);
    mproc_barrier_fini(&s->b);
    mproc_arena_free(s);
}

static void y_run(ft_trial *t)
{
    const int *kind = t->sc->param;
    t->max_block = 256; /* a condition's waiter node */
    if (*kind == S_SEM) sem_run(t);
    if (*kind == S_COND) cond_run(t);
    if (*kind == S_BARRIER) bar_run(t);
}

static const int k_sem = S_SEM, k_cond = S_COND, k_bar = S_BARRIER;

const ft_scenario ft_sync_scenarios[] = {{"sem-holders-kill", y_run, FT_KILL, &k_sem},
                                         {"sem-holders-stop", y_run, FT_STOP, &k_sem},
                                         {"sem-holders-parent", y_run, FT_PARENT, &k_sem},
                                         {"cond-buffer-kill", y_run, FT_KILL, &k_cond},
                                         {"cond-buffer-stop", y_run, FT_STOP, &k_cond},
                                         {"cond-buffer-parent", y_run, FT_PARENT, &k_cond},
                                         {"barrier-rounds-kill", y_run, FT_KILL, &k_bar},
                                         {"barrier-rounds-stop", y_run, FT_STOP, &k_bar},
                                         {"barrier-rounds-parent", y_run, FT_PARENT, &k_bar},
                                         {0}};
