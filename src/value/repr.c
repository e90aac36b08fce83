/* The printer: a Python-like rendering of a value, as repr() would give
 * for the matching Python object.
 *
 *   nil None; bools True/False; ints in decimal; floats as Python's repr
 *   (the shortest digits that read back the same double, fixed notation
 *   for exponents -4..15 with ".0" for integral values, else d.ddde+XX;
 *   inf, -inf, nan); strings in quotes with Python's escapes (\\, the
 *   quote, \n, \r, \t, \xNN for other control characters, for C1
 *   controls, U+00A0 and U+00AD; double quotes when the string holds '
 *   and no "); bytes the same with b'' and \xNN for everything outside
 *   printable ASCII; lists [a, b]; maps {k: v}; handles <handle type:ref>.
 * Other non-ASCII characters are kept as they are (Python also escapes
 * the rarer non-printable code points beyond Latin-1, such as U+2028).
 * Strings that are not valid UTF-8 show their bytes >= 0x80 as \xNN.
 * Values nested deeper than MPROC__VALUE_NEST_MAX show as "...". */
#include "base/base.h"
#include "value/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *buf;
    size_t cap; /* bytes of buf usable for text (one kept for the NUL) */
    size_t len; /* the full length so far, written or not */
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;
        memcpy(o->buf + o->len, s, k);
    }
    o->len += n;
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putc_(out *o, char c)
{
    put(o, &c, 1);
}

/* Reads back "D.DDDe+X" made of nd digits and exp: equal to d? */
static bool reads_back(const char *digits, size_t nd, int exp, bool neg, double d)
{
    char s[48];
    size_t n = 0;
    if (neg) s[n++] = '-';
    s[n++] = digits[0];
    s[n++] = '.';
    memcpy(s + n, digits + 1, nd - 1);
    n += nd - 1;
    snprintf(s + n, sizeof s - n, "e%d", exp);
    return strtod(s, NULL) == d;
}

/* Adds delta (+1 or -1) to the last of nd digits, carrying; keeps nd
 * digits (adjusting exp) and returns false when that is not possible. */
static bool bump(char *digits, size_t nd, int *exp, int delta)
{
    size_t i = nd;
    while (i-- > 0) {
        int c = digits[i] - '0' + delta;
        if (c >= 0 && c <= 9) {
            digits[i] = (char)('0' + c);
            break;
        }
        digits[i] = delta > 0 ? '0' : '9';
        if (i == 0) {
            if (delta < 0) return false;         /* 1000 - 1: fewer digits */
            memmove(digits + 1, digits, nd - 1); /* 999 + 1 = 1000 */
            digits[0] = '1';
            ++*exp;
        }
    }
    return digits[0] != '0';
}

/* Python's repr: the shortest digits that read back as d (when the
 * correctly rounded ones at some length do not, the neighbour towards d
 * may), in fixed notation for exponents -4..15, else d.ddde+XX. */
static void put_float(out *o, double d)
{
    if (isnan(d)) {
        puts_(o, "nan");
        return;
    }
    if (isinf(d)) {
        puts_(o, d < 0 ? "-inf" : "inf");
        return;
    }
    bool neg = signbit(d);
    char digits[24];
    size_t nd = 0;
    int exp = 0;
    for (int prec = 0; prec < 17; prec++) {
        char e[40];
        snprintf(e, sizeof e, "%.*e", prec, fabs(d));
        nd = 0;
        const char *p = e;
        for (; *p != 'e'; p++)
            if (*p != '.') digits[nd++] = *p;
        exp = atoi(p + 1);
        if (strtod(e, NULL) == fabs(d)) break;
        char alt[24];
        int aexp = exp;
        memcpy(alt, digits, nd);
        if (bump(alt, nd, &aexp, strtod(e, NULL) < fabs(d) ? 1 : -1) &&
            reads_back(alt, nd, aexp, false, fabs(d))) {
            memcpy(digits, alt, nd);
            exp = aexp;
            break;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) putc_(o, '-');
    if (exp < -4 || exp >= 16) {
        char x[16];
        putc_(o, digits[0]);
        if (nd > 1) {
            putc_(o, '.');
            put(o, digits + 1, nd - 1);
        }
        snprintf(x, sizeof x, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        puts_(o, x);
        return;
    }
    if (exp < 0) {
        puts_(o, "0.");
        for (int i = -1; i > exp; i--) putc_(o, '0');
        put(o, digits, nd);
        return;
    }
    /* exp + 1 integer digits (padded with zeros), then the rest or "0". */
    size_t nint = (size_t)exp + 1;
    put(o, digits, nd < nint ? nd : nint);
    for (size_t i = nd; i < nint; i++) putc_(o, '0');
    putc_(o, '.');
    if (nd > nint)
        put(o, digits + nint, nd - nint);
    else
        putc_(o, '0');
}

/* The length of the UTF-8 sequence at s[0..n) (valid already checked). */
static size_t seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static void put_quoted(out *o, const unsigned char *s, size_t n, bool bytes)
{
    static const char hex[] = "0123456789abcdef";
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    bool utf8 = !bytes && mproc__utf8_valid(s, n);
    if (bytes) putc_(o, 'b');
    putc_(o, q);
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        const char *esc = NULL;
        bool hexesc = false;
        size_t step = 1;
        if (c == '\\')
            esc = "\\\\";
        else if (c == (unsigned char)q)
            esc = q == '\'' ? "\\'" : "\\\"";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
            hexesc = true;
        else if (c >= 0x80) { /* valid UTF-8: U+0080..U+00A0 and U+00AD escaped */
            step = seq_len(c);
            if (c == 0xc2 && (s[i + 1] <= 0xa0 || s[i + 1] == 0xad)) {
                c = s[i + 1];
                hexesc = true;
            }
        }
        if (esc || hexesc) {
            put(o, (const char *)s + run, i - run);
            if (hexesc) {
                char h[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
                put(o, h, 4);
            } else {
                puts_(o, esc);
            }
            run = i + step;
        }
        i += step;
    }
    put(o, (const char *)s + run, n - run);
    putc_(o, q);
}

static void repr_rec(out *o, const mproc_value *v, unsigned depth)
{
    char num[48];
    if (!v) {
        puts_(o, "None");
        return;
    }
    if (depth > MPROC__VALUE_NEST_MAX) {
        puts_(o, "...");
        return;
    }
    switch ((mproc_value_kind)v->kind) {
    case MPROC_V_NIL:
        puts_(o, "None");
        return;
    case MPROC_V_BOOL:
        puts_(o, MPROC__VSCALAR(v)->u.b ? "True" : "False");
        return;
    case MPROC_V_INT:
        if (v->is_uint)
            snprintf(num, sizeof num, "%" PRIu64, (uint64_t)MPROC__VSCALAR(v)->u.i);
        else
            snprintf(num, sizeof num, "%" PRId64, MPROC__VSCALAR(v)->u.i);
        puts_(o, num);
        return;
    case MPROC_V_FLOAT:
        put_float(o, MPROC__VSCALAR(v)->u.d);
        return;
    case MPROC_V_STR:
    case MPROC_V_BYTES:
        put_quoted(o, (const unsigned char *)MPROC__VSTR(v)->data, MPROC__VSTR(v)->len,
                   v->kind == MPROC_V_BYTES);
        return;
    case MPROC_V_HANDLE:
        snprintf(num, sizeof num, "<handle %" PRIu32 ":%" PRIu64 ">", v->htype,
                 MPROC__VSCALAR(v)->u.ref);
        puts_(o, num);
        return;
    case MPROC_V_LIST: {
        const mproc__vlist *l = MPROC__VLIST(v);
        putc_(o, '[');
        for (size_t i = 0; i < l->len; i++) {
            if (i) put(o, ", ", 2);
            repr_rec(o, l->items[i], depth + 1);
        }
        putc_(o, ']');
        return;
    }
    case MPROC_V_MAP: {
        const mproc__vmap *m = MPROC__VMAP(v);
        putc_(o, '{');
        for (size_t i = 0; i < m->len; i++) {
            if (i) put(o, ", ", 2);
            repr_rec(o, m->ents[i].key, depth + 1);
            put(o, ": ", 2);
            repr_rec(o, m->ents[i].val, depth + 1);
        }
        putc_(o, '}');
        return;
    }
    }
}

size_t mproc_value_repr(const mproc_value *v, char *buf, size_t cap)
{
    out o = {buf, buf && cap ? cap - 1 : 0, 0};
    repr_rec(&o, v, 0);
    if (buf && cap) buf[o.len < o.cap ? o.len : o.cap] = '\0';
    return o.len;
}

char *mproc_value_repr_alloc(const mproc_value *v)
{
    size_t n = mproc_value_repr(v, NULL, 0);
    char *s = malloc(n + 1);
    if (s) mproc_value_repr(v, s, n + 1);
    return s;
}

/* buf holds the first cap - 1 bytes of a rendering of n bytes: mark a cut. */
static const char *mark_cut(char *buf, size_t cap, size_t n)
{
    if (n >= cap && cap >= 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

const char *mproc_value_repr_buf(const mproc_value *v, char *buf, size_t cap)
{
    return mark_cut(buf, cap, mproc_value_repr(v, buf, cap));
}

const char *mproc_value_str_buf(const mproc_value *v, char *buf, size_t cap)
{
    if (!v || mproc_value_kind_of(v) != MPROC_V_STR) return mproc_value_repr_buf(v, buf, cap);
    size_t len;
    const char *s = mproc_value_get_str(v, &len);
    if (cap == 0) return buf;
    size_t k = len < cap - 1 ? len : cap - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';
    return mark_cut(buf, cap, len);
}
