/* The named-shm tracker: the resource-tracker role of Python's
 * multiprocessing, without its spurious warnings.
 *
 * A family-wide table of tracked segment names lives in the arena (anchor
 * MPROC__SLOT_SHM_TRACKER). mproc_shm_create records a name in it before it
 * creates the segment, mproc_shm_unlink removes it. One tracker process per
 * family waits for the whole family to be gone and then unlinks every name
 * still recorded.
 *
 * "The family is gone": every process of the family shares one open file
 * description of the arena memfd (fork inherits it; spawn and forkserver
 * must pass the same fd on, never reopen it through /proc). The first
 * tracked create puts an OFD read lock on byte MPROC__SHM_FAMILY_LOCK_BYTE
 * of that description; the tracker reopens the memfd (a description of its
 * own), drops every reference it inherited to the family's description
 * (the fd, and the arena mapping: a mapping holds its file; it maps just
 * the table's pages through its own description instead) and blocks for
 * a write lock on that byte. It gets it when the family's description is
 * released: when the last family process has exited, even by SIGKILL. No
 * process holds an extra fd for it, and processes started before the
 * tracker count too. A family process that closes the arena fd and unmaps
 * the arena leaves the family as far as the tracker is concerned.
 */
#ifndef MPROC_INTERNAL_SHM_TRACKER_H
#define MPROC_INTERNAL_SHM_TRACKER_H

#include "base/base.h"

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

/* Names tracked at once per family; one more create is MPROC_ENOSPC. */
#define MPROC__SHM_TRACKER_CAP 1024
/* The longest segment name, without the leading '/'. */
#define MPROC__SHM_NAME_MAX (NAME_MAX - 1)
/* The byte of the arena memfd whose OFD lock marks the family. */
#define MPROC__SHM_FAMILY_LOCK_BYTE 0

/* A record in the table: its slot and the slot's state word when it was
 * made (the generation in it tells a reused slot apart). */
typedef struct mproc__shm_record {
    int slot; /* -1: none */
    uint32_t tag;
} mproc__shm_record;

/* Records `name` (valid, without '/') in the family's table and makes sure
 * the family's tracker runs. On success t names the record.
 * Errors: MPROC_ENOSPC (table full), MPROC_ENOMEM and the arena's errors,
 * MPROC_ECHILDSTART (the tracker could not be started), MPROC_EAGAIN. */
int mproc__shm_track(const char *name, mproc__shm_record *t);

/* Stores the created segment's identity in the record, so that the
 * tracker never unlinks a different segment that took the name later. */
void mproc__shm_track_identity(const mproc__shm_record *t, dev_t dev, ino_t ino);

/* Removes a record: t's own record when t names one (and it is still
 * that record), else the first record of `name` whose identity is dev/ino
 * or unknown. Thread- and process-safe. */
void mproc__shm_untrack(const mproc__shm_record *t, const char *name, dev_t dev, ino_t ino);

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* Records by state, and the tracker's pid (0 when none was started in
 * this family). */
void mproc__shm_tracker_stats(unsigned *active, unsigned *claimed);
pid_t mproc__shm_tracker_pid(void);
#endif

#endif
