/* Sync internals shared by the primitives built on a lock. */
#ifndef MPROC_INTERNAL_SYNC_H
#define MPROC_INTERNAL_SYNC_H

#include "base/base.h"
#include "mproc/sync.h"

/* 0 if obj (size bytes) lies in the family arena or in memory declared
 * with mproc_sync_allow_memory; else MPROC_EINVAL and a warning naming
 * what ("mproc_lock", ...). Every mproc_X_init asks it first. */
int mproc__sync_placed(const void *obj, size_t size, const char *what);

/* True if l is an initialised Lock or RLock. */
bool mproc__lock_valid(const mproc_lock *l);

/* True if the calling thread holds l. */
bool mproc__lock_held(const mproc_lock *l);

/* True if a thread marked l as slept on (its release then makes a
 * wake-up call). */
bool mproc__lock_waiters(const mproc_lock *l);

/* Releases l completely (an RLock however deep), returning the depth to
 * restore in *depth. The caller must hold it. */
int mproc__lock_release_all(mproc_lock *l, unsigned *depth);

/* Acquires l again (waiting without a deadline) and restores the depth.
 * Returns 0 or MPROC_EOWNERDEAD (acquired from a dead owner). */
int mproc__lock_reacquire(mproc_lock *l, unsigned depth);

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* When set in a process, that process SIGKILLs itself in mproc_event_set
 * between its store and its wake-up (when someone sleeps), to exercise
 * what a setter killed there leaves behind. */
extern bool mproc__event_crash_before_wake;
#endif

/* mproc_event_wait that also gives up when keep() (if not NULL) turns
 * false, which it checks between slices of its sleep (at most 200 ms
 * apart), returning MPROC_ECONNRESET; a set() meanwhile is never missed.
 * For a manager's Event, whose waiting client may die. */
int mproc__event_wait_while(mproc_event *e, int timeout_ms, bool (*keep)(void));

/* mproc_barrier_wait that also gives up when keep() (if not NULL) turns
 * false, which it checks between slices of its sleep (at most 250 ms
 * apart): the generation then breaks, as on a timeout (the other parties
 * get MPROC_EBROKEN), and it returns MPROC_ECONNRESET. For a manager's
 * Barrier, whose waiting party's client may die. */
int mproc__barrier_wait_while(mproc_barrier *b, int timeout_ms, unsigned *index,
                              bool (*keep)(void));

#endif
