/* Condition internals exposed to the tests. */
#ifndef MPROC_INTERNAL_COND_H
#define MPROC_INTERNAL_COND_H

#include "base/base.h"
#include "mproc/sync.h"

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* Number of nodes in the condition's waiter list (live waiters, and
 * waiters that died and were not yet dropped). The caller must hold the
 * condition's lock; -1 for an invalid condition. */
int mproc__cond_n_waiters(mproc_cond *c);

/* Tests only: when set in a process, that process SIGKILLs itself at the
 * named point in the middle of a waiter-list update, to exercise the
 * repair of a list left half-updated. 0 (the default) never does. */
typedef enum mproc__cond_crash_point {
    MPROC__COND_CRASH_NONE = 0,
    MPROC__COND_CRASH_APPEND_LINKED,      /* wait: node linked, tail not yet updated */
    MPROC__COND_CRASH_NOTIFY_MARKED,      /* notify: waiter marked and woken, not unlinked */
    MPROC__COND_CRASH_UNLINKED,           /* unlink: predecessor relinked, tail not updated */
    MPROC__COND_CRASH_NOTIFY_BEFORE_WAKE, /* notify: waiter marked, not yet woken */
} mproc__cond_crash_point;

extern mproc__cond_crash_point mproc__cond_crash_at;
#endif

#endif
