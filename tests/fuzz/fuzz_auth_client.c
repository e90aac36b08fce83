/* libFuzzer target: the authkey handshake on the connecting side, the
 * fuzzer playing a hostile server (src/auth.c, src/authkey.c).
 *
 * Input: [config] [what the server sends...] (config: see fuzz_auth.h).
 * The server's bytes are written into a socketpair, which is then shut for
 * writing, and the client's side runs as mproc_client_new and a manager
 * client run it: mproc_answer_challenge (the server's challenge: we answer
 * it and read its verdict), then mproc_deliver_challenge (our challenge:
 * the server must answer it). Every read finds its bytes or end of file:
 * the run never waits and never depends on time. Our nonce is fixed (see
 * fuzz_auth.h), so seeds hold right answers.
 *
 * Checks, against a reference model of the handshake (a failed one
 * aborts):
 *   - our answer to the server's challenge is exactly the model's (HMAC
 *     under the key, computed here; the refusal of a legacy challenge with
 *     reject_legacy), or nothing for a malformed challenge;
 *   - mproc_answer_challenge returns 0 exactly when we answered, did not
 *     refuse, and the verdict was "#WELCOME#"; else MPROC_EAUTH
 *     (MPROC_EINVAL for reject_legacy with md5, before anything is sent);
 *   - then we send exactly our challenge, and the verdict "#WELCOME#" if
 *     the server's next message is a right answer, "#FAILURE#" if it is a
 *     wrong one, nothing if there is none; mproc_deliver_challenge returns
 *     0 exactly when the answer was right.
 * So no input makes a client trust a server that did not prove the key.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS); seeds in
 * tests/fuzz/corpus/auth_client (tests/fuzz/make_corpus.py). */
#include "fuzz_auth.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) return -1;
    config cf;
    config_parse(&cf, data[0]);
    const uint8_t *in = data + 1;
    size_t inlen = size - 1;
    int peer;
    mproc_conn *c = conn_with_input(in, inlen, &peer);

    int rc1 = mproc_answer_challenge(c, &cf.auth, HS_TIMEOUT), rc2 = 1;
    if (rc1 == 0) rc2 = mproc_deliver_challenge(c, &cf.auth, HS_TIMEOUT);
    static uint8_t out[4 * HS_MAX];
    size_t outlen = drain(peer, out, sizeof out), opos = 0;
    mproc_conn_free(c);
    close(peer);

    msg o, m;
    size_t ipos = 0;
    if (cf.invalid) {
        CHECK(rc1 == MPROC_EINVAL && outlen == 0);
        return 0;
    }
    /* The server's challenge: our answer, and its verdict. */
    uint8_t ans[HS_MAX];
    size_t alen = 0;
    bool refused = false;
    if (next_msg(in, inlen, &ipos, &m)) alen = our_answer(&cf, m.p, m.len, ans, &refused);
    if (alen == 0) {
        CHECK(rc1 == MPROC_EAUTH && outlen == 0);
        return 0;
    }
    CHECK(next_msg(out, outlen, &opos, &o) && msg_is(&o, ans, alen));
    bool welcome = next_msg(in, inlen, &ipos, &m) && msg_is(&m, WELCOME, 9);
    CHECK(rc1 == (welcome && !refused ? 0 : MPROC_EAUTH));
    if (rc1) {
        CHECK(opos == outlen);
        return 0;
    }
    /* Our challenge, and the verdict on the server's answer. */
    uint8_t chal[HS_MAX];
    size_t clen = our_challenge(&cf, chal);
    CHECK(next_msg(out, outlen, &opos, &o) && msg_is(&o, chal, clen));
    if (!next_msg(in, inlen, &ipos, &m)) {
        CHECK(rc2 == MPROC_EAUTH && opos == outlen);
        return 0;
    }
    bool right = answer_ok(&cf, m.p, m.len);
    CHECK(next_msg(out, outlen, &opos, &o) && msg_is(&o, right ? WELCOME : FAILURE, 9));
    CHECK(opos == outlen);
    CHECK(rc2 == (right ? 0 : MPROC_EAUTH));
    return 0;
}
