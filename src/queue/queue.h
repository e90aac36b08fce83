/* Queue internals for mproc_wait. */
#ifndef MPROC_INTERNAL_QUEUE_H
#define MPROC_INTERNAL_QUEUE_H

#include "base/base.h"
#include "mproc/queue.h"

#include <stdatomic.h>
#include <stdint.h>

bool mproc__queue_valid(const mproc_queue *q);
/* True when a get would not wait: a message is there, or it is closed. */
bool mproc__queue_ready(const mproc_queue *q);
/* The futex word a waiter for messages sleeps on, and its current value. */
_Atomic uint32_t *mproc__queue_wait_word(mproc_queue *q, uint32_t *seen);

/* For queues whose waiters sleep often and share the CPUs with more
 * threads than there are (a pool's inboxes and results): waiters spin only
 * spin_ns before they sleep (spinning would take the CPU from the thread
 * that is to wake them), and the locks never bias to one thread (see
 * sync/tid_lock.h: a biased writer makes every sleep pay a system-wide
 * barrier). Call before the queue is used. */
void mproc__queue_for_sleepers(mproc_queue *q, uint32_t spin_ns);

/* Sets how long the queue's waiters spin before they sleep (see
 * SPIN_NS), at any time: for a queue whose waiter knows better, from
 * moment to moment (manager/manager.h). */
void mproc__queue_set_spin(mproc_queue *q, uint32_t spin_ns);

/* For a caller that numbers the messages it puts, from 0 (a pool numbers
 * a worker's inbox messages): with `puts` of them put and no other
 * producer, how many are still in the queue (not yet taken). The count is
 * modulo 2^31, as the queue's own. */
uint32_t mproc__queue_untaken(const mproc_queue *q, uint64_t puts);

/* With the messages numbered as above, whether message n has been taken
 * (more than n gets), judged modulo 2^31: n must be within 2^30 of the
 * queue's count of gets. */
bool mproc__queue_taken(const mproc_queue *q, uint64_t n);

/* Registers (+1) or removes (-1) an mproc_wait caller about to sleep on
 * the queue's wait word, so that puts wake it. */
void mproc__queue_poller(mproc_queue *q, int delta);

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* When set in a process, that process SIGKILLs itself at the
 * named point, after a commit and before the wake-up it owes the
 * sleepers (of a put, get or task_done: only when there are some), to
 * exercise what a waker killed there leaves behind. 0 (the default) never
 * does. */
typedef enum mproc__queue_crash_point {
    MPROC__QUEUE_CRASH_NONE = 0,
    MPROC__QUEUE_CRASH_PUT_WAKE,       /* put committed; getters or pollers sleep */
    MPROC__QUEUE_CRASH_GET_WAKE,       /* get committed; putters sleep */
    MPROC__QUEUE_CRASH_TASK_DONE_WAKE, /* task_done counted; joiners sleep */
    MPROC__QUEUE_CRASH_CLOSE_WAKE,     /* close: closed, nobody woken yet */
} mproc__queue_crash_point;

extern mproc__queue_crash_point mproc__queue_crash_at;
#endif

#endif
