/* Python's authkey handshake (multiprocessing.connection's
 * deliver_challenge and answer_challenge), current and legacy, with HMAC,
 * randomness and the constant-time compare from OpenSSL libcrypto.
 *
 * Current: the challenger sends "#CHALLENGE#{digest}" + 40 random bytes,
 * the answer is "{digest}" + HMAC(key, everything after "#CHALLENGE#").
 * Legacy (Python <= 3.11): the challenge is "#CHALLENGE#" + 20 random
 * bytes and the answer a bare 16-byte HMAC-MD5. A legacy answerer given a
 * current challenge MACs all of it with MD5, so a challenger tells the
 * two apart by the answer's length (16 or 20: legacy), as Python does. */
#include "conn/auth.h"
#include "conn/conn.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#define CHALLENGE      "#CHALLENGE#"
#define CHALLENGE_LEN  11
#define WELCOME        "#WELCOME#"
#define FAILURE        "#FAILURE#"
#define VERDICT_LEN    9
#define NONCE_LEN      40 /* random bytes in a current challenge */
#define LEGACY_MSG_LEN 20 /* a legacy challenge's payload */
#define LEGACY_MAC_LEN 16 /* an HMAC-MD5 */
#define HS_MAX         MPROC__HS_MAX
#define NAME_MAX_LEN   8 /* longest digest name */
#define DEFAULT_HS_MS  10000
/* Sent instead of an answer when we refuse a legacy challenge: no valid
 * answer of any version, so the challenger replies #FAILURE#. */
#define REFUSED "#LEGACY-HANDSHAKE-REFUSED#"

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
} digests[] = {
    {"md5", EVP_md5},           {"sha256", EVP_sha256},     {"sha384", EVP_sha384},
    {"sha3_256", EVP_sha3_256}, {"sha3_384", EVP_sha3_384},
};
#define NDIGESTS ((int)(sizeof digests / sizeof digests[0]))
#define MD5      0
#define SHA256   1

static int digest_index(const char *name, size_t n)
{
    for (int i = 0; i < NDIGESTS; i++)
        if (strlen(digests[i].name) == n && memcmp(digests[i].name, name, n) == 0) return i;
    return -1;
}

int mproc__hmac(const char *digest, const void *key, size_t klen, const void *msg, size_t mlen,
                uint8_t out[MPROC__HMAC_MAX], size_t *outlen)
{
    int d = digest ? digest_index(digest, strlen(digest)) : -1;
    if (d < 0 || klen > MPROC_AUTHKEY_MAX) return MPROC_EINVAL;
    const EVP_MD *md = digests[d].md();
    if (!md || (size_t)EVP_MD_get_size(md) > MPROC__HMAC_MAX) return MPROC_EIO;
    unsigned int n = 0;
    static const uint8_t empty[1];
    if (!HMAC(md, klen ? key : empty, (int)klen, mlen ? msg : empty, mlen, out, &n))
        return MPROC_EIO;
    *outlen = n;
    return 0;
}

int mproc__auth_resolve(const mproc_auth *a, mproc__auth *out)
{
    out->on = false;
    out->key_len = 0;
    if (!a || (!a->key && !a->family_key)) return 0;
    if (a->timeout_ms < 0 && a->timeout_ms != MPROC_FOREVER) return MPROC_EINVAL;
    out->digest = a->digest ? digest_index(a->digest, strlen(a->digest)) : SHA256;
    if (out->digest < 0 || (a->reject_legacy && out->digest == MD5)) return MPROC_EINVAL;
    out->reject_legacy = a->reject_legacy;
    out->timeout_ms = a->timeout_ms ? a->timeout_ms : DEFAULT_HS_MS;
    if (a->key) {
        if (a->key_len == 0 || a->key_len > MPROC_AUTHKEY_MAX) return MPROC_EINVAL;
        memcpy(out->key, a->key, a->key_len);
        out->key_len = a->key_len;
    } else {
        int rc = mproc_get_authkey(out->key, sizeof out->key, &out->key_len);
        if (rc) return rc;
    }
    out->on = true;
    return 0;
}

/* ---- messages ------------------------------------------------------------ */

/* The handshake's deadline: the caller's, cut to the auth's own bound. */
static void hs_deadline(mproc__deadline *hs, const mproc__deadline *dl, int timeout_ms)
{
    *hs = *dl;
    if (timeout_ms == MPROC_FOREVER) return;
    int64_t at = mproc_now_ns() + (int64_t)timeout_ms * 1000000;
    if (hs->forever || at < hs->at_ns) {
        hs->forever = false;
        hs->at_ns = at;
    }
}

/* A failure during the handshake, as the caller sees it: the peer's
 * misbehaviour (closing, a malformed or oversized frame, silence past the
 * handshake's own bound) is an authentication failure. */
static int hs_err(int rc, const mproc__deadline *dl)
{
    switch (rc) {
    case MPROC_ETIMEDOUT:
        return mproc__deadline_passed(dl) ? MPROC_ETIMEDOUT : MPROC_EAUTH;
    case MPROC_EEOF:
    case MPROC_EPROTO:
    case MPROC_EMSGSIZE:
    case MPROC_ETOOSMALL:
    case MPROC_ECONNRESET:
    case MPROC_EPIPE:
        return MPROC_EAUTH;
    default:
        return rc;
    }
}

/* Receives one handshake message of at most HS_MAX bytes. */
static int recv_small(mproc_conn *c, uint8_t buf[HS_MAX], size_t *len, const mproc__deadline *hs)
{
    size_t old = mproc__conn_max_message(c);
    mproc_conn_set_max_message(c, HS_MAX);
    int rc = mproc_conn_recv_bytes_into(c, buf, HS_MAX, len, mproc__deadline_poll_ms(hs));
    mproc_conn_set_max_message(c, old);
    return rc;
}

/* Splits "{name}mac" into a digest index and the MAC; false if it is not
 * one. */
static bool parse_prefixed(const uint8_t *m, size_t n, int *d, const uint8_t **mac, size_t *maclen)
{
    if (n < 2 || m[0] != '{') return false;
    const uint8_t *curly = memchr(m + 1, '}', n - 1 < NAME_MAX_LEN + 1 ? n - 1 : NAME_MAX_LEN + 1);
    if (!curly) return false;
    *d = digest_index((const char *)m + 1, (size_t)(curly - m - 1));
    if (*d < 0) return false;
    *mac = curly + 1;
    *maclen = n - (size_t)(curly + 1 - m);
    return true;
}

/* Whether resp is the right answer to the challenge msg. */
static bool verify(const mproc__auth *a, const uint8_t *msg, size_t mlen, const uint8_t *resp,
                   size_t rlen)
{
    int d;
    const uint8_t *mac;
    size_t maclen;
    if (rlen == LEGACY_MAC_LEN || rlen == LEGACY_MSG_LEN) { /* a legacy answerer */
        d = MD5;
        mac = resp;
        maclen = rlen;
    } else if (!parse_prefixed(resp, rlen, &d, &mac, &maclen)) {
        return false;
    }
    if (d == MD5 && a->reject_legacy) return false;
    uint8_t want[MPROC__HMAC_MAX];
    size_t wlen;
    if (mproc__hmac(digests[d].name, a->key, a->key_len, msg, mlen, want, &wlen)) return false;
    bool ok = wlen == maclen && CRYPTO_memcmp(want, mac, wlen) == 0;
    OPENSSL_cleanse(want, sizeof want);
    return ok;
}

/* ---- the steps, without I/O ------------------------------------------------ */

int mproc__auth_challenge(const mproc__auth *a, uint8_t out[MPROC__HS_MAX], size_t *len)
{
    const char *name = digests[a->digest].name;
    size_t nlen = strlen(name);
    memcpy(out, CHALLENGE, CHALLENGE_LEN);
    out[CHALLENGE_LEN] = '{';
    memcpy(out + CHALLENGE_LEN + 1, name, nlen);
    out[CHALLENGE_LEN + 1 + nlen] = '}';
    size_t clen = CHALLENGE_LEN + nlen + 2 + NONCE_LEN;
    if (RAND_bytes(out + clen - NONCE_LEN, NONCE_LEN) != 1) return MPROC_EIO;
    *len = clen;
    return 0;
}

bool mproc__auth_verify(const mproc__auth *a, const uint8_t *chal, size_t clen, const uint8_t *resp,
                        size_t rlen)
{
    return clen >= CHALLENGE_LEN &&
           verify(a, chal + CHALLENGE_LEN, clen - CHALLENGE_LEN, resp, rlen);
}

void mproc__auth_verdict(bool ok, const uint8_t **msg, size_t *len)
{
    *msg = (const uint8_t *)(ok ? WELCOME : FAILURE);
    *len = VERDICT_LEN;
}

int mproc__auth_answer(const mproc__auth *a, const uint8_t *msg, size_t mlen,
                       uint8_t out[MPROC__HS_MAX], size_t *len, bool *refused)
{
    *refused = false;
    if (mlen < CHALLENGE_LEN + LEGACY_MSG_LEN || memcmp(msg, CHALLENGE, CHALLENGE_LEN) != 0)
        return MPROC_EAUTH;
    const uint8_t *m = msg + CHALLENGE_LEN;
    mlen -= CHALLENGE_LEN;
    int d = MD5;
    bool prefixed = false;
    if (mlen != LEGACY_MSG_LEN) {
        const uint8_t *rest;
        size_t restlen;
        if (!parse_prefixed(m, mlen, &d, &rest, &restlen)) return MPROC_EAUTH;
        prefixed = true;
    }
    if (d == MD5 && a->reject_legacy) {
        *refused = true;
        *len = sizeof REFUSED - 1;
        memcpy(out, REFUSED, *len);
        return 0;
    }
    size_t plen = 0, rlen = 0;
    if (prefixed) {
        size_t nlen = strlen(digests[d].name);
        out[0] = '{';
        memcpy(out + 1, digests[d].name, nlen);
        out[nlen + 1] = '}';
        plen = nlen + 2;
    }
    int rc = mproc__hmac(digests[d].name, a->key, a->key_len, m, mlen, out + plen, &rlen);
    if (rc) return rc == MPROC_EINVAL ? MPROC_EAUTH : rc;
    *len = plen + rlen;
    return 0;
}

bool mproc__auth_welcomed(const uint8_t *v, size_t n)
{
    return n == VERDICT_LEN && memcmp(v, WELCOME, VERDICT_LEN) == 0;
}

/* ---- the handshake on a connection, blocking ------------------------------ */

int mproc__deliver_challenge(mproc_conn *c, const mproc__auth *a, const mproc__deadline *dl)
{
    mproc__deadline hs;
    hs_deadline(&hs, dl, a->timeout_ms);
    uint8_t chal[MPROC__HS_MAX];
    size_t clen;
    int rc = mproc__auth_challenge(a, chal, &clen);
    if (rc) return rc;
    if ((rc = mproc_conn_send_bytes(c, chal, clen))) return hs_err(rc, dl);
    uint8_t resp[HS_MAX];
    size_t rlen;
    if ((rc = recv_small(c, resp, &rlen, &hs))) return hs_err(rc, dl);
    bool ok = mproc__auth_verify(a, chal, clen, resp, rlen);
    const uint8_t *verdict;
    size_t vlen;
    mproc__auth_verdict(ok, &verdict, &vlen);
    rc = mproc_conn_send_bytes(c, verdict, vlen);
    if (!ok) return MPROC_EAUTH;
    return rc ? hs_err(rc, dl) : 0;
}

int mproc__answer_challenge(mproc_conn *c, const mproc__auth *a, const mproc__deadline *dl)
{
    mproc__deadline hs;
    hs_deadline(&hs, dl, a->timeout_ms);
    uint8_t msg[HS_MAX];
    size_t mlen;
    int rc = recv_small(c, msg, &mlen, &hs);
    if (rc) return hs_err(rc, dl);
    uint8_t resp[MPROC__HS_MAX];
    size_t rlen;
    bool refused;
    if ((rc = mproc__auth_answer(a, msg, mlen, resp, &rlen, &refused))) return rc;
    rc = mproc_conn_send_bytes(c, resp, rlen);
    OPENSSL_cleanse(resp, sizeof resp);
    if (rc) return hs_err(rc, dl);
    uint8_t verdict[HS_MAX];
    size_t vlen;
    rc = recv_small(c, verdict, &vlen, &hs);
    if (refused) return MPROC_EAUTH;
    if (rc) return hs_err(rc, dl);
    return mproc__auth_welcomed(verdict, vlen) ? 0 : MPROC_EAUTH;
}

/* ---- public ---------------------------------------------------------------- */

static int handshake(mproc_conn *c, const mproc_auth *auth, int timeout_ms, bool deliver)
{
    if (!c || !auth) return MPROC_EINVAL;
    mproc__auth a;
    int rc = mproc__auth_resolve(auth, &a);
    if (!rc && !a.on) rc = MPROC_EINVAL;
    mproc__deadline dl;
    if (!rc) rc = mproc__deadline_init(&dl, timeout_ms);
    if (!rc)
        rc = deliver ? mproc__deliver_challenge(c, &a, &dl) : mproc__answer_challenge(c, &a, &dl);
    OPENSSL_cleanse(a.key, a.key_len);
    return rc;
}

int mproc_deliver_challenge(mproc_conn *c, const mproc_auth *auth, int timeout_ms)
{
    return handshake(c, auth, timeout_ms, true);
}

int mproc_answer_challenge(mproc_conn *c, const mproc_auth *auth, int timeout_ms)
{
    return handshake(c, auth, timeout_ms, false);
}

void mproc__auth_thread_done(void)
{
    OPENSSL_thread_stop();
}
