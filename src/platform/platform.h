/* The platform layer: every Linux-specific call the rest of mproc uses.
 * A port provides these with the same contracts; everything else in src/ is
 * portable POSIX C11. */
#ifndef MPROC_INTERNAL_PLATFORM_H
#define MPROC_INTERNAL_PLATFORM_H

#include <stdbool.h>
#include <sys/types.h>

/* An fd that becomes readable when `pid` exits (a pidfd), close-on-exec;
 * a negative mproc code when the kernel has none (MPROC_ENOSYS). */
int mproc__pidfd_open(pid_t pid);

/* Sends sig to the process of a pidfd; MPROC_ESRCH once it has exited. */
int mproc__pidfd_signal(int pidfd, int sig);

/* Arrange for the calling (just forked) child to get SIGKILL when its
 * parent dies. `parent` is the pid the child expects as parent: if that
 * one has already died, returns MPROC_ESRCH. */
int mproc__die_with_parent(pid_t parent);

/* clone(CLONE_PARENT) for the forkserver (see clone_parent.c): returns 0
 * in the child (a sibling of the caller: a child of the caller's parent),
 * its pid in the caller, or a negative code (MPROC_ENOTSUP where the
 * thread descriptor cannot be fixed up). Single-threaded callers only. */
bool mproc__clone_parent_supported(void);
pid_t mproc__clone_parent(void);

/* pipe2(O_CLOEXEC). */
int mproc__pipe_cloexec(int fds[2]);

/* True if fd is a socket (sends then use MSG_NOSIGNAL). */
bool mproc__is_socket(int fd);

/* Number of CPUs in the calling thread's affinity mask (>= 1). */
int mproc__affinity_cpus(void);

/* CPUs in the affinity mask, read once per process (for spin decisions). */
int mproc__cpus_allowed(void);

/* The CPU quota of the process's cgroup in CPUs, rounded up; 0 if none. */
int mproc__cgroup_cpu_quota(void);

/* In a new child: every caught signal back to its default action, as after
 * exec (ignored signals stay ignored). Call with all signals blocked. */
void mproc__reset_signal_handlers(void);

/* Futexes on process-shared memory. Wait sleeps while *addr == expected,
 * until woken or the deadline passes: 0 (woken, or the value differed),
 * MPROC_ETIMEDOUT; EINTR is retried inside. Wake wakes up to n waiters
 * (INT32_MAX: all). */
#include <stdatomic.h>
#include <stdint.h>
struct mproc__deadline;
int mproc__futex_wait(_Atomic uint32_t *addr, uint32_t expected, const struct mproc__deadline *dl);
void mproc__futex_wake(_Atomic uint32_t *addr, int n);

/* The thread id holding a robust pthread mutex (0 if none) and its
 * recursion count (glibc keeps both in the mutex; a port keeps them
 * itself). */
#include <pthread.h>
pid_t mproc__mutex_owner(const pthread_mutex_t *m);
unsigned mproc__mutex_count(const pthread_mutex_t *m);

/* Waits until any of n futex words differs from its value in seen[] (or a
 * wake): 0, MPROC_ETIMEDOUT, MPROC_ENOSYS (no futex_waitv: poll instead). */
int mproc__futex_waitv(_Atomic uint32_t *const *words, const uint32_t *seen, size_t n,
                       const struct mproc__deadline *dl);

/* The caller's thread id, cached per thread (reset in a fork child). */
pid_t mproc__tid(void);

/* An anonymous memory file (memfd, close-on-exec) of `size` bytes. */
int mproc__memfd(const char *name, size_t size);

/* Gives the pages of [addr, addr+len) back (they read as zero again);
 * addr and len page-aligned, in a shared file mapping. */
void mproc__release_pages(void *addr, size_t len);

/* Maps the whole pages inside [addr, addr+len) writable now, in one call,
 * rather than one fault at a time later (best effort: Linux 5.14+). */
void mproc__populate_pages(void *addr, size_t len);

#endif
