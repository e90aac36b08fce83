/* Linux implementation of platform/platform.h. */
#include "base/base.h"
#include "base/inject.h"
#include "base/module.h"
#include "platform/platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <time.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int mproc__pidfd_open(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return MPROC__ERRNO();
    /* pidfds are always close-on-exec. */
    return (int)fd;
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int mproc__pidfd_signal(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) != 0) return MPROC__ERRNO();
    return 0;
}

static volatile sig_atomic_t watched_parent, death_signal = SIGKILL;

/* The parent-death signal of a child whose parent is a thread: it comes
 * at every re-parenting. A re-parenting to another thread of the same
 * process leaves getppid() as it was; only the parent process's end
 * changes it. */
static void parent_thread_ended(int sig)
{
    (void)sig;
    if (getppid() != (pid_t)watched_parent) raise(death_signal);
}

int mproc__die_with_parent(pid_t parent, bool by_thread, int sig)
{
    if (by_thread) {
        death_signal = sig;
        sig = MPROC__PARENT_SIGNAL;
        watched_parent = parent;
        struct sigaction sa = {.sa_handler = parent_thread_ended, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        if (sigaction(sig, &sa, NULL) != 0) return MPROC__ERRNO();
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    if (prctl(PR_SET_PDEATHSIG, sig) != 0) return MPROC__ERRNO();
    /* The parent may have died before prctl: then we were re-parented. */
    if (getppid() != parent) return MPROC_ESRCH;
    return 0;
}

int mproc__pipe_cloexec(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : MPROC__ERRNO();
}

bool mproc__is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int mproc__affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
    }
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

void mproc__reset_signal_handlers(void)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0) continue;
        if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) continue;
        sa.sa_handler = SIG_DFL;
        sa.sa_flags = 0;
        sigaction(sig, &sa, NULL);
    }
}

int mproc__futex_wait(_Atomic uint32_t *addr, uint32_t expected, const struct mproc__deadline *dl)
{
    if (MPROC__INJ_HIT(MPROC__INJ_WAKE)) return 0; /* a spurious wake-up */
    struct timespec ts, *tp = NULL;
    if (!dl->forever) {
        ts.tv_sec = dl->at_ns / 1000000000;
        ts.tv_nsec = dl->at_ns % 1000000000;
        tp = &ts;
    }
    for (;;) {
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
        long r =
            syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, tp, NULL, FUTEX_BITSET_MATCH_ANY);
        if (r == 0 || errno == EAGAIN) return 0;
        if (errno == ETIMEDOUT) return MPROC_ETIMEDOUT;
        if (errno != EINTR) return MPROC__ERRNO();
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
    }
}

void mproc__futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

int mproc__cpus_allowed(void)
{
    static _Atomic int cached;
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!n) atomic_store_explicit(&cached, n = mproc__affinity_cpus(), memory_order_relaxed);
    return n;
}

pid_t mproc__mutex_owner(const pthread_mutex_t *m)
{
    /* A robust mutex's futex word holds the owner's tid (and flag bits), also
     * while it is inconsistent after an owner died. */
    return (pid_t)((unsigned)m->__data.__lock & FUTEX_TID_MASK);
}

unsigned mproc__mutex_count(const pthread_mutex_t *m)
{
    return m->__data.__count;
}

bool mproc__mutex_waiters(const pthread_mutex_t *m)
{
    return ((unsigned)m->__data.__lock & FUTEX_WAITERS) != 0;
}

static _Thread_local pid_t cached_tid __attribute__((tls_model("initial-exec")));
static mproc__module tid_module;

pid_t mproc__tid(void)
{
    if (MPROC__UNLIKELY(!cached_tid)) {
        /* The cache is reset in a fork child by the module's hook: started
         * here too, for a program that uses locks without ever starting
         * the library (once per process: a child inherits it started). */
        if (!atomic_load_explicit(&tid_module.started, memory_order_relaxed))
            mproc__module_start(&tid_module);
        cached_tid = (pid_t)syscall(SYS_gettid);
    }
    return cached_tid;
}

bool mproc__on_main_thread(void)
{
    return mproc__tid() == getpid();
}

/* In a fork child: the forking thread's id is its parent's. */
static void tid_after_fork_child(void)
{
    cached_tid = 0;
}

static mproc__module tid_module = {
    .name = "platform.tid",
    .rank = MPROC__RANK_PLATFORM,
    .after_fork_child = tid_after_fork_child,
};
MPROC__MODULE(tid_module)

int mproc__memfd(const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return MPROC__ERRNO();
    if (ftruncate(fd, (off_t)size) != 0) {
        int rc = MPROC__ERRNO();
        close(fd);
        return rc;
    }
    return fd;
}

void mproc__release_pages(void *addr, size_t len)
{
    (void)madvise(addr, len, MADV_REMOVE);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void mproc__populate_pages(void *addr, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)addr;
    uintptr_t lo = (a + page - 1) & ~(page - 1), hi = (a + len) & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv_entry { /* struct futex_waitv */
    uint64_t val, uaddr;
    uint32_t flags, reserved;
};

int mproc__futex_waitv(_Atomic uint32_t *const *words, const uint32_t *seen, size_t n,
                       const struct mproc__deadline *dl)
{
    if (MPROC__INJ_HIT(MPROC__INJ_WAKE)) return 0; /* a spurious wake-up */
    struct waitv_entry stack[16], *v = n <= 16 ? stack : calloc(n, sizeof *v);
    if (!v) return MPROC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = (struct waitv_entry){seen[i], (uint64_t)(uintptr_t)words[i], 2 /* FUTEX_32 */, 0};
    struct timespec ts, *tp = NULL;
    if (!dl->forever) {
        ts.tv_sec = dl->at_ns / 1000000000;
        ts.tv_nsec = dl->at_ns % 1000000000;
        tp = &ts;
    }
    int rc;
    for (;;) {
        long r = syscall(SYS_futex_waitv, v, (unsigned)n, 0, tp, CLOCK_MONOTONIC);
        if (r >= 0 || errno == EAGAIN)
            rc = 0;
        else if (errno == ETIMEDOUT)
            rc = MPROC_ETIMEDOUT;
        else if (errno == EINTR && !mproc__deadline_passed(dl))
            continue;
        else
            rc = errno == EINTR ? MPROC_ETIMEDOUT : MPROC__ERRNO();
        break;
    }
    if (v != stack) free(v);
    return rc;
}

bool mproc__membarrier_register(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
           syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
}

int mproc__membarrier(void)
{
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : -1;
}

int mproc__map_shared_at(uintptr_t addr, size_t size, int fd, void **out)
{
    void *p = mmap((void *)addr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) return MPROC__ERRNO();
    if ((uintptr_t)p != addr) { /* a kernel without MAP_FIXED_NOREPLACE */
        munmap(p, size);
        return MPROC_EADDRINUSE;
    }
    *out = p;
    return 0;
}

void mproc__set_thread_name(const char *name)
{
    /* The system call itself, not libc's prctl: the shm tracker names
     * itself right after a fork that ran no handlers in a process with
     * threads, where ThreadSanitizer's prctl could wait for a lock a
     * thread of the parent held at the fork, for ever. */
    syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0);
}

bool mproc__random_bytes(void *buf, size_t n)
{
    return getrandom(buf, n, GRND_NONBLOCK) == (ssize_t)n;
}

int mproc__current_cpu(void)
{
    return sched_getcpu();
}

bool mproc__thread_dead(pid_t tid)
{
    if (kill(tid, 0) != 0) return errno == ESRCH;
    char path[40], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the state follows the name */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

pid_t mproc__fork_nohandlers(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return _Fork();
#else
    return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
#endif
}

_Noreturn void mproc__exit_raw(int code)
{
    for (;;) syscall(SYS_exit_group, code);
}

void mproc__close_range(unsigned lo, unsigned hi)
{
    if (lo > hi) return;
    if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
    struct rlimit rl;
    unsigned top = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < top)
        top = (unsigned)rl.rlim_cur;
    for (unsigned fd = lo; fd <= hi && fd < top; fd++) close((int)fd);
}

/* "/proc/self/fd/<fd>", without snprintf (async-signal-safe). */
static void fd_path(char path[48], int fd)
{
    char tmp[16];
    size_t n = 0, at = sizeof "/proc/self/fd/" - 1;
    unsigned v = (unsigned)fd;
    memcpy(path, "/proc/self/fd/", at);
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++) path[at + i] = tmp[n - 1 - i];
    path[at + n] = '\0';
}

int mproc__fd_reopen(int fd, int flags)
{
    char path[48];
    fd_path(path, fd);
    int r = open(path, flags);
    return r < 0 ? MPROC__ERRNO() : r;
}

bool mproc__fd_is_memfd(int fd, const char *name)
{
    char path[48], link[64];
    fd_path(path, fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0) return false;
    link[n] = '\0';
    size_t len = strlen(name);
    return strncmp(link, "/memfd:", 7) == 0 && strncmp(link + 7, name, len) == 0;
}
