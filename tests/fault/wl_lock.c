/* Lock contention with a journal: each holder reads a shared counter,
 * appends a checksummed entry {worker, seq, counter} to the journal at
 * that index and bumps the counter, inside the lock; after the release
 * returns, the increment is acknowledged. A lost or doubled increment, two
 * holders at once, a torn entry or an owner death not reported
 * (MPROC_EOWNERDEAD) shows in the journal. The lock is a Lock or (taken
 * twice) an RLock, at random. */
#include "fault.h"

#include <signal.h>
#include <string.h>

enum { R_WORKER, R_PARENT };

typedef struct jentry {
    uint32_t worker, seq;
    uint64_t value, check;
} jentry;

typedef struct lshared {
    mproc_lock lock;
    bool recursive;
    uint64_t counter; /* under the lock */
    uint32_t cap, per;
    _Atomic uint32_t holders;             /* inside the lock now */
    _Atomic uint32_t overlaps;            /* times two were inside */
    _Atomic uint32_t repairs;             /* MPROC_EOWNERDEAD seen */
    _Atomic uint32_t inside[FT_MAXPARTS]; /* 1 from acquire to release, per worker */
    _Atomic uint32_t acked[FT_MAXPARTS];  /* increments whose release returned */
    _Atomic uint64_t progress;
    ft_family fam;
    jentry journal[];
} lshared;

typedef struct larg {
    ft_hdr h;
    lshared *s;
    uint32_t worker;
    bool family; /* a child of the family parent */
    mproc_start_method method;
} larg;

static uint64_t entry_check(uint32_t w, uint32_t seq, uint64_t v)
{
    return tu_mix64(((uint64_t)w << 40) ^ ((uint64_t)seq << 8) ^ v * 0x9E3779B97F4A7C15ULL);
}

/* After MPROC_EOWNERDEAD: the dead holder may have bumped `holders` and
 * written a partial entry past the counter (which the next writer
 * overwrites). */
static void repair(lshared *s)
{
    atomic_store(&s->holders, 0);
    if (s->counter < s->cap) memset(&s->journal[s->counter], 0, sizeof(jentry));
    atomic_fetch_add(&s->repairs, 1);
}

/* Takes the lock (twice for an RLock): 0, or a child exit code. */
static int take(lshared *s, const ft_hdr *h)
{
    for (int depth = 0; depth < (s->recursive ? 2 : 1); depth++) {
        int rc = mproc_lock_acquire(&s->lock, h->hang_ms);
        if (rc == MPROC_EOWNERDEAD) {
            repair(s);
            rc = mproc_lock_make_consistent(&s->lock);
        }
        if (rc == MPROC_ETIMEDOUT) {
            ft_child_note(h, "HANG: acquire waited %d ms", h->hang_ms);
            return FT_EXIT_HANG;
        }
        if (rc) {
            ft_child_note(h, "acquire -> %s", mproc_err_name(rc));
            return FT_EXIT_ERR;
        }
    }
    return 0;
}

static int give(lshared *s, const ft_hdr *h)
{
    for (int depth = 0; depth < (s->recursive ? 2 : 1); depth++) {
        int rc = mproc_lock_release(&s->lock);
        if (rc) {
            ft_child_note(h, "release -> %s", mproc_err_name(rc));
            return FT_EXIT_ERR;
        }
    }
    return 0;
}

static int work(lshared *s, const ft_hdr *h, uint32_t w, uint32_t per)
{
    uint64_t r = h->seed;
    for (uint32_t seq = 0; seq < per; seq++) {
        int code = take(s, h);
        if (code) return code;
        atomic_store(&s->inside[w], 1);
        if (atomic_fetch_add(&s->holders, 1) != 0) atomic_fetch_add(&s->overlaps, 1);
        uint64_t c = s->counter;
        if (c < s->cap) {
            jentry e = {w, seq, c, entry_check(w, seq, c)};
            memcpy(&s->journal[c], &e, sizeof e);
        }
        r = tu_mix64(r + seq); /* 0..20 us inside, so that faults land there too */
        long long t0 = mproc_now_ns(), ns = (long long)(r % 20000);
        while (mproc_now_ns() - t0 < ns) {
        }
        s->counter = c + 1;
        atomic_fetch_sub(&s->holders, 1);
        atomic_store(&s->inside[w], 0);
        if ((code = give(s, h)) != 0) return code;
        atomic_store(&s->acked[w], seq + 1);
        atomic_fetch_add(&s->progress, 1);
    }
    return 0;
}

static int worker_target(void *arg)
{
    larg *a = arg;
    if (!ft_gate(a->family ? &a->s->fam.ready : NULL, &a->h)) return FT_EXIT_PEER;
    return work(a->s, &a->h, a->worker, a->s->per);
}

/* The family parent: worker 0, with workers 1..3 as children (the last a
 * daemon). */
static int family_target(void *arg)
{
    larg *a = arg;
    lshared *s = a->s;
    const mproc_context *ctx;
    if (mproc_get_context(mproc_start_method_name(a->method), &ctx)) return FT_EXIT_ERR;
    mproc_process *kids[3];
    for (int k = 0; k < 3; k++) {
        larg c = *a;
        c.worker = (uint32_t)k + 1;
        c.h.index = k + 1;
        c.h.seed = tu_mix64(a->h.seed + (uint64_t)k);
        c.family = true;
        if (ft_family_child(&s->fam, ctx, worker_target, &c, sizeof c, R_WORKER, k + 1, k == 2,
                            &kids[k]))
            return FT_EXIT_ERR;
    }
    atomic_store(&s->fam.ready, 1);
    int code = work(s, &a->h, 0, s->per);
    ft_linger(&a->h);
    for (int k = 0; k < 3; k++) mproc_process_join(kids[k], a->h.hang_ms * 4);
    for (int k = 0; k < 3; k++) mproc_process_free(kids[k]);
    return code;
}

/* The journal proves every acknowledged increment happened once. */
static void check_journal(ft_trial *t, lshared *s, uint32_t nworkers, const bool *killed)
{
    uint64_t n = s->counter;
    if (n > s->cap) {
        ft_lost(t, 1, "the counter is %llu, past the journal", (unsigned long long)n);
        n = s->cap;
    }
    static uint8_t seen[FT_MAXPARTS][4096];
    memset(seen, 0, sizeof seen);
    long bad = 0, dup = 0, lost = 0;
    for (uint64_t i = 0; i < n; i++) {
        jentry e = s->journal[i];
        if (e.worker >= nworkers || e.seq >= s->per || e.value != i ||
            e.check != entry_check(e.worker, e.seq, e.value)) {
            if (bad++ < 3)
                ft_note(t, "journal entry %llu is torn or foreign", (unsigned long long)i);
            continue;
        }
        if (seen[e.worker][e.seq]++) dup++;
        uint32_t acked = atomic_load(&s->acked[e.worker]);
        if (e.seq > acked || (e.seq == acked && !killed[e.worker])) {
            ft_note(t, "journal entry %llu: %u.%u was never acknowledged (acked %u)",
                    (unsigned long long)i, e.worker, e.seq, acked);
            dup++;
        }
    }
    for (uint32_t w = 0; w < nworkers; w++)
        for (uint32_t q = 0; q < atomic_load(&s->acked[w]); q++)
            if (!seen[w][q]) {
                if (lost++ < 3)
                    ft_note(t, "increment %u.%u acknowledged, not in the journal", w, q);
            }
    if (bad) ft_lost(t, bad, "%ld journal entries torn", bad);
    if (lost) ft_lost(t, lost, "%ld acknowledged increments lost", lost);
    if (dup) ft_dup(t, dup, "%ld increments doubled or never acknowledged", dup);
    uint32_t ov = atomic_load(&s->overlaps);
    if (ov) ft_dup(t, ov, "two holders inside the lock at once, %u times", ov);
}

static void usable_again(ft_trial *t, lshared *s, uint32_t w)
{
    ft_hdr h;
    ft_hdr_init(t, &h, 0);
    int code = work(s, &h, w, 1);
    if (code == FT_EXIT_HANG)
        ft_hang(t, "an acquire after the fault waited %d ms", t->hang_ms);
    else if (code)
        ft_lost(t, 1, "the lock is not usable after the fault");
}

/* The workers killed (by worker index) and how many were inside the lock
 * then. */
typedef struct kills {
    lshared *s;
    bool killed[FT_MAXPARTS];
    uint32_t inside_at_kill;
} kills;

static void note_kill(kills *k, int worker)
{
    k->killed[worker] = true;
    k->inside_at_kill += atomic_load(&k->s->inside[worker]);
}

static void on_kill(ft_trial *t, ft_part *v, void *ud)
{
    (void)t;
    note_kill(ud, v->tag);
}

static void l_run(ft_trial *t)
{
    uint32_t nw = 4, per = (uint32_t)ft_range(t, 200, 800);
    lshared *s = ft_calloc(sizeof *s + (size_t)(nw + 1) * per * sizeof(jentry) + sizeof(jentry));
    s->cap = (nw + 1) * per + 1;
    s->per = per;
    s->recursive = ft_range(t, 0, 1);
    int rc = s->recursive ? mproc_rlock_init(&s->lock) : mproc_lock_init(&s->lock);
    if (rc) {
        ft_err(t, "mproc_lock_init", rc);
        mproc_arena_free(s);
        return;
    }
    t->max_block = 0;
    kills dead = {.s = s};
    uint64_t th[3];
    int nth = ft_thresholds(t, (uint64_t)nw * per, th);
    larg a = {.s = s, .method = t->method};

    if (t->sc->fault == FT_PARENT) {
        ft_hdr_init(t, &a.h, 0);
        ft_part *fp = ft_start(t, family_target, &a, sizeof a, R_PARENT, false);
        if (fp) {
            ft_wait_progress(t, &s->progress, th[0]);
            ft_jitter(t);
            ft_kill(t, fp);
            ft_join(t, fp, t->hang_ms);
            note_kill(&dead, 0);
        }
        ft_adopt_family(t, &s->fam);
        ft_join_all(t, t->hang_ms * 4);
        for (int i = 0; i < t->nparts; i++)
            if (t->parts[i].role == R_WORKER && t->parts[i].code == -SIGKILL)
                note_kill(&dead, t->parts[i].tag);
    } else {
        for (uint32_t w = 0; w < nw; w++) {
            larg c = a;
            c.worker = w;
            ft_hdr_init(t, &c.h, (int)w);
            ft_part *p = ft_start(t, worker_target, &c, sizeof c, R_WORKER, false);
            if (p) p->tag = (int)w;
        }
        ft_faults(t, &s->progress, th, nth, 1u << R_WORKER, on_kill, &dead);
        ft_join_all(t, t->hang_ms * 4);
    }
    usable_again(t, s, nw);
    check_journal(t, s, nw + 1, dead.killed);
    uint32_t repairs = atomic_load(&s->repairs), nk = 0;
    for (uint32_t w = 0; w < nw; w++) nk += dead.killed[w];
    if (repairs > nk) ft_dup(t, repairs - nk, "%u MPROC_EOWNERDEAD after %u deaths", repairs, nk);
    if (repairs < dead.inside_at_kill)
        ft_lost(t, dead.inside_at_kill - repairs,
                "%u holders died inside the lock, %u MPROC_EOWNERDEAD seen", dead.inside_at_kill,
                repairs);
    mproc_lock_fini(&s->lock);
    mproc_arena_free(s);
}

const ft_scenario ft_lock_scenarios[] = {{"lock-journal-kill", l_run, FT_KILL, NULL},
                                         {"lock-journal-stop", l_run, FT_STOP, NULL},
                                         {"lock-journal-parent", l_run, FT_PARENT, NULL},
                                         {0}};
