/* Authentication internals: HMAC through OpenSSL, the handshake with a
 * deadline, and the family authkey's fork handling. */
#ifndef MPROC_INTERNAL_AUTH_H
#define MPROC_INTERNAL_AUTH_H

#include "base/base.h"
#include "mproc/listener.h"

#include <stdint.h>

#define MPROC__HMAC_MAX 64 /* longest MAC of any digest we name */

/* A resolved mproc_auth: the key copied, the digest checked. */
typedef struct mproc__auth {
    bool on; /* false: no authentication */
    bool reject_legacy;
    int digest; /* index into the digest table */
    int timeout_ms;
    size_t key_len;
    uint8_t key[MPROC_AUTHKEY_MAX];
} mproc__auth;

/* Resolves a (NULL: no authentication). Errors: MPROC_EINVAL (key_len 0
 * or too long, an unknown digest, a bad timeout), MPROC_EIO. */
int mproc__auth_resolve(const mproc_auth *a, mproc__auth *out);

/* HMAC(key, msg) with the named digest ("sha256", "md5", ...) into out;
 * *outlen gets its size. Errors: MPROC_EINVAL (unknown digest), MPROC_EIO
 * (OpenSSL refused, e.g. MD5 in FIPS mode). */
int mproc__hmac(const char *digest, const void *key, size_t klen, const void *msg, size_t mlen,
                uint8_t out[MPROC__HMAC_MAX], size_t *outlen);

/* Frees what OpenSSL keeps for the calling thread (its error queue, its
 * random generators): a thread that authenticated calls it before it
 * ends, or the memory stays with the thread's exit. */
void mproc__auth_thread_done(void);

/* Largest handshake message read (a bigger one is a failure). */
#define MPROC__HS_MAX 256

/* The steps of the handshake without I/O, for a caller that does its own
 * (the listener's, which runs several at once without blocking).
 * challenge: our "#CHALLENGE#{digest}" message with a fresh nonce (0 or
 * MPROC_EIO). verify: whether resp answers our challenge chal[0..clen).
 * verdict: the message telling the peer (#WELCOME# or #FAILURE#).
 * answer: our answer to the peer's challenge msg: 0, with *refused when
 * it is the refusal of a legacy challenge (send it, read the verdict, then
 * fail with MPROC_EAUTH), or MPROC_EAUTH (not a challenge), MPROC_EIO.
 * welcomed: whether v is #WELCOME#. */
int mproc__auth_challenge(const mproc__auth *a, uint8_t out[MPROC__HS_MAX], size_t *len);
bool mproc__auth_verify(const mproc__auth *a, const uint8_t *chal, size_t clen, const uint8_t *resp,
                        size_t rlen);
void mproc__auth_verdict(bool ok, const uint8_t **msg, size_t *len);
int mproc__auth_answer(const mproc__auth *a, const uint8_t *msg, size_t mlen,
                       uint8_t out[MPROC__HS_MAX], size_t *len, bool *refused);
bool mproc__auth_welcomed(const uint8_t *v, size_t n);

/* The two halves of the handshake, bounded by the deadline and the
 * auth's own timeout. Errors: MPROC_EAUTH, MPROC_ETIMEDOUT (dl passed),
 * a send error, MPROC_EIO. */
int mproc__deliver_challenge(mproc_conn *c, const mproc__auth *a, const mproc__deadline *dl);
int mproc__answer_challenge(mproc_conn *c, const mproc__auth *a, const mproc__deadline *dl);

#endif
