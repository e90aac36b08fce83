/* Where a sync object may live: the family arena, or memory the program
 * declared shared with mproc_sync_allow_memory. Every mproc_X_init asks
 * here first; an object elsewhere (a stack or heap variable, a global)
 * would be copied by fork, so that each process locks its own copy, and
 * means nothing to a spawn child: refused, with a warning in the log.
 *
 * The declared ranges are a small table of atomics (lock-free readers; a
 * declaration is rare), process-local: a fork child inherits them, a new
 * program image starts without. */
#include "arena/arena.h"
#include "sync/sync.h"

#include <stdatomic.h>
#include <stdint.h>

#define MAX_RANGES 16

static struct {
    _Atomic uintptr_t lo; /* 0: a free slot */
    _Atomic uintptr_t hi; /* one past the end; 0 while the slot is being filled */
} ranges[MAX_RANGES];

int mproc_sync_allow_memory(const void *addr, size_t len)
{
    uintptr_t lo = (uintptr_t)addr;
    if (!addr || !len || len > UINTPTR_MAX - lo) return MPROC_EINVAL;
    for (int i = 0; i < MAX_RANGES; i++) {
        uintptr_t free_slot = 0;
        if (atomic_compare_exchange_strong(&ranges[i].lo, &free_slot, lo)) {
            atomic_store(&ranges[i].hi, lo + len);
            return 0;
        }
    }
    return MPROC_ENOMEM;
}

int mproc_sync_disallow_memory(const void *addr)
{
    uintptr_t lo = (uintptr_t)addr;
    if (!addr) return MPROC_ENOENT;
    for (int i = 0; i < MAX_RANGES; i++) {
        if (atomic_load(&ranges[i].lo) != lo || !atomic_load(&ranges[i].hi)) continue;
        atomic_store(&ranges[i].hi, 0);
        atomic_store(&ranges[i].lo, 0);
        return 0;
    }
    return MPROC_ENOENT;
}

static bool declared(uintptr_t lo, uintptr_t hi)
{
    for (int i = 0; i < MAX_RANGES; i++) {
        uintptr_t rlo = atomic_load(&ranges[i].lo), rhi = atomic_load(&ranges[i].hi);
        if (rlo && rhi && lo >= rlo && hi <= rhi) return true;
    }
    return false;
}

int mproc__sync_placed(const void *obj, size_t size, const char *what)
{
    if (!obj) return MPROC_EINVAL;
    const char *p = obj;
    if (mproc_arena_contains(p) && mproc_arena_contains(p + size - 1)) return 0;
    if (declared((uintptr_t)p, (uintptr_t)p + size)) return 0;
    mproc_log(MPROC_LOG_WARNING,
              "%s at %p: not in the family arena: a child would not share it (use %s_new, "
              "place it in arena memory, or declare the memory with mproc_sync_allow_memory)",
              what, obj, what);
    return MPROC_EINVAL;
}
