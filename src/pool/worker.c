/* The worker side of a pool (see pool/pool.h): runs the initializer,
 * then the tasks of its inbox one by one, and puts each result on the
 * pool's result queue. A crash inside a task leaves a backtrace in the
 * worker's slot for the parent's error message. */
#include "pool/future.h"
#include "pool/pool.h"
#include "mproc/arena.h"

#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pool_slot *crash_slot;

/* Async-signal-safe enough: backtrace() is loaded before the first task;
 * the symbols go through a pipe into the slot. */
static void on_crash(int sig)
{
    char *out = crash_slot->crash;
    static const char head[] = "native backtrace:\n";
    size_t n = sizeof head - 1;
    memcpy(out, head, n);
    void *frames[48];
    int k = backtrace(frames, 48);
    int p[2];
    if (k > 0 && pipe(p) == 0) {
        backtrace_symbols_fd(frames, k, p[1]);
        close(p[1]);
        ssize_t r;
        while (n < POOL_CRASH_BYTES - 1 && (r = read(p[0], out + n, POOL_CRASH_BYTES - 1 - n)) > 0)
            n += (size_t)r;
        close(p[0]);
    }
    out[n] = '\0';
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_crashes(pool_slot *slot)
{
    crash_slot = slot;
    slot->crash[0] = '\0';
    void *warm[2];
    backtrace(warm, 2); /* loads what backtrace needs, outside a handler */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

/* Puts one message on the result queue; a failure here (the queue gone)
 * ends the worker. */
static void post(pool_shared *sh, uint32_t type, const pool_worker_arg *a, uint64_t id, int rc,
                 const char *msg, const void *res, size_t len)
{
    size_t ml = msg ? strlen(msg) : 0;
    if (ml > 4096) ml = 4096;
    size_t total = sizeof(pool_result_msg) + ml + len;
    char *buf = malloc(total);
    if (!buf) _exit(70);
    pool_result_msg h = {type, (int32_t)a->idx, a->gen, rc, id, (int32_t)getpid(), (uint32_t)ml};
    memcpy(buf, &h, sizeof h);
    if (ml) memcpy(buf + sizeof h, msg, ml);
    if (len) memcpy(buf + sizeof h + ml, res, len);
    if (mproc_queue_put(sh->results, buf, total, MPROC_FOREVER) != 0) _exit(71);
    free(buf);
}

static int fail(char **msg, const char *why)
{
    *msg = strdup(why);
    return MPROC_ETASK;
}

/* Blocks of items last about this long: the parent can split the rest
 * off at that grain, and a block's claim costs nothing next to it. */
#define BLOCK_NS 20000

/* An in-place chunk whose items are claimed block by block from the slot's
 * run word (see RUN_PACK), so that the parent can split the rest off for
 * an idle worker. The result: how many items this worker ran. */
static int run_splittable(void *fn, const pool_task_msg *t, const pool_worker_arg *a,
                          mproc_result *res, char **msg)
{
    const char *in = (const char *)(uintptr_t)t->in_ptr;
    char *out = (char *)(uintptr_t)t->out_ptr;
    pool_slot *slot = &a->sh->slots[a->idx];
    atomic_store(&slot->run, RUN_PACK(t->claim, 0, t->count));
    if (atomic_load(&a->sh->idle)) post(a->sh, MSG_STARTED, a, t->id, 0, NULL, NULL, 0);
    uint64_t block = 1, limit;
    for (;;) {
        uint64_t w = atomic_load(&slot->run);
        uint64_t next = RUN_NEXT(w);
        limit = RUN_LIMIT(w);
        if (next >= limit) break;
        uint64_t take = limit - next < block ? limit - next : block;
        if (!atomic_compare_exchange_weak(&slot->run, &w, RUN_PACK(t->claim, next + take, limit)))
            continue; /* split meanwhile */
        long long t0 = mproc_now_ns();
        int rc = mproc__task_run_map(fn, t->call, in + next * t->in_size, out + next * t->out_size,
                                     take, t->in_size, t->out_size, msg);
        if (rc) return rc;
        long long ns = mproc_now_ns() - t0;
        if (ns < BLOCK_NS / 2 && block < RUN_MAX)
            block *= 2;
        else if (ns > 2 * BLOCK_NS && block > 1)
            block /= 2;
    }
    return mproc_result_set(res, &limit, sizeof limit);
}

/* res owns `out` (res->buf): gcc 12 at -O2 merges the tests of
 * `bytes != 0 && !out` and its analyzer then sees a leak. */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static int run_map(const pool_task_msg *t, const pool_worker_arg *a, const void *payload,
                   size_t plen, mproc_result *res, char **msg)
{
    void *fn = mproc__fnref_resolve(t->fn);
    if (!fn) return fail(msg, "the map function cannot be found in the worker");
    const char *in;
    char *out;
    if (t->kind == KIND_MAP_INPLACE) {
        if (t->count <= RUN_MAX) return run_splittable(fn, t, a, res, msg);
        in = (const char *)(uintptr_t)t->in_ptr;
        out = (char *)(uintptr_t)t->out_ptr;
    } else {
        if (plen != t->count * t->in_size) return fail(msg, "malformed map task");
        in = payload;
        size_t bytes = t->count * t->out_size;
        out = bytes != 0 ? calloc(t->count, t->out_size) : NULL;
        if (bytes != 0 && !out) return MPROC_ENOMEM;
        res->buf = out;
        res->len = bytes;
    }
    return mproc__task_run_map(fn, t->call, in, out, t->count, t->in_size, t->out_size, msg);
}
MPROC__ANALYZER_ON

int mproc__pool_worker_main(void *arg)
{
    pool_worker_arg a = *(const pool_worker_arg *)arg;
    pool_shared *sh = a.sh;
    pool_slot *slot = &sh->slots[a.idx];
    catch_crashes(slot);
    int rc = 0;
    char *msg = NULL;
    if (sh->initializer) {
        mproc_task_fn init = (mproc_task_fn)mproc__fnref_resolve(sh->initializer);
        mproc_result r = {0};
        rc = init ? mproc__task_run(init, sh->initargs, sh->initargs_len, &r, &msg)
                  : fail(&msg, "the initializer cannot be found in the worker");
        free(r.buf);
    }
    post(sh, MSG_READY, &a, 0, rc, msg, NULL, 0);
    free(msg);
    if (rc) return 1;
    for (unsigned done = 0;;) {
        void *buf;
        size_t len;
        if (mproc_queue_get(slot->inbox, &buf, &len, MPROC_FOREVER) != 0) return 2;
        pool_task_msg t;
        if (len < sizeof t) return 3;
        memcpy(&t, buf, sizeof t);
        if (t.type == MSG_STOP) {
            free(buf);
            return 0;
        }
        uint64_t q = t.claim << 2 | CLAIM_QUEUED;
        if (!atomic_compare_exchange_strong(&slot->claims[t.claim % POOL_CLAIMS], &q,
                                            t.claim << 2 | CLAIM_TAKEN)) {
            free(buf); /* taken back for an idle worker */
            continue;
        }
        const char *payload = (const char *)buf + sizeof t;
        size_t plen = len - sizeof t;
        mproc_result r = {0};
        msg = NULL;
        if (t.kind == KIND_APPLY || t.kind == KIND_VALUE) {
            void *fn = mproc__fnref_resolve(t.fn);
            if (!fn)
                rc = fail(&msg, "the task function cannot be found in the worker");
            else if (t.kind == KIND_APPLY)
                rc = mproc__task_run((mproc_task_fn)fn, plen ? payload : NULL, plen, &r, &msg);
            else
                rc = mproc__value_task_run((mproc_value_task_fn)fn, payload, plen, &r, &msg);
        } else {
            rc = run_map(&t, &a, payload, plen, &r, &msg);
        }
        free(buf);
        post(sh, MSG_RESULT, &a, t.id, rc, msg, rc ? NULL : r.buf, rc ? 0 : r.len);
        free(r.buf);
        free(msg);
        if (sh->maxtasks && ++done >= sh->maxtasks) {
            post(sh, MSG_RETIRE, &a, 0, 0, NULL, NULL, 0);
            return 0;
        }
    }
}
