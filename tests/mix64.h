/* A 64-bit mixer (the finaliser of MurmurHash3) for the tests' message
 * patterns and checksums. Free of Check, for the fault suite too. */
#ifndef MPROC_TEST_MIX64_H
#define MPROC_TEST_MIX64_H

#include <stdint.h>

static inline uint64_t tu_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif
