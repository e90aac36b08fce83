/* mproc — the family arena and its process-shared allocator (the twin of
 * multiprocessing.heap).
 *
 * The first process of a family that initialises mproc creates one large,
 * sparse, memfd-backed shared mapping at a fixed virtual address; every
 * process of the family (fork, spawn and forkserver
 * children) maps it at the same address. Every shared object mproc makes
 * lives in it, so a pointer to one is a plain C pointer, valid in every
 * process of the family, and a struct of such pointers can be handed to a
 * child as bytes. Memory is committed only when touched; large blocks give
 * their pages back when freed. Nothing is left behind when the family exits,
 * even after SIGKILL (the memfd has no name).
 *
 * Address and size: the first candidate address that maps wins
 * (0x110000000000, then 0x5000000000, which also suit ASan and TSan
 * builds); MPROC_ARENA_ADDR (hex or decimal) and MPROC_ARENA_SIZE (bytes,
 * with an optional K/M/G suffix) in the environment override. Default size:
 * 16 GiB of address space.
 *
 * All calls are safe from several threads and processes at once. A process
 * killed in the middle of an allocation or a free can leak that one block,
 * never corrupt the allocator or block others.
 */
#ifndef MPROC_ARENA_H
#define MPROC_ARENA_H

#include "base.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Options for mproc_arena_init; zero means the default (or the environment). */
typedef struct mproc_arena_opts {
    uintptr_t addr; /* fixed address; 0: MPROC_ARENA_ADDR or the candidates */
    size_t size;    /* bytes of address space; 0: MPROC_ARENA_SIZE or 16 GiB */
} mproc_arena_opts;

/* Creates (in a process with no arena yet) or checks the family arena.
 * The first mproc call of a process creates it (so that every child shares
 * it); to choose the address or size, call this before any other mproc
 * call. A later call returns 0, or MPROC_EBUSY when its options differ from
 * the arena that exists.
 * Errors: MPROC_EBUSY, MPROC_EADDRINUSE (no candidate address could be mapped; the
 * message log says which were tried), MPROC_EINVAL (bad options or
 * environment values), MPROC_ENOMEM, MPROC_EMFILE. */
MPROC_API int mproc_arena_init(const mproc_arena_opts *opts);

/* Allocates size bytes (16-byte aligned) in the arena. *out is valid in
 * every process of the family. size 0 gives a unique minimal block.
 * Errors: MPROC_EINVAL (NULL out), MPROC_ENOMEM (the arena is full or size
 * is too large), and the errors of mproc_arena_init. */
MPROC_API int mproc_arena_alloc(void **out, size_t size);

/* As mproc_arena_alloc, zero-filled. */
MPROC_API int mproc_arena_calloc(void **out, size_t size);

/* As mproc_arena_alloc with a power-of-two alignment up to 4096.
 * Errors: MPROC_EINVAL (bad alignment), as mproc_arena_alloc. */
MPROC_API int mproc_arena_alloc_aligned(void **out, size_t size, size_t align);

/* Frees a block from any process of the family. NULL is a no-op.
 * Errors: MPROC_EINVAL (not a block of the arena, or already freed).
 * It returns an int, unlike the other _free calls: a block is often freed
 * by another process than the one that allocated it, and a double free
 * across processes is a bug the arena detects; it is reported, neither
 * ignored nor turned into an abort. */
MPROC_API int mproc_arena_free(void *p);

/* The usable size of an arena block (>= the size asked for), or 0 for a
 * pointer that is not an allocated block. */
MPROC_API size_t mproc_arena_usable_size(const void *p);

/* True if p points into the family arena of this process. */
MPROC_API bool mproc_arena_contains(const void *p);

/* A snapshot of the arena. */
typedef struct mproc_arena_info {
    uintptr_t base;   /* the fixed address */
    size_t size;      /* bytes of address space */
    size_t carved;    /* bytes handed out from the arena so far (high mark) */
    size_t allocated; /* bytes in live blocks (approximate under concurrency) */
} mproc_arena_info;

/* Errors: MPROC_EINVAL (NULL), the errors of mproc_arena_init. */
MPROC_API int mproc_arena_info_get(mproc_arena_info *out);

/* ---- deprecated names ---------------------------------------------------
 * The names of mproc 0.1, kept for one release: arena blocks were
 * mproc_shm_*, a prefix now left to named shared memory (mproc/shm.h). */

MPROC_DEPRECATED("use mproc_arena_alloc")
static inline int mproc_shm_alloc(void **out, size_t size)
{
    return mproc_arena_alloc(out, size);
}
MPROC_DEPRECATED("use mproc_arena_calloc")
static inline int mproc_shm_calloc(void **out, size_t size)
{
    return mproc_arena_calloc(out, size);
}
MPROC_DEPRECATED("use mproc_arena_alloc_aligned")
static inline int mproc_shm_alloc_aligned(void **out, size_t size, size_t align)
{
    return mproc_arena_alloc_aligned(out, size, align);
}
MPROC_DEPRECATED("use mproc_arena_free")
static inline int mproc_shm_free(void *p)
{
    return mproc_arena_free(p);
}
MPROC_DEPRECATED("use mproc_arena_usable_size")
static inline size_t mproc_shm_usable_size(const void *p)
{
    return mproc_arena_usable_size(p);
}
MPROC_DEPRECATED("use mproc_arena_contains")
static inline bool mproc_shm_contains(const void *p)
{
    return mproc_arena_contains(p);
}

#ifdef __cplusplus
}
#endif
#endif
