/* Arena internals for the other layers. */
#ifndef MPROC_INTERNAL_ARENA_H
#define MPROC_INTERNAL_ARENA_H

#include "base/base.h"
#include "mproc/arena.h"

/* Well-known anchors in the arena header, where a layer keeps the root of
 * its family-wide state (e.g. the named-shm tracker's table). */
typedef enum mproc__arena_slot {
    MPROC__SLOT_SHM_TRACKER = 0,
    MPROC__SLOT_MODULES = 1,      /* arena/fnref.h */
    MPROC__SLOT_FAMILY_TOKEN = 2, /* a random number naming the family */
    MPROC__SLOT_COUNT = 16,
} mproc__arena_slot;

/* The slot's value (0 when unset). */
uintptr_t mproc__arena_slot_get(mproc__arena_slot slot);
/* Sets the slot if it still holds `expected`; true on success. */
bool mproc__arena_slot_cas(mproc__arena_slot slot, uintptr_t expected, uintptr_t desired);

/* For the _new functions of arena objects: p was allocated with
 * mproc_arena_alloc and init_rc is what initialising it returned. On 0 it
 * becomes *out; otherwise it is freed and init_rc returned. */
static inline int mproc__shm_adopt(void **out, void *p, int init_rc)
{
    if (init_rc) {
        mproc_arena_free(p);
        return init_rc;
    }
    *out = p;
    return 0;
}

/* Returns the calling thread's cached blocks to the shared free stacks
 * (before a child exits). */
void mproc__arena_thread_flush(void);

/* The arena's memfd (for start methods that must pass it on), or -1.
 * Every process of the family must keep this one open file description
 * (inherit it or receive it with SCM_RIGHTS, never reopen the memfd): the
 * named-shm tracker learns that the family has gone from an OFD lock on it.
 * Byte 0 of the memfd is reserved for that lock
 * (MPROC__SHM_FAMILY_LOCK_BYTE); other file locks must use other bytes. */
int mproc__arena_fd(void);

/* In a child of a new program image (spawn, forkserver), before anything
 * else touches the arena: maps the family's arena memfd `fd` (inherited, so
 * the same open file description) at `base`. Errors: MPROC_EADDRINUSE (the
 * address is taken in this image), MPROC_EPROTO (not an arena),
 * MPROC_EBUSY (this process already has an arena). */
int mproc__arena_adopt(int fd, uintptr_t base, size_t size);

/* Tests only: the size class an allocation of n bytes uses, and the block
 * size of a class. */
unsigned mproc__arena_class_of(size_t n);
size_t mproc__arena_class_size(unsigned cls);

#endif
