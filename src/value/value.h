/* Internal layout of mproc_value, shared by value.c (the tree),
 * repr.c (the printer) and cbor.c (the codec).
 *
 * Every value starts with the common header `struct mproc_value`; the rest
 * depends on the kind, in the way CPython lays out its objects:
 *   nil, bool, int, float, handle  mproc__vscalar (16 bytes after malloc)
 *   str, bytes                     mproc__vstr, the bytes inline and
 *                                  NUL-terminated (one malloc per string)
 *   list                           mproc__vlist, an array of item pointers
 *   map                            mproc__vmap, entries in insertion order
 *                                  (a list or map made for a known size,
 *                                  as the decoder and copy make them, has
 *                                  its array in the same block until it
 *                                  outgrows it)
 *                                  plus, over MPROC__MAP_INDEX_MIN entries,
 *                                  an open-addressing index of entry
 *                                  numbers keyed by a seeded SipHash of the
 *                                  key (so a peer cannot flood one bucket).
 * Strings and bytes never change after creation.
 *
 * Recursive operations (copy, equal, hash, repr, encode) refuse values
 * nested deeper than MPROC__VALUE_NEST_MAX; free is iterative and takes any
 * depth. */
#ifndef MPROC_INTERNAL_VALUE_H
#define MPROC_INTERNAL_VALUE_H

#include "mproc/value.h"

#include <stdarg.h>
#include <stdint.h>

#define MPROC__VALUE_NEST_MAX 10000
#define MPROC__MAP_INDEX_MIN  16

struct mproc_value {
    uint8_t kind;    /* mproc_value_kind */
    uint8_t is_uint; /* MPROC_V_INT holding a uint64 above INT64_MAX */
    uint8_t inl;     /* list/map: items/ents live in the same block */
    uint32_t htype;  /* MPROC_V_HANDLE: the handle's type */
};

typedef struct mproc__vscalar {
    struct mproc_value h;
    union {
        bool b;
        int64_t i; /* also the uint64 bits when h.is_uint */
        double d;
        uint64_t ref;
    } u;
} mproc__vscalar;

typedef struct mproc__vstr {
    struct mproc_value h;
    size_t len;
    char data[]; /* len bytes and a NUL */
} mproc__vstr;

typedef struct mproc__vlist {
    struct mproc_value h;
    mproc_value **items;
    size_t len, cap;
    mproc_value *up; /* used only while freeing */
} mproc__vlist;

typedef struct mproc__map_ent {
    mproc_value *key, *val;
    uint64_t hash; /* of key; valid while the map has an index */
} mproc__map_ent;

typedef struct mproc__vmap {
    struct mproc_value h;
    mproc__map_ent *ents;
    size_t len, cap;
    uint32_t *idx; /* icap slots: entry number + 1, or 0 when empty */
    size_t icap;   /* 0 (no index) or a power of two >= 2 * len */
    mproc_value *up;
} mproc__vmap;

#define MPROC__VSCALAR(v) ((mproc__vscalar *)(v))
#define MPROC__VSTR(v)    ((mproc__vstr *)(v))
#define MPROC__VLIST(v)   ((mproc__vlist *)(v))
#define MPROC__VMAP(v)    ((mproc__vmap *)(v))

/* A new string or bytes value of len bytes copied from p (p may be NULL
 * when len is 0). */
mproc_value *mproc__value_strn(mproc_value_kind kind, const void *p, size_t len);

/* An empty list or map with room for n items/entries in the same
 * allocation, or NULL. */
mproc_value *mproc__value_container(mproc_value_kind kind, size_t n);

/* Makes room for `n` more items (list) or entries (map). 0 or
 * MPROC_ENOMEM. */
int mproc__list_reserve(mproc_value *list, size_t n);
int mproc__map_reserve(mproc_value *map, size_t n);

/* mproc_value_pack and mproc_value_unpack (value/pack.c) reading their
 * arguments from *ap, so that the caller can go on reading after them;
 * fn names the public call in log lines. many: the format may hold any
 * number of items (none too), packed as a list (the arguments of a proxy
 * call). */
int mproc__value_pack_ap(const char *fn, mproc_value **out, const char *fmt, bool many,
                         va_list *ap);
int mproc__value_unpack_ap(const char *fn, const mproc_value *v, const char *fmt, va_list *ap);
/* Checks, without a value, an unpack format for a value that is freed
 * before the caller sees the variables: 0, or MPROC_EINVAL with a log line
 * for a bad format or one whose items would point into the value (s, s#,
 * y# or o outside a map key; the line suggests instead). */
int mproc__value_unpack_owned(const char *fn, const char *fmt, const char *instead);

/* Whether p[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool mproc__utf8_valid(const void *p, size_t len);

#endif
