/* Pool and process-executor workloads: a map (arrays in the arena, worked
 * on in place, or in the heap, staged), apply_async tasks, and executor
 * submits. Every item or task counts its runs in shared memory and
 * produces a checkable result.
 *
 * Faults: a worker killed (the task it held may fail with
 * MPROC_EWORKERDIED naming that worker; nothing else may fail, nothing may
 * run twice), workers stopped and continued (everything succeeds), or the
 * pool's owner killed (its workers, daemons, must die).
 *
 * The executor's tasks are waited for through as_completed before they are
 * checked: the process-wide completion signal (pool/future.h), woken by
 * completions, failures included, made while workers die. */
#include "fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { K_MAP, K_APPLY, K_EXEC };
enum { R_OWNER = 0 };

typedef struct pshared {
    _Atomic uint64_t progress;
    _Atomic pid_t workers[32]; /* pids seen running tasks, or listed by the owner */
    uint32_t n;
    _Atomic uint32_t exec[]; /* runs of each item or task */
} pshared;

typedef struct item_in {
    uint32_t idx, spin_us;
    pshared *s;
} item_in;

typedef struct item_out {
    uint32_t idx, inv;
    uint64_t check;
} item_out;

#define RESULT_LEN  48
#define RESULT_PROD 3

static void note_worker(pshared *s, pid_t pid)
{
    for (int i = 0; i < 32; i++) {
        pid_t cur = atomic_load(&s->workers[i]);
        if (cur == pid) return;
        if (cur == 0 && atomic_compare_exchange_strong(&s->workers[i], &cur, pid)) return;
        if (cur == pid) return;
    }
}

static void spin_us(uint32_t us)
{
    long long t0 = mproc_now_ns();
    while (mproc_now_ns() - t0 < (long long)us * 1000) {
    }
}

static item_out expected(uint32_t idx)
{
    return (item_out){idx, ~idx, tu_mix64(idx ^ 0xfa17ULL)};
}

static int map_fn(const void *in, void *out)
{
    item_in i;
    memcpy(&i, in, sizeof i);
    note_worker(i.s, getpid());
    atomic_fetch_add(&i.s->exec[i.idx], 1);
    spin_us(i.spin_us);
    item_out o = expected(i.idx);
    memcpy(out, &o, sizeof o);
    atomic_fetch_add(&i.s->progress, 1);
    return 0;
}

static int task_fn(const void *arg, size_t len, mproc_result *res)
{
    item_in i;
    if (len != sizeof i) return mproc_task_fail("argument of %zu bytes", len);
    memcpy(&i, arg, sizeof i);
    note_worker(i.s, getpid());
    atomic_fetch_add(&i.s->exec[i.idx], 1);
    spin_us(i.spin_us);
    unsigned char buf[RESULT_LEN];
    ft_msg_fill(buf, sizeof buf, RESULT_PROD, i.idx);
    int rc = mproc_result_set(res, buf, sizeof buf);
    atomic_fetch_add(&i.s->progress, 1);
    return rc;
}

/* The work of one trial, in the process that owns the pool. */
typedef struct work {
    int kind;
    uint32_t n, chunk, spin;
    bool arena_arrays;
    int workers;
    mproc_start_method method;
    pshared *s;
    ft_hdr h;
    /* the owner's */
    mproc_pool *pool;
    mproc_executor *ex;
    item_in *in;
    item_out *out;
    mproc_future *map_fut;
    mproc_future **futs;
} work;

/* Starts the pool or executor and submits everything. */
static int work_start(work *w)
{
    const mproc_context *ctx;
    int rc = mproc_get_context(mproc_start_method_name(w->method), &ctx);
    if (rc) return rc;
    if (w->kind == K_EXEC)
        rc = mproc_executor_new_process(
            &w->ex, &(mproc_executor_opts){.max_workers = w->workers, .context = ctx});
    else
        rc = mproc_pool_new(&w->pool, &(mproc_pool_opts){.processes = w->workers, .context = ctx});
    if (rc) return rc;
    if (w->pool) {
        pid_t pids[16];
        size_t n = mproc_pool_workers(w->pool, pids, 16);
        for (size_t i = 0; i < n && i < 16; i++) note_worker(w->s, pids[i]);
    }
    if (w->kind == K_MAP) {
        size_t isz = (size_t)w->n * sizeof(item_in), osz = (size_t)w->n * sizeof(item_out);
        if (w->arena_arrays) {
            w->in = ft_calloc(isz);
            w->out = ft_calloc(osz);
        } else {
            w->in = calloc(1, isz);
            w->out = calloc(1, osz);
        }
        for (uint32_t i = 0; i < w->n; i++) w->in[i] = (item_in){i, w->spin, w->s};
        return mproc_pool_map_async(w->pool, map_fn, w->in, w->n, sizeof(item_in), w->out,
                                    sizeof(item_out), &(mproc_map_opts){.chunksize = w->chunk},
                                    &w->map_fut);
    }
    w->futs = calloc(w->n, sizeof *w->futs);
    for (uint32_t i = 0; i < w->n; i++) {
        item_in a = {i, w->spin, w->s};
        rc = w->kind == K_EXEC
                 ? mproc_executor_submit(w->ex, task_fn, &a, sizeof a, &w->futs[i])
                 : mproc_pool_apply_async(w->pool, task_fn, &a, sizeof a, NULL, &w->futs[i]);
        if (rc) return rc;
    }
    return 0;
}

static void work_free(work *w)
{
    mproc_future_free(w->map_fut);
    for (uint32_t i = 0; w->futs && i < w->n; i++) mproc_future_free(w->futs[i]);
    free(w->futs);
    if (w->arena_arrays) {
        mproc_arena_free(w->in);
        mproc_arena_free(w->out);
    } else {
        free(w->in);
        free(w->out);
    }
}

/* The pool's owner when the fault is its death: starts the work and waits. */
static int owner_target(void *arg)
{
    work *w = arg;
    int rc = work_start(w);
    if (rc) {
        ft_child_note(&w->h, "starting the work -> %s", mproc_err_name(rc));
        return FT_EXIT_ERR;
    }
    if (w->map_fut) mproc_future_wait(w->map_fut, w->h.hang_ms * 4);
    for (uint32_t i = 0; w->futs && i < w->n; i++) mproc_future_wait(w->futs[i], w->h.hang_ms);
    ft_linger(&w->h); /* with the pool open */
    mproc_pool_free(w->pool);
    mproc_executor_free(w->ex);
    work_free(w);
    return FT_EXIT_OK;
}

static bool was_killed(const pid_t *killed, int nk, pid_t pid)
{
    for (int i = 0; i < nk; i++)
        if (killed[i] == pid) return true;
    return false;
}

/* Checks one failed future: only a killed worker's task may fail, with
 * MPROC_EWORKERDIED naming that worker. */
static bool allowed_failure(ft_trial *t, mproc_future *f, int rc, const pid_t *killed, int nk)
{
    int code = 0;
    const char *msg = "";
    pid_t pid = 0;
    mproc_future_error(f, &code, &msg, &pid);
    if (rc == MPROC_EWORKERDIED && was_killed(killed, nk, pid)) return true;
    ft_lost(t, 1, "a task failed with %s (worker %d%s): %s", mproc_err_name(rc), (int)pid,
            was_killed(killed, nk, pid) ? ", killed" : ", not killed", msg ? msg : "");
    return false;
}

static void check_map(ft_trial *t, work *w, const pid_t *killed, int nk)
{
    int rc = mproc_future_result(w->map_fut, NULL, NULL, t->hang_ms * 4);
    if (rc == MPROC_ETIMEDOUT) {
        ft_hang(t, "the map did not end in %d ms (%llu of %u items done)", t->hang_ms * 4,
                (unsigned long long)atomic_load(&w->s->progress), w->n);
        return;
    }
    long wrong = 0, dup = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        item_out e = expected(i);
        uint32_t runs = atomic_load(&w->s->exec[i]);
        if (runs > 1) dup += runs - 1;
        if (memcmp(&e, &w->out[i], sizeof e) != 0) wrong++;
    }
    if (dup) ft_dup(t, dup, "%ld map items ran more than once", dup);
    if (rc == 0) {
        if (wrong) ft_lost(t, wrong, "the map succeeded with %ld wrong outputs", wrong);
        return;
    }
    if (!allowed_failure(t, w->map_fut, rc, killed, nk)) return;
    /* Only the chunks the killed workers held may lack outputs. */
    if (wrong > (long)w->chunk * nk)
        ft_lost(t, wrong - (long)w->chunk * nk,
                "%ld map outputs missing after %d kills of chunks of %u", wrong, nk, w->chunk);
}

/* Every future yielded once by as_completed, all of them within hang_ms
 * (the tasks take a fraction of it: a completion whose wake-up was lost
 * would leave the iterator asleep until its timeout); false (a hang
 * noted) otherwise. */
static bool drain_as_completed(ft_trial *t, work *w)
{
    mproc_as_completed *it;
    int rc = mproc_as_completed_new(&it, w->futs, w->n);
    if (rc) {
        ft_err(t, "mproc_as_completed_new", rc);
        return true; /* the futures are still checked one by one */
    }
    uint32_t got = 0;
    mproc_future *f;
    long long end = mproc_now_ns() + (long long)t->hang_ms * 1000000;
    for (;;) {
        long long left_ms = (end - mproc_now_ns()) / 1000000;
        rc = left_ms > 0 ? mproc_as_completed_next(it, &f, (int)left_ms) : MPROC_ETIMEDOUT;
        if (rc) break;
        got++;
    }
    mproc_as_completed_free(it);
    if (rc == MPROC_ETIMEDOUT) {
        ft_hang(t, "as_completed yielded %u of %u tasks in %d ms", got, w->n, t->hang_ms);
        return false;
    }
    if (rc != MPROC_EEOF || got != w->n)
        ft_lost(t, 1, "as_completed yielded %u of %u tasks (%s)", got, w->n, mproc_err_name(rc));
    return true;
}

static void check_tasks(ft_trial *t, work *w, const pid_t *killed, int nk)
{
    long failed = 0, dup = 0;
    if (w->kind == K_EXEC && !drain_as_completed(t, w)) return;
    for (uint32_t i = 0; i < w->n; i++) {
        const void *buf;
        size_t len;
        int rc = mproc_future_result(w->futs[i], &buf, &len, t->hang_ms);
        uint32_t runs = atomic_load(&w->s->exec[i]);
        if (runs > 1) dup += runs - 1;
        if (rc == MPROC_ETIMEDOUT) {
            ft_hang(t, "task %u did not end in %d ms", i, t->hang_ms);
            return;
        }
        uint32_t prod, seq;
        if (rc == 0) {
            if (!ft_msg_check(buf, len, &prod, &seq) || prod != RESULT_PROD || seq != i)
                ft_lost(t, 1, "task %u's result is wrong or partial (%zu bytes)", i, len);
            else if (runs != 1)
                ft_lost(t, 1, "task %u succeeded but ran %u times", i, runs);
        } else if (allowed_failure(t, w->futs[i], rc, killed, nk)) {
            failed++;
        }
    }
    if (dup) ft_dup(t, dup, "%ld tasks ran more than once", dup);
    if (failed > nk) ft_lost(t, failed - nk, "%ld tasks failed after %d kills", failed, nk);
}

/* One more small map (or task) after the fault. */
static void usable_again(ft_trial *t, work *w)
{
    enum { N = 16 };
    item_in in[N];
    item_out out[N];
    for (uint32_t i = 0; i < N; i++) in[i] = (item_in){i, 0, w->s};
    for (uint32_t i = 0; i < N; i++) atomic_store(&w->s->exec[i], 0);
    int rc;
    if (w->ex) {
        rc = mproc_executor_map(w->ex, map_fn, in, N, sizeof *in, out, sizeof *out, t->hang_ms);
    } else {
        mproc_future *f;
        rc = mproc_pool_map_async(w->pool, map_fn, in, N, sizeof *in, out, sizeof *out, NULL, &f);
        if (!rc) {
            rc = mproc_future_result(f, NULL, NULL, t->hang_ms);
            mproc_future_free(f);
        }
    }
    if (rc == MPROC_ETIMEDOUT) {
        ft_hang(t, "a map after the fault did not end in %d ms", t->hang_ms);
        return;
    }
    if (rc) {
        ft_err(t, "a map after the fault", rc);
        return;
    }
    for (uint32_t i = 0; i < N; i++) {
        item_out e = expected(i);
        if (memcmp(&e, &out[i], sizeof e) != 0) {
            ft_lost(t, 1, "a map after the fault gave a wrong output");
            return;
        }
    }
}

/* A random live worker (by the pool's list, or the pids seen running tasks). */
static pid_t pick_worker(ft_trial *t, work *w)
{
    pid_t cand[32];
    int n = 0;
    if (w->pool) {
        pid_t pids[16];
        size_t k = mproc_pool_workers(w->pool, pids, 16);
        for (size_t i = 0; i < k && i < 16; i++) cand[n++] = pids[i];
    } else {
        for (int i = 0; i < 32; i++) {
            pid_t p = atomic_load(&w->s->workers[i]);
            if (p && kill(p, 0) == 0 && ft_threads(p) > 0) cand[n++] = p;
        }
    }
    for (int i = 0; i < n; i++) ft_own(t, cand[i]);
    return n ? cand[ft_range(t, 0, (uint64_t)n - 1)] : 0;
}

static void p_run(ft_trial *t)
{
    const int *kind = t->sc->param;
    work w = {.kind = *kind, .method = t->method, .workers = (int)ft_range(t, 2, 3)};
    if (w.kind == K_MAP) {
        w.n = (uint32_t)ft_range(t, 300, 1200);
        w.chunk = (uint32_t)ft_range(t, 4, 32);
        w.spin = (uint32_t)ft_range(t, 20, 150);
        w.arena_arrays = ft_range(t, 0, 1);
    } else {
        w.n = (uint32_t)ft_range(t, 40, 150);
        w.spin = (uint32_t)ft_range(t, 200, 1500);
    }
    w.s = ft_calloc(sizeof *w.s + (w.n > 16 ? w.n : 16) * sizeof(uint32_t));
    w.s->n = w.n;
    t->max_block = (64 << 10) + 4096; /* a worker's inbox chunk and a message */
    ft_hdr_init(t, &w.h, 0);
    uint64_t th[3];
    int nth = ft_thresholds(t, w.n, th);

    if (t->sc->fault == FT_PARENT) {
        ft_part *owner = ft_start(t, owner_target, &w, sizeof w, R_OWNER, false);
        if (owner) {
            ft_wait_progress(t, &w.s->progress, th[0]);
            ft_jitter(t);
            ft_kill(t, owner);
            ft_join(t, owner, t->hang_ms);
        }
        /* The workers (daemons) are ours now and must die at once. */
        for (int i = 0; i < 32; i++) {
            pid_t p = atomic_load(&w.s->workers[i]);
            if (p) ft_adopt(t, p, 1, true);
        }
        ft_join_all(t, t->hang_ms);
        for (int i = 0; i < t->nparts; i++) {
            ft_part *p = &t->parts[i];
            if (p->daemon && p->code != -SIGKILL && p->code != FT_CODE_REAPED)
                ft_lost(t, 1, "the worker %d of the dead owner ended with %d", p->pid, p->code);
        }
        mproc_arena_free(w.s);
        return;
    }

    int rc = work_start(&w);
    if (rc) {
        ft_err(t, "starting the work", rc);
    } else {
        pid_t killed[8];
        int nk = 0;
        for (int i = 0; i < nth; i++) {
            if (!ft_wait_progress(t, &w.s->progress, th[i])) break;
            ft_jitter(t);
            pid_t v = pick_worker(t, &w);
            if (!v) break;
            if (t->sc->fault == FT_STOP) {
                ft_stop_pid(t, v, 30);
            } else {
                ft_kill_pid(t, v);
                killed[nk++] = v;
            }
        }
        if (w.kind == K_MAP)
            check_map(t, &w, killed, nk);
        else
            check_tasks(t, &w, killed, nk);
        usable_again(t, &w);
        pick_worker(t, &w); /* the replacements are the pool's to reap too */
    }
    if (w.pool) {
        if ((rc = mproc_pool_close(w.pool)) != 0) ft_err(t, "mproc_pool_close", rc);
        rc = mproc_pool_join(w.pool, t->hang_ms);
        if (rc == MPROC_ETIMEDOUT)
            ft_hang(t, "mproc_pool_join did not end in %d ms", t->hang_ms);
        else if (rc)
            ft_err(t, "mproc_pool_join", rc);
        mproc_pool_free(w.pool);
    }
    if (w.ex) {
        rc = mproc_executor_shutdown(w.ex, true, false);
        if (rc) ft_err(t, "mproc_executor_shutdown", rc);
        mproc_executor_free(w.ex);
    }
    work_free(&w);
    mproc_arena_free(w.s);
}

static const int k_map = K_MAP, k_apply = K_APPLY, k_exec = K_EXEC;

const ft_scenario ft_pool_scenarios[] = {{"pool-map-kill", p_run, FT_KILL, &k_map},
                                         {"pool-map-stop", p_run, FT_STOP, &k_map},
                                         {"pool-map-parent", p_run, FT_PARENT, &k_map},
                                         {"pool-apply-kill", p_run, FT_KILL, &k_apply},
                                         {"pool-apply-stop", p_run, FT_STOP, &k_apply},
                                         {"pool-apply-parent", p_run, FT_PARENT, &k_apply},
                                         {"executor-submit-kill", p_run, FT_KILL, &k_exec},
                                         {"executor-submit-stop", p_run, FT_STOP, &k_exec},
                                         {"executor-submit-parent", p_run, FT_PARENT, &k_exec},
                                         {0}};
