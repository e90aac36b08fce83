/* Argument passers: how a higher layer's handles found in a child's
 * argument bytes travel to the child (docs/processes.md, "Handles in the
 * argument bytes").
 *
 * The process layer knows connections itself (they travel as fds, see
 * process/bootstrap.h). For any other kind of handle, the layer that owns
 * it registers a passer (from its module's init hook): at every start the
 * parent asks each passer to describe the handles it finds in the bytes
 * (a value: what a child needs to make handles of its own, and where they
 * go); the description travels with the child under every start method
 * (in memory under fork, in the child's description otherwise), and in
 * the child, before the target runs, the passer adopts it: it writes
 * handles of the child's own over the parent's in the child's copy of the
 * bytes. When the target returns, the passer releases what it made. */
#ifndef MPROC_INTERNAL_PASSER_H
#define MPROC_INTERNAL_PASSER_H

#include "mproc/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mproc__arg_passer {
    const char *name; /* unique: its key in the description */
    /* Parent side: a description of the handles found in bytes (*desc;
     * NULL when there are none). A failure fails the start. */
    int (*describe)(const void *bytes, size_t len, mproc_value **desc);
    /* Child side, before the target: writes handles of the child's own
     * into bytes as desc says; *kept (what release frees) may be NULL. A
     * failure ends the child with exit code 1 (logged). */
    int (*adopt)(const mproc_value *desc, void *bytes, size_t len, void **kept);
    /* Child side, after the target returned: frees what adopt made. */
    void (*release)(void *kept);
    /* Whether a word of argument bytes is one of this passer's handles
     * (the start translates it: the pointer check lets it pass,
     * process/arg_check.h); may be NULL. */
    bool (*is_handle)(uintptr_t word);
} mproc__arg_passer;

/* Registers p (which must live as long as the program); at most 8, a
 * second registration of p is a no-op. */
void mproc__arg_passer_register(const mproc__arg_passer *p);

/* Parent side: the descriptions of every passer that found handles in
 * bytes, as a map name -> description (*out; NULL when none found). */
int mproc__args_describe(const void *bytes, size_t len, mproc_value **out);

/* Child side: adopts the descriptions (a map from mproc__args_describe)
 * into bytes; *msg says which passer failed. */
int mproc__args_adopt(const mproc_value *passed, void *bytes, size_t len, const char **msg);

/* Child side, after the target: releases what mproc__args_adopt made. */
void mproc__args_release(void);

/* Whether some passer's is_handle claims word. */
bool mproc__args_is_handle(uintptr_t word);

#endif
