/* Sync internals shared by the primitives built on a lock. */
#ifndef MPROC_INTERNAL_SYNC_H
#define MPROC_INTERNAL_SYNC_H

#include "internal/base.h"
#include "mproc/sync.h"

/* True if l is an initialised Lock or RLock. */
bool mproc__lock_valid(const mproc_lock *l);

/* True if the calling thread holds l. */
bool mproc__lock_held(const mproc_lock *l);

/* Releases l completely (an RLock however deep), returning the depth to
 * restore in *depth. The caller must hold it. */
int mproc__lock_release_all(mproc_lock *l, unsigned *depth);

/* Acquires l again (waiting without a deadline) and restores the depth.
 * Returns 0 or MPROC_EOWNERDEAD (acquired from a dead owner). */
int mproc__lock_reacquire(mproc_lock *l, unsigned depth);

#endif
