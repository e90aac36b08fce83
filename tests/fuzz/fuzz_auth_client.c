/* libFuzzer target: the authkey handshake on the connecting side, the
 * fuzzer playing a hostile server (src/conn/auth.c, src/conn/authkey.c).
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) return -1;
    hs_run r;
    if (!hs_run_calls(&r, data, size, mproc_answer_challenge, mproc_deliver_challenge)) return 0;
    /* The server's challenge: our answer, and its verdict. */
    if (!hs_check_our_answer(&r, r.rc1)) {
        CHECK(r.opos == r.outlen);
        return 0;
    }
    /* Our challenge, and the verdict on the server's answer. */
    hs_check_our_challenge(&r, r.rc2);
    CHECK(r.opos == r.outlen);
    return 0;
}
