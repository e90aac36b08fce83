/* Pointers into the parent's memory in a child's argument bytes.
 *
 * A child of a new program image (spawn, forkserver) gets a copy of the
 * argument bytes, in an address space where the parent's heap and stack do
 * not exist: a pointer to them there is garbage, and the child reads
 * another program's memory or crashes. Pointers into the family arena are
 * fine (it is mapped at the same address everywhere), and so are the
 * handles the start translates (connections; a higher layer may add its
 * own). Under fork the child has a copy of everything: nothing to check.
 *
 * The check is cheap: one pass over the 8-byte-aligned words of the bytes,
 * each compared with two ranges: the brk heap ([heap] in /proc/self/maps,
 * read once per process until found, up to sbrk(0) now) and the live part
 * of the calling thread's stack (pthread_getattr_np, once per thread, from
 * the check's own frame up). It sees neither
 * blocks malloc puts in mmaps of their own (large ones, other threads'
 * arenas, a sanitizer's allocator) nor pointers to globals or string
 * literals (also garbage under spawn). A false positive would be an
 * integer that happens to equal a live heap or stack address: unlikely,
 * and opts.unchecked_args turns the check off for a process. */
#include "process/arg_check.h"
#include "process/passer.h"
#include "conn/conn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The start of the brk heap, or 0 while there is none (inherited by fork,
 * which keeps the address). */
static _Atomic uintptr_t heap_start;

static uintptr_t find_heap_start(void)
{
    uintptr_t lo = atomic_load_explicit(&heap_start, memory_order_relaxed);
    if (lo) return lo;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n < 8 || !strstr(line, "[heap]")) continue;
        unsigned long a;
        if (sscanf(line, "%lx-", &a) == 1) lo = (uintptr_t)a;
        break;
    }
    fclose(f);
    atomic_store_explicit(&heap_start, lo, memory_order_relaxed);
    return lo;
}

static _Thread_local uintptr_t stack_lo, stack_hi;

static void find_stack(uintptr_t *lo, uintptr_t *hi)
{
    if (!stack_hi) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                stack_lo = (uintptr_t)addr;
                stack_hi = (uintptr_t)addr + size;
            }
            pthread_attr_destroy(&a);
        }
    }
    *lo = stack_lo;
    *hi = stack_hi;
    /* Only the live part counts: the frames of the callers lie above this
     * one, and below it is nothing a pointer may still refer to. This also
     * narrows a false positive (an int beside stale padding bytes that
     * forms a stack address) to a few KiB instead of the stack's size. */
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (here > *lo && here < *hi) *lo = here;
}

/* A handle the start translates, not a pointer to refuse. */
static bool translated(const unsigned char *word_at, uintptr_t w)
{
    mproc__conn_hit hit;
    return mproc__conn_scan(word_at, sizeof w, &hit, 1) || mproc__args_is_handle(w);
}

int mproc__arg_check(const mproc_process *p)
{
    if (p->unchecked_args || p->arglen < sizeof(uintptr_t)) return 0;
    uintptr_t hlo = find_heap_start(), hhi = (uintptr_t)sbrk(0), slo, shi;
    find_stack(&slo, &shi);
    const unsigned char *b = p->arg;
    for (size_t off = 0; off + sizeof(uintptr_t) <= p->arglen; off += sizeof(uintptr_t)) {
        uintptr_t w;
        memcpy(&w, b + off, sizeof w);
        const char *where = hlo && w >= hlo && w < hhi ? "heap"
                            : w >= slo && w < shi      ? "stack"
                                                       : NULL;
        if (!where || translated(b + off, w)) continue;
        mproc_log(MPROC_LOG_WARNING,
                  "%s: the argument bytes hold at offset %zu a pointer into this process's %s "
                  "(%p), which means nothing in a child of a new program image: pass arena "
                  "memory (mproc_arena_alloc) or the data itself; opts.unchecked_args if it is "
                  "not a pointer",
                  p->name, off, where, (void *)w);
        return MPROC_EINVAL;
    }
    return 0;
}
