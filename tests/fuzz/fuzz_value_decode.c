/* libFuzzer target: mproc_value_decode on untrusted bytes, under its
 * limits (src/value/cbor.c), and the round trip of what it accepts.
 *
 * Input: [limits] [CBOR bytes...]
 *   limits bits 0-1: max_depth (default, 1, 3, 16); bits 2-3: max_items
 *   (default, 1, 5, 64); bits 4-5: max_bytes (default, 0 + default, 3,
 *   40). Bit 6: decode a copy of the bytes with one more byte after them
 *   (which must be refused as trailing bytes).
 *
 * Checks (a failed one aborts):
 *   - decoding gives 0, MPROC_EPROTO or MPROC_E2BIG (inputs are small:
 *     never MPROC_ENOMEM), and a value exactly when it gives 0;
 *   - an accepted value encodes; its encoding decodes under the same
 *     limits to an equal value (mproc_value_equal), which encodes to the
 *     same bytes: the round trip is stable;
 *   - its copy is equal, and its repr is as long as the length it reports.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS); seeds in
 * tests/fuzz/corpus/value_decode (tests/fuzz/make_corpus.py). */
#include "mproc/value.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT (256 * 1024)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_value_decode: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) return -1;
    static const unsigned depths[] = {0, 1, 3, 16};
    static const size_t items[] = {0, 1, 5, 64}, bytes[] = {0, 0, 3, 40};
    mproc_value_limits lim = {
        .max_depth = depths[data[0] & 3],
        .max_items = items[(data[0] >> 2) & 3],
        .max_bytes = bytes[(data[0] >> 4) & 3],
    };
    const uint8_t *cbor = data + 1;
    size_t len = size - 1;

    mproc_value *v = (mproc_value *)1;
    int rc = mproc_value_decode(cbor, len, &lim, &v);
    CHECK(rc == 0 || rc == MPROC_EPROTO || rc == MPROC_E2BIG);
    CHECK(rc == 0 ? v != NULL : v == NULL);

    if (data[0] & 0x40) { /* one more byte: trailing, or (if this failed) still no value */
        uint8_t *more = malloc(len + 1);
        CHECK(more);
        if (len) memcpy(more, cbor, len);
        more[len] = 0xf6;
        mproc_value *w = (mproc_value *)1;
        int rc2 = mproc_value_decode(more, len + 1, &lim, &w);
        free(more);
        if (rc == 0)
            CHECK(rc2 == MPROC_EPROTO);
        else
            CHECK(rc2 == 0 || rc2 == MPROC_EPROTO || rc2 == MPROC_E2BIG);
        CHECK(rc2 == 0 ? w != NULL : w == NULL);
        mproc_value_free(w);
    }
    if (rc) return 0;

    void *enc;
    size_t elen;
    CHECK(mproc_value_encode(v, &enc, &elen) == 0);
    mproc_value *v2 = NULL;
    rc = mproc_value_decode(enc, elen, &lim, &v2);
    if (rc)
        fprintf(stderr, "fuzz_value_decode: the encoding does not decode: %s\n",
                mproc_err_name(rc));
    CHECK(rc == 0);
    CHECK(mproc_value_equal(v, v2));
    void *enc2;
    size_t elen2;
    CHECK(mproc_value_encode(v2, &enc2, &elen2) == 0);
    CHECK(elen2 == elen && memcmp(enc, enc2, elen) == 0);

    mproc_value *cp = mproc_value_copy(v);
    CHECK(cp && mproc_value_equal(cp, v) && mproc_value_kind_of(cp) == mproc_value_kind_of(v));
    size_t rlen = mproc_value_repr(v, NULL, 0);
    char *r = mproc_value_repr_alloc(v);
    CHECK(r && strlen(r) == rlen);

    free(r);
    mproc_value_free(cp);
    free(enc2);
    mproc_value_free(v2);
    free(enc);
    mproc_value_free(v);
    return 0;
}
