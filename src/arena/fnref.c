/* Function references by module and offset (see arena/fnref.h).
 *
 * The module table lives in the arena, installed in MPROC__SLOT_MODULES by
 * the first process that needs it. An entry goes FREE -> CLAIMED (CAS) ->
 * ACTIVE (store, once its path is written); a process killed in between
 * only loses that entry. Two processes adding the same library at once may
 * give it two numbers; both resolve to it. Each process caches the load
 * bias of every module it has resolved. */
#include "arena/fnref.h"
#include "arena/arena.h"
#include "base/log.h"
#include "platform/platform.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOD_MAX      64
#define MOD_PATH_MAX 1024
#define OFF_BITS     48
#define OFF_MASK     ((1ULL << OFF_BITS) - 1)
#define TABLE_MAGIC  0x31646f6d63726d6dULL /* "mmrcmod1" */
#define ENT_FREE     0u
#define ENT_CLAIMED  1u
#define ENT_ACTIVE   2u

typedef struct mod_entry {
    _Atomic uint32_t state;
    char path[MOD_PATH_MAX];
} mod_entry;

typedef struct mod_table {
    uint64_t magic;
    mod_entry e[MOD_MAX]; /* e[0] stands for the program: never used */
} mod_table;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uintptr_t bias_cache[MOD_MAX]; /* load bias + 1; 0: unknown */

static mod_table *table(void)
{
    uintptr_t t = mproc__arena_slot_get(MPROC__SLOT_MODULES);
    if (t) return (mod_table *)t;
    mod_table *n;
    if (mproc_arena_calloc((void **)&n, sizeof *n) != 0) return NULL;
    n->magic = TABLE_MAGIC;
    if (mproc__arena_slot_cas(MPROC__SLOT_MODULES, 0, (uintptr_t)n)) return n;
    mproc_arena_free(n);
    return (mod_table *)mproc__arena_slot_get(MPROC__SLOT_MODULES);
}

/* ---- finding the module of an address ------------------------------------- */

typedef struct find_ctx {
    uintptr_t addr;
    bool found, is_main;
    uintptr_t bias;
    char name[MOD_PATH_MAX];
    size_t name_len;
} find_ctx;

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    find_ctx *f = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (f->addr < lo || f->addr - lo >= ph->p_memsz) continue;
        f->found = true;
        f->bias = info->dlpi_addr;
        const char *n = info->dlpi_name ? info->dlpi_name : "";
        f->name_len = strlen(n);
        if (f->name_len < sizeof f->name) memcpy(f->name, n, f->name_len + 1);
        return 1;
    }
    return 0;
}

/* The program is the first object dl_iterate_phdr reports. */
static int main_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(uintptr_t *)arg = info->dlpi_addr;
    return 1;
}

static uintptr_t main_bias(void)
{
    uintptr_t b = 0;
    dl_iterate_phdr(main_cb, &b);
    return b;
}

/* The last few references made by this thread: a pool submits the same
 * function many times, and finding its module walks every loaded object. */
#define CACHE_N 4
static _Thread_local struct {
    const void *fn;
    mproc__fnref ref;
} made[CACHE_N];
static _Thread_local unsigned made_next;

int mproc__fnref_make(const void *fn, mproc__fnref *out)
{
    if (!fn) {
        *out = 0;
        return 0;
    }
    for (unsigned i = 0; i < CACHE_N; i++)
        if (made[i].fn == fn) {
            *out = made[i].ref;
            return 0;
        }
    find_ctx f = {.addr = (uintptr_t)fn};
    dl_iterate_phdr(find_cb, &f);
    if (!f.found) {
        mproc_log(MPROC_LOG_ERROR,
                  "function %p is not in the code of the program or of a loaded library: a "
                  "child of another program image cannot find it",
                  fn);
        return MPROC_EINVAL;
    }
    uint64_t off = (uint64_t)((uintptr_t)fn - f.bias);
    if (off > OFF_MASK) return MPROC_EINVAL;
    unsigned idx = 0;
    if (f.bias != main_bias() || f.name_len != 0) {
        if (f.name_len == 0 || f.name[0] != '/') {
            /* vdso and the like, or a relative name: resolve it to a path. */
            Dl_info di;
            if (!dladdr(fn, &di) || !di.dli_fname || !di.dli_fname[0]) return MPROC_EINVAL;
            if (!realpath(di.dli_fname, f.name)) return MPROC_EINVAL;
            f.name_len = strlen(f.name);
        }
        if (f.name_len >= MOD_PATH_MAX) return MPROC_ENAMETOOLONG;
        mod_table *t = table();
        if (!t) return MPROC_ENOMEM;
        idx = MOD_MAX;
        for (unsigned i = 1; i < MOD_MAX && idx == MOD_MAX; i++) {
            uint32_t st = atomic_load(&t->e[i].state);
            if (st == ENT_ACTIVE && strcmp(t->e[i].path, f.name) == 0) idx = i;
            if (st == ENT_FREE &&
                atomic_compare_exchange_strong(&t->e[i].state, &st, ENT_CLAIMED)) {
                memcpy(t->e[i].path, f.name, f.name_len + 1);
                atomic_store(&t->e[i].state, ENT_ACTIVE);
                idx = i;
            }
        }
        if (idx == MOD_MAX) return MPROC_ENOSPC;
        atomic_store(&bias_cache[idx], f.bias + 1);
    }
    *out = (uint64_t)idx << OFF_BITS | off;
    made[made_next % CACHE_N].fn = fn;
    made[made_next++ % CACHE_N].ref = *out;
    return 0;
}

static uintptr_t load_module(unsigned idx)
{
    if (idx == 0) return main_bias() + 1;
    mod_table *t = (mod_table *)mproc__arena_slot_get(MPROC__SLOT_MODULES);
    if (!t || idx >= MOD_MAX || atomic_load(&t->e[idx].state) != ENT_ACTIVE) return 0;
    const char *path = t->e[idx].path;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    struct link_map *lm = NULL;
    if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) {
        const char *why = dlerror();
        mproc_log(MPROC_LOG_ERROR, "cannot load %s: %s", path, why ? why : "unknown error");
        return 0;
    }
    return (uintptr_t)lm->l_addr + 1; /* the handle is kept: never unloaded */
}

void *mproc__fnref_resolve(mproc__fnref ref)
{
    if (!ref) return NULL;
    unsigned idx = (unsigned)(ref >> OFF_BITS);
    if (idx >= MOD_MAX) return NULL;
    uintptr_t b = atomic_load_explicit(&bias_cache[idx], memory_order_acquire);
    if (!b) {
        MPROC__LOCK(&cache_mu);
        if (!(b = atomic_load(&bias_cache[idx]))) {
            b = load_module(idx);
            atomic_store(&bias_cache[idx], b);
        }
        MPROC__UNLOCK(&cache_mu);
        if (!b) return NULL;
    }
    return (void *)(b - 1 + (uintptr_t)(ref & OFF_MASK));
}

uint64_t mproc__image_token(void)
{
    static _Atomic uint64_t token;
    uint64_t t = atomic_load(&token);
    if (t) return t;
    if (!mproc__random_bytes(&t, sizeof t)) t = (uint64_t)mproc_now_ns() ^ (uint64_t)getpid() << 32;
    t |= 1;
    uint64_t zero = 0;
    if (!atomic_compare_exchange_strong(&token, &zero, t)) t = zero;
    return t;
}
