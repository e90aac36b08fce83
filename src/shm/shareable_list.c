/* ShareableList: a fixed-length list of typed items in a named segment, as
 * Python's multiprocessing.shared_memory.ShareableList.
 *
 * Layout (native byte order, every offset a multiple of 8):
 *
 *   header   uint64 magic, uint64 count
 *   table    count entries of {uint32 type, uint32 reserved,
 *                              uint64 offset, uint64 capacity, uint64 len}
 *   data     the items' slots, in order, each `capacity` bytes
 *
 * INT, DOUBLE, BOOL and NIL items have 8-byte slots; a STR or BYTES slot
 * has its initial length rounded up to 8 (at least 8). A set may change an
 * item's type as long as the new value fits the slot; len is the current
 * length of a STR/BYTES value (a slot holds up to `capacity` bytes, no
 * terminator). The magic is written last, so a list being created is not
 * taken for a list.
 *
 * Attach validates the whole table once and keeps a private copy of every
 * slot's offset and capacity: a process that scribbles over the table
 * later cannot make this process read or write outside the segment (get
 * then reports MPROC_EPROTO for an entry it cannot make sense of).
 *
 * Concurrency: as in Python, the list has no lock. Reading and writing
 * different items from several processes is fine; a set and a get (or two
 * sets) of the same item at once must be serialised by the user (an
 * mproc_lock in the arena, for instance), or the reader may see a mix of
 * the old and the new value.
 */
#include "base/base.h"
#include "mproc/shm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SL_MAGIC 0x314c53636f72706dULL /* "mprocSL1" */
#define HDR_SIZE 16u
#define ENT_SIZE 32u
#define MIN_CAP  8u

typedef struct sl_entry {
    uint32_t type;
    uint32_t reserved;
    uint64_t offset;
    uint64_t capacity;
    uint64_t len;
} sl_entry;

_Static_assert(sizeof(sl_entry) == ENT_SIZE, "entry layout");

typedef struct sl_slot {
    uint64_t offset, capacity;
} sl_slot;

struct mproc_shareable_list {
    mproc_shm *shm;
    unsigned char *base;
    size_t n;
    sl_slot *slots; /* private, validated copy */
};

static inline sl_entry *entry(const mproc_shareable_list *l, size_t i)
{
    return (sl_entry *)(l->base + HDR_SIZE + i * ENT_SIZE);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c == 0xe0)
            k = 2, lo = 0xa0;
        else if (c == 0xed)
            k = 2, hi = 0x9f;
        else if (c >= 0xe1 && c <= 0xef)
            k = 2;
        else if (c == 0xf0)
            k = 3, lo = 0x90;
        else if (c == 0xf4)
            k = 3, hi = 0x8f;
        else if (c >= 0xf1 && c <= 0xf3)
            k = 3;
        else
            return false;
        if (n - i <= k) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return false;
        i += k + 1;
    }
    return true;
}

static bool is_var(uint32_t type)
{
    return type == MPROC_SHAREABLE_STR || type == MPROC_SHAREABLE_BYTES;
}

static bool type_ok(uint32_t type)
{
    return type <= MPROC_SHAREABLE_BYTES;
}

/* 0, or MPROC_EINVAL for an item that cannot be stored at all. */
static int check_item(const mproc_shareable_item *it)
{
    if (!type_ok((uint32_t)it->type)) return MPROC_EINVAL;
    if (!is_var((uint32_t)it->type)) return 0;
    if (!it->u.s.data && it->u.s.len) return MPROC_EINVAL;
    if (it->type == MPROC_SHAREABLE_STR && !utf8_ok(it->u.s.data, it->u.s.len)) return MPROC_EINVAL;
    return 0;
}

/* The slot an item gets at creation, 0 on overflow. */
static uint64_t initial_cap(const mproc_shareable_item *it)
{
    if (!is_var((uint32_t)it->type)) return MIN_CAP;
    uint64_t len = it->u.s.len;
    if (len > UINT64_MAX - 7) return 0;
    len = (len + 7) & ~(uint64_t)7;
    return len < MIN_CAP ? MIN_CAP : len;
}

/* Writes the item into slot i (checked: fits, valid). */
static void store(mproc_shareable_list *l, size_t i, const mproc_shareable_item *it)
{
    sl_entry *e = entry(l, i);
    unsigned char *d = l->base + l->slots[i].offset;
    uint64_t len = 0, word = 0;
    switch (it->type) {
    case MPROC_SHAREABLE_INT:
        memcpy(&word, &it->u.i, 8);
        break;
    case MPROC_SHAREABLE_DOUBLE:
        memcpy(&word, &it->u.d, 8);
        break;
    case MPROC_SHAREABLE_BOOL:
        word = it->u.b ? 1 : 0;
        break;
    case MPROC_SHAREABLE_STR:
    case MPROC_SHAREABLE_BYTES:
        len = it->u.s.len;
        break;
    default:
        break;
    }
    if (is_var((uint32_t)it->type)) {
        if (len) memmove(d, it->u.s.data, len); /* the source may be in the segment */
        memset(d + len, 0, l->slots[i].capacity - len);
    } else {
        memcpy(d, &word, 8);
    }
    e->len = len;
    e->type = (uint32_t)it->type;
}

static int sl_alloc(mproc_shareable_list **out, mproc_shm *shm, size_t n)
{
    mproc_shareable_list *l = calloc(1, sizeof *l);
    sl_slot *slots = n ? calloc(n, sizeof *slots) : NULL;
    if (!l || (n && !slots)) {
        free(l);
        free(slots);
        return MPROC_ENOMEM;
    }
    l->shm = shm;
    l->base = mproc_shm_buf(shm);
    l->n = n;
    l->slots = slots;
    *out = l;
    return 0;
}

int mproc_shareable_list_create(mproc_shareable_list **out, const char *name,
                                const mproc_shareable_item *items, size_t n)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (n && !items) return MPROC_EINVAL;
    if (n > (SIZE_MAX - HDR_SIZE) / ENT_SIZE / 2) return MPROC_EINVAL;
    uint64_t total = HDR_SIZE + (uint64_t)n * ENT_SIZE;
    for (size_t i = 0; i < n; i++) {
        int rc = check_item(&items[i]);
        if (rc) return rc;
        uint64_t cap = initial_cap(&items[i]);
        if (!cap || cap > SIZE_MAX - total) return MPROC_EINVAL;
        total += cap;
    }
    mproc_shm *shm;
    int rc = mproc_shm_create(&shm, name, (size_t)total, NULL);
    if (rc) return rc;
    mproc_shareable_list *l;
    if ((rc = sl_alloc(&l, shm, n)) != 0) {
        mproc_shm_unlink(shm);
        mproc_shm_close(shm);
        return rc;
    }
    uint64_t off = HDR_SIZE + (uint64_t)n * ENT_SIZE;
    for (size_t i = 0; i < n; i++) {
        sl_entry *e = entry(l, i);
        l->slots[i].offset = e->offset = off;
        l->slots[i].capacity = e->capacity = initial_cap(&items[i]);
        off += e->capacity;
        store(l, i, &items[i]);
    }
    memcpy(l->base + 8, &(uint64_t){n}, 8);
    __atomic_store_n((uint64_t *)l->base, SL_MAGIC, __ATOMIC_RELEASE);
    *out = l;
    return 0;
}

/* 0 if the segment holds a well-formed list (filling l->slots, which has
 * l->n entries: NULL only when there are none, which the analyzer misses). */
MPROC__ANALYZER_OFF("-Wanalyzer-possible-null-dereference")
static int validate(mproc_shareable_list *l, size_t size)
{
    uint64_t off = HDR_SIZE + (uint64_t)l->n * ENT_SIZE;
    for (size_t i = 0; i < l->n; i++) {
        const sl_entry *e = entry(l, i);
        uint64_t cap = e->capacity;
        if (e->offset != off || cap < MIN_CAP || cap % 8 || cap > size - off) return MPROC_EPROTO;
        if (!type_ok(e->type) || (is_var(e->type) && e->len > cap)) return MPROC_EPROTO;
        l->slots[i].offset = off;
        l->slots[i].capacity = cap;
        off += cap;
    }
    return 0;
}
MPROC__ANALYZER_ON

int mproc_shareable_list_attach(mproc_shareable_list **out, const char *name)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    mproc_shm *shm;
    int rc = mproc_shm_attach(&shm, name);
    if (rc) return rc;
    size_t size = mproc_shm_size(shm);
    const unsigned char *b = mproc_shm_buf(shm);
    uint64_t magic = 0, n = 0;
    if (size >= HDR_SIZE) {
        magic = __atomic_load_n((const uint64_t *)b, __ATOMIC_ACQUIRE);
        memcpy(&n, b + 8, 8);
    }
    if (size < HDR_SIZE || magic != SL_MAGIC || n > (size - HDR_SIZE) / ENT_SIZE) {
        mproc_shm_close(shm);
        return MPROC_EPROTO;
    }
    mproc_shareable_list *l;
    if ((rc = sl_alloc(&l, shm, (size_t)n)) != 0) {
        mproc_shm_close(shm);
        return rc;
    }
    if ((rc = validate(l, size)) != 0) {
        mproc_shareable_list_close(l); /* closes shm too */
        return rc;
    }
    *out = l;
    return 0;
}

size_t mproc_shareable_list_len(const mproc_shareable_list *l)
{
    return l ? l->n : 0;
}

int mproc_shareable_list_get(const mproc_shareable_list *l, size_t i, mproc_shareable_item *out)
{
    if (!l || !out) return MPROC_EINVAL;
    if (i >= l->n) return MPROC_ERANGE;
    const sl_entry *e = entry(l, i);
    const unsigned char *d = l->base + l->slots[i].offset;
    uint32_t type = e->type;
    uint64_t len = e->len, word;
    memcpy(&word, d, 8);
    if (!type_ok(type) || (is_var(type) && len > l->slots[i].capacity)) return MPROC_EPROTO;
    memset(out, 0, sizeof *out);
    out->type = (mproc_shareable_type)type;
    switch (type) {
    case MPROC_SHAREABLE_INT:
        memcpy(&out->u.i, &word, 8);
        break;
    case MPROC_SHAREABLE_DOUBLE:
        memcpy(&out->u.d, &word, 8);
        break;
    case MPROC_SHAREABLE_BOOL:
        out->u.b = word != 0;
        break;
    case MPROC_SHAREABLE_STR:
    case MPROC_SHAREABLE_BYTES:
        out->u.s.data = d;
        out->u.s.len = (size_t)len;
        break;
    default:
        break;
    }
    return 0;
}

int mproc_shareable_list_set(mproc_shareable_list *l, size_t i, const mproc_shareable_item *item)
{
    if (!l || !item) return MPROC_EINVAL;
    if (i >= l->n) return MPROC_ERANGE;
    int rc = check_item(item);
    if (rc) return rc;
    if (is_var((uint32_t)item->type) && item->u.s.len > l->slots[i].capacity) return MPROC_EMSGSIZE;
    store(l, i, item);
    return 0;
}

/* Same type and value (see mproc_shareable_list_index). */
static bool item_eq(const mproc_shareable_item *a, const mproc_shareable_item *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case MPROC_SHAREABLE_INT:
        return a->u.i == b->u.i;
    case MPROC_SHAREABLE_DOUBLE:
        return a->u.d == b->u.d;
    case MPROC_SHAREABLE_BOOL:
        return a->u.b == b->u.b;
    case MPROC_SHAREABLE_STR:
    case MPROC_SHAREABLE_BYTES:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0);
    default:
        return true; /* NIL */
    }
}

/* Walks the items equal to *item: stops at the first when first is set.
 * *n counts them, *at is the first one's index. */
static int find(const mproc_shareable_list *l, const mproc_shareable_item *item, bool first,
                size_t *at, size_t *n)
{
    if (!l || !item) return MPROC_EINVAL;
    int rc = check_item(item);
    if (rc) return rc;
    *n = 0;
    for (size_t i = 0; i < l->n; i++) {
        mproc_shareable_item it;
        if ((rc = mproc_shareable_list_get(l, i, &it)) != 0) return rc;
        if (!item_eq(&it, item)) continue;
        if ((*n)++ == 0) *at = i;
        if (first) break;
    }
    return 0;
}

int mproc_shareable_list_index(const mproc_shareable_list *l, const mproc_shareable_item *item,
                               size_t *index)
{
    size_t at = 0, n;
    if (!index) return MPROC_EINVAL;
    int rc = find(l, item, true, &at, &n);
    if (rc) return rc;
    if (n == 0) return MPROC_ENOENT;
    *index = at;
    return 0;
}

int mproc_shareable_list_count(const mproc_shareable_list *l, const mproc_shareable_item *item,
                               size_t *count)
{
    size_t at, n;
    if (!count) return MPROC_EINVAL;
    int rc = find(l, item, false, &at, &n);
    if (!rc) *count = n;
    return rc;
}

mproc_shm *mproc_shareable_list_shm(const mproc_shareable_list *l)
{
    return l ? l->shm : NULL;
}

void mproc_shareable_list_close(mproc_shareable_list *l)
{
    if (!l) return;
    mproc_shm_close(l->shm);
    free(l->slots);
    free(l);
}
