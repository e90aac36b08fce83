/* A light lock for short critical sections whose holder may die: the
 * holder's thread id sits in the futex word. Taking it is one CAS and
 * dropping it one exchange (a robust pthread mutex costs three times more,
 * for its robust-list bookkeeping). A waiter that has waited TLOCK_SLICE
 * checks that the holder thread still exists (a zombie counts as gone) and,
 * if it does not, takes the lock over and reports MPROC_EOWNERDEAD. Limit: if the dead holder's
 * thread id were reused by a new thread within that slice, the waiter
 * would keep waiting while that thread lives (thread ids are reused only
 * after the kernel's pid space wraps around). */
#ifndef MPROC_INTERNAL_TLOCK_H
#define MPROC_INTERNAL_TLOCK_H

#include "internal/base.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct mproc__tlock {
    _Atomic uint32_t word; /* 0 free, else holder tid | TLOCK_WAITERS */
} mproc__tlock;

/* 0, MPROC_EOWNERDEAD (taken over from a dead holder: repair, then use),
 * MPROC_ETIMEDOUT. */
int mproc__tlock_acquire(mproc__tlock *l, const mproc__deadline *dl);
void mproc__tlock_release(mproc__tlock *l);

#endif
