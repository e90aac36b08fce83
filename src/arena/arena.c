/* The family arena: one memfd mapping at a fixed address, and a lock-free
 * size-class allocator in it.
 *
 * Layout: a header page (magic, size, the carve pointer, one free stack per
 * size class, layer anchors), then blocks. A block is a 16-byte header
 * {class, state, next} followed by the user's bytes. Blocks are carved from
 * the arena with a CAS on the carve pointer and, once freed, kept on their
 * class's free stack (a Treiber stack whose head packs an offset and an ABA
 * tag into 64 bits). Every step is a single CAS, so a process killed at any
 * point leaves the allocator consistent; at worst the block it was
 * handling is lost. Freed blocks of 4 MiB and more give their pages back
 * before they are pushed.
 *
 * Once the whole arena is carved, a class whose stack is empty is served
 * by cutting up a free block of the smallest larger class that has one:
 * the front becomes the block, the rest goes back to the free stacks in
 * the largest class-sized pieces it holds. So memory freed in large blocks
 * serves small allocations again after the arena was full (blocks are
 * never merged back: a large allocation needs a free block of its class,
 * or one larger, or uncarved space).
 *
 * Each thread keeps up to CACHE_MAX free blocks of each small class (up to
 * 512 bytes) for itself, so most allocations and frees touch no shared
 * line. The cache is flushed when the thread ends and when the process
 * exits (an mproc child's end, or exit()); a fork child forgets the cache
 * it inherited (those blocks are its parent's); a process that is killed
 * loses what it had cached (at most a few tens of KiB). "allocated" counts
 * the bytes not on the shared free stacks: live blocks plus thread
 * caches. */
#include "arena/arena.h"
#include "base/inject.h"
#include "base/log.h"
#include "base/module.h"
#include "platform/platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA_MAGIC    0x3172616370726d6dULL /* "mmprcar1" */
#define DEFAULT_SIZE   ((size_t)16 << 30)
#define HDR_BYTES      4096
#define BLOCK_HDR      16
#define NCLASS         160
#define STATE_ALLOC    0xa110cu
#define STATE_FREE     0xf1eeu
#define STATE_SHIM     0x5b1au /* header of an aligned block's padding */
#define RELEASE_MIN    ((size_t)4 << 20)
#define OFF_BITS       36 /* offsets in 16-byte units: arenas up to 1 TiB */
#define OFF_MASK       ((1ULL << OFF_BITS) - 1)
#define CACHED_CLASSES 15 /* classes 0..14: blocks up to 512 bytes */
#define CACHE_MAX      16

typedef struct block_hdr {
    uint32_t cls; /* size class, or the shim's distance in 16-byte units */
    _Atomic uint32_t state;
    /* Packed free-stack link while free. Atomic (relaxed: plain moves) as a
     * pop may read it from a block that another thread pops, uses and
     * pushes again meanwhile; the tag of the head's CAS then refuses the
     * stale value. */
    _Atomic uint64_t next;
} block_hdr;

static inline uint64_t next_of(const block_hdr *b)
{
    return atomic_load_explicit(&b->next, memory_order_relaxed);
}

static inline void set_next(block_hdr *b, uint64_t v)
{
    atomic_store_explicit(&b->next, v, memory_order_relaxed);
}

typedef struct arena_hdr {
    uint64_t magic;
    uint64_t size;
    _Atomic uint64_t carve; /* offset of the first byte never handed out */
    _Atomic uint64_t allocated;
    _Atomic uintptr_t slots[MPROC__SLOT_COUNT];
    _Atomic uint64_t heads[NCLASS];
} arena_hdr;

_Static_assert(sizeof(arena_hdr) <= HDR_BYTES, "arena header fits its page");
_Static_assert(sizeof(block_hdr) == BLOCK_HDR, "block header is 16 bytes");

static arena_hdr *arena; /* NULL until mapped */
static int arena_fd = -1;
static int arena_err;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static mproc_arena_opts init_opts;

/* ---- size classes -------------------------------------------------------
 * Block sizes (header included): 32, 48, ... 128 in steps of 16, then four
 * steps per power of two: 160, 192, 224, 256, 320, ... */

size_t mproc__arena_class_size(unsigned cls)
{
    if (cls < 7) return (size_t)(cls + 2) * 16;
    unsigned k = (cls - 7) / 4, step = (cls - 7) % 4;
    size_t base = (size_t)128 << k;
    return base + (base / 4) * (step + 1);
}

unsigned mproc__arena_class_of(size_t n)
{
    size_t need = n + BLOCK_HDR;
    if (need <= 128) return need <= 32 ? 0 : (unsigned)((need + 15) / 16 - 2);
    unsigned k = 63 - (unsigned)__builtin_clzll((unsigned long long)(need - 1)); /* 2^k < need */
    size_t base = (size_t)1 << k;                                                /* >= 128 */
    unsigned step = (unsigned)((need - base + base / 4 - 1) / (base / 4)) - 1;   /* 0..3 */
    return 7 + (k - 7) * 4 + step;
}

/* ---- mapping ------------------------------------------------------------ */

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift) end++;
    if (end == s || *end || v == 0 || v > (1ULL << (OFF_BITS + 4 - shift))) return MPROC_EINVAL;
    *out = (size_t)(v << shift);
    return 0;
}

static int map_at(uintptr_t addr, size_t size)
{
    void *p;
    int rc = mproc__map_shared_at(addr, size, arena_fd, &p);
    if (!rc) arena = p;
    return rc;
}

/* A child of another program image maps its family's arena. */
static int adopt_fd = -1;
static uintptr_t adopt_base;
static size_t adopt_size;

static void arena_adopt_once(void)
{
    arena_fd = adopt_fd;
    arena_err = map_at(adopt_base, adopt_size);
    if (arena_err == MPROC_EEXIST || arena_err == MPROC_EPERM) arena_err = MPROC_EADDRINUSE;
    if (!arena_err && (arena->magic != ARENA_MAGIC || arena->size != adopt_size)) {
        munmap(arena, adopt_size);
        arena = NULL;
        arena_err = MPROC_EPROTO;
    }
    if (arena_err) arena_fd = -1;
}

int mproc__arena_adopt(int fd, uintptr_t base, size_t size)
{
    adopt_fd = fd;
    adopt_base = base;
    adopt_size = size;
    pthread_once(&arena_once, arena_adopt_once);
    return arena ? 0 : arena_err ? arena_err : MPROC_EBUSY;
}

static void arena_create(void)
{
    if (adopt_fd >= 0) {
        arena_adopt_once();
        return;
    }
    size_t size = init_opts.size;
    uintptr_t want = init_opts.addr;
    const char *es = mproc__setting(MPROC__SET_ARENA_SIZE);
    const char *ea = mproc__setting(MPROC__SET_ARENA_ADDR);
    if (!size && es && (arena_err = parse_size(es, &size))) return;
    if (!want && ea) {
        char *end;
        want = (uintptr_t)strtoull(ea, &end, 0);
        if (*end || want == 0 || want % 4096) {
            arena_err = MPROC_EINVAL;
            return;
        }
    }
    if (!size) size = DEFAULT_SIZE;
    size = (size + 4095) & ~(size_t)4095;
    if (size < 2 * HDR_BYTES) size = 2 * HDR_BYTES;
    int fd = mproc__memfd("mproc-arena", size);
    if (fd < 0) {
        arena_err = fd;
        return;
    }
    arena_fd = fd;
#if MPROC__TSAN /* TSan aborts on an address outside its application ranges */
    static const uintptr_t candidates[] = {0x5000000000ULL, 0x110000000000ULL};
#else
    static const uintptr_t candidates[] = {0x110000000000ULL, 0x5000000000ULL};
#endif
    int rc = MPROC_EADDRINUSE;
    if (want)
        rc = map_at(want, size);
    else
        for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && rc; i++)
            rc = map_at(candidates[i], size);
    if (rc) {
        mproc_log(MPROC_LOG_ERROR, "cannot map the family arena (%zu bytes) at %s: %s", size,
                  want ? "MPROC_ARENA_ADDR" : "0x110000000000 or 0x5000000000", mproc_strerror(rc));
        close(fd);
        arena_fd = -1;
        arena_err = rc == MPROC_EEXIST || rc == MPROC_EPERM ? MPROC_EADDRINUSE : rc;
        return;
    }
    arena->magic = ARENA_MAGIC;
    arena->size = size;
    atomic_store(&arena->carve, HDR_BYTES);
    MPROC__DEBUG("family arena: %zu bytes at %p", size, (void *)arena);
}

int mproc_arena_init(const mproc_arena_opts *opts)
{
    if (opts && !arena) init_opts = *opts;
    pthread_once(&arena_once, arena_create);
    if (!arena) return arena_err;
    if (opts && ((opts->addr && opts->addr != (uintptr_t)arena) ||
                 (opts->size && ((opts->size + 4095) & ~(size_t)4095) != arena->size)))
        return MPROC_EBUSY;
    return 0;
}

int mproc__arena_fd(void)
{
    return arena_fd;
}

uintptr_t mproc__arena_slot_get(mproc__arena_slot slot)
{
    return arena ? atomic_load(&arena->slots[slot]) : 0;
}

bool mproc__arena_slot_cas(mproc__arena_slot slot, uintptr_t expected, uintptr_t desired)
{
    return arena && atomic_compare_exchange_strong(&arena->slots[slot], &expected, desired);
}

/* ---- blocks --------------------------------------------------------------- */

static inline block_hdr *block_at(uint64_t off)
{
    return (block_hdr *)((char *)arena + off);
}

static inline uint64_t pack(uint64_t off, uint64_t tag)
{
    return (tag << OFF_BITS) | (off >> 4);
}

static block_hdr *pop(unsigned cls)
{
    _Atomic uint64_t *head = &arena->heads[cls];
    uint64_t h = atomic_load_explicit(head, memory_order_acquire);
    for (;;) {
        uint64_t off = (h & OFF_MASK) << 4;
        if (!off) return NULL;
        block_hdr *b = block_at(off);
        uint64_t next = (next_of(b) & OFF_MASK) | ((h >> OFF_BITS) + 1) << OFF_BITS;
        if (atomic_compare_exchange_weak_explicit(head, &h, next, memory_order_acquire,
                                                  memory_order_acquire))
            return b;
    }
}

static void push(unsigned cls, block_hdr *b)
{
    _Atomic uint64_t *head = &arena->heads[cls];
    uint64_t off = (uint64_t)((char *)b - (char *)arena);
    uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
    do set_next(b, h & OFF_MASK);
    while (!atomic_compare_exchange_weak_explicit(head, &h, pack(off, (h >> OFF_BITS) + 1),
                                                  memory_order_release, memory_order_relaxed));
}

static block_hdr *carve(size_t bytes)
{
    uint64_t c = atomic_load_explicit(&arena->carve, memory_order_relaxed);
    do
        if (bytes > arena->size - c) return NULL;
    while (!atomic_compare_exchange_weak_explicit(&arena->carve, &c, c + bytes,
                                                  memory_order_relaxed, memory_order_relaxed));
    return block_at(c);
}

/* The largest class whose blocks fit in `bytes` (a multiple of 16, >= 32). */
static unsigned class_within(size_t bytes)
{
    unsigned c = mproc__arena_class_of(bytes - BLOCK_HDR);
    return mproc__arena_class_size(c) > bytes ? c - 1 : c;
}

/* A block of class cls cut from the front of a free block of a larger
 * class (see the top of the file), or NULL. Nothing counts the pieces in
 * "allocated": the block taken from the stack was not counted either. */
static block_hdr *cut_larger(unsigned cls)
{
    size_t want = mproc__arena_class_size(cls);
    for (unsigned c = cls + 1; c < NCLASS; c++) {
        if (!(atomic_load_explicit(&arena->heads[c], memory_order_relaxed) & OFF_MASK)) continue;
        block_hdr *b = pop(c);
        if (!b) continue;
        char *rest = (char *)b + want;
        size_t left = mproc__arena_class_size(c) - want;
        while (left >= 32) {
            unsigned k = class_within(left);
            block_hdr *piece = (block_hdr *)(void *)rest;
            piece->cls = k;
            atomic_store_explicit(&piece->state, STATE_FREE, memory_order_relaxed);
            push(k, piece);
            rest += mproc__arena_class_size(k);
            left -= mproc__arena_class_size(k);
        }
        b->cls = cls;
        return b;
    }
    return NULL;
}

static int ensure_arena(void)
{
    if (MPROC__LIKELY(arena != NULL)) return 0;
    return mproc_arena_init(NULL);
}

/* ---- the per-thread cache ------------------------------------------------ */

typedef struct thread_cache {
    block_hdr *head[CACHED_CLASSES];
    uint8_t count[CACHED_CLASSES];
    bool registered;
} thread_cache;

static _Thread_local thread_cache tcache __attribute__((tls_model("initial-exec")));
static pthread_key_t tcache_key;
static pthread_once_t tcache_key_once = PTHREAD_ONCE_INIT;

/* Shared-stack operations; they keep "allocated" right. */
static block_hdr *take(unsigned cls)
{
    block_hdr *b = pop(cls);
    if (!b) {
        if (!(b = carve(mproc__arena_class_size(cls))) && !(b = cut_larger(cls))) return NULL;
        b->cls = cls;
    }
    atomic_fetch_add_explicit(&arena->allocated, mproc__arena_class_size(cls),
                              memory_order_relaxed);
    return b;
}

static void give(unsigned cls, block_hdr *b)
{
    atomic_fetch_sub_explicit(&arena->allocated, mproc__arena_class_size(cls),
                              memory_order_relaxed);
    push(cls, b);
}

static block_hdr *cache_pop(unsigned cls)
{
    block_hdr *b = tcache.head[cls];
    tcache.head[cls] = next_of(b) ? block_at(next_of(b)) : NULL;
    tcache.count[cls]--;
    return b;
}

static inline uint64_t offset_of(const block_hdr *b)
{
    return b ? (uint64_t)((const char *)b - (const char *)arena) : 0;
}

static void cache_add(unsigned cls, block_hdr *b)
{
    set_next(b, offset_of(tcache.head[cls]));
    tcache.head[cls] = b;
    tcache.count[cls]++;
}

/* An empty cache takes CACHE_MAX / 2 blocks at once: from the shared stack
 * (one CAS each) or, when that is empty, carved together with one CAS. The
 * "allocated" count moves once for the lot. */
static void refill(unsigned cls)
{
    size_t bytes = mproc__arena_class_size(cls);
    unsigned n = 0;
    block_hdr *b;
    while (n < CACHE_MAX / 2 && (b = pop(cls))) {
        cache_add(cls, b);
        n++;
    }
    for (unsigned want = CACHE_MAX / 2; n == 0 && want; want /= 2) {
        char *run = (char *)carve(bytes * want);
        if (!run) continue;
        for (unsigned k = 0; k < want; k++) {
            b = (block_hdr *)(void *)(run + k * bytes);
            b->cls = cls;
            cache_add(cls, b);
        }
        n = want;
    }
    if (n == 0 && (b = cut_larger(cls))) {
        cache_add(cls, b);
        n = 1;
    }
    if (n) atomic_fetch_add_explicit(&arena->allocated, n * bytes, memory_order_relaxed);
}

/* A full cache gives half its blocks back as one chain: one CAS. The
 * cache links blocks by byte offset, the shared stack by 16-byte units:
 * the chain is relinked on the way. */
static void spill(unsigned cls)
{
    unsigned n = CACHE_MAX / 2;
    block_hdr *first = tcache.head[cls], *last = first;
    for (unsigned k = 1; k < n; k++) {
        block_hdr *next = block_at(next_of(last));
        set_next(last, offset_of(next) >> 4);
        last = next;
    }
    tcache.head[cls] = next_of(last) ? block_at(next_of(last)) : NULL;
    tcache.count[cls] -= n;
    atomic_fetch_sub_explicit(&arena->allocated, n * mproc__arena_class_size(cls),
                              memory_order_relaxed);
    _Atomic uint64_t *head = &arena->heads[cls];
    uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
    do set_next(last, h & OFF_MASK);
    while (!atomic_compare_exchange_weak_explicit(head, &h,
                                                  pack(offset_of(first), (h >> OFF_BITS) + 1),
                                                  memory_order_release, memory_order_relaxed));
}

void mproc__arena_thread_flush(void)
{
    if (!arena) return;
    for (unsigned c = 0; c < CACHED_CLASSES; c++)
        while (tcache.count[c]) give(c, cache_pop(c));
}

/* The arena module: the arena exists before any child does, so every
 * child shares it (a failure is kept and returned by the calls that need
 * the arena); a fork child forgets the inherited thread cache (its blocks
 * are the parent's); at exit() this thread's cache goes back to the arena,
 * which outlives a process that is not the family's last (a process the
 * program forked itself, say). */
static void arena_module_init(void)
{
    (void)mproc_arena_init(NULL);
}

static void arena_after_fork_child(void)
{
    memset(&tcache, 0, sizeof tcache);
}

static mproc__module arena_module = {
    .name = "arena",
    .rank = MPROC__RANK_ARENA,
    .init = arena_module_init,
    .after_fork_child = arena_after_fork_child,
    .at_exit = mproc__arena_thread_flush,
};
MPROC__MODULE(arena_module)

static void flush_at_thread_exit(void *unused)
{
    (void)unused;
    mproc__arena_thread_flush();
}

static void make_tcache_key(void)
{
    pthread_key_create(&tcache_key, flush_at_thread_exit);
}

/* Puts a freed small block in the thread's cache, making room first. */
static void cache_push(unsigned cls, block_hdr *h)
{
    if (MPROC__UNLIKELY(!tcache.registered)) { /* flush at thread exit */
        pthread_once(&tcache_key_once, make_tcache_key);
        pthread_setspecific(tcache_key, &tcache);
        tcache.registered = true;
    }
    if (tcache.count[cls] == CACHE_MAX) spill(cls);
    cache_add(cls, h);
}

int mproc_arena_alloc(void **out, size_t size)
{
    if (!out) return MPROC_EINVAL;
    int rc = ensure_arena();
    if (rc) return rc;
    if (size > ((size_t)1 << (OFF_BITS + 3)) || MPROC__INJ_HIT(MPROC__INJ_ALLOC))
        return MPROC_ENOMEM;
    unsigned cls = mproc__arena_class_of(size);
    if (cls >= NCLASS) return MPROC_ENOMEM;
    block_hdr *b;
    if (cls < CACHED_CLASSES) {
        if (MPROC__UNLIKELY(!tcache.count[cls])) refill(cls);
        if (!tcache.count[cls]) return MPROC_ENOMEM;
        b = cache_pop(cls);
    } else if (!(b = take(cls))) {
        return MPROC_ENOMEM;
    }
    atomic_store_explicit(&b->state, STATE_ALLOC, memory_order_relaxed);
    *out = b + 1;
    return 0;
}

int mproc_arena_calloc(void **out, size_t size)
{
    int rc = mproc_arena_alloc(out, size);
    if (rc == 0) memset(*out, 0, size);
    return rc;
}

int mproc_arena_alloc_aligned(void **out, size_t size, size_t align)
{
    if (!out || align == 0 || (align & (align - 1)) || align > 4096) return MPROC_EINVAL;
    if (align <= 16) return mproc_arena_alloc(out, size);
    void *raw;
    if (size > SIZE_MAX - align) return MPROC_ENOMEM;
    int rc = mproc_arena_alloc(&raw, size + align);
    if (rc) return rc;
    uintptr_t p = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    if (p != (uintptr_t)raw) { /* a shim header says where the block starts */
        block_hdr *shim = (block_hdr *)p - 1;
        shim->cls = (uint32_t)((p - (uintptr_t)raw) / 16);
        atomic_store(&shim->state, STATE_SHIM);
    }
    *out = (void *)p;
    return 0;
}

bool mproc_arena_contains(const void *p)
{
    return arena && (const char *)p >= (const char *)arena + HDR_BYTES &&
           (const char *)p < (const char *)arena + arena->size;
}

/* The header of the block p was returned for (following a shim), or NULL. */
static block_hdr *header_of(const void *p)
{
    if (!mproc_arena_contains(p) || ((uintptr_t)p & 15)) return NULL;
    block_hdr *h = (block_hdr *)p - 1;
    if (atomic_load(&h->state) == STATE_SHIM) {
        p = (const char *)p - (size_t)h->cls * 16;
        if (!mproc_arena_contains(p)) return NULL;
        h = (block_hdr *)p - 1;
    }
    return atomic_load(&h->state) == STATE_ALLOC && h->cls < NCLASS ? h : NULL;
}

size_t mproc_arena_usable_size(const void *p)
{
    block_hdr *h = header_of(p);
    if (!h) return 0;
    return mproc__arena_class_size(h->cls) - BLOCK_HDR - (size_t)((char *)p - (char *)(h + 1));
}

int mproc_arena_free(void *p)
{
    if (!p) return 0;
    block_hdr *h = header_of(p);
    if (!h) return MPROC_EINVAL;
    unsigned cls = h->cls;
    if (cls < CACHED_CLASSES) { /* header_of saw STATE_ALLOC: a double free fails there */
        atomic_store_explicit(&h->state, STATE_FREE, memory_order_relaxed);
        cache_push(cls, h);
        return 0;
    }
    uint32_t want = STATE_ALLOC;
    if (!atomic_compare_exchange_strong(&h->state, &want, STATE_FREE)) return MPROC_EINVAL;
    size_t bytes = mproc__arena_class_size(cls);
    if (bytes >= RELEASE_MIN) { /* whole pages after the header's page go back */
        uintptr_t from = ((uintptr_t)(h + 1) + 4095) & ~(uintptr_t)4095;
        uintptr_t to = ((uintptr_t)h + bytes) & ~(uintptr_t)4095;
        if (to > from) mproc__release_pages((void *)from, to - from);
    }
    give(cls, h);
    return 0;
}

int mproc_arena_info_get(mproc_arena_info *out)
{
    if (!out) return MPROC_EINVAL;
    int rc = ensure_arena();
    if (rc) return rc;
    mproc__arena_thread_flush(); /* so a single-threaded caller sees exact figures */
    out->base = (uintptr_t)arena;
    out->size = arena->size;
    out->carved = atomic_load(&arena->carve);
    out->allocated = atomic_load(&arena->allocated);
    return 0;
}
