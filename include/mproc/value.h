/* mproc — dynamic values (the role pickle plays in Python) and their CBOR
 * codec.
 *
 * An mproc_value is a tree: nil, bool, int (int64, or uint64 above
 * INT64_MAX), float (double), string (UTF-8, length-counted), bytes, list,
 * map (ordered; keys of any kind, looked up by equality), and handle (a
 * tagged 64-bit reference to a shared object, for managers and queues).
 * Values are built and inspected with small calls, or in one call from a
 * format string (mproc_value_pack, mproc_value_unpack). Encoding is CBOR
 * (RFC 8949) through libcbor; decoding builds the tree directly from
 * libcbor's streaming decoder and is safe on untrusted bytes (limits
 * below).
 *
 * Ownership, one rule for the value and the manager API: building takes,
 * everything else borrows.
 *   - A call that builds a value takes the values handed to it: the tree
 *     owns them from the call on, also when the call fails (they are then
 *     freed), so the caller never frees what it handed over, whatever the
 *     result. These are mproc_value_list_append, mproc_value_map_set,
 *     mproc_value_map_set_str and the 'o' code of mproc_value_pack. Their
 *     twins mproc_value_list_append_copy, mproc_value_map_set_copy,
 *     mproc_value_map_set_str_copy and pack's 'O' put in a copy and leave
 *     the caller's value as it was.
 *   - Every other call borrows its mproc_value arguments: it reads them
 *     during the call and neither keeps nor frees them. That is every
 *     inspecting call, copy, equal, repr, encode and unpack here, and, in
 *     manager.h, mproc_manager_create, mproc_proxy_call and its
 *     shorthands, mproc_manager_call_many and mproc_proxy_from_value (the
 *     format calls mproc_proxy_callf and mproc_manager_createf follow pack:
 *     'o' takes, 'O' copies).
 *   - A value a call returns (as its result or through an out-parameter)
 *     is the caller's to free with mproc_value_free, except where it is
 *     said to be borrowed: mproc_value_list_get, mproc_value_map_get,
 *     mproc_value_map_get_str, mproc_value_map_entry, mproc_value_get_str,
 *     mproc_value_get_bytes and unpack's s, s#, y# and o point into the
 *     value they were read from and live as long as it does.
 * A value is in one place at a time: hand the same value to two builders
 * and it is freed twice (hand a copy, or use the _copy twins).
 *
 * Threads: a value may be read from several threads; changing it needs
 * the caller's own locking. Values live in the process's heap (malloc), not
 * in the arena: send them through connections and queues.
 */
#ifndef MPROC_VALUE_H
#define MPROC_VALUE_H

#include "base.h"

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a value holds. */
typedef enum mproc_value_kind {
    MPROC_V_NIL = 0,
    MPROC_V_BOOL,
    MPROC_V_INT,   /* int64_t; see mproc_value_is_uint for uint64 above INT64_MAX */
    MPROC_V_FLOAT, /* double */
    MPROC_V_STR,
    MPROC_V_BYTES,
    MPROC_V_LIST,
    MPROC_V_MAP,
    MPROC_V_HANDLE,
} mproc_value_kind;

/* A value (opaque): a tree of the kinds above. */
typedef struct mproc_value mproc_value;

/* ---- building ------------------------------------------------------------
 * Each returns a new value, or NULL when memory ran out. Strings and bytes
 * are copied. */
MPROC_API mproc_value *mproc_value_nil(void);
MPROC_API mproc_value *mproc_value_bool(bool b);
MPROC_API mproc_value *mproc_value_int(int64_t i);
MPROC_API mproc_value *mproc_value_uint(uint64_t u);
MPROC_API mproc_value *mproc_value_float(double d);
MPROC_API mproc_value *mproc_value_str(const char *s); /* NUL-terminated */
MPROC_API mproc_value *mproc_value_strn(const char *s, size_t len);
/* A string formatted as printf does (Python's f-string), or NULL (out of
 * memory, or an encoding error in the format). */
MPROC_API mproc_value *mproc_value_strf(const char *fmt, ...) MPROC_PRINTF(1, 2);
MPROC_API mproc_value *mproc_value_bytes(const void *p, size_t len);
MPROC_API mproc_value *mproc_value_list(void);
MPROC_API mproc_value *mproc_value_map(void);
/* A handle: `type` says what it refers to (0..2^32-1, chosen by the layer
 * that makes it), `ref` the reference. */
MPROC_API mproc_value *mproc_value_handle(uint32_t type, uint64_t ref);

/* Appends item to a list, which takes ownership of it (also on failure:
 * item is freed). Errors: MPROC_EINVAL (NULL, not a list), MPROC_ENOMEM. */
MPROC_API int mproc_value_list_append(mproc_value *list, mproc_value *item);
/* Sets map[key] = val, taking ownership of both (on failure both are
 * freed). An existing equal key keeps its place and gets the new value
 * (the new key is freed). Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_value_map_set(mproc_value *map, mproc_value *key, mproc_value *val);
/* Shorthand for a string key (copied); takes val as mproc_value_map_set
 * does. */
MPROC_API int mproc_value_map_set_str(mproc_value *map, const char *key, mproc_value *val);
/* The _copy twins of the three above: they put a deep copy of item, key
 * and val in the container and never take or free the caller's values
 * (on failure the container is as it was). Errors: MPROC_EINVAL (NULL,
 * not a list or map), MPROC_ENOMEM. */
MPROC_API int mproc_value_list_append_copy(mproc_value *list, const mproc_value *item);
MPROC_API int mproc_value_map_set_copy(mproc_value *map, const mproc_value *key,
                                       const mproc_value *val);
MPROC_API int mproc_value_map_set_str_copy(mproc_value *map, const char *key,
                                           const mproc_value *val);
/* Removes key; 0, or MPROC_ENOENT when absent. */
MPROC_API int mproc_value_map_del(mproc_value *map, const mproc_value *key);

/* ---- inspecting ----------------------------------------------------------- */

MPROC_API mproc_value_kind mproc_value_kind_of(const mproc_value *v); /* NIL for NULL */
/* Scalars: 0, or MPROC_EINVAL when v is not of that kind (ints: also
 * MPROC_ERANGE when the number does not fit). get_float accepts ints. */
MPROC_API int mproc_value_get_bool(const mproc_value *v, bool *out);
MPROC_API int mproc_value_get_int(const mproc_value *v, int64_t *out);
MPROC_API int mproc_value_get_uint(const mproc_value *v, uint64_t *out);
MPROC_API bool mproc_value_is_uint(const mproc_value *v); /* an int above INT64_MAX */
MPROC_API int mproc_value_get_float(const mproc_value *v, double *out);
/* The string's bytes (NUL-terminated for convenience) and length; valid
 * while v lives. NULL when v is not a string. */
MPROC_API const char *mproc_value_get_str(const mproc_value *v, size_t *len);
MPROC_API const void *mproc_value_get_bytes(const mproc_value *v, size_t *len);
MPROC_API int mproc_value_get_handle(const mproc_value *v, uint32_t *type, uint64_t *ref);

/* Number of items of a list or entries of a map (0 otherwise). */
MPROC_API size_t mproc_value_len(const mproc_value *v);
/* List item i, or NULL when out of range; borrowed. */
MPROC_API mproc_value *mproc_value_list_get(const mproc_value *list, size_t i);
/* Map entry i (insertion order): key and value, borrowed. Errors:
 * MPROC_ENOENT (i out of range), MPROC_EINVAL (not a map). */
MPROC_API int mproc_value_map_entry(const mproc_value *map, size_t i, mproc_value **key,
                                    mproc_value **val);
/* map[key] or NULL; borrowed. */
MPROC_API mproc_value *mproc_value_map_get(const mproc_value *map, const mproc_value *key);
MPROC_API mproc_value *mproc_value_map_get_str(const mproc_value *map, const char *key);

/* ---- whole values ------------------------------------------------------- */

/* A deep copy, or NULL when memory ran out. */
MPROC_API mproc_value *mproc_value_copy(const mproc_value *v);
/* Deep equality; ints compare by value (1 == 1u); a float never equals an
 * int; NaN equals NaN and 0.0 equals -0.0 (so both work as map keys); maps
 * compare as sets of entries; equal(NULL, NULL) is true. */
MPROC_API bool mproc_value_equal(const mproc_value *a, const mproc_value *b);
/* Frees v and everything in it. NULL is a no-op. */
MPROC_API void mproc_value_free(mproc_value *v);

/* Writes a Python-like rendering ({'id': 1, 'data': 'x'}, [1, 2.5, None],
 * True, b'\x00') into buf (always NUL-terminated when cap > 0) and returns
 * the length the whole rendering needs, like snprintf. */
MPROC_API size_t mproc_value_repr(const mproc_value *v, char *buf, size_t cap);
/* The same into a new malloc'd string (free it), or NULL. */
MPROC_API char *mproc_value_repr_alloc(const mproc_value *v);
/* repr into buf, returned (for a printf argument); a rendering longer
 * than cap - 1 is cut and ends in "...". buf must not be NULL; cap >= 4. */
MPROC_API const char *mproc_value_repr_buf(const mproc_value *v, char *buf, size_t cap);
/* Python's str(v), as print() and f-strings show a value: a string's own
 * text (no quotes), anything else as repr. Into buf, as repr_buf. */
MPROC_API const char *mproc_value_str_buf(const mproc_value *v, char *buf, size_t cap);

/* For printing: MPROC_REPR(v) and MPROC_STR(v) are repr_buf / str_buf into
 * a buffer of MPROC_VALUE_PRINT_MAX bytes made where the macro is used (a
 * compound literal, alive until the end of the enclosing block), so
 * `printf("Got %s\n", MPROC_STR(v));` needs no malloc and no free. */
#define MPROC_VALUE_PRINT_MAX 512
#define MPROC_REPR(v)                                                                              \
    mproc_value_repr_buf((v), (char[MPROC_VALUE_PRINT_MAX]){0}, MPROC_VALUE_PRINT_MAX)
#define MPROC_STR(v)                                                                               \
    mproc_value_str_buf((v), (char[MPROC_VALUE_PRINT_MAX]){0}, MPROC_VALUE_PRINT_MAX)

/* ---- by format string --------------------------------------------------
 * The ideas of jansson's json_pack/json_unpack and CPython's
 * Py_BuildValue/PyArg_ParseTuple. A format is a string of codes, one per
 * value, with [ ] around a list's items and { } around a map's keys and
 * values (key, value, key, value, ...; a key may be of any format).
 * Spaces, tabs, newlines, ',' and ':' are ignored anywhere, so
 * "{s:i, s:[ii]}" reads well.
 *
 *   code  pack takes             unpack stores into     value
 *   n     nothing                nothing (checks nil)   nil
 *   b     int (0 is false)       int *                  bool
 *   i     int                    int *                  int
 *   I     int64_t                int64_t *              int
 *   u     unsigned               unsigned *             int
 *   U     uint64_t               uint64_t *             int
 *   f     double                 double * (an int too)  float
 *   s     const char * (UTF-8,   const char ** (no NUL  string
 *         NUL-terminated)        inside: else EINVAL)
 *   s#    const char *, size_t   const char **, size_t *  string
 *   y#    const void *, size_t   const void **, size_t *  bytes
 *   o     mproc_value * (taken)  mproc_value ** (borrowed)  any
 *   O     mproc_value * (copied) mproc_value ** (a copy: free it)  any
 *   [..]  the items              a list of exactly those items
 *                                (end with '*' to allow more)
 *   {..}  keys and values        looks each key up (the key is read as
 *                                pack reads it: "{s:i}" takes a const
 *                                char * key and an int *); other keys are
 *                                allowed (end with '!' to refuse them)
 *   ?     after s, s#, y#, o,    after any item: a nil value (or, after a
 *         O: NULL packs nil      key, a missing key) is allowed and its
 *                                variables are left untouched (set
 *                                defaults first); nil and NULL alike
 *
 * Integers passed through "..." must have the code's type: write
 * (int64_t)x for I and (uint64_t)x for U. Unpack stores 'o', 's', 's#',
 * 'y#' as pointers into v (borrowed, valid while v lives); a NULL
 * variable pointer checks the item without storing it; a NULL v is nil
 * (as a proxy call's None result). Unpack 'f' takes an int too, as
 * Python's float() would; the others want their own kind (a bool is not
 * an int).
 *
 * Errors: MPROC_EINVAL for a bad format (with a log line naming the
 * offset; nothing is built and no variable written), a NULL pointer where
 * pack needs one (without '?'), a kind other than the format says, a list
 * of another length, a string holding a NUL read with s; MPROC_ERANGE
 * for an int that does not fit the variable; MPROC_ENOENT for a missing
 * key; MPROC_ENOMEM. (Kind mismatches and ranges are logged at DEBUG
 * level, with the offset.) On any failure pack leaves *out NULL and still
 * takes every value given with 'o' (frees it; for a bad format, those
 * before the first character that is not a format code), and unpack
 * writes nothing (if memory runs out while it makes the 'O' copies, those
 * made are freed and their variables set back to NULL; the others may
 * have been written).
 *
 * Example: mproc_value_pack(&v, "{s:i, s:[is]}", "id", 1, "data", 2, "x")
 * makes {'id': 1, 'data': [2, 'x']}, and mproc_value_unpack(v,
 * "{s:i, s:[i*]}", "id", &id, "data", &first) reads id and the first item.
 * Thread-safe as the calls they stand for. */

/* Builds *out from fmt: exactly one value at the top (several: put them
 * in [ ]). */
MPROC_API int mproc_value_pack(mproc_value **out, const char *fmt, ...);
MPROC_API int mproc_value_vpack(mproc_value **out, const char *fmt, va_list ap);
/* Checks v against fmt (one value at the top) and stores its parts. */
MPROC_API int mproc_value_unpack(const mproc_value *v, const char *fmt, ...);
MPROC_API int mproc_value_vunpack(const mproc_value *v, const char *fmt, va_list ap);

/* ---- CBOR --------------------------------------------------------------- */

/* Limits for decoding untrusted bytes; zero fields take the defaults. */
typedef struct mproc_value_limits {
    unsigned max_depth; /* nesting of lists/maps; default 64 */
    size_t max_items;   /* total values in one message; default 1 << 24 */
    size_t max_bytes;   /* total string/bytes payload; default 1 GiB */
} mproc_value_limits;

/* Encodes v as CBOR into a new malloc'd buffer (*out, free it) of *len
 * bytes. Handles are CBOR tag MPROC_CBOR_TAG_HANDLE over [type, ref].
 * Errors: MPROC_EINVAL (NULL, a string that is not valid UTF-8 — send raw
 * bytes as bytes — or nesting deeper than 10000), MPROC_ENOMEM. */
#define MPROC_CBOR_TAG_HANDLE 0x6d70 /* "mp" */
MPROC_API int mproc_value_encode(const mproc_value *v, void **out, size_t *len);

/* Decodes exactly one CBOR data item filling buf[0..len) into a new value.
 * Never crashes or over-allocates on bad input.
 * Errors: MPROC_EPROTO (malformed, truncated, trailing bytes, an
 * unsupported CBOR feature such as indefinite lengths of a kind not
 * supported or an unknown tag), MPROC_E2BIG (a limit was passed),
 * MPROC_ENOMEM, MPROC_EINVAL (NULL). */
MPROC_API int mproc_value_decode(const void *buf, size_t len, const mproc_value_limits *limits,
                                 mproc_value **out);

#ifdef __cplusplus
}
#endif
#endif
