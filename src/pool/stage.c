/* The staging blocks of copy-mode maps (pool/pool.h,
 * mproc__pool_stage_take); map.c tells how a map uses one. */
#include "platform/platform.h"
#include "pool/pool.h"
#include "process/process.h"
#include "mproc/arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

/* The staging cache: one block per process, kept from map to map (and
 * pool to pool) so that its pages stay mapped. Taken and given back with
 * one atomic exchange, so that a fork child (which sees the parent's
 * block, owned by another pid) simply ignores it. The process frees it when
 * it exits: the family arena outlives the process. */
typedef struct stage_hdr {
    pid_t owner;
    size_t cap;
} stage_hdr;
#define STAGE_HDR 64
static _Atomic(stage_hdr *) stage_cache;

static void stage_drop(stage_hdr *h)
{
    if (h && h->owner == getpid()) mproc_arena_free(h);
}

#ifdef MPROC_TESTING
size_t mproc__pool_stage_limit = SIZE_MAX;
#endif

void *mproc__pool_stage_take(size_t bytes)
{
#ifdef MPROC_TESTING
    if (bytes > mproc__pool_stage_limit) return NULL;
#endif
    stage_hdr *h = atomic_exchange(&stage_cache, NULL);
    if (h && (h->owner != getpid() || h->cap < bytes)) {
        stage_drop(h);
        h = NULL;
    }
    if (!h) {
        void *p;
        if (bytes > SIZE_MAX - STAGE_HDR || mproc_arena_alloc(&p, STAGE_HDR + bytes) != 0)
            return NULL;
        h = p;
        *h = (stage_hdr){.owner = getpid(), .cap = bytes};
        mproc__populate_pages(h, STAGE_HDR + bytes);
    }
    return (char *)h + STAGE_HDR;
}

static void stage_release(void)
{
    stage_drop(atomic_exchange(&stage_cache, NULL));
}

static void register_release(void)
{
    mproc__on_process_exit(stage_release);
}

void mproc__pool_stage_give(void *stage)
{
    stage_hdr *h = (stage_hdr *)(void *)((char *)stage - STAGE_HDR);
    if (h->cap > POOL_STAGE_KEEP) {
        mproc_arena_free(h);
        return;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_release);
    stage_drop(atomic_exchange(&stage_cache, h)); /* two maps at once: the last one's stays */
}
