/* The platform layer: the Linux-specific calls of mproc, behind contracts
 * that a port provides again (futexes, pidfds, memfd, membarrier, fixed
 * mappings, clone, prctl, /proc, CPU affinity; the rest of src/platform/:
 * exec_self.h re-executes the program, cgroup.c reads the CPU quota).
 *
 * The rest of src/ is C11 and POSIX.1-2008, except for what follows, which
 * a port to another system must also look at (Linux or glibc unless said):
 *
 *   _GNU_SOURCE           every file of the library (CMakeLists.txt)
 *   epoll                 conn/listener.c
 *   accept4, SOCK_CLOEXEC, SOCK_NONBLOCK
 *                         conn/listener.c; SOCK_CLOEXEC also
 *                         process/start_spawn.c
 *   pipe2 (O_NONBLOCK)    manager/server.c, pool/lifecycle.c
 *   MSG_CMSG_CLOEXEC      process/start_forkserver.c
 *   MSG_DONTWAIT (BSD too), MSG_NOSIGNAL (POSIX, not on macOS)
 *                         conn/conn.c, conn/listener_handshake.c,
 *                         manager/client.c; MSG_NOSIGNAL also
 *                         process/start_forkserver.c
 *   POLLRDHUP             manager/client.c, manager/server.c
 *   abstract Unix socket names ("@name")
 *                         conn/address.c, conn/listener.c
 *   dl_iterate_phdr, dlinfo, dladdr (<link.h>)
 *                         arena/fnref.c
 *   backtrace, backtrace_symbols_fd (<execinfo.h>)
 *                         pool/worker.c, process/start_forkserver.c
 *   pthread_mutex_clocklock               sync/lock.c
 *   posix_spawn_file_actions_addclosefrom_np   process/start_spawn.c
 *   strerrordesc_np       base/error.c (base is below this layer)
 *   asprintf, vasprintf   pool/task.c, pool/executor_thread.c
 *   NSIG                  process/bootstrap.c, process/start_forkserver.c
 *   F_OFD_SETLK, F_OFD_SETLKW (open file description locks)
 *                         shm/tracker.c
 *   usleep (not in POSIX.1-2008)          manager/server.c
 *   eventfd               base/inject.h (failure-injection builds only)
 *   GCC/Clang extensions: __attribute__ (constructor in shm/tracker.c,
 *                         process/start_spawn.c and MPROC__MODULE, which
 *                         every module's file uses: base/module.h; tls_model, noinline,
 *                         noreturn), __builtin_* (expect, clzll, popcount,
 *                         memcpy, ia32_pause), __has_feature */
#ifndef MPROC_INTERNAL_PLATFORM_H
#define MPROC_INTERNAL_PLATFORM_H

#include <stdbool.h>
#include <sys/types.h>

/* An fd that becomes readable when `pid` exits (a pidfd), close-on-exec;
 * a negative mproc code when the kernel has none (MPROC_ENOSYS). */
int mproc__pidfd_open(pid_t pid);

/* Sends sig to the process of a pidfd; MPROC_ESRCH once it has exited. */
int mproc__pidfd_signal(int pidfd, int sig);

/* Arrange for the calling (just forked) child to get signal sig (SIGKILL,
 * or a signal whose handler the child has) when its parent dies. `parent`
 * is the pid the child expects as parent: if that one has already died,
 * returns MPROC_ESRCH. The kernel's parent-death signal comes when the
 * parent *thread* ends: when that is not the parent's main thread
 * (by_thread), the signal is MPROC__PARENT_SIGNAL, whose handler raises
 * sig only if the parent process is gone. Called again, it replaces the
 * arrangement. */
#define MPROC__PARENT_SIGNAL (SIGRTMAX - 1)
int mproc__die_with_parent(pid_t parent, bool by_thread, int sig);

/* True on the process's main thread (its thread id is its pid). */
bool mproc__on_main_thread(void);

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

/* One step of a spin-wait: tells the CPU (and a hyperthread sibling) that
 * this is a spin. */
static inline void mproc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

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

/* The thread id holding a robust pthread mutex (0 if none), its
 * recursion count, and whether a thread marked it as slept on, so that
 * its release makes a wake-up call (glibc keeps all three in the mutex;
 * a port keeps them itself). */
#include <pthread.h>
pid_t mproc__mutex_owner(const pthread_mutex_t *m);
unsigned mproc__mutex_count(const pthread_mutex_t *m);
bool mproc__mutex_waiters(const pthread_mutex_t *m);

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

/* The heavy barrier of membarrier(2) GLOBAL_EXPEDITED. Register once per
 * process (a fork child registers again: registration belongs to the
 * process): true if the barrier can be used. The barrier: 0 once every
 * thread of every registered process has passed a full memory barrier,
 * -1 on failure. */
bool mproc__membarrier_register(void);
int mproc__membarrier(void);

/* Maps `size` bytes of fd from offset 0, shared and read-write, at exactly
 * `addr` and never over an existing mapping, without reserving swap: 0 and
 * *out = addr; MPROC_EEXIST (or MPROC_EADDRINUSE) when something is mapped
 * there; another negative code. */
int mproc__map_shared_at(uintptr_t addr, size_t size, int fd, void **out);

/* Names the calling thread (the name ps shows, up to 15 bytes; the
 * process's when called on its main thread). Async-signal-safe. */
void mproc__set_thread_name(const char *name);

/* Fills buf with n random bytes from the kernel without blocking; false
 * when it has none to give (the caller mixes its own). */
bool mproc__random_bytes(void *buf, size_t n);

/* The CPU the calling thread runs on, or -1. */
int mproc__current_cpu(void);

/* Whether thread `tid` is gone, or a zombie (killed, not yet reaped: it
 * will never run again). */
bool mproc__thread_dead(pid_t tid);

/* fork(2) without the pthread_atfork handlers, async-signal-safe. */
pid_t mproc__fork_nohandlers(void);

/* Ends the process with code at once, by the system call itself: for a
 * child of mproc__fork_nohandlers in a process with threads, where a
 * sanitizer's _exit could wait for a lock a parent's thread held. */
_Noreturn void mproc__exit_raw(int code);

/* Closes every fd in [lo, hi] (hi may be ~0u). Async-signal-safe. */
void mproc__close_range(unsigned lo, unsigned hi);

/* A new open file description of the file open on fd (open(2) with
 * `flags`, not a dup): an fd, or a negative code. */
int mproc__fd_reopen(int fd, int flags);

/* Whether fd is a memory file (mproc__memfd) whose name starts with `name`. */
bool mproc__fd_is_memfd(int fd, const char *name);

/* The directory (with its final '/') where the names of shm_open(3) are
 * files that open(2) can check. */
#define MPROC__SHM_DIR "/dev/shm/"

#endif
