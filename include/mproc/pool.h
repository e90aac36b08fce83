/* mproc — process pools (the twin of multiprocessing.Pool) and executors
 * (the twin of concurrent.futures' ProcessPoolExecutor and
 * ThreadPoolExecutor).
 *
 * Beyond Python: a worker that dies (signal, exit) fails only the task it
 * was running, with an error naming the signal or exit code, the pid and
 * the task, and is replaced; tasks may have a time limit (the overdue
 * worker is killed and replaced); an initializer that fails makes creation
 * fail; map over arrays in the family arena is zero-copy; imap takes its
 * input from a producer with bounded work in flight.
 *
 * Threads: a pool or executor may be used from several threads of the
 * process that created it (its owner). Any other process with a copy of it
 * (a plain fork() of the owner, a worker) gets MPROC_ECHILD from every call
 * and never touches the owner's shared state; there mproc_pool_free,
 * mproc_imap_free and mproc_executor_free release only the copy's private
 * memory and fds, and mproc_pool_workers gives 0.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include "base.h"
#include "context.h"
#include "future.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A pool (opaque). */
typedef struct mproc_pool mproc_pool;

/* Options for mproc_pool_new; zero (or NULL) means defaults. */
typedef struct mproc_pool_opts {
    int processes;             /* workers; 0: mproc_cpu_count() */
    mproc_task_fn initializer; /* run once in each worker before tasks */
    const void *initargs;      /* its argument bytes (copied) */
    /* their length */
    size_t initargs_len;
    unsigned maxtasksperchild;    /* a worker is replaced after this many tasks; 0: never */
    const mproc_context *context; /* start method; NULL: the default */
    int task_timeout_ms;          /* default time limit of a task; 0: none */
} mproc_pool_opts;

/* Starts a pool and waits until every worker has run its initializer.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM, the start method's errors, or the
 * initializer's failure (its code; the message is logged): then no pool
 * exists and no worker is left. */
MPROC_API int mproc_pool_new(mproc_pool **out, const mproc_pool_opts *opts);

/* Options of one task. */
typedef struct mproc_task_opts {
    mproc_future_cb callback;       /* on success, in the pool's result thread */
    mproc_future_cb error_callback; /* on failure (not on cancel) */
    void *userdata;                 /* passed to the callbacks */
    int timeout_ms; /* time limit once running; 0: the pool's default; MPROC_FOREVER: none */
} mproc_task_opts;

/* apply_async: runs fn(arg copy) in a worker. *out: the future (free it).
 * Errors: MPROC_EINVAL, MPROC_ENOMEM, MPROC_EINVAL (fn cannot be found in
 * a new image), MPROC_ESHUTDOWN (closed or terminated), MPROC_ECHILD (the
 * calling process is not the pool's owner, see above). */
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn, const void *arg,
                                     size_t arglen, const mproc_task_opts *opts,
                                     mproc_future **out);

/* apply: runs fn and waits. On 0, *res (malloc'd, free it; NULL if no
 * result) and *reslen receive the result (both may be NULL). Otherwise the
 * task's error (see mproc_future_result); the message is logged. */
MPROC_API int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *arg, size_t arglen,
                               void **res, size_t *reslen);

/* A task on values: arg decoded, *result encoded back (may stay NULL). */
struct mproc_value;
typedef int (*mproc_value_task_fn)(const struct mproc_value *arg, struct mproc_value **result);
MPROC_API int mproc_pool_apply_value_async(mproc_pool *pool, mproc_value_task_fn fn,
                                           const struct mproc_value *arg,
                                           const mproc_task_opts *opts, mproc_future **out);

/* A map function: reads one input element, writes one output element;
 * returns 0 or fails (mproc_task_fail). */
typedef int (*mproc_map_fn)(const void *in, void *out);

/* Options of a map. */
typedef struct mproc_map_opts {
    size_t chunksize; /* 0: ceil(n / (4 * workers)), Python's rule */
    int timeout_ms;   /* time limit of each chunk; 0: the pool's default */
    /* Progress: called with (done, total) items as chunks finish, in the
     * pool's result thread. */
    void (*progress)(size_t done, size_t total, void *userdata);
    void *progress_userdata;
    bool progress_bar; /* a bar on stderr: percent, rate, ETA */
} mproc_map_opts;

/* map (and starmap: map over an array of argument structs): out[i] =
 * fn(in[i]) for i < n; in and out are arrays of in_size- and out_size-byte
 * elements. When both live in the family arena, workers read and write
 * them in place (nothing is copied); otherwise inputs travel to workers
 * and outputs back in chunks. Returns 0, or the error of the first chunk
 * that failed (the other chunks still run; their outputs are written).
 * Errors: as mproc_pool_apply_async. */
MPROC_API int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                             size_t in_size, void *out, size_t out_size,
                             const mproc_map_opts *opts);
#define mproc_pool_starmap mproc_pool_map

/* map_async: as map, returning at once; the future completes when every
 * chunk has (its result has no bytes; its error is the first chunk's).
 * in and out must stay valid until then. */
MPROC_API int mproc_pool_map_async(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                                   size_t in_size, void *out, size_t out_size,
                                   const mproc_map_opts *opts, mproc_future **fut);

/* imap / imap_unordered over a producer: produce(userdata, item) writes the
 * next in_size-byte input to item and returns 1, or returns 0 at the end
 * (or a negative code: an error that ends the input). It is called by
 * mproc_imap_next, in the caller's thread, to keep at most max_inflight
 * items in flight: an endless producer never floods memory. */
typedef int (*mproc_producer_fn)(void *userdata, void *item);

/* Options of an imap. */
typedef struct mproc_imap_opts {
    bool unordered;      /* results in completion order (imap_unordered) */
    size_t chunksize;    /* items per task; 0: 1 */
    size_t max_inflight; /* items; 0: 4 * workers * chunksize */
    int timeout_ms;      /* time limit of each task; 0: the pool's default */
} mproc_imap_opts;

/* An imap in progress (opaque). */
typedef struct mproc_imap mproc_imap;

/* imap: fn over the items produce gives, results by mproc_imap_next. */
MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn, size_t in_size, size_t out_size,
                              mproc_producer_fn produce, void *userdata,
                              const mproc_imap_opts *opts, mproc_imap **out);

/* The next result into out (out_size bytes): 0; MPROC_EEOF after the last;
 * MPROC_ETIMEDOUT; or that item's task error (the iteration goes on with
 * the next item); or the producer's error. index (may be NULL) gets the
 * item's position in the input. */
MPROC_API int mproc_imap_next(mproc_imap *it, void *out, size_t *index, int timeout_ms);

/* Frees the iterator (before its pool); tasks still in flight finish and
 * are dropped. An imap holds its pool until its producer is exhausted or
 * it is freed: after close its chunks are still taken, and join waits for
 * it (as Python's imap made before close still yields everything). Made
 * after close: MPROC_ESHUTDOWN. */
MPROC_API void mproc_imap_free(mproc_imap *it);

/* ---- short forms: ranges, arrays, typed functions ------------------------ */

/* Python's range(start, stop, step): start, start + step, ... up to stop
 * (excluded). step may be negative, never 0. */
typedef struct mproc_range {
    int64_t start, stop, step; /* as Python's */
} mproc_range;

/* MPROC_RANGE(stop), MPROC_RANGE(start, stop), MPROC_RANGE(start, stop,
 * step): an mproc_range as Python's range() takes its arguments. */
#define MPROC_RANGE(...)                                                                           \
    MPROC__RANGE_PICK(__VA_ARGS__, MPROC__RANGE3, MPROC__RANGE2, MPROC__RANGE1, _)(__VA_ARGS__)
#define MPROC__RANGE_PICK(a, b, c, which, ...) which
#define MPROC__RANGE1(stop)                    ((mproc_range){0, (stop), 1})
#define MPROC__RANGE2(start, stop)             ((mproc_range){(start), (stop), 1})
#define MPROC__RANGE3(start, stop, step)       ((mproc_range){(start), (stop), (step)})

/* len(range(...)): how many items r has; 0 when it is empty or its step is
 * 0. Exact over the whole int64_t range. */
static inline uint64_t mproc_range_len(mproc_range r)
{
    if (r.step > 0 && r.start < r.stop)
        return ((uint64_t)r.stop - (uint64_t)r.start - 1) / (uint64_t)r.step + 1;
    if (r.step < 0 && r.start > r.stop)
        return ((uint64_t)r.start - (uint64_t)r.stop - 1) / (0 - (uint64_t)r.step) + 1;
    return 0;
}

/* How a worker calls a map's function: an mproc_map_fn (bytes in, bytes
 * out, an int result), or a typed function of one number that returns one
 * number. A typed function fails by calling mproc_task_fail (its return
 * value is then dropped). Under spawn and forkserver it is found again in
 * the worker's image by module and offset, as every task function is. */
typedef enum mproc_map_kind {
    MPROC_MAP_BYTES = 0, /* int fn(const void *in, void *out): mproc_map_fn */
    MPROC_MAP_I64_I64,   /* int64_t fn(int64_t) */
    MPROC_MAP_I64_F64,   /* double fn(int64_t) */
    MPROC_MAP_F64_I64,   /* int64_t fn(double) */
    MPROC_MAP_F64_F64,   /* double fn(double) */
} mproc_map_kind;

/* Any function, cast to one type; the kind (mproc_map_kind) says what it really is. */
typedef void (*mproc_any_fn)(void);

/* map over an integer range: out[i] = fn(i-th item of r), out holding
 * mproc_range_len(r) elements of out_size bytes. fn gets each item as an
 * int64_t (through `const void *in` for an mproc_map_fn). Errors: as
 * mproc_pool_map, and MPROC_EINVAL for a step of 0, for a range longer
 * than memory can hold, or for sizes that do not fit fn (a message is
 * logged). */
MPROC_API int mproc_pool_map_range(mproc_pool *pool, mproc_map_fn fn, mproc_range r, void *out,
                                   size_t out_size, const mproc_map_opts *opts);

/* imap over an integer range: as mproc_pool_imap, with the items of r as
 * inputs (in_size is sizeof(int64_t)); at most max_inflight items are in
 * flight, so a range of 2^62 items is fine. mproc_imap_next's index is the
 * item's position in r. Errors: as mproc_pool_imap; MPROC_EINVAL for a
 * step of 0. */
MPROC_API int mproc_pool_imap_range(mproc_pool *pool, mproc_map_fn fn, mproc_range r,
                                    size_t out_size, const mproc_imap_opts *opts, mproc_imap **out);

/* imap over an array of n elements of in_size bytes, which must stay valid
 * and unchanged until mproc_imap_next has given MPROC_EEOF or the iterator
 * is freed. Errors: as mproc_pool_imap. */
MPROC_API int mproc_pool_imap_array(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                                    size_t in_size, size_t out_size, const mproc_imap_opts *opts,
                                    mproc_imap **out);

/* The same four with the function's kind given: what the typed macros
 * below call. For a typed function, in_size and out_size must be the sizes of
 * its argument and result (8), and a range needs an int64_t argument;
 * otherwise MPROC_EINVAL, with a message logged. */
MPROC_API int mproc_pool_map_typed(mproc_pool *pool, mproc_map_kind kind, mproc_any_fn fn,
                                   const void *in, size_t n, size_t in_size, void *out,
                                   size_t out_size, const mproc_map_opts *opts);
/* map_async with the function's kind: out is written as the chunks
 * complete and must stay valid until *fut is done. */
MPROC_API int mproc_pool_map_async_typed(mproc_pool *pool, mproc_map_kind kind, mproc_any_fn fn,
                                         const void *in, size_t n, size_t in_size, void *out,
                                         size_t out_size, const mproc_map_opts *opts,
                                         mproc_future **fut);
MPROC_API int mproc_pool_map_range_typed(mproc_pool *pool, mproc_map_kind kind, mproc_any_fn fn,
                                         mproc_range r, void *out, size_t out_size,
                                         const mproc_map_opts *opts);
MPROC_API int mproc_pool_imap_range_typed(mproc_pool *pool, mproc_map_kind kind, mproc_any_fn fn,
                                          mproc_range r, size_t out_size,
                                          const mproc_imap_opts *opts, mproc_imap **out);
MPROC_API int mproc_pool_imap_array_typed(mproc_pool *pool, mproc_map_kind kind, mproc_any_fn fn,
                                          const void *in, size_t n, size_t in_size, size_t out_size,
                                          const mproc_imap_opts *opts, mproc_imap **out);

#ifndef __cplusplus
/* Typed short forms (C11 _Generic). fn is `int64_t fn(int64_t)`,
 * `double fn(int64_t)`, `int64_t fn(double)` or `double fn(double)`; the
 * arrays are arrays of those types, and a mismatch (a double array for a
 * function that returns int64_t) does not compile. Python's
 * `result = pool.map(cube, range(10))` is
 *
 *     int64_t result[10];
 *     rc = MPROC_POOL_MAP_RANGE(pool, cube, MPROC_RANGE(10), result);
 *
 * MPROC_POOL_MAP(pool, fn, in, n, out): map over the array in[0..n)
 * (an mproc_map_fn is taken too: the sizes are those of the elements).
 * MPROC_POOL_MAP_RANGE(pool, fn, range, out): map over a range (fn takes
 * int64_t, or is an mproc_map_fn).
 * MPROC_POOL_IMAP(pool, fn, in, n, opts, &it) and
 * MPROC_POOL_IMAP_RANGE(pool, fn, range, opts, &it): imap over an array or
 * a range; mproc_imap_next writes one result of fn's type.
 * MPROC_POOL_APPLY(pool, fn, in, out): Python's `pool.apply(fn, (x,))`, fn
 * on the one element *in, its result in *out:
 *
 *     int64_t r;
 *     rc = MPROC_POOL_APPLY(pool, square, &(int64_t){7}, &r);
 *
 * MPROC_POOL_APPLY_ASYNC(pool, fn, in, out, &fut): the same without
 * waiting; *out is written when fut is done (keep *in and *out valid
 * until then: a compound literal lives to the end of its block),
 * and a failure of fn is the future's error, as for apply_async.
 * Each evaluates to the call's return code. */
#define MPROC_POOL_MAP(pool, fn, in, n, out)                                                       \
    (MPROC__ASSERT(MPROC__ARG_OK(fn, in) && MPROC__RES_OK(fn, out),                                \
                   "MPROC_POOL_MAP: the arrays' element types are not fn's argument and result "   \
                   "types"),                                                                       \
     mproc_pool_map_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (in), (n), sizeof *(in), \
                          (out), sizeof *(out), NULL))
#define MPROC_POOL_MAP_RANGE(pool, fn, range, out)                                                 \
    (MPROC__ASSERT(MPROC__TAKES_I64(fn) && MPROC__RES_OK(fn, out),                                 \
                   "MPROC_POOL_MAP_RANGE: fn must take int64_t and return the element type of "    \
                   "out"),                                                                         \
     mproc_pool_map_range_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (range), (out),    \
                                sizeof *(out), NULL))
#define MPROC_POOL_IMAP(pool, fn, in, n, opts, it)                                                 \
    (MPROC__ASSERT(MPROC__KIND_OF(fn) != MPROC_MAP_BYTES && MPROC__ARG_OK(fn, in),                 \
                   "MPROC_POOL_IMAP: fn must be typed and take the element type of in"),           \
     mproc_pool_imap_array_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (in), (n),        \
                                 sizeof *(in), 8, (opts), (it)))
#define MPROC_POOL_IMAP_RANGE(pool, fn, range, opts, it)                                           \
    (MPROC__ASSERT(MPROC__KIND_OF(fn) != MPROC_MAP_BYTES && MPROC__TAKES_I64(fn),                  \
                   "MPROC_POOL_IMAP_RANGE: fn must be typed and take int64_t"),                    \
     mproc_pool_imap_range_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (range), 8,       \
                                 (opts), (it)))
/* pool.apply(fn, (x,)) for a typed fn: *out = fn(*in) (see above). */
#define MPROC_POOL_APPLY(pool, fn, in, out)                                                        \
    (MPROC__ASSERT(MPROC__ARG_OK(fn, in) && MPROC__RES_OK(fn, out),                                \
                   "MPROC_POOL_APPLY: in and out must point to fn's argument and result types"),   \
     mproc_pool_map_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (in), 1, sizeof *(in),   \
                          (out), sizeof *(out), NULL))
/* apply_async of a typed fn: *out written when *fut is done (see above). */
#define MPROC_POOL_APPLY_ASYNC(pool, fn, in, out, fut)                                             \
    (MPROC__ASSERT(MPROC__ARG_OK(fn, in) && MPROC__RES_OK(fn, out),                                \
                   "MPROC_POOL_APPLY_ASYNC: in and out must point to fn's argument and result "    \
                   "types"),                                                                       \
     mproc_pool_map_async_typed((pool), MPROC__KIND_OF(fn), (mproc_any_fn)(fn), (in), 1,           \
                                sizeof *(in), (out), sizeof *(out), NULL, (fut)))

/* The machinery of the short forms. */
#define MPROC__KIND_OF(fn)                                                                         \
    _Generic((fn), int64_t(*)(int64_t)                                                             \
             : MPROC_MAP_I64_I64, double (*)(int64_t)                                              \
             : MPROC_MAP_I64_F64, int64_t (*)(double)                                              \
             : MPROC_MAP_F64_I64, double (*)(double)                                               \
             : MPROC_MAP_F64_F64, int (*)(const void *, void *)                                    \
             : MPROC_MAP_BYTES)
#define MPROC__IS_I64P(p) _Generic((p), int64_t * : 1, const int64_t * : 1, default : 0)
#define MPROC__IS_F64P(p) _Generic((p), double * : 1, const double * : 1, default : 0)
#define MPROC__TAKES_I64(fn)                                                                       \
    (MPROC__KIND_OF(fn) == MPROC_MAP_BYTES || MPROC__KIND_OF(fn) == MPROC_MAP_I64_I64 ||           \
     MPROC__KIND_OF(fn) == MPROC_MAP_I64_F64)
#define MPROC__ARG_OK(fn, in)                                                                      \
    (MPROC__KIND_OF(fn) == MPROC_MAP_BYTES ||                                                      \
     (MPROC__TAKES_I64(fn) ? MPROC__IS_I64P(in) : MPROC__IS_F64P(in)))
#define MPROC__RES_OK(fn, out)                                                                     \
    (MPROC__KIND_OF(fn) == MPROC_MAP_BYTES ||                                                      \
     (MPROC__KIND_OF(fn) == MPROC_MAP_I64_I64 || MPROC__KIND_OF(fn) == MPROC_MAP_F64_I64           \
          ? MPROC__IS_I64P(out)                                                                    \
          : MPROC__IS_F64P(out)))
#define MPROC__ASSERT(cond, msg)                                                                   \
    ((void)sizeof(struct {                                                                         \
        _Static_assert(cond, msg);                                                                 \
        int mproc__unused;                                                                         \
    }))
#endif

/* close: no more tasks; workers exit once the queued ones are done.
 * terminate: stops the workers now (SIGKILL, as mproc_process_kill); unfinished
 * tasks fail with MPROC_ESHUTDOWN. join: waits for the workers to exit;
 * MPROC_EBADSTATE unless close or terminate came first. All three:
 * MPROC_ECHILD outside the owner. */
MPROC_API int mproc_pool_close(mproc_pool *pool);
MPROC_API int mproc_pool_terminate(mproc_pool *pool);
MPROC_API int mproc_pool_join(mproc_pool *pool, int timeout_ms);

/* The workers' pids (for tests and monitoring): fills out[0..cap), returns
 * how many workers there are. */
MPROC_API size_t mproc_pool_workers(mproc_pool *pool, pid_t *out, size_t cap);

/* Frees the pool; an open pool is terminated first. NULL is a no-op. */
MPROC_API void mproc_pool_free(mproc_pool *pool);

/* ---- executors -------------------------------------------------------- */

/* An executor (opaque). */
typedef struct mproc_executor mproc_executor;

/* Options for an executor; zero (or NULL) means defaults. */
typedef struct mproc_executor_opts {
    int max_workers;           /* 0: mproc_cpu_count() (threads: + 4, as Python) */
    mproc_task_fn initializer; /* run once in each worker */
    /* its argument bytes (copied), and their length */
    const void *initargs;
    size_t initargs_len;
    unsigned max_tasks_per_child; /* process executor only; 0: never replaced */
    const mproc_context *context; /* process executor only */
} mproc_executor_opts;

/* A ProcessPoolExecutor (workers are processes, a pool underneath) or a
 * ThreadPoolExecutor (workers are threads of this process, started as
 * needed). Errors: as mproc_pool_new. */
MPROC_API int mproc_executor_new_process(mproc_executor **out, const mproc_executor_opts *opts);
MPROC_API int mproc_executor_new_thread(mproc_executor **out, const mproc_executor_opts *opts);

/* submit: *out gets the future. Errors: MPROC_ESHUTDOWN, MPROC_EINVAL,
 * MPROC_ENOMEM, MPROC_ECHILD (outside the owner; as map and shutdown). */
MPROC_API int mproc_executor_submit(mproc_executor *ex, mproc_task_fn fn, const void *arg,
                                    size_t arglen, mproc_future **out);

/* map: out[i] = fn(in[i]), results in order, at most a few tasks per
 * worker in flight; waits up to timeout_ms in all (MPROC_ETIMEDOUT). Returns
 * the first item's error, if any. */
MPROC_API int mproc_executor_map(mproc_executor *ex, mproc_map_fn fn, const void *in, size_t n,
                                 size_t in_size, void *out, size_t out_size, int timeout_ms);

/* shutdown: no more submits; cancel_futures cancels the ones not started;
 * wait: waits for the running ones and for the workers to exit. */
MPROC_API int mproc_executor_shutdown(mproc_executor *ex, bool wait, bool cancel_futures);

/* ProcessPoolExecutor.terminate_workers() and kill_workers() (Python
 * 3.14): shuts the executor down (no wait, cancel_futures: the futures not
 * started are cancelled, MPROC_ECANCELLED), then stops every worker still
 * alive, with SIGTERM (a worker still alive 1 s later gets SIGKILL) or
 * SIGKILL, and waits for them to exit. The futures a worker held (running,
 * or queued to it and so past cancelling, as the items of Python's call
 * queue are) fail with MPROC_ESHUTDOWN (Python's BrokenProcessPool), and
 * submit gives
 * MPROC_ESHUTDOWN from then on; shutdown and free return at once. Errors:
 * MPROC_EINVAL, MPROC_ECHILD (outside the owner), MPROC_ENOTSUP (a thread
 * executor: Python's ThreadPoolExecutor has neither). */
MPROC_API int mproc_executor_terminate_workers(mproc_executor *ex);
MPROC_API int mproc_executor_kill_workers(mproc_executor *ex);

/* Frees the executor, shutting it down (wait, no cancel) if needed. */
MPROC_API void mproc_executor_free(mproc_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
