/* Queues in the family arena.
 *
 * Messages are records {len, kind, payload} appended to a chain of chunks
 * (append-only, never wrapped); a message larger than INLINE_MAX lives in
 * its own arena block and the record holds its address. Producers take
 * one lock, consumers another, so a producer and a consumer never
 * contend for a lock.
 *
 * Crash safety rests on two 64-bit words, each written with one store:
 *   commit = [closed:1 | puts:31 | chunk gen:8 | end:24]  (producers)
 *   cpos   = [closed:1 | gets:31 | chunk gen:8 | offset:24]  (consumers)
 * A put writes its record past the committed end and then stores commit:
 * the record and the count appear together. A get copies the record out
 * and then stores cpos. A process killed at any point therefore leaves
 * either the old or the new state; a half-written record is never
 * committed (the next producer overwrites it) and a message a dying
 * consumer had not committed stays for the next consumer. When a chunk is
 * full the producer writes into a new chunk, seals the old one (its final
 * end, then its next link) and commits; the chunk generation in the commit
 * word tells the next producer whether the tail chunk holds committed
 * records, and a link without a commit is simply followed. The robust locks
 * (sync/tid_lock.h) hand a dead holder's lock to a waiter after a short
 * check; nothing needs repairing, because every state between two stores
 * is valid.
 *
 * The upper halves of commit and cpos (the counts) are the futex words
 * consumers and producers sleep on, after a short spin. A sleeper reads its
 * word before it checks what it waits for (docs/sync.md), and wakes the
 * other side's sleepers before it sleeps, in case a process killed after
 * its commit still owed them a wake-up (wake_other_side).
 *
 * A side's lock biases to a thread that takes it many times in a row
 * (sync/tid_lock.h): that thread then takes and drops it, and commits,
 * with plain stores, no locked instruction, so a stream of puts (or gets)
 * never waits for its store buffer to drain to a line the other side has
 * just read. The lost-wake-up handshake with sleepers then rests on their
 * side: a sleeper registers and issues a heavy barrier (membarrier) before
 * its last look, whenever the other side's lock is biased. */
#include "arena/arena.h"
#include "platform/platform.h"
#include "queue/queue.h"
#include "sync/tid_lock.h"
#include "mproc/queue.h"
#include "mproc/value.h"

#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAGIC   0x51756575u /* "Queu" */
#define CHUNK_BYTES   (48 * 1024) /* under the arena's page-release size */
#define INLINE_MAX    8192
#define REC_HDR       8
#define KIND_INLINE   1u
#define KIND_EXTERNAL 2u
#define SPIN_NS       30000        /* how long a waiter spins before it sleeps */
#define LOOK_AGAIN_NS 1000000000LL /* the longest sleep without a look (see sleep_on) */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "count halves are the upper words");

typedef struct chunk {
    _Atomic(struct chunk *) next;
    _Atomic uint32_t sealed_end; /* final end, valid once next is set */
    uint32_t gen;
    uint32_t cap;
    uint32_t pad_;
    char data[]; /* 8-byte aligned records */
} chunk;

typedef struct rec {
    uint32_t len;
    uint32_t kind;
} rec;

struct mproc_queue {
    uint32_t magic;
    bool joinable;
    uint32_t spin_ns; /* how long waiters spin before they sleep */
    size_t maxsize, max_bytes;
    _Atomic uint32_t closed;
    /* producers */
    _Alignas(64) mproc__tid_lock plock;
    _Atomic(chunk *) tail;
    uint32_t next_gen;
    _Atomic uint64_t bytes_in;
    _Alignas(64) _Atomic uint64_t commit;
    _Atomic uint32_t consumers_waiting;
    _Atomic uint32_t pollers; /* mproc_wait callers asleep on this queue */
    /* consumers */
    _Alignas(64) mproc__tid_lock clock;
    chunk *head;
    uint32_t seen_puts; /* the last commit count read: below it, no need to look */
    _Atomic uint64_t bytes_out;
    _Alignas(64) _Atomic uint64_t cpos;
    _Atomic uint32_t producers_waiting;
    /* JoinableQueue */
    _Alignas(64) _Atomic uint32_t done;
    _Atomic uint32_t joiners;
};

/* The upper word: a closed bit and a 31-bit count (compared modulo 2^31). */
#define CLOSED_BIT (1ULL << 63)
#define CNT_MASK   0x7fffffffu
#define PK(cnt, gen, off)                                                                          \
    ((((uint64_t)(cnt)&CNT_MASK) << 32) | ((uint64_t)((gen)&0xffu) << 24) | (off))
#define CNT(w)  ((uint32_t)((w) >> 32) & CNT_MASK)
#define WORD(w) ((uint32_t)((w) >> 32)) /* what a waiter sleeps on */
#define GEN(w)  ((uint32_t)((w) >> 24) & 0xffu)
#define OFF(w)  ((uint32_t)(w)&0xffffffu)

static inline _Atomic uint32_t *count_word(_Atomic uint64_t *w)
{
    return (_Atomic uint32_t *)(void *)((char *)w + 4);
}

static inline size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static bool valid(const mproc_queue *q)
{
    return q && q->magic == QUEUE_MAGIC;
}

/* mproc__deadline_init, without a call for the usual "forever". */
static inline int deadline_init(mproc__deadline *d, int timeout_ms)
{
    if (MPROC__LIKELY(timeout_ms == MPROC_FOREVER)) {
        *d = (mproc__deadline){.forever = true};
        return 0;
    }
    return mproc__deadline_init(d, timeout_ms);
}

/* memcpy, inline for the small messages a queue mostly carries. */
static inline void copy_out(void *dst, const void *src, size_t n)
{
    char *d = dst;
    const char *s = src;
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) { /* two overlapping 8-byte moves */
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    }
}

/* ---- life ------------------------------------------------------------------ */

static chunk *new_chunk(uint32_t gen)
{
    chunk *c;
    if (mproc_arena_alloc((void **)&c, CHUNK_BYTES)) return NULL;
    atomic_store(&c->next, NULL);
    atomic_store(&c->sealed_end, 0);
    c->gen = gen;
    c->cap = CHUNK_BYTES - (uint32_t)sizeof(chunk);
    return c;
}

int mproc_queue_new(mproc_queue **out, const mproc_queue_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    mproc_queue_opts o = opts ? *opts : (mproc_queue_opts){0};
    if (o.maxsize > UINT32_MAX / 2) return MPROC_EINVAL;
    mproc_queue *q;
    int rc = mproc_arena_alloc_aligned((void **)&q, sizeof *q, 64);
    if (rc) return rc;
    memset(q, 0, sizeof *q);
    chunk *c = new_chunk(0);
    if (!c) {
        mproc_arena_free(q);
        return MPROC_ENOMEM;
    }
    q->maxsize = o.maxsize;
    q->max_bytes = o.max_bytes;
    q->joinable = o.joinable;
    q->spin_ns = SPIN_NS;
    atomic_store(&q->tail, c);
    q->head = c;
    q->next_gen = 1;
    atomic_store(&q->commit, PK(0, 0, 0));
    atomic_store(&q->cpos, PK(0, 0, 0));
    q->magic = QUEUE_MAGIC;
    *out = q;
    return 0;
}

int mproc_simple_queue_new(mproc_queue **out)
{
    return mproc_queue_new(out, NULL);
}

int mproc_joinable_queue_new(mproc_queue **out, size_t maxsize)
{
    return mproc_queue_new(out, &(mproc_queue_opts){.maxsize = maxsize, .joinable = true});
}

/* The end of the committed records of chunk c. */
static uint32_t committed_end(const mproc_queue *q, chunk *c)
{
    if (atomic_load(&c->next)) return atomic_load(&c->sealed_end);
    uint64_t cm = atomic_load(&q->commit);
    return GEN(cm) == (c->gen & 0xffu) ? OFF(cm) : 0;
}

void mproc_queue_free(mproc_queue *q)
{
    if (!valid(q)) return;
    q->magic = 0;
    uint64_t cp = atomic_load(&q->cpos);
    chunk *c = q->head;
    uint32_t pos = GEN(cp) == (c->gen & 0xffu) ? OFF(cp) : 0;
    while (c) {
        uint32_t end = committed_end(q, c);
        for (; pos < end;) {
            rec *r = (rec *)(void *)(c->data + pos);
            if (r->kind == KIND_EXTERNAL) {
                void *ext;
                memcpy(&ext, r + 1, sizeof ext);
                mproc_arena_free(ext);
                pos += REC_HDR + 8;
            } else {
                pos += REC_HDR + (uint32_t)round8(r->len);
            }
        }
        chunk *next = atomic_load(&c->next);
        mproc_arena_free(c);
        c = next;
        pos = 0;
    }
    mproc_arena_free(q);
}

/* Test builds only (see queue/queue.h): dies between a commit and the
 * wake-up it owes the sleepers. */
#ifdef MPROC_TESTING
mproc__queue_crash_point mproc__queue_crash_at;

#define CRASH_POINT(p)                                                                             \
    do {                                                                                           \
        if (MPROC__UNLIKELY(mproc__queue_crash_at == (p))) raise(SIGKILL);                         \
    } while (0)
#else
#define CRASH_POINT(p) ((void)0)
#endif

/* ---- locks ------------------------------------------------------------------ */

/* Takes a side's lock before the deadline; *biased: taken through its bias
 * (see sync/tid_lock.h), to be passed to mproc__tid_lock_drop. A lock taken
 * over from a dead holder needs no repair (see the top of the file). */
static int take_lock(mproc__tid_lock *l, const mproc__deadline *dl, bool *biased)
{
    int rc = mproc__tid_lock_take(l, dl, biased);
    return rc == MPROC_EOWNERDEAD ? 0 : rc;
}

/* A commit point: one store of the side's word. Sequentially consistent,
 * so that the holder's look at the sleepers that follows cannot miss one
 * that registered before the store was visible; through a bias, a plain
 * store (no locked instruction on the path), and the sleepers issue the
 * barrier instead (mproc__tid_lock_sleeper_fence). */
static inline void commit_store(_Atomic uint64_t *w, uint64_t v, bool biased)
{
    if (biased) {
        atomic_store_explicit(w, v, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_store(w, v);
    }
}

/* A look at a sleepers count after a commit_store. */
static inline uint32_t sleepers(_Atomic uint32_t *n, bool biased)
{
    return atomic_load_explicit(n, biased ? memory_order_relaxed : memory_order_seq_cst);
}

/* Wakes whoever sleeps on the other side of the queue, when a waiter of
 * one side is about to sleep (or to time out: a try that found nothing):
 * a getter finds the queue empty, so every waiting put has room; a putter
 * finds no room, so the queue holds a message for every waiting get and
 * poller. Each side wakes the other after its commit, but a process killed
 * between the two owes its wake-up for ever: this pays it, so that the two
 * sides never wait side by side. */
static void wake_other_side(mproc_queue *q, bool getter)
{
    if (getter) {
        if (atomic_load(&q->producers_waiting)) mproc__futex_wake(count_word(&q->cpos), INT_MAX);
    } else if (atomic_load(&q->consumers_waiting) || atomic_load(&q->pollers)) {
        mproc__futex_wake(count_word(&q->commit), INT_MAX);
    }
}

/* MPROC_ECLOSED, for a caller that found the queue closed, after waking
 * whoever still sleeps on it: a close killed before its wake-ups leaves
 * its sleepers asleep, and this pays what it owed them. */
static int closed_wake(mproc_queue *q)
{
    if (atomic_load(&q->consumers_waiting) || atomic_load(&q->pollers))
        mproc__futex_wake(count_word(&q->commit), INT_MAX);
    if (atomic_load(&q->producers_waiting)) mproc__futex_wake(count_word(&q->cpos), INT_MAX);
    return MPROC_ECLOSED;
}

/* Sleeps while *word == seen (and the queue is open), after a short spin,
 * registered in *waiting so that the other side wakes us. seen must have
 * been read before the caller's check of what it waits for (see put): a
 * commit after it changes the word, so the sleep cannot miss it. */
static int sleep_on(mproc_queue *q, _Atomic uint32_t *word, uint32_t seen,
                    _Atomic uint32_t *waiting, mproc__tid_lock *other, const mproc__deadline *dl)
{
    /* Spin first, so that a stream of messages never costs a system call.
     * Back off between looks: every look pulls the other side's line away
     * from it. Now and then yield, in case the other side shares our CPU:
     * every fourth look when this process is bound to one CPU (the other
     * side may be bound to the same one; or to another, and then spinning
     * helps as much as anywhere). */
    bool alone = mproc__cpus_allowed() == 1;
    long long until = mproc_now_ns() + q->spin_ns;
    for (unsigned i = 1, pause = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != seen || atomic_load(&q->closed))
            return 0;
        for (unsigned k = 0; k < pause; k++) mproc__cpu_relax();
        if (pause < 8) pause *= 2;
        if (alone && i % 4 == 0) sched_yield();
        if (i % 16 == 0) {
            if (mproc_now_ns() >= until || mproc__deadline_passed(dl)) break;
            if (i % 256 == 0) sched_yield();
        }
    }
    /* Going to sleep: whatever sleeps on the other side is owed a wake-up
     * (wake_other_side). */
    wake_other_side(q, waiting == &q->consumers_waiting);
    /* Register, then look again: the other side stores its count and then
     * reads `waiting`, so either it sees us or we see its store (both
     * sequentially consistent, or the heavy barrier of a biased lock). The
     * sleep ends after LOOK_AGAIN_NS at most (1 ms if the heavy barrier
     * failed): a peer killed between its commit and its wake-up, with
     * nobody left on its side to pay the wake-up it owed, strands us no
     * longer than that. */
    atomic_fetch_add(waiting, 1);
    long long at =
        mproc_now_ns() + (mproc__tid_lock_sleeper_fence(other) ? 1000000 : LOOK_AGAIN_NS);
    mproc__deadline short_dl = *dl;
    if (short_dl.forever || short_dl.at_ns > at) short_dl = (mproc__deadline){.at_ns = at};
    int rc = 0;
    if (atomic_load(word) == seen && !atomic_load(&q->closed))
        rc = mproc__futex_wait(word, seen, &short_dl);
    atomic_fetch_sub(waiting, 1);
    return rc == MPROC_ETIMEDOUT && !mproc__deadline_passed(dl) ? 0 : rc;
}

/* ---- put --------------------------------------------------------------------- */

/* Whether a message of len bytes fits, judged from cp, the consumers' word
 * as the caller read it (the word it sleeps on if not), with the plock
 * held. Everything else is read after cp, so is no older: the commit word
 * and bytes_in are the plock holder's own, and a get adds to bytes_out
 * before it stores cpos (see take), so the bytes_out read here counts
 * every get that cp counts. A get that cp does not count changes the word,
 * and the sleep on it returns at once. */
static bool has_room(mproc_queue *q, uint64_t cp, size_t len)
{
    uint64_t cm = atomic_load(&q->commit);
    uint32_t count = (CNT(cm) - CNT(cp)) & CNT_MASK;
    if (q->maxsize && count >= q->maxsize) return false;
    if (q->max_bytes && count > 0) {
        /* The byte counts are not committed with the message: a process
         * killed between the two can leave them off by one message. They
         * are ordered so the error only ever lets more in (bytes_in after
         * the commit, bytes_out before it), and clamped at zero. */
        uint64_t in = atomic_load(&q->bytes_in), out = atomic_load(&q->bytes_out);
        uint64_t in_flight = in > out ? in - out : 0;
        if (in_flight + len > q->max_bytes) return false;
    }
    return true;
}

/* The tail chunk and the producers' write offset in it (plock held). */
static chunk *producer_tail(mproc_queue *q, uint64_t cm, uint32_t *pos)
{
    chunk *t = atomic_load_explicit(&q->tail, memory_order_relaxed), *n;
    if (MPROC__UNLIKELY(atomic_load_explicit(&t->next, memory_order_acquire))) {
        while ((n = atomic_load_explicit(&t->next, memory_order_acquire)))
            t = n; /* a put died after linking */
        atomic_store(&q->tail, t);
    }
    *pos = GEN(cm) == (t->gen & 0xffu) ? OFF(cm) : 0;
    return t;
}

static void write_rec(chunk *c, uint32_t pos, const void *buf, size_t len, void *ext)
{
    rec *r = (rec *)(void *)(c->data + pos);
    r->len = (uint32_t)len;
    if (ext) {
        r->kind = KIND_EXTERNAL;
        memcpy(r + 1, &ext, sizeof ext);
    } else {
        r->kind = KIND_INLINE;
        copy_out(r + 1, buf, len);
    }
    /* The consumer may be a thread of this process that saw the memory
     * last in another use, through other processes (base/base.h). */
    MPROC__TSAN_RELEASE(r);
    if (ext) MPROC__TSAN_RELEASE(ext);
}

int mproc_queue_put(mproc_queue *q, const void *buf, size_t len, int timeout_ms)
{
    if (!valid(q) || (!buf && len)) return MPROC_EINVAL;
    if (len > MPROC_QUEUE_MAX_MESSAGE) return MPROC_EMSGSIZE;
    mproc__deadline dl;
    int rc = deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    if (atomic_load(&q->closed)) return closed_wake(q);
    void *ext = NULL; /* a large message is copied before the lock is taken */
    if (len > INLINE_MAX) {
        if ((rc = mproc_arena_alloc(&ext, len))) return rc;
        memcpy(ext, buf, len);
    }
    bool biased;
    if ((rc = take_lock(&q->plock, &dl, &biased))) goto fail;
    while (q->maxsize || q->max_bytes) { /* bounded: wait for room */
        /* The word first, then the check made from it, then the sleep on
         * it (see has_room): a get that lands after this read changes the
         * word, so the sleep cannot miss it. */
        uint64_t cp = atomic_load(&q->cpos);
        if (atomic_load(&q->closed) || has_room(q, cp, len)) break;
        uint32_t seen = WORD(cp);
        mproc__tid_lock_drop(&q->plock, biased);
        if (mproc__deadline_passed(&dl)) { /* no sleep: pass the wake-up on all the same */
            wake_other_side(q, false);
            rc = MPROC_ETIMEDOUT;
            goto fail;
        }
        if (sleep_on(q, count_word(&q->cpos), seen, &q->producers_waiting, &q->clock, &dl) ==
                MPROC_ETIMEDOUT &&
            mproc__deadline_passed(&dl)) {
            rc = MPROC_ETIMEDOUT;
            goto fail;
        }
        if ((rc = take_lock(&q->plock, &dl, &biased))) goto fail;
    }
    if (atomic_load(&q->closed)) {
        mproc__tid_lock_drop(&q->plock, biased);
        rc = closed_wake(q);
        goto fail;
    }
    uint64_t cm = atomic_load(&q->commit);
    uint32_t pos;
    chunk *t = producer_tail(q, cm, &pos);
    size_t need = REC_HDR + (ext ? 8 : round8(len));
    if (pos + need > t->cap) { /* into a new chunk; then seal this one */
        chunk *n = new_chunk(q->next_gen++);
        if (!n) {
            mproc__tid_lock_drop(&q->plock, biased);
            rc = MPROC_ENOMEM;
            goto fail;
        }
        write_rec(n, 0, buf, len, ext);
        atomic_store(&t->sealed_end, pos);
        atomic_store_explicit(&t->next, n, memory_order_release);
        atomic_store(&q->tail, n);
        t = n;
        pos = 0;
    } else {
        write_rec(t, pos, buf, len, ext);
    }
    /* The commit point (see commit_store: the look at the waiters below
     * cannot miss one that registered before this store was visible). */
    commit_store(&q->commit, PK(CNT(cm) + 1, t->gen, pos + need) | (cm & CLOSED_BIT), biased);
    if (q->max_bytes) atomic_fetch_add(&q->bytes_in, len);
    /* One getter is enough when one sleeps. With several, all are woken: a
     * woken getter killed before it takes the message must not leave the
     * others asleep. An mproc_wait caller does not take the message either,
     * so when one sleeps here everyone is woken too. */
    mproc__tid_lock_drop(&q->plock, biased);
    uint32_t waiting = sleepers(&q->consumers_waiting, biased);
    uint32_t pollers = sleepers(&q->pollers, biased);
    if (pollers || waiting) CRASH_POINT(MPROC__QUEUE_CRASH_PUT_WAKE);
    if (pollers || waiting > 1)
        mproc__futex_wake(count_word(&q->commit), INT_MAX);
    else if (waiting)
        mproc__futex_wake(count_word(&q->commit), 1);
    return 0;
fail:
    if (ext) mproc_arena_free(ext);
    return rc;
}

/* ---- get --------------------------------------------------------------------- */

typedef struct {
    void **out; /* allocate: *out receives a malloc'd copy */
    void *into; /* or copy into this buffer of cap bytes */
    size_t cap;
    mproc_value **value; /* or decode: *value receives the value */
} sink;

static int take(mproc_queue *q, sink *s, size_t *len, int timeout_ms)
{
    if (!valid(q) || !len) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    bool biased;
    if ((rc = take_lock(&q->clock, &dl, &biased))) return rc;
    for (;;) {
        uint64_t cp = atomic_load(&q->cpos), cm = 0;
        if (CNT(cp) == q->seen_puts) { /* look at the producers' count only when needed */
            cm = atomic_load_explicit(&q->commit, memory_order_acquire);
            q->seen_puts = CNT(cm);
        }
        if (CNT(cp) == q->seen_puts) { /* empty */
            if (atomic_load(&q->closed))
                rc = MPROC_ECLOSED;
            else if (mproc__deadline_passed(&dl))
                rc = MPROC_ETIMEDOUT;
            mproc__tid_lock_drop(&q->clock, biased);
            if (rc == MPROC_ECLOSED) return closed_wake(q);
            if (rc) { /* no sleep: pass the wake-up on all the same */
                wake_other_side(q, true);
                return rc;
            }
            rc = sleep_on(q, count_word(&q->commit), WORD(cm), &q->consumers_waiting, &q->plock,
                          &dl);
            if (rc == MPROC_ETIMEDOUT && WORD(atomic_load(&q->commit)) == WORD(cm)) return rc;
            if ((rc = take_lock(&q->clock, &dl, &biased))) return rc;
            continue;
        }
        chunk *h = q->head, *next = atomic_load_explicit(&h->next, memory_order_acquire);
        uint32_t pos = GEN(cp) == (h->gen & 0xffu) ? OFF(cp) : 0;
        if (next && pos == atomic_load(&h->sealed_end)) { /* drained: on to the next chunk */
            q->head = next;
            atomic_store(&q->cpos, PK(CNT(cp), next->gen, 0) | (cp & CLOSED_BIT));
            /* A producer that died between linking and moving the tail may
             * have left the tail here: then the chunk is kept. */
            if (atomic_load(&q->tail) != h) mproc_arena_free(h);
            continue;
        }
        rec *r = (rec *)(void *)(h->data + pos);
        size_t n = r->len;
        void *ext = NULL;
        const void *src = r + 1;
        MPROC__TSAN_ACQUIRE(r); /* see write_rec */
        if (r->kind == KIND_EXTERNAL) {
            memcpy(&ext, r + 1, sizeof ext);
            src = ext;
            MPROC__TSAN_ACQUIRE(ext);
        }
        *len = n;
        int decoded = 0;
        if (s->value) { /* decoded in place: no memory, and the message stays */
            if ((decoded = mproc_value_decode(src, n, NULL, s->value)) == MPROC_ENOMEM) {
                mproc__tid_lock_drop(&q->clock, biased);
                if (atomic_load(&q->consumers_waiting))
                    mproc__futex_wake(count_word(&q->commit), 1);
                return decoded;
            }
        } else if (s->out) {
            void *copy = malloc(n ? n : 1);
            if (!copy) {
                mproc__tid_lock_drop(&q->clock, biased);
                if (atomic_load(&q->consumers_waiting))
                    mproc__futex_wake(count_word(&q->commit), 1);
                return MPROC_ENOMEM;
            }
            memcpy(copy, src, n);
            *s->out = copy;
        } else if (n > s->cap) {
            mproc__tid_lock_drop(&q->clock, biased);
            /* We may have been the waiter a put woke: pass the wake-up on. */
            if (atomic_load(&q->consumers_waiting)) mproc__futex_wake(count_word(&q->commit), 1);
            return MPROC_ETOOSMALL;
        } else if (n) {
            copy_out(s->into, src, n);
        }
        size_t need = REC_HDR + (ext ? 8 : round8(n));
        /* bytes_out before the commit: a producer reads cpos, then
         * bytes_out (has_room), and must see the bytes of every get that
         * the cpos it read counts. */
        if (q->max_bytes) atomic_fetch_add(&q->bytes_out, n);
        /* The commit point (see commit_store). */
        commit_store(&q->cpos, PK(CNT(cp) + 1, h->gen, pos + need) | (cp & CLOSED_BIT), biased);
        mproc__tid_lock_drop(&q->clock, biased);
        if (ext) mproc_arena_free(ext);
        /* Every waiting producer: a small put may fit where a large one that
         * waits longer does not. */
        if (sleepers(&q->producers_waiting, biased)) {
            CRASH_POINT(MPROC__QUEUE_CRASH_GET_WAKE);
            mproc__futex_wake(count_word(&q->cpos), INT_MAX);
        }
        return decoded; /* a value that could not be decoded is consumed */
    }
}

int mproc_queue_get(mproc_queue *q, void **buf, size_t *len, int timeout_ms)
{
    if (!buf) return MPROC_EINVAL;
    sink s = {.out = buf};
    return take(q, &s, len, timeout_ms);
}

int mproc_queue_get_into(mproc_queue *q, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    if (!buf && cap) return MPROC_EINVAL;
    sink s = {.into = buf, .cap = cap};
    return take(q, &s, len, timeout_ms);
}

/* ---- values ------------------------------------------------------------------ */

int mproc_queue_put_value(mproc_queue *q, const mproc_value *v, int timeout_ms)
{
    if (!valid(q) || !v) return MPROC_EINVAL;
    void *buf;
    size_t len;
    int rc = mproc_value_encode(v, &buf, &len);
    if (rc) return rc;
    rc = mproc_queue_put(q, buf, len, timeout_ms);
    free(buf);
    return rc;
}

int mproc_queue_get_value(mproc_queue *q, mproc_value **out, int timeout_ms)
{
    if (!out) return MPROC_EINVAL;
    sink s = {.value = out};
    size_t len;
    return take(q, &s, &len, timeout_ms);
}

/* ---- state ------------------------------------------------------------------- */

size_t mproc_queue_qsize(const mproc_queue *q)
{
    if (!valid(q)) return 0;
    mproc_queue *m = (mproc_queue *)q;
    uint64_t cp = atomic_load(&m->cpos); /* gets first: puts read after are >= */
    uint64_t cm = atomic_load(&m->commit);
    return (CNT(cm) - CNT(cp)) & CNT_MASK;
}

bool mproc_queue_empty(const mproc_queue *q)
{
    return mproc_queue_qsize(q) == 0;
}

bool mproc_queue_full(const mproc_queue *q)
{
    return valid(q) && q->maxsize && mproc_queue_qsize(q) >= q->maxsize;
}

void mproc_queue_close(mproc_queue *q)
{
    if (!valid(q)) return;
    /* The closed bit goes into both words waiters sleep on, under each
     * side's lock (the next commit of each side keeps it): a waiter that
     * checked just before cannot go to sleep on an unchanged word. A close
     * killed before its wake-ups: the next put or get that finds the queue
     * closed wakes the sleepers (closed_wake). */
    mproc__deadline forever = {.forever = true};
    bool biased;
    atomic_store(&q->closed, 1);
    CRASH_POINT(MPROC__QUEUE_CRASH_CLOSE_WAKE);
    take_lock(&q->plock, &forever, &biased);
    atomic_fetch_or(&q->commit, CLOSED_BIT);
    mproc__tid_lock_drop(&q->plock, biased);
    take_lock(&q->clock, &forever, &biased);
    atomic_fetch_or(&q->cpos, CLOSED_BIT);
    mproc__tid_lock_drop(&q->clock, biased);
    mproc__futex_wake(count_word(&q->commit), INT_MAX);
    mproc__futex_wake(count_word(&q->cpos), INT_MAX);
}

bool mproc_queue_closed(const mproc_queue *q)
{
    return valid(q) && atomic_load(&q->closed);
}

/* ---- JoinableQueue --------------------------------------------------------
 * Unfinished tasks are the committed puts not yet marked done, so a
 * producer that dies before its commit leaves no phantom task. */

int mproc_queue_task_done(mproc_queue *q)
{
    if (!valid(q)) return MPROC_EINVAL;
    if (!q->joinable) return MPROC_EBADSTATE;
    uint32_t d = atomic_load(&q->done);
    do
        if (d == CNT(atomic_load(&q->commit))) return MPROC_EBADSTATE; /* too many */
    while (!atomic_compare_exchange_weak(&q->done, &d, (d + 1) & CNT_MASK));
    if (atomic_load(&q->joiners)) {
        CRASH_POINT(MPROC__QUEUE_CRASH_TASK_DONE_WAKE);
        mproc__futex_wake(&q->done, INT_MAX);
    }
    return 0;
}

/* The word (done) first, then the check, then the sleep on the word read.
 * A task_done killed between its count and its wake-up would leave a
 * joiner asleep with every task done, and no other caller owes it a
 * wake-up: so a joiner looks again every LOOK_AGAIN_NS (join is rare; the
 * timer costs nothing there). */
int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    if (!valid(q)) return MPROC_EINVAL;
    if (!q->joinable) return MPROC_EBADSTATE;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    for (;;) {
        uint32_t d = atomic_load(&q->done);
        if (d == CNT(atomic_load(&q->commit))) return 0;
        if (mproc__deadline_passed(&dl)) return MPROC_ETIMEDOUT;
        mproc__deadline slice = {.at_ns = mproc_now_ns() + LOOK_AGAIN_NS};
        if (!dl.forever && dl.at_ns < slice.at_ns) slice.at_ns = dl.at_ns;
        atomic_fetch_add(&q->joiners, 1);
        rc = atomic_load(&q->done) == d ? mproc__futex_wait(&q->done, d, &slice) : 0;
        atomic_fetch_sub(&q->joiners, 1);
        if (rc && rc != MPROC_ETIMEDOUT) return rc;
    }
}

/* ---- for mproc_wait ------------------------------------------------------------ */

bool mproc__queue_ready(const mproc_queue *q)
{
    return valid(q) && (mproc_queue_qsize(q) > 0 || atomic_load(&((mproc_queue *)q)->closed));
}

_Atomic uint32_t *mproc__queue_wait_word(mproc_queue *q, uint32_t *seen)
{
    *seen = WORD(atomic_load(&q->commit));
    return count_word(&q->commit);
}

/* How many messages have been taken from the queue (committed gets),
 * modulo 2^31. */
static uint32_t queue_gets(const mproc_queue *q)
{
    return CNT(atomic_load(&((mproc_queue *)q)->cpos));
}

uint32_t mproc__queue_untaken(const mproc_queue *q, uint64_t puts)
{
    return ((uint32_t)puts - queue_gets(q)) & CNT_MASK;
}

bool mproc__queue_taken(const mproc_queue *q, uint64_t n)
{
    return ((queue_gets(q) - (uint32_t)(n + 1)) & CNT_MASK) < (CNT_MASK >> 1) + 1;
}

bool mproc__queue_valid(const mproc_queue *q)
{
    return valid(q);
}

void mproc__queue_poller(mproc_queue *q, int delta)
{
    if (delta > 0) {
        /* The caller looks at the queue next, then sleeps: as in sleep_on,
         * a biased producer needs the heavy barrier to see us. (Should it
         * fail, which needs a process barred from membarrier beside one
         * allowed it, the wait relies on the caller's timeout.) */
        atomic_fetch_add(&q->pollers, 1);
        (void)mproc__tid_lock_sleeper_fence(&q->plock);
        /* A poller is about to sleep like a getter: pass the wake-up on. */
        if (mproc_queue_qsize(q) == 0) wake_other_side(q, true);
    } else
        atomic_fetch_sub(&q->pollers, 1);
}

void mproc__queue_for_sleepers(mproc_queue *q, uint32_t spin_ns)
{
    q->plock.bias_after = UINT32_MAX;
    q->clock.bias_after = UINT32_MAX;
    q->spin_ns = spin_ns;
}

void mproc__queue_set_spin(mproc_queue *q, uint32_t spin_ns)
{
    q->spin_ns = spin_ns;
}
