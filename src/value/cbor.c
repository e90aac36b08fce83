/* The CBOR codec of values, through libcbor: its encoders write into a
 * growing buffer, its streaming decoder calls back for each data item and
 * the callbacks build the tree directly.
 *
 * Mapping (RFC 8949):
 *   nil -> null (0xf6); bool -> false/true; int -> major type 0 (>= 0,
 *   including uint64 above INT64_MAX) or 1 (< 0); float -> a double (0xfb);
 *   str -> a definite text string; bytes -> a definite byte string; list
 *   -> a definite array; map -> a definite map in insertion order; handle
 *   -> tag MPROC_CBOR_TAG_HANDLE over the array [type, ref].
 *
 * Decisions for decoding (untrusted bytes):
 *   - Indefinite-length arrays, maps, text and byte strings are accepted
 *     (chunks of a string are concatenated; a chunk of another type or a
 *     nested indefinite chunk is MPROC_EPROTO; containers end at the
 *     break). A break anywhere else is MPROC_EPROTO.
 *   - Text strings must be well-formed UTF-8 (no overlong forms, no
 *     surrogates), as Python's decoders demand; each chunk of an
 *     indefinite text string on its own. Invalid ones are MPROC_EPROTO.
 *     The encoder checks the same and refuses (MPROC_EINVAL) a string
 *     value that is not UTF-8, so what it sends always decodes: raw bytes
 *     go as bytes.
 *   - undefined (0xf7), simple values, tags other than the handle tag, a
 *     handle whose content is not [uint32, uint64], and negative integers
 *     below INT64_MIN are MPROC_EPROTO.
 *   - Half and single floats decode as double.
 *   - A map key repeated within one map keeps its first place and the last
 *     value (as a Python dict built from the pairs).
 *   - Every declared length is checked before anything is allocated for
 *     it: the items all open containers still owe (at least one byte
 *     each) must fit in the bytes left, or the input is MPROC_EPROTO, so
 *     reservations stay within a small multiple of the input's size.
 *   - Depth counts open lists and maps (a top-level list is depth 1);
 *     items count every value made, keys included (a handle is one); bytes
 *     count string and byte-string payload. Passing one is MPROC_E2BIG.
 *   - The decoder keeps its own stack of open containers: no recursion,
 *     whatever the input's nesting. */
#include "base/base.h"
#include "value/value.h"

#include <cbor.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ----------------------------------------------------------- */

#define HEAD_MAX 9 /* the longest CBOR head: initial byte + 8-byte argument */

typedef struct enc {
    unsigned char *buf;
    size_t len, cap;
} enc;

static __attribute__((noinline)) int grow_out(enc *e, size_t n)
{
    if (n > SIZE_MAX / 4 - e->len) return MPROC_ENOMEM;
    size_t cap = e->cap * 2;
    while (cap < e->len + n) cap *= 2;
    unsigned char *p = realloc(e->buf, cap);
    if (!p) return MPROC_ENOMEM;
    e->buf = p;
    e->cap = cap;
    return 0;
}

static inline int room(enc *e, size_t n)
{
    return MPROC__LIKELY(n <= e->cap - e->len) ? 0 : grow_out(e, n);
}

/* Writes one head; room for HEAD_MAX bytes was made. */
#define PUT(call)                                                                                  \
    do {                                                                                           \
        size_t n_ = (call);                                                                        \
        if (MPROC__UNLIKELY(n_ == 0)) return MPROC_EINVAL; /* cannot happen */                     \
        e->len += n_;                                                                              \
    } while (0)
#define OUT e->buf + e->len, e->cap - e->len

static int encode_rec(enc *e, const mproc_value *v, unsigned depth)
{
    int rc;
    if (!v || depth > MPROC__VALUE_NEST_MAX) return MPROC_EINVAL;
    if ((rc = room(e, HEAD_MAX))) return rc;
    switch ((mproc_value_kind)v->kind) {
    case MPROC_V_NIL:
        PUT(cbor_encode_null(OUT));
        return 0;
    case MPROC_V_BOOL:
        PUT(cbor_encode_bool(MPROC__VSCALAR(v)->u.b, OUT));
        return 0;
    case MPROC_V_INT: {
        int64_t i = MPROC__VSCALAR(v)->u.i;
        if (v->is_uint || i >= 0)
            PUT(cbor_encode_uint((uint64_t)i, OUT));
        else
            PUT(cbor_encode_negint((uint64_t)(-1 - i), OUT));
        return 0;
    }
    case MPROC_V_FLOAT:
        PUT(cbor_encode_double(MPROC__VSCALAR(v)->u.d, OUT));
        return 0;
    case MPROC_V_STR:
    case MPROC_V_BYTES: {
        const mproc__vstr *s = MPROC__VSTR(v);
        if (v->kind == MPROC_V_STR) {
            if (!mproc__utf8_valid(s->data, s->len)) return MPROC_EINVAL;
            PUT(cbor_encode_string_start(s->len, OUT));
        } else {
            PUT(cbor_encode_bytestring_start(s->len, OUT));
        }
        if ((rc = room(e, s->len))) return rc;
        memcpy(e->buf + e->len, s->data, s->len);
        e->len += s->len;
        return 0;
    }
    case MPROC_V_LIST: {
        const mproc__vlist *l = MPROC__VLIST(v);
        PUT(cbor_encode_array_start(l->len, OUT));
        for (size_t i = 0; i < l->len; i++)
            if ((rc = encode_rec(e, l->items[i], depth + 1))) return rc;
        return 0;
    }
    case MPROC_V_MAP: {
        const mproc__vmap *m = MPROC__VMAP(v);
        PUT(cbor_encode_map_start(m->len, OUT));
        for (size_t i = 0; i < m->len; i++) {
            if ((rc = encode_rec(e, m->ents[i].key, depth + 1))) return rc;
            if ((rc = encode_rec(e, m->ents[i].val, depth + 1))) return rc;
        }
        return 0;
    }
    case MPROC_V_HANDLE:
        if ((rc = room(e, 4 * HEAD_MAX))) return rc;
        PUT(cbor_encode_tag(MPROC_CBOR_TAG_HANDLE, OUT));
        PUT(cbor_encode_array_start(2, OUT));
        PUT(cbor_encode_uint(v->htype, OUT));
        PUT(cbor_encode_uint(MPROC__VSCALAR(v)->u.ref, OUT));
        return 0;
    }
    return MPROC_EINVAL;
}

int mproc_value_encode(const mproc_value *v, void **out, size_t *len)
{
    if (!v || !out || !len) return MPROC_EINVAL;
    enc e = {malloc(128), 0, 128};
    if (!e.buf) return MPROC_ENOMEM;
    int rc = encode_rec(&e, v, 0);
    if (rc) {
        free(e.buf);
        return rc;
    }
    if (e.cap - e.len > 4096 && e.cap / 2 > e.len) { /* give back a large unused tail */
        unsigned char *p = realloc(e.buf, e.len);
        if (p) e.buf = p;
    }
    *out = e.buf;
    *len = e.len;
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

enum {
    M_NORMAL,       /* expecting a data item */
    M_HANDLE_ARRAY, /* after the handle tag: expecting the array head (2) */
    M_HANDLE_TYPE,  /* expecting the handle's type (uint32) */
    M_HANDLE_REF,   /* expecting the handle's ref (uint64) */
    M_STR_CHUNKS,   /* in an indefinite text string: text chunks or break */
    M_BYTES_CHUNKS, /* in an indefinite byte string: byte chunks or break */
};

typedef struct frame {
    mproc_value *v;   /* the open list or map */
    size_t left;      /* definite: items (list) or entries (map) still to come */
    bool indef;       /* ends at a break */
    mproc_value *key; /* map: a key waiting for its value */
} frame;

#define INLINE_FRAMES 16

typedef struct dec {
    int err;
    int mode;
    bool done;
    mproc_value *root;
    size_t avail; /* bytes from the current item's head to the end */
    size_t need;  /* items the open definite containers still owe */
    size_t items, bytes;
    unsigned max_depth;
    size_t max_items, max_bytes;
    size_t depth, scap;
    frame *stack;
    uint32_t htype;
    unsigned char *chunks; /* an indefinite string's bytes so far */
    size_t clen, ccap;
    frame inline_stack[INLINE_FRAMES];
} dec;

static void fail(dec *d, int rc)
{
    if (!d->err) d->err = rc;
}

/* The start of a data item in normal mode: counts it. */
static bool item_begin(dec *d)
{
    if (MPROC__UNLIKELY(d->mode != M_NORMAL)) {
        fail(d, MPROC_EPROTO);
        return false;
    }
    if (MPROC__UNLIKELY(d->items >= d->max_items)) {
        fail(d, MPROC_E2BIG);
        return false;
    }
    d->items++;
    if (d->depth && !d->stack[d->depth - 1].indef) d->need--;
    return true;
}

/* Hands a finished value to the open container (or makes it the result),
 * closing every container it completes. Takes ownership of v. */
static void deliver(dec *d, mproc_value *v)
{
    if (MPROC__UNLIKELY(!v)) {
        fail(d, MPROC_ENOMEM);
        return;
    }
    for (;;) {
        if (d->depth == 0) {
            d->root = v;
            d->done = true;
            return;
        }
        frame *f = &d->stack[d->depth - 1];
        if (f->v->kind == MPROC_V_LIST) {
            mproc__vlist *l = MPROC__VLIST(f->v);
            if (l->len == l->cap && mproc__list_reserve(f->v, 1)) {
                mproc_value_free(v);
                fail(d, MPROC_ENOMEM);
                return;
            }
            l->items[l->len++] = v;
        } else if (!f->key) {
            f->key = v;
            return;
        } else {
            mproc_value *k = f->key;
            f->key = NULL;
            int rc = mproc_value_map_set(f->v, k, v);
            if (rc) {
                fail(d, rc);
                return;
            }
        }
        if (f->indef || --f->left) return;
        v = f->v; /* complete: close it and hand it to its parent */
        d->depth--;
    }
}

static void open_container(dec *d, mproc_value_kind kind, size_t n, bool indef)
{
    if (d->mode == M_HANDLE_ARRAY) {
        if (indef || n != 2 || kind != MPROC_V_LIST)
            fail(d, MPROC_EPROTO);
        else
            d->mode = M_HANDLE_TYPE;
        return;
    }
    if (!item_begin(d)) return;
    /* Each owed item takes at least a byte after this head. */
    size_t owed = n;
    if (kind == MPROC_V_MAP) owed = n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n;
    if (d->need > d->avail - 1 || owed > d->avail - 1 - d->need) {
        fail(d, MPROC_EPROTO);
        return;
    }
    if (d->depth >= d->max_depth) {
        fail(d, MPROC_E2BIG);
        return;
    }
    d->need += owed;
    if (d->need > d->max_items - d->items) { /* they would pass max_items */
        fail(d, MPROC_E2BIG);
        return;
    }
    /* n is bounded by the input's size here: room for all of it. */
    mproc_value *v = mproc__value_container(kind, n);
    if (!v) {
        fail(d, MPROC_ENOMEM);
        return;
    }
    if (n == 0 && !indef) {
        deliver(d, v);
        return;
    }
    if (d->depth == d->scap) {
        size_t cap = d->scap * 2;
        frame *s = d->stack == d->inline_stack ? malloc(cap * sizeof *s)
                                               : realloc(d->stack, cap * sizeof *s);
        if (!s) {
            mproc_value_free(v);
            fail(d, MPROC_ENOMEM);
            return;
        }
        if (d->stack == d->inline_stack) memcpy(s, d->inline_stack, sizeof d->inline_stack);
        d->stack = s;
        d->scap = cap;
    }
    d->stack[d->depth++] = (frame){v, n, indef, NULL};
}

static void on_uint(void *ctx, uint64_t u)
{
    dec *d = ctx;
    if (d->mode == M_HANDLE_TYPE) {
        if (u > UINT32_MAX) {
            fail(d, MPROC_EPROTO);
            return;
        }
        d->htype = (uint32_t)u;
        d->mode = M_HANDLE_REF;
        return;
    }
    if (d->mode == M_HANDLE_REF) { /* counted at its tag */
        d->mode = M_NORMAL;
        deliver(d, mproc_value_handle(d->htype, u));
        return;
    }
    if (item_begin(d)) deliver(d, mproc_value_uint(u));
}
static void on_uint8(void *ctx, uint8_t u)
{
    on_uint(ctx, u);
}
static void on_uint16(void *ctx, uint16_t u)
{
    on_uint(ctx, u);
}
static void on_uint32(void *ctx, uint32_t u)
{
    on_uint(ctx, u);
}

/* The negative integer -1 - n. */
static void on_negint(void *ctx, uint64_t n)
{
    dec *d = ctx;
    if (!item_begin(d)) return;
    if (n > INT64_MAX) { /* below INT64_MIN */
        fail(d, MPROC_EPROTO);
        return;
    }
    deliver(d, mproc_value_int(-1 - (int64_t)n));
}
static void on_negint8(void *ctx, uint8_t n)
{
    on_negint(ctx, n);
}
static void on_negint16(void *ctx, uint16_t n)
{
    on_negint(ctx, n);
}
static void on_negint32(void *ctx, uint32_t n)
{
    on_negint(ctx, n);
}

static void on_string_kind(dec *d, mproc_value_kind kind, cbor_data p, size_t len)
{
    int chunks = kind == MPROC_V_STR ? M_STR_CHUNKS : M_BYTES_CHUNKS;
    if (d->mode != chunks && !item_begin(d)) return;
    if (kind == MPROC_V_STR && !mproc__utf8_valid(p, len)) {
        fail(d, MPROC_EPROTO);
        return;
    }
    if (len > d->max_bytes - d->bytes) {
        fail(d, MPROC_E2BIG);
        return;
    }
    d->bytes += len;
    if (d->mode != chunks) {
        deliver(d, mproc__value_strn(kind, p, len));
        return;
    }
    if (len == 0) return;
    if (len > d->ccap - d->clen) { /* chunk bytes are in the input: bounded */
        size_t cap = d->ccap ? d->ccap : 64;
        while (cap - d->clen < len) cap *= 2;
        unsigned char *c = realloc(d->chunks, cap);
        if (!c) {
            fail(d, MPROC_ENOMEM);
            return;
        }
        d->chunks = c;
        d->ccap = cap;
    }
    memcpy(d->chunks + d->clen, p, len);
    d->clen += len;
}
static void on_string(void *ctx, cbor_data p, size_t len)
{
    on_string_kind(ctx, MPROC_V_STR, p, len);
}
static void on_bytes(void *ctx, cbor_data p, size_t len)
{
    on_string_kind(ctx, MPROC_V_BYTES, p, len);
}
static void on_string_start(void *ctx)
{
    dec *d = ctx;
    if (!item_begin(d)) return;
    d->mode = M_STR_CHUNKS;
    d->clen = 0;
}
static void on_bytes_start(void *ctx)
{
    dec *d = ctx;
    if (!item_begin(d)) return;
    d->mode = M_BYTES_CHUNKS;
    d->clen = 0;
}

static void on_array_start(void *ctx, size_t n)
{
    open_container(ctx, MPROC_V_LIST, n, false);
}
static void on_indef_array_start(void *ctx)
{
    open_container(ctx, MPROC_V_LIST, 0, true);
}
static void on_map_start(void *ctx, size_t n)
{
    open_container(ctx, MPROC_V_MAP, n, false);
}
static void on_indef_map_start(void *ctx)
{
    open_container(ctx, MPROC_V_MAP, 0, true);
}

static void on_break(void *ctx)
{
    dec *d = ctx;
    if (d->mode == M_STR_CHUNKS || d->mode == M_BYTES_CHUNKS) {
        mproc_value_kind kind = d->mode == M_STR_CHUNKS ? MPROC_V_STR : MPROC_V_BYTES;
        d->mode = M_NORMAL;
        deliver(d, mproc__value_strn(kind, d->chunks, d->clen));
        return;
    }
    if (d->mode != M_NORMAL || d->depth == 0) {
        fail(d, MPROC_EPROTO);
        return;
    }
    frame *f = &d->stack[d->depth - 1];
    if (!f->indef || f->key) { /* not indefinite, or a key without its value */
        fail(d, MPROC_EPROTO);
        return;
    }
    d->depth--;
    deliver(d, f->v);
}

static void on_tag(void *ctx, uint64_t tag)
{
    dec *d = ctx;
    if (!item_begin(d)) return;
    if (tag != MPROC_CBOR_TAG_HANDLE) {
        fail(d, MPROC_EPROTO);
        return;
    }
    d->mode = M_HANDLE_ARRAY;
}

static void on_float(void *ctx, float f)
{
    dec *d = ctx;
    if (item_begin(d)) deliver(d, mproc_value_float(f));
}
static void on_double(void *ctx, double f)
{
    dec *d = ctx;
    if (item_begin(d)) deliver(d, mproc_value_float(f));
}
static void on_undefined(void *ctx)
{
    fail(ctx, MPROC_EPROTO);
}
static void on_null(void *ctx)
{
    dec *d = ctx;
    if (item_begin(d)) deliver(d, mproc_value_nil());
}
static void on_bool(void *ctx, bool b)
{
    dec *d = ctx;
    if (item_begin(d)) deliver(d, mproc_value_bool(b));
}

static const struct cbor_callbacks callbacks = {
    .uint8 = on_uint8,
    .uint16 = on_uint16,
    .uint32 = on_uint32,
    .uint64 = on_uint,
    .negint8 = on_negint8,
    .negint16 = on_negint16,
    .negint32 = on_negint32,
    .negint64 = on_negint,
    .byte_string = on_bytes,
    .byte_string_start = on_bytes_start,
    .string = on_string,
    .string_start = on_string_start,
    .array_start = on_array_start,
    .indef_array_start = on_indef_array_start,
    .map_start = on_map_start,
    .indef_map_start = on_indef_map_start,
    .tag = on_tag,
    .float2 = on_float,
    .float4 = on_float,
    .float8 = on_double,
    .undefined = on_undefined,
    .null = on_null,
    .boolean = on_bool,
    .indef_break = on_break,
};

int mproc_value_decode(const void *buf, size_t len, const mproc_value_limits *limits,
                       mproc_value **out)
{
    if (!out || (!buf && len)) return MPROC_EINVAL;
    *out = NULL;
    dec d;
    d.err = 0;
    d.mode = M_NORMAL;
    d.done = false;
    d.root = NULL;
    d.need = d.items = d.bytes = 0;
    d.max_depth = limits && limits->max_depth ? limits->max_depth : 64;
    d.max_items = limits && limits->max_items ? limits->max_items : (size_t)1 << 24;
    d.max_bytes = limits && limits->max_bytes ? limits->max_bytes : (size_t)1 << 30;
    d.depth = 0;
    d.scap = INLINE_FRAMES;
    d.stack = d.inline_stack;
    d.chunks = NULL;
    d.clen = d.ccap = 0;

    const unsigned char *p = buf;
    size_t pos = 0;
    while (!d.done && !d.err) {
        if (pos == len) { /* truncated */
            d.err = MPROC_EPROTO;
            break;
        }
        d.avail = len - pos;
        struct cbor_decoder_result r = cbor_stream_decode(p + pos, len - pos, &callbacks, &d);
        if (r.status != CBOR_DECODER_FINISHED) { /* malformed or truncated */
            fail(&d, MPROC_EPROTO);
            break;
        }
        pos += r.read;
    }
    if (!d.err && pos != len) d.err = MPROC_EPROTO; /* trailing bytes */

    free(d.chunks);
    if (d.err) {
        mproc_value_free(d.root);
        for (size_t i = 0; i < d.depth; i++) {
            mproc_value_free(d.stack[i].key);
            mproc_value_free(d.stack[i].v);
        }
    }
    if (d.stack != d.inline_stack) free(d.stack);
    if (d.err) return d.err;
    *out = d.root;
    return 0;
}
