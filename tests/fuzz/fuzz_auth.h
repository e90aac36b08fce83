/* What the two handshake fuzz targets (fuzz_auth_server.c, the fuzzer as
 * a hostile client; fuzz_auth_client.c, the fuzzer as a hostile server)
 * share: the configuration byte, a fixed nonce, a reference model of the
 * handshake (src/conn/auth.c, with HMAC computed here directly by OpenSSL) and
 * the frames on both sides of a socketpair. Included by exactly one file
 * per program.
 *
 * The fixed nonce: this program defines RAND_bytes, which the library's
 * call resolves to (the library is linked statically), filling with bytes
 * 1, 2, 3, ... So a challenge of ours is the same in every run, and a
 * seed can hold the right answer to it (tests/fuzz/make_corpus.py). */
#ifndef MPROC_FUZZ_AUTH_H
#define MPROC_FUZZ_AUTH_H

#include "mproc/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: check failed at line %d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define HS_MAX     256 /* largest handshake message the library reads */
#define NONCE_LEN  40
#define CHAL       "#CHALLENGE#"
#define CHAL_LEN   11
#define WELCOME    "#WELCOME#"
#define FAILURE    "#FAILURE#"
#define REFUSED    "#LEGACY-HANDSHAKE-REFUSED#"
#define HS_TIMEOUT 1000 /* never reached: every read finds data or end of file */

int RAND_bytes(unsigned char *buf, int num);
int RAND_bytes(unsigned char *buf, int num)
{
    for (int i = 0; i < num; i++) buf[i] = (unsigned char)(i + 1);
    return 1;
}

/* ---- the configuration byte ---------------------------------------------- */

static const char *const digest_names[] = {"sha256", "sha384", "sha3_256", "sha3_384", "md5"};
#define NDIGESTS 5
#define MD5      4

typedef struct {
    mproc_auth auth;
    int digest; /* index into digest_names */
    uint8_t key[MPROC_AUTHKEY_MAX];
    size_t key_len;
    bool invalid; /* reject_legacy with md5: the calls refuse (MPROC_EINVAL) */
} config;

/* bits 0-2: our digest (sha256, sha384, sha3_256, sha3_384, md5; 5-7:
 * none named, i.e. sha256); bit 3: reject_legacy; bit 4: the family
 * authkey, set to the key; bit 5: the 1024-byte key instead of "mproc fuzz
 * key". */
static void config_parse(config *cf, uint8_t b)
{
    memset(cf, 0, sizeof *cf);
    int d = b & 7;
    cf->digest = d < NDIGESTS ? d : 0;
    cf->auth.digest = d < NDIGESTS ? digest_names[d] : NULL;
    cf->auth.reject_legacy = b & 8;
    if (b & 32) {
        cf->key_len = MPROC_AUTHKEY_MAX;
        for (size_t i = 0; i < cf->key_len; i++) cf->key[i] = (uint8_t)(i * 7 + 3);
    } else {
        cf->key_len = strlen("mproc fuzz key");
        memcpy(cf->key, "mproc fuzz key", cf->key_len);
    }
    if (b & 16) {
        CHECK(mproc_set_authkey(cf->key, cf->key_len) == 0);
        cf->auth.family_key = true;
    } else {
        cf->auth.key = cf->key;
        cf->auth.key_len = cf->key_len;
    }
    cf->invalid = cf->auth.reject_legacy && cf->digest == MD5;
    cf->auth.timeout_ms = HS_TIMEOUT;
}

/* ---- the reference model ------------------------------------------------- */

static const EVP_MD *md_of(int d)
{
    switch (d) {
    case 0:
        return EVP_sha256();
    case 1:
        return EVP_sha384();
    case 2:
        return EVP_sha3_256();
    case 3:
        return EVP_sha3_384();
    default:
        return EVP_md5();
    }
}

static size_t hmac(const config *cf, int d, const uint8_t *msg, size_t len, uint8_t out[64])
{
    unsigned n = 0;
    static const uint8_t empty[1];
    CHECK(HMAC(md_of(d), cf->key, (int)cf->key_len, len ? msg : empty, len, out, &n));
    return n;
}

/* "{name}rest": the digest named and where the rest starts, or -1. */
static int parse_prefixed(const uint8_t *m, size_t n, size_t *rest)
{
    if (n < 2 || m[0] != '{') return -1;
    for (size_t i = 1; i < n && i <= 9; i++) {
        if (m[i] != '}') continue;
        for (int d = 0; d < NDIGESTS; d++)
            if (strlen(digest_names[d]) == i - 1 && memcmp(m + 1, digest_names[d], i - 1) == 0) {
                *rest = i + 1;
                return d;
            }
        return -1;
    }
    return -1;
}

/* Our challenge as the library sends it. */
static size_t our_challenge(const config *cf, uint8_t out[HS_MAX])
{
    const char *name = digest_names[cf->digest];
    size_t n = (size_t)sprintf((char *)out, CHAL "{%s}", name);
    for (int i = 0; i < NONCE_LEN; i++) out[n++] = (uint8_t)(i + 1);
    return n;
}

/* Whether resp answers our challenge rightly. */
static bool answer_ok(const config *cf, const uint8_t *resp, size_t rlen)
{
    uint8_t chal[HS_MAX], want[64];
    size_t clen = our_challenge(cf, chal), mac = 0;
    int d = rlen == 16 || rlen == 20 ? MD5 : parse_prefixed(resp, rlen, &mac);
    if (d < 0 || (d == MD5 && cf->auth.reject_legacy)) return false;
    size_t wlen = hmac(cf, d, chal + CHAL_LEN, clen - CHAL_LEN, want);
    return rlen - mac == wlen && memcmp(resp + mac, want, wlen) == 0;
}

/* Our answer to a challenge message: its length (0: we refuse before
 * answering, MPROC_EAUTH), in out; *refused when it is the refusal. */
static size_t our_answer(const config *cf, const uint8_t *m, size_t n, uint8_t out[HS_MAX],
                         bool *refused)
{
    *refused = false;
    if (n < CHAL_LEN + 20 || memcmp(m, CHAL, CHAL_LEN) != 0) return 0;
    m += CHAL_LEN;
    n -= CHAL_LEN;
    int d = MD5;
    size_t rest = 0, len = 0;
    if (n != 20 && (d = parse_prefixed(m, n, &rest)) < 0) return 0;
    if (d == MD5 && cf->auth.reject_legacy) {
        *refused = true;
        memcpy(out, REFUSED, strlen(REFUSED));
        return strlen(REFUSED);
    }
    if (n != 20) len = (size_t)sprintf((char *)out, "{%s}", digest_names[d]);
    return len + hmac(cf, d, m, n, out + len);
}

/* ---- frames -------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len;
} msg;

/* The next handshake message from s[*pos..n), as the library reads it (at
 * most HS_MAX bytes); false if it is not there (end of file, a malformed
 * or oversized frame). */
static bool next_msg(const uint8_t *s, size_t n, size_t *pos, msg *m)
{
    if (n - *pos < 4) return false;
    const uint8_t *h = s + *pos;
    int32_t v = (int32_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]);
    uint64_t len = (uint64_t)v;
    size_t hlen = 4;
    if (v == -1) {
        if (n - *pos < 12) return false;
        len = 0;
        for (int i = 4; i < 12; i++) len = len << 8 | h[i];
        hlen = 12;
    } else if (v < 0) {
        return false;
    }
    if (len > HS_MAX || n - *pos - hlen < len) return false;
    m->p = h + hlen;
    m->len = (size_t)len;
    *pos += hlen + (size_t)len;
    return true;
}

static bool msg_is(const msg *m, const void *want, size_t len)
{
    return m->len == len && memcmp(m->p, want, len) == 0;
}

/* A connection on one end of a socketpair; the peer's bytes (the input)
 * are written to the other end, which is then shut for writing. */
static mproc_conn *conn_with_input(const uint8_t *in, size_t len, int *peer)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(sv[1], in + off, len - off);
        CHECK(n > 0);
        off += (size_t)n;
    }
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    mproc_conn *c;
    CHECK(mproc_conn_from_fd(&c, sv[0], true, true) == 0);
    *peer = sv[1];
    return c;
}

/* Everything the library wrote to the peer (into buf, cap bytes). */
static size_t drain(int peer, uint8_t *buf, size_t cap)
{
    CHECK(fcntl(peer, F_SETFL, O_NONBLOCK) == 0);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(peer, buf + len, cap - len);
        if (n > 0) {
            len += (size_t)n;
            CHECK(len < cap);
            continue;
        }
        CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
        return len;
    }
}

/* ---- one run and its checks ---------------------------------------------- */

#define FUZZ_MAX_INPUT 4096

typedef int (*hs_call)(mproc_conn *c, const mproc_auth *auth, int timeout_ms);

/* One handshake run: the peer's bytes (the input after the configuration
 * byte) and the library's (out), each with how far the checks have read. */
typedef struct {
    config cf;
    const uint8_t *in;
    size_t inlen, ipos;
    const uint8_t *out;
    size_t outlen, opos;
    int rc1, rc2; /* the two calls' results; rc2 is 1 if it was not called */
} hs_run;

/* Runs first, then second if first returned 0, on a connection whose peer
 * sent the input (1 to FUZZ_MAX_INPUT bytes with the configuration byte),
 * and collects what the library wrote. False when the configuration is
 * invalid: then the first call must have refused it before sending
 * anything, and there is nothing more to check. */
static bool hs_run_calls(hs_run *r, const uint8_t *data, size_t size, hs_call first, hs_call second)
{
    config_parse(&r->cf, data[0]);
    r->in = data + 1;
    r->inlen = size - 1;
    r->ipos = 0;
    int peer;
    mproc_conn *c = conn_with_input(r->in, r->inlen, &peer);

    r->rc1 = first(c, &r->cf.auth, HS_TIMEOUT);
    r->rc2 = 1;
    if (r->rc1 == 0) r->rc2 = second(c, &r->cf.auth, HS_TIMEOUT);
    static uint8_t out[4 * HS_MAX];
    r->out = out;
    r->outlen = drain(peer, out, sizeof out);
    r->opos = 0;
    mproc_conn_free(c);
    close(peer);

    if (r->cf.invalid) {
        CHECK(r->rc1 == MPROC_EINVAL && r->outlen == 0);
        return false;
    }
    return true;
}

/* Our challenge (mproc_deliver_challenge, result rc): we sent exactly our
 * challenge, then "#WELCOME#" if the peer's next message is a right
 * answer, "#FAILURE#" if it is a wrong one, nothing if there is none; rc
 * is 0 exactly when the answer was right. Returns whether it was (if not,
 * the caller checks that we sent nothing more). */
static bool hs_check_our_challenge(hs_run *r, int rc)
{
    msg o, m;
    uint8_t chal[HS_MAX];
    size_t clen = our_challenge(&r->cf, chal);
    CHECK(next_msg(r->out, r->outlen, &r->opos, &o) && msg_is(&o, chal, clen));
    if (!next_msg(r->in, r->inlen, &r->ipos, &m)) {
        CHECK(rc == MPROC_EAUTH);
        return false;
    }
    bool right = answer_ok(&r->cf, m.p, m.len);
    CHECK(next_msg(r->out, r->outlen, &r->opos, &o) && msg_is(&o, right ? WELCOME : FAILURE, 9));
    CHECK(rc == (right ? 0 : MPROC_EAUTH));
    return right;
}

/* The peer's challenge (mproc_answer_challenge, result rc): our answer is
 * exactly the model's, or nothing for a malformed challenge (then rc is
 * MPROC_EAUTH); rc is 0 exactly when we answered, did not refuse, and the
 * peer's verdict was "#WELCOME#". Returns whether rc is 0 (if not, the
 * caller checks that we sent nothing more). */
static bool hs_check_our_answer(hs_run *r, int rc)
{
    msg o, m;
    uint8_t ans[HS_MAX];
    size_t alen = 0;
    bool refused = false;
    if (next_msg(r->in, r->inlen, &r->ipos, &m))
        alen = our_answer(&r->cf, m.p, m.len, ans, &refused);
    if (alen == 0) {
        CHECK(rc == MPROC_EAUTH);
        return false;
    }
    CHECK(next_msg(r->out, r->outlen, &r->opos, &o) && msg_is(&o, ans, alen));
    bool welcome = next_msg(r->in, r->inlen, &r->ipos, &m) && msg_is(&m, WELCOME, 9);
    CHECK(rc == (welcome && !refused ? 0 : MPROC_EAUTH));
    return rc == 0;
}

#endif
