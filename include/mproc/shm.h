/* mproc — shared values and blocks in the family arena (the twins of
 * multiprocessing.Value, Array and sharedctypes), and named shared memory
 * for unrelated processes (multiprocessing.shared_memory: SharedMemory and
 * ShareableList).
 */
#ifndef MPROC_SHM_H
#define MPROC_SHM_H

#include "base.h"
#include "sync.h"

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared values, arrays and blocks (in the family arena) ------------ */

/* Python's typecodes, plus '?' (bool), 'z' (size_t) and 'n' (ssize_t):
 * 'b' int8  'B' uint8  'h' int16  'H' uint16  'i' int  'I' unsigned
 * 'l' long  'L' unsigned long  'q' int64  'Q' uint64  'f' float
 * 'd' double  'c' char  '?' bool  'z' size_t  'n' ssize_t.
 * A raw block (any C struct or array) has typecode 0. */

/* How a shared object is locked. */
typedef enum mproc_shared_lock_mode {
    MPROC_SHARED_RLOCK = 0, /* default: a new RLock of its own, as Python */
    MPROC_SHARED_LOCK,      /* a new (non-recursive) Lock of its own */
    MPROC_SHARED_NOLOCK,    /* no lock (lock=False) */
    MPROC_SHARED_USE_LOCK,  /* the caller's lock, in opts.lock */
} mproc_shared_lock_mode;

/* Options for a shared value or array; zero (or NULL) means defaults. */
typedef struct mproc_shared_opts {
    mproc_shared_lock_mode lock_mode; /* the lock it comes with */
    mproc_lock *lock;                 /* for MPROC_SHARED_USE_LOCK: must outlive the object */
} mproc_shared_opts;

/* A value, array or raw block in the arena, with its lock. The handle is
 * itself in the arena: pass the pointer to children as bytes. */
typedef struct mproc_shared mproc_shared;

/* One element of typecode tc; init points to one C value of that type (NULL:
 * zero). Errors: MPROC_EINVAL (NULL out, unknown typecode, USE_LOCK without
 * a lock), MPROC_ENOMEM. */
MPROC_API int mproc_shared_value_new(mproc_shared **out, char tc, const void *init,
                                     const mproc_shared_opts *opts);

/* n elements of typecode tc; init points to n C values (NULL: zeros).
 * Errors: as mproc_shared_value_new. */
MPROC_API int mproc_shared_array_new(mproc_shared **out, char tc, size_t n, const void *init,
                                     const mproc_shared_opts *opts);

/* size zeroed bytes aligned to align (a power of two up to 4096; 0 means
 * 16): any C struct or array. Errors: as mproc_shared_value_new. */
MPROC_API int mproc_shared_raw_new(mproc_shared **out, size_t size, size_t align,
                                   const mproc_shared_opts *opts);

/* Frees the object (and a lock it owns). NULL is a no-op. */
MPROC_API void mproc_shared_free(mproc_shared *s);

/* The C storage: cast to the element type. Access through it is not
 * locked; take mproc_shared_get_lock() around compound updates. */
MPROC_API void *mproc_shared_ptr(const mproc_shared *s);
/* Number of elements (1 for a value; bytes for a raw block). */
MPROC_API size_t mproc_shared_len(const mproc_shared *s);
MPROC_API char mproc_shared_typecode(const mproc_shared *s);
/* Bytes of one element (1 for a raw block). */
MPROC_API size_t mproc_shared_itemsize(const mproc_shared *s);
/* The lock, or NULL for MPROC_SHARED_NOLOCK. */
MPROC_API mproc_lock *mproc_shared_get_lock(const mproc_shared *s);

/* Element i as an int64 / double, and stores into it (converted to the
 * element type; integers out of range are MPROC_ERANGE). Each call takes
 * the object's lock, if it has one, as Python's .value and [i] do; a
 * get-then-set is therefore not atomic (see the examples). MPROC_EOWNERDEAD
 * from the lock is repaired (the value is a plain number) and not passed on.
 * Errors: MPROC_EINVAL (NULL, raw block), MPROC_ERANGE (i out of range, or
 * the value does not fit). */
MPROC_API int mproc_shared_get_int(mproc_shared *s, size_t i, int64_t *out);
MPROC_API int mproc_shared_set_int(mproc_shared *s, size_t i, int64_t v);
MPROC_API int mproc_shared_get_double(mproc_shared *s, size_t i, double *out);
MPROC_API int mproc_shared_set_double(mproc_shared *s, size_t i, double v);

/* ---- named shared memory (for unrelated processes) --------------------- */

/* A named shared memory segment (opaque). */
typedef struct mproc_shm mproc_shm;

/* Options for mproc_shm_create. */
typedef struct mproc_shm_opts {
    /* Do not unlink the segment when the creating family ends without
     * unlinking it (for segments meant to outlive their creator). */
    bool persist;
    /* Do not reserve the memory at creation: it is committed page by page
     * when first touched (as Python's SharedMemory), so a large segment
     * costs nothing until used, but a write that finds /dev/shm full
     * raises SIGBUS. */
    bool sparse;
} mproc_shm_opts;

/* Creates a new segment of `size` bytes (> 0) named `name` (or a random
 * name when name is NULL), zero-filled, and maps it. Its memory is
 * reserved now (unless opts.sparse): a full /dev/shm is an error here, not
 * a SIGBUS later. Unless opts.persist, the segment is tracked: if every
 * process of the creating family has exited and nobody unlinked it, it is
 * unlinked then (even after SIGKILL).
 * Errors: MPROC_EEXIST, MPROC_EINVAL (bad name or size), MPROC_EACCES,
 * MPROC_ENOMEM, MPROC_ENOSPC (/dev/shm is full, or the tracker's table
 * is). */
MPROC_API int mproc_shm_create(mproc_shm **out, const char *name, size_t size,
                               const mproc_shm_opts *opts);

/* Maps an existing segment. Attaching never unlinks and never tracks.
 * Errors: MPROC_ENOENT, MPROC_EINVAL, MPROC_EACCES, MPROC_ENOMEM. */
MPROC_API int mproc_shm_attach(mproc_shm **out, const char *name);

/* The mapped bytes and their size. */
MPROC_API void *mproc_shm_buf(const mproc_shm *m);
MPROC_API size_t mproc_shm_size(const mproc_shm *m);
/* The name, without the leading '/'. */
MPROC_API const char *mproc_shm_name(const mproc_shm *m);

/* Unmaps the segment in this process and frees the handle (the segment
 * itself stays until unlinked). NULL is a no-op. */
MPROC_API void mproc_shm_close(mproc_shm *m);

/* Removes the name (the memory goes once every mapping is closed); stops
 * tracking it. Errors: MPROC_ENOENT (already unlinked), MPROC_EINVAL. */
MPROC_API int mproc_shm_unlink(mproc_shm *m);

/* ---- ShareableList ----------------------------------------------------- */

/* The type of a ShareableList item. */
typedef enum mproc_shareable_type {
    MPROC_SHAREABLE_NIL = 0,
    MPROC_SHAREABLE_INT,    /* int64 */
    MPROC_SHAREABLE_DOUBLE, /* double */
    MPROC_SHAREABLE_BOOL,
    MPROC_SHAREABLE_STR,   /* UTF-8 text */
    MPROC_SHAREABLE_BYTES, /* raw bytes */
    /* The names of mproc 0.1 (see "deprecated names" below). */
    MPROC_SL_NIL MPROC_DEPRECATED("use MPROC_SHAREABLE_NIL") = MPROC_SHAREABLE_NIL,
    MPROC_SL_INT MPROC_DEPRECATED("use MPROC_SHAREABLE_INT") = MPROC_SHAREABLE_INT,
    MPROC_SL_DOUBLE MPROC_DEPRECATED("use MPROC_SHAREABLE_DOUBLE") = MPROC_SHAREABLE_DOUBLE,
    MPROC_SL_BOOL MPROC_DEPRECATED("use MPROC_SHAREABLE_BOOL") = MPROC_SHAREABLE_BOOL,
    MPROC_SL_STR MPROC_DEPRECATED("use MPROC_SHAREABLE_STR") = MPROC_SHAREABLE_STR,
    MPROC_SL_BYTES MPROC_DEPRECATED("use MPROC_SHAREABLE_BYTES") = MPROC_SHAREABLE_BYTES,
} mproc_shareable_type;

/* One item. For STR and BYTES, data/len point at the bytes (a get points
 * into the shared segment: copy them out if they must outlive the list). */
typedef struct mproc_shareable_item {
    mproc_shareable_type type; /* which member of u is set */
    union {
        int64_t i;
        double d;
        bool b;
        struct {
            const void *data;
            size_t len;
        } s;
    } u; /* the item */
} mproc_shareable_item;

/* Items of each type, for mproc_shareable_list_create and _set. */
#define MPROC_SHAREABLE_INT_ITEM(v)                                                                \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_INT, .u.i = (v)})
#define MPROC_SHAREABLE_DOUBLE_ITEM(v)                                                             \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_DOUBLE, .u.d = (v)})
#define MPROC_SHAREABLE_BOOL_ITEM(v)                                                               \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_BOOL, .u.b = (v)})
#define MPROC_SHAREABLE_STR_ITEM(str)                                                              \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_STR, .u.s = {(str), strlen(str)}})
#define MPROC_SHAREABLE_NIL_ITEM ((mproc_shareable_item){.type = MPROC_SHAREABLE_NIL})
/* A STR item of len bytes (UTF-8, no terminator needed). */
#define MPROC_SHAREABLE_STR_N_ITEM(ptr, len)                                                       \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_STR, .u.s = {(ptr), (len)}})
/* A BYTES item: len raw bytes at ptr (Python's b"..."). */
#define MPROC_SHAREABLE_BYTES_ITEM(ptr, len)                                                       \
    ((mproc_shareable_item){.type = MPROC_SHAREABLE_BYTES, .u.s = {(ptr), (len)}})

/* A fixed-length list in a named segment, as Python's ShareableList: each
 * slot keeps its type's size; a STR or BYTES slot holds up to the length
 * of its initial value rounded up to 8 bytes. */
typedef struct mproc_shareable_list mproc_shareable_list;

/* Creates the list with n initial items in a new tracked segment (name as
 * mproc_shm_create). Errors: as mproc_shm_create, MPROC_EINVAL (bad item). */
MPROC_API int mproc_shareable_list_create(mproc_shareable_list **out, const char *name,
                                          const mproc_shareable_item *items, size_t n);
/* Attaches to an existing list. Errors: as mproc_shm_attach, MPROC_EPROTO
 * (the segment is not a ShareableList). */
MPROC_API int mproc_shareable_list_attach(mproc_shareable_list **out, const char *name);
MPROC_API size_t mproc_shareable_list_len(const mproc_shareable_list *l);
/* Errors: MPROC_ERANGE (index). */
MPROC_API int mproc_shareable_list_get(const mproc_shareable_list *l, size_t i,
                                       mproc_shareable_item *out);
/* Replaces item i; the new item may change type. Errors: MPROC_ERANGE
 * (index), MPROC_EMSGSIZE (STR/BYTES longer than the slot holds),
 * MPROC_EINVAL. */
MPROC_API int mproc_shareable_list_set(mproc_shareable_list *l, size_t i,
                                       const mproc_shareable_item *item);
/* Python's ShareableList.index(value): *index is the position of the
 * first item equal to *item. Equal means the same type and value (an INT
 * 1 is not the DOUBLE 1.0 or the BOOL true, where Python's == says it is;
 * a NaN equals nothing, 0.0 equals -0.0; STR and BYTES compare their
 * bytes). Errors: MPROC_ENOENT (no such item: Python's ValueError),
 * MPROC_EINVAL (NULL, or an item that could not be stored), MPROC_EPROTO
 * (an entry scribbled over, met before a match). */
MPROC_API int mproc_shareable_list_index(const mproc_shareable_list *l,
                                         const mproc_shareable_item *item, size_t *index);
/* Python's ShareableList.count(value): *count is the number of items equal
 * to *item (as mproc_shareable_list_index). Errors: MPROC_EINVAL,
 * MPROC_EPROTO. */
MPROC_API int mproc_shareable_list_count(const mproc_shareable_list *l,
                                         const mproc_shareable_item *item, size_t *count);
/* The segment underneath (name, size; unlink through it). */
MPROC_API mproc_shm *mproc_shareable_list_shm(const mproc_shareable_list *l);
/* Closes the list in this process (the segment stays). NULL is a no-op. */
MPROC_API void mproc_shareable_list_close(mproc_shareable_list *l);

/* ---- deprecated names ---------------------------------------------------
 * The names of mproc 0.1, kept for one release: ShareableList was
 * mproc_sl. Each use warns (-Wdeprecated-declarations). */

typedef mproc_shareable_list mproc_sl MPROC_DEPRECATED("use mproc_shareable_list");
typedef mproc_shareable_item mproc_sl_item MPROC_DEPRECATED("use mproc_shareable_item");
typedef mproc_shareable_type mproc_sl_type MPROC_DEPRECATED("use mproc_shareable_type");

/* The old item macros name the old (deprecated) type constants. */
#define MPROC_SL_INT_ITEM(v)    ((mproc_shareable_item){.type = MPROC_SL_INT, .u.i = (v)})
#define MPROC_SL_DOUBLE_ITEM(v) ((mproc_shareable_item){.type = MPROC_SL_DOUBLE, .u.d = (v)})
#define MPROC_SL_BOOL_ITEM(v)   ((mproc_shareable_item){.type = MPROC_SL_BOOL, .u.b = (v)})
#define MPROC_SL_STR_ITEM(str)                                                                     \
    ((mproc_shareable_item){.type = MPROC_SL_STR, .u.s = {(str), strlen(str)}})
#define MPROC_SL_NIL_ITEM ((mproc_shareable_item){.type = MPROC_SL_NIL})

MPROC_DEPRECATED("use mproc_shareable_list_create")
static inline int mproc_sl_create(mproc_shareable_list **out, const char *name,
                                  const mproc_shareable_item *items, size_t n)
{
    return mproc_shareable_list_create(out, name, items, n);
}
MPROC_DEPRECATED("use mproc_shareable_list_attach")
static inline int mproc_sl_attach(mproc_shareable_list **out, const char *name)
{
    return mproc_shareable_list_attach(out, name);
}
MPROC_DEPRECATED("use mproc_shareable_list_len")
static inline size_t mproc_sl_len(const mproc_shareable_list *l)
{
    return mproc_shareable_list_len(l);
}
MPROC_DEPRECATED("use mproc_shareable_list_get")
static inline int mproc_sl_get(const mproc_shareable_list *l, size_t i, mproc_shareable_item *out)
{
    return mproc_shareable_list_get(l, i, out);
}
MPROC_DEPRECATED("use mproc_shareable_list_set")
static inline int mproc_sl_set(mproc_shareable_list *l, size_t i, const mproc_shareable_item *item)
{
    return mproc_shareable_list_set(l, i, item);
}
MPROC_DEPRECATED("use mproc_shareable_list_shm")
static inline mproc_shm *mproc_sl_shm(const mproc_shareable_list *l)
{
    return mproc_shareable_list_shm(l);
}
MPROC_DEPRECATED("use mproc_shareable_list_close")
static inline void mproc_sl_close(mproc_shareable_list *l)
{
    mproc_shareable_list_close(l);
}

#ifdef __cplusplus
}
#endif
#endif
