/* map, map_async and imap over a pool: chunks of elements are internal
 * tasks (see mproc__pool_submit_hook) whose completions land here. */
#include "base/log.h"
#include "pool/backend.h"
#include "pool/future.h"
#include "pool/pool.h"
#include "sync/thread_cond.h"
#include "mproc/arena.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A chunk task message: header, then (copy mode) the inputs. */
static void *chunk_msg(bool inplace, mproc__fnref fn, uint32_t call, const char *in, char *out,
                       size_t count, size_t in_size, size_t out_size, size_t *len)
{
    size_t payload = inplace ? 0 : count * in_size;
    char *m = malloc(sizeof(pool_task_msg) + payload);
    if (!m) return NULL;
    pool_task_msg h = {.type = MSG_TASK,
                       .kind = inplace ? KIND_MAP_INPLACE : KIND_MAP_COPY,
                       .fn = fn,
                       .in_ptr = (uint64_t)(uintptr_t)in,
                       .out_ptr = (uint64_t)(uintptr_t)out,
                       .count = count,
                       .in_size = (uint32_t)in_size,
                       .out_size = (uint32_t)out_size,
                       .call = call};
    memcpy(m, &h, sizeof h);
    if (payload) memcpy(m + sizeof h, in, payload);
    *len = sizeof h + payload;
    return m;
}

static bool in_arena(const void *p, size_t bytes)
{
    return bytes == 0 ||
           (p && mproc_arena_contains(p) && mproc_arena_contains((const char *)p + bytes - 1));
}

/* Whether fn may be called as `call` on elements of in_size and out_size
 * bytes (range: the inputs are int64_t); if not, says why in the log. */
static bool call_fits(const char *what, mproc_map_kind call, size_t in_size, size_t out_size,
                      bool range)
{
    static const char *const names[] = {"mproc_map_fn", "int64_t (int64_t)", "double (int64_t)",
                                        "int64_t (double)", "double (double)"};
    if ((unsigned)call > MPROC_MAP_F64_F64) {
        mproc_log(MPROC_LOG_ERROR, "%s: unknown call kind %d", what, (int)call);
        return false;
    }
    bool arg_i64 = call == MPROC_MAP_I64_I64 || call == MPROC_MAP_I64_F64;
    if (range && call != MPROC_MAP_BYTES && !arg_i64) {
        mproc_log(MPROC_LOG_ERROR, "%s: a range gives int64_t items, and fn is %s", what,
                  names[call]);
        return false;
    }
    if (call == MPROC_MAP_BYTES || (in_size == 8 && out_size == 8)) return true;
    mproc_log(MPROC_LOG_ERROR,
              "%s: fn is %s (8-byte argument and result), but the elements are %zu bytes in "
              "and %zu bytes out",
              what, names[call], in_size, out_size);
    return false;
}

/* ---- map ------------------------------------------------------------------------ */

typedef struct map_state {
    pthread_mutex_t mu;
    mproc_future *f;
    char *out;   /* where results are copied to (NULL: written in place) */
    char *stage; /* staging block: inputs, then outputs (NULL: none) */
    char *stage_out;
    const char *in; /* the caller's inputs, staged chunk by chunk */
    size_t in_size;
    size_t staged;                       /* inputs [0, staged) were staged at once */
    size_t n, chunksize, out_size, done; /* done: items whose tasks ended */
    bool inplace;                        /* chunks worked on in place (arena or stage) */
    bool submitting;                     /* the map call is still queuing chunks */
    int rc;
    char *msg;
    pid_t pid;
    void (*progress)(size_t, size_t, void *);
    void *progress_ud;
    bool bar;
    long long t0, last_bar;
} map_state;

void mproc__map_bar(size_t done, size_t n, long long t0, long long *last, bool final)
{
    long long now = mproc_now_ns();
    if (!final && now - *last < 100000000LL) return;
    *last = now;
    double secs = (now - t0) / 1e9, rate = secs > 0 ? done / secs : 0;
    double eta = rate > 0 ? (n - done) / rate : 0;
    int pct = n ? (int)(100.0 * done / n) : 100, fill = pct / 5;
    char bar[21];
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %zu/%zu %.0f it/s ETA %.0fs%s", bar, pct, done, n, rate, eta,
            final ? "\n" : "");
}

static void draw_bar(map_state *s, bool final)
{
    mproc__map_bar(s->done, s->n, s->t0, &s->last_bar, final);
}

/* Stages a chunk's inputs as it is handed to a worker: then the copy runs
 * while that worker's CPU would idle, not while every worker computes. */
static void map_chunk_prep(void *ud, uint64_t seq)
{
    map_state *s = ud;
    size_t first = (size_t)seq;
    if (first < s->staged) return;
    size_t count = s->n - first < s->chunksize ? s->n - first : s->chunksize;
    memcpy(s->stage + first * s->in_size, s->in + first * s->in_size, count * s->in_size);
}

/* Ends the map once every item's task has ended and the call has queued
 * them all. */
static void map_end_if_done(map_state *s, bool last)
{
    if (!last) return;
    /* The staging block first: a map the caller makes as soon as this one
     * completes finds it in the cache. */
    if (s->stage) mproc__pool_stage_give(s->stage);
    if (s->rc)
        mproc__future_fail(s->f, s->rc, s->msg, s->pid);
    else
        mproc__future_finish(s->f, NULL, 0);
    mproc_future_free(s->f);
    free(s->msg);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* A chunk task ended: items [seq, seq + count) (fewer than it was queued
 * with if it was split while it ran, see RUN_PACK). */
static void map_chunk_done(void *ud, uint64_t seq, size_t count, int rc, const void *res,
                           size_t len, const char *msg, pid_t pid)
{
    map_state *s = ud;
    size_t first = (size_t)seq;
    if (rc == 0 && s->inplace) { /* the worker says how many items it ran */
        uint64_t ran = 0;
        if (len == sizeof ran) memcpy(&ran, res, sizeof ran);
        if (len == sizeof ran ? ran != count : len != 0 || count <= RUN_MAX) rc = MPROC_EPROTO;
    }
    if (rc == 0 && s->out && s->stage)
        memcpy(s->out + first * s->out_size, s->stage_out + first * s->out_size,
               count * s->out_size);
    else if (rc == 0 && s->out && len) {
        if (len == count * s->out_size)
            memcpy(s->out + first * s->out_size, res, len);
        else
            rc = MPROC_EPROTO;
    }
    MPROC__LOCK(&s->mu);
    s->done += count;
    if (rc && !s->rc) {
        s->rc = rc;
        s->msg = msg ? strdup(msg) : NULL;
        s->pid = pid;
    }
    if (s->progress) s->progress(s->done, s->n, s->progress_ud);
    bool last = s->done == s->n && !s->submitting;
    if (s->bar) draw_bar(s, last);
    MPROC__UNLOCK(&s->mu);
    map_end_if_done(s, last);
}

/* The map call has queued every chunk (or failed the rest). */
static void map_submitted(map_state *s)
{
    MPROC__LOCK(&s->mu);
    s->submitting = false;
    bool last = s->done == s->n;
    if (last && s->bar) draw_bar(s, true);
    MPROC__UNLOCK(&s->mu);
    map_end_if_done(s, last);
}

static int map_async_call(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn, const void *in,
                          size_t n, size_t in_size, void *out, size_t out_size,
                          const mproc_map_opts *opts, mproc_future **fut)
{
    mproc_map_opts o = opts ? *opts : (mproc_map_opts){0};
    if (!pool || !fn || !fut || (n && ((!in && in_size) || (!out && out_size))) ||
        in_size > UINT32_MAX || out_size > UINT32_MAX || o.timeout_ms < MPROC_FOREVER ||
        (n && in_size + out_size > SIZE_MAX / 2 / n))
        return MPROC_EINVAL;
    if (!call_fits("map", call, in_size, out_size, false)) return MPROC_EINVAL;
    if (!mproc__pool_owned(pool)) return MPROC_ECHILD;
    void *ctx;
    const mproc__pool_backend *be = mproc__pool_backend_of(pool, &ctx);
    if (be) return be->map_async(ctx, (uint32_t)call, fn, in, n, in_size, out, out_size, &o, fut);
    mproc__fnref ref;
    int rc = mproc__fnref_make((const void *)fn, &ref);
    if (rc) return rc;
    size_t w = (size_t)mproc__pool_size(pool);
    size_t cs = o.chunksize ? o.chunksize : (n + 4 * w - 1) / (4 * w);
    if (cs == 0) cs = 1;
    size_t nchunks = (n + cs - 1) / cs;
    map_state *s = calloc(1, sizeof *s);
    mproc_future *f = mproc__future_new(NULL, NULL, NULL);
    if (!s || !f) {
        free(s);
        mproc_future_free(f);
        mproc_future_free(f);
        return MPROC_ENOMEM;
    }
    bool inplace = in_arena(in, n * in_size) && in_arena(out, n * out_size);
    *s = (map_state){.f = f,
                     .out = inplace ? NULL : out,
                     .n = n,
                     .chunksize = cs,
                     .out_size = out_size,
                     .submitting = true,
                     .progress = o.progress,
                     .progress_ud = o.progress_userdata,
                     .bar = o.progress_bar,
                     .t0 = mproc_now_ns()};
    pthread_mutex_init(&s->mu, NULL);
    /* Copy mode goes through a staging block in the arena: each chunk's
     * inputs are copied there just before it is queued, the worker reads
     * and writes the block in place, and its outputs are copied out as it
     * completes: two copies, none in the workers, no page faults. */
    size_t in_bytes = (n * in_size + 63) & ~(size_t)63;
    if (!inplace && n * (in_size + out_size) != 0)
        s->stage = mproc__pool_stage_take(in_bytes + n * out_size);
    s->stage_out = s->stage ? s->stage + in_bytes : NULL;
    s->inplace = inplace || s->stage;
    /* The first chunk of every worker is staged before any is queued, so
     * that they start together (a woken worker may take this CPU); the
     * others as they are handed out (map_chunk_prep). */
    s->in = in;
    s->in_size = in_size;
    s->staged = w * cs < n ? w * cs : n;
    if (s->stage && in && in_size && s->staged) memcpy(s->stage, in, s->staged * in_size);
    for (size_t c = 0; c < nchunks; c++) {
        size_t first = c * cs, count = n - first < cs ? n - first : cs, len;
        const char *cin = (const char *)in + first * in_size;
        char *cout = (char *)out + first * out_size;
        if (s->stage) {
            cin = s->stage + first * in_size;
            cout = s->stage_out + first * out_size;
        }
        void *m = chunk_msg(inplace || s->stage, ref, (uint32_t)call, cin, cout, count, in_size,
                            out_size, &len);
        int src = m ? mproc__pool_submit_hook(pool, m, len, o.timeout_ms, map_chunk_done,
                                              s->stage && in_size ? map_chunk_prep : NULL, s, first,
                                              count)
                    : MPROC_ENOMEM;
        if (src) { /* this chunk, and the ones not sent, fail */
            map_chunk_done(s, first, n - first, src, NULL, 0, "the map could not be queued", 0);
            break;
        }
    }
    *fut = f;
    map_submitted(s);
    return 0;
}

int mproc_pool_map_async(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                         size_t in_size, void *out, size_t out_size, const mproc_map_opts *opts,
                         mproc_future **fut)
{
    return map_async_call(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, in, n, in_size, out, out_size,
                          opts, fut);
}

int mproc_pool_map_async_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn,
                               const void *in, size_t n, size_t in_size, void *out, size_t out_size,
                               const mproc_map_opts *opts, mproc_future **fut)
{
    return map_async_call(pool, call, fn, in, n, in_size, out, out_size, opts, fut);
}

int mproc_pool_map_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn, const void *in,
                         size_t n, size_t in_size, void *out, size_t out_size,
                         const mproc_map_opts *opts)
{
    mproc_future *f;
    int rc = map_async_call(pool, call, fn, in, n, in_size, out, out_size, opts, &f);
    if (rc) return rc;
    rc = mproc_future_result(f, NULL, NULL, MPROC_FOREVER);
    mproc_future_free(f);
    return rc;
}

int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n, size_t in_size,
                   void *out, size_t out_size, const mproc_map_opts *opts)
{
    return mproc_pool_map_typed(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, in, n, in_size, out,
                                out_size, opts);
}

/* ---- map over a range ------------------------------------------------------------ */

/* The i-th item of r (i < mproc_range_len(r)): the sum wraps exactly. */
static int64_t range_item(const mproc_range *r, uint64_t i)
{
    return (int64_t)((uint64_t)r->start + i * (uint64_t)r->step);
}

int mproc_pool_map_range_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn,
                               mproc_range r, void *out, size_t out_size,
                               const mproc_map_opts *opts)
{
    if (!pool || !fn) return MPROC_EINVAL;
    if (r.step == 0) {
        mproc_log(MPROC_LOG_ERROR, "map_range: the range's step is 0");
        return MPROC_EINVAL;
    }
    if (!call_fits("map_range", call, sizeof(int64_t), out_size, true)) return MPROC_EINVAL;
    uint64_t len = mproc_range_len(r);
    if (len > SIZE_MAX / 2 / (sizeof(int64_t) + out_size + 1)) {
        mproc_log(MPROC_LOG_ERROR, "map_range: %llu items do not fit in memory",
                  (unsigned long long)len);
        return MPROC_EINVAL;
    }
    size_t n = (size_t)len;
    if (n == 0)
        return mproc_pool_map_typed(pool, call, fn, NULL, 0, sizeof(int64_t), out, out_size, opts);
    /* The inputs go where the outputs are: both in the arena, the workers
     * work in place. */
    int64_t *in = NULL;
    bool arena =
        in_arena(out, n * out_size) && mproc_arena_alloc((void **)&in, n * sizeof *in) == 0;
    if (!arena && !(in = malloc(n * sizeof *in))) return MPROC_ENOMEM;
    for (size_t i = 0; i < n; i++) in[i] = range_item(&r, i);
    int rc = mproc_pool_map_typed(pool, call, fn, in, n, sizeof *in, out, out_size, opts);
    if (arena)
        (void)mproc_arena_free(in);
    else
        free(in);
    return rc;
}

int mproc_pool_map_range(mproc_pool *pool, mproc_map_fn fn, mproc_range r, void *out,
                         size_t out_size, const mproc_map_opts *opts)
{
    return mproc_pool_map_range_typed(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, r, out, out_size,
                                      opts);
}

/* ---- imap ----------------------------------------------------------------------- */

typedef struct chunk_res {
    uint64_t seq;
    size_t first, count;
    int rc;
    char *data; /* count * out_size bytes when rc == 0 */
    struct chunk_res *next;
} chunk_res;

struct mproc_imap {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mproc_pool *pool;
    mproc__fnref fn;
    mproc_any_fn raw_fn; /* for a pool of another kind (pool/backend.h) */
    uint32_t call;
    size_t in_size, out_size, chunksize, max_inflight;
    bool unordered;
    int timeout_ms;
    mproc_producer_fn produce;
    void *ud;
    bool produced_all;
    bool held; /* the pool is held for this imap (mproc__pool_hold) */
    int produce_rc;
    uint64_t next_seq, deliver_seq;
    size_t produced, inflight, delivered;
    chunk_res *done; /* completed chunks not yet delivered */
    chunk_res *cur;  /* the chunk being delivered */
    size_t cur_pos;
    int refs; /* the caller's, and one per chunk in flight */
    char *inbuf;
    void *src; /* the producer's state, when the imap made it (range, array) */
};

static void imap_unref_locked(mproc_imap *it, bool *freed)
{
    *freed = --it->refs == 0;
}

/* The iterator's memory (its lock and condition are not destroyed: see
 * imap_destroy). */
static void imap_release(mproc_imap *it)
{
    for (chunk_res *c = it->done, *n; c; c = n) {
        n = c->next;
        free(c->data);
        free(c);
    }
    if (it->cur) {
        free(it->cur->data);
        free(it->cur);
    }
    free(it->inbuf);
    free(it->src);
    free(it);
}

static void imap_destroy(mproc_imap *it)
{
    pthread_mutex_destroy(&it->mu);
    pthread_cond_destroy(&it->cv);
    imap_release(it);
}

static void imap_chunk_done(void *ud, uint64_t seq, size_t count, int rc, const void *res,
                            size_t len, const char *msg, pid_t pid)
{
    (void)msg;
    (void)pid;
    mproc_imap *it = ud;
    chunk_res *c = calloc(1, sizeof *c);
    MPROC__LOCK(&it->mu);
    size_t first = (size_t)seq * it->chunksize;
    if (c) {
        *c = (chunk_res){.seq = seq, .first = first, .count = count, .rc = rc};
        if (rc == 0 && len != count * it->out_size) c->rc = MPROC_EPROTO;
        if (c->rc == 0 && len && (c->data = malloc(len))) memcpy(c->data, res, len);
        if (c->rc == 0 && len && !c->data) c->rc = MPROC_ENOMEM;
        c->next = it->done;
        it->done = c;
    }
    it->inflight -= count;
    pthread_cond_broadcast(&it->cv);
    bool freed;
    imap_unref_locked(it, &freed);
    MPROC__UNLOCK(&it->mu);
    if (freed) imap_destroy(it);
}

/* An imap whose producer state `src` (malloc'd, or NULL) it frees. */
static int imap_make(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn, size_t in_size,
                     size_t out_size, mproc_producer_fn produce, void *userdata, void *src,
                     const mproc_imap_opts *opts, mproc_imap **out)
{
    mproc_imap_opts o = opts ? *opts : (mproc_imap_opts){0};
    if (!pool || !fn || !produce || !out || in_size > UINT32_MAX || out_size > UINT32_MAX ||
        !call_fits("imap", call, in_size, out_size, false)) {
        free(src);
        return MPROC_EINVAL;
    }
    if (!mproc__pool_owned(pool)) {
        free(src);
        return MPROC_ECHILD;
    }
    mproc_imap *it = calloc(1, sizeof *it);
    if (!it) {
        free(src);
        return MPROC_ENOMEM;
    }
    it->src = src;
    it->call = (uint32_t)call;
    it->raw_fn = fn;
    int rc = mproc__fnref_make((const void *)fn, &it->fn);
    if (rc) {
        free(it->src);
        free(it);
        return rc;
    }
    it->pool = pool;
    it->in_size = in_size;
    it->out_size = out_size;
    it->chunksize = o.chunksize ? o.chunksize : 1;
    it->max_inflight =
        o.max_inflight ? o.max_inflight : 4 * (size_t)mproc__pool_size(pool) * it->chunksize;
    if (it->max_inflight < it->chunksize) it->max_inflight = it->chunksize;
    it->unordered = o.unordered;
    it->timeout_ms = o.timeout_ms;
    it->produce = produce;
    it->ud = userdata;
    it->refs = 1;
    if (!(it->inbuf = malloc(it->chunksize * (in_size ? in_size : 1)))) {
        free(it->src);
        free(it);
        return MPROC_ENOMEM;
    }
    if ((rc = mproc__pool_hold(pool))) {
        free(it->inbuf);
        free(it->src);
        free(it);
        return rc;
    }
    it->held = true;
    pthread_mutex_init(&it->mu, NULL);
    mproc__thread_cond_init(&it->cv);
    *out = it;
    return 0;
}

int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn, size_t in_size, size_t out_size,
                    mproc_producer_fn produce, void *userdata, const mproc_imap_opts *opts,
                    mproc_imap **out)
{
    return imap_make(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, in_size, out_size, produce, userdata,
                     NULL, opts, out);
}

/* The producers of imap_range and imap_array, called in the caller's
 * thread by mproc_imap_next. */
typedef struct range_src {
    mproc_range r;
    uint64_t len, next;
} range_src;

static int produce_range(void *ud, void *item)
{
    range_src *s = ud;
    if (s->next >= s->len) return 0;
    int64_t v = range_item(&s->r, s->next++);
    memcpy(item, &v, sizeof v);
    return 1;
}

typedef struct array_src {
    const char *in;
    size_t n, size, next;
} array_src;

static int produce_array(void *ud, void *item)
{
    array_src *s = ud;
    if (s->next >= s->n) return 0;
    memcpy(item, s->in + s->next++ * s->size, s->size);
    return 1;
}

int mproc_pool_imap_range_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn,
                                mproc_range r, size_t out_size, const mproc_imap_opts *opts,
                                mproc_imap **out)
{
    if (r.step == 0) {
        mproc_log(MPROC_LOG_ERROR, "imap_range: the range's step is 0");
        return MPROC_EINVAL;
    }
    if (!call_fits("imap_range", call, sizeof(int64_t), out_size, true)) return MPROC_EINVAL;
    range_src *s = malloc(sizeof *s);
    if (!s) return MPROC_ENOMEM;
    *s = (range_src){.r = r, .len = mproc_range_len(r)};
    return imap_make(pool, call, fn, sizeof(int64_t), out_size, produce_range, s, s, opts, out);
}

int mproc_pool_imap_range(mproc_pool *pool, mproc_map_fn fn, mproc_range r, size_t out_size,
                          const mproc_imap_opts *opts, mproc_imap **out)
{
    return mproc_pool_imap_range_typed(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, r, out_size, opts,
                                       out);
}

int mproc_pool_imap_array_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn,
                                const void *in, size_t n, size_t in_size, size_t out_size,
                                const mproc_imap_opts *opts, mproc_imap **out)
{
    if (n && !in && in_size) return MPROC_EINVAL;
    array_src *s = malloc(sizeof *s);
    if (!s) return MPROC_ENOMEM;
    *s = (array_src){.in = in, .n = n, .size = in_size};
    return imap_make(pool, call, fn, in_size, out_size, produce_array, s, s, opts, out);
}

int mproc_pool_imap_array(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                          size_t in_size, size_t out_size, const mproc_imap_opts *opts,
                          mproc_imap **out)
{
    return mproc_pool_imap_array_typed(pool, MPROC_MAP_BYTES, (mproc_any_fn)fn, in, n, in_size,
                                       out_size, opts, out);
}

/* Calls the producer for one more chunk and sends it (lock held; dropped
 * around the producer and the submit). The caller holds a reference, so
 * the imap_chunk_done of a failed submit never frees `it` (the analyzer
 * does not follow the count). */
MPROC__ANALYZER_OFF("-Wanalyzer-use-after-free")
static void top_up_locked(mproc_imap *it)
{
    /* Produced but not yet handed out: in flight or waiting for the caller. */
    while (!it->produced_all && it->produced - it->delivered + it->chunksize <= it->max_inflight) {
        size_t k = 0;
        MPROC__UNLOCK(&it->mu);
        int r = 1;
        while (k < it->chunksize && (r = it->produce(it->ud, it->inbuf + k * it->in_size)) == 1)
            k++;
        MPROC__LOCK(&it->mu);
        if (r != 1) {
            it->produced_all = true;
            if (r < 0) it->produce_rc = r;
        }
        if (k == 0) break;
        size_t len;
        uint64_t seq = it->next_seq++;
        it->produced += k;
        it->inflight += k;
        it->refs++;
        MPROC__UNLOCK(&it->mu);
        /* Unlocked: fn, call, the sizes and inbuf are this producer's. */
        void *ctx;
        const mproc__pool_backend *be = mproc__pool_backend_of(it->pool, &ctx);
        int rc;
        if (be) {
            rc = be->map_chunk(ctx, it->call, it->raw_fn, it->inbuf, k, it->in_size, it->out_size,
                               it->timeout_ms, imap_chunk_done, it, seq);
        } else {
            void *m = chunk_msg(false, it->fn, it->call, it->inbuf, NULL, k, it->in_size,
                                it->out_size, &len);
            rc = m ? mproc__pool_submit_hook(it->pool, m, len, it->timeout_ms, imap_chunk_done,
                                             NULL, it, seq, k)
                   : MPROC_ENOMEM;
        }
        if (rc) imap_chunk_done(it, seq, k, rc, NULL, 0, NULL, 0);
        MPROC__LOCK(&it->mu);
    }
    if (it->produced_all && it->held) { /* all sent: the pool may stop after them */
        it->held = false;
        mproc__pool_unhold(it->pool);
    }
}
MPROC__ANALYZER_ON

/* The next chunk to deliver, unlinked from the done list, or NULL. */
static chunk_res *take_chunk_locked(mproc_imap *it)
{
    for (chunk_res **pp = &it->done; *pp; pp = &(*pp)->next) {
        chunk_res *c = *pp;
        if (it->unordered || c->seq == it->deliver_seq) {
            *pp = c->next;
            if (!it->unordered) it->deliver_seq++;
            return c;
        }
    }
    return NULL;
}

int mproc_imap_next(mproc_imap *it, void *out, size_t *index, int timeout_ms)
{
    if (!it || (!out && it->out_size)) return MPROC_EINVAL;
    if (!mproc__pool_owned(it->pool)) return MPROC_ECHILD;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    MPROC__LOCK(&it->mu);
    for (;;) {
        top_up_locked(it);
        if (it->cur && it->cur_pos < it->cur->count) {
            chunk_res *c = it->cur;
            size_t i = it->cur_pos++;
            it->delivered++;
            if (index) *index = c->first + i;
            rc = c->rc;
            if (rc == 0 && it->out_size) memcpy(out, c->data + i * it->out_size, it->out_size);
            break;
        }
        if (it->cur) {
            free(it->cur->data);
            free(it->cur);
            it->cur = NULL;
        }
        if ((it->cur = take_chunk_locked(it))) {
            it->cur_pos = 0;
            continue;
        }
        if (it->produced_all && it->inflight == 0 && !it->done) {
            rc = it->produce_rc ? it->produce_rc : MPROC_EEOF;
            it->produce_rc = 0;
            break;
        }
        if (mproc__deadline_passed(&dl)) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (mproc__future_thread_has_step()) { /* a thread that completes tasks itself */
            MPROC__UNLOCK(&it->mu);
            mproc__future_thread_step(&dl);
            MPROC__LOCK(&it->mu);
        } else if (mproc__thread_cond_wait(&it->cv, &it->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    MPROC__UNLOCK(&it->mu);
    return rc;
}

void mproc_imap_free(mproc_imap *it)
{
    if (!it) return;
    if (!mproc__pool_owned(it->pool)) {
        /* A copy of the owner's: its memory only. The chunks in flight are
         * the owner's, the pool is not let go, and the lock and condition
         * may hold the state of threads that do not exist here. */
        imap_release(it);
        return;
    }
    MPROC__LOCK(&it->mu);
    if (it->held) {
        it->held = false;
        mproc__pool_unhold(it->pool);
    }
    bool freed;
    imap_unref_locked(it, &freed);
    MPROC__UNLOCK(&it->mu);
    if (freed) imap_destroy(it);
}
