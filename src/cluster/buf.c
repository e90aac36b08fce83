/* Buffers for the cluster's messages that keep their pages
 * (cluster/cluster.h).
 *
 * A large malloc is mapped afresh each time (or carved from heap memory
 * that free gave back), and every fresh page costs a page fault when it
 * is first written. A map's chunks are megabytes: with a buffer per
 * message, a map over 10^6 items spent as long faulting in the pages of
 * its inputs and outputs as running its function. So a serving rank
 * receives and answers in buffers it keeps (cl_kbuf), and the root takes
 * its task messages from a small cache of freed ones (msg_alloc). */
#include "cluster/cluster.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* A kept buffer over KBUF_SHRINK bytes that is four times larger than a
 * message needs is given back, so one huge message does not stay. */
#define KBUF_SHRINK (64u << 20)

char *mproc__cluster_kbuf(cl_kbuf *b, size_t n)
{
    if (n == 0) n = 1;
    if (b->p && (n > b->cap || (b->cap > KBUF_SHRINK && n < b->cap / 4))) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    if (!b->p) {
        size_t cap = 4096;
        while (cap < n && cap <= SIZE_MAX / 2) cap *= 2;
        if (cap < n) cap = n;
        if (!(b->p = malloc(cap))) return NULL;
        b->cap = cap;
    }
    return b->p;
}

void mproc__cluster_kbuf_free(cl_kbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* ---- the root's task messages ------------------------------------------------ */

/* Each message has a prefix with its capacity. Messages of MSG_KEEP_MIN
 * bytes or more are kept when freed, at most MSG_KEEP of them and
 * MSG_KEEP_BYTES in all; an allocation takes the smallest kept one that
 * fits. */
#define MSG_KEEP_MIN   (64u << 10)
#define MSG_KEEP       32
#define MSG_KEEP_BYTES (128u << 20)

typedef struct msg_prefix {
    size_t cap;
    size_t pad; /* the message stays 16-byte aligned */
} msg_prefix;

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static msg_prefix *kept[MSG_KEEP];
static size_t nkept, kept_bytes;

void *mproc__cluster_msg_alloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(msg_prefix)) return NULL;
    if (n >= MSG_KEEP_MIN) {
        MPROC__LOCK(&keep_mu);
        size_t best = nkept;
        for (size_t i = 0; i < nkept; i++)
            if (kept[i]->cap >= n && (best == nkept || kept[i]->cap < kept[best]->cap)) best = i;
        msg_prefix *p = NULL;
        if (best < nkept) {
            p = kept[best];
            kept[best] = kept[--nkept];
            kept_bytes -= p->cap;
        }
        MPROC__UNLOCK(&keep_mu);
        if (p) return p + 1;
    }
    msg_prefix *p = malloc(sizeof *p + n);
    if (!p) return NULL;
    p->cap = n;
    return p + 1;
}

void mproc__cluster_msg_free(void *m)
{
    if (!m) return;
    msg_prefix *p = (msg_prefix *)m - 1;
    if (p->cap >= MSG_KEEP_MIN) {
        MPROC__LOCK(&keep_mu);
        bool keep = nkept < MSG_KEEP && p->cap <= MSG_KEEP_BYTES - kept_bytes;
        if (keep) {
            kept[nkept++] = p;
            kept_bytes += p->cap;
        }
        MPROC__UNLOCK(&keep_mu);
        if (keep) return;
    }
    free(p);
}

void mproc__cluster_msg_cache_drop(void)
{
    MPROC__LOCK(&keep_mu);
    for (size_t i = 0; i < nkept; i++) free(kept[i]);
    nkept = 0;
    kept_bytes = 0;
    MPROC__UNLOCK(&keep_mu);
}
