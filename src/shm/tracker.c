/* The named-shm tracker (see shm/tracker.h for the design).
 *
 * The table: a fixed array of MPROC__SHM_TRACKER_CAP slots in the arena,
 * allocated once per family and installed in MPROC__SLOT_SHM_TRACKER (the
 * first installer wins, the others free theirs). A slot's state word packs
 * a generation (upper 30 bits) and a state (lower 2 bits):
 *
 *   FREE --CAS--> CLAIMED --(name written)--store--> ACTIVE --CAS--> FREE
 *                                                           (generation+1)
 *
 * Every transition is one atomic step, so a process killed at any point
 * leaves the table consistent: at worst a CLAIMED slot is lost until the
 * family ends, or an ACTIVE record outlives its segment (the tracker's
 * unlink then finds nothing, or a different segment, which it leaves alone
 * thanks to the identity recorded in the slot). The generation makes a
 * stale record (freed and reused since) fail the CAS that would free it.
 *
 * The tracker process: started once per family (state word in the table:
 * pid << 2 | NONE/STARTING/RUNNING; a starter or tracker found dead is
 * replaced) through a double fork and setsid, so nobody must reap it and a
 * signal to the creator's process group does not reach it; then it
 * re-executes the program into a fresh image (see "the tracker's life").
 * Between its fork and its exec (or, without exec, its _exit) it makes only
 * async-signal-safe calls (the caller may have had other threads), plus
 * plain loads from the table and shm_unlink.
 */
#include "shm/tracker.h"
#include "arena/arena.h"
#include "base/io.h"
#include "platform/exec_self.h"
#include "base/log.h"
#include "platform/platform.h"
#include "mproc/arena.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TABLE_MAGIC 0x31726b7274736d6dULL /* "mmstrkr1" */
#define ST_FREE     0u
#define ST_CLAIMED  1u
#define ST_ACTIVE   2u
#define ST_MASK     3u
#define GEN_ONE     4u

#define TR_NONE     0u
#define TR_STARTING 1u
#define TR_RUNNING  2u

#define START_TIMEOUT_MS 10000

typedef struct tslot {
    _Atomic uint32_t state;
    uint32_t pad;
    _Atomic uint64_t dev, ino; /* the segment's identity; ino 0: not known yet */
    char name[MPROC__SHM_NAME_MAX + 2];
} tslot;

typedef struct ttable {
    uint64_t magic;
    _Atomic uint64_t tracker; /* pid << 2 | TR_* */
    _Atomic uint32_t hint;    /* where the next claim starts looking */
    tslot slots[MPROC__SHM_TRACKER_CAP];
} ttable;

/* ---- the table ------------------------------------------------------------ */

static ttable *table_peek(void)
{
    ttable *t = (ttable *)mproc__arena_slot_get(MPROC__SLOT_SHM_TRACKER);
    if (t && t->magic != TABLE_MAGIC)
        mproc__panic("shm tracker: the table in the arena is damaged");
    return t;
}

static int table_get(ttable **out)
{
    ttable *t = table_peek();
    if (!t) {
        void *mine;
        int rc = mproc_arena_calloc(&mine, sizeof(ttable));
        if (rc) return rc;
        ((ttable *)mine)->magic = TABLE_MAGIC;
        if (mproc__arena_slot_cas(MPROC__SLOT_SHM_TRACKER, 0, (uintptr_t)mine)) {
            t = mine;
        } else {
            mproc_arena_free(mine);
            t = table_peek();
            if (!t) return MPROC_EBADSTATE;
        }
    }
    *out = t;
    return 0;
}

/* Names are read while another process may reuse the slot: byte-wise
 * relaxed atomics keep that a benign race; the CAS on the state decides. */
static void name_put(tslot *s, const char *name)
{
    size_t i = 0;
    for (; name[i] && i < sizeof s->name - 1; i++)
        __atomic_store_n(&s->name[i], name[i], __ATOMIC_RELAXED);
    __atomic_store_n(&s->name[i], '\0', __ATOMIC_RELAXED);
}

static bool name_eq(const tslot *s, const char *name)
{
    for (size_t i = 0; i < sizeof s->name; i++) {
        char c = __atomic_load_n(&s->name[i], __ATOMIC_RELAXED);
        if (c != name[i]) return false;
        if (!c) return true;
    }
    return false;
}

static inline uint32_t freed(uint32_t st)
{
    return ((st & ~ST_MASK) + GEN_ONE) | ST_FREE;
}

/* ---- the family lock ------------------------------------------------------- */

static int join_family(void)
{
    int fd = mproc__arena_fd();
    if (fd < 0) return MPROC_EBADSTATE;
    struct flock fl = {
        .l_type = F_RDLCK,
        .l_whence = SEEK_SET,
        .l_start = MPROC__SHM_FAMILY_LOCK_BYTE,
        .l_len = 1,
    };
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return MPROC__ERRNO();
    return 0;
}

/* ---- the tracker process ------------------------------------------------- */

typedef struct ready_msg {
    int32_t err; /* errno of a failed set-up, or 0 */
    int32_t pid; /* the tracker's pid */
} ready_msg;

static void close_all_except(int a, int b)
{
    unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);
    if (lo > 0) mproc__close_range(0, lo - 1);
    if (hi > lo + 1) mproc__close_range(lo + 1, hi - 1);
    mproc__close_range(hi + 1, ~0u);
}

static bool valid_name(const char *n, size_t len)
{
    if (len == 0 || len > MPROC__SHM_NAME_MAX) return false;
    if (memchr(n, '/', len)) return false;
    if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.')) return false;
    return true;
}

/* The family is gone: unlink every name still recorded, unless the name
 * now belongs to another segment than the one recorded. */
static void sweep(ttable *t)
{
    for (unsigned k = 0; k < MPROC__SHM_TRACKER_CAP; k++) {
        tslot *s = &t->slots[k];
        if ((atomic_load_explicit(&s->state, memory_order_acquire) & ST_MASK) != ST_ACTIVE)
            continue;
        char path[sizeof MPROC__SHM_DIR + sizeof s->name];
        const size_t dir = sizeof MPROC__SHM_DIR - 1;
        memcpy(path, MPROC__SHM_DIR, dir);
        size_t len = 0;
        while (len < sizeof s->name - 1 && (path[dir + len] = s->name[len]) != '\0') len++;
        path[dir + len] = '\0';
        if (!valid_name(path + dir, len)) continue;
        uint64_t ino = atomic_load_explicit(&s->ino, memory_order_relaxed);
        uint64_t dev = atomic_load_explicit(&s->dev, memory_order_relaxed);
        if (ino) {
            int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT) continue;
            if (fd >= 0) {
                struct stat st;
                bool same =
                    fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino && (uint64_t)st.st_dev == dev;
                close(fd);
                if (!same) continue;
            }
        }
        shm_unlink(path + dir - 1); /* "/name": the directory's last '/' */
    }
}

/* ---- the tracker's life ------------------------------------------------------
 *
 * The tracker must not pin the creator's memory: a forked copy would keep
 * every private page the creator had at that moment (and every mapping)
 * for the family's whole life, as copy-on-write makes the creator's later
 * writes duplicate them. So the tracker child re-executes the program
 * (/proc/self/exe, with the whole environment plus TRACKER_ENV) and the
 * constructor below takes over before main, in a fresh small image. When
 * our code is in a shared library, LD_PRELOAD brings it into the new image
 * (the program may have dlopen'ed it). Where that cannot work (a setuid
 * program, no dladdr, exec failing) the forked child carries on in place,
 * dropping the references it must not hold (see the header). */

#define TRACKER_ENV MPROC__ENV_SHM_TRACKER

typedef struct tracker_args {
    uintptr_t arena_base;
    size_t arena_size;
    off_t map_off;   /* page-aligned offset of the table's pages in the memfd */
    size_t map_len;  /* bytes of those pages */
    size_t table_in; /* the table's offset in them */
    int own_fd;      /* our own description of the arena memfd */
    int wfd;         /* the ready pipe */
    const char *exe; /* NULL: no exec */
    char **argv, **envp;
} tracker_args;

/* The tracker proper, in a fresh image (inplace NULL) or in the forked
 * copy (inplace: what to unmap). Async-signal-safe calls only. */
static MPROC__NORETURN void tracker_run(int own, int wfd, off_t map_off, size_t map_len,
                                        size_t table_in, const tracker_args *inplace)
{
    ready_msg m = {0, 0};
    void *map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, own, map_off);
    if (map == MAP_FAILED) {
        m.err = errno;
        if (write(wfd, &m, sizeof m) < 0) { /* the starter sees EOF */
        }
        mproc__exit_raw(1);
    }
    ttable *t = (ttable *)((char *)map + table_in);
    if (inplace) munmap((void *)inplace->arena_base, inplace->arena_size);
    close_all_except(own, wfd);
    m.pid = (int32_t)getpid();
    /* A starter killed meanwhile gets a new tracker from the next create;
     * this one carries on all the same. */
    if (write(wfd, &m, sizeof m) != (ssize_t)sizeof m) { /* EPIPE: SIGPIPE is ignored */
    }
    close(wfd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = MPROC__SHM_FAMILY_LOCK_BYTE,
        .l_len = 1,
    };
    int r;
    MPROC__RETRY_EINTR(r, fcntl(own, F_OFD_SETLKW, &fl));
    if (r != 0) {
        /* Should not happen; fall back to polling for the lock. */
        while (fcntl(own, F_OFD_SETLK, &fl) != 0) {
            if (errno != EAGAIN && errno != EACCES && errno != EINTR) mproc__exit_raw(2);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    sweep(t);
    mproc__exit_raw(0);
}

/* The grandchild, right after its fork: async-signal-safe calls only. */
static MPROC__NORETURN void tracker_child(const tracker_args *a)
{
    setsid();
    mproc__reset_signal_handlers();
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        sigaction(ignored[i], &ign, NULL);
    mproc__set_thread_name("mproc-shmtrack");
    if (chdir("/") != 0) { /* not fatal */
    }
    if (a->exe && fcntl(a->own_fd, F_SETFD, 0) == 0 && fcntl(a->wfd, F_SETFD, 0) == 0)
        execve(a->exe, a->argv, a->envp);
    tracker_run(a->own_fd, a->wfd, a->map_off, a->map_len, a->table_in, a);
}

/* In a fresh image started as a tracker: become it before main runs. */
__attribute__((constructor(101))) static void tracker_ctor(void)
{
    const char *v = mproc__setting(MPROC__SET_SHM_TRACKER);
    if (!v) return;
    int own, wfd;
    long long off;
    unsigned long long len, in;
    struct stat st;
    if (sscanf(v, "%d:%d:%lld:%llu:%llu", &own, &wfd, &off, &len, &in) != 5 || off < 0 ||
        !mproc__fd_is_memfd(own, "mproc-arena") || fstat(wfd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        unsetenv(TRACKER_ENV); /* not for us: the program goes on */
        return;
    }
    mproc__set_thread_name("mproc-shmtrack");
    tracker_run(own, wfd, (off_t)off, (size_t)len, (size_t)in, NULL);
}

static int read_ready(int fd, ready_msg *m)
{
    mproc__deadline dl;
    mproc__deadline_init(&dl, START_TIMEOUT_MS);
    return mproc__read_exact(fd, m, sizeof *m, &dl) ? MPROC_ECHILDSTART : 0;
}

static int start_tracker(ttable *t, pid_t *tracker_pid, bool exec_ok)
{
    tracker_args a = {.own_fd = -1};
    int arena_fd = mproc__arena_fd();
    mproc_arena_info info;
    if (arena_fd < 0 || mproc_arena_info_get(&info) != 0) return MPROC_EBADSTATE;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t off = (uintptr_t)t - info.base;
    a.arena_base = info.base;
    a.arena_size = info.size;
    a.map_off = (off_t)(off & ~(uintptr_t)(page - 1));
    a.table_in = off - (uintptr_t)a.map_off;
    a.map_len = (a.table_in + sizeof(ttable) + page - 1) & ~(page - 1);

    /* The tracker's own description of the memfd, made here so that its
     * number is known; the family's description gets no new reference. */
    a.own_fd = mproc__fd_reopen(arena_fd, O_RDWR | O_CLOEXEC);
    if (a.own_fd < 0) return a.own_fd;
    int p[2];
    int rc = mproc__pipe_cloexec(p);
    if (rc) {
        close(a.own_fd);
        return rc;
    }
    a.wfd = p[1];

    char trk[128];
    char *argv[] = {"mproc-shmtrack", NULL};
    snprintf(trk, sizeof trk, TRACKER_ENV "=%d:%d:%lld:%zu:%zu", a.own_fd, a.wfd,
             (long long)a.map_off, a.map_len, a.table_in);
    mproc__exec_env env = {0};
    if (exec_ok && mproc__exec_env_make(trk, &env) == 0) {
        a.envp = env.envp;
        a.exe = mproc__self_exe();
        a.argv = argv;
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t mid = mproc__fork_nohandlers();
    if (mid == 0) { /* the intermediate child: only a fork and an exit */
        pid_t tr = mproc__fork_nohandlers();
        if (tr == 0) tracker_child(&a);
        mproc__exit_raw(tr < 0 ? 1 : 0);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    close(a.own_fd);
    mproc__exec_env_free(&env);
    if (mid < 0) {
        close(p[0]);
        return mproc__err_from_errno(err);
    }
    int status;
    pid_t r;
    MPROC__RETRY_EINTR(r, waitpid(mid, &status, 0));
    ready_msg m;
    rc = read_ready(p[0], &m);
    close(p[0]);
    if (rc) return rc;
    if (m.err) {
        mproc_log(MPROC_LOG_WARNING, "shm tracker: set-up failed: %s",
                  mproc_strerror(mproc__err_from_errno(m.err)));
        return MPROC_ECHILDSTART;
    }
    *tracker_pid = (pid_t)m.pid;
    return 0;
}

static bool alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int ensure_tracker(ttable *t)
{
    pid_t self = getpid();
    for (;;) {
        uint64_t v = atomic_load(&t->tracker);
        unsigned st = (unsigned)(v & 3);
        pid_t pid = (pid_t)(v >> 2);
        if (st == TR_RUNNING && alive(pid)) return 0;
        if (st == TR_STARTING && alive(pid)) { /* another starter: wait for it */
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        /* None yet, or its starter or tracker died: start one. */
        uint64_t mine = ((uint64_t)self << 2) | TR_STARTING;
        if (!atomic_compare_exchange_strong(&t->tracker, &v, mine)) continue;
        pid_t tpid = 0;
        int rc = start_tracker(t, &tpid, true);
        if (rc == MPROC_ECHILDSTART) { /* the new image failed: no exec then */
            MPROC__DEBUG("shm tracker: re-executing the program failed, forking only");
            rc = start_tracker(t, &tpid, false);
        }
        atomic_store(&t->tracker, rc ? TR_NONE : ((uint64_t)tpid << 2) | TR_RUNNING);
        if (rc == 0) MPROC__DEBUG("shm tracker started (pid %d)", (int)tpid);
        return rc;
    }
}

/* ---- the internal API ------------------------------------------------------ */

int mproc__shm_track(const char *name, mproc__shm_record *out)
{
    ttable *t;
    int rc = table_get(&t);
    if (rc) return rc;
    if ((rc = join_family()) != 0) return rc;
    if ((rc = ensure_tracker(t)) != 0) return rc;
    unsigned start = atomic_fetch_add_explicit(&t->hint, 1, memory_order_relaxed);
    for (unsigned i = 0; i < MPROC__SHM_TRACKER_CAP; i++) {
        unsigned k = (start + i) % MPROC__SHM_TRACKER_CAP;
        tslot *s = &t->slots[k];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if ((st & ST_MASK) != ST_FREE) continue;
        uint32_t claimed = (st & ~ST_MASK) | ST_CLAIMED;
        if (!atomic_compare_exchange_strong_explicit(&s->state, &st, claimed, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        atomic_store_explicit(&s->ino, 0, memory_order_relaxed);
        atomic_store_explicit(&s->dev, 0, memory_order_relaxed);
        name_put(s, name);
        uint32_t active = (claimed & ~ST_MASK) | ST_ACTIVE;
        atomic_store_explicit(&s->state, active, memory_order_release);
        out->slot = (int)k;
        out->tag = active;
        return 0;
    }
    return MPROC_ENOSPC;
}

void mproc__shm_track_identity(const mproc__shm_record *tr, dev_t dev, ino_t ino)
{
    ttable *t = table_peek();
    if (!t || !tr || tr->slot < 0 || tr->slot >= MPROC__SHM_TRACKER_CAP) return;
    tslot *s = &t->slots[tr->slot];
    if (atomic_load(&s->state) != tr->tag) return;
    atomic_store_explicit(&s->dev, (uint64_t)dev, memory_order_relaxed);
    atomic_store_explicit(&s->ino, (uint64_t)ino, memory_order_release);
}

void mproc__shm_untrack(const mproc__shm_record *tr, const char *name, dev_t dev, ino_t ino)
{
    ttable *t = table_peek();
    if (!t) return;
    if (tr && tr->slot >= 0 && tr->slot < MPROC__SHM_TRACKER_CAP) {
        uint32_t want = tr->tag;
        atomic_compare_exchange_strong(&t->slots[tr->slot].state, &want, freed(tr->tag));
        return;
    }
    if (!name) return;
    for (unsigned k = 0; k < MPROC__SHM_TRACKER_CAP; k++) {
        tslot *s = &t->slots[k];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if ((st & ST_MASK) != ST_ACTIVE || !name_eq(s, name)) continue;
        uint64_t sino = atomic_load_explicit(&s->ino, memory_order_acquire);
        uint64_t sdev = atomic_load_explicit(&s->dev, memory_order_relaxed);
        if (sino && (sino != (uint64_t)ino || sdev != (uint64_t)dev)) continue;
        if (atomic_compare_exchange_strong(&s->state, &st, freed(st))) return;
    }
}

#ifdef MPROC_TESTING
void mproc__shm_tracker_stats(unsigned *active, unsigned *claimed)
{
    unsigned a = 0, c = 0;
    ttable *t = table_peek();
    for (unsigned k = 0; t && k < MPROC__SHM_TRACKER_CAP; k++) {
        uint32_t st = atomic_load(&t->slots[k].state) & ST_MASK;
        a += st == ST_ACTIVE;
        c += st == ST_CLAIMED;
    }
    if (active) *active = a;
    if (claimed) *claimed = c;
}

pid_t mproc__shm_tracker_pid(void)
{
    ttable *t = table_peek();
    if (!t) return 0;
    uint64_t v = atomic_load(&t->tracker);
    return (v & 3) == TR_RUNNING ? (pid_t)(v >> 2) : 0;
}
#endif
