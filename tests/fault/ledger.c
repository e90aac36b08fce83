/* Self-checking messages (sequence numbers and checksums, so a partial,
 * torn or foreign message is seen) and the ledger that proves
 * exactly-once delivery of what was acknowledged. */
#include "fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 8 bytes: [prod:4 | seq:28] then a 32-bit checksum of them. */
static uint64_t small_word(uint32_t prod, uint32_t seq)
{
    uint32_t id = (prod << 28) | (seq & 0x0fffffffu);
    uint32_t sum = (uint32_t)tu_mix64(id ^ 0x5eed5eed00000000ULL);
    return ((uint64_t)id << 32) | sum;
}

typedef struct {
    uint32_t magic, prod, seq, len;
} big_hdr;
#define BIG_MAGIC 0x46415554u /* "FAUT" */

static uint64_t key_of(uint32_t prod, uint32_t seq)
{
    return tu_mix64(((uint64_t)prod << 32) | seq) | 1;
}

void ft_msg_fill(void *buf, size_t len, uint32_t prod, uint32_t seq)
{
    unsigned char *p = buf;
    if (len < sizeof(big_hdr)) {
        uint64_t w = small_word(prod, seq);
        memcpy(p, &w, 8);
        return;
    }
    big_hdr h = {BIG_MAGIC, prod, seq, (uint32_t)len};
    memcpy(p, &h, sizeof h);
    uint64_t k = key_of(prod, seq);
    size_t i = sizeof h;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = k ^ (i * 0x9E3779B97F4A7C15ULL);
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++) p[i] = (unsigned char)(k >> (i & 7) * 8);
}

bool ft_msg_check(const void *buf, size_t len, uint32_t *prod, uint32_t *seq)
{
    const unsigned char *p = buf;
    if (!buf || len < 8) return false;
    if (len < sizeof(big_hdr)) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (len != 8) return false;
        uint32_t id = (uint32_t)(w >> 32);
        *prod = id >> 28;
        *seq = id & 0x0fffffffu;
        return small_word(*prod, *seq) == w;
    }
    big_hdr h;
    memcpy(&h, p, sizeof h);
    if (h.magic != BIG_MAGIC || h.len != len) return false;
    uint64_t k = key_of(h.prod, h.seq);
    size_t i = sizeof h;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != (k ^ (i * 0x9E3779B97F4A7C15ULL))) return false;
    }
    for (; i < len; i++)
        if (p[i] != (unsigned char)(k >> (i & 7) * 8)) return false;
    *prod = h.prod;
    *seq = h.seq;
    return true;
}

ft_ledger *ft_ledger_new(uint32_t nprod, uint32_t per_prod)
{
    ft_ledger *l = ft_calloc(sizeof *l);
    l->nprod = nprod;
    l->per_prod = per_prod;
    l->seen = ft_calloc((size_t)nprod * per_prod);
    return l;
}

void ft_ledger_free(ft_ledger *l)
{
    if (!l) return;
    mproc_arena_free((void *)l->seen);
    mproc_arena_free(l);
}

bool ft_ledger_got(ft_ledger *l, uint32_t prod, uint32_t seq)
{
    if (prod >= l->nprod || seq >= l->per_prod) {
        atomic_fetch_add(&l->bad, 1);
        return false;
    }
    uint8_t c = atomic_load(&l->seen[(size_t)prod * l->per_prod + seq]);
    while (c < 255 && !atomic_compare_exchange_weak(&l->seen[(size_t)prod * l->per_prod + seq], &c,
                                                    (uint8_t)(c + 1))) {
    }
    atomic_fetch_add(&l->progress, 1);
    return true;
}

void ft_ledger_check(ft_trial *t, ft_ledger *l, long may_lose)
{
    long lost = 0, dup = 0;
    char missing[200] = "";
    size_t used = 0;
    for (uint32_t p = 0; p < l->nprod; p++) {
        uint32_t acked = atomic_load(&l->acked[p]);
        for (uint32_t s = 0; s < l->per_prod; s++) {
            unsigned c = atomic_load(&l->seen[(size_t)p * l->per_prod + s]);
            if (s < acked) {
                if (c == 0) {
                    if (lost < 6 && used < sizeof missing - 24)
                        used +=
                            (size_t)snprintf(missing + used, sizeof missing - used, " %u.%u", p, s);
                    lost++;
                }
                if (c > 1) {
                    ft_note(t, "item %u.%u got %u times", p, s, c);
                    dup += c - 1;
                }
            } else if (s == acked) { /* maybe in flight when its producer died */
                if (c > 1) {
                    ft_note(t, "item %u.%u (in flight) got %u times", p, s, c);
                    dup += c - 1;
                }
            } else if (c > 0) {
                ft_note(t, "item %u.%u got %u times, never put (producer acked %u)", p, s, c,
                        acked);
                dup += c;
            }
        }
    }
    if (lost > may_lose)
        ft_lost(t, lost - may_lose,
                "%ld acknowledged items never got (%ld may be: got by killed consumers):%s%s", lost,
                may_lose, missing, lost > 6 ? " ..." : "");
    if (dup) ft_dup(t, dup, "%ld extra deliveries", dup);
    uint32_t bad = atomic_load(&l->bad);
    if (bad) ft_lost(t, bad, "%u partial or corrupt items got", bad);
}
