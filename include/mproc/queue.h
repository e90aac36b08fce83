/* mproc — queues (the twins of multiprocessing.Queue, SimpleQueue and
 * JoinableQueue).
 *
 * A queue lives in the family arena: pass its pointer to children as bytes.
 * It carries whole messages (byte strings, or values through put_value /
 * get_value) between any number of producer and consumer processes and
 * threads, in FIFO order (one order for all producers).
 *
 * There is no feeder thread. put copies the message into the queue before
 * it returns, so a process that put items and exits never blocks and never
 * loses what put acknowledged. An unbounded queue grows in the arena, so
 * its put never blocks either: the "join a child before draining its
 * queue" deadlock of Python does not exist here.
 *
 * Faults: a producer or consumer killed in the middle of put or get leaves
 * the queue consistent. A message is visible only once wholly written; a
 * consumer killed before it removed a message leaves it for the next one;
 * the lock a dead process held is taken over by the next caller (after a
 * short delay), never waited on forever.
 *
 * Timeouts follow base.h: MPROC_FOREVER blocks, 0 tries once (Python's
 * put_nowait / get_nowait), N ms then MPROC_ETIMEDOUT.
 */
#ifndef MPROC_QUEUE_H
#define MPROC_QUEUE_H

#include "base.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A queue (opaque). */
typedef struct mproc_queue mproc_queue;
struct mproc_value;

/* Largest message: 1 GiB. */
#define MPROC_QUEUE_MAX_MESSAGE ((size_t)1 << 30)

/* Options for mproc_queue_new. */
typedef struct mproc_queue_opts {
    /* Most messages in the queue at once (Python's maxsize); 0: no limit. */
    size_t maxsize;
    /* Most message bytes in the queue at once; 0: no limit. A message
     * larger than this on its own still goes in when the queue is empty.
     * After a process was killed mid-put or mid-get this bound may let one
     * message more in (never fewer). */
    size_t max_bytes;
    /* A JoinableQueue: put counts an unfinished task, task_done ends one,
     * join waits for none to be left. */
    bool joinable;
} mproc_queue_opts;

/* Creates a queue in the arena. NULL opts: unbounded, not joinable.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_queue_new(mproc_queue **out, const mproc_queue_opts *opts);
/* Python's SimpleQueue and JoinableQueue(maxsize). */
MPROC_API int mproc_simple_queue_new(mproc_queue **out);
MPROC_API int mproc_joinable_queue_new(mproc_queue **out, size_t maxsize);

/* Frees the queue and every message still in it. No process may use it
 * any more. NULL is a no-op. */
MPROC_API void mproc_queue_free(mproc_queue *q);

/* Puts a copy of buf[0..len). Waits while the queue is full (maxsize or
 * max_bytes). Errors: MPROC_ETIMEDOUT (still full), MPROC_ECLOSED,
 * MPROC_EMSGSIZE (len > MPROC_QUEUE_MAX_MESSAGE), MPROC_ENOMEM (the arena
 * is full), MPROC_EINVAL. */
MPROC_API int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms);

/* Takes the oldest message into a new malloc'd buffer (*buf, free() it;
 * never NULL on success) of *len bytes. Errors: MPROC_ETIMEDOUT (empty),
 * MPROC_ECLOSED (closed and drained), MPROC_ENOMEM, MPROC_EINVAL. */
MPROC_API int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms);

/* Takes the oldest message into buf[0..cap); *len is its size. A message
 * larger than cap stays in the queue: MPROC_ETOOSMALL with *len set to the
 * size needed. Errors: as mproc_queue_get, plus MPROC_ETOOSMALL. */
MPROC_API int mproc_queue_get_into(mproc_queue *q, void *buf, size_t cap, size_t *len,
                                   int timeout_ms);

/* put / get of a value, CBOR-encoded (see value.h). get_value decodes with
 * the default limits; *out is freed with mproc_value_free. Errors: as put
 * and get, and the value codec's (MPROC_EPROTO: the message was not a
 * value; it is consumed. MPROC_ENOMEM: no memory to decode it; it stays in
 * the queue). */
MPROC_API int mproc_queue_put_value(mproc_queue *q, const struct mproc_value *v, int timeout_ms);
MPROC_API int mproc_queue_get_value(mproc_queue *q, struct mproc_value **out, int timeout_ms);
/* Puts the value mproc_value_pack(fmt, ...) builds (Python's
 * `q.put((1, 'x'))` is `mproc_queue_putf(q, MPROC_FOREVER, "[is]", 1,
 * "x")`). Errors: pack's (a bad format: MPROC_EINVAL, nothing put), then
 * put_value's. */
MPROC_API int mproc_queue_putf(mproc_queue *q, int timeout_ms, const char *fmt, ...);
/* Gets one value and reads it through fmt, as mproc_value_unpack:
 * `int n; mproc_queue_getf(q, MPROC_FOREVER, "i", &n)`. The value is
 * freed before the call returns, so fmt may not hold the codes that point
 * into it (s, s#, y#, o outside a map key): use O (a copy), or
 * mproc_queue_get_value. Errors: MPROC_EINVAL for a bad or borrowing
 * format (found before anything is taken); get_value's; then unpack's
 * (MPROC_EINVAL: another kind, MPROC_ERANGE, MPROC_ENOENT): the message
 * has been taken and is dropped. */
MPROC_API int mproc_queue_getf(mproc_queue *q, int timeout_ms, const char *fmt, ...);
/* The same two with a va_list (read through a copy). */
MPROC_API int mproc_queue_vputf(mproc_queue *q, int timeout_ms, const char *fmt, va_list ap);
MPROC_API int mproc_queue_vgetf(mproc_queue *q, int timeout_ms, const char *fmt, va_list ap);

/* Number of messages in the queue now (a snapshot, as Python's qsize). */
MPROC_API size_t mproc_queue_qsize(const mproc_queue *q);
MPROC_API bool mproc_queue_empty(const mproc_queue *q);
/* True when a put would wait (maxsize reached). */
MPROC_API bool mproc_queue_full(const mproc_queue *q);

/* Closes the queue for every process: puts fail with MPROC_ECLOSED at
 * once; gets drain what is there, then fail with MPROC_ECLOSED; waiters are
 * woken. A second close is harmless. */
MPROC_API void mproc_queue_close(mproc_queue *q);
MPROC_API bool mproc_queue_closed(const mproc_queue *q);

/* JoinableQueue: marks one task of a message got earlier as done.
 * Errors: MPROC_EBADSTATE (called more times than items were put, or not
 * a joinable queue), MPROC_EINVAL. */
MPROC_API int mproc_queue_task_done(mproc_queue *q);
/* Waits until every item put has been marked done. Errors:
 * MPROC_ETIMEDOUT, MPROC_EBADSTATE (not joinable), MPROC_EINVAL. */
MPROC_API int mproc_queue_join(mproc_queue *q, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
