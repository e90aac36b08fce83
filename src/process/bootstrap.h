/* The description of a child that travels to a new program image (spawn,
 * forkserver), and the child-side set-up common to both.
 *
 * The parent encodes it as one CBOR map (mproc_value): the child's name,
 * identity, daemon flag, parent, logging level, default start method and
 * the family authkey;
 * the target as a function reference (module and offset); the argument
 * bytes; the connections found in those bytes, as indexes into the fds
 * that travel beside the description; and what the argument passers
 * (process/passer.h) said of the other handles in them. */
#ifndef MPROC_INTERNAL_BOOTSTRAP_H
#define MPROC_INTERNAL_BOOTSTRAP_H

#include "arena/fnref.h"
#include "process/process.h"
#include "mproc/value.h"

#include <stddef.h>
#include <stdint.h>

#define MPROC__BOOT_MAX_FDS 250 /* fds one child may receive */

typedef enum { MPROC__ROLE_CHILD = 1, MPROC__ROLE_FORKSERVER = 2 } mproc__boot_role;

typedef struct mproc__boot_conn {
    uint64_t off; /* where the handle is in the argument bytes */
    int rfd, wfd; /* indexes into the fds, or -1 */
} mproc__boot_conn;

typedef struct mproc__boot {
    int role;
    int method; /* the child's default start method */
    char *name, *identity, *parent_name;
    bool daemon;
    bool parent_is_thread; /* mproc_process.parent_is_thread */
    pid_t ppid;
    int log_level;
    mproc__fnref target, preload;
    void *arg;
    size_t arglen;
    mproc__boot_conn *conns;
    size_t nconns;
    mproc_value *passed; /* the argument passers' descriptions, or NULL */
    uintptr_t arena_base;
    size_t arena_size;
    uint64_t sig_ign, sig_mask; /* bit s-1: signal s ignored / blocked */
    uint8_t *authkey;           /* the family authkey (malloc'd), or NULL */
    size_t authkey_len;
} mproc__boot;

/* Parent side: the description of p (role CHILD) or of a forkserver (p
 * NULL, preload a function run once in it, or 0) in a new malloc'd buffer.
 * The fds to send go to fds[0..*nfds) (not duplicated: they stay the
 * parent's). Errors: MPROC_EINVAL (the target cannot be found again in a
 * new image: logged), MPROC_EMFILE (more than MPROC__BOOT_MAX_FDS fds),
 * MPROC_ENOMEM, the arena's error. */
int mproc__boot_encode(const mproc_process *p, mproc__fnref preload, void **blob, size_t *len,
                       int fds[MPROC__BOOT_MAX_FDS], size_t *nfds);

/* The signals the calling thread ignores and blocks, as boot masks. */
void mproc__boot_signals(uint64_t *ign, uint64_t *mask);

/* Child side: decodes a description (strings and arrays are malloc'd in
 * *b; free with mproc__boot_free). Errors: MPROC_EPROTO, MPROC_ENOMEM. */
int mproc__boot_decode(const void *blob, size_t len, mproc__boot *b);
void mproc__boot_free(mproc__boot *b);

/* Child side, in the new image with the arena mapped: applies what the
 * description says about this process (logging, start method, the
 * parent's name) and builds the process object the child runs, its
 * connections made from fds[]. Its identity string is malloc'd apart (free
 * it before mproc_process_free when the object is dropped). On failure
 * *msg says why. */
int mproc__boot_make_child(mproc__boot *b, const int *fds, size_t nfds, mproc_process **out,
                           const char **msg);

/* Child side: the parent's pidfd for mproc_parent_process(); a sentinel
 * that is ready at once if the parent has already ended; -1 if no pidfd
 * can be had. */
int mproc__boot_parent_fd(pid_t ppid);

#endif
