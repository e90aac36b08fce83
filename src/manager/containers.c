/* The manager's built-in container types: list, dict, set, Namespace,
 * Value and Array. An object's state is a value tree under a mutex;
 * references to other objects inside it are held (mproc__mgr_hold). */
#include "manager/manager.h"
#include "value/value.h"

#include <stdlib.h>
#include <string.h>

typedef struct box {
    pthread_mutex_t mu;
    mproc_value *v;
    mproc_value_kind want; /* Array: the kind of its items (0: any) */
    char code;             /* Value, Array: the typecode */
} box;

static size_t nargs(const mproc_value *args)
{
    return args && mproc_value_kind_of(args) == MPROC_V_LIST ? mproc_value_len(args) : 0;
}

/* Why the last keep failed. */
static _Thread_local int keep_err;

/* A copy of an argument, stored by a container (its references held), or
 * NULL: keep_err says why (a missing argument, a reference to no object,
 * no memory). */
static mproc_value *keep(const mproc_value *v)
{
    if (!v) {
        keep_err = mproc__mgr_fail(MPROC_EINVAL, "a value argument is missing");
        return NULL;
    }
    mproc_value *c = mproc_value_copy(v);
    if (!c) {
        keep_err = MPROC_ENOMEM;
        return NULL;
    }
    if (!mproc__mgr_hold_new(c)) {
        mproc_value_free(c);
        keep_err = mproc__mgr_fail(MPROC_EINVAL, "a reference names no object");
        return NULL;
    }
    return c;
}

static void drop(mproc_value *v)
{
    if (!v) return;
    mproc__mgr_hold(v, -1);
    mproc_value_free(v);
}

/* gcc 12 at -O2 merges the two tests of `!b || !v` and its analyzer then
 * takes b for possibly NULL below. */
MPROC__ANALYZER_OFF("-Wanalyzer-possible-null-dereference")
static int new_box(mproc_value *v, void **state)
{
    box *b = calloc(1, sizeof *b);
    if (!b || !v) {
        free(b);
        drop(v);
        return MPROC_ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->v = v;
    *state = b;
    return 0;
}
MPROC__ANALYZER_ON

static void box_destroy(void *state)
{
    box *b = state;
    drop(b->v);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Runs the statements (commas allowed) with the box locked. */
#define LOCKED(b, ...)                                                                             \
    do {                                                                                           \
        MPROC__LOCK(&(b)->mu);                                                                     \
        __VA_ARGS__;                                                                               \
        MPROC__UNLOCK(&(b)->mu);                                                                   \
    } while (0)

/* An index argument, Python style (negative from the end). */
static int index_arg(const mproc_value *a, size_t len, bool insert, size_t *out)
{
    int64_t i;
    if (mproc_value_get_int(a, &i)) return mproc__mgr_fail(MPROC_EINVAL, "index must be an int");
    if (i < 0) i += (int64_t)len;
    if (insert) {
        if (i < 0) i = 0;
        if ((uint64_t)i > len) i = (int64_t)len;
    } else if (i < 0 || (uint64_t)i >= len) {
        return mproc__mgr_fail(MPROC_ERANGE, "list index out of range");
    }
    *out = (size_t)i;
    return 0;
}

/* ---- list --------------------------------------------------------------------- */

static int list_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 1, "list()", "[[1, 2]] makes list([1, 2])");
    if (rc) return rc;
    const mproc_value *init = mproc__mgr_arg(args, 0);
    if (init && mproc_value_kind_of(init) == MPROC_V_NIL) init = NULL;
    if (init && mproc_value_kind_of(init) != MPROC_V_LIST)
        return mproc__mgr_fail(MPROC_EINVAL,
                               "list([...]) takes a list: [[1, 2]] makes list([1, 2]), [] list()");
    mproc_value *v = init ? keep(init) : mproc_value_list();
    return v ? new_box(v, state) : init ? keep_err : MPROC_ENOMEM;
}

static int list_insert_at(mproc__vlist *l, size_t i, mproc_value *x)
{
    if (!x) return keep_err;
    if (mproc__list_reserve((mproc_value *)l, 1)) {
        drop(x);
        return MPROC_ENOMEM;
    }
    memmove(&l->items[i + 1], &l->items[i], (l->len - i) * sizeof *l->items);
    l->items[i] = x;
    l->len++;
    return 0;
}

static mproc_value *list_take(mproc__vlist *l, size_t i)
{
    mproc_value *x = l->items[i];
    memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof *l->items);
    l->len--;
    return x;
}

static int l_append(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    int rc;
    LOCKED(b, rc = list_insert_at(MPROC__VLIST(b->v), MPROC__VLIST(b->v)->len,
                                  keep(mproc__mgr_arg(a, 0))));
    return rc;
}

static int l_extend(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    const mproc_value *xs = mproc__mgr_arg(a, 0);
    if (mproc_value_kind_of(xs) != MPROC_V_LIST)
        return mproc__mgr_fail(MPROC_EINVAL, "extend() takes a list");
    int rc = 0;
    LOCKED(b, for (size_t i = 0; i < mproc_value_len(xs) && !rc; i++) rc = list_insert_at(
                  MPROC__VLIST(b->v), MPROC__VLIST(b->v)->len, keep(mproc_value_list_get(xs, i))));
    return rc;
}

static int l_getitem(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    int rc;
    size_t i = 0; /* (set by index_arg when it succeeds) */
    LOCKED(b, if (!(rc = index_arg(mproc__mgr_arg(a, 0), MPROC__VLIST(b->v)->len, false, &i))) rc =
                  (*r = mproc_value_copy(MPROC__VLIST(b->v)->items[i])) ? 0 : MPROC_ENOMEM);
    return rc;
}

static int l_setitem(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    int rc;
    size_t i = 0; /* (set by index_arg when it succeeds) */
    mproc_value *x = keep(mproc__mgr_arg(a, 1)), *old = NULL;
    if (!x) return keep_err;
    LOCKED(
        b, if (!(rc = index_arg(mproc__mgr_arg(a, 0), MPROC__VLIST(b->v)->len, false, &i))) {
            old = MPROC__VLIST(b->v)->items[i];
            MPROC__VLIST(b->v)->items[i] = x;
            x = NULL;
        });
    drop(old);
    drop(x);
    return rc;
}

static int l_delitem(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    int rc;
    size_t i = 0; /* (set by index_arg when it succeeds) */
    mproc_value *old = NULL;
    LOCKED(b, if (!(rc = index_arg(mproc__mgr_arg(a, 0), MPROC__VLIST(b->v)->len, false, &i))) old =
                  list_take(MPROC__VLIST(b->v), i));
    drop(old);
    return rc;
}

static int l_pop(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    int rc = 0;
    size_t i = 0;
    mproc_value *old = NULL;
    LOCKED(b, {
        mproc__vlist *l = MPROC__VLIST(b->v);
        if (l->len == 0)
            rc = mproc__mgr_fail(MPROC_ERANGE, "pop from empty list");
        else if (nargs(a) == 0)
            i = l->len - 1;
        else
            rc = index_arg(mproc__mgr_arg(a, 0), l->len, false, &i);
        if (!rc) old = list_take(l, i);
    });
    if (old) mproc__mgr_result_owned(); /* the list's references pass to the caller */
    *r = old;
    return rc;
}

static int l_insert(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    int rc;
    size_t i = 0; /* (set by index_arg when it succeeds) */
    mproc_value *x = keep(mproc__mgr_arg(a, 1));
    LOCKED(
        b, if (!(rc = index_arg(mproc__mgr_arg(a, 0), MPROC__VLIST(b->v)->len, true, &i))) {
            rc = list_insert_at(MPROC__VLIST(b->v), i, x);
            x = NULL;
        });
    drop(x);
    return rc;
}

/* The first index of x at or after `from`, or -1. */
static long find(const mproc__vlist *l, const mproc_value *x)
{
    for (size_t i = 0; i < l->len; i++)
        if (mproc_value_equal(l->items[i], x)) return (long)i;
    return -1;
}

static int l_remove(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    mproc_value *old = NULL;
    LOCKED(b, {
        long i = find(MPROC__VLIST(b->v), mproc__mgr_arg(a, 0));
        if (i >= 0) old = list_take(MPROC__VLIST(b->v), (size_t)i);
    });
    if (!old) return mproc__mgr_fail(MPROC_ENOENT, "list.remove(x): x not in list");
    drop(old);
    return 0;
}

static int l_index(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    long i;
    LOCKED(b, i = find(MPROC__VLIST(b->v), mproc__mgr_arg(a, 0)));
    if (i < 0) return mproc__mgr_fail(MPROC_ENOENT, "x is not in list");
    return (*r = mproc_value_int(i)) ? 0 : MPROC_ENOMEM;
}

static int l_count(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    int64_t n = 0;
    LOCKED(b, for (size_t i = 0; i < MPROC__VLIST(b->v)->len; i++) n +=
              mproc_value_equal(MPROC__VLIST(b->v)->items[i], mproc__mgr_arg(a, 0)));
    return (*r = mproc_value_int(n)) ? 0 : MPROC_ENOMEM;
}

static int l_contains(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    long i;
    LOCKED(b, i = find(MPROC__VLIST(b->v), mproc__mgr_arg(a, 0)));
    return (*r = mproc_value_bool(i >= 0)) ? 0 : MPROC_ENOMEM;
}

/* Python-like order over numbers, strings and bytes; 2 when unordered. */
static int order(const mproc_value *x, const mproc_value *y)
{
    mproc_value_kind kx = mproc_value_kind_of(x), ky = mproc_value_kind_of(y);
    double dx, dy;
    bool nx = kx == MPROC_V_INT || kx == MPROC_V_FLOAT,
         ny = ky == MPROC_V_INT || ky == MPROC_V_FLOAT;
    if (nx && ny) {
        int64_t ix, iy;
        if (kx == MPROC_V_INT && ky == MPROC_V_INT && !mproc_value_get_int(x, &ix) &&
            !mproc_value_get_int(y, &iy))
            return ix < iy ? -1 : ix > iy;
        if (kx == MPROC_V_INT && !mproc_value_get_int(x, &ix))
            dx = (double)ix;
        else
            mproc_value_get_float(x, &dx);
        if (ky == MPROC_V_INT && !mproc_value_get_int(y, &iy))
            dy = (double)iy;
        else
            mproc_value_get_float(y, &dy);
        return dx < dy ? -1 : dx > dy;
    }
    if (kx != ky || (kx != MPROC_V_STR && kx != MPROC_V_BYTES)) return 2;
    size_t lx, ly;
    const void *px = kx == MPROC_V_STR ? (const void *)mproc_value_get_str(x, &lx)
                                       : mproc_value_get_bytes(x, &lx);
    const void *py = ky == MPROC_V_STR ? (const void *)mproc_value_get_str(y, &ly)
                                       : mproc_value_get_bytes(y, &ly);
    int c = memcmp(px, py, lx < ly ? lx : ly);
    return c < 0 ? -1 : c > 0 ? 1 : lx < ly ? -1 : lx > ly;
}

static int l_sort(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    (void)r;
    box *b = s;
    int rc = 0;
    LOCKED(b, {
        mproc__vlist *l = MPROC__VLIST(b->v);
        /* insertion sort: stable, and stops at the first unorderable pair */
        for (size_t i = 1; i < l->len && !rc; i++) {
            mproc_value *x = l->items[i];
            size_t j = i;
            for (; j > 0; j--) {
                int c = order(l->items[j - 1], x);
                if (c == 2) {
                    rc = mproc__mgr_fail(MPROC_EINVAL, "the list holds values that do not order");
                    break;
                }
                if (c <= 0) break;
                l->items[j] = l->items[j - 1];
            }
            l->items[j] = x;
        }
    });
    return rc;
}

static int l_reverse(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    (void)r;
    box *b = s;
    LOCKED(b, {
        mproc__vlist *l = MPROC__VLIST(b->v);
        for (size_t i = 0; i < l->len / 2; i++) {
            mproc_value *t = l->items[i];
            l->items[i] = l->items[l->len - 1 - i];
            l->items[l->len - 1 - i] = t;
        }
    });
    return 0;
}

static int l_getslice(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    int rc = 0;
    LOCKED(b, {
        size_t len = MPROC__VLIST(b->v)->len, lo = 0, hi = len;
        if (nargs(a) > 0 && mproc_value_kind_of(mproc__mgr_arg(a, 0)) != MPROC_V_NIL)
            rc = index_arg(mproc__mgr_arg(a, 0), len, true, &lo);
        if (!rc && nargs(a) > 1 && mproc_value_kind_of(mproc__mgr_arg(a, 1)) != MPROC_V_NIL)
            rc = index_arg(mproc__mgr_arg(a, 1), len, true, &hi);
        mproc_value *out = rc ? NULL : mproc_value_list();
        if (!rc && !out) rc = MPROC_ENOMEM;
        for (size_t i = lo; !rc && i < hi; i++)
            rc = mproc_value_list_append(out, mproc_value_copy(MPROC__VLIST(b->v)->items[i]));
        if (rc)
            mproc_value_free(out);
        else
            *r = out;
    });
    return rc;
}

static int l_setslice(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    const mproc_value *xs = mproc__mgr_arg(a, 2);
    if (mproc_value_kind_of(xs) != MPROC_V_LIST)
        return mproc__mgr_fail(MPROC_EINVAL, "setslice(start, stop, list)");
    int rc = 0;
    LOCKED(b, {
        mproc__vlist *l = MPROC__VLIST(b->v);
        size_t lo = 0, hi = l->len;
        if (mproc_value_kind_of(mproc__mgr_arg(a, 0)) != MPROC_V_NIL)
            rc = index_arg(mproc__mgr_arg(a, 0), l->len, true, &lo);
        if (!rc && mproc_value_kind_of(mproc__mgr_arg(a, 1)) != MPROC_V_NIL)
            rc = index_arg(mproc__mgr_arg(a, 1), l->len, true, &hi);
        if (hi < lo) hi = lo;
        for (size_t i = lo; !rc && i < hi; i++) drop(list_take(l, lo));
        for (size_t i = 0; !rc && i < mproc_value_len(xs); i++)
            rc = list_insert_at(l, lo + i, keep(mproc_value_list_get(xs, i)));
    });
    return rc;
}

static int copy_all(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    box *b = s;
    LOCKED(b, *r = mproc_value_copy(b->v));
    return *r ? 0 : MPROC_ENOMEM;
}

static int len_of(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    box *b = s;
    size_t n;
    LOCKED(b, n = mproc_value_len(b->v));
    return (*r = mproc_value_int((int64_t)n)) ? 0 : MPROC_ENOMEM;
}

static const mproc_method_def list_methods[] = {
    {"append", l_append, NULL},     {"extend", l_extend, NULL},     {"getitem", l_getitem, NULL},
    {"setitem", l_setitem, NULL},   {"delitem", l_delitem, NULL},   {"getslice", l_getslice, NULL},
    {"setslice", l_setslice, NULL}, {"len", len_of, NULL},          {"pop", l_pop, NULL},
    {"insert", l_insert, NULL},     {"remove", l_remove, NULL},     {"index", l_index, NULL},
    {"count", l_count, NULL},       {"sort", l_sort, NULL},         {"reverse", l_reverse, NULL},
    {"copy", copy_all, NULL},       {"contains", l_contains, NULL},
};

/* ---- dict (also set and Namespace, which are dicts inside) -------------------------- */

static int d_set(box *b, const mproc_value *k, const mproc_value *v);

/* dict(), dict({...}) and dict(k=v) (a map), dict of [key, value] pairs;
 * call names the type for the messages (Namespace is a dict). */
static int dict_make(const mproc_value *args, void **state, const char *call, const char *form)
{
    int rc = mproc__mgr_at_most(args, 1, call, form);
    if (rc) return rc;
    const mproc_value *init = mproc__mgr_arg(args, 0);
    mproc_value_kind k = mproc_value_kind_of(init);
    if (k == MPROC_V_NIL) init = NULL;
    bool pairs = k == MPROC_V_LIST && strcmp(call, "dict()") == 0;
    if (init && k != MPROC_V_MAP && !pairs)
        return mproc__mgr_fail(MPROC_EINVAL, "%s: %s", call, form);
    for (size_t i = 0; pairs && i < mproc_value_len(init); i++) {
        const mproc_value *p = mproc_value_list_get(init, i);
        if (mproc_value_kind_of(p) != MPROC_V_LIST || mproc_value_len(p) != 2)
            return mproc__mgr_fail(MPROC_EINVAL,
                                   "dict([...]) takes a list of [key, value] pairs: item %zu is "
                                   "not a pair; [[[\"k\", 1]]] makes dict([(\"k\", 1)])",
                                   i);
    }
    mproc_value *v = init && !pairs ? keep(init) : mproc_value_map();
    if (!v) return init && !pairs ? keep_err : MPROC_ENOMEM;
    if ((rc = new_box(v, state))) return rc;
    for (size_t i = 0; pairs && !rc && i < mproc_value_len(init); i++) {
        const mproc_value *p = mproc_value_list_get(init, i);
        rc = d_set(*state, mproc_value_list_get(p, 0), mproc_value_list_get(p, 1));
    }
    if (rc) { /* the server keeps no state of a failed constructor */
        box_destroy(*state);
        *state = NULL;
    }
    return rc;
}

static int dict_create(const mproc_value *args, void **state)
{
    return dict_make(args, state, "dict()",
                     "dict({...}) takes a map (dict(k=v) is one too) or a list of [key, value] "
                     "pairs: [{\"k\": 1}] makes dict(k=1)");
}

static int d_set(box *b, const mproc_value *k, const mproc_value *v)
{
    if (!k) return mproc__mgr_fail(MPROC_EINVAL, "a key argument is missing");
    mproc_value *vc = keep(v), *old = NULL;
    if (!vc) return keep_err;
    int rc = 0;
    LOCKED(b, {
        mproc_value *cur = mproc_value_map_get(b->v, k);
        /* A new key holds the references it names too. */
        mproc_value *kc = cur ? mproc_value_copy(k) : keep(k);
        if (!kc) {
            rc = cur ? MPROC_ENOMEM : keep_err;
        } else {
            old = cur ? mproc_value_copy(cur) : NULL; /* its references, dropped below */
            rc = mproc_value_map_set(b->v, kc, vc);   /* takes both, also on failure */
            vc = NULL;
            if (rc) { /* the copies are gone: their references with them */
                mproc__mgr_hold(v, -1);
                if (!cur) mproc__mgr_hold(k, -1);
            }
        }
    });
    drop(vc);
    if (old) mproc__mgr_hold(old, -1);
    mproc_value_free(old);
    return rc;
}

static int d_setitem(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    if (nargs(a) < 2) return mproc__mgr_fail(MPROC_EINVAL, "setitem(key, value)");
    return d_set(s, mproc__mgr_arg(a, 0), mproc__mgr_arg(a, 1));
}

static int d_get_common(void *s, const mproc_value *a, mproc_value **r, bool need)
{
    box *b = s;
    const mproc_value *k = mproc__mgr_arg(a, 0);
    int rc = 0;
    LOCKED(b, {
        mproc_value *v = k ? mproc_value_map_get(b->v, k) : NULL;
        if (v)
            rc = (*r = mproc_value_copy(v)) ? 0 : MPROC_ENOMEM;
        else if (need)
            rc = mproc__mgr_fail(MPROC_ENOENT, "KeyError");
        else if (nargs(a) > 1)
            rc = (*r = mproc_value_copy(mproc__mgr_arg(a, 1))) ? 0 : MPROC_ENOMEM;
    });
    return rc;
}

static int d_getitem(void *s, const mproc_value *a, mproc_value **r)
{
    return d_get_common(s, a, r, true);
}

static int d_get(void *s, const mproc_value *a, mproc_value **r)
{
    return d_get_common(s, a, r, false);
}

/* Removes key: *old gets its value (NULL if absent). */
static void d_take(box *b, const mproc_value *k, mproc_value **old)
{
    *old = NULL;
    LOCKED(b, {
        mproc_value *v = k ? mproc_value_map_get(b->v, k) : NULL;
        if (v && (*old = mproc_value_copy(v))) mproc_value_map_del(b->v, k);
    });
    if (*old) mproc__mgr_hold(k, -1); /* the key's references */
}

static int d_delitem(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    mproc_value *old;
    d_take(s, mproc__mgr_arg(a, 0), &old);
    if (!old) return mproc__mgr_fail(MPROC_ENOENT, "KeyError");
    drop(old);
    return 0;
}

static int d_pop(void *s, const mproc_value *a, mproc_value **r)
{
    mproc_value *old;
    d_take(s, mproc__mgr_arg(a, 0), &old);
    if (old) {
        mproc__mgr_result_owned(); /* the value's references pass to the caller */
        *r = old;
        return 0;
    }
    if (nargs(a) > 1) return (*r = mproc_value_copy(mproc__mgr_arg(a, 1))) ? 0 : MPROC_ENOMEM;
    return mproc__mgr_fail(MPROC_ENOENT, "KeyError");
}

/* Sets k to v unless k is there. */
static int d_set_if_absent(box *b, const mproc_value *k, const mproc_value *v)
{
    bool has;
    LOCKED(b, has = mproc_value_map_get(b->v, k) != NULL);
    return has ? 0 : d_set(b, k, v); /* (a racing set of the same key wins: fine) */
}

static int d_setdefault(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    const mproc_value *k = mproc__mgr_arg(a, 0), *dv = mproc__mgr_arg(a, 1);
    if (!k) return mproc__mgr_fail(MPROC_EINVAL, "setdefault(key[, default])");
    mproc_value *nil = dv ? NULL : mproc_value_nil();
    int rc = d_set_if_absent(b, k, dv ? dv : nil);
    mproc_value_free(nil);
    if (rc) return rc;
    LOCKED(b, {
        mproc_value *v = mproc_value_map_get(b->v, k);
        rc = v && (*r = mproc_value_copy(v)) ? 0 : MPROC_ENOMEM;
    });
    return rc;
}

/* keys (0), values (1) or items (2) as a list. */
static int d_view(void *s, mproc_value **r, int what)
{
    box *b = s;
    int rc = 0;
    mproc_value *out = mproc_value_list();
    if (!out) return MPROC_ENOMEM;
    LOCKED(
        b, for (size_t i = 0; i < mproc_value_len(b->v) && !rc; i++) {
            mproc_value *k, *v;
            mproc_value_map_entry(b->v, i, &k, &v);
            mproc_value *e;
            if (what == 2) {
                e = mproc_value_list();
                if (e && (mproc_value_list_append(e, mproc_value_copy(k)) ||
                          mproc_value_list_append(e, mproc_value_copy(v)))) {
                    mproc_value_free(e);
                    e = NULL;
                }
            } else {
                e = mproc_value_copy(what ? v : k);
            }
            rc = e ? mproc_value_list_append(out, e) : MPROC_ENOMEM;
        });
    if (rc) {
        mproc_value_free(out);
        return rc;
    }
    *r = out;
    return 0;
}

static int d_keys(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return d_view(s, r, 0);
}
static int d_values(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return d_view(s, r, 1);
}
static int d_items(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return d_view(s, r, 2);
}

static int d_update(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    const mproc_value *m = mproc__mgr_arg(a, 0);
    if (mproc_value_kind_of(m) != MPROC_V_MAP) return mproc__mgr_fail(MPROC_EINVAL, "update(map)");
    for (size_t i = 0; i < mproc_value_len(m); i++) {
        mproc_value *k, *v;
        mproc_value_map_entry(m, i, &k, &v);
        int rc = d_set(s, k, v);
        if (rc) return rc;
    }
    return 0;
}

static int d_contains(void *s, const mproc_value *a, mproc_value **r)
{
    box *b = s;
    bool has;
    LOCKED(b, has = mproc__mgr_arg(a, 0) && mproc_value_map_get(b->v, mproc__mgr_arg(a, 0)));
    return (*r = mproc_value_bool(has)) ? 0 : MPROC_ENOMEM;
}

static int d_clear(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    (void)r;
    box *b = s;
    mproc_value *fresh = mproc_value_map(), *old;
    if (!fresh) return MPROC_ENOMEM;
    LOCKED(b, {
        old = b->v;
        b->v = fresh;
    });
    drop(old);
    return 0;
}

static const mproc_method_def dict_methods[] = {
    {"getitem", d_getitem, NULL}, {"setitem", d_setitem, NULL},
    {"delitem", d_delitem, NULL}, {"get", d_get, NULL},
    {"keys", d_keys, NULL},       {"values", d_values, NULL},
    {"items", d_items, NULL},     {"update", d_update, NULL},
    {"pop", d_pop, NULL},         {"setdefault", d_setdefault, NULL},
    {"len", len_of, NULL},        {"contains", d_contains, NULL},
    {"clear", d_clear, NULL},     {"copy", copy_all, NULL},
};

/* A set is a map of its members to nil; copy gives the members as a list. */
static int set_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 1, "set()", "[[1, 2]] makes set([1, 2])");
    if (rc) return rc;
    const mproc_value *init = mproc__mgr_arg(args, 0);
    if (init && mproc_value_kind_of(init) == MPROC_V_NIL) init = NULL;
    if (init && mproc_value_kind_of(init) != MPROC_V_LIST)
        return mproc__mgr_fail(MPROC_EINVAL,
                               "set([...]) takes a list: [[1, 2]] makes set([1, 2]), [] set()");
    rc = new_box(mproc_value_map(), state);
    if (rc) return rc;
    for (size_t i = 0; !rc && init && i < mproc_value_len(init); i++) {
        mproc_value *nil = mproc_value_nil();
        rc = d_set(*state, mproc_value_list_get(init, i), nil);
        mproc_value_free(nil);
    }
    if (rc) { /* the server keeps no state of a failed constructor */
        box_destroy(*state);
        *state = NULL;
    }
    return rc;
}

static int s_add(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    mproc_value *nil = mproc_value_nil();
    int rc = mproc__mgr_arg(a, 0) ? d_set(s, mproc__mgr_arg(a, 0), nil)
                                  : mproc__mgr_fail(MPROC_EINVAL, "add(x)");
    mproc_value_free(nil);
    return rc;
}

static int s_discard(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    mproc_value *old;
    d_take(s, mproc__mgr_arg(a, 0), &old);
    drop(old);
    return 0;
}

static int s_copy(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return d_view(s, r, 0);
}

static const mproc_method_def set_methods[] = {
    {"add", s_add, NULL},           {"discard", s_discard, NULL}, {"remove", d_delitem, NULL},
    {"contains", d_contains, NULL}, {"len", len_of, NULL},        {"copy", s_copy, NULL},
    {"clear", d_clear, NULL},
};

static int ns_create(const mproc_value *args, void **state)
{
    return dict_make(args, state, "Namespace()",
                     "Namespace({...}) takes a map of attributes: [{\"x\": 1}] makes "
                     "Namespace(x=1)");
}

static const mproc_method_def ns_methods[] = {
    {"getattr", d_getitem, NULL},
    {"setattr", d_setitem, NULL},
    {"delattr", d_delitem, NULL},
    {"copy", copy_all, NULL},
};

/* ---- Value and Array: [typecode, value] ---------------------------------------------- */

static mproc_value_kind kind_of_code(const mproc_value *code)
{
    const char *c = mproc_value_get_str(code, NULL);
    if (!c) return MPROC_V_NIL;
    if (strchr("bBhHiIlLqQ", c[0]) && c[0] && !c[1]) return MPROC_V_INT;
    if ((c[0] == 'f' || c[0] == 'd') && !c[1]) return MPROC_V_FLOAT;
    if (c[0] == 'c' && !c[1]) return MPROC_V_BYTES;
    if (c[0] == 'u' && !c[1]) return MPROC_V_STR;
    return MPROC_V_NIL;
}

/* An int v fits typecode c (else Python raises OverflowError): 'l' and
 * 'L' are C longs, 64 bits. */
static bool int_fits(char c, const mproc_value *v)
{
    if (mproc_value_is_uint(v)) return c == 'L' || c == 'Q'; /* above INT64_MAX */
    int64_t i = 0;
    mproc_value_get_int(v, &i);
    switch (c) {
    case 'b':
        return i >= INT8_MIN && i <= INT8_MAX;
    case 'B':
        return i >= 0 && i <= UINT8_MAX;
    case 'h':
        return i >= INT16_MIN && i <= INT16_MAX;
    case 'H':
        return i >= 0 && i <= UINT16_MAX;
    case 'i':
        return i >= INT32_MIN && i <= INT32_MAX;
    case 'I':
        return i >= 0 && i <= UINT32_MAX;
    case 'L':
    case 'Q':
        return i >= 0;
    default: /* 'l', 'q' */
        return true;
    }
}

static int checked(const box *b, const mproc_value *v)
{
    mproc_value_kind k = mproc_value_kind_of(v);
    if (b->want == MPROC_V_FLOAT && k == MPROC_V_INT) return 0;
    if (k != b->want) return mproc__mgr_fail(MPROC_EINVAL, "wrong type for the typecode");
    if (k == MPROC_V_INT && !int_fits(b->code, v))
        return mproc__mgr_fail(MPROC_ERANGE, "int out of range for typecode '%c'", b->code);
    return 0;
}

static char code_of(const mproc_value *code)
{
    const char *c = mproc_value_get_str(code, NULL);
    return c ? c[0] : 0;
}

/* A copy of v as the box stores it: an int given to a float box becomes a
 * float, as Python's Value('d') does. */
static mproc_value *as_stored(const box *b, const mproc_value *v)
{
    int64_t i;
    if (b->want == MPROC_V_FLOAT && !mproc_value_get_int(v, &i))
        return mproc_value_float((double)i);
    return mproc_value_copy(v);
}

static int value_create(const mproc_value *args, void **state)
{
    int rc0 = mproc__mgr_at_most(args, 2, "Value()", "[\"i\", 0] makes Value('i', 0)");
    if (rc0) return rc0;
    mproc_value_kind k = kind_of_code(mproc__mgr_arg(args, 0));
    if (k == MPROC_V_NIL)
        return mproc__mgr_fail(MPROC_EINVAL,
                               "Value(typecode, value): the first argument is a typecode (\"i\", "
                               "\"d\", ...); [\"i\", 0] makes Value('i', 0)");
    box tmp = {.want = k, .code = code_of(mproc__mgr_arg(args, 0))};
    const mproc_value *init = mproc__mgr_arg(args, 1);
    int rc = init ? checked(&tmp, init) : 0;
    if (rc) return rc;
    rc = new_box(init                 ? as_stored(&tmp, init)
                 : k == MPROC_V_FLOAT ? mproc_value_float(0)
                                      : mproc_value_int(0),
                 state);
    if (!rc) {
        ((box *)*state)->want = k;
        ((box *)*state)->code = tmp.code;
    }
    return rc;
}

static int v_get(void *s, const mproc_value *a, mproc_value **r)
{
    return copy_all(s, a, r);
}

static int v_set(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    box *b = s;
    const mproc_value *v = mproc__mgr_arg(a, 0);
    int rc = checked(b, v);
    if (rc) return rc;
    mproc_value *c = as_stored(b, v), *old;
    if (!c) return MPROC_ENOMEM;
    LOCKED(b, {
        old = b->v;
        b->v = c;
    });
    mproc_value_free(old);
    return 0;
}

static const mproc_method_def value_methods[] = {{"get", v_get, NULL}, {"set", v_set, NULL}};

static int array_create(const mproc_value *args, void **state)
{
    int rc0 =
        mproc__mgr_at_most(args, 2, "Array()", "[\"d\", [1.5, 2]] makes Array('d', [1.5, 2])");
    if (rc0) return rc0;
    mproc_value_kind k = kind_of_code(mproc__mgr_arg(args, 0));
    const mproc_value *init = mproc__mgr_arg(args, 1);
    if (k == MPROC_V_NIL || mproc_value_kind_of(init) != MPROC_V_LIST)
        return mproc__mgr_fail(MPROC_EINVAL, "Array(typecode, [...]): a typecode and a list; "
                                             "[\"d\", [1.5, 2]] makes Array('d', [1.5, 2])");
    box tmp = {.want = k, .code = code_of(mproc__mgr_arg(args, 0))};
    for (size_t i = 0; i < mproc_value_len(init); i++) {
        int rc = checked(&tmp, mproc_value_list_get(init, i));
        if (rc) return rc;
    }
    int rc = new_box(mproc_value_copy(init), state);
    if (!rc) {
        ((box *)*state)->want = k;
        ((box *)*state)->code = tmp.code;
    }
    return rc;
}

static int a_setitem(void *s, const mproc_value *a, mproc_value **r)
{
    int rc = checked(s, mproc__mgr_arg(a, 1));
    return rc ? rc : l_setitem(s, a, r);
}

static const mproc_method_def array_methods[] = {
    {"getitem", l_getitem, NULL},
    {"setitem", a_setitem, NULL},
    {"len", len_of, NULL},
    {"copy", copy_all, NULL},
};

const mproc_type_def mproc__mgr_container_types[] = {
    {"list", list_create, box_destroy, list_methods, MPROC__COUNTOF(list_methods)},
    {"dict", dict_create, box_destroy, dict_methods, MPROC__COUNTOF(dict_methods)},
    {"set", set_create, box_destroy, set_methods, MPROC__COUNTOF(set_methods)},
    {"Namespace", ns_create, box_destroy, ns_methods, MPROC__COUNTOF(ns_methods)},
    {"Value", value_create, box_destroy, value_methods, MPROC__COUNTOF(value_methods)},
    {"Array", array_create, box_destroy, array_methods, MPROC__COUNTOF(array_methods)},
};
const size_t mproc__mgr_ncontainer = MPROC__COUNTOF(mproc__mgr_container_types);
