/* Named shared memory (the twin of multiprocessing.shared_memory's
 * SharedMemory): POSIX shm segments that unrelated processes open by name.
 *
 * Names follow Python: given with or without a leading '/', kept without
 * it; NULL picks a random "mproc_<16 hex digits>". A created segment is
 * tracked (see shm/tracker.h) unless opts.persist: its name is
 * recorded before the segment exists, so even a SIGKILL right after the
 * creation is cleaned up once the family is gone.
 *
 * The handle remembers the segment's identity (device and inode), so
 * unlink removes the name only while it still names this segment, and a
 * second unlink through the same handle is MPROC_ENOENT without touching
 * a segment that may have taken the name since.
 *
 * A new segment's memory is reserved at creation (posix_fallocate), so that
 * a full /dev/shm is MPROC_ENOSPC from mproc_shm_create rather than SIGBUS
 * on a later write; opts.sparse leaves it to be committed when touched (as
 * Python's), with that risk.
 */
#include "base/base.h"
#include "platform/platform.h"
#include "shm/tracker.h"
#include "mproc/shm.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RANDOM_PREFIX "mproc_"
#define RANDOM_TRIES  64

struct mproc_shm {
    void *buf;
    size_t size;
    dev_t dev;
    ino_t ino;
    mproc__shm_record track;            /* slot -1: not tracked by this handle */
    atomic_bool unlinked;               /* unlinked through this handle */
    char path[MPROC__SHM_NAME_MAX + 2]; /* "/name" */
};

/* The name without its leading '/' if valid, else NULL. */
static const char *check_name(const char *name)
{
    if (!name) return NULL;
    if (name[0] == '/') name++;
    size_t len = strnlen(name, MPROC__SHM_NAME_MAX + 1);
    if (len == 0 || len > MPROC__SHM_NAME_MAX) return NULL;
    if (memchr(name, '/', len)) return NULL;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return NULL;
    return name;
}

static void random_name(char *path)
{
    unsigned char r[8];
    if (!mproc__random_bytes(r, sizeof r)) {
        /* No entropy source: a mix of the clock, the pid and a counter. */
        static atomic_uint counter;
        uint64_t x = (uint64_t)mproc_now_ns() ^ ((uint64_t)getpid() << 40) ^
                     ((uint64_t)atomic_fetch_add(&counter, 1) << 20);
        x ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
        memcpy(r, &x, sizeof r);
    }
    static const char hex[] = "0123456789abcdef";
    char *p = path + 1 + strlen(RANDOM_PREFIX);
    memcpy(path, "/" RANDOM_PREFIX, 1 + strlen(RANDOM_PREFIX));
    for (size_t i = 0; i < sizeof r; i++) {
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p = '\0';
}

static int map_errno(int e)
{
    if (e == ENAMETOOLONG) return MPROC_EINVAL;
    if (e == EFBIG) return MPROC_ENOMEM;
    return mproc__err_from_errno(e);
}

/* Maps fd (size bytes) into m and closes fd. */
static int map_fd(mproc_shm *m, int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return e == EINVAL ? MPROC_ENOMEM : map_errno(e);
    m->buf = p;
    m->size = size;
    return 0;
}

int mproc_shm_create(mproc_shm **out, const char *name, size_t size, const mproc_shm_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    const char *n = NULL;
    if (name && !(n = check_name(name))) return MPROC_EINVAL;
    if (size == 0 || size > (size_t)INT64_MAX) return MPROC_EINVAL;
    bool tracked = !(opts && opts->persist);
    mproc__init();
    mproc_shm *m = calloc(1, sizeof *m);
    if (!m) return MPROC_ENOMEM;
    m->track.slot = -1;
    int fd = -1, rc;
    for (int tries = 0;; tries++) {
        if (n) {
            m->path[0] = '/';
            strcpy(m->path + 1, n);
        } else {
            random_name(m->path);
        }
        if (tracked && (rc = mproc__shm_track(m->path + 1, &m->track)) != 0) goto fail;
        fd = shm_open(m->path, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) break;
        int e = errno;
        if (tracked) mproc__shm_untrack(&m->track, NULL, 0, 0);
        m->track.slot = -1;
        if (e == EEXIST && !n && tries < RANDOM_TRIES) continue;
        rc = map_errno(e);
        goto fail;
    }
    struct stat st;
    if (ftruncate(fd, (off_t)size) != 0 || fstat(fd, &st) != 0) {
        rc = map_errno(errno);
        close(fd);
        goto unlink_fail;
    }
    int e = 0;
    if (!(opts && opts->sparse)) do
            e = posix_fallocate(fd, 0, (off_t)size);
        while (e == EINTR);
    if (e) {
        rc = map_errno(e);
        close(fd);
        goto unlink_fail;
    }
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    if (tracked) mproc__shm_track_identity(&m->track, m->dev, m->ino);
    if ((rc = map_fd(m, fd, size)) != 0) goto unlink_fail;
    *out = m;
    return 0;

unlink_fail:
    shm_unlink(m->path);
    if (tracked) mproc__shm_untrack(&m->track, NULL, 0, 0);
fail:
    free(m);
    return rc;
}

int mproc_shm_attach(mproc_shm **out, const char *name)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    const char *n = check_name(name);
    if (!n) return MPROC_EINVAL;
    mproc__init();
    mproc_shm *m = calloc(1, sizeof *m);
    if (!m) return MPROC_ENOMEM;
    m->track.slot = -1;
    m->path[0] = '/';
    strcpy(m->path + 1, n);
    int rc, fd = shm_open(m->path, O_RDWR, 0);
    if (fd < 0) {
        rc = map_errno(errno);
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = map_errno(errno);
        close(fd);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        rc = MPROC_EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        rc = MPROC_ENOMEM;
        goto fail;
    }
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    if ((rc = map_fd(m, fd, (size_t)st.st_size)) != 0) goto fail;
    *out = m;
    return 0;
fail:
    free(m);
    return rc;
}

void *mproc_shm_buf(const mproc_shm *m)
{
    return m ? m->buf : NULL;
}

size_t mproc_shm_size(const mproc_shm *m)
{
    return m ? m->size : 0;
}

const char *mproc_shm_name(const mproc_shm *m)
{
    return m ? m->path + 1 : "";
}

void mproc_shm_close(mproc_shm *m)
{
    if (!m) return;
    if (m->buf) munmap(m->buf, m->size);
    free(m);
}

int mproc_shm_unlink(mproc_shm *m)
{
    if (!m) return MPROC_EINVAL;
    if (atomic_exchange(&m->unlinked, true)) return MPROC_ENOENT;
    /* Only while the name still names this segment. */
    int fd = shm_open(m->path, O_RDONLY, 0);
    if (fd < 0 && errno != ENOENT && errno != EACCES) {
        int rc = map_errno(errno);
        atomic_store(&m->unlinked, false);
        return rc;
    }
    bool gone = fd < 0 && errno == ENOENT;
    if (fd >= 0) {
        struct stat st;
        gone = fstat(fd, &st) == 0 && (st.st_dev != m->dev || st.st_ino != m->ino);
        close(fd);
    }
    if (!gone && shm_unlink(m->path) != 0) {
        if (errno != ENOENT) {
            int rc = map_errno(errno);
            atomic_store(&m->unlinked, false);
            return rc;
        }
        gone = true;
    }
    /* Either way this segment's name is gone: its record goes too. */
    mproc__shm_untrack(m->track.slot >= 0 ? &m->track : NULL, m->path + 1, m->dev, m->ino);
    return gone ? MPROC_ENOENT : 0;
}
