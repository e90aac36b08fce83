/* libFuzzer target: the authkey handshake on the accepting side, the
 * fuzzer playing a hostile client (src/conn/auth.c, src/conn/authkey.c).
 *
 * Input: [config] [what the client sends...] (config: see fuzz_auth.h).
 * The client's bytes are written into a socketpair, which is then shut for
 * writing, and the listener's side runs as a listener and a manager server
 * run it: mproc_deliver_challenge (our challenge: the client must answer
 * it), then mproc_answer_challenge (the client's challenge: we answer it
 * and read its verdict). Every read finds its bytes or end of file: the
 * run never waits and never depends on time. Our nonce is fixed (see
 * fuzz_auth.h), so seeds hold right answers.
 *
 * Checks, against a reference model of the handshake (a failed one
 * aborts):
 *   - we send exactly our challenge, then "#WELCOME#" if the client's
 *     first message is a right answer (HMAC under the key, computed here),
 *     "#FAILURE#" if it is a wrong one, nothing more if there is none;
 *   - mproc_deliver_challenge returns 0 exactly when the answer was right,
 *     else MPROC_EAUTH (MPROC_EINVAL for reject_legacy with md5);
 *   - then our answer to the client's challenge is exactly the model's
 *     (or nothing, for a malformed challenge), and
 *     mproc_answer_challenge returns 0 exactly when the challenge was well
 *     formed, not refused, and the verdict was "#WELCOME#".
 * So no input authenticates a client that did not prove the key.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS); seeds in
 * tests/fuzz/corpus/auth_server (tests/fuzz/make_corpus.py). */
#include "fuzz_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) return -1;
    hs_run r;
    if (!hs_run_calls(&r, data, size, mproc_deliver_challenge, mproc_answer_challenge)) return 0;
    /* Our challenge, and the verdict on the client's answer. */
    if (!hs_check_our_challenge(&r, r.rc1)) {
        CHECK(r.opos == r.outlen);
        return 0;
    }
    /* The client's challenge: our answer, and its verdict. */
    hs_check_our_answer(&r, r.rc2);
    CHECK(r.opos == r.outlen);
    return 0;
}
