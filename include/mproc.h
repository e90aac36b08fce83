/* mproc — Python's multiprocessing for C. The umbrella header: include this
 * one. Each layer's API is documented in its own header under mproc/. */
#ifndef MPROC_H
#define MPROC_H

#include "mproc/base.h"
#include "mproc/context.h"
#include "mproc/future.h"
#include "mproc/pool.h"
#include "mproc/arena.h"
#include "mproc/conn.h"
#include "mproc/manager.h"
#include "mproc/listener.h"
#include "mproc/process.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "mproc/sync.h"
#include "mproc/value.h"
#include "mproc/wait.h"

/* MPROC_FREE(a, b, ...): frees up to 8 objects of the library in one
 * statement, each with the _free call of its type, chosen at compile time
 * (C11 _Generic): values, queues, pools, executors, futures, imaps,
 * as_completed iterators, connections, listeners, managers, proxies,
 * shared blocks and the sync objects. NULL is a no-op for each, as for
 * their _free calls. A type it does not know fails to compile. A process
 * is not among them: mproc_process_free can refuse (a running child), so
 * it is freed on its own, or by mproc_process_join_free. */
#ifndef __cplusplus /* _Generic is C11's */
#define MPROC_FREE(...)                                                                            \
    do {                                                                                           \
        MPROC__FREE_N(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)(__VA_ARGS__)                          \
    } while (0)

#define MPROC__FREE1(x)                                                                            \
    _Generic((x),                                                                                  \
        mproc_value *: mproc_value_free,                                                           \
        mproc_queue *: mproc_queue_free,                                                           \
        mproc_pool *: mproc_pool_free,                                                             \
        mproc_executor *: mproc_executor_free,                                                     \
        mproc_future *: mproc_future_free,                                                         \
        mproc_imap *: mproc_imap_free,                                                             \
        mproc_as_completed *: mproc_as_completed_free,                                             \
        mproc_conn *: mproc_conn_free,                                                             \
        mproc_listener *: mproc_listener_free,                                                     \
        mproc_manager *: mproc_manager_free,                                                       \
        mproc_proxy *: mproc_proxy_free,                                                           \
        mproc_shared *: mproc_shared_free,                                                         \
        mproc_lock *: mproc_lock_free,                                                             \
        mproc_sem *: mproc_sem_free,                                                               \
        mproc_cond *: mproc_cond_free,                                                             \
        mproc_event *: mproc_event_free,                                                           \
        mproc_barrier *: mproc_barrier_free)(x);
#define MPROC__FREE_N(a, b, c, d, e, f, g, h, n, ...) MPROC__FREE_##n
#define MPROC__FREE_1(a)                              MPROC__FREE1(a)
#define MPROC__FREE_2(a, ...)                         MPROC__FREE1(a) MPROC__FREE_1(__VA_ARGS__)
#define MPROC__FREE_3(a, ...)                         MPROC__FREE1(a) MPROC__FREE_2(__VA_ARGS__)
#define MPROC__FREE_4(a, ...)                         MPROC__FREE1(a) MPROC__FREE_3(__VA_ARGS__)
#define MPROC__FREE_5(a, ...)                         MPROC__FREE1(a) MPROC__FREE_4(__VA_ARGS__)
#define MPROC__FREE_6(a, ...)                         MPROC__FREE1(a) MPROC__FREE_5(__VA_ARGS__)
#define MPROC__FREE_7(a, ...)                         MPROC__FREE1(a) MPROC__FREE_6(__VA_ARGS__)
#define MPROC__FREE_8(a, ...)                         MPROC__FREE1(a) MPROC__FREE_7(__VA_ARGS__)
#endif

#endif
