/* Values by format string: mproc_value_pack builds a tree from a format
 * and C arguments, mproc_value_unpack checks a tree against a format and
 * stores its parts into C variables (the format table is in
 * include/mproc/value.h and docs/values.md).
 *
 * A format is first checked on its own (check_*: syntax, nesting, which
 * codes may take '?'), so a bad format is refused before any argument is
 * read. Then:
 *   pack    builds the tree in one walk (pk_item). On a failure the walk
 *           stops, the part built is freed, and drain() reads the
 *           arguments left so that every value given with 'o' is freed
 *           (the steal rule: 'o' takes its value even on failure).
 *   unpack  walks twice over the same arguments (up_item): a dry walk that
 *           checks every kind, range, length and key and writes nothing,
 *           then a walk that writes. So on a failure the caller's variables
 *           are untouched, except when memory runs out in the second walk
 *           (an 'O' copy): then the copies made are freed and their
 *           variables set back to NULL.
 * The internal entry points take a va_list pointer so that a caller can go
 * on reading its arguments after them (value/value.h). */
#include "base/base.h"
#include "value/value.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXDEPTH 64

/* ---- the format's syntax ------------------------------------------------ */

enum { M_PACK, M_UNPACK, M_KEY }; /* M_KEY: a map key in unpack (read as in pack, no 'o') */

static const char *seps(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == ':') p++;
    return p;
}

typedef struct syn {
    const char *at; /* where the format is wrong */
    const char *why;
} syn;

static bool bad(syn *s, const char *at, const char *why)
{
    s->at = at;
    s->why = why;
    return false;
}

/* One item at *pp; keytop: the item is a key of an unpack map (may take
 * '?': an optional key). */
static bool check_item(syn *s, const char **pp, int mode, int depth, bool keytop)
{
    const char *p = seps(*pp), *at = p;
    bool opt_ok;
    switch (*p++) {
    case 'n':
    case 'b':
    case 'i':
    case 'I':
    case 'u':
    case 'U':
    case 'f':
        opt_ok = mode == M_UNPACK;
        break;
    case 's':
        if (*p == '#') p++;
        opt_ok = mode != M_KEY;
        break;
    case 'y':
        if (*p != '#') return bad(s, at, "'y' must be followed by '#' (bytes and a size_t length)");
        p++;
        opt_ok = mode != M_KEY;
        break;
    case 'o':
        if (mode == M_KEY) return bad(s, at, "a key of unpack is only read: 'O', not 'o'");
        opt_ok = true;
        break;
    case 'O':
        opt_ok = mode != M_KEY;
        break;
    case '[':
    case '{': {
        char close = at[0] == '[' ? ']' : '}';
        if (depth >= MAXDEPTH) return bad(s, at, "nested deeper than 64");
        size_t n = 0;
        for (;;) {
            p = seps(p);
            if (*p == close) {
                p++;
                break;
            }
            if (!*p) return bad(s, at, close == ']' ? "'[' is not closed" : "'{' is not closed");
            if (*p == '!' || *p == '*') {
                if (mode != M_UNPACK) return bad(s, p, "'!' and '*' are for unpack only");
                const char *q = seps(p + 1);
                if (*q != close) return bad(s, p, "'!' or '*' must come last in a list or map");
                if (close == '}' && n % 2) return bad(s, p, "a key without a value");
                p = q + 1;
                break;
            }
            bool key = close == '}' && n % 2 == 0;
            int m = key && mode == M_UNPACK ? M_KEY : mode;
            if (!check_item(s, &p, m, depth + 1, key && mode == M_UNPACK)) return false;
            n++;
        }
        if (close == '}' && n % 2) return bad(s, p - 1, "a key without a value");
        opt_ok = mode == M_UNPACK;
        break;
    }
    case '\0':
        return bad(s, at, "the format ends where a value should be");
    case ']':
    case '}':
        return bad(s, at, "a closing bracket without its opening one");
    case '?':
        return bad(s, at, "'?' must follow a format code");
    default:
        return bad(s, at, "not a format code");
    }
    if (keytop) opt_ok = true;
    if (*p == '?') {
        if (!opt_ok)
            return bad(s, p,
                       mode == M_PACK ? "'?' (NULL gives nil) follows only s, s#, y#, o and O"
                                      : "'?' cannot follow a part of a key");
        p++;
    }
    *pp = p;
    return true;
}

/* The whole format: one item, or any number when many. */
static bool check_format(syn *s, const char *fmt, int mode, bool many)
{
    const char *p = fmt;
    size_t n = 0;
    for (;;) {
        p = seps(p);
        if (!*p) break;
        if (n == 1 && !many) return bad(s, p, "more than one value at the top: put them in [ ]");
        if (!check_item(s, &p, mode, 0, false)) return false;
        n++;
    }
    if (!n && !many) return bad(s, p, "an empty format: one value is needed");
    return true;
}

/* ---- a walk's state ----------------------------------------------------- */

typedef struct walk {
    const char *fn;  /* for messages */
    const char *fmt; /* the whole format */
    const char *p;   /* next character */
    va_list *ap;
    bool write;       /* unpack: the second walk */
    mproc_value ***o; /* unpack: the variables 'O' filled (second walk) */
    size_t no, ncopy; /* unpack: count of 'O' (first walk), filled (second) */
} walk;

static int fail(const walk *w, const char *at, int level, int code, const char *why)
{
    mproc_log(level, "%s: format \"%s\" at offset %td: %s", w->fn, w->fmt, at - w->fmt, why);
    return code;
}

static int format_error(const char *fn, const char *fmt, const syn *s)
{
    mproc_log(MPROC_LOG_ERROR, "%s: bad format \"%s\" at offset %td: %s", fn, fmt, s->at - fmt,
              s->why);
    return MPROC_EINVAL;
}

/* ---- pack --------------------------------------------------------------- */

/* Reads the arguments of the items from w->p to the end (or to the first
 * character that is not a format code), freeing the values given with
 * 'o'. */
static void drain(walk *w)
{
    for (const char *p = w->p; *p; p++) {
        switch (*p) {
        case 'b':
        case 'i':
            (void)va_arg(*w->ap, int);
            break;
        case 'u':
            (void)va_arg(*w->ap, unsigned);
            break;
        case 'I':
            (void)va_arg(*w->ap, int64_t);
            break;
        case 'U':
            (void)va_arg(*w->ap, uint64_t);
            break;
        case 'f':
            (void)va_arg(*w->ap, double);
            break;
        case 's':
            (void)va_arg(*w->ap, const char *);
            if (p[1] == '#') {
                (void)va_arg(*w->ap, size_t);
                p++;
            }
            break;
        case 'y':
            if (p[1] != '#') return;
            (void)va_arg(*w->ap, const void *);
            (void)va_arg(*w->ap, size_t);
            p++;
            break;
        case 'o':
            mproc_value_free(va_arg(*w->ap, mproc_value *));
            break;
        case 'O':
            (void)va_arg(*w->ap, const mproc_value *);
            break;
        case 'n':
        case '[':
        case ']':
        case '{':
        case '}':
        case '?':
        case '!':
        case '*':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ',':
        case ':':
            break;
        default:
            return;
        }
    }
}

/* Builds one item into *out (the format is known good). keytop: a key of
 * an unpack map, whose '?' is not pack's (the caller reads it). On a
 * failure *out is NULL, and w->p is past the last item whose arguments
 * were read. */
static int pk_item(walk *w, mproc_value **out, int depth, bool keytop)
{
    const char *at = w->p = seps(w->p);
    char c = *w->p++;
    mproc_value *v = NULL;
    *out = NULL;
    switch (c) {
    case 'n':
        v = mproc_value_nil();
        break;
    case 'b':
        v = mproc_value_bool(va_arg(*w->ap, int) != 0);
        break;
    case 'i':
        v = mproc_value_int(va_arg(*w->ap, int));
        break;
    case 'I':
        v = mproc_value_int(va_arg(*w->ap, int64_t));
        break;
    case 'u':
        v = mproc_value_uint(va_arg(*w->ap, unsigned));
        break;
    case 'U':
        v = mproc_value_uint(va_arg(*w->ap, uint64_t));
        break;
    case 'f':
        v = mproc_value_float(va_arg(*w->ap, double));
        break;
    case 's':
    case 'y': {
        const char *s = va_arg(*w->ap, const char *);
        bool counted = *w->p == '#';
        size_t len = 0;
        if (counted) {
            len = va_arg(*w->ap, size_t);
            w->p++;
        }
        bool opt = !keytop && *w->p == '?';
        if (opt) w->p++;
        if (!s && (opt || (counted && !len))) {
            v = opt ? mproc_value_nil()
                    : mproc__value_strn(c == 's' ? MPROC_V_STR : MPROC_V_BYTES, "", 0);
        } else if (!s) {
            return fail(w, at, MPROC_LOG_ERROR, MPROC_EINVAL,
                        "a NULL pointer (write s? or y#? to give nil)");
        } else {
            if (!counted) len = strlen(s);
            v = mproc__value_strn(c == 's' ? MPROC_V_STR : MPROC_V_BYTES, s, len);
        }
        break;
    }
    case 'o':
    case 'O': {
        mproc_value *given = va_arg(*w->ap, mproc_value *);
        bool opt = !keytop && *w->p == '?';
        if (opt) w->p++;
        if (!given) {
            if (!opt)
                return fail(w, at, MPROC_LOG_ERROR, MPROC_EINVAL,
                            "a NULL value (write o? or O? to give nil)");
            v = mproc_value_nil();
        } else {
            v = c == 'o' ? given : mproc_value_copy(given);
        }
        break;
    }
    case '[': {
        mproc_value *l = mproc_value_list();
        if (!l) return MPROC_ENOMEM;
        for (;;) {
            w->p = seps(w->p);
            if (*w->p == ']') {
                w->p++;
                break;
            }
            mproc_value *item;
            int rc = pk_item(w, &item, depth + 1, false);
            if (!rc) rc = mproc_value_list_append(l, item);
            if (rc) {
                mproc_value_free(l);
                return rc;
            }
        }
        v = l;
        break;
    }
    case '{': {
        mproc_value *m = mproc_value_map();
        if (!m) return MPROC_ENOMEM;
        for (;;) {
            w->p = seps(w->p);
            if (*w->p == '}') {
                w->p++;
                break;
            }
            mproc_value *key, *val = NULL;
            int rc = pk_item(w, &key, depth + 1, false);
            if (!rc && (rc = pk_item(w, &val, depth + 1, false))) mproc_value_free(key);
            if (!rc) rc = mproc_value_map_set(m, key, val);
            if (rc) {
                mproc_value_free(m);
                return rc;
            }
        }
        v = m;
        break;
    }
    default: /* not reached: the format was checked */
        return fail(w, at, MPROC_LOG_ERROR, MPROC_EINVAL, "not a format code");
    }
    if (!v) return MPROC_ENOMEM;
    *out = v;
    return 0;
}

/* Packs fmt (known good): one value, or, when many, its items as a list. */
static int pack_walk(walk *w, mproc_value **out, bool many)
{
    mproc_value *v = NULL;
    int rc = 0;
    if (many) {
        if (!(v = mproc_value_list())) rc = MPROC_ENOMEM;
        while (!rc && *(w->p = seps(w->p))) {
            mproc_value *item;
            if (!(rc = pk_item(w, &item, 1, false))) rc = mproc_value_list_append(v, item);
        }
    } else {
        rc = pk_item(w, &v, 0, false);
    }
    if (rc) {
        mproc_value_free(v);
        drain(w);
        return rc;
    }
    *out = v;
    return 0;
}

int mproc__value_pack_ap(const char *fn, mproc_value **out, const char *fmt, bool many, va_list *ap)
{
    walk w = {.fn = fn, .fmt = fmt, .p = fmt, .ap = ap};
    if (out) *out = NULL;
    if (!fmt) {
        mproc_log(MPROC_LOG_ERROR, "%s: NULL format", fn);
        return MPROC_EINVAL;
    }
    syn s;
    if (!check_format(&s, fmt, M_PACK, many)) {
        drain(&w);
        return format_error(fn, fmt, &s);
    }
    if (!out) {
        drain(&w);
        return MPROC_EINVAL;
    }
    return pack_walk(&w, out, many);
}

int mproc_value_vpack(mproc_value **out, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int rc = mproc__value_pack_ap("mproc_value_pack", out, fmt, false, &cp);
    va_end(cp);
    return rc;
}

int mproc_value_pack(mproc_value **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc__value_pack_ap("mproc_value_pack", out, fmt, false, &ap);
    va_end(ap);
    return rc;
}

/* ---- unpack ------------------------------------------------------------- */

static const char *kind_name(const mproc_value *v)
{
    static const char *names[] = {"nil",   "bool", "int", "float", "string",
                                  "bytes", "list", "map", "handle"};
    mproc_value_kind k = mproc_value_kind_of(v);
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

static int mismatch(const walk *w, const char *at, const char *want, const mproc_value *v)
{
    char why[96];
    snprintf(why, sizeof why, "want %s, the value is %s", want, kind_name(v));
    return fail(w, at, MPROC_LOG_DEBUG, MPROC_EINVAL, why);
}

/* Where the group opening at p ends (just past its closing bracket; the
 * format is known good). */
static const char *group_end(const char *p)
{
    int depth = 0;
    do {
        if (*p == '[' || *p == '{') depth++;
        if (*p == ']' || *p == '}') depth--;
        p++;
    } while (depth);
    return p;
}

/* The strictness mark ('!', '*') that ends the group opening at p, or 0. */
static char group_mark(const char *p)
{
    const char *end = group_end(p) - 1; /* the closing bracket */
    while (end > p && seps(end - 1) == end) end--;
    return end > p && (end[-1] == '!' || end[-1] == '*') ? end[-1] : 0;
}

/* Checks (first walk) or stores (second walk) v against one item. skip:
 * the item is not there (an optional key that is absent, or inside a
 * nil that '?' let through): its arguments are read and nothing is
 * checked or written. v NULL stands for nil. */
static int up_item(walk *w, const mproc_value *v, bool skip, int depth)
{
    const char *at = w->p = seps(w->p);
    char c = *w->p++;
    bool counted = (c == 's' || c == 'y') && *w->p == '#';
    if (counted) w->p++;
    const char *after = c == '[' || c == '{' ? group_end(at) : w->p;
    bool opt = *after == '?';
    if (opt && !skip && mproc_value_kind_of(v) == MPROC_V_NIL) skip = true;
    bool store = w->write && !skip;
    int rc = 0;

    switch (c) {
    case 'n':
        if (!skip && mproc_value_kind_of(v) != MPROC_V_NIL) return mismatch(w, at, "nil", v);
        break;
    case 'b': {
        int *dst = va_arg(*w->ap, int *);
        bool b = false;
        if (!skip && mproc_value_get_bool(v, &b)) return mismatch(w, at, "a bool", v);
        if (store && dst) *dst = b;
        break;
    }
    case 'i':
    case 'I': {
        /* each read with its own type, as va_arg wants */
        int *dst32 = c == 'i' ? va_arg(*w->ap, int *) : NULL;
        int64_t *dst64 = c == 'I' ? va_arg(*w->ap, int64_t *) : NULL;
        int64_t i = 0;
        if (!skip) {
            if (mproc_value_kind_of(v) != MPROC_V_INT) return mismatch(w, at, "an int", v);
            if (mproc_value_get_int(v, &i) || (c == 'i' && (i < INT_MIN || i > INT_MAX)))
                return fail(w, at, MPROC_LOG_DEBUG, MPROC_ERANGE,
                            c == 'i' ? "the int does not fit an int"
                                     : "the int does not fit int64_t");
        }
        if (store && dst32) *dst32 = (int)i;
        if (store && dst64) *dst64 = i;
        break;
    }
    case 'u':
    case 'U': {
        unsigned *dst32 = c == 'u' ? va_arg(*w->ap, unsigned *) : NULL;
        uint64_t *dst64 = c == 'U' ? va_arg(*w->ap, uint64_t *) : NULL;
        uint64_t u = 0;
        if (!skip) {
            if (mproc_value_kind_of(v) != MPROC_V_INT) return mismatch(w, at, "an int", v);
            if (mproc_value_get_uint(v, &u) || (c == 'u' && u > UINT_MAX))
                return fail(w, at, MPROC_LOG_DEBUG, MPROC_ERANGE,
                            c == 'u' ? "the int does not fit an unsigned"
                                     : "the int does not fit uint64_t");
        }
        if (store && dst32) *dst32 = (unsigned)u;
        if (store && dst64) *dst64 = u;
        break;
    }
    case 'f': {
        double *dst = va_arg(*w->ap, double *);
        double d = 0;
        if (!skip && mproc_value_get_float(v, &d)) return mismatch(w, at, "a float or an int", v);
        if (store && dst) *dst = d;
        break;
    }
    case 's':
    case 'y': {
        const char **sdst = c == 's' ? va_arg(*w->ap, const char **) : NULL;
        const void **ydst = c == 'y' ? va_arg(*w->ap, const void **) : NULL;
        size_t *lenp = counted ? va_arg(*w->ap, size_t *) : NULL;
        const void *data = NULL;
        size_t len = 0;
        if (!skip) {
            data = c == 's' ? (const void *)mproc_value_get_str(v, &len)
                            : mproc_value_get_bytes(v, &len);
            if (!data) return mismatch(w, at, c == 's' ? "a string" : "bytes", v);
            if (!counted && strlen(data) != len)
                return fail(w, at, MPROC_LOG_DEBUG, MPROC_EINVAL,
                            "the string holds a NUL byte: read it with s#");
        }
        if (store && sdst) *sdst = data;
        if (store && ydst) *ydst = data;
        if (store && lenp) *lenp = len;
        break;
    }
    case 'o':
    case 'O': {
        mproc_value **dst = va_arg(*w->ap, mproc_value **);
        if (c == 'o') {
            if (store && dst) *dst = (mproc_value *)v;
        } else if (!skip && dst) {
            if (!w->write) {
                w->no++;
            } else {
                mproc_value *copy = v ? mproc_value_copy(v) : mproc_value_nil();
                if (!copy) return MPROC_ENOMEM;
                *dst = copy;
                w->o[w->ncopy++] = dst;
            }
        }
        break;
    }
    case '[': {
        bool strict = group_mark(at) != '*'; /* lists are strict unless they end with '*' */
        if (!skip && mproc_value_kind_of(v) != MPROC_V_LIST) return mismatch(w, at, "a list", v);
        size_t n = 0, len = skip ? 0 : mproc_value_len(v);
        for (;;) {
            w->p = seps(w->p);
            if (*w->p == '!' || *w->p == '*') w->p = seps(w->p + 1);
            if (*w->p == ']') {
                w->p++;
                break;
            }
            if (!skip && n >= len)
                return fail(w, at, MPROC_LOG_DEBUG, MPROC_EINVAL,
                            "the list is shorter than the format");
            if ((rc = up_item(w, skip ? NULL : mproc_value_list_get(v, n), skip, depth + 1)))
                return rc;
            n++;
        }
        if (!skip && strict && n != len)
            return fail(w, at, MPROC_LOG_DEBUG, MPROC_EINVAL,
                        "the list is longer than the format (end the list with * to allow it)");
        break;
    }
    case '{': {
        bool strict = group_mark(at) == '!'; /* maps are not unless they end with '!' */
        if (!skip && mproc_value_kind_of(v) != MPROC_V_MAP) return mismatch(w, at, "a map", v);
        size_t len = skip ? 0 : mproc_value_len(v), found = 0;
        bool *seen = NULL;
        if (strict && !skip && len && !(seen = calloc(len, sizeof *seen))) return MPROC_ENOMEM;
        for (;;) {
            w->p = seps(w->p);
            if (*w->p == '!' || *w->p == '*') w->p = seps(w->p + 1);
            if (*w->p == '}') {
                w->p++;
                break;
            }
            const char *kat = w->p;
            mproc_value *key;
            if ((rc = pk_item(w, &key, depth + 1, true))) break;
            bool optkey = *w->p == '?';
            if (optkey) w->p++;
            const mproc_value *val = skip ? NULL : mproc_value_map_get(v, key);
            if (!skip && !val && !optkey) {
                char *r = mproc_value_repr_alloc(key);
                char why[160];
                snprintf(why, sizeof why, "the map has no key %.120s", r ? r : "?");
                free(r);
                mproc_value_free(key);
                rc = fail(w, kat, MPROC_LOG_DEBUG, MPROC_ENOENT, why);
                break;
            }
            mproc_value_free(key);
            if (val && seen) {
                for (size_t e = 0; e < len; e++) {
                    mproc_value *ev;
                    mproc_value_map_entry(v, e, NULL, &ev);
                    if (ev == val) {
                        found += !seen[e];
                        seen[e] = true;
                        break;
                    }
                }
            }
            if ((rc = up_item(w, val, skip || !val, depth + 1))) break;
        }
        free(seen);
        if (rc) return rc;
        if (strict && !skip && found != len)
            return fail(w, at, MPROC_LOG_DEBUG, MPROC_EINVAL,
                        "the map has keys the format does not name (the format ends with !)");
        break;
    }
    }
    if (opt) w->p = after + 1;
    return 0;
}

int mproc__value_unpack_ap(const char *fn, const mproc_value *v, const char *fmt, va_list *ap)
{
    if (!fmt) {
        mproc_log(MPROC_LOG_ERROR, "%s: NULL format", fn);
        return MPROC_EINVAL;
    }
    syn s;
    if (!check_format(&s, fmt, M_UNPACK, false)) return format_error(fn, fmt, &s);

    /* First walk: check everything, write nothing. */
    va_list dry;
    va_copy(dry, *ap);
    walk w = {.fn = fn, .fmt = fmt, .p = fmt, .ap = &dry};
    int rc = up_item(&w, v, false, 0);
    va_end(dry);
    if (rc) return rc;

    /* Second walk: write. */
    walk w2 = {.fn = fn, .fmt = fmt, .p = fmt, .ap = ap, .write = true};
    if (w.no && !(w2.o = malloc(w.no * sizeof *w2.o))) return MPROC_ENOMEM;
    rc = up_item(&w2, v, false, 0);
    if (rc)
        for (size_t k = 0; k < w2.ncopy; k++) {
            mproc_value_free(*w2.o[k]);
            *w2.o[k] = NULL;
        }
    free(w2.o);
    return rc;
}

int mproc__value_unpack_owned(const char *fn, const char *fmt, const char *instead)
{
    syn s;
    if (!fmt) {
        mproc_log(MPROC_LOG_ERROR, "%s: NULL format", fn);
        return MPROC_EINVAL;
    }
    if (!check_format(&s, fmt, M_UNPACK, false)) return format_error(fn, fmt, &s);
    /* s, s#, y# and o borrow, except inside a map key (which is only read). */
    int depth = 0;
    bool is_map[MAXDEPTH + 1] = {false}, in_key[MAXDEPTH + 1] = {false};
    size_t n[MAXDEPTH + 1] = {0}; /* items seen in each open group */
    for (const char *p = fmt; *p; p++) {
        char c = *p;
        if (c == ']' || c == '}') {
            depth--;
            n[depth]++;
            continue;
        }
        if (c != '[' && c != '{' && !strchr("nbiIuUfsyoO", c)) continue;
        bool key = in_key[depth] || (is_map[depth] && n[depth] % 2 == 0);
        if (c == '[' || c == '{') {
            depth++;
            is_map[depth] = c == '{';
            in_key[depth] = key;
            n[depth] = 0;
            continue;
        }
        if (!key && (c == 's' || c == 'y' || c == 'o')) {
            mproc_log(MPROC_LOG_ERROR,
                      "%s: format \"%s\" would point into a value that is freed on return "
                      "(s, s#, y#, o): use O, or %s",
                      fn, fmt, instead);
            return MPROC_EINVAL;
        }
        n[depth]++;
    }
    return 0;
}

int mproc_value_vunpack(const mproc_value *v, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int rc = mproc__value_unpack_ap("mproc_value_unpack", v, fmt, &cp);
    va_end(cp);
    return rc;
}

int mproc_value_unpack(const mproc_value *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc__value_unpack_ap("mproc_value_unpack", v, fmt, &ap);
    va_end(ap);
    return rc;
}
