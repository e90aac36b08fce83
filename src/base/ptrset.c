/* A sorted set of addresses under a lock (base/ptrset.h). */
#include "base/ptrset.h"
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

/* The index of the first element >= v. */
static size_t lower_bound(const mproc__ptrset *s, uintptr_t v)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->set[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int mproc__ptrset_add(mproc__ptrset *s, const void *p)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->count == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        uintptr_t *n = realloc(s->set, ncap * sizeof *n);
        if (n) {
            s->set = n;
            s->cap = ncap;
        } else {
            rc = MPROC_ENOMEM;
        }
    }
    if (!rc) {
        size_t i = lower_bound(s, (uintptr_t)p);
        memmove(&s->set[i + 1], &s->set[i], (s->count - i) * sizeof *s->set);
        s->set[i] = (uintptr_t)p;
        s->count++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void mproc__ptrset_remove(mproc__ptrset *s, const void *p)
{
    pthread_mutex_lock(&s->mu);
    size_t i = lower_bound(s, (uintptr_t)p);
    if (i < s->count && s->set[i] == (uintptr_t)p) {
        memmove(&s->set[i], &s->set[i + 1], (s->count - i - 1) * sizeof *s->set);
        s->count--;
    }
    pthread_mutex_unlock(&s->mu);
}

bool mproc__ptrset_contains(mproc__ptrset *s, uintptr_t word)
{
    pthread_mutex_lock(&s->mu);
    size_t i = lower_bound(s, word);
    bool found = i < s->count && s->set[i] == word;
    pthread_mutex_unlock(&s->mu);
    return found;
}

int mproc__ptrset_scan(mproc__ptrset *s, const void *bytes, size_t len,
                       int (*hit)(size_t off, uintptr_t word, void *ud), void *ud)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->count) {
        uintptr_t lo = s->set[0], hi = s->set[s->count - 1];
        const unsigned char *b = bytes;
        for (size_t off = 0; !rc && off + sizeof(uintptr_t) <= len; off += sizeof(uintptr_t)) {
            uintptr_t v;
            memcpy(&v, b + off, sizeof v);
            if (v < lo || v > hi) continue;
            size_t i = lower_bound(s, v);
            if (i < s->count && s->set[i] == v) rc = hit(off, v, ud);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void mproc__ptrset_after_fork(mproc__ptrset *s)
{
    s->mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}
