/* Function references that survive a new program image.
 *
 * Under spawn and forkserver a child is a fresh image of the program, so a
 * code address from the parent means nothing there. A reference names the
 * function by its module (the program, or a shared library it had loaded)
 * and its offset in that module, and resolves to an address in any process
 * of the family. Modules are numbered in a family-wide table in the arena
 * (0 is the program itself), so a reference is one 64-bit word that can be
 * stored in shared objects: [module:16 | offset:48]. 0 is "no function". */
#ifndef MPROC_INTERNAL_FNREF_H
#define MPROC_INTERNAL_FNREF_H

#include "base/base.h"

#include <stdint.h>

typedef uint64_t mproc__fnref;

/* A reference to the code at fn (each thread remembers its last few: a
 * library unloaded and another loaded at the same address would be
 * mistaken for it). Errors: MPROC_EINVAL (fn is not inside
 * the code of a loaded module, e.g. a pointer to data or to generated
 * code; a message is logged), MPROC_ENOSPC (module table full),
 * MPROC_ENAMETOOLONG, or the arena's error. NULL gives 0. */
int mproc__fnref_make(const void *fn, mproc__fnref *out);

/* The address in this process, or NULL (a library that cannot be loaded
 * here: the reason is logged). 0 gives NULL. */
void *mproc__fnref_resolve(mproc__fnref ref);

/* A random number that identifies this program image: equal in processes
 * that share code addresses (fork), different after exec. */
uint64_t mproc__image_token(void);

#endif
