/* The check of a child's argument bytes for pointers that mean nothing in
 * a new program image (process/arg_check.c). */
#ifndef MPROC_INTERNAL_ARG_CHECK_H
#define MPROC_INTERNAL_ARG_CHECK_H

#include "process/process.h"

#include <stdbool.h>
#include <stdint.h>

/* For a child of a new program image (spawn, forkserver): MPROC_EINVAL,
 * with a warning naming the offset, if p's argument bytes hold (at an
 * 8-byte-aligned offset) a pointer into this process's brk heap or the
 * calling thread's stack, other than a handle the start translates (a
 * connection, or one a higher layer's argument passer claims through its
 * is_handle, process/passer.h); else 0. Nothing when p->unchecked_args. */
int mproc__arg_check(const mproc_process *p);

#endif
